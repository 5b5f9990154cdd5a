//! The pipeline heartbeat over the in-memory state with an injected wall clock: a canary seen in
//! time gives nothing; late or never seen, one `sesguard-pipeline-blind` per outage however many
//! runs overlap; seen again, one `sesguard-pipeline-restored`; and the canary itself never
//! reaches a rule.

mod support;

use serde_json::json;
use sesguard::deliver::{Collect, Counts};
use sesguard::heartbeat::{
    BLIND, Canary, Heartbeat, HeartbeatStore, MARKER, REQUEST, RESTORED, is_request,
};
use sesguard::lambda::{Handler, Message, ObjectError, ObjectStore};
use sesguard::model::{MINUTE, Severity};
use sesguard::notification::ObjectRef;
use sesguard::{Engine, MemoryState, Signal};
use support::*;

const ROLE: &str = "arn:aws:iam::111122223333:role/sesguard-SesguardFunctionRole-ABC";
const T0: i64 = 1_772_442_000;

fn heartbeat(regions: &[&str]) -> Heartbeat {
    Heartbeat {
        regions: regions.iter().map(|r| (*r).to_owned()).collect(),
        max_delay: 30 * MINUTE,
        account_id: "111122223333".to_owned(),
        role_arn: ROLE.to_owned(),
    }
}

fn new_handler() -> Handler<MemoryState, Collect> {
    Handler::new(
        Engine::new(config("")),
        MemoryState::new(),
        Collect::default(),
    )
    .with_canary(Canary::new(ROLE))
}

async fn beat(handler: &Handler<MemoryState, Collect>, regions: &[&str], at: i64) -> Vec<Signal> {
    handler
        .heartbeat(&heartbeat(regions), at)
        .await
        .expect("heartbeat run")
}

/// The canary call as EventBridge delivers it: `GetSendQuota` by a session of `role` with
/// `agent`, made at `at` in `region`.
fn canary_event(role: &str, agent: &str, region: &str, at: i64) -> String {
    let record = ses("GetSendQuota")
        .region(region)
        .set(&["eventTime"], json!(time_text(at)))
        .id(&format!("canary-{region}-{at}"))
        .agent(agent)
        .user(json!({
            "type": "AssumedRole",
            "principalId": "AROAEXAMPLE:sesguard",
            "arn": format!("{}/sesguard", role.replace(":iam::", ":sts::").replace(":role/", ":assumed-role/")),
            "accountId": "111122223333",
            "accessKeyId": "ASIAEXAMPLE",
            "sessionContext": {
                "sessionIssuer": {"type": "Role", "principalId": "AROAEXAMPLE", "arn": role,
                                  "accountId": "111122223333", "userName": "sesguard"},
                "attributes": {"creationDate": "2026-03-02T08:00:00Z", "mfaAuthenticated": "false"}
            }
        }));
    json!({
        "version": "0",
        "id": "e",
        "detail-type": "AWS API Call via CloudTrail",
        "source": "aws.ses",
        "account": "111122223333",
        "time": time_text(at),
        "region": region,
        "resources": [],
        "detail": record.0,
    })
    .to_string()
}

fn agent() -> String {
    format!("aws-sdk-rust/1.3 os/linux lang/rust/1.88 app/{MARKER}")
}

async fn deliver(handler: &Handler<MemoryState, Collect>, event: &str) -> Counts {
    let mut counts = Counts::default();
    handler
        .handle(event, "request", &mut counts)
        .await
        .expect("handled");
    counts
}

#[tokio::test]
async fn a_canary_seen_in_time_gives_nothing() {
    let handler = new_handler();
    assert!(beat(&handler, &["us-east-1"], T0).await.is_empty());
    deliver(
        &handler,
        &canary_event(ROLE, &agent(), "us-east-1", T0 + 60),
    )
    .await;
    assert!(
        beat(&handler, &["us-east-1"], T0 + 15 * MINUTE)
            .await
            .is_empty()
    );
    assert!(
        beat(&handler, &["us-east-1"], T0 + 30 * MINUTE + 60)
            .await
            .is_empty()
    );
    assert!(handler.sink().collected().signals.is_empty());
}

