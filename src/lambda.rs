//! The Lambda's work, apart from the runtime: one invocation payload in, its records through
//! the delivery loop ([`crate::deliver`], which documents the exactly-once protocol), signals
//! out to a [`Sink`] (SNS), state in a [`State`] (DynamoDB). `src/bin/sesguard-lambda.rs` only
//! wires AWS clients to it.

use std::sync::Arc;

use crate::deliver::{Counts, DeliverError, Delivery, Sink, SinkError};
use crate::engine::Engine;
use crate::input::{self, InputError, Position, Visitor};
use crate::state::{State, StateError};
use crate::text::truncate;

#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    /// The event can never be evaluated; after Lambda's retries it lands in the on-failure
    /// destination instead of vanishing.
    #[error("malformed event: {0}")]
    Malformed(String),
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Publish(#[from] SinkError),
    /// A concurrent invocation holds the claim of a signal of this event; retried later, this
    /// event finds it published (nothing to do) or the claimer gone (it publishes).
    #[error("{0} signal(s) of this event are being published by another invocation; retry later")]
    InFlight(u64),
}

impl HandlerError {
    /// Whether a retry may succeed: throttling, a 5xx, a timeout, a claim in flight. The others
    /// (a malformed event, a missing table, a denied permission) fail on every retry and end in
    /// the on-failure destination.
    pub fn is_transient(&self) -> bool {
        match self {
            HandlerError::Malformed(_) => false,
            HandlerError::State(err) => err.is_transient(),
            HandlerError::Publish(err) => err.is_transient(),
            HandlerError::InFlight(_) => true,
        }
    }

    /// The `errorType` Lambda reports (and the on-failure destination's record carries).
    pub fn error_type(&self) -> &'static str {
        match self {
            HandlerError::Malformed(_) => "sesguard.MalformedEvent",
            HandlerError::State(err) if err.is_transient() => "sesguard.StateUnavailable",
            HandlerError::State(_) => "sesguard.StateError",
            HandlerError::Publish(err) if err.is_transient() => "sesguard.PublishUnavailable",
            HandlerError::Publish(_) => "sesguard.PublishError",
            HandlerError::InFlight(_) => "sesguard.SignalInFlight",
        }
    }
}

impl From<HandlerError> for lambda_runtime::Diagnostic {
    fn from(err: HandlerError) -> Self {
        lambda_runtime::Diagnostic {
            error_type: err.error_type().to_owned(),
            error_message: err.to_string(),
        }
    }
}

/// The engine with its state and sink.
pub struct Handler<S, K> {
    engine: Engine,
    state: S,
    sink: K,
}

#[derive(Default)]
struct Found {
    records: Vec<(String, Position)>,
    errors: Vec<InputError>,
}

impl Visitor for Found {
    fn record(&mut self, json: &str, position: &Position) {
        self.records.push((json.to_owned(), position.clone()));
    }

    fn error(&mut self, error: InputError) {
        self.errors.push(error);
    }
}

impl<S: State, K: Sink> Handler<S, K> {
    pub fn new(engine: Engine, state: S, sink: K) -> Self {
        Handler {
            engine,
            state,
            sink,
        }
    }

    pub fn state(&self) -> &S {
        &self.state
    }

    pub fn sink(&self) -> &K {
        &self.sink
    }

    /// Handles one invocation payload (normally one EventBridge envelope; arrays and bare
    /// records are accepted too). Valid records are evaluated even when others are malformed;
    /// the malformed ones then make the invocation fail.
    pub async fn handle(
        &self,
        payload: &str,
        request_id: &str,
        counts: &mut Counts,
    ) -> Result<(), HandlerError> {
        let name: Arc<str> = Arc::from(format!("invocation {request_id}"));
        let mut found = Found::default();
        input::read_value(payload, &Position::file(&name), &mut found);
        let mut problems = found.errors;
        let delivery = Delivery {
            engine: &self.engine,
            state: &self.state,
            sink: &self.sink,
        };
        let in_flight_before = counts.in_flight;
        for (json, position) in &found.records {
            counts.records += 1;
            match delivery.record(json, position, counts).await {
                Ok(()) => {}
                Err(DeliverError::Malformed(problem)) => problems.push(problem),
                Err(DeliverError::State(err)) => return Err(err.into()),
                Err(DeliverError::Sink(err)) => return Err(err.into()),
            }
        }
        let in_flight = counts.in_flight - in_flight_before;
        if problems.is_empty() {
            return if in_flight == 0 {
                Ok(())
            } else {
                Err(HandlerError::InFlight(in_flight))
            };
        }
        for problem in &problems {
            counts.problem(problem);
        }
        // Logs and the error (which Lambda logs too) must not carry event data: values quoted by
        // the parser or by sesguard's messages are replaced by `…`.
        let problems: Vec<String> = problems
            .iter()
            .map(|p| redact_quoted(&p.to_string()))
            .collect();
        for problem in &problems {
            tracing::error!(problem = %truncate(problem, 500), "malformed event");
        }
        Err(HandlerError::Malformed(truncate(
            &problems.join("; "),
            2000,
        )))
    }
}

