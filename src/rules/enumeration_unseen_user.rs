//! R2 — Amazon SES enumeration attempt by previously unseen user (seed 001).
//!
//! The first sighting of a principal making an SES enumeration call; failed calls count.
//! Principals seen during the learning period are remembered without a signal; one not seen for
//! the forget period is forgotten and fires again; every sighting refreshes it.

use super::{Detection, RuleMeta, SERVICE_QUOTAS, Severity, Trigger};
use crate::engine::{Decision, Event, Finding, Settings};
use crate::state::{Sighting, State, StateError};

pub const RULE: RuleMeta = RuleMeta {
    detection: Detection::EnumerationUnseenUser,
    id: "ses-enumeration-unseen-user",
    title: "Amazon SES enumeration attempt by previously unseen user",
    severity: Severity::Medium,
    tactic: "TA0007",
    tactic_name: "discovery",
    technique: "T1526",
    technique_name: "cloud-service-discovery",
    triage: crate::datadog_triage!(
        " : ",
        "If it shouldn't have been made:",
        "If the results of the triage indicate that an attacker has taken the action, begin your company's incident response process as well as an investigation."
    ),
    triggers: &[
        Trigger::ses("GetAccount"),
        Trigger::ses("GetAccountSendingEnabled"),
        Trigger::ses("ListIdentities"),
        Trigger::ses("ListEmailIdentities"),
        Trigger::ses("GetSendQuota"),
        Trigger::ses("GetIdentityVerificationAttributes"),
        Trigger {
            event_source: SERVICE_QUOTAS,
            event_name: "ListServiceQuotas",
            service_code: Some("ses"),
        },
    ],
    seed: "001: Datadog OOTB rule, Amazon SES enumeration attempt by previously unseen user",
};

pub fn applies(event: &Event) -> bool {
    event.counts_as_principal && event.principal.is_some()
}

/// `first_event` is the time of the first event the state ever saw (the learning start).
pub async fn decide<S: State>(
    event: &Event<'_>,
    state: &S,
    settings: &Settings,
    first_event: crate::time::Seconds,
) -> Result<Decision, StateError> {
    let key = format!("r2|{}|{}", event.account, event.principal.unwrap_or(""));
    let sighting = state
        .sight(&key, event.event_id, event.time, settings.forget)
        .await?;
    let learning =
        settings.learning > 0 && event.time < first_event.saturating_add(settings.learning);
    let mut decision = Decision::default();
    if sighting == Sighting::New && !learning {
        decision.findings.push(Finding::of(&RULE, event));
    }
    Ok(decision)
}
