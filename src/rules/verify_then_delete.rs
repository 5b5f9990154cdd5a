//! R4 — AWS SES add verified identity followed by the deletion of the identity (seed 003).
//!
//! A successful delete of an identity that a successful add created in the same account and
//! region, the delete strictly after the add and within the sequence window. Unlike Elastic's
//! sequence-by-user rule, the deleted identity must be the one added (compared lowercased, ARN
//! forms reduced to the name). Arrival order does not matter: whichever of the two arrives second
//! finds the first in state. One signal per add/delete pair; the signal describes the delete.

use super::{Detection, RuleMeta, Severity, Trigger};
use crate::engine::{Decision, Event, Finding, Settings};
use crate::state::{Mark, Side, State, StateError};

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

pub async fn decide<S: State>(
    event: &Event<'_>,
    state: &S,
    settings: &Settings,
) -> Result<Decision, StateError> {
    let side = if DELETES.contains(&event.subject.event_name.as_str()) {
        Side::Delete
    } else {
        Side::Add
    };
    let key = format!(
        "r4|{}|{}|{}",
        event.account,
        event.region,
        event.identity.as_deref().unwrap_or("")
    );
    let mark = Mark {
        event_id: event.event_id.to_owned(),
        time: event.time,
        subject: event.subject.clone(),
    };
    let others = state.pair(&key, side, &mark, settings.window).await?;
    let findings = others
        .into_iter()
        .map(|other| {
            // The signal describes the delete and names the add as related.
            let (add, delete) = match side {
                Side::Add => (mark.clone(), other),
                Side::Delete => (other, mark.clone()),
            };
            Finding {
                rule: &RULE,
                severity: RULE.severity,
                subject: delete.subject,
                related_event_ids: vec![add.event_id],
            }
        })
        .collect();
    Ok(Decision {
        findings,
        deduplicated: 0,
    })
}
