//! The Signal record and its renderings: JSON (one line per signal, the same text the Lambda
//! publishes to SNS) and the triage text with the seed's placeholders filled (the terminal
//! table is [`crate::output::table`]).

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::model::{Severity, Subject};
use crate::rules::Finding;
use crate::text::truncate;

/// Namespace of the deterministic signal ids (UUID v5 of rule id and event ids).
const SIGNAL_NAMESPACE: Uuid = Uuid::from_u128(0x6d2c_8f4e_1b3a_4c5d_9e7f_0a1b_2c3d_4e5f);

/// One detection result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signal {
    pub signal_id: String,
    pub rule_id: String,
    pub title: String,
    pub severity: Severity,
    pub tactic: String,
    pub tactic_name: String,
    pub technique: String,
    pub technique_name: String,
    #[serde(flatten)]
    pub subject: Subject,
    /// Other events the signal rests on (for verify-then-delete: the adds).
    pub related_event_ids: Vec<String>,
    /// Rule-specific facts (absent when a rule gives none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<serde_json::Map<String, serde_json::Value>>,
    pub triage: Vec<String>,
    /// Given by a rule in shadow mode (`[rules."<id>"] shadow = true`): logged and counted,
    /// never published. Absent from the JSON of every other signal, whose text is unchanged.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub shadow: bool,
}

impl Signal {
    /// The signal of a finding: its id from the rule, the event and (unless the finding says
    /// the event alone names it) the related events.
    pub fn of(finding: Finding) -> Self {
        let keyed_on: &[String] = if finding.id_from_related {
            &finding.related_event_ids
        } else {
            &[]
        };
        let signal_id = signal_id(finding.rule.id, &finding.subject, keyed_on);
        let Finding {
            rule,
            severity,
            subject,
            related_event_ids,
            details,
            ..
        } = finding;
        let mut triage: Vec<String> = rule
            .triage
            .iter()
            .map(|step| fill_triage(step, &subject))
            .collect();
        if let Some(step) = timeline_step(&subject) {
            // Second, after "was this call expected?": the first thing to look at.
            triage.insert(triage.len().min(1), step);
        }
        Signal {
            signal_id,
            rule_id: rule.id.to_owned(),
            title: rule.title.to_owned(),
            severity,
            tactic: rule.tactic.to_owned(),
            tactic_name: rule.tactic_name.to_owned(),
            technique: rule.technique.to_owned(),
            technique_name: rule.technique_name.to_owned(),
            subject,
            related_event_ids,
            details,
            triage,
            shadow: false,
        }
    }

    /// The key the signal is claimed under in the state: its id, or for a shadow signal its id
    /// under `shadow|`, so a rule turned live later publishes what its shadow run only logged
    /// (a replayed event finds no claim marked published by the shadow run).
    pub fn claim_id(&self) -> std::borrow::Cow<'_, str> {
        if self.shadow {
            std::borrow::Cow::Owned(format!("shadow|{}", self.signal_id))
        } else {
            std::borrow::Cow::Borrowed(&self.signal_id)
        }
    }

    /// A short human title (e.g. an SNS `Subject`): printable ASCII only, at most 100 characters.
    pub fn short_title(&self) -> String {
        let s = &self.subject;
        let who = s.principal.as_deref().unwrap_or("unknown principal");
        let text = format!(
            "[{}] {}: {} by {} in {}/{}",
            self.severity.as_str(),
            self.rule_id,
            s.event_name,
            who,
            s.account_id,
            s.region
        );
        let ascii: String = text
            .chars()
            .map(|c| {
                if c.is_ascii_graphic() || c == ' ' {
                    c
                } else {
                    '?'
                }
            })
            .collect();
        if ascii.len() <= 100 {
            ascii
        } else {
            format!("{}...", &ascii[..97])
        }
    }

    /// The signal as one line of JSON.
    pub fn to_json(&self) -> String {
        // Serialising plain strings, bools and enums cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// Deterministic from the rule and the event (and, for pairs, the related events), so a retried
/// or duplicated event yields the same id.
pub fn signal_id(rule_id: &str, subject: &Subject, related: &[String]) -> String {
    let mut name = format!("{rule_id}\n{}\n{}", subject.event_id, subject.event_name);
    for id in related {
        name.push('\n');
        name.push_str(id);
    }
    Uuid::new_v5(&SIGNAL_NAMESPACE, name.as_bytes()).to_string()
}

/// The triage step that runs `sesguard timeline` for the signal's caller and address.
fn timeline_step(subject: &Subject) -> Option<String> {
    let command = crate::timeline::triage_command(
        subject.principal.as_deref(),
        subject.access_key_id.as_deref(),
        subject.source_ip.as_deref(),
        &subject.event_time,
    )?;
    Some(format!(
        "See everything this caller did and everything that came from this address in the day around the event, in event-time order, any service: `{command}`."
    ))
}

/// Fills Datadog's placeholders with values made safe for a markdown code span.
pub fn fill_triage(step: &str, subject: &Subject) -> String {
    let user = subject
        .user_arn
        .as_deref()
        .or(subject.principal.as_deref())
        .unwrap_or("unknown");
    step.replace("{{@evt.name}}", &code_span_text(&subject.event_name))
        .replace("{{@userIdentity.arn}}", &code_span_text(user))
        .replace(
            "{{@network.client.ip}}",
            &code_span_text(subject.source_ip.as_deref().unwrap_or("unknown")),
        )
}

/// Text that cannot leave the code span it is put in: no backticks, no line breaks or other
/// control characters, at most 200 characters.
fn code_span_text(value: &str) -> String {
    let clean: String = value
        .chars()
        .map(|c| if c == '`' || c.is_control() { ' ' } else { c })
        .collect();
    truncate(&clean, 200)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::ALL;
    use crate::text::capped;

    fn hostile_signal() -> Signal {
        let huge = "x".repeat(5 * 1024 * 1024);
        let subject = Subject {
            event_id: "e".to_owned(),
            event_name: "DeleteIdentity\r\nBcc: victim@example.com".to_owned(),
            principal: Some("arn:aws:iam::1:user/\u{202e}évil\u{0}".to_owned()),
            identity: Some(capped(&format!("é{huge}"))),
            user_agent: Some(capped(&huge)),
            ..Subject::default()
        };
        Signal::of(Finding {
            rule: ALL[4],
            severity: ALL[4].severity,
            subject,
            time: 0,
            related_event_ids: Vec::new(),
            id_from_related: true,
            details: None,
        })
    }

    #[test]
    fn oversized_fields_are_cut_with_a_visible_marker_and_the_json_stays_small() {
        let signal = hostile_signal();
        let identity = signal.subject.identity.as_deref().unwrap_or("");
        assert!(
            identity.ends_with("bytes]") && identity.contains("…[truncated "),
            "{}",
            &identity[identity.len() - 40..]
        );
        assert!(
            signal.to_json().len() < 64 * 1024,
            "{} bytes",
            signal.to_json().len()
        );
        assert_eq!(capped("short"), "short");
    }

    #[test]
    fn the_short_title_is_printable_ascii_of_at_most_100_characters() {
        let title = hostile_signal().short_title();
        assert!(title.len() <= 100, "{title}");
        assert!(
            title.chars().all(|c| c.is_ascii_graphic() || c == ' '),
            "{title:?}"
        );
        assert!(
            title.starts_with("[medium] ses-identity-deleted: DeleteIdentity??Bcc"),
            "{title}"
        );
    }
}
