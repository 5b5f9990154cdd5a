//! AWS adapters: the DynamoDB State and the SNS sink. The only place the AWS SDK appears.

pub mod calls;
pub mod dynamodb;
pub mod sns;

use aws_smithy_http_client::tls;
use aws_smithy_runtime_api::client::http::SharedHttpClient;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;

/// The HTTPS client of every AWS call: rustls with ring and the system's root certificates.
/// The SDK's default client would use aws-lc, which adds megabytes to the binary and an entropy
/// self-test to every cold start (BENCHMARKS.md).
pub fn http_client() -> SharedHttpClient {
    aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(tls::rustls_provider::CryptoMode::Ring))
        .build_https()
}

/// The SDK configuration from the environment (credentials, region, `AWS_ENDPOINT_URL*`), with
/// [`http_client`].
pub async fn sdk_config() -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(http_client())
        .load()
        .await
}
use aws_smithy_runtime_api::client::result::SdkError;

/// Whether an SDK failure may succeed on retry (throttling, 5xx, timeouts, network). Every
/// failure makes the invocation fail, so Lambda retries it; this says which ones are expected
/// to pass then, and which need a person (a missing table, a denied permission).
pub(crate) fn is_transient<E>(err: &SdkError<E, HttpResponse>, code: Option<&str>) -> bool {
    match err {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            true
        }
        // A 5xx or 429 is the service's failure, whatever error code (if any) it carries.
        SdkError::ServiceError(context) => {
            let status = context.raw().status().as_u16();
            status >= 500
                || status == 429
                || matches!(
                    code,
                    Some(
                        "ThrottlingException"
                            | "ProvisionedThroughputExceededException"
                            | "RequestLimitExceeded"
                            | "InternalServerError"
                            | "InternalFailure"
                            | "ServiceUnavailable"
                            | "Throttling"
                            | "TransactionConflictException"
                    )
                )
        }
        _ => false,
    }
}
