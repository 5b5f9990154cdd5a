//! `ses-abuse-chain` — the SES abuse chain: one principal of one account (any regions) reaches
//! at least three stages of the attack within `chain_window_hours` of event time, one of them
//! `sandbox-exit`, `sending` or `privilege`.
//!
//! Stages (reached by an event that meets the condition, whether or not that stage's own rule
//! fired, was deduplicated or was suppressed for itself; failed calls count):
//! `recon` (the calls `ses-enumeration-unseen-user` reads, and `GetEmailIdentity`,
//! `GetSendStatistics`, `ListVerifiedEmailAddresses`, `ListReceiptRuleSets`,
//! `DescribeActiveReceiptRuleSet`), `sandbox-exit` (any `PutAccountDetails`), `sending` (the
//! condition of `ses-sending-enabled`), `identity` (identity verification or creation),
//! `privilege` (the condition of `ses-full-access-granted` or `ses-smtp-user-created`),
//! `evasion` (identity deletion, or the condition of `ses-feedback-tampering`). A mail
//! administrator who lists, verifies and deletes identities reaches recon, identity and evasion:
//! no chain.
//!
//! Fires once, on the event whose evaluation first makes that true, whatever the arrival
//! order; then no second signal for the same (account, principal) within the chain window.

use super::span::{self, InSpan};
use super::{
    Answer, Ask, Call, Context, Decision, Detection, Event, Finding, Op, RuleMeta, SuppressOn,
};
use super::{Gate, Severity, Trigger};
use super::{
    enumeration_unseen_user, feedback_tampering, full_access_granted, sending_enabled,
    smtp_user_created, verify_then_delete,
};
use crate::model::Settings;
use crate::state::Occurrence;

pub const RULE: RuleMeta = RuleMeta {
    id: "ses-abuse-chain",
    title: "SES abuse chain: reconnaissance, sandbox exit, sending rights and evasion by one principal",
    severity: Severity::Critical,
    tactic: "TA0040",
    tactic_name: "impact",
    technique: "T1496",
    technique_name: "resource-hijacking",
    triage: &[
        "The user: `{{@userIdentity.arn}}` reached the stages listed in the signal's `details.stages` within hours, ending with `{{@evt.name}}` from this IP address: `{{@network.client.ip}}` . Each step alone can be routine; together, in this order, they are how a stolen key is turned into a phishing sender.",
        "Open the related events (the first event of each stage): regions, source IPs and user agents that differ from the principal's usual ones confirm a takeover.",
        "Treat it as an incident now: disable the access keys of `{{@userIdentity.arn}}` (and of any SMTP user or grantee it created), turn SES sending off in every region it touched, and withdraw production access requests with AWS Support.",
        "Then scope it: identities verified, mail sent (`GetSendStatistics`, CloudWatch `Send` metrics), IAM users, keys and policies created, and feedback settings changed, in every region of the account.",
        "If the activity is a known test or migration, suppress it for `ses-abuse-chain` with an expiry (a `[[suppressions]]` entry in the sesguard config) rather than for every rule.",
    ],
    triggers: &[
        // recon: the calls ses-enumeration-unseen-user reads, and more reads of the mail setup.
        Trigger::ses("GetAccount"),
        Trigger::ses("GetAccountSendingEnabled"),
        Trigger::ses("ListIdentities"),
        Trigger::ses("ListEmailIdentities"),
        Trigger::ses("GetSendQuota"),
        Trigger::ses("GetIdentityVerificationAttributes"),
        Trigger::ses("ListVerifiedEmailAddresses"),
        Trigger::ses("GetEmailIdentity"),
        Trigger::ses("GetSendStatistics"),
        Trigger::ses("ListReceiptRuleSets"),
        Trigger::ses("DescribeActiveReceiptRuleSet"),
        Trigger::quota("ListServiceQuotas", "ses"),
        Trigger::quota("GetServiceQuota", "ses"),
        Trigger::quota("ListAWSDefaultServiceQuotas", "ses"),
        // sandbox-exit
        Trigger::ses("PutAccountDetails"),
        // sending
        Trigger::ses("UpdateAccountSendingEnabled"),
        Trigger::ses("PutAccountSendingAttributes"),
        // identity
        Trigger::ses("VerifyEmailIdentity"),
        Trigger::ses("VerifyEmailAddress"),
        Trigger::ses("VerifyDomainIdentity"),
        Trigger::ses("CreateEmailIdentity"),
        // privilege: the grant rule's calls with its narrowing (the stage is its condition)
        full_access_granted::TRIGGERS[0],
        full_access_granted::TRIGGERS[1],
        full_access_granted::TRIGGERS[2],
        full_access_granted::TRIGGERS[3],
        full_access_granted::TRIGGERS[4],
        full_access_granted::TRIGGERS[5],
        Trigger::iam("CreateUser"),
        Trigger::iam("CreateAccessKey"),
        // evasion
        Trigger::ses("DeleteIdentity"),
        Trigger::ses("DeleteEmailIdentity"),
        Trigger::ses("DeleteVerifiedEmailAddress"),
        Trigger::ses("SetIdentityFeedbackForwardingEnabled"),
        Trigger::ses("PutEmailIdentityFeedbackAttributes"),
        Trigger::ses("SetIdentityNotificationTopic"),
        Trigger::ses("DeleteConfigurationSetEventDestination"),
    ],
    suppress_on: SuppressOn::Event,
    seed: "sesguard: the attack order of Wiz's May 2025 campaign, Permiso and Datadog Security Labs (no peer correlates the chain in real time)",
    detection: &AbuseChain,
};

