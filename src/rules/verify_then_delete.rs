//! R4 — AWS SES add verified identity followed by the deletion of the identity (seed 003).
//!
//! A successful delete of an identity that a successful add created in the same account and
//! region, the delete strictly after the add and within the sequence window. Unlike Elastic's
//! sequence-by-user rule, the deleted identity must be the one added (compared lowercased, ARN
//! forms reduced to the name). Arrival order does not matter: whichever of the two arrives second
//! finds the first in state. One signal per add/delete pair; the signal describes the delete.

use super::{Detection, RuleMeta, Severity, Trigger};
use crate::engine::{Decision, Event, Finding};
use crate::state::{Mark, Side};

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
    detection: Detection::VerifyThenDelete,
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
    seed: "003: Datadog OOTB rule, AWS SES add verified identity followed by the deletion of the identity",
};

/// Only successful calls naming an identity take part.
pub fn applies(event: &Event) -> bool {
    event.subject.error_code.is_none() && event.identity.is_some()
}

/// Which side of a pair the event is.
pub fn side(event: &Event) -> Side {
    if DELETES.contains(&event.subject.event_name.as_str()) {
        Side::Delete
    } else {
        Side::Add
    }
}

/// What the event leaves in state for its counterpart to find.
pub fn mark(event: &Event) -> Mark {
    Mark {
        event_id: event.event_id.to_owned(),
        time: event.time,
        subject: event.subject.clone(),
    }
}

/// One finding per mark of the other side the event pairs with
/// ([`identity_state::step`](super::identity_state::step) found them).
pub fn decide(event: &Event<'_>, paired: Vec<Mark>) -> Decision {
    let side = side(event);
    let findings = paired
        .into_iter()
        .map(|other| {
            // The signal describes the delete and names the add as related.
            let (add, delete) = match side {
                Side::Add => (mark(event), other),
                Side::Delete => (other, mark(event)),
            };
            Finding {
                rule: &RULE,
                severity: RULE.severity,
                subject: delete.subject,
                related_event_ids: vec![add.event_id],
            }
        })
        .collect();
    Decision {
        findings,
        deduplicated: 0,
    }
}
