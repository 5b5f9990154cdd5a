//! sesguard as an AWS Lambda: the AWS adapters ([`aws`]: the DynamoDB State, the SNS Sink, the
//! S3 object store, the one HTTPS client), the SQS invocation shape ([`sqs`]) and the runtime's
//! error type ([`Failure`]). The handler itself is
//! `sesguard::lambda`; the binary (src/main.rs) only wires them.

pub mod aws;
pub mod sqs;
pub mod tor;

use sesguard::lambda::HandlerError;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::filter::LevelFilter;

/// Crates that log whole events (the runtime) or request and response bodies (the AWS SDK,
/// HTTP, TLS) at DEBUG and TRACE: identities, user agents and access key ids would reach the
/// logs. They stay at INFO (or quieter) whatever level the function is given.
const NEVER_BELOW_INFO: &[&str] = &[
    "lambda_runtime",
    "lambda_runtime_api_client",
    "aws_config",
    "aws_sdk_dynamodb",
    "aws_sdk_s3",
    "aws_sdk_sns",
    "aws_sigv4",
    "aws_smithy_runtime",
    "aws_smithy_runtime_api",
    "aws_smithy_http",
    "aws_smithy_http_client",
    "aws_smithy_types",
    "hyper",
    "hyper_util",
    "h2",
    "rustls",
    "tower",
];

/// The function's log level: `AWS_LAMBDA_LOG_LEVEL` (Lambda's logging controls), else a plain
/// level in `RUST_LOG`, else INFO. Per-crate directives in `RUST_LOG` are not read: they could
/// turn the SDK's body logging on.
pub fn log_level(lookup: impl Fn(&str) -> Option<String>) -> LevelFilter {
    ["AWS_LAMBDA_LOG_LEVEL", "RUST_LOG"]
        .iter()
        .find_map(|name| lookup(name).and_then(|v| v.trim().parse::<LevelFilter>().ok()))
        .unwrap_or(LevelFilter::INFO)
}

/// The log filter for `level`: sesguard's own lines at `level`, the crates of
/// [`NEVER_BELOW_INFO`] at most at INFO.
pub fn log_filter(level: LevelFilter) -> EnvFilter {
    let capped = level.min(LevelFilter::INFO);
    NEVER_BELOW_INFO
        .iter()
        .filter_map(|target| format!("{target}={capped}").parse().ok())
        .fold(
            EnvFilter::default().add_directive(level.into()),
            |filter, directive| filter.add_directive(directive),
        )
}

/// Logs to stdout, as `lambda_runtime`'s default subscriber does (JSON when the function's log
/// format is JSON), through [`log_filter`].
pub fn init_logging() {
    let lookup = |name: &str| std::env::var(name).ok();
    let subscriber = tracing_subscriber::fmt()
        .with_target(false)
        .without_time()
        .with_env_filter(log_filter(log_level(lookup)));
    let json = lookup("AWS_LAMBDA_LOG_FORMAT").is_some_and(|f| f.eq_ignore_ascii_case("json"));
    if json {
        subscriber.json().init();
    } else {
        subscriber.init();
    }
}

/// A failed invocation as the Lambda runtime reports it: `errorType` says what failed and
/// whether a retry helps (`sesguard.StateUnavailable`, …), `errorMessage` is the error.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct Failure(#[from] pub HandlerError);

impl From<Failure> for lambda_runtime::Diagnostic {
    fn from(failure: Failure) -> Self {
        lambda_runtime::Diagnostic {
            error_type: failure.0.error_type().to_owned(),
            error_message: failure.0.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sesguard::deliver::SinkError;
    use sesguard::model::FailureKind;
    use sesguard::state::StateError;

    #[test]
    fn the_log_level_comes_from_lambda_then_a_plain_rust_log_level() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| (*v).to_owned())
            }
        };
        assert_eq!(log_level(env(&[])), LevelFilter::INFO);
        assert_eq!(
            log_level(env(&[
                ("AWS_LAMBDA_LOG_LEVEL", "TRACE"),
                ("RUST_LOG", "warn")
            ])),
            LevelFilter::TRACE
        );
        assert_eq!(log_level(env(&[("RUST_LOG", "debug")])), LevelFilter::DEBUG);
        assert_eq!(
            log_level(env(&[("RUST_LOG", "aws_smithy_runtime=trace")])),
            LevelFilter::INFO,
            "per-crate directives are not read"
        );
    }

    #[test]
    fn the_runtime_reports_the_error_type_and_the_whole_message() {
        for err in [
            HandlerError::Malformed("x".into()),
            HandlerError::State(StateError::new(FailureKind::Throttled, "injected")),
            HandlerError::Publish(SinkError::new(FailureKind::Denied, "injected")),
            HandlerError::InFlight(2),
        ] {
            let (error_type, message) = (err.error_type(), err.to_string());
            let diagnostic = lambda_runtime::Diagnostic::from(Failure(err));
            assert_eq!(diagnostic.error_type, error_type);
            assert_eq!(diagnostic.error_message, message);
        }
    }
}
