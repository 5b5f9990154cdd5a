//! S3 object-created notifications, as the trail bucket sends them: which log files to read.
//!
//! Pure functions, no AWS SDK: the Lambda's SQS path reads them, and so can any tool that lists
//! or queues the trail's objects. Accepted shapes (the SQS message body, or a part of it):
//! - an S3 event (`{"Records":[{"eventSource":"aws:s3","eventName":"ObjectCreated:Put","s3":…}]}`),
//!   sent by the bucket straight to SQS, or through SNS with raw message delivery;
//! - the same inside an SNS notification (`{"Type":"Notification","Message":"<S3 event>"}`);
//! - an EventBridge "Object Created" event (`source` `aws.s3`, `detail.bucket.name`,
//!   `detail.object.key`);
//! - CloudTrail's own SNS notification of a delivered log file
//!   (`{"s3Bucket":"…","s3ObjectKey":["…"]}`, inside an SNS notification);
//! - S3's `s3:TestEvent`, sent once when notifications are configured (nothing to read).
//!
//! Keys of S3 events are URL-encoded, form style (`+` is a space, `%2B` a plus); EventBridge
//! events and CloudTrail's notifications carry the key as it is. Digest files
//! (`…/CloudTrail-Digest/…`) and CloudTrail Insights files (`…/CloudTrail-Insight/…`) hold no
//! API calls and are skipped.

use serde_json::Value;

use crate::text::truncate;

/// One object in a bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectRef {
    pub bucket: String,
    /// The key as S3 knows it (decoded).
    pub key: String,
    /// The size the notification gives, if any.
    pub size: Option<u64>,
}

impl ObjectRef {
    /// `s3://bucket/key`, the name records and problems of the object are reported under.
    pub fn url(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.key)
    }
}

/// What one notification asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// A CloudTrail log file to read.
    LogFile(ObjectRef),
    /// An object that holds no API calls, or an event other than a creation: nothing to read.
    Ignored { object: ObjectRef, reason: Ignored },
    /// S3's test message, or an SNS subscription message: nothing to read.
    Test,
}

/// Why a notified object is not read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ignored {
    /// A CloudTrail digest file (hashes and signatures of log files).
    Digest,
    /// A CloudTrail Insights file (unusual activity summaries, not API calls).
    Insight,
    /// A folder marker (a key ending in `/`).
    Folder,
    /// An S3 event other than `ObjectCreated:*` (a deletion, a restore, …).
    NotCreated,
}

impl Ignored {
    pub fn as_str(self) -> &'static str {
        match self {
            Ignored::Digest => "CloudTrail digest file",
            Ignored::Insight => "CloudTrail Insights file",
            Ignored::Folder => "folder marker",
            Ignored::NotCreated => "not an object creation",
        }
    }
}

/// A message that is not a notification sesguard understands.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotificationError {
    #[error("notification is not JSON: {0}")]
    Syntax(String),
    #[error(
        "not an S3 object-created notification (S3 event, through SNS or from EventBridge) nor a CloudTrail SNS notification: {0}"
    )]
    Unrecognized(String),
    #[error("object key is not valid URL-encoded UTF-8: {0}")]
    Key(String),
}

/// The objects one message body (SQS, or SNS's `Message`) names, in order.
pub fn parse(body: &str) -> Result<Vec<Notice>, NotificationError> {
    let value: Value = serde_json::from_str(body)
        .map_err(|err| NotificationError::Syntax(crate::text::describe(&err)))?;
    notices(&value, true)
}

fn notices(value: &Value, may_be_sns: bool) -> Result<Vec<Notice>, NotificationError> {
    let unrecognized = |what: &str| Err(NotificationError::Unrecognized(what.to_owned()));
    let Some(object) = value.as_object() else {
        return unrecognized("not a JSON object");
    };
    if let Some(records) = object.get("Records") {
        let Some(records) = records.as_array() else {
            return unrecognized("Records is not a list");
        };
        return records.iter().map(s3_record).collect();
    }
    if object.get("Event").and_then(Value::as_str) == Some("s3:TestEvent") {
        return Ok(vec![Notice::Test]);
    }
    if may_be_sns && let Some(kind) = object.get("Type").and_then(Value::as_str) {
        return match kind {
            "Notification" => {
                let Some(message) = object.get("Message").and_then(Value::as_str) else {
                    return unrecognized("SNS notification without a Message");
                };
                let inner: Value = serde_json::from_str(message).map_err(|err| {
                    NotificationError::Syntax(format!(
                        "SNS Message: {}",
                        crate::text::describe(&err)
                    ))
                })?;
                notices(&inner, false)
            }
            // Sent when a queue subscribes to a topic of another account; confirming it is the
            // operator's step, not the function's.
            "SubscriptionConfirmation" | "UnsubscribeConfirmation" => Ok(vec![Notice::Test]),
            other => unrecognized(&format!("SNS message of type {}", truncate(other, 40))),
        };
    }
    if object.get("detail-type").is_some() {
        return eventbridge(object);
    }
    if let (Some(bucket), Some(keys)) = (object.get("s3Bucket"), object.get("s3ObjectKey")) {
        let (Some(bucket), Some(keys)) = (bucket.as_str(), keys.as_array()) else {
            return unrecognized("CloudTrail notification without s3Bucket or s3ObjectKey list");
        };
        return keys
            .iter()
            .map(|key| match key.as_str() {
                Some(key) => Ok(classify(ObjectRef {
                    bucket: bucket.to_owned(),
                    key: key.to_owned(),
                    size: None,
                })),
                None => Err(NotificationError::Unrecognized(
                    "s3ObjectKey holds a key that is not a string".to_owned(),
                )),
            })
            .collect();
    }
    unrecognized("no Records, detail-type, s3Bucket or s3:TestEvent")
}

