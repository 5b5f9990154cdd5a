//! AWS adapters: the DynamoDB State and the SNS sink. The only place the AWS SDK appears.

pub mod calls;
pub mod dynamodb;
pub mod sns;

use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
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
