//! AWS faults at the SDK client level (aws-smithy-mocks; no emulator needed): throttling, 5xx,
//! timeouts and a failed publish each make the invocation fail with an error marked transient,
//! so Lambda retries it; nothing is published past a failed state write; a configuration
//! fault is told apart (not transient); and the SDK's own retries absorb a short burst.
//!
//! That the retried invocation then publishes every signal exactly once, with no state left
//! that suppresses a later signal, needs a real table: `tests/aws.rs` shows it against moto,
//! with a fault injected before sending and after committing every call.

use std::time::Duration;

use aws_sdk_dynamodb::config::retry::RetryConfig;
use aws_sdk_dynamodb::config::timeout::TimeoutConfig;
use aws_sdk_dynamodb::error::ErrorMetadata;
use aws_sdk_dynamodb::operation::put_item::{PutItemError, PutItemOutput};
use aws_sdk_dynamodb::operation::update_item::{UpdateItemError, UpdateItemOutput};
use aws_sdk_dynamodb::types::error::{
    ProvisionedThroughputExceededException, ResourceNotFoundException,
};
use aws_sdk_sns::operation::publish::PublishOutput;
use aws_smithy_http_client::test_util::NeverClient;
use aws_smithy_mocks::{Rule, RuleMode, mock, mock_client};
use sesguard::Engine;
use sesguard::deliver::Counts;
use sesguard::lambda::{Handler, HandlerError};
use sesguard_lambda::aws::dynamodb::DynamoState;
use sesguard_lambda::aws::sns::SnsPublisher;

const TOPIC: &str = "arn:aws:sns:us-east-1:111122223333:sesguard-signals";
const TABLE: &str = "sesguard-state";
/// A long-term key calling GetAccount: `ses-discovery-long-term-key` and
/// `ses-enumeration-unseen-user` fire (on a fresh state).
const SAMPLE: &str = "../../events/ses-GetAccount.json";
const BACKOFF: Duration = Duration::from_millis(5);

fn sample() -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(SAMPLE);
    std::fs::read_to_string(&path).unwrap_or_else(|err| panic!("{}: {err}", path.display()))
}

/// Every DynamoDB write the state makes succeeds (an empty answer: no old item).
fn table_ok() -> [Rule; 2] {
    [
        mock!(aws_sdk_dynamodb::Client::put_item).then_output(|| PutItemOutput::builder().build()),
        mock!(aws_sdk_dynamodb::Client::update_item)
            .then_output(|| UpdateItemOutput::builder().build()),
    ]
}

fn dynamodb(rules: &[Rule]) -> aws_sdk_dynamodb::Client {
    // Standard retries (3 attempts, as deployed; a persistent fault outlasts them) with a short
    // backoff, so the tests do not wait seconds.
    mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, rules, |b| b
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(3)
                .with_initial_backoff(BACKOFF)
        ))
}

fn sns(rules: &[Rule]) -> aws_sdk_sns::Client {
    mock_client!(aws_sdk_sns, RuleMode::MatchAny, rules, |b| b.retry_config(
        aws_sdk_sns::config::retry::RetryConfig::standard()
            .with_max_attempts(3)
            .with_initial_backoff(BACKOFF)
    ))
}

fn publish_ok() -> Rule {
    mock!(aws_sdk_sns::Client::publish).then_output(|| {
        PublishOutput::builder()
            .message_id("00000000-0000-0000-0000-000000000001")
            .build()
    })
}

fn handler(
    dynamodb: aws_sdk_dynamodb::Client,
    sns: aws_sdk_sns::Client,
) -> Handler<DynamoState, SnsPublisher> {
    Handler::new(
        Engine::default(),
        DynamoState::new(dynamodb, TABLE),
        SnsPublisher::new(sns, TOPIC),
    )
}

async fn invoke(
    handler: &Handler<DynamoState, SnsPublisher>,
) -> (Result<(), HandlerError>, Counts) {
    let mut report = Counts::default();
    let result = handler.handle(&sample(), "req-1", &mut report).await;
    (result, report)
}

fn state_error(result: Result<(), HandlerError>) -> sesguard::state::StateError {
    match result {
        Err(HandlerError::State(err)) => err,
        other => panic!("expected a state error, got {other:?}"),
    }
}

/// The metadata the SDK's deserializer gives a modeled error (its code is what retries and
/// sesguard's classification read).
fn meta(code: &str) -> ErrorMetadata {
    ErrorMetadata::builder()
        .code(code)
        .message("injected")
        .build()
}

fn throughput_exceeded() -> ProvisionedThroughputExceededException {
    ProvisionedThroughputExceededException::builder()
        .message("injected")
        .meta(meta("ProvisionedThroughputExceededException"))
        .build()
}

/// A DynamoDB JSON-protocol error answer.
fn dynamodb_error(status: u16, error_type: &str) -> Rule {
    let body = format!(
        r#"{{"__type":"com.amazonaws.dynamodb.v20120810#{error_type}","message":"injected"}}"#
    );
    mock!(aws_sdk_dynamodb::Client::put_item)
        .sequence()
        .http_status(status, Some(body))
        .repeatedly()
        .build()
}

