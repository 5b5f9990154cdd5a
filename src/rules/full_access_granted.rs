//! `ses-full-access-granted` — IAM rights to send through SES granted.
//!
//! The managed policy `AmazonSESFullAccess` attached to a user, role or group (any partition),
//! or an inline policy put on one with an `Allow` statement whose `Action` (a string or a list)
//! starts with `ses:` and, read as an IAM wildcard (case-insensitive, as IAM compares actions),
//! matches `ses:SendEmail` or `ses:SendRawEmail`: `ses:*`, `ses:Send*` and `ses:SendRawEmail`
//! fire; `ses:Get*`, `s3:*` and a bare `*` do not (an administrator grant is no SES signal).
//! High when the call succeeded, medium when it failed. One signal per (account, principal,
//! target, policy) per dedup window. IAM events carry `awsRegion` `us-east-1`.

use std::borrow::Cow;

use serde_json::Value;
use wildmatch::WildMatch;

use super::narrowing::{Match, Narrowing};
use super::{
    Answer, Ask, Call, Context, Decision, Detection, Event, Finding, RuleMeta, SuppressOn,
};
use super::{Severity, Trigger};
use crate::model::Settings;
use crate::text::{Arn, capped};

pub const RULE: RuleMeta = RuleMeta {
    id: "ses-full-access-granted",
    title: "IAM rights to send e-mail through SES granted",
    severity: Severity::High,
    tactic: "TA0004",
    tactic_name: "privilege-escalation",
    technique: "T1098.003",
    technique_name: "additional-cloud-roles",
    triage: &[
        "Determine if the API call: `{{@evt.name}}` should have been made by the user: `{{@userIdentity.arn}}` from this IP address: `{{@network.client.ip}}` . Rights to send mail are granted by the team that owns the mail feature, through infrastructure as code, rarely by hand.",
        "Check the grantee in `details.target_type` and `details.target`: a user created minutes earlier, or the caller granting rights to itself, is how a stolen key makes itself a sender that survives a key rotation.",
        "Read the policy in `details.policy` (and, for an inline policy, the request's `policyDocument`): which identities and regions it allows sending from.",
        "If the action is legitimate, consider including the user in a suppression list (a `[[suppressions]]` entry in the sesguard config).",
        "If the results of the triage indicate that an attacker has taken the action, detach or delete the policy, disable the keys of the caller and the grantee, and begin your company's incident response process.",
    ],
    triggers: &TRIGGERS,
    suppress_on: SuppressOn::Event,
    seed: "sesguard: Permiso and Datadog Security Labs on SES abuse (attackers grant themselves SES rights)",
    detection: &FullAccessGranted,
};

/// The calls that can grant SES sending rights, narrowed for EventBridge to those whose policy
/// may be one (also `ses-abuse-chain`'s `privilege` stage).
pub const TRIGGERS: [Trigger; 6] = [
    Trigger::iam("AttachUserPolicy").narrowed(&MANAGED_POLICY),
    Trigger::iam("AttachRolePolicy").narrowed(&MANAGED_POLICY),
    Trigger::iam("AttachGroupPolicy").narrowed(&MANAGED_POLICY),
    Trigger::iam("PutUserPolicy").narrowed(&DOCUMENT_MAY_NAME_SES),
    Trigger::iam("PutRolePolicy").narrowed(&DOCUMENT_MAY_NAME_SES),
    Trigger::iam("PutGroupPolicy").narrowed(&DOCUMENT_MAY_NAME_SES),
];

/// An attached policy can only be `AmazonSESFullAccess` (see [`is_ses_full_access`]).
const MANAGED_POLICY: Narrowing = Narrowing {
    field: "policyArn",
    any: &[Match::Suffix(":iam::aws:policy/AmazonSESFullAccess")],
};

