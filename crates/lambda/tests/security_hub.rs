//! The Security Hub sink: against moto's Security Hub (`BatchImportFindings`, `GetFindings`;
//! `scripts/test.sh` exports `SESGUARD_TEST_ENDPOINT`) and against a local stub server that
//! counts the calls. Without the emulator the moto tests skip, unless
//! `SESGUARD_REQUIRE_EMULATORS` is set.

mod support;
use support::*;

use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use sesguard::config::{Config, Overrides};
use sesguard::deliver::{Collect, Counts, Sink, SinkError};
use sesguard::lambda::{Handler, HandlerError};
use sesguard::model::{FailureKind, Severity, Subject};
use sesguard::output::asff::{self, ImportError, ProductArn};
use sesguard::state::MemoryState;
use sesguard::{Engine, Signal};
use sesguard_lambda::aws::security_hub::{ImportThen, SecurityHub};

/// moto's default account.
const ACCOUNT: &str = "123456789012";

fn product() -> ProductArn {
    ProductArn::parse(&asff::product_arn("aws", "us-east-1", ACCOUNT)).expect("product ARN")
}

fn hub(endpoint: &str) -> SecurityHub {
    SecurityHub::with_endpoint(test_credentials(), product(), endpoint.to_owned())
}

const EVENTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../events");

fn sample(file: &str) -> String {
    std::fs::read_to_string(std::path::Path::new(EVENTS).join(file)).expect("sample")
}

fn engine() -> Engine {
    Engine::new(Config::load(None, &Overrides::default()).expect("config"))
}

/// SNS standing in: fails its first publish (as a throttled SNS would), then keeps signals.
#[derive(Default)]
struct FailsOnce {
    failed: Mutex<bool>,
    kept: Collect,
}

impl Sink for FailsOnce {
    async fn emit(&self, signal: &Signal) -> Result<(), SinkError> {
        let first = {
            let mut failed = self.failed.lock().unwrap_or_else(|e| e.into_inner());
            !std::mem::replace(&mut *failed, true)
        };
        if first {
            return Err(SinkError::new(
                FailureKind::Throttled,
                "SNS Publish: injected",
            ));
        }
        self.kept.emit(signal).await
    }
}

/// The findings under `id` that moto holds.
async fn findings_with_id(hub: &SecurityHub, id: &str) -> Vec<Value> {
    let all = hub.get_findings(json!({})).await.expect("GetFindings");
    all.into_iter().filter(|f| f["Id"] == id).collect()
}

#[tokio::test]
async fn a_signal_is_imported_under_its_id_before_sns_and_a_retry_updates_it() {
    let Some(endpoint) = endpoint() else { return };
    let handler = Handler::new(
        engine(),
        MemoryState::default(),
        ImportThen::new(Some(hub(&endpoint)), FailsOnce::default()),
    );
    let event = sample("ses-DeleteIdentity-by-arn.json");
    // First delivery: imported, then SNS fails: the invocation fails, nothing is marked.
    let err = handler
        .handle(&event, "first", &mut Counts::default())
        .await
        .expect_err("SNS failed");
    assert_eq!(err.error_type(), "sesguard.PublishUnavailable", "{err}");
    let hub = handler.sink().security_hub().expect("hub");
    let imported = hub.get_findings(json!({})).await.expect("GetFindings");
    let ids: Vec<&str> = imported.iter().filter_map(|f| f["Id"].as_str()).collect();
    // Lambda's retry: imported again (the same Id), then published once.
    handler
        .handle(&event, "retry", &mut Counts::default())
        .await
        .expect("retry");
    // This event gives two signals: the first was imported before SNS failed on it.
    let signals = handler.sink().inner().kept.collected().signals;
    assert_eq!(signals.len(), 2, "{signals:?}");
    assert!(ids.contains(&signals[0].signal_id.as_str()), "{ids:?}");
    for signal in &signals {
        let found = findings_with_id(hub, &signal.signal_id).await;
        assert_eq!(found.len(), 1, "one finding after the retry: {found:?}");
        let finding = &found[0];
        assert_eq!(finding["ProductArn"], product().arn());
        assert_eq!(finding["AwsAccountId"], ACCOUNT);
        assert_eq!(finding["GeneratorId"], signal.rule_id);
        assert_eq!(finding["Title"], signal.title);
        assert_eq!(
            finding["FindingProviderFields"]["Severity"]["Label"],
            asff::severity_label(signal.severity)
        );
        let resources: Vec<&str> = finding["Resources"]
            .as_array()
            .expect("resources")
            .iter()
            .filter_map(|r| r["Id"].as_str())
            .collect();
        assert_eq!(
            resources,
            [
                "arn:aws:iam::111122223333:user/ses-ops-leaked",
                "AKIAIOSFODNN7EXAMPLE"
            ]
        );
    }

    // A duplicate delivery (a new container: no state) imports the same finding again.
    let again = Handler::new(
        engine(),
        MemoryState::default(),
        ImportThen::new(Some(self::hub(&endpoint)), Collect::default()),
    );
    again
        .handle(&event, "duplicate", &mut Counts::default())
        .await
        .expect("duplicate");
    assert_eq!(again.sink().inner().collected().signals.len(), 2);
    for signal in &signals {
        assert_eq!(findings_with_id(hub, &signal.signal_id).await.len(), 1);
    }
}

