//! `ses-smtp-user-created` — an SES SMTP user, or an access key for one, created.
//!
//! The SES console names its SMTP users `ses-smtp-user.<yyyymmdd-hhmmss>`; an attacker creates
//! one (or a key for an existing one) because SMTP credentials survive the rotation of the key
//! they stole. `CreateUser` or `CreateAccessKey` whose `userName` starts with `ses-smtp-user`
//! (any case); any outcome fires. One signal per (account, eventName, user) per dedup window.

use super::{
    Answer, Ask, Call, Context, Decision, Detection, Event, Finding, RuleMeta, SuppressOn,
};
use super::{Severity, Trigger};
use crate::model::Settings;
use crate::text::capped;

pub const RULE: RuleMeta = RuleMeta {
    id: "ses-smtp-user-created",
    title: "SES SMTP user or credentials created",
    severity: Severity::Medium,
    tactic: "TA0003",
    tactic_name: "persistence",
    technique: "T1098.001",
    technique_name: "additional-cloud-credentials",
    triage: &[
        "Determine if the API call: `{{@evt.name}}` should have been made by the user: `{{@userIdentity.arn}}` from this IP address: `{{@network.client.ip}}` . SMTP credentials are long-lived keys: they keep sending after the key that created them is rotated.",
        "Check the user named in `details.target`: who owns it, which policies it has (`ses:SendRawEmail`), and whether its access keys have been used (IAM credential report, `GetAccessKeyLastUsed`).",
        "Look at the other actions of `{{@userIdentity.arn}}` and of the new user: SES identity verifications, sending, and other IAM users or keys created around this time.",
        "If the action is legitimate, consider including the user in a suppression list (a `[[suppressions]]` entry in the sesguard config).",
        "If the results of the triage indicate that an attacker has taken the action, delete the SMTP user's access keys and the user, disable the key that created it, and begin your company's incident response process.",
    ],
    triggers: &[Trigger::iam("CreateUser"), Trigger::iam("CreateAccessKey")],
    suppress_on: SuppressOn::Event,
    seed: "sesguard: the SES console's SMTP user naming; Permiso and Datadog Security Labs on SMTP credential abuse",
    detection: &SmtpUserCreated,
};

/// The prefix of the users the SES console creates for SMTP credentials.
const SMTP_USER_PREFIX: &str = "ses-smtp-user";

/// The SMTP user the call creates (or creates a key for), if it is one (also
/// `ses-abuse-chain`'s `privilege` stage).
pub fn smtp_user(call: &Call) -> Option<String> {
    if !matches!(call.name, "CreateUser" | "CreateAccessKey") {
        return None;
    }
    let name = call.params.str("userName").ok().flatten()?;
    let prefix = name.get(..SMTP_USER_PREFIX.len())?;
    prefix
        .eq_ignore_ascii_case(SMTP_USER_PREFIX)
        .then(|| name.into_owned())
}

struct SmtpUserCreated;

impl Detection for SmtpUserCreated {
    fn considers(&self, call: &Call) -> bool {
        smtp_user(call).is_some()
    }

    fn applies(&self, event: &Event) -> bool {
        event.counts_as_principal
    }

    fn ask(&self, event: &Event, settings: &Settings) -> Option<Ask> {
        Some(Ask::dedup(
            format!(
                "smtp|{}|{}|{}",
                event.account,
                event.subject.event_name,
                smtp_user(&event.call()).unwrap_or_default()
            ),
            settings,
        ))
    }

    fn decide(&self, event: &Event, answer: Answer, _: &Context) -> Decision {
        let opened = answer.opened();
        Decision::fire_or_duplicate(opened, || {
            let mut finding = Finding::of(&RULE, event);
            if let Some(user) = smtp_user(&event.call()) {
                finding
                    .details()
                    .insert("target".to_owned(), capped(&user).into());
            }
            finding
        })
    }
}
