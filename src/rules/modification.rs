//! R3 — Amazon SES modification attempt (seed 002), with its Tor case.
//!
//! Identity verification, creation and deletion, v2 calls and their v1 twins; failed calls count
//! (an attempt). Severity low, high when the source IP is a Tor exit. One signal per
//! (account, region, principal, eventName, identity) per dedup window.

use super::{Detection, RuleMeta, Severity, Trigger};
use crate::engine::{Decision, Event, Finding, Settings};
use crate::state::{State, StateError};

pub const RULE: RuleMeta = RuleMeta {
    detection: Detection::Modification,
    id: "ses-modification",
    title: "Amazon SES modification attempt",
    severity: Severity::Low,
    tactic: "TA0040",
    tactic_name: "impact",
    technique: "T1496",
    technique_name: "resource-hijacking",
    triage: crate::datadog_triage!(
        " : ",
        "If it shouldn't have been made:",
        "If the results of the triage indicate that an attacker has taken the action, begin your company's incident response process and an investigation."
    ),
    triggers: &[
        Trigger::ses("VerifyEmailIdentity"),
        Trigger::ses("CreateEmailIdentity"),
        Trigger::ses("DeleteIdentity"),
        Trigger::ses("DeleteEmailIdentity"),
        Trigger::ses("VerifyEmailAddress"),
        Trigger::ses("VerifyDomainIdentity"),
        Trigger::ses("DeleteVerifiedEmailAddress"),
    ],
    seed: "002: Datadog OOTB rule, Amazon SES modification attempt",
};

/// The severity for a source IP on the Tor exit list (Datadog's `@threat_intel.results.category:tor` case).
pub const TOR_SEVERITY: Severity = Severity::High;

pub async fn decide<S: State>(
    event: &Event<'_>,
    state: &S,
    settings: &Settings,
) -> Result<Decision, StateError> {
    let key = format!(
        "r3|{}|{}|{}|{}|{}",
        event.account,
        event.region,
        event.principal.unwrap_or(""),
        event.subject.event_name,
        event.identity.as_deref().unwrap_or("")
    );
    let opened = state
        .open_window(&key, event.event_id, event.time, settings.dedup)
        .await?;
    Ok(Decision::fire_or_duplicate(opened, || {
        let mut finding = Finding::of(&RULE, event);
        if event.subject.tor {
            finding.severity = TOR_SEVERITY;
        }
        finding
    }))
}