#[tokio::test]
async fn a_finding_security_hub_rejects_fails_the_invocation_as_transient_before_sns() {
    let Some(endpoint) = endpoint() else { return };
    let hub = hub(&endpoint);
    // moto refuses a finding without Resources (FailedCount 1), as Security Hub does.
    let mut finding = asff::finding(&signal("rejected-finding-1"), &product().arn(), ACCOUNT);
    finding.as_object_mut().expect("object").remove("Resources");
    let err = hub.import_findings(&[finding]).await.expect_err("rejected");
    assert!(err.is_transient(), "{err}");
    match err
        .source
        .as_ref()
        .and_then(|s| s.downcast_ref::<ImportError>())
    {
        Some(ImportError::Rejected(rejected)) => {
            assert_eq!(rejected.len(), 1);
            assert_eq!(rejected[0].id, "rejected-finding-1");
        }
        other => panic!("not a rejected finding: {other:?} ({err})"),
    }
    assert!(
        HandlerError::Publish(err).error_type() == "sesguard.SecurityHubUnavailable",
        "the errorType names Security Hub"
    );
}

#[tokio::test]
async fn security_hub_out_of_reach_fails_the_emit_and_nothing_is_published() {
    // A port nothing listens on: the connection is refused.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    drop(listener);
    let sink = ImportThen::new(
        Some(hub(&format!("http://127.0.0.1:{port}"))),
        Collect::default(),
    );
    let err = sink
        .emit(&signal("unreachable"))
        .await
        .expect_err("refused");
    assert!(err.is_transient(), "{err}");
    assert!(sink.inner().collected().signals.is_empty());
    let err = HandlerError::Publish(err);
    assert_eq!(err.error_type(), "sesguard.SecurityHubUnavailable", "{err}");
}

fn signal(id: &str) -> Signal {
    Signal {
        signal_id: id.to_owned(),
        rule_id: "ses-identity-deleted".to_owned(),
        title: "SES identity has been deleted".to_owned(),
        severity: Severity::Medium,
        tactic: "TA0005".to_owned(),
        tactic_name: "stealth".to_owned(),
        technique: "T1070".to_owned(),
        technique_name: "indicator-removal".to_owned(),
        subject: Subject {
            event_id: "5e1093f0".to_owned(),
            event_name: "DeleteIdentity".to_owned(),
            event_source: "ses.amazonaws.com".to_owned(),
            event_time: "2026-03-02T09:40:00Z".to_owned(),
            account_id: ACCOUNT.to_owned(),
            region: "us-east-1".to_owned(),
            access_key_id: Some("AKIAIOSFODNN7EXAMPLE".to_owned()),
            ..Subject::default()
        },
        related_event_ids: Vec::new(),
        shadow: false,
        details: None,
        triage: vec!["Was it expected?".to_owned()],
    }
}

/// A stub Security Hub on 127.0.0.1: answers every `POST /findings/import` with all its findings
/// imported, and keeps how many each call carried.
async fn stub() -> (String, Arc<Mutex<Vec<usize>>>) {
    let counts = Arc::new(Mutex::new(Vec::new()));
    let kept = counts.clone();
    let (url, _) = http_stub(move |request| {
        let body: Value = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
        let n = body["Findings"].as_array().map_or(0, Vec::len);
        kept.lock().unwrap_or_else(|e| e.into_inner()).push(n);
        (
            200,
            json!({"FailedCount": 0, "SuccessCount": n, "FailedFindings": []}).to_string(),
        )
    })
    .await;
    (url, counts)
}

#[tokio::test]
async fn two_hundred_and_fifty_signals_are_imported_in_three_calls() {
    let (url, calls) = stub().await;
    let signals: Vec<Signal> = (0..250).map(|i| signal(&format!("signal-{i}"))).collect();
    let imported = hub(&url).import(&signals).await.expect("imported");
    assert_eq!(imported, 250);
    assert_eq!(
        *calls.lock().unwrap_or_else(|e| e.into_inner()),
        [100, 100, 50]
    );
}

#[tokio::test]
async fn a_finding_over_240_kb_is_refused_without_a_call() {
    let (url, calls) = stub().await;
    let mut finding = asff::finding(&signal("too-big"), &product().arn(), ACCOUNT);
    finding["Description"] = Value::String("x".repeat(asff::MAX_FINDING_BYTES));
    let err = hub(&url)
        .import_findings(&[finding])
        .await
        .expect_err("too large");
    assert_eq!(err.kind, FailureKind::TooLarge, "{err}");
    assert!(err.to_string().contains("too-big"), "{err}");
    assert_eq!(
        HandlerError::Publish(err).error_type(),
        "sesguard.SecurityHubError"
    );
    assert!(calls.lock().unwrap_or_else(|e| e.into_inner()).is_empty());
}