#[tokio::test]
async fn a_late_canary_gives_one_blind_signal_per_outage_then_one_restored() {
    let handler = new_handler();
    let regions = ["us-east-1", "eu-west-1"];
    beat(&handler, &regions, T0).await;
    for region in regions {
        deliver(&handler, &canary_event(ROLE, &agent(), region, T0 + 60)).await;
    }
    // eu-west-1 keeps delivering; us-east-1 goes quiet.
    deliver(
        &handler,
        &canary_event(ROLE, &agent(), "eu-west-1", T0 + 20 * MINUTE),
    )
    .await;
    let blind = beat(&handler, &regions, T0 + 31 * MINUTE + 60).await;
    assert_eq!(blind.len(), 1, "{blind:?}");
    let signal = &blind[0];
    assert_eq!(signal.rule_id, BLIND);
    assert_eq!(signal.severity, Severity::High);
    assert_eq!(signal.subject.region, "us-east-1");
    assert_eq!(signal.subject.account_id, "111122223333");
    let details = signal.details.as_ref().expect("details");
    assert_eq!(details["last_seen"], json!(time_text(T0 + 60)));
    assert_eq!(details["max_delay_minutes"], json!(30));
    assert!(signal.triage.iter().any(|t| t.contains("get-trail-status")));
    assert!(
        signal
            .short_title()
            .starts_with("[high] sesguard-pipeline-blind: "),
        "{}",
        signal.short_title()
    );
    // The next runs, and a run overlapping this one (same clock), give no second signal.
    assert!(
        beat(&handler, &regions, T0 + 31 * MINUTE + 60)
            .await
            .is_empty()
    );
    assert!(beat(&handler, &regions, T0 + 46 * MINUTE).await.is_empty());
    // Seen again: one restored signal, for the same outage, then nothing (eu-west-1 delivers).
    deliver(
        &handler,
        &canary_event(ROLE, &agent(), "eu-west-1", T0 + 45 * MINUTE),
    )
    .await;
    deliver(
        &handler,
        &canary_event(ROLE, &agent(), "us-east-1", T0 + 50 * MINUTE),
    )
    .await;
    let restored = beat(&handler, &regions, T0 + 51 * MINUTE).await;
    assert_eq!(restored.len(), 1, "{restored:?}");
    assert_eq!(restored[0].rule_id, RESTORED);
    assert_eq!(restored[0].severity, Severity::Info);
    assert_eq!(restored[0].subject.region, "us-east-1");
    assert!(beat(&handler, &regions, T0 + 66 * MINUTE).await.is_empty());
    // A second outage is a new one: a new blind signal, with its own id.
    let again = beat(&handler, &regions, T0 + 90 * MINUTE).await;
    assert_eq!(
        again.iter().map(|s| s.rule_id.as_str()).collect::<Vec<_>>(),
        [BLIND, BLIND],
        "both regions are quiet now"
    );
    assert!(again.iter().all(|s| s.signal_id != signal.signal_id));
    let published = handler.sink().collected().signals;
    assert_eq!(published.len(), 4, "{published:?}");
}

#[tokio::test]
async fn a_canary_never_seen_makes_its_region_blind_once_the_delay_has_passed() {
    let handler = new_handler();
    assert!(beat(&handler, &["ap-south-1"], T0).await.is_empty());
    assert!(
        beat(&handler, &["ap-south-1"], T0 + 30 * MINUTE)
            .await
            .is_empty()
    );
    let blind = beat(&handler, &["ap-south-1"], T0 + 31 * MINUTE).await;
    assert_eq!(blind.len(), 1);
    let details = blind[0].details.as_ref().expect("details");
    assert_eq!(details["last_seen"], json!(null));
    assert_eq!(details["outage_since"], json!(time_text(T0)));
}

#[tokio::test]
async fn the_canary_reaches_no_rule_and_leaves_no_rule_state() {
    let handler = new_handler();
    let counts = deliver(&handler, &canary_event(ROLE, &agent(), "us-east-1", T0)).await;
    assert_eq!(counts.matched, 0);
    assert!(handler.sink().collected().signals.is_empty());
    assert!(
        handler.state().is_empty(),
        "no sighting, no stage, no learning start"
    );
    let view = handler
        .state()
        .check_region("us-east-1", T0 + 60)
        .await
        .expect("view");
    assert_eq!(view.last_seen, Some(T0));

    // The same call without the marker, or with it by another role, is an ordinary event:
    // the enumeration rule sees a principal for the first time.
    for (role, agent) in [
        (ROLE, "aws-cli/2.15.30".to_owned()),
        ("arn:aws:iam::111122223333:role/attacker", agent()),
    ] {
        let other = new_handler();
        deliver(&other, &canary_event(role, &agent, "us-east-1", T0)).await;
        assert_eq!(
            count(&other.sink().collected().signals, R2),
            1,
            "{role} {agent}"
        );
        let view = other
            .state()
            .check_region("us-east-1", T0 + 60)
            .await
            .expect("view");
        assert_eq!(view.last_seen, None);
    }
}

