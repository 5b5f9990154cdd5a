//! What the Lambda logs at info level: one line per signal, and never credentials, whole
//! events or personal data (caller ARNs, IPs, user agents, identity names).

mod support;

use sesguard::Engine;
use sesguard::deliver::{Collect, Counts};
use sesguard::lambda::Handler;
use sesguard::state::MemoryState;
use support::LogBuffer;

#[test]
fn info_logs_name_signals_but_no_credentials_events_or_personal_data() {
    let buffer = LogBuffer::default();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_max_level(tracing::Level::INFO)
        .with_writer(buffer.clone())
        .finish();
    let mut report = Counts::default();
    tracing::subscriber::with_default(subscriber, || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        let handler = Handler::new(Engine::default(), MemoryState::new(), Collect::default());
        for file in [
            "ses-GetAccount.json",
            "ses-VerifyEmailIdentity.json",
            "ses-DeleteIdentity.json",
        ] {
            let payload = std::fs::read_to_string(format!("events/{file}")).expect("sample");
            runtime
                .block_on(handler.handle(&payload, "logs", &mut report))
                .expect("handle");
        }
        let bad = r#"{"version":"0","detail-type":"AWS API Call via CloudTrail","source":"aws.ses","detail":{"eventSource":"ses.amazonaws.com","eventName":"GetAccount","userIdentity":"AKIAIOSFODNN7EXAMPLE"}}"#;
        let _ = runtime.block_on(handler.handle(bad, "bad", &mut report));
    });
    let logs = buffer.text();
    let signal_lines = logs
        .lines()
        .filter(|l| l.contains("signal published"))
        .count();
    assert_eq!(signal_lines as u64, report.signal_count(), "{logs}");
    assert!(signal_lines >= 5, "{logs}");
    for secret in [
        "AKIAIOSFODNN7EXAMPLE",
        "198.51.100.23",
        "aws-cli/",
        "phish@example.net",
        "user/ses-ops-leaked",
        "\"detail\"",
        "\"userIdentity\"",
    ] {
        assert!(!logs.contains(secret), "{secret} logged at info: {logs}");
    }
    assert!(logs.contains("malformed event"), "{logs}");
}
