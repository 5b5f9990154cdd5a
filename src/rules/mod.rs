//! The detections: the registry (the only place that lists every rule) and what the rules
//! share. Each rule is one file holding its seed metadata (title, severity, MITRE ids, triage
//! text) beside its logic; rules are pure: they ask the engine for state and decide on the
//! answer ([`Detection`]).

pub mod abuse_chain;
pub mod discovery_long_term_key;
pub mod enumeration_unseen_user;
pub mod event;
pub mod feedback_tampering;
pub mod full_access_granted;
pub mod identity_deleted;
pub mod modification;
pub mod narrowing;
pub mod production_access_requested;
mod rule;
pub mod sandbox_exit_burst;
pub mod sending_enabled;
pub mod smtp_user_created;
pub mod span;
pub mod verify_then_delete;

pub use crate::model::Severity;
pub use event::{Call, Event};
pub use rule::{
    Answer, Ask, Context, Decision, Detection, Finding, Gate, Op, RuleMeta, SuppressOn, Trigger,
};

use crate::record::Record;

pub const SES: &str = "ses.amazonaws.com";
pub const SERVICE_QUOTAS: &str = "servicequotas.amazonaws.com";
/// IAM is global: CloudTrail delivers its events to EventBridge in `us-east-1` only.
pub const IAM: &str = "iam.amazonaws.com";

/// State that several rules keep under one key. A rule's ask on such a key is `shared`, and
/// the engine answers every shared ask on one key in one step of the state port.
pub mod shared {
    use super::Event;
    use crate::model::{Seconds, Settings};

    /// One SES identity (account, region, name): `ses-verify-then-delete` pairs its adds and
    /// deletes, `ses-identity-deleted` keeps its dedup window, so a delete costs one step. The
    /// key and how long its state is kept (the longer of the two rules' windows).
    pub fn identity(event: &Event, settings: &Settings) -> (String, Seconds) {
        let key = format!(
            "id|{}|{}|{}",
            event.account,
            event.region,
            event.identity.as_deref().unwrap_or("")
        );
        (key, settings.window.max(settings.dedup))
    }
}

/// Every rule: the first five, then the rest of the abuse chain.
pub const ALL: [&RuleMeta; 12] = [
    &discovery_long_term_key::RULE,
    &enumeration_unseen_user::RULE,
    &modification::RULE,
    &verify_then_delete::RULE,
    &identity_deleted::RULE,
    &production_access_requested::RULE,
    &sandbox_exit_burst::RULE,
    &sending_enabled::RULE,
    &full_access_granted::RULE,
    &smtp_user_created::RULE,
    &feedback_tampering::RULE,
    &abuse_chain::RULE,
];

/// The rule with this id.
pub fn by_id(id: &str) -> Option<&'static RuleMeta> {
    ALL.iter().copied().find(|rule| rule.id == id)
}

/// Whether any rule reads this call, judged on eventSource and eventName alone (the cheap test
/// every record passes through; rules check the rest).
pub fn reads(record: &Record) -> bool {
    ALL.iter()
        .any(|rule| rule.triggers.iter().any(|t| t.matches_call(record)))
}

/// Whether a record's JSON text may hold a call some rule reads, without parsing it: every rule
/// needs its `eventSource` (and, for IAM, one of the call names it reads), and CloudTrail writes
/// those values without escapes, so a record that names none of them cannot match. Used to skip most records of a CloudTrail archive unparsed.
///
/// The candidate bytes memmem looks for first are chosen for CloudTrail text, where the letters
/// of `amazonaws.com` are in every field: for `ses.amazonaws.com` it looks for `e?.`, not for
/// the `z` and `w` of every `amazonaws` (86 ns instead of 117 ns a record, BENCHMARKS.md).
pub fn may_match(json: &str) -> bool {
    use memchr::arch::all::packedpair::HeuristicFrequencyRank;
    use memchr::memmem::{Finder, FinderBuilder};
    use std::sync::LazyLock;

    struct CloudTrailRank;
    impl HeuristicFrequencyRank for CloudTrailRank {
        fn rank(&self, byte: u8) -> u8 {
            match byte {
                b'"' | b'a' | b'm' | b'z' | b'o' | b'n' | b'w' | b's' | b'c' => 255,
                b'.' | b'/' | b':' | b',' | b'-' | b'_' => 200,
                b'q' | b'v' | b'j' | b'x' | b'k' => 50,
                b'a'..=b'z' => 100,
                _ => 150,
            }
        }
    }
    /// An event source, and for a source whose records are common in CloudTrail archives
    /// (IAM), the names of the calls read from it: a record must hold one of them too.
    struct Source {
        source: Finder<'static>,
        names: Vec<Finder<'static>>,
    }
    static SOURCES: LazyLock<Vec<Source>> = LazyLock::new(|| {
        let triggers = all_triggers();
        let mut sources: Vec<&'static str> = Vec::new();
        for trigger in &triggers {
            if !sources.contains(&trigger.event_source) {
                sources.push(trigger.event_source);
            }
        }
        let build = |text: &str| {
            FinderBuilder::new()
                .build_forward_with_ranker(CloudTrailRank, text)
                .into_owned()
        };
        sources
            .into_iter()
            .map(|source| Source {
                source: build(source),
                names: triggers
                    .iter()
                    .filter(|t| t.event_source == source && NAME_CHECKED.contains(&source))
                    .map(|t| build(t.event_name))
                    .collect(),
            })
            .collect()
    });
    let bytes = json.as_bytes();
    SOURCES.iter().any(|s| {
        s.source.find(bytes).is_some()
            && (s.names.is_empty() || s.names.iter().any(|name| name.find(bytes).is_some()))
    })
}

