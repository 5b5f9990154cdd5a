//! The SNS sink: one message per signal.
//!
//! The message has SNS's JSON message structure: its `default` entry, which SNS delivers to SQS,
//! Lambda and HTTPS subscribers, is the signal JSON exactly as `sesguard scan --format jsonl`
//! prints it (or, with `SESGUARD_SIGNAL_FORMAT=ocsf`, the OCSF Detection Finding of `--format
//! ocsf`); its `email` entry is the plain text an on-call person reads
//! (`sesguard::output::email`). `MessageAttributes` carry `rule_id`, `severity`, `account_id` and
//! `region` for subscription filter policies; `Subject` is the signal's short title (printable
//! ASCII, ≤ 100 characters: attacker-chosen identity names cannot make the publish fail).

use aws_sdk_sns::Client;
use aws_sdk_sns::types::MessageAttributeValue;

use sesguard::deliver::{Sink, SinkError};
use sesguard::model::FailureKind;
use sesguard::output::{SignalFormat, email};
use sesguard::signal::Signal;

/// SNS's limit for a whole message, attributes included.
pub const MAX_MESSAGE_BYTES: usize = 256 * 1024;

#[derive(Debug, Clone)]
pub struct SnsPublisher {
    client: Client,
    topic_arn: String,
    format: SignalFormat,
}

impl SnsPublisher {
    pub fn new(client: Client, topic_arn: impl Into<String>) -> Self {
        SnsPublisher {
            client,
            topic_arn: topic_arn.into(),
            format: SignalFormat::default(),
        }
    }

    /// Publishes the `default` entry in `format` (the signal JSON unless told otherwise).
    pub fn with_format(mut self, format: SignalFormat) -> Self {
        self.format = format;
        self
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

/// What one publish sends: the `Message` and whether it has the JSON message structure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub text: String,
    pub structured: bool,
}

/// The SNS `Message` of `signal`: `{"default": <the signal in format>, "email": <the text>}`.
/// SNS counts both entries (escaped, as they are in the message) against its limit; the
/// signal's fields and the e-mail text are capped so that they fit. Should they not, the e-mail
/// entry is left out (e-mail subscribers then get the JSON) rather than the signal lost.
pub fn message(format: SignalFormat, signal: &Signal) -> Result<Message, SinkError> {
    let limit = MAX_MESSAGE_BYTES - 4096;
    let default = format.render(signal);
    if default.len() > limit {
        // Signal fields are capped (text::MAX_FIELD_BYTES), so this cannot happen; refuse
        // rather than send something SNS would reject after retries.
        return Err(SinkError::new(
            FailureKind::TooLarge,
            format!(
                "signal {} is {} bytes, over the SNS limit",
                signal.signal_id,
                default.len()
            ),
        ));
    }
    let structured = serde_json::json!({"default": default, "email": email::render(signal)});
    // A map of two strings: serialising cannot fail.
    let text = serde_json::to_string(&structured).unwrap_or_default();
    if !text.is_empty() && text.len() <= limit {
        return Ok(Message {
            text,
            structured: true,
        });
    }
    tracing::warn!(
        signal_id = %signal.signal_id,
        bytes = text.len(),
        "signal and e-mail text over the SNS limit together; publishing the signal alone"
    );
    Ok(Message {
        text: default,
        structured: false,
    })
}

impl Sink for SnsPublisher {
    async fn emit(&self, signal: &Signal) -> Result<(), SinkError> {
        let message = message(self.format, signal)?;
        let subject = &signal.subject;
        let result = self
            .client
            .publish()
            .topic_arn(&self.topic_arn)
            .subject(signal.short_title())
            .message(message.text)
            .set_message_structure(message.structured.then(|| "json".to_owned()))
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

#[cfg(test)]
mod tests {
    use super::*;
    use sesguard::model::{Severity, Subject};
    use sesguard::text::capped;

    /// A signal with `n` of its attacker-chosen fields (the caller, the identity, the user
    /// agent…) at their cap (`text::MAX_FIELD_BYTES`), made of quotes and backslashes: escaped
    /// once in the signal JSON and once more in a structured message.
    fn big_signal(n: usize) -> Signal {
        let worst = capped(&"\"\\".repeat(10_000));
        let mut fields = (0..8).map(|i| (i < n).then(|| worst.clone()));
        let mut field = || fields.next().flatten();
        Signal {
            signal_id: "id".to_owned(),
            rule_id: "ses-modification".to_owned(),
            title: "t".to_owned(),
            severity: Severity::Low,
            tactic: "TA0040".to_owned(),
            tactic_name: "impact".to_owned(),
            technique: "T1496".to_owned(),
            technique_name: "resource-hijacking".to_owned(),
            subject: Subject {
                event_id: "5e1093f0-d395-41f9-8a75-d9acf61ade01".to_owned(),
                event_name: "VerifyEmailIdentity".to_owned(),
                event_source: "ses.amazonaws.com".to_owned(),
                event_time: "2026-03-02T09:00:00Z".to_owned(),
                account_id: "111122223333".to_owned(),
                region: "us-east-1".to_owned(),
                identity: field(),
                user_agent: field(),
                principal: field(),
                user_arn: field(),
                user_type: field(),
                access_key_id: field(),
                source_ip: field(),
                error_code: field(),
                ..Subject::default()
            },
            related_event_ids: vec!["7097adec-0000-4000-8000-000000000000".to_owned(); 20],
            shadow: false,
            details: None,
            triage: vec!["Determine if the call was expected: `…`".to_owned(); 8],
        }
    }

    fn entries(message: &Message) -> (String, String) {
        let value: serde_json::Value = serde_json::from_str(&message.text).expect("JSON");
        let entry = |name: &str| value[name].as_str().expect(name).to_owned();
        (entry("default"), entry("email"))
    }

    #[test]
    fn the_default_entry_is_the_signal_json_and_the_email_entry_the_text() {
        // A caller, an identity and a user agent at their cap.
        let signal = big_signal(4);
        for format in [SignalFormat::Sesguard, SignalFormat::Ocsf] {
            let message = message(format, &signal).expect("message");
            assert!(
                message.structured,
                "{format:?}: the e-mail entry was dropped"
            );
            assert!(
                message.text.len() <= MAX_MESSAGE_BYTES - 4096,
                "{format:?}: {} bytes",
                message.text.len()
            );
            let (default, text) = entries(&message);
            assert_eq!(default, format.render(&signal));
            assert_eq!(text, email::render(&signal));
        }
        let (default, _) = entries(&message(SignalFormat::Sesguard, &signal).expect("message"));
        assert_eq!(default, signal.to_json(), "the contract, byte for byte");
    }

    #[test]
    fn a_signal_too_big_beside_its_email_text_is_published_alone_not_lost() {
        // Every field at its cap and long triage steps: the signal fits alone, not escaped again
        // inside a structured message.
        let mut signal = big_signal(8);
        signal.triage = vec![capped(&"\"".repeat(10_000)); 12];
        for format in [SignalFormat::Sesguard, SignalFormat::Ocsf] {
            let message = message(format, &signal).expect("message");
            assert!(!message.structured);
            assert_eq!(message.text, format.render(&signal));
            assert!(message.text.len() <= MAX_MESSAGE_BYTES - 4096);
        }
    }
}