/// One record of an S3 event.
fn s3_record(record: &Value) -> Result<Notice, NotificationError> {
    let unrecognized = |what: &str| Err(NotificationError::Unrecognized(what.to_owned()));
    if record.get("eventSource").and_then(Value::as_str) != Some("aws:s3") {
        return unrecognized("a Records entry whose eventSource is not aws:s3");
    }
    let s3 = &record["s3"];
    let (Some(bucket), Some(key)) = (s3["bucket"]["name"].as_str(), s3["object"]["key"].as_str())
    else {
        return unrecognized("S3 event record without s3.bucket.name or s3.object.key");
    };
    let object = ObjectRef {
        bucket: bucket.to_owned(),
        key: decode_key(key)?,
        size: s3["object"]["size"].as_u64(),
    };
    let name = record
        .get("eventName")
        .and_then(Value::as_str)
        .unwrap_or("");
    if !name.starts_with("ObjectCreated:") {
        return Ok(Notice::Ignored {
            object,
            reason: Ignored::NotCreated,
        });
    }
    Ok(classify(object))
}

/// An EventBridge event from S3.
fn eventbridge(event: &serde_json::Map<String, Value>) -> Result<Vec<Notice>, NotificationError> {
    let source = event.get("source").and_then(Value::as_str);
    let detail = event.get("detail").unwrap_or(&Value::Null);
    let (Some("aws.s3"), Some(bucket), Some(key)) = (
        source,
        detail["bucket"]["name"].as_str(),
        detail["object"]["key"].as_str(),
    ) else {
        return Err(NotificationError::Unrecognized(
            "EventBridge event not from aws.s3, or without detail.bucket.name and detail.object.key"
                .to_owned(),
        ));
    };
    let object = ObjectRef {
        bucket: bucket.to_owned(),
        key: key.to_owned(),
        size: detail["object"]["size"].as_u64(),
    };
    if event.get("detail-type").and_then(Value::as_str) != Some("Object Created") {
        return Ok(vec![Notice::Ignored {
            object,
            reason: Ignored::NotCreated,
        }]);
    }
    Ok(vec![classify(object)])
}

/// A created object: a log file, or one of the files CloudTrail writes beside them.
pub fn classify(object: ObjectRef) -> Notice {
    match not_a_log_file(&object.key) {
        Some(reason) => Notice::Ignored { object, reason },
        None => Notice::LogFile(object),
    }
}

/// Why a key of a trail bucket holds no API calls, if it does not: a folder, a digest file or an
/// Insights file, by the folder CloudTrail writes it in (compared ignoring case, as `scan`
/// always has). One test for the Lambda's notifications and `scan s3://`'s listing.
pub fn not_a_log_file(key: &str) -> Option<Ignored> {
    if key.ends_with('/') {
        return Some(Ignored::Folder);
    }
    key.split('/').find_map(|part| {
        if part.eq_ignore_ascii_case("CloudTrail-Digest") {
            Some(Ignored::Digest)
        } else if part.eq_ignore_ascii_case("CloudTrail-Insight") {
            Some(Ignored::Insight)
        } else {
            None
        }
    })
}

