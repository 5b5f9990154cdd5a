//! sesguard as an AWS Lambda: the AWS adapters ([`aws`]: the DynamoDB State, the SNS Sink, the
//! one HTTPS client) and the runtime's error type ([`Failure`]). The handler itself is
//! `sesguard::lambda`; the binary (src/main.rs) only wires them.

pub mod aws;

use sesguard::lambda::HandlerError;

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
