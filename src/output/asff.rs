//! A signal as an AWS Security Finding Format (ASFF) finding, what Security Hub's
//! `BatchImportFindings` takes (issue 18, item 2), and what its answer means ([`import_result`]).
//! The call itself is the Lambda's (`sesguard_lambda::aws::security_hub`).
//!
//! - `Id` is the signal id: a retried or duplicated event re-imports the same finding, which
//!   Security Hub updates in place, never adding a second one.
//! - `ProductArn` is the account's own custom integration, `product/<account>/default`, and
//!   `AwsAccountId` the account importing it (the detector's): Security Hub accepts findings of
//!   that product only for its own account. The event's account and region are in `Resources`
//!   and `ProductFields`.
//! - Severity and types are set through `FindingProviderFields` (and the top-level fields, which
//!   Security Hub fills from them on create anyway), so a later triage by a person (Workflow,
//!   severity changes made in the console) is not overwritten by a re-import.
//! - Every string is cut to the length Security Hub accepts for its field, so a finding is
//!   always far below [`MAX_FINDING_BYTES`] whatever the caller put in the event.

use serde_json::{Map, Value, json};

use crate::model::Severity;
use crate::signal::Signal;
use crate::text::{Arn, truncate};

/// Security Hub's limit for one finding.
pub const MAX_FINDING_BYTES: usize = 240 * 1024;
/// Security Hub's limit of findings per `BatchImportFindings` call.
pub const MAX_BATCH: usize = 100;
/// ASFF's only schema version.
const SCHEMA_VERSION: &str = "2018-10-08";

/// The custom integration every account has: `arn:<partition>:securityhub:<region>:<account>:
/// product/<account>/default`.
pub fn product_arn(partition: &str, region: &str, account: &str) -> String {
    format!("arn:{partition}:securityhub:{region}:{account}:product/{account}/default")
}

/// Security Hub's severity label.
pub fn severity_label(severity: Severity) -> &'static str {
    match severity {
        Severity::Info => "INFORMATIONAL",
        Severity::Low => "LOW",
        Severity::Medium => "MEDIUM",
        Severity::High => "HIGH",
        Severity::Critical => "CRITICAL",
    }
}

/// The finding type: the `TTPs` namespace, the ATT&CK tactic as its category, the technique as
/// its classifier (`TTPs/Defense Evasion/T1070 indicator-removal`).
pub fn finding_type(signal: &Signal) -> String {
    let tactic = match signal.tactic_name.as_str() {
        "stealth" | "defense-impairment" => "Defense Evasion".to_owned(),
        other => other
            .split('-')
            .map(|word| {
                let mut chars = word.chars();
                chars.next().map_or_else(String::new, |first| {
                    first.to_uppercase().chain(chars).collect::<String>()
                })
            })
            .collect::<Vec<_>>()
            .join(" "),
    };
    truncate(
        &format!(
            "TTPs/{tactic}/{} {}",
            signal.technique, signal.technique_name
        ),
        250,
    )
}

/// The resources a finding is about: the caller (its ARN; for an assumed role, the role), its
/// access key, else the event's account.
fn resources(signal: &Signal) -> Vec<Value> {
    let s = &signal.subject;
    let mut out = Vec::new();
    let caller = s.principal.as_deref().or(s.user_arn.as_deref());
    if let Some(arn) = caller.and_then(Arn::parse) {
        let kind = if arn.resource.starts_with("role/") {
            "AwsIamRole"
        } else if arn.resource.starts_with("user/") {
            "AwsIamUser"
        } else {
            "Other"
        };
        out.push(json!({
            "Type": kind,
            "Id": truncate(caller.unwrap_or_default(), 500),
            "Partition": partition(arn.partition),
            "Region": truncate(&s.region, 50),
        }));
    }
    if let Some(key) = &s.access_key_id {
        out.push(json!({
            "Type": "AwsIamAccessKey",
            "Id": truncate(key, 500),
            "Partition": partition(caller.and_then(Arn::parse).map_or("aws", |a| a.partition)),
            "Region": truncate(&s.region, 50),
        }));
    }
    if out.is_empty() {
        out.push(json!({
            "Type": "AwsAccount",
            "Id": truncate(&format!("AWS::::Account:{}", s.account_id), 500),
            "Partition": "aws",
            "Region": truncate(&s.region, 50),
        }));
    }
    out
}