/// Event sources whose records [`may_match`] also checks for a call name: IAM's reads (`GetRole`,
/// `ListPolicies`, …) fill archives, and the rules read eight of its calls.
const NAME_CHECKED: &[&str] = &[IAM];

/// Every distinct trigger of every rule, in first-seen order.
pub fn all_triggers() -> Vec<Trigger> {
    let mut out: Vec<Trigger> = Vec::new();
    for trigger in ALL.iter().flat_map(|rule| rule.triggers.iter()) {
        if !out.contains(trigger) {
            out.push(*trigger);
        }
    }
    out
}

/// The triage steps shared by the Datadog seeds (000–003), which differ only in wording.
#[macro_export]
#[doc(hidden)]
macro_rules! datadog_triage {
    ($ip_sep:literal, $contact_intro:literal, $ir:literal) => {
        &[
            concat!(
                "Determine if the API call: `{{@evt.name}}` should have been made by the user: `{{@userIdentity.arn}}` from this IP address",
                $ip_sep,
                "`{{@network.client.ip}}` ."
            ),
            "If the action is legitimate, consider including the user in a suppression list (a `[[suppressions]]` entry in the sesguard config). `sesguard scan --explain` shows which entry hid which signal.",
            concat!(
                $contact_intro,
                "\n   - Contact the user: `{{@userIdentity.arn}}` and see if they made the API call.\n   - Look at the other actions the user `{{@userIdentity.arn}}` has taken (`sesguard timeline --principal`).\n   - Look for more traffic from the IP `{{@network.client.ip}}` (`sesguard timeline --source-ip`)."
            ),
            $ir,
        ]
    };
}

