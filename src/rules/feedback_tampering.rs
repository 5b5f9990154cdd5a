//! `ses-feedback-tampering` — bounce and complaint feedback turned off.
//!
//! An attacker who sends through a victim's SES silences what would reveal it: feedback
//! forwarding off (`SetIdentityFeedbackForwardingEnabled` with `forwardingEnabled` false, or its
//! v2 twin `PutEmailIdentityFeedbackAttributes` with `emailForwardingEnabled` false), a
//! bounce, complaint or delivery topic removed (`SetIdentityNotificationTopic` with no
//! `snsTopic`), or an event destination deleted from a configuration set. Any outcome fires.
//! One signal per (account, region, principal, eventName, identity) per dedup window, where
//! the identity is the identity or configuration set named.

use super::{
    Answer, Ask, Call, Context, Decision, Detection, Event, Finding, RuleMeta, SuppressOn,
};
use super::{Severity, Trigger};
use crate::model::Settings;
use crate::text::capped;

pub const RULE: RuleMeta = RuleMeta {
    id: "ses-feedback-tampering",
    title: "SES bounce and complaint feedback turned off",
    severity: Severity::Medium,
    // ATT&CK v19 split Defense Evasion (TA0005, now Stealth) and moved Impair Defenses to
    // Defense Impairment.
    tactic: "TA0112",
    tactic_name: "defense-impairment",
    technique: "T1562",
    technique_name: "impair-defenses",
    triage: &[
        "Determine if the API call: `{{@evt.name}}` should have been made by the user: `{{@userIdentity.arn}}` from this IP address: `{{@network.client.ip}}` . Bounces and complaints are how a mail team learns that its account sends spam; turning them off is rarely needed.",
        "Check the identity or configuration set named in the signal: is feedback still delivered somewhere (another SNS topic, an event destination, the account's suppression list)?",
        "Look at the sending statistics (`GetSendStatistics`, CloudWatch `Bounce` and `Complaint` metrics) and at the other actions of `{{@userIdentity.arn}}`: identity verifications, sending enabled, production access requested.",
        "If the action is legitimate, consider including the user in a suppression list (a `[[suppressions]]` entry in the sesguard config).",
        "If the results of the triage indicate that an attacker has taken the action, restore the feedback settings, disable the access key, and begin your company's incident response process.",
    ],
    triggers: &[
        Trigger::ses("SetIdentityFeedbackForwardingEnabled"),
        Trigger::ses("PutEmailIdentityFeedbackAttributes"),
        Trigger::ses("SetIdentityNotificationTopic"),
        Trigger::ses("DeleteConfigurationSetEventDestination"),
    ],
    suppress_on: SuppressOn::Event,
    seed: "sesguard: Datadog Security Labs and Permiso on SES abuse (feedback silenced before sending)",
    detection: &FeedbackTampering,
};

/// Whether the call turns feedback off (also `ses-abuse-chain`'s `evasion` stage).
pub fn tampers(call: &Call) -> bool {
    let off = |flag: &str| call.params.bool(flag).ok().flatten() == Some(false);
    match call.name {
        "SetIdentityFeedbackForwardingEnabled" => off("forwardingEnabled"),
        "PutEmailIdentityFeedbackAttributes" => off("emailForwardingEnabled"),
        "SetIdentityNotificationTopic" => call
            .params
            .str("snsTopic")
            .ok()
            .flatten()
            .is_none_or(|topic| topic.trim().is_empty()),
        "DeleteConfigurationSetEventDestination" => true,
        _ => false,
    }
}

/// The identity, or for a configuration set call the configuration set, the event names.
fn named(event: &Event) -> Option<String> {
    if let Some(identity) = &event.subject.identity {
        return Some(identity.clone());
    }
    event
        .params
        .str("configurationSetName")
        .ok()
        .flatten()
        .map(|name| capped(&name))
}

struct FeedbackTampering;

impl Detection for FeedbackTampering {
    fn considers(&self, call: &Call) -> bool {
        tampers(call)
    }

    fn applies(&self, event: &Event) -> bool {
        event.counts_as_principal
    }

    fn ask(&self, event: &Event, settings: &Settings) -> Option<Ask> {
        Some(Ask::dedup(
            format!(
                "fb|{}|{}|{}|{}|{}",
                event.account,
                event.region,
                event.principal.unwrap_or(""),
                event.subject.event_name,
                named(event).unwrap_or_default()
            ),
            settings,
        ))
    }

    fn decide(&self, event: &Event, answer: Answer, _: &Context) -> Decision {
        let opened = answer.opened();
        Decision::fire_or_duplicate(opened, || {
            let mut finding = Finding::of(&RULE, event);
            finding.subject.identity = named(event);
            finding.details();
            finding
        })
    }
}
