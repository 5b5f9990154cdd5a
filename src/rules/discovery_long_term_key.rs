//! R1 — AWS SES discovery attempt by long-term access key (seed 000, Datadog def-000-x6y).
//!
//! `GetAccount` or `GetAccountSendingEnabled` on `ses.amazonaws.com` by an `AKIA…` key; failed
//! calls count (an attempt). One signal per (account, principal, access key) per dedup window.

use super::{Detection, RuleMeta, Severity, Trigger};
use crate::engine::{Decision, Event, Finding, Settings};
use crate::state::{State, StateError};

pub const RULE: RuleMeta = RuleMeta {
    detection: Detection::DiscoveryLongTermKey,
    id: "ses-discovery-long-term-key",
    title: "AWS SES discovery attempt by long term access key",
    severity: Severity::Medium,
    tactic: "TA0007",
    tactic_name: "discovery",
    technique: "T1526",
    technique_name: "cloud-service-discovery",
    triage: crate::datadog_triage!(
        ": ",
        "If the action shouldn't have happened:",
        "If the results of the triage indicate that an attacker has taken the action, initiate your company's incident response process, as well as an investigation."
    ),
    triggers: &[
        Trigger::ses("GetAccount"),
        Trigger::ses("GetAccountSendingEnabled"),
    ],
    seed: "000: Datadog OOTB rule def-000-x6y",
};

/// Long-term IAM user and root keys start with `AKIA`; temporary (STS) keys with `ASIA`.
pub fn applies(event: &Event) -> bool {
    event.counts_as_principal
        && event
            .access_key_id
            .is_some_and(|key| key.starts_with("AKIA"))
}

pub async fn decide<S: State>(
    event: &Event<'_>,
    state: &S,
    settings: &Settings,
) -> Result<Decision, StateError> {
    let key = format!(
        "r1|{}|{}|{}",
        event.account,
        event.principal.unwrap_or(""),
        event.access_key_id.unwrap_or("")
    );
    let opened = state
        .open_window(&key, event.event_id, event.time, settings.dedup)
        .await?;
    Ok(Decision::fire_or_duplicate(opened, || {
        Finding::of(&RULE, event)
    }))
}