/// ASFF's `Partition` takes three values.
fn partition(text: &str) -> &'static str {
    match text {
        "aws-cn" => "aws-cn",
        "aws-us-gov" => "aws-us-gov",
        _ => "aws",
    }
}

/// The finding of `signal` for `product_arn`, imported by `account` (the detector's).
pub fn finding(signal: &Signal, product_arn: &str, account: &str) -> Value {
    let s = &signal.subject;
    let label = severity_label(signal.severity);
    let kind = finding_type(signal);
    let mut fields = Map::new();
    let mut field = |name: &str, value: &str| {
        // ProductFields values: at most 2048 characters.
        fields.insert(format!("sesguard/{name}"), truncate(value, 2000).into());
    };
    field("rule_id", &signal.rule_id);
    field("event_id", &s.event_id);
    field("event_name", &s.event_name);
    field("event_source", &s.event_source);
    field("event_time", &s.event_time);
    field("account_id", &s.account_id);
    field("region", &s.region);
    for (name, value) in [
        ("user_arn", &s.user_arn),
        ("access_key_id", &s.access_key_id),
        ("source_ip", &s.source_ip),
        ("user_agent", &s.user_agent),
        ("identity", &s.identity),
        ("error_code", &s.error_code),
    ] {
        if let Some(value) = value {
            field(name, value);
        }
    }
    if !signal.related_event_ids.is_empty() {
        field("related_event_ids", &signal.related_event_ids.join(","));
    }
    if let Some(details) = &signal.details {
        field(
            "details",
            &serde_json::to_string(details).unwrap_or_default(),
        );
    }
    let triage: Vec<String> = signal
        .triage
        .iter()
        .enumerate()
        .map(|(i, step)| format!("{}. {step}", i + 1))
        .collect();
    json!({
        "SchemaVersion": SCHEMA_VERSION,
        "Id": truncate(&signal.signal_id, 500),
        "ProductArn": product_arn,
        "ProductName": "sesguard",
        "CompanyName": "sesguard",
        "GeneratorId": truncate(&signal.rule_id, 500),
        "AwsAccountId": account,
        "Region": truncate(&s.region, 50),
        "Types": [kind],
        "CreatedAt": s.event_time,
        "UpdatedAt": s.event_time,
        "FirstObservedAt": s.event_time,
        "LastObservedAt": s.event_time,
        "Severity": {"Label": label, "Original": signal.severity.as_str()},
        "FindingProviderFields": {
            "Severity": {"Label": label, "Original": signal.severity.as_str()},
            "Types": [kind],
        },
        "Title": truncate(&signal.title, 250),
        "Description": truncate(&signal.short_title(), 1000),
        "Remediation": {"Recommendation": {"Text": truncate(&triage.join(" "), 500)}},
        "ProductFields": fields,
        "Resources": resources(signal),
        "RecordState": "ACTIVE",
    })
}

/// A product ARN of the account's own custom integration, read back into its parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProductArn {
    pub partition: String,
    pub region: String,
    pub account: String,
}

impl ProductArn {
    /// `arn:<partition>:securityhub:<region>:<account>:product/<account>/default`, else `None`.
    pub fn parse(text: &str) -> Option<Self> {
        let mut parts = text.splitn(6, ':');
        let (arn, partition, service, region, account, resource) = (
            parts.next()?,
            parts.next()?,
            parts.next()?,
            parts.next()?,
            parts.next()?,
            parts.next()?,
        );
        let plain =
            |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
        let ok = arn == "arn"
            && service == "securityhub"
            && plain(partition)
            && plain(region)
            && account.len() == 12
            && account.bytes().all(|b| b.is_ascii_digit())
            && resource == format!("product/{account}/default");
        ok.then(|| ProductArn {
            partition: partition.to_owned(),
            region: region.to_owned(),
            account: account.to_owned(),
        })
    }

    pub fn arn(&self) -> String {
        product_arn(&self.partition, &self.region, &self.account)
    }

    /// Security Hub's regional endpoint.
    pub fn endpoint(&self) -> String {
        let suffix = if self.partition == "aws-cn" {
            "amazonaws.com.cn"
        } else {
            "amazonaws.com"
        };
        format!("https://securityhub.{}.{suffix}", self.region)
    }
}

