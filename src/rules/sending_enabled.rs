//! `ses-sending-enabled` — sending turned on for an account (and region).
//!
//! `UpdateAccountSendingEnabled` with `enabled` true (v1) or `PutAccountSendingAttributes` with
//! `sendingEnabled` true (v2); any outcome fires, `enabled` false does not. Infrastructure-as-code
//! user agents are not exempted (a peer does; attackers set their user agent): suppressions are
//! for that. One signal per (account, region, principal) per dedup window.

use super::{
    Answer, Ask, Call, Context, Decision, Detection, Event, Finding, RuleMeta, SuppressOn,
};
use super::{Severity, Trigger};
use crate::model::Settings;

pub const RULE: RuleMeta = RuleMeta {
    id: "ses-sending-enabled",
    title: "SES sending enabled for the account",
    severity: Severity::Medium,
    tactic: "TA0040",
    tactic_name: "impact",
    technique: "T1496",
    technique_name: "resource-hijacking",
    triage: &[
        "Determine if the API call: `{{@evt.name}}` should have been made by the user: `{{@userIdentity.arn}}` from this IP address: `{{@network.client.ip}}` . Sending is paused by AWS or by your team for a reason (a bounce or complaint review, an incident): turning it back on is a deliberate step.",
        "Find out why sending was off: an enforcement pause from AWS, lifted by someone other than the mail team, means the account may be sending for an attacker.",
        "Look at the other actions of `{{@userIdentity.arn}}`: production access requests, identity verifications, IAM changes and the sending statistics (`GetSendStatistics`, CloudWatch `Send` metrics) around this time.",
        "If the action is legitimate, consider including the user in a suppression list (a `[[suppressions]]` entry in the sesguard config).",
        "If the results of the triage indicate that an attacker has taken the action, turn sending off again, disable the access key, and begin your company's incident response process.",
    ],
    triggers: &[
        Trigger::ses("UpdateAccountSendingEnabled"),
        Trigger::ses("PutAccountSendingAttributes"),
    ],
    suppress_on: SuppressOn::Event,
    seed: "sesguard: Datadog Security Labs and Permiso on SES abuse (sending re-enabled after the sandbox exit)",
    detection: &SendingEnabled,
};

/// Whether the call turns sending on (also `ses-abuse-chain`'s `sending` stage).
pub fn enables(call: &Call) -> bool {
    let flag = match call.name {
        "UpdateAccountSendingEnabled" => "enabled",
        "PutAccountSendingAttributes" => "sendingEnabled",
        _ => return false,
    };
    call.params.bool(flag).ok().flatten() == Some(true)
}

struct SendingEnabled;

impl Detection for SendingEnabled {
    fn considers(&self, call: &Call) -> bool {
        enables(call)
    }

    fn applies(&self, event: &Event) -> bool {
        event.counts_as_principal
    }

    fn ask(&self, event: &Event, settings: &Settings) -> Option<Ask> {
        Some(Ask::dedup(
            format!(
                "se|{}|{}|{}",
                event.account,
                event.region,
                event.principal.unwrap_or("")
            ),
            settings,
        ))
    }

    fn decide(&self, event: &Event, answer: Answer, _: &Context) -> Decision {
        let opened = answer.opened();
        Decision::fire_or_duplicate(opened, || {
            let mut finding = Finding::of(&RULE, event);
            // No facts beyond the event's fields; an object all the same, like every new rule.
            finding.details();
            finding
        })
    }
}
