//! R2 — Amazon SES enumeration attempt by previously unseen user (seed 001).
//!
//! The first sighting of a principal making an SES enumeration call; failed calls count.
//! Principals seen during the learning period are remembered without a signal; one not seen for
//! the forget period is forgotten and fires again; every sighting refreshes it.

use super::{Answer, Ask, Context, Decision, Detection, Event, Finding, Op, RuleMeta, SuppressOn};
use super::{Severity, Trigger};
use crate::model::Settings;
use crate::state::Sighting;

pub const RULE: RuleMeta = RuleMeta {
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
        // The v1 twin of ListIdentities, an identity's v2 details, and the sending statistics.
        Trigger::ses("ListVerifiedEmailAddresses"),
        Trigger::ses("GetEmailIdentity"),
        Trigger::ses("GetSendStatistics"),
        Trigger::quota("ListServiceQuotas", "ses"),
        Trigger::quota("GetServiceQuota", "ses"),
        Trigger::quota("ListAWSDefaultServiceQuotas", "ses"),
    ],
    suppress_on: SuppressOn::Event,
    seed: "001: Datadog OOTB rule, Amazon SES enumeration attempt by previously unseen user",
    detection: &EnumerationUnseenUser,
};

struct EnumerationUnseenUser;

impl Detection for EnumerationUnseenUser {
    fn applies(&self, event: &Event) -> bool {
        event.counts_as_principal && event.principal.is_some()
    }

    fn ask(&self, event: &Event, settings: &Settings) -> Option<Ask> {
        Some(Ask {
            key: format!("r2|{}|{}", event.account, event.principal.unwrap_or("")),
            shared: None,
            op: Op::Sight {
                forget: settings.forget,
            },
        })
    }

    /// No signal during the learning period, which starts at the first event the state saw.
    fn decide(&self, event: &Event, answer: Answer, context: &Context) -> Decision {
        let learning = context.settings.learning;
        let learning = learning > 0 && event.time < context.first_event.saturating_add(learning);
        let mut decision = Decision::default();
        if answer == Answer::Sighting(Sighting::New) && !learning {
            decision.findings.push(Finding::of(&RULE, event));
        }
        decision
    }
}
