//! R1 — AWS SES discovery attempt by long-term access key (seed 000, Datadog def-000-x6y).
//!
//! `GetAccount` or `GetAccountSendingEnabled` on `ses.amazonaws.com` by an `AKIA…` key; failed
//! calls count (an attempt). One signal per (account, principal, access key) per dedup window.

use super::{Answer, Ask, Context, Decision, Detection, Event, Finding, RuleMeta, SuppressOn};
use super::{Severity, Trigger};
use crate::model::Settings;

pub const RULE: RuleMeta = RuleMeta {
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
    suppress_on: SuppressOn::Event,
    seed: "000: Datadog OOTB rule def-000-x6y",
    detection: &DiscoveryLongTermKey,
};

struct DiscoveryLongTermKey;

impl Detection for DiscoveryLongTermKey {
    /// Long-term IAM user and root keys start with `AKIA`; temporary (STS) keys with `ASIA`.
    fn applies(&self, event: &Event) -> bool {
        event.counts_as_principal
            && event
                .access_key_id
                .is_some_and(|key| key.starts_with("AKIA"))
    }

    fn ask(&self, event: &Event, settings: &Settings) -> Option<Ask> {
        Some(Ask::dedup(
            format!(
                "r1|{}|{}|{}",
                event.account,
                event.principal.unwrap_or(""),
                event.access_key_id.unwrap_or("")
            ),
            settings,
        ))
    }

    fn decide(&self, event: &Event, answer: Answer, _: &Context) -> Decision {
        let opened = answer.opened();
        Decision::fire_or_duplicate(opened, || Finding::of(&RULE, event))
    }
}