#[tokio::test]
async fn a_throttled_table_fails_the_invocation_as_transient_and_publishes_nothing() {
    let put = mock!(aws_sdk_dynamodb::Client::put_item)
        .then_error(|| PutItemError::ProvisionedThroughputExceededException(throughput_exceeded()));
    let update = mock!(aws_sdk_dynamodb::Client::update_item).then_error(|| {
        UpdateItemError::ProvisionedThroughputExceededException(throughput_exceeded())
    });
    let publish = publish_ok();
    let handler = handler(
        dynamodb(&[put.clone(), update.clone()]),
        sns(std::slice::from_ref(&publish)),
    );
    let (result, report) = invoke(&handler).await;
    let err = state_error(result);
    assert!(err.is_transient(), "{err:?}");
    assert!(
        err.message.contains("ProvisionedThroughputExceeded") || err.message.contains("injected"),
        "{err:?}"
    );
    assert_eq!(report.state_errors, 1);
    assert_eq!(
        publish.num_calls(),
        0,
        "nothing is published past a failed state write"
    );
    // The SDK retried the first write before giving up; nothing after it was attempted.
    assert_eq!(put.num_calls(), 3);
    assert_eq!(update.num_calls(), 0);
}

#[tokio::test]
async fn a_table_answering_5xx_fails_the_invocation_as_transient() {
    for (status, error_type) in [
        (500, "InternalServerError"),
        (503, "ServiceUnavailable"),
        // No error type the SDK knows: the status alone says the service failed.
        (502, "SomethingNew"),
    ] {
        let put = dynamodb_error(status, error_type);
        let publish = publish_ok();
        let handler = handler(
            dynamodb(std::slice::from_ref(&put)),
            sns(std::slice::from_ref(&publish)),
        );
        let (result, _) = invoke(&handler).await;
        let err = state_error(result);
        assert!(err.is_transient(), "{status} {error_type}: {err:?}");
        assert_eq!(put.num_calls(), 3, "{status}: retried by the SDK first");
        assert_eq!(publish.num_calls(), 0);
    }
}

#[tokio::test]
async fn a_table_that_never_answers_times_out_as_transient() {
    let never = NeverClient::new();
    let client = aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::Config::builder()
            .with_test_defaults_v2()
            .http_client(never.clone())
            .retry_config(
                RetryConfig::standard()
                    .with_max_attempts(2)
                    .with_initial_backoff(BACKOFF),
            )
            .timeout_config(
                TimeoutConfig::builder()
                    .operation_attempt_timeout(Duration::from_millis(100))
                    .build(),
            )
            .build(),
    );
    let publish = publish_ok();
    let handler = handler(client, sns(std::slice::from_ref(&publish)));
    let (result, _) = invoke(&handler).await;
    let err = state_error(result);
    assert!(err.is_transient(), "{err:?}");
    assert_eq!(never.num_calls(), 2, "each attempt reached the network");
    assert_eq!(publish.num_calls(), 0);
}

#[tokio::test]
async fn a_missing_table_fails_the_invocation_but_is_not_transient() {
    let put = mock!(aws_sdk_dynamodb::Client::put_item).then_error(|| {
        PutItemError::ResourceNotFoundException(
            ResourceNotFoundException::builder()
                .message("Requested resource not found")
                .meta(meta("ResourceNotFoundException"))
                .build(),
        )
    });
    let handler = handler(dynamodb(std::slice::from_ref(&put)), sns(&[publish_ok()]));
    let (result, _) = invoke(&handler).await;
    let err = state_error(result);
    assert!(!err.is_transient(), "{err:?}");
    assert_eq!(put.num_calls(), 1, "not retried by the SDK");
}

#[tokio::test]
async fn a_failed_publish_fails_the_invocation_as_transient() {
    let table = table_ok();
    let publish = mock!(aws_sdk_sns::Client::publish)
        .sequence()
        .http_status(
            500,
            Some(
                "<ErrorResponse><Error><Type>Receiver</Type><Code>InternalError</Code>\
                 <Message>injected</Message></Error></ErrorResponse>"
                    .into(),
            ),
        )
        .repeatedly()
        .build();
    let handler = handler(dynamodb(&table), sns(std::slice::from_ref(&publish)));
    let (result, report) = invoke(&handler).await;
    match result {
        Err(HandlerError::Publish(err)) => assert!(err.is_transient(), "{err:?}"),
        other => panic!("expected a publish error, got {other:?}"),
    }
    assert_eq!(report.publish_errors, 1);
    assert!(report.signals.is_empty(), "{report:?}");
    assert_eq!(publish.num_calls(), 3, "retried by the SDK first");
}

#[tokio::test]
async fn sdk_retries_absorb_a_short_burst_and_every_signal_is_published() {
    let put = mock!(aws_sdk_dynamodb::Client::put_item)
        .sequence()
        .error(|| PutItemError::ProvisionedThroughputExceededException(throughput_exceeded()))
        .http_status(503, None)
        .output(|| PutItemOutput::builder().build())
        .repeatedly()
        .build();
    let update = mock!(aws_sdk_dynamodb::Client::update_item)
        .then_output(|| UpdateItemOutput::builder().build());
    let publish = mock!(aws_sdk_sns::Client::publish)
        .sequence()
        .http_status(503, None)
        .output(|| {
            PublishOutput::builder()
                .message_id("00000000-0000-0000-0000-000000000002")
                .build()
        })
        .repeatedly()
        .build();
    let handler = handler(
        dynamodb(&[put.clone(), update]),
        sns(std::slice::from_ref(&publish)),
    );
    let (result, report) = invoke(&handler).await;
    assert!(result.is_ok(), "{result:?}");
    let published: u64 = report.signal_count();
    assert_eq!(published, 2, "{report:?}");
    assert_eq!(
        report.signals.keys().copied().collect::<Vec<_>>(),
        ["ses-discovery-long-term-key", "ses-enumeration-unseen-user"]
    );
    // Two signals, the first publish retried once.
    assert_eq!(publish.num_calls(), 3);
    assert!(put.num_calls() >= 3, "the throttled write was retried");
}
