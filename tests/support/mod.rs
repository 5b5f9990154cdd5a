//! What the integration tests share (each test file says `mod support;`): the record builder,
//! a gzip helper, the engine from a TOML text, the collecting sink and the rule ids, taken
//! from the registry. Each test binary uses a part of it.
#![allow(dead_code, unused_imports)]

use std::io::Write as _;
use std::path::Path;

use flate2::Compression;
use flate2::write::GzEncoder;
use serde_json::{Value, json};
use sesguard::config::{Config, Overrides};
use sesguard::rules;
use sesguard::scan::scan_text;
use sesguard::{Engine, Signal};

pub use sesguard::deliver::Collect;

mod log_buffer;
pub use log_buffer::LogBuffer;

pub const R1: &str = rules::discovery_long_term_key::RULE.id;
pub const R2: &str = rules::enumeration_unseen_user::RULE.id;
pub const R3: &str = rules::modification::RULE.id;
pub const R4: &str = rules::verify_then_delete::RULE.id;
pub const R5: &str = rules::identity_deleted::RULE.id;
// The rest of the abuse chain (issue 13).
pub const PRODUCTION_ACCESS: &str = rules::production_access_requested::RULE.id;
pub const BURST: &str = rules::sandbox_exit_burst::RULE.id;
pub const SENDING: &str = rules::sending_enabled::RULE.id;
pub const FULL_ACCESS: &str = rules::full_access_granted::RULE.id;
pub const SMTP_USER: &str = rules::smtp_user_created::RULE.id;
pub const FEEDBACK: &str = rules::feedback_tampering::RULE.id;
pub const CHAIN: &str = rules::abuse_chain::RULE.id;
/// The seven rules issue 13 adds, in the registry's order.
pub const CHAIN_RULES: [&str; 7] = [
    PRODUCTION_ACCESS,
    BURST,
    SENDING,
    FULL_ACCESS,
    SMTP_USER,
    FEEDBACK,
    CHAIN,
];
/// Every rule id, in the registry's order.
pub fn all_rules() -> Vec<&'static str> {
    rules::ALL.iter().map(|rule| rule.id).collect()
}

pub const LEAKED: &str = "arn:aws:iam::111122223333:user/ses-ops-leaked";
pub const AKIA: &str = "AKIAIOSFODNN7EXAMPLE";

/// A record builder: an SES call by an IAM user with a long-term key, at 09:00:00Z.
#[derive(Clone)]
pub struct R(pub Value);

pub fn ses(name: &str) -> R {
    R(json!({
        "eventVersion": "1.09",
        "userIdentity": {
            "type": "IAMUser",
            "principalId": "AIDAEXAMPLE",
            "arn": LEAKED,
            "accountId": "111122223333",
            "accessKeyId": AKIA,
            "userName": "ses-ops-leaked"
        },
        "eventTime": "2026-03-02T09:00:00Z",
        "eventSource": "ses.amazonaws.com",
        "eventName": name,
        "awsRegion": "us-east-1",
        "sourceIPAddress": "198.51.100.23",
        "userAgent": "aws-cli/2.15.30",
        "requestParameters": null,
        "responseElements": null,
        "eventID": format!("id-{name}"),
        "recipientAccountId": "111122223333"
    }))
}