/// The EventBridge event patterns that deliver exactly the calls the rules read: one per event
/// source (and service code). Calls with a [`narrowing::Narrowing`] are grouped by it, and a
/// source with several groups gets an `$or` of them. The template's rules must match these;
/// `sesguard rules --format eventbridge` prints them.
pub fn eventbridge_patterns() -> Vec<serde_json::Value> {
    use serde_json::{Value, json};
    type Group = (Option<&'static narrowing::Narrowing>, Vec<&'static str>);
    let mut sources: Vec<(&str, Option<&str>, Vec<Group>)> = Vec::new();
    for trigger in all_triggers() {
        let index = match sources.iter().position(|(source, code, _)| {
            *source == trigger.event_source && *code == trigger.service_code
        }) {
            Some(index) => index,
            None => {
                sources.push((trigger.event_source, trigger.service_code, Vec::new()));
                sources.len() - 1
            }
        };
        let groups = &mut sources[index].2;
        match groups.iter_mut().find(|(n, _)| *n == trigger.narrowing) {
            Some((_, names)) => names.push(trigger.event_name),
            None => groups.push((trigger.narrowing, vec![trigger.event_name])),
        }
    }
    let group_pattern = |(narrowing, mut names): Group| -> Value {
        names.sort_unstable();
        names.dedup();
        let mut pattern = json!({ "eventName": names });
        if let Some(narrowing) = narrowing {
            pattern["requestParameters"] = narrowing.pattern();
        }
        pattern
    };
    sources
        .into_iter()
        .map(|(source, code, mut groups)| {
            let service = source.strip_suffix(".amazonaws.com").unwrap_or(source);
            // Unnarrowed calls first, then by first call name: a stable order.
            groups.sort_by_key(|(narrowing, names)| {
                (narrowing.is_some(), names.iter().min().copied())
            });
            let mut detail = json!({ "eventSource": [source] });
            if groups.len() == 1 {
                if let Some(group) = groups.pop()
                    && let (Value::Object(detail), Value::Object(group)) =
                        (&mut detail, group_pattern(group))
                {
                    detail.extend(group);
                }
            } else {
                let alternatives: Vec<Value> = groups.into_iter().map(group_pattern).collect();
                detail["$or"] = Value::Array(alternatives);
            }
            if let Some(code) = code {
                // Case-insensitive, as the engine compares it.
                detail["requestParameters"] =
                    json!({"serviceCode": [{"equals-ignore-case": code}]});
            }
            json!({
                "source": [format!("aws.{service}")],
                "detail-type": [crate::record::CLOUDTRAIL_API_CALL],
                "detail": detail,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_tactic_has_one_current_attack_name() {
        // ATT&CK v19: TA0005 is Stealth, TA0112 Defense Impairment (Defense Evasion was split).
        let names = [
            ("TA0003", "persistence"),
            ("TA0004", "privilege-escalation"),
            ("TA0005", "stealth"),
            ("TA0007", "discovery"),
            ("TA0040", "impact"),
            ("TA0112", "defense-impairment"),
        ];
        for rule in ALL {
            let known = names.iter().find(|(id, _)| *id == rule.tactic);
            assert_eq!(
                known.map(|(_, name)| *name),
                Some(rule.tactic_name),
                "{}: {} {}",
                rule.id,
                rule.tactic,
                rule.tactic_name
            );
        }
    }

    #[test]
    fn every_rule_has_its_own_id() {
        let mut seen = Vec::new();
        for rule in ALL {
            assert!(!seen.contains(&rule.id), "{} twice", rule.id);
            assert_eq!(by_id(rule.id).map(|r| r.id), Some(rule.id));
            seen.push(rule.id);
        }
    }

    #[test]
    fn the_prefilter_knows_every_event_source_a_trigger_names() {
        for trigger in all_triggers().iter().filter(|t| t.event_source != IAM) {
            let record = format!(r#"{{"eventSource":"{}"}}"#, trigger.event_source);
            assert!(may_match(&record), "{record}");
        }
        assert!(!may_match(
            r#"{"eventSource":"s3.amazonaws.com","eventName":"GetAccount"}"#
        ));
        // IAM records pass only with a call name the rules read.
        for trigger in all_triggers().iter().filter(|t| t.event_source == IAM) {
            let record = format!(
                r#"{{"eventSource":"{IAM}","eventName":"{}"}}"#,
                trigger.event_name
            );
            assert!(may_match(&record), "{record}");
        }
        assert!(!may_match(
            r#"{"eventSource":"iam.amazonaws.com","eventName":"GetRole"}"#
        ));
    }

    #[test]
    fn eventbridge_patterns_cover_every_trigger_once() {
        let patterns = eventbridge_patterns();
        assert_eq!(patterns.len(), 3, "{patterns:?}");
        let ses_names = patterns[0]["detail"]["eventName"]
            .as_array()
            .map_or(0, Vec::len);
        assert_eq!(patterns[0]["source"][0], "aws.ses");
        assert_eq!(
            ses_names,
            all_triggers()
                .iter()
                .filter(|t| t.event_source == SES)
                .count()
        );
        assert_eq!(ses_names, 27);
        assert_eq!(patterns[1]["source"][0], "aws.servicequotas");
        assert_eq!(
            patterns[1]["detail"]["requestParameters"]["serviceCode"][0],
            serde_json::json!({"equals-ignore-case": "ses"})
        );
        assert_eq!(
            patterns[1]["detail"]["eventName"],
            serde_json::json!([
                "GetServiceQuota",
                "ListAWSDefaultServiceQuotas",
                "ListServiceQuotas"
            ])
        );
        // IAM: one pattern, for the grants and SMTP users (delivered in us-east-1 only): the
        // SMTP user calls by name, the policy calls only where the policy may grant sending.
        assert_eq!(patterns[2]["source"][0], "aws.iam");
        assert_eq!(
            patterns[2]["detail"],
            serde_json::json!({
                "eventSource": [IAM],
                "$or": [
                    {"eventName": ["CreateAccessKey", "CreateUser"]},
                    {
                        "eventName": ["AttachGroupPolicy", "AttachRolePolicy", "AttachUserPolicy"],
                        "requestParameters": {"policyArn": [
                            {"suffix": ":iam::aws:policy/AmazonSESFullAccess"}
                        ]}
                    },
                    {
                        "eventName": ["PutGroupPolicy", "PutRolePolicy", "PutUserPolicy"],
                        "requestParameters": {"policyDocument": [
                            {"wildcard": "*ses:*"}, {"wildcard": "*seS:*"},
                            {"wildcard": "*sEs:*"}, {"wildcard": "*sES:*"},
                            {"wildcard": "*Ses:*"}, {"wildcard": "*SeS:*"},
                            {"wildcard": "*SEs:*"}, {"wildcard": "*SES:*"},
                            {"wildcard": "*\\\\u*"}, {"wildcard": "*%*"}
                        ]}
                    }
                ]
            })
        );
    }
}
