//! A signal as an OCSF 1.5 Detection Finding (class 2004): what Amazon Security Lake and the
//! SIEMs that speak OCSF ingest. `sesguard scan --format ocsf` prints one per line and the Lambda
//! publishes the same text when `SESGUARD_SIGNAL_FORMAT=ocsf`.
//!
//! The mapping (README, "Signals") is a pure function of the signal, so a finding is the same
//! bytes wherever it was decided: no wall-clock time, only the event's. Attributes OCSF has no
//! place for (the rule's `details`, the principal key, the Tor flag) go to `unmapped`. Only
//! attributes of the Detection Finding class, its objects and the `cloud` profile (declared in
//! `metadata.profiles`) are used: `tests/ocsf_check.py` validates every finding of `events/` and
//! of the test scenarios against the OCSF 1.5.0 schema and rejects unknown attributes.

use std::net::IpAddr;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::model::Severity;
use crate::signal::Signal;

/// The OCSF schema version the findings follow.
pub const OCSF_VERSION: &str = "1.5.0";
/// Findings category, Detection Finding class, Create activity: type_uid = class × 100 + activity.
const CATEGORY_UID: u32 = 2;
const CLASS_UID: u32 = 2004;
const ACTIVITY_CREATE: u32 = 1;
/// `analytic.type_id` 1: Rule.
const ANALYTIC_RULE: u32 = 1;
/// `status_id` 1: New (a signal is never updated by sesguard; triage sets the status).
const STATUS_NEW: u32 = 1;
/// `account.type_id` 10: AWS Account.
const AWS_ACCOUNT: u32 = 10;
/// `user.type_id` 99: Other, the CloudTrail identity type (`IAMUser`, `AssumedRole`, `Root`…)
/// in `type`; 0: Unknown when CloudTrail gives none.
const USER_OTHER: u32 = 99;
const USER_UNKNOWN: u32 = 0;

#[derive(Debug, Serialize)]
pub struct DetectionFinding<'a> {
    activity_id: u32,
    activity_name: &'static str,
    category_uid: u32,
    category_name: &'static str,
    class_uid: u32,
    class_name: &'static str,
    type_uid: u32,
    type_name: &'static str,
    severity_id: u32,
    severity: &'static str,
    status_id: u32,
    status: &'static str,
    is_alert: bool,
    /// The event's time, in milliseconds since the epoch (OCSF's timestamp).
    time: i64,
    message: String,
    metadata: Metadata<'a>,
    finding_info: FindingInfo<'a>,
    evidences: [Evidence<'a>; 1],
    #[serde(skip_serializing_if = "Vec::is_empty")]
    resources: Vec<Resource<'a>>,
    cloud: Cloud<'a>,
    remediation: Remediation,
    unmapped: Map<String, Value>,
}

#[derive(Debug, Serialize)]
struct Metadata<'a> {
    version: &'static str,
    uid: &'a str,
    product: Product,
    profiles: [&'static str; 1],
    original_time: &'a str,
}

#[derive(Debug, Serialize)]
struct Product {
    name: &'static str,
    vendor_name: &'static str,
    version: &'static str,
}

#[derive(Debug, Serialize)]
struct FindingInfo<'a> {
    uid: &'a str,
    title: &'a str,
    desc: String,
    analytic: Analytic<'a>,
    attacks: [Attack<'a>; 1],
    data_sources: [&'static str; 1],
    first_seen_time: i64,
    last_seen_time: i64,
    related_events: Vec<RelatedEvent<'a>>,
}

#[derive(Debug, Serialize)]
struct Analytic<'a> {
    uid: &'a str,
    name: &'a str,
    type_id: u32,
    #[serde(rename = "type")]
    kind: &'static str,
}

#[derive(Debug, Serialize)]
struct Attack<'a> {
    tactic: Named<'a>,
    technique: Named<'a>,
}

#[derive(Debug, Serialize)]
struct Named<'a> {
    uid: &'a str,
    name: &'a str,
}

