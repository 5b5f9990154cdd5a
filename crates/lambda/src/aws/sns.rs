//! The SNS sink: one message per signal.
//!
//! `Message` is the signal JSON exactly as `sesguard scan --format jsonl` prints it;
//! `MessageAttributes` carry `rule_id`, `severity`, `account_id` and `region` for subscription
//! filter policies; `Subject` is the signal's short title (printable ASCII, ≤ 100 characters:
//! attacker-chosen identity names cannot make the publish fail).

use aws_sdk_sns::Client;
use aws_sdk_sns::types::MessageAttributeValue;

use sesguard::deliver::{Sink, SinkError};
use sesguard::model::FailureKind;
use sesguard::signal::Signal;

/// SNS's limit for a whole message, attributes included.
pub const MAX_MESSAGE_BYTES: usize = 256 * 1024;

#[derive(Debug, Clone)]
pub struct SnsPublisher {
    client: Client,
    topic_arn: String,
}

impl SnsPublisher {
    pub fn new(client: Client, topic_arn: impl Into<String>) -> Self {
        SnsPublisher {
            client,
            topic_arn: topic_arn.into(),
        }
    }

    pub fn topic_arn(&self) -> &str {
        &self.topic_arn
    }
}

fn attribute(value: &str) -> Result<MessageAttributeValue, SinkError> {
    // SNS rejects empty attribute values.
    let value = if value.is_empty() { "unknown" } else { value };
    MessageAttributeValue::builder()
        .data_type("String")
        .string_value(value)
        .build()
        .map_err(|err| {
            SinkError::new(
                FailureKind::Internal,
                format!("SNS message attribute: {err}"),
            )
            .with_source(err)
        })
}

impl Sink for SnsPublisher {
    async fn emit(&self, signal: &Signal) -> Result<(), SinkError> {
        let message = signal.to_json();
        if message.len() > MAX_MESSAGE_BYTES - 4096 {
            // Signal fields are capped (signal::MAX_FIELD_BYTES), so this cannot happen; refuse
            // rather than send something SNS would reject after retries.
            return Err(SinkError::new(
                FailureKind::TooLarge,
                format!(
                    "signal {} is {} bytes, over the SNS limit",
                    signal.signal_id,
                    message.len()
                ),
            ));
        }
        let subject = &signal.subject;
        let result = self
            .client
            .publish()
            .topic_arn(&self.topic_arn)
            .subject(signal.short_title())
            .message(message)
            .message_attributes("rule_id", attribute(&signal.rule_id)?)
            .message_attributes("severity", attribute(signal.severity.as_str())?)
            .message_attributes("account_id", attribute(&subject.account_id)?)
            .message_attributes("region", attribute(&subject.region)?)
            .send()
            .await;
        result.map(|_| ()).map_err(|err| {
            SinkError::new(
                super::failure_kind(&err),
                format!("SNS Publish: {}", super::describe(&err)),
            )
            .with_source(err)
        })
    }
}
