//! Redrive against moto (SQS, DynamoDB, SNS): events that failed after their retries wait in the
//! function's failure queue (Lambda destination records, the event under `requestPayload`) and
//! in the rules' dead-letter queue (the EventBridge events themselves). They are moved into a
//! redrive queue whose dead-letter queue is the queue they came from, as template.yaml sets it
//! up; the batch the event source mapping would hand over runs through the handler with the
//! real DynamoDB state and SNS publisher.
//!
//! moto 5 has no `StartMessageMoveTask`: the move is done here as SQS does it (receive from the
//! source, send the body to the destination, delete from the source). What moto does model is
//! the redrive queue's `RedrivePolicy`: a message that failed `maxReceiveCount` times is moved
//! back to the queue it came from on its next receive.
//!
//! Skipped without `SESGUARD_TEST_ENDPOINT` (failing instead under `SESGUARD_REQUIRE_EMULATORS`),
//! as crates/lambda/tests/aws.rs.

mod support;
use support::*;

use serde_json::{Value, json};
use sesguard::Engine;
use sesguard::config::{Config, Overrides};
use sesguard::deliver::Counts;
use sesguard::lambda::Handler;
use sesguard::scan::scan_text;
use sesguard_lambda::aws::dynamodb::DynamoState;
use sesguard_lambda::aws::s3::S3Objects;
use sesguard_lambda::aws::sns::SnsPublisher;
use sesguard_lambda::sqs::{handle_batch, sqs_batch};

/// `aws sqs start-message-move-task --source-arn <from> --destination-arn <to>`, as SQS does it.
async fn move_messages(sqs: &aws_sdk_sqs::Client, from: &Queue, to: &Queue) -> usize {
    let messages = receive_all(sqs, from).await;
    for (handle, body) in &messages {
        sqs.send_message()
            .queue_url(&to.url)
            .message_body(body)
            .send()
            .await
            .expect("send");
        sqs.delete_message()
            .queue_url(&from.url)
            .receipt_handle(handle)
            .send()
            .await
            .expect("delete");
    }
    messages.len()
}

/// What the event source mapping does: one receive of the redrive queue handed to the function
/// as an SQS event, the messages it did not report as failed deleted. Returns the bodies of the
/// failed messages.
async fn consume(
    sqs: &aws_sdk_sqs::Client,
    queue: &Queue,
    handler: &Handler<DynamoState, SnsPublisher>,
    store: &S3Objects,
) -> Vec<String> {
    let batch = sqs
        .receive_message()
        .queue_url(&queue.url)
        .max_number_of_messages(10)
        .send()
        .await
        .expect("receive")
        .messages
        .unwrap_or_default();
    if batch.is_empty() {
        // The mapping invokes the function only with messages.
        return Vec::new();
    }
    let records: Vec<Value> = batch
        .iter()
        .map(|m| {
            json!({
                "messageId": m.message_id(),
                "receiptHandle": m.receipt_handle(),
                "body": m.body(),
                "attributes": {"ApproximateReceiveCount": "1"},
                "messageAttributes": {},
                "md5OfBody": m.md5_of_body(),
                "eventSource": "aws:sqs",
                "eventSourceARN": queue.arn,
                "awsRegion": "us-east-1",
            })
        })
        .collect();
    let payload = json!({ "Records": records }).to_string();
    let event = sqs_batch(&payload).expect("an SQS batch");
    let mut counts = Counts::default();
    let response = handle_batch(handler, store, &event, &mut counts).await;
    let failed: Vec<&str> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect();
    let mut failed_bodies = Vec::new();
    for m in &batch {
        let id = m.message_id().unwrap_or_default();
        if failed.contains(&id) {
            failed_bodies.push(m.body().unwrap_or_default().to_owned());
        } else if let Some(handle) = m.receipt_handle() {
            sqs.delete_message()
                .queue_url(&queue.url)
                .receipt_handle(handle)
                .send()
                .await
                .expect("delete");
        }
    }
    failed_bodies
}

/// The signals published so far (each SNS message's `Message`), sorted.
async fn published(sqs: &aws_sdk_sqs::Client, inbox: &Queue) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for (handle, body) in receive_all(sqs, inbox).await {
        let envelope: Value = serde_json::from_str(&body).expect("envelope");
        out.push(envelope["Message"].as_str().unwrap_or_default().to_owned());
        sqs.delete_message()
            .queue_url(&inbox.url)
            .receipt_handle(handle)
            .send()
            .await
            .expect("delete");
    }
    out.sort();
    out
}

fn engine() -> Engine {
    Engine::new(Config::load(None, &Overrides::default()).expect("config"))
}