/// An inline policy's document can only grant sending if an action in it starts with `ses:`:
/// as text, `ses:` in one of its eight cases, unless a character is written as a JSON `\u`
/// escape or the document is URL-encoded (`%`), which pass whole ([`allows_sending`] reads
/// both).
const DOCUMENT_MAY_NAME_SES: Narrowing = Narrowing {
    field: "policyDocument",
    any: &[
        Match::Wildcard("*ses:*"),
        Match::Wildcard("*seS:*"),
        Match::Wildcard("*sEs:*"),
        Match::Wildcard("*sES:*"),
        Match::Wildcard("*Ses:*"),
        Match::Wildcard("*SeS:*"),
        Match::Wildcard("*SEs:*"),
        Match::Wildcard("*SES:*"),
        Match::Wildcard("*\\\\u*"),
        Match::Wildcard("*%*"),
    ],
};

/// A grant of SES sending rights: to whom, and which policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// `user`, `role` or `group`.
    pub target_type: &'static str,
    pub target: String,
    /// The managed policy's ARN, or the inline policy's name.
    pub policy: String,
}

/// The grant of SES sending rights the call makes, if it makes one (also `ses-abuse-chain`'s
/// `privilege` stage).
pub fn grant(call: &Call) -> Option<Grant> {
    let name = call.name;
    let (attach, target_type) = match name {
        "AttachUserPolicy" => (true, "user"),
        "AttachRolePolicy" => (true, "role"),
        "AttachGroupPolicy" => (true, "group"),
        "PutUserPolicy" => (false, "user"),
        "PutRolePolicy" => (false, "role"),
        "PutGroupPolicy" => (false, "group"),
        _ => return None,
    };
    let param = |name: &str| call.params.str(name).ok().flatten();
    let policy = if attach {
        let arn = param("policyArn")?;
        is_ses_full_access(&arn).then(|| arn.into_owned())?
    } else {
        let document = call.params.raw("policyDocument").ok().flatten()?;
        if !allows_sending(document.get()) {
            return None;
        }
        param("policyName").map(Cow::into_owned).unwrap_or_default()
    };
    let target = param(&format!("{target_type}Name"))
        .map(Cow::into_owned)
        .unwrap_or_default();
    Some(Grant {
        target_type,
        target,
        policy,
    })
}

/// `arn:<partition>:iam::aws:policy/AmazonSESFullAccess`, in any partition.
fn is_ses_full_access(arn: &str) -> bool {
    Arn::parse(arn).is_some_and(|arn| {
        (arn.service, arn.region, arn.account, arn.resource)
            == ("iam", "", "aws", "policy/AmazonSESFullAccess")
    })
}

/// The actions an SES sending grant must allow (one of them).
const SENDING: [&str; 2] = ["ses:SendEmail", "ses:SendRawEmail"];

