//! R3 — Amazon SES modification attempt (seed 002), with its Tor case.
//!
//! Identity verification, creation and deletion, v2 calls and their v1 twins, and sending
//! authorisation policies put on an identity (`PutIdentityPolicy`, `CreateEmailIdentityPolicy`);
//! failed calls count
//! (an attempt). Severity low, high when the source IP is a Tor exit. One signal per
//! (account, region, principal, eventName, identity) per dedup window.

use super::{Answer, Ask, Context, Decision, Detection, Event, Finding, RuleMeta, SuppressOn};
use super::{Severity, Trigger};
use crate::model::Settings;

pub const RULE: RuleMeta = RuleMeta {
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
        // Sending authorisation: a policy on an identity lets another account send as it.
        Trigger::ses("PutIdentityPolicy"),
        Trigger::ses("CreateEmailIdentityPolicy"),
    ],
    suppress_on: SuppressOn::Event,
    seed: "002: Datadog OOTB rule, Amazon SES modification attempt",
    detection: &Modification,
};

/// The severity for a source IP on the Tor exit list (Datadog's `@threat_intel.results.category:tor` case).
pub const TOR_SEVERITY: Severity = Severity::High;

struct Modification;

impl Detection for Modification {
    fn ask(&self, event: &Event, settings: &Settings) -> Option<Ask> {
        Some(Ask::dedup(
            format!(
                "r3|{}|{}|{}|{}|{}",
                event.account,
                event.region,
                event.principal.unwrap_or(""),
                event.subject.event_name,
                event.identity.as_deref().unwrap_or("")
            ),
            settings,
        ))
    }

    fn decide(&self, event: &Event, answer: Answer, _: &Context) -> Decision {
        let opened = answer.opened();
        Decision::fire_or_duplicate(opened, || {
            let mut finding = Finding::of(&RULE, event);
            if event.subject.tor {
                finding.severity = TOR_SEVERITY;
            }
            finding
        })
    }
}