#[derive(Debug, Serialize)]
struct RelatedEvent<'a> {
    uid: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    title: Option<&'a str>,
    #[serde(rename = "type")]
    kind: &'static str,
    /// Known for the signal's own event only: the signal carries the related events' ids, not
    /// their times.
    #[serde(skip_serializing_if = "Option::is_none")]
    first_seen_time: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_seen_time: Option<i64>,
}

#[derive(Debug, Serialize)]
struct Evidence<'a> {
    uid: &'a str,
    name: &'a str,
    api: Api<'a>,
    actor: Actor<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    src_endpoint: Option<Endpoint<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    http_request: Option<HttpRequest<'a>>,
}

#[derive(Debug, Serialize)]
struct Api<'a> {
    operation: &'a str,
    service: Service<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    response: Option<Response<'a>>,
}

#[derive(Debug, Serialize)]
struct Service<'a> {
    name: &'a str,
}

#[derive(Debug, Serialize)]
struct Response<'a> {
    error: &'a str,
}

#[derive(Debug, Serialize)]
struct Actor<'a> {
    user: User<'a>,
}

#[derive(Debug, Serialize)]
struct User<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    uid: Option<&'a str>,
    type_id: u32,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    kind: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    credential_uid: Option<&'a str>,
    account: Account<'a>,
}

#[derive(Debug, Serialize)]
struct Account<'a> {
    uid: &'a str,
    type_id: u32,
    #[serde(rename = "type")]
    kind: &'static str,
}

/// CloudTrail's `sourceIPAddress` is an address, or a service's name when a service called on
/// the user's behalf (`ses.amazonaws.com`, `AWS Internal`): OCSF's `ip` takes only the first.
#[derive(Debug, Serialize)]
struct Endpoint<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    ip: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    svc_name: Option<&'a str>,
}

#[derive(Debug, Serialize)]
struct HttpRequest<'a> {
    user_agent: &'a str,
}

#[derive(Debug, Serialize)]
struct Resource<'a> {
    uid: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    region: &'a str,
}

#[derive(Debug, Serialize)]
struct Cloud<'a> {
    provider: &'static str,
    account: Account<'a>,
    region: &'a str,
}

#[derive(Debug, Serialize)]
struct Remediation {
    desc: String,
}

/// OCSF's `severity_id` and its caption.
pub fn severity(severity: Severity) -> (u32, &'static str) {
    match severity {
        Severity::Info => (1, "Informational"),
        Severity::Low => (2, "Low"),
        Severity::Medium => (3, "Medium"),
        Severity::High => (4, "High"),
        Severity::Critical => (5, "Critical"),
    }
}

/// The event time in milliseconds. The engine evaluated the event, so its time parsed; 0 would
/// only mark a signal built by hand with a time that does not.
fn millis(event_time: &str) -> i64 {
    crate::time::parse_event_time(event_time).map_or(0, |s| s.saturating_mul(1000))
}