/// The stages; at least one of [`DECISIVE`] must be among a chain's three.
pub const STAGES: [&str; 6] = [
    "recon",
    "sandbox-exit",
    "sending",
    "identity",
    "privilege",
    "evasion",
];
const DECISIVE: [&str; 3] = ["sandbox-exit", "sending", "privilege"];
/// The fewest stages of a chain.
const CHAIN_STAGES: usize = 3;

/// The `recon` calls besides those `ses-enumeration-unseen-user` reads.
const MORE_RECON: [&str; 2] = ["ListReceiptRuleSets", "DescribeActiveReceiptRuleSet"];

/// The stage a call reaches, if any (the service-code condition of the Service Quotas calls is
/// checked by the triggers). The calls and conditions are those of the rules named in the
/// module documentation, read from them.
pub fn stage(call: &Call) -> Option<&'static str> {
    let name = call.name;
    let stage = match name {
        "PutAccountDetails" => "sandbox-exit",
        _ if verify_then_delete::ADDS.contains(&name) => "identity",
        _ if verify_then_delete::DELETES.contains(&name) => "evasion",
        _ if sending_enabled::enables(call) => "sending",
        _ if full_access_granted::grant(call).is_some()
            || smtp_user_created::smtp_user(call).is_some() =>
        {
            "privilege"
        }
        _ if feedback_tampering::tampers(call) => "evasion",
        _ if MORE_RECON.contains(&name)
            || enumeration_unseen_user::RULE
                .triggers
                .iter()
                .any(|t| t.event_name == name) =>
        {
            "recon"
        }
        _ => return None,
    };
    Some(stage)
}

struct AbuseChain;

fn key(event: &Event, kind: &str) -> String {
    format!("{kind}|{}|{}", event.account, event.principal.unwrap_or(""))
}

impl Detection for AbuseChain {
    fn considers(&self, call: &Call) -> bool {
        stage(call).is_some()
    }

    fn applies(&self, event: &Event) -> bool {
        event.counts_as_principal && event.principal.is_some()
    }

    fn ask(&self, event: &Event, settings: &Settings) -> Option<Ask> {
        Some(Ask {
            key: key(event, "chain"),
            shared: None,
            op: Op::Distinct {
                value: stage(&event.call())?.to_owned(),
                window: settings.chain_window,
                max: STAGES.len(),
            },
        })
    }

    fn decide(&self, event: &Event, answer: Answer, context: &Context) -> Decision {
        let (Answer::Distinct(answer), Some(own)) = (answer, stage(&event.call())) else {
            return Decision::default();
        };
        let window = context.settings.chain_window;
        let now = Occurrence::new(event.time, event.event_id);
        let chain = |stages: &[InSpan]| {
            stages.len() >= CHAIN_STAGES && stages.iter().any(|s| DECISIVE.contains(&s.value))
        };
        let Some(stages) = span::find(&answer.values, (own, &now), window, chain) else {
            return Decision::default();
        };
        let mut finding = Finding::of(&RULE, event);
        // Named by the event alone: a replay may find the stages' first events moved.
        finding.id_from_related = false;
        finding.related_event_ids = stages
            .iter()
            .filter(|s| s.value != own)
            .map(|s| s.occurrence.event_id.clone())
            .collect();
        let names: Vec<&str> = stages.iter().map(|s| s.value).collect();
        finding.details().insert("stages".to_owned(), names.into());
        let gate = Gate {
            key: key(event, "chain"),
            length: window,
        };
        Decision::once_per(gate, &answer, event, finding)
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Trigger, verify_then_delete};
    use super::super::{enumeration_unseen_user, sandbox_exit_burst, sending_enabled};
    use super::super::{feedback_tampering, full_access_granted, smtp_user_created};
    use super::{MORE_RECON, RULE};

    /// The chain's triggers are written out (a const list); they must hold every call of the
    /// rules whose conditions give its stages, and nothing else.
    #[test]
    fn the_triggers_are_the_calls_of_the_stages() {
        let mut wanted: Vec<Trigger> = Vec::new();
        for rule in [
            &enumeration_unseen_user::RULE,
            &sandbox_exit_burst::RULE,
            &sending_enabled::RULE,
            &verify_then_delete::RULE,
            &full_access_granted::RULE,
            &smtp_user_created::RULE,
            &feedback_tampering::RULE,
        ] {
            wanted.extend(rule.triggers.iter().copied());
        }
        wanted.extend(MORE_RECON.map(Trigger::ses));
        for trigger in &wanted {
            assert!(RULE.triggers.contains(trigger), "{trigger:?} missing");
        }
        for trigger in RULE.triggers {
            assert!(wanted.contains(trigger), "{trigger:?} is no stage's call");
        }
    }
}