/// A log file in memory, for the S3 path.
struct OneFile(Vec<u8>);

impl ObjectStore for OneFile {
    type Body = std::io::Cursor<Vec<u8>>;
    async fn open(&self, _: &ObjectRef) -> Result<Self::Body, ObjectError> {
        Ok(std::io::Cursor::new(self.0.clone()))
    }
}

#[tokio::test]
async fn a_canary_in_a_log_file_reaches_no_rule_and_is_not_recorded() {
    let handler = new_handler();
    let records: Vec<serde_json::Value> = [ROLE, "arn:aws:iam::111122223333:role/attacker"]
        .iter()
        .map(|role| {
            let event: serde_json::Value =
                serde_json::from_str(&canary_event(role, &agent(), "us-east-1", T0)).expect("json");
            event["detail"].clone()
        })
        .collect();
    let file = json!({ "Records": records }).to_string().into_bytes();
    let object = ObjectRef {
        bucket: "trail".to_owned(),
        key: "AWSLogs/111122223333/CloudTrail/us-east-1/2026/03/02/111122223333_CloudTrail_us-east-1_20260302T0900Z_a.json".to_owned(),
        size: None,
    };
    let mut counts = Counts::default();
    handler
        .handle_object(&OneFile(file), &object, &mut counts)
        .await
        .expect("read");
    let signals = handler.sink().collected().signals;
    assert_eq!(count(&signals, R2), 1, "the other role's call is evaluated");
    assert!(
        signals.iter().all(|s| !s
            .subject
            .principal
            .as_deref()
            .unwrap_or_default()
            .contains("sesguard-SesguardFunctionRole")),
        "the canary gives no signal"
    );
    let view = handler
        .state()
        .check_region("us-east-1", T0 + 60)
        .await
        .expect("view");
    assert_eq!(
        view.last_seen, None,
        "the heartbeat watches the EventBridge path: a log file does not count"
    );
}

#[tokio::test]
async fn a_failed_heartbeat_run_redriven_is_acknowledged_and_does_nothing() {
    let handler = new_handler();
    let failed_run = format!(
        r#"{{"version":"1.0","requestContext":{{"requestId":"r","condition":"RetriesExhausted"}},"requestPayload":{REQUEST},"responsePayload":{{"errorType":"sesguard.StateUnavailable"}}}}"#
    );
    let messages = [Message {
        id: "m-1",
        body: &failed_run,
    }];
    let mut counts = Counts::default();
    let failures = handler
        .handle_messages(&OneFile(Vec::new()), &messages, &mut counts)
        .await;
    assert!(failures.is_empty(), "{failures:?}");
    assert!(handler.sink().collected().signals.is_empty());
    assert!(handler.state().is_empty());
}

#[test]
fn the_heartbeat_request_is_told_apart_from_every_other_payload() {
    assert!(is_request(REQUEST));
    assert!(is_request(r#"{"sesguard":"heartbeat"}"#));
    for other in [
        r#"{"sesguard": "refresh-tor-exit-list"}"#,
        r#"{"sesguard": "heartbeat", "detail": {}}"#,
        r#"{"Records": []}"#,
        r#"{"sesguard": "hea\u0072tbeat"}"#,
        "heartbeat",
        "",
        "[]",
    ] {
        assert!(!is_request(other), "{other}");
    }
    let event = canary_event(ROLE, &agent(), "us-east-1", T0);
    assert!(!is_request(&event));
}

#[test]
fn pipeline_signals_have_the_envelope_of_every_signal() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let handler = new_handler();
    runtime.block_on(beat(&handler, &["us-east-1"], T0));
    let blind = runtime.block_on(beat(&handler, &["us-east-1"], T0 + 31 * MINUTE));
    let json: serde_json::Value = serde_json::from_str(&blind[0].to_json()).expect("json");
    let keys: Vec<&str> = json
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    for field in SIGNAL_FIELDS {
        assert!(keys.contains(&field), "{field} in {keys:?}");
    }
    assert!(json.get("shadow").is_none());
}