impl<'a> DetectionFinding<'a> {
    /// The finding of `signal`.
    pub fn of(signal: &'a Signal) -> Self {
        let s = &signal.subject;
        let time = millis(&s.event_time);
        let (severity_id, severity) = severity(signal.severity);
        let account = || Account {
            uid: &s.account_id,
            type_id: AWS_ACCOUNT,
            kind: "AWS Account",
        };
        let mut related_events = vec![RelatedEvent {
            uid: &s.event_id,
            title: Some(&s.event_name),
            kind: "CloudTrail event",
            first_seen_time: Some(time),
            last_seen_time: Some(time),
        }];
        related_events.extend(signal.related_event_ids.iter().map(|id| RelatedEvent {
            uid: id,
            title: None,
            kind: "CloudTrail event",
            first_seen_time: None,
            last_seen_time: None,
        }));
        let src_endpoint = s.source_ip.as_deref().map(|source| {
            if source.parse::<IpAddr>().is_ok() {
                Endpoint {
                    ip: Some(source),
                    svc_name: None,
                }
            } else {
                Endpoint {
                    ip: None,
                    svc_name: Some(source),
                }
            }
        });
        let mut unmapped = Map::new();
        if let Some(principal) = &s.principal {
            unmapped.insert("principal".to_owned(), principal.clone().into());
        }
        unmapped.insert("tor".to_owned(), s.tor.into());
        if s.text_replaced {
            unmapped.insert("text_replaced".to_owned(), true.into());
        }
        if let Some(details) = &signal.details {
            unmapped.insert("details".to_owned(), Value::Object(details.clone()));
        }
        DetectionFinding {
            activity_id: ACTIVITY_CREATE,
            activity_name: "Create",
            category_uid: CATEGORY_UID,
            category_name: "Findings",
            class_uid: CLASS_UID,
            class_name: "Detection Finding",
            type_uid: CLASS_UID * 100 + ACTIVITY_CREATE,
            type_name: "Detection Finding: Create",
            severity_id,
            severity,
            status_id: STATUS_NEW,
            status: "New",
            is_alert: true,
            time,
            message: signal.short_title(),
            metadata: Metadata {
                version: OCSF_VERSION,
                uid: &signal.signal_id,
                product: Product {
                    name: "sesguard",
                    vendor_name: "sesguard",
                    version: env!("CARGO_PKG_VERSION"),
                },
                profiles: ["cloud"],
                original_time: &s.event_time,
            },
            finding_info: FindingInfo {
                uid: &signal.signal_id,
                title: &signal.title,
                desc: signal.short_title(),
                analytic: Analytic {
                    uid: &signal.rule_id,
                    name: &signal.rule_id,
                    type_id: ANALYTIC_RULE,
                    kind: "Rule",
                },
                attacks: [Attack {
                    tactic: Named {
                        uid: &signal.tactic,
                        name: &signal.tactic_name,
                    },
                    technique: Named {
                        uid: &signal.technique,
                        name: &signal.technique_name,
                    },
                }],
                data_sources: ["AWS CloudTrail"],
                first_seen_time: time,
                last_seen_time: time,
                related_events,
            },
            evidences: [Evidence {
                uid: &s.event_id,
                name: &s.event_name,
                api: Api {
                    operation: &s.event_name,
                    service: Service {
                        name: &s.event_source,
                    },
                    response: s.error_code.as_deref().map(|error| Response { error }),
                },
                actor: Actor {
                    user: User {
                        uid: s.user_arn.as_deref().or(s.principal.as_deref()),
                        type_id: if s.user_type.is_some() {
                            USER_OTHER
                        } else {
                            USER_UNKNOWN
                        },
                        kind: s.user_type.as_deref(),
                        credential_uid: s.access_key_id.as_deref(),
                        account: account(),
                    },
                },
                src_endpoint,
                http_request: s
                    .user_agent
                    .as_deref()
                    .map(|user_agent| HttpRequest { user_agent }),
            }],
            resources: s
                .identity
                .as_deref()
                .map(|identity| Resource {
                    uid: identity,
                    kind: "SES identity",
                    region: &s.region,
                })
                .into_iter()
                .collect(),
            cloud: Cloud {
                provider: "AWS",
                account: account(),
                region: &s.region,
            },
            remediation: Remediation {
                desc: signal
                    .triage
                    .iter()
                    .enumerate()
                    .map(|(i, step)| format!("{}. {step}", i + 1))
                    .collect::<Vec<_>>()
                    .join("\n"),
            },
            unmapped,
        }
    }
}

