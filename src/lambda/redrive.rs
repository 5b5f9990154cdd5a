//! Redrive: events that failed after their retries go back in through an SQS queue the function
//! consumes. The function's failure queue holds Lambda destination records (the event under
//! `requestPayload`), the rules' dead-letter queue the EventBridge events themselves; SQS's own
//! redrive (`aws sqs start-message-move-task`) moves either into its redrive queue, whose
//! messages reach the function as an SQS batch, beside the S3 path's log file notifications.
//! A message's body tells which it is, so one batch shape serves both queues' kinds.

use serde::Deserialize;
use serde_json::value::RawValue;

/// Whether an SQS message body is a redriven event (a CloudTrail event as EventBridge delivers
/// it, or a Lambda destination record carrying one) rather than an S3 notification: the event
/// has the `detail-type` of CloudTrail API calls and a `detail`, a destination record
/// `requestContext` and `requestPayload`. S3's own EventBridge notifications (`Object
/// Created`) have a `detail` too, but another `detail-type`; no S3, SNS or S3 test
/// notification has either pair.
pub fn is_redriven_event(body: &str) -> bool {
    #[derive(Deserialize)]
    struct Shape<'a> {
        #[serde(rename = "detail-type", borrow, default)]
        detail_type: Option<std::borrow::Cow<'a, str>>,
        #[serde(borrow, default)]
        detail: Option<&'a RawValue>,
        #[serde(rename = "requestContext", borrow, default)]
        request_context: Option<&'a RawValue>,
        #[serde(rename = "requestPayload", borrow, default)]
        request_payload: Option<&'a RawValue>,
    }
    match serde_json::from_str::<Shape>(body) {
        Ok(shape) => {
            (shape.detail_type.as_deref() == Some(crate::record::CLOUDTRAIL_API_CALL)
                && shape.detail.is_some())
                || (shape.request_context.is_some() && shape.request_payload.is_some())
        }
        // Not an object of that shape: the notification path reports what is wrong with it.
        Err(_) => false,
    }
}

/// Whether an SQS message body is the destination record of a failed heartbeat run (the
/// schedule's request under `requestPayload`): there is nothing to redo (the next run checks
/// every region again), so it is acknowledged rather than failed forever.
pub fn is_redriven_heartbeat(body: &str) -> bool {
    #[derive(Deserialize)]
    struct Shape<'a> {
        #[serde(rename = "requestContext", borrow)]
        _request_context: &'a RawValue,
        #[serde(rename = "requestPayload", borrow)]
        request_payload: &'a RawValue,
    }
    serde_json::from_str::<Shape>(body)
        .is_ok_and(|shape| crate::heartbeat::is_request(shape.request_payload.get()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_heartbeat_run_is_told_from_a_failed_event() {
        let heartbeat = r#"{"version":"1.0","requestContext":{"requestId":"r","condition":"RetriesExhausted"},"requestPayload":{"sesguard": "heartbeat"},"responsePayload":{"errorType":"sesguard.StateUnavailable"}}"#;
        assert!(is_redriven_heartbeat(heartbeat));
        assert!(is_redriven_event(heartbeat), "it comes by the redrive path");
        let event = include_str!("../../events/ses-GetAccount.json");
        let destination = format!(
            r#"{{"version":"1.0","requestContext":{{"requestId":"r"}},"requestPayload":{event},"responsePayload":null}}"#
        );
        assert!(!is_redriven_heartbeat(&destination));
        assert!(
            !is_redriven_heartbeat(r#"{"sesguard": "heartbeat"}"#),
            "not redriven"
        );
    }

    #[test]
    fn events_and_destination_records_are_told_from_s3_notifications() {
        let event = include_str!("../../events/ses-GetAccount.json");
        assert!(is_redriven_event(event));
        let destination = format!(
            r#"{{"version":"1.0","requestContext":{{"requestId":"r","condition":"RetriesExhausted"}},"requestPayload":{event},"responsePayload":null}}"#
        );
        assert!(is_redriven_event(&destination));
        for notification in [
            r#"{"Records":[{"eventSource":"aws:s3","s3":{"bucket":{"name":"b"},"object":{"key":"k"}}}]}"#,
            r#"{"Type":"Notification","Message":"{\"Records\":[]}"}"#,
            r#"{"Service":"Amazon S3","Event":"s3:TestEvent"}"#,
            r#"{"detail-type":"Object Created"}"#,
            r#"{"version":"0","detail-type":"Object Created","source":"aws.s3","detail":{"bucket":{"name":"b"},"object":{"key":"k"}}}"#,
            "not json",
            "[]",
        ] {
            assert!(!is_redriven_event(notification), "{notification}");
        }
    }
}
