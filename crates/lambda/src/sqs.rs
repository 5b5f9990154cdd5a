//! The SQS path's invocation shape: an `SqsEvent` whose messages name log files in S3 in, a
//! partial batch response (`batchItemFailures`) out: only the failed messages are delivered
//! again (the event source mapping has `ReportBatchItemFailures`).

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use sesguard::deliver::{Counts, Sink};
use sesguard::lambda::{Handler, Message, ObjectStore};
use sesguard::state::{HeartbeatStore, State};

/// The SQS batch in `payload`, if it is one: every record from `aws:sqs`. The same binary
/// serves EventBridge events, which never have that shape (an EventBridge envelope has no
/// `Records`; a CloudTrail record's `eventSource` is a `*.amazonaws.com` name).
pub fn sqs_batch(payload: &str) -> Option<SqsEvent> {
    // Cheap test first: EventBridge events (the hot path) are not parsed twice.
    if !payload.contains("\"aws:sqs\"") {
        return None;
    }
    let event: SqsEvent = serde_json::from_str(payload).ok()?;
    let all_sqs = !event.records.is_empty()
        && event
            .records
            .iter()
            .all(|m| m.event_source.as_deref() == Some("aws:sqs"));
    all_sqs.then_some(event)
}

/// Runs one SQS batch through the handler; the response names the messages that failed.
pub async fn handle_batch<S: State + HeartbeatStore, K: Sink, O: ObjectStore>(
    handler: &Handler<S, K>,
    store: &O,
    event: &SqsEvent,
    counts: &mut Counts,
) -> SqsBatchResponse {
    let messages: Vec<Message<'_>> = event
        .records
        .iter()
        .map(|m| Message {
            id: m.message_id.as_deref().unwrap_or(""),
            body: m.body.as_deref().unwrap_or(""),
        })
        .collect();
    let failures = handler.handle_messages(store, &messages, counts).await;
    let mut response = SqsBatchResponse::default();
    for failure in failures {
        let mut item = BatchItemFailure::default();
        item.item_identifier = failure.id;
        response.batch_item_failures.push(item);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_batch_of_sqs_messages_takes_the_sqs_path() {
        let sqs = r#"{"Records":[{"messageId":"1","receiptHandle":"r","body":"{}","attributes":{},"messageAttributes":{},"md5OfBody":"x","eventSource":"aws:sqs","eventSourceARN":"arn:aws:sqs:us-east-1:1:q","awsRegion":"us-east-1"}]}"#;
        let event = sqs_batch(sqs).expect("an SQS batch");
        assert_eq!(event.records[0].message_id.as_deref(), Some("1"));
        // A CloudTrail log file whose record names aws:sqs somewhere, an EventBridge envelope,
        // a mixed list: the EventBridge path.
        for other in [
            r#"{"Records":[{"eventSource":"ses.amazonaws.com","requestParameters":{"x":"aws:sqs"}}]}"#,
            r#"{"Records":[{"eventSource":"aws:sqs"},{"eventSource":"ses.amazonaws.com"}]}"#,
            r#"{"version":"0","detail-type":"AWS API Call via CloudTrail","detail":{"eventSource":"aws:sqs"}}"#,
            r#"{"Records":[]}"#,
        ] {
            assert!(sqs_batch(other).is_none(), "{other}");
        }
    }
}