/// One finding `BatchImportFindings` did not take: its Id (a signal id: sesguard's own text) and
/// Security Hub's error code, cut to letters, digits and `._-` (its message, which may quote
/// the finding's attacker-chosen fields, is not kept).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    pub id: String,
    pub code: String,
}

/// Why an import failed. Every one of them fails the invocation, which Lambda retries: the same
/// Ids update the findings already imported.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The call answered with an HTTP error (`code`: Security Hub's error type, sanitised).
    #[error("BatchImportFindings answered HTTP {status} {code}")]
    Status { status: u16, code: String },
    /// The call succeeded but some findings were not imported.
    #[error("BatchImportFindings failed {} finding(s): {}", .0.len(), describe_rejected(.0))]
    Rejected(Vec<Rejected>),
    /// The call's answer is not `BatchImportFindings`' (a proxy, a truncated body).
    #[error("BatchImportFindings answered HTTP {status} with an unreadable body")]
    Unreadable { status: u16 },
    /// A finding over [`MAX_FINDING_BYTES`] (the mapping's caps make it impossible), not sent.
    #[error("finding {id} is over {MAX_FINDING_BYTES} bytes")]
    TooLarge { id: String },
    /// The call could not be made or timed out (`timed_out`), or no credentials were found.
    #[error("BatchImportFindings: {message}")]
    Call { message: String, timed_out: bool },
}

impl ImportError {
    /// What kind of failure it is: throttling and a 5xx, a timeout, a network failure and
    /// rejected findings are transient (the issue: "failed findings fail the invocation as a
    /// transient error"); a 401/403 (Security Hub not enabled, the permission missing) needs a
    /// person, another 4xx is an invalid request.
    pub fn kind(&self) -> crate::model::FailureKind {
        use crate::model::FailureKind;
        match self {
            ImportError::Status { status: 429, .. } => FailureKind::Throttled,
            ImportError::Status { status, .. } if *status >= 500 => FailureKind::Unavailable,
            ImportError::Status {
                status: 401 | 403, ..
            } => FailureKind::Denied,
            ImportError::Status { .. } => FailureKind::Invalid,
            ImportError::Rejected(_) | ImportError::Unreadable { .. } => FailureKind::Unavailable,
            ImportError::TooLarge { .. } => FailureKind::TooLarge,
            ImportError::Call {
                timed_out: true, ..
            } => FailureKind::TimedOut,
            ImportError::Call { .. } => FailureKind::Unavailable,
        }
    }
}

fn describe_rejected(rejected: &[Rejected]) -> String {
    let mut shown: Vec<String> = rejected
        .iter()
        .take(10)
        .map(|r| format!("{} ({})", r.id, r.code))
        .collect();
    if rejected.len() > 10 {
        shown.push(format!("and {} more", rejected.len() - 10));
    }
    shown.join(", ")
}

/// `text` as an error code or id safe for a log line: letters, digits and `._-`, at most
/// `max` of them.
fn sanitised(text: &str, max: usize) -> String {
    let kept: String = text
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        .take(max)
        .collect();
    if kept.is_empty() {
        "unknown".to_owned()
    } else {
        kept
    }
}

/// What a `BatchImportFindings` answer (`status`, `body`) means: `Ok(imported)` when every
/// finding was taken.
pub fn import_result(status: u16, body: &[u8]) -> Result<u64, ImportError> {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    if !(200..300).contains(&status) {
        // REST-JSON errors name their type in `__type`, `code` or the `x-amzn-errortype`
        // header (the caller passes the body only; the type is enough to act on).
        let code = parsed
            .as_ref()
            .and_then(|v| {
                v.get("__type")
                    .or_else(|| v.get("code"))
                    .or_else(|| v.get("Code"))
            })
            .and_then(Value::as_str)
            .map(|t| t.rsplit('#').next().unwrap_or(t))
            .map_or_else(|| "unknown".to_owned(), |t| sanitised(t, 64));
        return Err(ImportError::Status { status, code });
    }
    let Some(answer) = parsed.filter(|v| v.get("SuccessCount").is_some()) else {
        return Err(ImportError::Unreadable { status });
    };
    let failed_count = answer["FailedCount"].as_u64().unwrap_or(0);
    let rejected: Vec<Rejected> = answer["FailedFindings"]
        .as_array()
        .map(|failed| {
            failed
                .iter()
                .map(|f| Rejected {
                    id: sanitised(f["Id"].as_str().unwrap_or(""), 100),
                    code: sanitised(f["ErrorCode"].as_str().unwrap_or(""), 64),
                })
                .collect()
        })
        .unwrap_or_default();
    if failed_count > 0 || !rejected.is_empty() {
        return Err(ImportError::Rejected(if rejected.is_empty() {
            vec![Rejected {
                id: "unknown".to_owned(),
                code: format!("{failed_count}-failed"),
            }]
        } else {
            rejected
        }));
    }
    Ok(answer["SuccessCount"].as_u64().unwrap_or(0))
}

