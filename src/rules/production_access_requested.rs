//! `ses-production-access-requested` — a request to leave the SES sandbox.
//!
//! `PutAccountDetails` (SES v2) with `productionAccessEnabled` true asks AWS to lift the
//! sandbox, after which the account can mail anyone: the step attackers take in every region
//! minutes after they find a key (Wiz, May 2025; Permiso). Any outcome fires. One signal per
//! (account, principal) per dedup window, so a request sent to many regions gives one.

use super::{
    Answer, Ask, Call, Context, Decision, Detection, Event, Finding, RuleMeta, SuppressOn,
};
use super::{Severity, Trigger};
use crate::model::Settings;
use crate::text::capped;

pub const RULE: RuleMeta = RuleMeta {
    id: "ses-production-access-requested",
    title: "SES production access requested (leaving the sandbox)",
    severity: Severity::Medium,
    tactic: "TA0040",
    tactic_name: "impact",
    technique: "T1496",
    technique_name: "resource-hijacking",
    triage: &[
        "Determine if the API call: `{{@evt.name}}` should have been made by the user: `{{@userIdentity.arn}}` from this IP address: `{{@network.client.ip}}` . Requests for production access are rare: a team asks once per region, through a ticket, when it launches a mail feature.",
        "Read the request in the signal's `details`: an unknown website, a vague use case or a contact address outside your domains points to an attacker preparing to send phishing or spam.",
        "Check whether the same principal called `PutAccountDetails` in other regions within minutes (`ses-sandbox-exit-burst`), verified new sender identities, or changed IAM rights shortly before or after.",
        "If the request is legitimate, consider including the user in a suppression list (a `[[suppressions]]` entry in the sesguard config).",
        "If the results of the triage indicate that an attacker has taken the action, withdraw the request with AWS Support, disable the access key, and begin your company's incident response process.",
    ],
    triggers: &[Trigger::ses("PutAccountDetails")],
    suppress_on: SuppressOn::Event,
    seed: "sesguard: the sandbox exit of Wiz's May 2025 SES campaign (no public rule detects it)",
    detection: &ProductionAccessRequested,
};

/// The request parameters a signal reports, by API name, with their `details` names.
const REPORTED: [(&str, &str); 4] = [
    ("mailType", "mail_type"),
    ("websiteURL", "website_url"),
    ("useCaseDescription", "use_case_description"),
    ("contactLanguage", "contact_language"),
];
/// The most additional contact addresses a signal lists (SES accepts 4).
const MAX_CONTACTS: usize = 10;

struct ProductionAccessRequested;

impl Detection for ProductionAccessRequested {
    fn considers(&self, call: &Call) -> bool {
        call.params.bool("productionAccessEnabled").ok().flatten() == Some(true)
    }

    fn applies(&self, event: &Event) -> bool {
        event.counts_as_principal
    }

    fn ask(&self, event: &Event, settings: &Settings) -> Option<Ask> {
        Some(Ask::dedup(
            format!("pa|{}|{}", event.account, event.principal.unwrap_or("")),
            settings,
        ))
    }

    fn decide(&self, event: &Event, answer: Answer, _: &Context) -> Decision {
        let opened = answer.opened();
        Decision::fire_or_duplicate(opened, || {
            let mut finding = Finding::of(&RULE, event);
            finding.details();
            for (param, name) in REPORTED {
                if let Ok(Some(value)) = event.params.str(param) {
                    finding
                        .details()
                        .insert(name.to_owned(), capped(&value).into());
                }
            }
            let contacts = event
                .params
                .raw("additionalContactEmailAddresses")
                .ok()
                .flatten()
                .and_then(|raw| serde_json::from_str::<Vec<String>>(raw.get()).ok());
            if let Some(contacts) = contacts {
                let list: Vec<serde_json::Value> = contacts
                    .iter()
                    .take(MAX_CONTACTS)
                    .map(|c| capped(c).into())
                    .collect();
                finding
                    .details()
                    .insert("additional_contact_email_addresses".to_owned(), list.into());
            }
            finding
        })
    }
}
