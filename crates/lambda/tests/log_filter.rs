//! The function's log filter at the highest level it offers: sesguard's own DEBUG lines are on,
//! what `lambda_runtime` logs at TRACE (every raw event) is not. A test binary of its own, so
//! no other test registers tracing callsites meanwhile.

#[path = "../../../tests/support/log_buffer.rs"]
mod log_buffer;

use log_buffer::LogBuffer;
use sesguard_lambda::log_filter;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::filter::LevelFilter;

/// What the lambda_runtime crate logs at TRACE for every invocation (the raw event), and a
/// DEBUG line of sesguard's, through `filter`.
fn runtime_trace_through(filter: EnvFilter) -> String {
    let buffer = LogBuffer::default();
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(buffer.clone())
        .finish();
    tracing::subscriber::with_default(subscriber, || {
        // As lambda_runtime's api_response layer logs it.
        tracing::trace!(
            target: "lambda_runtime::layers::api_response",
            body = r#"{"detail":{"userIdentity":{"accessKeyId":"AKIAIOSFODNN7EXAMPLE"}}}"#,
            "raw JSON event received from Lambda"
        );
        tracing::debug!(target: "sesguard::deliver", "evaluated");
    });
    buffer.text()
}

#[test]
fn at_trace_the_runtime_does_not_log_raw_events_but_sesguard_logs_its_detail() {
    let capped = runtime_trace_through(log_filter(LevelFilter::TRACE));
    assert!(capped.contains("evaluated"), "{capped}");
    assert!(!capped.contains("AKIAIOSFODNN7EXAMPLE"), "{capped}");
    // What the cap prevents.
    let uncapped = runtime_trace_through(EnvFilter::new("trace"));
    assert!(uncapped.contains("AKIAIOSFODNN7EXAMPLE"), "{uncapped}");
    // A quieter level stays quieter for every crate.
    let warn = runtime_trace_through(log_filter(LevelFilter::WARN));
    assert!(warn.is_empty(), "{warn}");
}
