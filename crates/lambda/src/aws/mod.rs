//! AWS adapters: the DynamoDB State, the SNS Sink, the Security Hub import, the heartbeat's SES
//! canary call and the S3 object store. The only place the AWS SDK appears.

pub mod calls;
pub mod dynamodb;
pub mod s3;
pub mod security_hub;
pub mod ses;
pub mod signed;
pub mod sns;

use std::time::Duration;

use aws_config::timeout::TimeoutConfig;
use aws_smithy_http_client::tls;
use aws_smithy_runtime_api::client::http::SharedHttpClient;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use sesguard::model::FailureKind;

/// The HTTPS client of every AWS call: rustls with ring and the system's root certificates.
/// The SDK's default client would use aws-lc, which adds megabytes to the binary and an entropy
/// self-test to every cold start (BENCHMARKS.md).
pub fn http_client() -> SharedHttpClient {
    aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https()
}

/// Timeouts of every AWS call. The SDK sets none but connecting: a stalled call would hang until
/// the function's timeout (template: 30 s) instead of being retried. DynamoDB and SNS answer in
/// milliseconds in-region; with 3 attempts an operation gives up within [`OPERATION_TIMEOUT`],
/// and the invocation fails and is retried by Lambda.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(3);
pub const OPERATION_TIMEOUT: Duration = Duration::from_secs(8);

pub fn timeouts() -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .operation_attempt_timeout(ATTEMPT_TIMEOUT)
        .operation_timeout(OPERATION_TIMEOUT)
        .build()
}

/// The SDK configuration from the environment (credentials, region, `AWS_ENDPOINT_URL*`), with
/// [`http_client`] and [`timeouts`].
pub async fn sdk_config() -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(http_client())
        .timeout_config(timeouts())
        .load()
        .await
}

/// An SDK error for a message: the service's own message or code, else the whole chain of
/// causes (a bare "dispatch failure" says nothing of the timeout or refused connection behind).
pub(crate) fn describe<E>(err: &SdkError<E, HttpResponse>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    err.message()
        .or(err.code())
        .map_or_else(|| DisplayErrorContext(err).to_string(), str::to_owned)
}

/// What kind of failure an SDK error is. Every failure makes the invocation fail, so Lambda
/// retries it; the kind says whether the retry is expected to pass (throttling, 5xx, timeouts,
/// network) or needs a person (a missing table, a denied permission). This is the one place
/// that reads an AWS error: callers decide on the kind.
pub(crate) fn failure_kind<E>(err: &SdkError<E, HttpResponse>) -> FailureKind
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match err {
        SdkError::TimeoutError(_) => FailureKind::TimedOut,
        SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => FailureKind::Unavailable,
        SdkError::ServiceError(context) => {
            let status = context.raw().status().as_u16();
            match err.code() {
                Some(
                    "ThrottlingException"
                    | "ProvisionedThroughputExceededException"
                    | "RequestLimitExceeded"
                    | "Throttling"
                    | "ThrottledException"
                    | "SlowDown",
                ) => FailureKind::Throttled,
                Some(
                    "InternalServerError"
                    | "InternalFailure"
                    | "ServiceUnavailable"
                    | "TransactionConflictException",
                ) => FailureKind::Unavailable,
                // A 5xx or 429 is the service's failure, whatever error code (if any) it carries.
                _ if status == 429 => FailureKind::Throttled,
                _ if status >= 500 => FailureKind::Unavailable,
                Some(
                    "ResourceNotFoundException"
                    | "NotFound"
                    | "NotFoundException"
                    | "NoSuchKey"
                    | "NoSuchBucket",
                ) => FailureKind::NotFound,
                Some(code)
                    if code.starts_with("AccessDenied")
                        || code.starts_with("KMS")
                        || code == "AuthorizationError"
                        || code == "UnrecognizedClientException"
                        || code == "InvalidSignatureException" =>
                {
                    FailureKind::Denied
                }
                _ if status == 403 => FailureKind::Denied,
                // DynamoDB names no code for its item and expression size limits: a
                // ValidationException whose message speaks of the size.
                Some("ValidationException")
                    if err.message().is_some_and(|m| m.contains("size")) =>
                {
                    FailureKind::TooLarge
                }
                _ => FailureKind::Invalid,
            }
        }
        _ => FailureKind::Internal,
    }
}
