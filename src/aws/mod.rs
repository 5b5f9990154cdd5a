//! AWS adapters: the DynamoDB State and the SNS sink. The only place the AWS SDK appears.

pub mod calls;
pub mod dynamodb;
pub mod sns;

use aws_smithy_runtime_api::client::result::SdkError;

/// Whether an SDK failure may succeed on retry (throttling, 5xx, timeouts, network): the
/// Lambda then returns an error so the invocation is retried.
pub(crate) fn is_transient<E, R>(err: &SdkError<E, R>, code: Option<&str>) -> bool {
    match err {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            true
        }
        SdkError::ServiceError(_) => matches!(
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
        ),
        _ => false,
    }
}