/// `findings` in batches Security Hub takes: at most [`MAX_BATCH`] a call.
pub fn batches(findings: &[Value]) -> impl Iterator<Item = &[Value]> {
    findings.chunks(MAX_BATCH)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Subject;
    use crate::text::capped;

    fn signal(subject: Subject) -> Signal {
        Signal {
            signal_id: "31e68675-7450-58c5-a741-4d0d080e441e".to_owned(),
            rule_id: "ses-identity-deleted".to_owned(),
            title: "SES identity has been deleted".to_owned(),
            severity: Severity::Medium,
            tactic: "TA0005".to_owned(),
            tactic_name: "stealth".to_owned(),
            technique: "T1070".to_owned(),
            technique_name: "indicator-removal".to_owned(),
            subject,
            related_event_ids: Vec::new(),
            shadow: false,
            details: None,
            triage: vec!["Was it expected?".to_owned()],
        }
    }

    fn subject() -> Subject {
        Subject {
            event_id: "5e1093f0".to_owned(),
            event_name: "DeleteIdentity".to_owned(),
            event_source: "ses.amazonaws.com".to_owned(),
            event_time: "2026-03-02T09:40:00Z".to_owned(),
            account_id: "444455556666".to_owned(),
            region: "eu-west-1".to_owned(),
            principal: Some("arn:aws:iam::444455556666:user/leaked".to_owned()),
            user_arn: Some("arn:aws:iam::444455556666:user/leaked".to_owned()),
            access_key_id: Some("AKIAIOSFODNN7EXAMPLE".to_owned()),
            ..Subject::default()
        }
    }

    #[test]
    fn the_finding_is_the_signal_under_its_id_with_severity_types_and_resources() {
        let arn = product_arn("aws", "us-east-1", "111122223333");
        assert_eq!(
            arn,
            "arn:aws:securityhub:us-east-1:111122223333:product/111122223333/default"
        );
        let finding = finding(&signal(subject()), &arn, "111122223333");
        assert_eq!(finding["Id"], "31e68675-7450-58c5-a741-4d0d080e441e");
        assert_eq!(finding["ProductArn"], arn.as_str());
        assert_eq!(finding["AwsAccountId"], "111122223333");
        assert_eq!(finding["GeneratorId"], "ses-identity-deleted");
        assert_eq!(
            finding["FindingProviderFields"]["Severity"]["Label"],
            "MEDIUM"
        );
        assert_eq!(
            finding["FindingProviderFields"]["Types"][0],
            "TTPs/Defense Evasion/T1070 indicator-removal"
        );
        assert_eq!(finding["Resources"][0]["Type"], "AwsIamUser");
        assert_eq!(
            finding["Resources"][0]["Id"],
            "arn:aws:iam::444455556666:user/leaked"
        );
        assert_eq!(finding["Resources"][1]["Type"], "AwsIamAccessKey");
        assert_eq!(finding["Resources"][1]["Id"], "AKIAIOSFODNN7EXAMPLE");
        assert_eq!(
            finding["ProductFields"]["sesguard/account_id"],
            "444455556666"
        );
    }

    #[test]
    fn hostile_strings_keep_the_finding_far_below_its_limit() {
        let huge = capped(&"\"\u{202e}\n".repeat(2_000_000));
        let mut subject = subject();
        subject.principal = Some(format!("arn:aws:iam::1:role/{huge}"));
        subject.user_arn = Some(huge.clone());
        subject.identity = Some(huge.clone());
        subject.user_agent = Some(huge.clone());
        subject.event_name = huge.clone();
        let mut signal = signal(subject);
        signal.triage = vec![huge.clone(); 10];
        signal.related_event_ids = vec![huge; 20];
        let finding = finding(&signal, "arn", "111122223333");
        let bytes = serde_json::to_string(&finding).map_or(0, |t| t.len());
        assert!(bytes < MAX_FINDING_BYTES / 4, "{bytes} bytes");
        assert_eq!(finding["Resources"][0]["Type"], "AwsIamRole");
    }

    #[test]
    fn a_caller_without_an_arn_or_key_leaves_the_account_as_the_resource() {
        let subject = Subject {
            principal: None,
            user_arn: None,
            access_key_id: None,
            ..subject()
        };
        let finding = finding(&signal(subject), "arn", "111122223333");
        assert_eq!(
            finding["Resources"],
            json!([{"Type": "AwsAccount", "Id": "AWS::::Account:444455556666",
                    "Partition": "aws", "Region": "eu-west-1"}])
        );
    }

    #[test]
    fn batches_hold_at_most_a_hundred_findings() {
        let findings = vec![Value::Null; 250];
        let sizes: Vec<usize> = batches(&findings).map(<[Value]>::len).collect();
        assert_eq!(sizes, [100, 100, 50]);
    }

    #[test]
    fn the_product_arn_is_read_back_and_anything_else_refused() {
        let arn = ProductArn::parse(
            "arn:aws:securityhub:eu-west-1:111122223333:product/111122223333/default",
        )
        .expect("arn");
        assert_eq!(arn.account, "111122223333");
        assert_eq!(
            arn.endpoint(),
            "https://securityhub.eu-west-1.amazonaws.com"
        );
        assert_eq!(
            arn.arn(),
            "arn:aws:securityhub:eu-west-1:111122223333:product/111122223333/default"
        );
        for bad in [
            "arn:aws:securityhub:eu-west-1:111122223333:product/444455556666/default",
            "arn:aws:sns:eu-west-1:111122223333:product/111122223333/default",
            "arn:aws:securityhub:eu-west-1:1111:product/1111/default",
            "arn:aws:securityhub:eu west:111122223333:product/111122223333/default",
            "arn:aws:securityhub::111122223333:product/111122223333/default",
            "product/111122223333/default",
        ] {
            assert_eq!(ProductArn::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn an_answer_with_failed_findings_or_an_http_error_is_an_import_error() {
        use crate::model::FailureKind;
        assert_eq!(
            import_result(
                200,
                br#"{"FailedCount":0,"SuccessCount":2,"FailedFindings":[]}"#
            )
            .expect("imported"),
            2
        );
        let err = import_result(
            200,
            br#"{"FailedCount":1,"SuccessCount":0,"FailedFindings":[{"Id":"sig-1\n\u202e<b>","ErrorCode":"InvalidInput \u001b[31m","ErrorMessage":"Finding field evil\u202e"}]}"#,
        )
        .expect_err("rejected");
        assert_eq!(err.kind(), FailureKind::Unavailable);
        assert!(err.kind().is_transient());
        assert_eq!(
            err.to_string(),
            "BatchImportFindings failed 1 finding(s): sig-1b (InvalidInput31m)"
        );
        let err = import_result(200, br#"{"FailedCount":3,"SuccessCount":0}"#).expect_err("3");
        assert!(matches!(err, ImportError::Rejected(_)), "{err}");
        for (status, kind) in [
            (429, FailureKind::Throttled),
            (500, FailureKind::Unavailable),
            (503, FailureKind::Unavailable),
            (403, FailureKind::Denied),
            (400, FailureKind::Invalid),
        ] {
            let err = import_result(status, br#"{"__type":"x#InvalidAccessException"}"#)
                .expect_err("status");
            assert_eq!(err.kind(), kind, "{status}");
            assert_eq!(
                err.to_string(),
                format!("BatchImportFindings answered HTTP {status} InvalidAccessException")
            );
        }
        assert!(matches!(
            import_result(200, b"<html>"),
            Err(ImportError::Unreadable { status: 200 })
        ));
    }
}