/// The finding of `signal` as one line of JSON.
pub fn to_json(signal: &Signal) -> String {
    // Strings, numbers and maps of JSON values: serialising cannot fail.
    serde_json::to_string(&DetectionFinding::of(signal)).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Subject;

    fn signal() -> Signal {
        Signal {
            signal_id: "fc5c17d1-0000-5000-8000-000000000000".to_owned(),
            rule_id: "ses-verify-then-delete".to_owned(),
            title: "AWS SES add verified identity followed by the deletion of the identity"
                .to_owned(),
            severity: Severity::High,
            tactic: "TA0005".to_owned(),
            tactic_name: "stealth".to_owned(),
            technique: "T1070".to_owned(),
            technique_name: "indicator-removal".to_owned(),
            subject: Subject {
                event_id: "5e1093f0".to_owned(),
                event_name: "DeleteIdentity".to_owned(),
                event_source: "ses.amazonaws.com".to_owned(),
                event_time: "2026-03-02T09:40:00Z".to_owned(),
                account_id: "111122223333".to_owned(),
                region: "us-east-1".to_owned(),
                principal: Some("arn:aws:iam::111122223333:user/leaked".to_owned()),
                user_arn: Some("arn:aws:iam::111122223333:user/leaked".to_owned()),
                user_type: Some("IAMUser".to_owned()),
                access_key_id: Some("AKIAIOSFODNN7EXAMPLE".to_owned()),
                source_ip: Some("198.51.100.23".to_owned()),
                identity: Some("phish@example.net".to_owned()),
                ..Subject::default()
            },
            related_event_ids: vec!["7097adec".to_owned()],
            shadow: false,
            details: Some(Map::from_iter([("paired_adds".to_owned(), 1.into())])),
            triage: vec!["Was it expected?".to_owned(), "Rotate the key.".to_owned()],
        }
    }

    #[test]
    fn the_signal_maps_to_the_detection_finding_fields() {
        let finding: Value = serde_json::from_str(&to_json(&signal())).expect("json");
        let at = |path: &str| finding.pointer(path).cloned().unwrap_or(Value::Null);
        assert_eq!(at("/class_uid"), 2004);
        assert_eq!(at("/type_uid"), 200_401);
        assert_eq!(at("/category_uid"), 2);
        assert_eq!(at("/metadata/version"), "1.5.0");
        assert_eq!(at("/metadata/product/name"), "sesguard");
        assert_eq!(at("/time"), 1_772_444_400_000_i64);
        assert_eq!(at("/severity_id"), 4);
        assert_eq!(at("/severity"), "High");
        assert_eq!(
            at("/finding_info/uid"),
            "fc5c17d1-0000-5000-8000-000000000000"
        );
        assert_eq!(at("/finding_info/analytic/uid"), "ses-verify-then-delete");
        assert_eq!(at("/finding_info/analytic/type"), "Rule");
        assert_eq!(at("/finding_info/attacks/0/technique/uid"), "T1070");
        assert_eq!(at("/finding_info/related_events/0/uid"), "5e1093f0");
        assert_eq!(
            at("/finding_info/related_events/0/first_seen_time"),
            1_772_444_400_000_i64
        );
        assert_eq!(at("/finding_info/related_events/1/uid"), "7097adec");
        assert_eq!(
            at("/evidences/0/actor/user/credential_uid"),
            "AKIAIOSFODNN7EXAMPLE"
        );
        assert_eq!(at("/evidences/0/actor/user/type"), "IAMUser");
        assert_eq!(at("/evidences/0/src_endpoint/ip"), "198.51.100.23");
        assert_eq!(at("/cloud/account/uid"), "111122223333");
        assert_eq!(at("/cloud/region"), "us-east-1");
        assert_eq!(
            at("/remediation/desc"),
            "1. Was it expected?\n2. Rotate the key."
        );
        assert_eq!(at("/unmapped/details/paired_adds"), 1);
        assert_eq!(at("/resources/0/uid"), "phish@example.net");
    }

    #[test]
    fn a_service_as_source_is_a_service_name_not_an_address() {
        let mut signal = signal();
        signal.subject.source_ip = Some("ses.amazonaws.com".to_owned());
        let finding: Value = serde_json::from_str(&to_json(&signal)).expect("json");
        assert_eq!(
            finding.pointer("/evidences/0/src_endpoint"),
            Some(&serde_json::json!({"svc_name": "ses.amazonaws.com"}))
        );
    }
}