/// Whether a policy document (JSON, given as an object or as a string, possibly URL-encoded)
/// has an `Allow` statement with an SES action matching a sending action.
pub fn allows_sending(raw: &str) -> bool {
    // Most inline policies name no SES action: skip parsing those. One that does holds `ses`
    // in some case, unless its letters are written as JSON `\u` escapes or URL-encoded.
    let bytes = raw.as_bytes();
    if !bytes.windows(3).any(|w| w.eq_ignore_ascii_case(b"ses"))
        && memchr::memmem::find(bytes, b"\\u").is_none()
        && memchr::memchr(b'%', bytes).is_none()
    {
        return false;
    }
    let Ok(value) = serde_json::from_str::<Value>(raw) else {
        return false;
    };
    let document = match value {
        Value::String(text) => match parse_document(&text) {
            Some(document) => document,
            None => return false,
        },
        other => other,
    };
    let statements = match document.get("Statement") {
        Some(Value::Array(list)) => list.iter().collect(),
        Some(one @ Value::Object(_)) => vec![one],
        _ => Vec::new(),
    };
    statements.into_iter().any(|statement| {
        let allow = statement
            .get("Effect")
            .and_then(Value::as_str)
            .is_some_and(|e| e.eq_ignore_ascii_case("allow"));
        let actions: Vec<&str> = match statement.get("Action") {
            Some(Value::String(one)) => vec![one.as_str()],
            Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        allow && actions.into_iter().any(grants_sending)
    })
}

/// A policy document from its text: JSON, or URL-encoded JSON (percent-encoded, or form-encoded
/// with `+` for spaces).
fn parse_document(text: &str) -> Option<Value> {
    if let Ok(value) = serde_json::from_str::<Value>(text) {
        return Some(value);
    }
    let decode = |text: &str| -> Option<Value> {
        let decoded = percent_encoding::percent_decode_str(text)
            .decode_utf8()
            .ok()?;
        serde_json::from_str(&decoded).ok()
    };
    decode(text).or_else(|| decode(&text.replace('+', "%20")))
}

/// Whether one IAM action grants SES sending: it names SES and its wildcard covers a sending
/// action (so a bare `*`, which names no service, does not count here).
fn grants_sending(action: &str) -> bool {
    let names_ses = action
        .get(..4)
        .is_some_and(|prefix| prefix.eq_ignore_ascii_case("ses:"));
    if !names_ses {
        return false;
    }
    let pattern = WildMatch::new_case_insensitive(action);
    SENDING.iter().any(|sending| pattern.matches(sending))
}

struct FullAccessGranted;

impl Detection for FullAccessGranted {
    fn considers(&self, call: &Call) -> bool {
        grant(call).is_some()
    }

    fn applies(&self, event: &Event) -> bool {
        event.counts_as_principal
    }

    fn ask(&self, event: &Event, settings: &Settings) -> Option<Ask> {
        let grant = grant(&event.call())?;
        Some(Ask::dedup(
            format!(
                "fa|{}|{}|{}|{}",
                event.account,
                event.principal.unwrap_or(""),
                grant.target,
                grant.policy
            ),
            settings,
        ))
    }

    fn decide(&self, event: &Event, answer: Answer, _: &Context) -> Decision {
        let opened = answer.opened();
        let Some(grant) = grant(&event.call()) else {
            return Decision::default();
        };
        Decision::fire_or_duplicate(opened, || {
            let mut finding = Finding::of(&RULE, event);
            if event.subject.error_code.is_some() {
                finding.severity = Severity::Medium;
            }
            let details = finding.details();
            details.insert("target_type".to_owned(), grant.target_type.into());
            details.insert("target".to_owned(), capped(&grant.target).into());
            details.insert("policy".to_owned(), capped(&grant.policy).into());
            finding
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_ses_actions_whose_wildcard_covers_sending_count() {
        for yes in [
            "ses:*",
            "ses:Send*",
            "ses:SendRawEmail",
            "SES:sendemail",
            "ses:Send?mail",
        ] {
            assert!(grants_sending(yes), "{yes}");
        }
        for no in [
            "ses:Get*",
            "s3:*",
            "*",
            "ses:SendBounce",
            "ses",
            "sesv2:*",
            "",
        ] {
            assert!(!grants_sending(no), "{no}");
        }
    }

    #[test]
    fn the_managed_policy_is_recognised_in_any_partition_and_nothing_else() {
        assert!(is_ses_full_access(
            "arn:aws:iam::aws:policy/AmazonSESFullAccess"
        ));
        assert!(is_ses_full_access(
            "arn:aws-us-gov:iam::aws:policy/AmazonSESFullAccess"
        ));
        assert!(!is_ses_full_access(
            "arn:aws:iam::aws:policy/AmazonSESReadOnlyAccess"
        ));
        assert!(!is_ses_full_access(
            "arn:aws:iam::111122223333:policy/AmazonSESFullAccess"
        ));
        assert!(!is_ses_full_access(
            "arn:aws:iam::aws:policy/AmazonSESFullAccess2"
        ));
    }

    #[test]
    fn documents_are_read_as_objects_strings_and_url_encoded_strings() {
        let doc = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:GetObject","ses:SendRawEmail"],"Resource":"*"}]}"#;
        let encoded: String =
            percent_encoding::utf8_percent_encode(doc, percent_encoding::NON_ALPHANUMERIC)
                .to_string();
        assert!(allows_sending(doc));
        assert!(allows_sending(
            &serde_json::to_string(doc).unwrap_or_default()
        ));
        assert!(allows_sending(
            &serde_json::to_string(&encoded).unwrap_or_default()
        ));
        let deny = doc.replace("Allow", "Deny");
        assert!(!allows_sending(
            &serde_json::to_string(&deny).unwrap_or_default()
        ));
        assert!(!allows_sending(r#""not a policy""#));
        assert!(!allows_sending(
            r#"{"Statement":{"Effect":"Allow","Action":"*"}}"#
        ));
        assert!(allows_sending(
            r#"{"Statement":{"Effect":"Allow","Action":"ses:*"}}"#
        ));
    }

    #[test]
    fn actions_written_with_json_escapes_or_url_encoded_count() {
        let escaped = r#"{"Statement":{"Effect":"Allow","Action":"\u0053Es\u003aSendEmail"}}"#;
        assert!(allows_sending(
            &serde_json::to_string(escaped).unwrap_or_default()
        ));
        let encoded = "%7B%22Statement%22%3A%7B%22Effect%22%3A%22Allow%22%2C%22Action%22%3A%22%73%65%73%3A%2A%22%7D%7D";
        assert!(allows_sending(
            &serde_json::to_string(encoded).unwrap_or_default()
        ));
    }

    #[test]
    fn every_managed_policy_the_rule_reads_passes_the_narrowing() {
        for arn in [
            "arn:aws:iam::aws:policy/AmazonSESFullAccess",
            "arn:aws-cn:iam::aws:policy/AmazonSESFullAccess",
            "arn:aws-us-gov:iam::aws:policy/AmazonSESFullAccess",
        ] {
            assert!(is_ses_full_access(arn));
            assert!(
                MANAGED_POLICY.passes(Some(&Value::String(arn.to_owned()))),
                "{arn}"
            );
        }
        let other = Value::String("arn:aws:iam::aws:policy/ReadOnlyAccess".to_owned());
        assert!(!MANAGED_POLICY.passes(Some(&other)));
    }

    /// Writes `text` with each character upper-cased and/or as a JSON `\u` escape where the
    /// flags say.
    fn disguise(text: &str, upper: &[bool], escape: &[bool]) -> String {
        text.chars()
            .enumerate()
            .map(|(i, c)| {
                let c = if upper[i % upper.len()] {
                    c.to_ascii_uppercase()
                } else {
                    c
                };
                if escape[i % escape.len()] {
                    format!("\\u{:04x}", u32::from(c))
                } else {
                    c.to_string()
                }
            })
            .collect()
    }

    proptest::proptest! {
        /// The narrowing may cut only what the rule dismisses: whatever case, escapes and
        /// encoding an action is written in, a document the rule reads as a grant passes.
        #[test]
        fn every_document_the_rule_reads_as_a_grant_passes_the_narrowing(
            action in proptest::sample::select(vec![
                "ses:*", "ses:Send*", "ses:SendEmail", "ses:SendRawEmail", "ses:Send?mail",
                "ses:Get*", "s3:*", "*",
            ]),
            upper in proptest::collection::vec(proptest::bool::ANY, 1..12),
            escape in proptest::collection::vec(proptest::bool::weighted(0.2), 1..12),
            encoding in 0u8..3,
        ) {
            let action = disguise(action, &upper, &escape);
            let doc = format!(
                r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":["s3:GetObject","{action}"],"Resource":"*"}}]}}"#
            );
            let doc = match encoding {
                0 => doc,
                1 => percent_encoding::utf8_percent_encode(&doc, percent_encoding::NON_ALPHANUMERIC)
                    .to_string(),
                _ => doc.replace(' ', "+").replace('"', "%22").replace(':', "%3A"),
            };
            let raw = serde_json::to_string(&doc).unwrap_or_default();
            if allows_sending(&raw) {
                proptest::prop_assert!(DOCUMENT_MAY_NAME_SES.passes(Some(&Value::String(doc))));
            }
        }
    }
}