/// An S3 event's key as S3 knows it: form URL-decoded (`+` is a space).
pub fn decode_key(key: &str) -> Result<String, NotificationError> {
    let spaced = key.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8()
        .map(|key| key.into_owned())
        .map_err(|_| NotificationError::Key(truncate(key, 200)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "AWSLogs/o-abc/111122223333/CloudTrail/us-east-1/2026/03/02/111122223333_CloudTrail_us-east-1_20260302T1000Z_x.json.gz";

    fn s3_event(event: &str, key: &str) -> String {
        serde_json::json!({"Records": [{
            "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
            "eventTime": "2026-03-02T10:05:00.000Z", "eventName": event,
            "s3": {"s3SchemaVersion": "1.0", "bucket": {"name": "trail", "arn": "arn:aws:s3:::trail"},
                   "object": {"key": key, "size": 1234, "eTag": "x", "sequencer": "0A"}}
        }]})
        .to_string()
    }

    fn log(key: &str) -> Notice {
        Notice::LogFile(ObjectRef {
            bucket: "trail".into(),
            key: key.into(),
            size: Some(1234),
        })
    }

    #[test]
    fn a_direct_s3_event_names_the_object_with_its_key_decoded() {
        assert_eq!(
            parse(&s3_event("ObjectCreated:Put", KEY)),
            Ok(vec![log(KEY)])
        );
        assert_eq!(
            parse(&s3_event("ObjectCreated:Put", "a+b%2Bc%20d%3A.json.gz")),
            Ok(vec![log("a b+c d:.json.gz")])
        );
        assert!(matches!(
            parse(&s3_event("ObjectCreated:Put", "bad%FF")),
            Err(NotificationError::Key(_))
        ));
    }

    #[test]
    fn an_s3_event_inside_an_sns_notification_gives_the_same_objects() {
        let sns = serde_json::json!({
            "Type": "Notification", "MessageId": "m", "TopicArn": "arn:aws:sns:us-east-1:1:t",
            "Subject": "Amazon S3 Notification", "Message": s3_event("ObjectCreated:Put", KEY),
        })
        .to_string();
        assert_eq!(parse(&sns), Ok(vec![log(KEY)]));
        // SNS inside SNS is no shape anyone sends.
        let nested = serde_json::json!({"Type": "Notification", "Message": sns}).to_string();
        assert!(matches!(
            parse(&nested),
            Err(NotificationError::Unrecognized(_))
        ));
    }

    #[test]
    fn an_eventbridge_object_created_event_names_its_object_as_it_is() {
        let event = serde_json::json!({
            "version": "0", "id": "1", "detail-type": "Object Created", "source": "aws.s3",
            "account": "111122223333", "time": "2026-03-02T10:05:00Z", "region": "us-east-1",
            "resources": ["arn:aws:s3:::trail"],
            "detail": {"version": "0", "bucket": {"name": "trail"},
                       "object": {"key": "a+b.json.gz", "size": 1234}, "reason": "PutObject"}
        });
        assert_eq!(parse(&event.to_string()), Ok(vec![log("a+b.json.gz")]));
        let mut deleted = event.clone();
        deleted["detail-type"] = "Object Deleted".into();
        assert!(matches!(
            parse(&deleted.to_string()).as_deref(),
            Ok([Notice::Ignored {
                reason: Ignored::NotCreated,
                ..
            }])
        ));
        let mut other = event;
        other["source"] = "aws.ec2".into();
        assert!(parse(&other.to_string()).is_err());
    }

    #[test]
    fn cloudtrails_own_sns_notification_names_its_log_files() {
        let message = serde_json::json!({"s3Bucket": "trail", "s3ObjectKey": [KEY, "k2.json.gz"]});
        let sns = serde_json::json!({"Type": "Notification", "Message": message.to_string()});
        let object = |key: &str| {
            Notice::LogFile(ObjectRef {
                bucket: "trail".into(),
                key: key.into(),
                size: None,
            })
        };
        assert_eq!(
            parse(&sns.to_string()),
            Ok(vec![object(KEY), object("k2.json.gz")])
        );
    }

    #[test]
    fn digests_insights_folders_deletions_and_test_events_are_not_read() {
        let ignored = |body: &str| match parse(body).as_deref() {
            Ok([Notice::Ignored { reason, .. }]) => Some(*reason),
            _ => None,
        };
        let digest = "AWSLogs/111122223333/CloudTrail-Digest/us-east-1/2026/03/02/x.json.gz";
        let insight = "AWSLogs/o-a/111122223333/CloudTrail-Insight/us-east-1/2026/03/02/x.json.gz";
        assert_eq!(
            ignored(&s3_event("ObjectCreated:Put", digest)),
            Some(Ignored::Digest)
        );
        assert_eq!(
            ignored(&s3_event("ObjectCreated:CompleteMultipartUpload", insight)),
            Some(Ignored::Insight)
        );
        assert_eq!(
            ignored(&s3_event("ObjectCreated:Put", "AWSLogs/")),
            Some(Ignored::Folder)
        );
        assert_eq!(
            ignored(&s3_event("ObjectRemoved:Delete", KEY)),
            Some(Ignored::NotCreated)
        );
        let test = r#"{"Service":"Amazon S3","Event":"s3:TestEvent","Time":"2026-03-02T10:00:00.000Z","Bucket":"trail","RequestId":"r","HostId":"h"}"#;
        assert_eq!(parse(test), Ok(vec![Notice::Test]));
        // A key merely containing the word is a log file.
        assert_eq!(
            parse(&s3_event(
                "ObjectCreated:Put",
                "AWSLogs/CloudTrail-Digests.json.gz"
            )),
            Ok(vec![log("AWSLogs/CloudTrail-Digests.json.gz")])
        );
    }

    #[test]
    fn anything_else_is_an_error_that_says_what_was_expected() {
        for body in [
            "not json",
            "[]",
            "{}",
            r#"{"Records": 3}"#,
            r#"{"Records": [{"eventSource": "aws:sqs"}]}"#,
            r#"{"Records": [{"eventSource": "aws:s3", "s3": {}}]}"#,
            r#"{"Type": "Notification", "Message": "{"}"#,
            r#"{"Type": "Weird"}"#,
            r#"{"s3Bucket": "b", "s3ObjectKey": [1]}"#,
        ] {
            let err = parse(body).expect_err(body);
            assert!(!err.to_string().is_empty());
        }
    }
}