/// `text` with every `"…"` and `` `…` `` span emptied: error messages quote the offending values,
/// which come from the event (keys, ARNs, addresses) and do not belong in logs.
pub fn redact_quoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut open: Option<char> = None;
    let mut escaped = false;
    for c in text.chars() {
        match open {
            None => {
                out.push(c);
                if c == '"' || c == '`' {
                    open = Some(c);
                    out.push('…');
                }
            }
            Some(quote) => {
                if escaped {
                    escaped = false;
                } else if c == '\\' {
                    escaped = true;
                } else if c == quote {
                    out.push(c);
                    open = None;
                }
            }
        }
    }
    if let Some(quote) = open {
        out.push(quote);
    }
    out
}

/// CloudWatch Embedded Metric Format lines for one invocation (namespace `sesguard`).
pub fn emf_lines(counts: &Counts, timestamp_ms: u128, dynamodb_calls: u64) -> Vec<String> {
    let metric = |name: &str| serde_json::json!({"Name": name, "Unit": "Count"});
    let totals = [
        ("EventsEvaluated", counts.matched),
        ("Records", counts.records),
        ("SignalsPublished", counts.signal_count()),
        ("Suppressed", counts.suppressed),
        ("Deduplicated", counts.deduplicated),
        ("Malformed", counts.malformed),
        ("StateErrors", counts.state_errors),
        ("PublishErrors", counts.publish_errors),
        ("DynamoDBCalls", dynamodb_calls),
    ];
    let mut line = serde_json::json!({
        "_aws": {
            "Timestamp": timestamp_ms as u64,
            "CloudWatchMetrics": [{
                "Namespace": "sesguard",
                "Dimensions": [[]],
                "Metrics": totals.iter().map(|(name, _)| metric(name)).collect::<Vec<_>>(),
            }],
        },
    });
    for (name, value) in totals {
        line[name] = serde_json::json!(value);
    }
    let mut lines = vec![line.to_string()];
    for (rule, count) in &counts.signals {
        lines.push(
            serde_json::json!({
                "_aws": {
                    "Timestamp": timestamp_ms as u64,
                    "CloudWatchMetrics": [{
                        "Namespace": "sesguard",
                        "Dimensions": [["Rule"]],
                        "Metrics": [metric("SignalsPublished")],
                    }],
                },
                "Rule": rule,
                "SignalsPublished": count,
            })
            .to_string(),
        );
    }
    lines
}

/// The Lambda's configuration, from its environment (names fixed: the template passes them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LambdaConfig {
    pub table_name: String,
    pub topic_arn: String,
    pub overrides: crate::config::Overrides,
    /// `SESGUARD_CONFIG`: the TOML file (relative paths are relative to `LAMBDA_TASK_ROOT`).
    pub config_path: Option<std::path::PathBuf>,
    /// `SESGUARD_CLAIM_LEASE_SECONDS`, if set.
    pub claim_lease: Option<std::time::Duration>,
}

/// A configuration the function cannot start with; names the variable.
#[derive(Debug, thiserror::Error)]
#[error("{variable}: {message}")]
pub struct StartupError {
    pub variable: &'static str,
    pub message: String,
}

pub const TABLE_NAME: &str = "SESGUARD_TABLE_NAME";
pub const TOPIC_ARN: &str = "SESGUARD_TOPIC_ARN";
pub const LEARNING_DAYS: &str = "SESGUARD_LEARNING_DAYS";
pub const FORGET_DAYS: &str = "SESGUARD_FORGET_DAYS";
pub const SEQUENCE_WINDOW_MINUTES: &str = "SESGUARD_SEQUENCE_WINDOW_MINUTES";
pub const DEDUP_MINUTES: &str = "SESGUARD_DEDUP_MINUTES";
pub const CONFIG: &str = "SESGUARD_CONFIG";
pub const TOR_EXIT_LIST: &str = "SESGUARD_TOR_EXIT_LIST";
/// Seconds a signal claim protects an invocation that is publishing it (default 60).
pub const CLAIM_LEASE_SECONDS: &str = "SESGUARD_CLAIM_LEASE_SECONDS";

