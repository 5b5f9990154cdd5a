//! The heartbeat's DynamoDB items against moto: the region's view, the newest canary kept,
//! one outage however many runs race to open it, closed only by the run that saw its start; and
//! a heartbeat run over the real state and SNS publisher publishing one blind signal per outage
//! and one restored signal, whatever the overlapping runs.
//!
//! Skipped without `SESGUARD_TEST_ENDPOINT` (failing instead under `SESGUARD_REQUIRE_EMULATORS`),
//! as crates/lambda/tests/aws.rs.

mod support;
use support::*;

use serde_json::Value;
use sesguard::heartbeat::MARKER;
use sesguard::heartbeat::{BLIND, Heartbeat, HeartbeatStore, RESTORED, RegionView};
use sesguard::model::MINUTE;
use sesguard_lambda::aws::ses::{CanaryCaller, CanaryError};

const T0: i64 = 1_772_442_000;

#[tokio::test]
async fn the_heartbeat_items_keep_the_newest_canary_and_one_outage() {
    let Some(endpoint) = endpoint() else { return };
    let sdk = sdk(&endpoint).await;
    let state = table(&sdk, "sesguard-heartbeat-state").await;
    let first = state.check_region("us-east-1", T0).await.expect("view");
    assert_eq!(
        first,
        RegionView {
            last_seen: None,
            first_checked: T0,
            outage_since: None
        }
    );
    state.canary_seen("us-east-1", T0 + 60).await.expect("seen");
    state
        .canary_seen("us-east-1", T0 + 30)
        .await
        .expect("an older one, late");
    let view = state
        .check_region("us-east-1", T0 + 120)
        .await
        .expect("view");
    assert_eq!(view.last_seen, Some(T0 + 60));
    assert_eq!(view.first_checked, T0, "the first check is kept");
    // Two runs race to open the outage: both get the first one's start.
    assert_eq!(
        state.open_outage("us-east-1", T0 + 60).await.expect("open"),
        T0 + 60
    );
    assert_eq!(
        state.open_outage("us-east-1", T0 + 90).await.expect("open"),
        T0 + 60
    );
    // Closing another outage's start leaves it open; its own start closes it.
    state
        .close_outage("us-east-1", T0 + 90)
        .await
        .expect("close");
    let view = state
        .check_region("us-east-1", T0 + 120)
        .await
        .expect("view");
    assert_eq!(view.outage_since, Some(T0 + 60));
    state
        .close_outage("us-east-1", T0 + 60)
        .await
        .expect("close");
    let view = state
        .check_region("us-east-1", T0 + 120)
        .await
        .expect("view");
    assert_eq!(view.outage_since, None);
    // Regions are apart.
    let other = state
        .check_region("eu-west-1", T0 + 120)
        .await
        .expect("view");
    assert_eq!(other.last_seen, None);
}