/// A Lambda destination record of a failed asynchronous invocation with `event`.
fn destination_record(event: &str) -> String {
    format!(
        r#"{{"version":"1.0","timestamp":"2026-03-02T10:00:00.000Z","requestContext":{{"requestId":"{}","functionArn":"arn:aws:lambda:us-east-1:111122223333:function:sesguard:$LATEST","condition":"RetriesExhausted","approximateInvokeCount":3}},"requestPayload":{event},"responseContext":{{"statusCode":200,"executedVersion":"$LATEST","functionError":"Unhandled"}},"responsePayload":{{"errorType":"sesguard.StateUnavailable","errorMessage":"DynamoDB UpdateItem: throttled"}}}}"#,
        unique("request")
    )
}

#[tokio::test]
async fn redriven_events_give_their_signals_once_and_what_still_fails_goes_back() {
    let Some(endpoint) = endpoint() else { return };
    let sdk = sdk(&endpoint).await;
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let (publisher, inbox) = topic(&sdk, "sesguard-redrive-signals").await;
    let handler = Handler::new(
        engine(),
        table(&sdk, "sesguard-redrive-state").await,
        publisher,
    );
    let store = S3Objects::new(aws_sdk_s3::Client::new(&sdk));

    // The function failed on two events (the failure queue: destination records), EventBridge
    // could not deliver a third (the rule dead-letter queue: the event itself); one more
    // destination record carries an event that can never be evaluated.
    let failure_queue = queue(&sqs, "sesguard-failure", None).await;
    let rule_dlq = queue(&sqs, "sesguard-rule-dlq", None).await;
    let failure_redrive = queue(&sqs, "sesguard-failure-redrive", Some(&failure_queue)).await;
    let rule_redrive = queue(&sqs, "sesguard-rule-redrive", Some(&rule_dlq)).await;
    let failed = ["ses-GetAccount.json", "ses-DeleteIdentity.json"].map(sample);
    let undelivered = sample("iam-CreateUser-ses-smtp-user.json");
    let mut broken: Value = serde_json::from_str(&failed[0]).expect("json");
    broken["detail"]["eventTime"] = json!(17);
    let broken = destination_record(&broken.to_string());
    for body in failed
        .iter()
        .map(|e| destination_record(e))
        .chain([broken.clone()])
    {
        sqs.send_message()
            .queue_url(&failure_queue.url)
            .message_body(body)
            .send()
            .await
            .expect("send");
    }
    sqs.send_message()
        .queue_url(&rule_dlq.url)
        .message_body(&undelivered)
        .send()
        .await
        .expect("send");

    // What the CLI gives for the same three events: the signals redrive must publish.
    let all = [failed[0].as_str(), failed[1].as_str(), undelivered.as_str()].join("\n");
    let (collected, _) =
        tokio::task::spawn_blocking(move || scan_text(&engine(), "events", all.as_bytes()))
            .await
            .expect("scan");
    let mut expected: Vec<String> = collected.signals.iter().map(|s| s.to_json()).collect();
    expected.sort();
    assert!(expected.len() >= 3, "{expected:?}");

    // One command per queue moves its messages into its redrive queue; the function takes them.
    assert_eq!(
        move_messages(&sqs, &failure_queue, &failure_redrive).await,
        3
    );
    assert_eq!(move_messages(&sqs, &rule_dlq, &rule_redrive).await, 1);
    let still_failing = consume(&sqs, &failure_redrive, &handler, &store).await;
    assert_eq!(
        still_failing,
        std::slice::from_ref(&broken),
        "only the broken event fails"
    );
    assert!(
        consume(&sqs, &rule_redrive, &handler, &store)
            .await
            .is_empty()
    );
    assert_eq!(published(&sqs, &inbox).await, expected);

    // The broken one, received again, has failed maxReceiveCount times: SQS moves it back to
    // the failure queue, as it was.
    assert!(
        consume(&sqs, &failure_redrive, &handler, &store)
            .await
            .is_empty()
    );
    let back: Vec<String> = receive_all(&sqs, &failure_queue)
        .await
        .into_iter()
        .map(|(_, body)| body)
        .collect();
    assert_eq!(back, [broken]);

    // The same events redriven a second time (a redrive run twice): nothing is published again.
    for body in failed.iter().map(|e| destination_record(e)) {
        sqs.send_message()
            .queue_url(&failure_redrive.url)
            .message_body(body)
            .send()
            .await
            .expect("send");
    }
    assert!(
        consume(&sqs, &failure_redrive, &handler, &store)
            .await
            .is_empty()
    );
    assert_eq!(published(&sqs, &inbox).await, Vec::<String>::new());
}