/// The configuration file compiled into the function: used when `SESGUARD_CONFIG` names
/// `sesguard.toml` and the package holds no such file (SAM's cargo-lambda build ships only the
/// binary).
pub const EMBEDDED_CONFIG: &str = include_str!("../sesguard.toml");

impl LambdaConfig {
    /// Reads the configuration through `lookup` (the process environment in production).
    pub fn from_env(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, StartupError> {
        let required = |variable: &'static str| {
            lookup(variable)
                .filter(|v| !v.trim().is_empty())
                .ok_or_else(|| StartupError {
                    variable,
                    message: "required but not set".to_owned(),
                })
        };
        let number = |variable: &'static str| -> Result<Option<u32>, StartupError> {
            match lookup(variable).filter(|v| !v.trim().is_empty()) {
                None => Ok(None),
                Some(text) => text.trim().parse().map(Some).map_err(|_| StartupError {
                    variable,
                    message: format!("{text:?} is not a whole number"),
                }),
            }
        };
        let path = |variable: &'static str| {
            lookup(variable)
                .filter(|v| !v.trim().is_empty())
                .map(Into::into)
        };
        Ok(LambdaConfig {
            table_name: required(TABLE_NAME)?,
            topic_arn: required(TOPIC_ARN)?,
            overrides: crate::config::Overrides {
                learning_days: number(LEARNING_DAYS)?,
                forget_days: number(FORGET_DAYS)?,
                sequence_window_minutes: number(SEQUENCE_WINDOW_MINUTES)?,
                dedup_minutes: number(DEDUP_MINUTES)?,
                tor_exit_list: path(TOR_EXIT_LIST),
            },
            config_path: path(CONFIG),
            claim_lease: number(CLAIM_LEASE_SECONDS)?
                .map(|s| std::time::Duration::from_secs(u64::from(s))),
        })
    }

    /// Loads the engine configuration: the file (or the embedded default), then the variables.
    pub fn engine_config(
        &self,
        task_root: Option<&std::path::Path>,
    ) -> Result<crate::config::Config, StartupError> {
        use crate::config::Config;
        let failed = |err: crate::config::ConfigError| StartupError {
            variable: CONFIG,
            message: err.to_string(),
        };
        let Some(path) = &self.config_path else {
            return Config::load(None, &self.overrides).map_err(failed);
        };
        let resolved = match task_root {
            Some(root) if path.is_relative() => root.join(path),
            _ => path.clone(),
        };
        if !resolved.exists() && path.as_os_str() == "sesguard.toml" {
            let base = task_root
                .unwrap_or(std::path::Path::new("."))
                .join("sesguard.toml");
            return Config::parse(EMBEDDED_CONFIG, &base, &self.overrides).map_err(failed);
        }
        Config::load(Some(&resolved), &self.overrides).map_err(failed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lambda_reports_an_error_type_that_says_what_failed_and_whether_a_retry_helps() {
        use crate::model::FailureKind;
        let kind = |transient| {
            if transient {
                FailureKind::Throttled
            } else {
                FailureKind::NotFound
            }
        };
        let state = |transient| {
            HandlerError::State(StateError::new(
                kind(transient),
                "DynamoDB PutItem: injected",
            ))
        };
        let publish = |transient| {
            HandlerError::Publish(SinkError::new(kind(transient), "SNS Publish: injected"))
        };
        for (err, error_type, transient) in [
            (
                HandlerError::Malformed("x".into()),
                "sesguard.MalformedEvent",
                false,
            ),
            (state(true), "sesguard.StateUnavailable", true),
            (state(false), "sesguard.StateError", false),
            (publish(true), "sesguard.PublishUnavailable", true),
            (publish(false), "sesguard.PublishError", false),
            (HandlerError::InFlight(2), "sesguard.SignalInFlight", true),
        ] {
            assert_eq!(err.is_transient(), transient, "{err}");
            let message = err.to_string();
            let diagnostic = lambda_runtime::Diagnostic::from(err);
            assert_eq!(diagnostic.error_type, error_type);
            assert_eq!(diagnostic.error_message, message);
        }
    }

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: std::collections::HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn emf_lines_carry_every_metric_and_one_line_per_rule() {
        let counts = Counts {
            records: 1,
            matched: 1,
            signals: std::collections::BTreeMap::from([("ses-modification", 2)]),
            suppressed: 3,
            deduplicated: 4,
            malformed: 5,
            state_errors: 6,
            publish_errors: 7,
            ..Counts::default()
        };
        let lines = emf_lines(&counts, 1_700_000_000_000, 9);
        assert_eq!(lines.len(), 2);
        let totals: serde_json::Value = serde_json::from_str(&lines[0]).expect("json");
        let declared: Vec<&str> = totals["_aws"]["CloudWatchMetrics"][0]["Metrics"]
            .as_array()
            .map(|m| m.iter().filter_map(|m| m["Name"].as_str()).collect())
            .unwrap_or_default();
        for (name, value) in [
            ("EventsEvaluated", 1),
            ("SignalsPublished", 2),
            ("Suppressed", 3),
            ("Deduplicated", 4),
            ("Malformed", 5),
            ("StateErrors", 6),
            ("DynamoDBCalls", 9),
        ] {
            assert!(declared.contains(&name), "{name} declared");
            assert_eq!(totals[name], value, "{name}");
        }
        assert_eq!(totals["_aws"]["Timestamp"], 1_700_000_000_000u64);
        let by_rule: serde_json::Value = serde_json::from_str(&lines[1]).expect("json");
        assert_eq!(by_rule["Rule"], "ses-modification");
        assert_eq!(by_rule["SignalsPublished"], 2);
        assert_eq!(
            by_rule["_aws"]["CloudWatchMetrics"][0]["Dimensions"][0][0],
            "Rule"
        );
    }

    #[test]
    fn quoted_values_are_redacted() {
        assert_eq!(
            redact_quoted(
                r#"line 1: userIdentity: invalid type: string "AKIA\"X", expected struct UserIdentity"#
            ),
            r#"line 1: userIdentity: invalid type: string "…", expected struct UserIdentity"#
        );
        assert_eq!(
            redact_quoted("eventTime: invalid type: integer `5`, expected"),
            "eventTime: invalid type: integer `…`, expected"
        );
        assert_eq!(redact_quoted("unterminated \"abc"), "unterminated \"…\"");
    }

    #[test]
    fn a_missing_required_variable_is_named() {
        let err = LambdaConfig::from_env(env(&[(TOPIC_ARN, "arn")])).expect_err("no table");
        assert_eq!(err.to_string(), "SESGUARD_TABLE_NAME: required but not set");
        let err = LambdaConfig::from_env(env(&[(TABLE_NAME, "t")])).expect_err("no topic");
        assert_eq!(err.to_string(), "SESGUARD_TOPIC_ARN: required but not set");
    }

    #[test]
    fn numbers_and_paths_come_from_their_variables() {
        let config = LambdaConfig::from_env(env(&[
            (TABLE_NAME, "t"),
            (TOPIC_ARN, "arn"),
            (LEARNING_DAYS, "7"),
            (FORGET_DAYS, "28"),
            (SEQUENCE_WINDOW_MINUTES, "30"),
            (DEDUP_MINUTES, "15"),
            (TOR_EXIT_LIST, "tor.txt"),
        ]))
        .expect("config");
        assert_eq!(config.overrides.learning_days, Some(7));
        assert_eq!(config.overrides.sequence_window_minutes, Some(30));
        assert_eq!(config.overrides.dedup_minutes, Some(15));
        assert_eq!(
            config.overrides.tor_exit_list.as_deref(),
            Some(std::path::Path::new("tor.txt"))
        );
        let err = LambdaConfig::from_env(env(&[
            (TABLE_NAME, "t"),
            (TOPIC_ARN, "a"),
            (DEDUP_MINUTES, "an hour"),
        ]))
        .expect_err("bad number");
        assert!(
            err.to_string().starts_with("SESGUARD_DEDUP_MINUTES: "),
            "{err}"
        );
    }

    #[test]
    fn the_packaged_config_falls_back_to_the_embedded_copy_and_variables_override_it() {
        let config = LambdaConfig::from_env(env(&[
            (TABLE_NAME, "t"),
            (TOPIC_ARN, "arn"),
            (CONFIG, "sesguard.toml"),
            (DEDUP_MINUTES, "5"),
        ]))
        .expect("config");
        let root = std::env::temp_dir().join("sesguard-no-such-task-root");
        let engine = config.engine_config(Some(&root)).expect("embedded config");
        assert_eq!(engine.settings.dedup, 5 * 60);
        let missing = LambdaConfig {
            config_path: Some("other.toml".into()),
            ..config
        };
        let err = missing
            .engine_config(Some(&root))
            .expect_err("missing file");
        assert!(
            err.to_string().starts_with("SESGUARD_CONFIG: cannot read "),
            "{err}"
        );
    }
}
