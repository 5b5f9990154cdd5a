//! R4 — AWS SES add verified identity followed by the deletion of the identity (seed 003).
//!
//! A successful delete of an identity that a successful add created in the same account and
//! region, the delete strictly after the add and within the sequence window. Unlike Elastic's
//! sequence-by-user rule, the deleted identity must be the one added (compared lowercased, ARN
//! forms reduced to the name). Arrival order does not matter: whichever of the two arrives second
//! finds the first in state. At most one signal per delete: it describes the delete and lists
//! the adds it pairs with (newest first, at most [`MAX_RELATED`]; `details.paired_adds` counts
//! them all), so an identity verified and deleted all day cannot flood the sink.

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
    tactic_name: "stealth",
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

    /// At most one finding per delete, named by the delete alone: a delete's finding lists
    /// the adds it pairs with; an add that arrives after its delete gives the delete's finding
    /// (published only if the delete gave none: the signal id is the same).
    fn decide(&self, event: &Event, answer: Answer, _: &Context) -> Decision {
        let Answer::Paired(paired) = answer else {
            return Decision::default();
        };
        let findings = match side(event) {
            Side::Delete if paired.is_empty() => Vec::new(),
            Side::Delete => {
                let count = paired.len();
                let mut adds = paired;
                adds.sort_by(|a, b| {
                    b.time
                        .cmp(&a.time)
                        .then_with(|| a.event_id.cmp(&b.event_id))
                });
                let related = adds
                    .into_iter()
                    .take(MAX_RELATED)
                    .map(|add| add.event_id)
                    .collect();
                vec![finding(event.subject.clone(), event.time, related, count)]
            }
            Side::Add => paired
                .into_iter()
                .map(|delete| {
                    finding(
                        delete.subject,
                        delete.time,
                        vec![event.event_id.to_owned()],
                        1,
                    )
                })
                .collect(),
        };
        Decision {
            findings,
            ..Decision::default()
        }
    }
}

/// The most adds a signal names in `related_event_ids` (newest first); `details.paired_adds`
/// gives the full count.
pub const MAX_RELATED: usize = 20;

/// The finding about a delete, with the adds it pairs with.
fn finding(
    delete: crate::model::Subject,
    time: crate::model::Seconds,
    adds: Vec<String>,
    paired_adds: usize,
) -> Finding {
    let mut details = serde_json::Map::new();
    details.insert("paired_adds".to_owned(), paired_adds.into());
    Finding {
        rule: &RULE,
        severity: RULE.severity,
        subject: delete,
        time,
        related_event_ids: adds,
        id_from_related: false,
        details: Some(details),
    }
}