impl R {
    pub fn set(mut self, path: &[&str], value: Value) -> Self {
        let mut target = &mut self.0;
        for key in &path[..path.len() - 1] {
            target = &mut target[*key];
        }
        target[path[path.len() - 1]] = value;
        self
    }
    pub fn id(self, id: &str) -> Self {
        self.set(&["eventID"], json!(id))
    }
    /// `minutes` after 2026-03-02T09:00:00Z (negative for before).
    pub fn at(self, minutes: i64) -> Self {
        let t = 1_772_442_000 + minutes * 60;
        let text = time_text(t);
        self.set(&["eventTime"], json!(text))
    }
    pub fn at_seconds(self, seconds: i64) -> Self {
        let text = time_text(1_772_442_000 + seconds);
        self.set(&["eventTime"], json!(text))
    }
    pub fn source(self, source: &str) -> Self {
        self.set(&["eventSource"], json!(source))
    }
    pub fn key(self, key: &str) -> Self {
        self.set(&["userIdentity", "accessKeyId"], json!(key))
    }
    pub fn ip(self, ip: &str) -> Self {
        self.set(&["sourceIPAddress"], json!(ip))
    }
    pub fn agent(self, agent: &str) -> Self {
        self.set(&["userAgent"], json!(agent))
    }
    pub fn region(self, region: &str) -> Self {
        self.set(&["awsRegion"], json!(region))
    }
    pub fn account(self, account: &str) -> Self {
        self.set(&["recipientAccountId"], json!(account))
    }
    pub fn error(self, code: &str) -> Self {
        self.set(&["errorCode"], json!(code))
            .set(&["errorMessage"], json!("denied"))
    }
    pub fn params(self, params: Value) -> Self {
        self.set(&["requestParameters"], params)
    }
    pub fn user(self, user: Value) -> Self {
        self.set(&["userIdentity"], user)
    }
    pub fn user_arn(self, arn: &str) -> Self {
        self.set(&["userIdentity", "arn"], json!(arn))
    }
    /// An assumed-role session `role/session`, with a temporary key.
    pub fn session(self, role: &str, session: &str) -> Self {
        self.user(json!({
            "type": "AssumedRole",
            "principalId": format!("AROAEXAMPLE:{session}"),
            "arn": format!("arn:aws:sts::111122223333:assumed-role/{role}/{session}"),
            "accountId": "111122223333",
            "accessKeyId": "ASIAEXAMPLE",
            "sessionContext": {
                "sessionIssuer": {
                    "type": "Role",
                    "principalId": "AROAEXAMPLE",
                    "arn": format!("arn:aws:iam::111122223333:role/{role}"),
                    "accountId": "111122223333",
                    "userName": role
                },
                "attributes": {"creationDate": "2026-03-02T08:00:00Z", "mfaAuthenticated": "false"}
            }
        }))
    }
}

/// An IAM call by the same user (IAM is global: its events carry `awsRegion` `us-east-1`).
pub fn iam(name: &str) -> R {
    ses(name).source("iam.amazonaws.com").region("us-east-1")
}

pub fn time_text(seconds: i64) -> String {
    sesguard::time::format(seconds)
}

pub fn verify(identity: &str) -> R {
    ses("VerifyEmailIdentity").params(json!({"emailAddress": identity}))
}

pub fn delete(identity: &str) -> R {
    ses("DeleteIdentity").params(json!({"identity": identity}))
}

pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
    encoder.write_all(bytes).expect("gzip");
    encoder.finish().expect("gzip")
}

pub fn config(toml: &str) -> Config {
    Config::parse(toml, Path::new("test.toml"), &Overrides::default()).expect("test config")
}

pub fn engine(toml: &str) -> Engine {
    Engine::new(config(toml))
}

/// Runs records (as JSON Lines) through `engine` and a fresh in-memory state, as `sesguard scan`
/// does; panics on input problems.
pub fn run_with(engine: &Engine, records: &[R]) -> Vec<Signal> {
    let text: String = records.iter().map(|r| format!("{}\n", r.0)).collect();
    let (out, _) = scan_text(engine, "test.jsonl", text.as_bytes());
    assert!(
        out.problems.is_empty(),
        "unexpected problems: {:?}",
        out.problems
    );
    out.signals
}

/// [`run_with`] the default settings.
pub fn run(records: &[R]) -> Vec<Signal> {
    run_with(&engine(""), records)
}

/// (rule_id, event_id) of every signal, in order.
pub fn fired(signals: &[Signal]) -> Vec<(String, String)> {
    signals
        .iter()
        .map(|s| (s.rule_id.clone(), s.subject.event_id.clone()))
        .collect()
}

pub fn of_rule<'a>(signals: &'a [Signal], rule: &str) -> Vec<&'a Signal> {
    signals.iter().filter(|s| s.rule_id == rule).collect()
}

pub fn count(signals: &[Signal], rule: &str) -> usize {
    of_rule(signals, rule).len()
}

/// The event ids of one rule's signals, in order.
pub fn event_ids<'a>(signals: &'a [Signal], rule: &str) -> Vec<&'a str> {
    of_rule(signals, rule)
        .iter()
        .map(|s| s.subject.event_id.as_str())
        .collect()
}

/// The fields every signal carries (its JSON), whatever the rule.
pub const SIGNAL_FIELDS: [&str; 23] = [
    "signal_id",
    "rule_id",
    "title",
    "severity",
    "tactic",
    "technique",
    "event_id",
    "related_event_ids",
    "event_name",
    "event_source",
    "event_time",
    "account_id",
    "region",
    "principal",
    "user_arn",
    "user_type",
    "access_key_id",
    "source_ip",
    "user_agent",
    "identity",
    "error_code",
    "tor",
    "triage",
];
