//! R4 — AWS SES add verified identity followed by the deletion of the identity (seed 003).
//!
//! A successful delete of an identity that a successful add created in the same account and
//! region, the delete strictly after the add and within the sequence window. Unlike Elastic's
//! sequence-by-user rule, the deleted identity must be the one added (compared lowercased, ARN
//! forms reduced to the name). Arrival order does not matter: whichever of the two arrives second
//! finds the first in state. One signal per add/delete pair; the signal describes the delete.

use super::{Answer, Ask, Context, Decision, Detection, Event, Finding, Op, RuleMeta, SuppressOn};
use super::{Severity, Trigger, shared};
use crate::model::Settings;
use crate::state::Side;

pub const ADDS: &[&str] = &[
    "VerifyEmailIdentity",
    "VerifyEmailAddress",
    "VerifyDomainIdentity",
    "CreateEmailIdentity",
];
pub const DELETES: &[&str] = &[
    "DeleteIdentity",
    "DeleteEmailIdentity",
    "DeleteVerifiedEmailAddress",
];

pub const RULE: RuleMeta = RuleMeta {
    id: "ses-verify-then-delete",
    title: "AWS SES add verified identity followed by the deletion of the identity",
    severity: Severity::High,
    tactic: "TA0005",
    tactic_name: "defense-evasion",
    technique: "T1070",
    technique_name: "indicator-removal",
    triage: crate::datadog_triage!(
        ": ",
        "If the action shouldn't have happened:",
        "If the results of the triage indicate that an attacker has taken the action, initiate your company's incident response process, as well as an investigation."
    ),
    triggers: &[
        Trigger::ses("VerifyEmailIdentity"),
        Trigger::ses("VerifyEmailAddress"),
        Trigger::ses("VerifyDomainIdentity"),
        Trigger::ses("CreateEmailIdentity"),
        Trigger::ses("DeleteIdentity"),
        Trigger::ses("DeleteEmailIdentity"),
        Trigger::ses("DeleteVerifiedEmailAddress"),
    ],
    // A finding describes the delete, also when the add is the event evaluated.
    suppress_on: SuppressOn::Finding,
    seed: "003: Datadog OOTB rule, AWS SES add verified identity followed by the deletion of the identity",
    detection: &VerifyThenDelete,
};

struct VerifyThenDelete;

/// Which side of a pair the event is.
fn side(event: &Event) -> Side {
    if DELETES.contains(&event.subject.event_name.as_str()) {
        Side::Delete
    } else {
        Side::Add
    }
}

impl Detection for VerifyThenDelete {
    /// Only successful calls naming an identity take part.
    fn applies(&self, event: &Event) -> bool {
        event.subject.error_code.is_none() && event.identity.is_some()
    }

    fn ask(&self, event: &Event, settings: &Settings) -> Option<Ask> {
        let (key, keep) = shared::identity(event, settings);
        Some(Ask {
            key,
            shared: Some(keep),
            op: Op::Pair {
                side: side(event),
                window: settings.window,
            },
        })
    }

    /// One finding per event of the other side the event pairs with.
    fn decide(&self, event: &Event, answer: Answer, _: &Context) -> Decision {
        let Answer::Paired(paired) = answer else {
            return Decision::default();
        };
        let side = side(event);
        let findings = paired
            .into_iter()
            .map(|other| {
                // The finding describes the delete and names the add as related.
                let (add_id, subject, time) = match side {
                    Side::Add => (event.event_id.to_owned(), other.subject, other.time),
                    Side::Delete => (other.event_id, event.subject.clone(), event.time),
                };
                Finding {
                    rule: &RULE,
                    severity: RULE.severity,
                    subject,
                    time,
                    related_event_ids: vec![add_id],
                }
            })
            .collect();
        Decision {
            findings,
            deduplicated: 0,
        }
    }
}