#[tokio::test]
async fn a_heartbeat_run_publishes_one_blind_and_one_restored_signal_on_sns() {
    let Some(endpoint) = endpoint() else { return };
    let sdk = sdk(&endpoint).await;
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let state = table(&sdk, "sesguard-heartbeat-state").await;
    let (publisher, inbox) = topic(&sdk, "sesguard-heartbeat-signals").await;
    let heartbeat = Heartbeat {
        regions: vec!["us-east-1".to_owned()],
        max_delay: 30 * MINUTE,
        account_id: "111122223333".to_owned(),
        role_arn: "arn:aws:iam::111122223333:role/sesguard".to_owned(),
    };
    let run = |now: i64| sesguard::heartbeat::run(&heartbeat, &state, &publisher, now);
    assert!(run(T0).await.expect("run").is_empty());
    state.canary_seen("us-east-1", T0 + 60).await.expect("seen");
    // Late: two overlapping runs, one signal.
    let (a, b) = tokio::join!(run(T0 + 40 * MINUTE), run(T0 + 40 * MINUTE));
    let blind = a.expect("run").len() + b.expect("run").len();
    assert_eq!(blind, 1);
    assert!(run(T0 + 55 * MINUTE).await.expect("run").is_empty());
    state
        .canary_seen("us-east-1", T0 + 60 * MINUTE)
        .await
        .expect("seen");
    assert_eq!(run(T0 + 61 * MINUTE).await.expect("run").len(), 1);
    assert!(run(T0 + 62 * MINUTE).await.expect("run").is_empty());
    // Each SNS message: the signal, its subject, and the attributes subscribers filter on,
    // as for every signal.
    let mut got: Vec<(String, String, String, String)> = receive_all(&sqs, &inbox)
        .await
        .iter()
        .map(|(_, body)| {
            let envelope: Value = serde_json::from_str(body).expect("envelope");
            let signal: Value =
                serde_json::from_str(envelope["Message"].as_str().unwrap_or_default())
                    .expect("signal");
            let attribute = |name: &str| {
                envelope["MessageAttributes"][name]["Value"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned()
            };
            assert_eq!(
                attribute("rule_id"),
                signal["rule_id"].as_str().unwrap_or_default()
            );
            assert_eq!(attribute("region"), "us-east-1");
            assert_eq!(attribute("account_id"), "111122223333");
            (
                attribute("rule_id"),
                attribute("severity"),
                envelope["Subject"].as_str().unwrap_or_default().to_owned(),
                signal["details"]["outage_since"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            )
        })
        .collect();
    got.sort();
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!((got[0].0.as_str(), got[0].1.as_str()), (BLIND, "high"));
    assert_eq!((got[1].0.as_str(), got[1].1.as_str()), (RESTORED, "info"));
    assert!(
        got[0].2.starts_with("[high] sesguard-pipeline-blind: "),
        "{got:?}"
    );
    assert_eq!(got[0].3, got[1].3, "one outage");
}

/// The canary call as it leaves the function: `POST /` of the v1 Query API's `GetSendQuota`,
/// signed for `ses` in each region, the marker in the user agent (unsigned: CloudTrail records
/// it as written).
#[tokio::test]
async fn the_canary_call_is_get_send_quota_signed_for_ses_in_its_region_with_the_marker() {
    let (url, requests) = http_stub(|_| {
        (
            200,
            "<GetSendQuotaResponse><GetSendQuotaResult><Max24HourSend>200.0</Max24HourSend></GetSendQuotaResult></GetSendQuotaResponse>".to_owned(),
        )
    })
    .await;
    let caller = CanaryCaller::with_endpoint(test_credentials(), Some(url));
    for region in ["us-east-1", "eu-west-1"] {
        caller.call(region).await.expect("answered");
    }
    let requests = requests.lock().unwrap_or_else(|e| e.into_inner()).clone();
    assert_eq!(requests.len(), 2);
    for (request, region) in requests.iter().zip(["us-east-1", "eu-west-1"]) {
        assert!(
            request.head.starts_with("post / http/1.1\r\n"),
            "{}",
            request.head
        );
        assert_eq!(request.body, b"Action=GetSendQuota&Version=2010-12-01");
        assert!(
            request
                .head
                .contains(&format!("/{region}/ses/aws4_request")),
            "{}",
            request.head
        );
        let agent = request
            .head
            .lines()
            .find_map(|l| l.strip_prefix("user-agent: "))
            .expect("a user agent");
        assert!(agent.starts_with(MARKER), "{agent}");
        let signed = request
            .head
            .lines()
            .find_map(|l| l.split_once("signedheaders=").map(|(_, rest)| rest))
            .expect("signed headers");
        assert!(!signed.contains("user-agent"), "{signed}");
    }
}

#[tokio::test]
async fn a_refused_or_unreachable_canary_call_is_an_error_naming_its_region() {
    let (url, _) = http_stub(|_| {
        (
            403,
            "<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>User: arn:aws:sts::111122223333:assumed-role/x/y is not authorized</Message></Error></ErrorResponse>".to_owned(),
        )
    })
    .await;
    let err = CanaryCaller::with_endpoint(test_credentials(), Some(url))
        .call("ap-south-1")
        .await
        .expect_err("refused");
    assert_eq!(
        err,
        CanaryError::Status {
            region: "ap-south-1".to_owned(),
            status: 403,
            code: "AccessDenied".to_owned()
        }
    );
    assert_eq!(
        err.to_string(),
        "GetSendQuota in ap-south-1 answered HTTP 403 AccessDenied",
        "nothing of SES's message (it names the caller)"
    );
    // A port nothing listens on: the connection is refused.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    drop(listener);
    let err =
        CanaryCaller::with_endpoint(test_credentials(), Some(format!("http://127.0.0.1:{port}")))
            .call("eu-west-1")
            .await
            .expect_err("refused");
    assert!(
        matches!(&err, CanaryError::Call { region, .. } if region == "eu-west-1"),
        "{err:?}"
    );
}

#[tokio::test]
async fn moto_answers_the_canary_call_in_each_region() {
    let Some(endpoint) = endpoint() else { return };
    let caller = CanaryCaller::with_endpoint(test_credentials(), Some(endpoint));
    for region in ["us-east-1", "eu-west-1", "ap-southeast-2"] {
        caller.call(region).await.expect("GetSendQuota answered");
    }
}
