//! The Lambda's work, apart from the runtime and AWS: one invocation payload in, its records
//! through the delivery loop ([`crate::deliver`], which documents the exactly-once protocol),
//! signals out to a [`Sink`] (SNS), state in a [`State`] (DynamoDB). The `sesguard-lambda`
//! crate (crates/lambda) wires the runtime and the AWS adapters to it.

mod emf;
mod env;
mod live;
mod objects;
mod redact;
mod redrive;
mod tor_fetch;

pub use emf::{config_emf_line, emf_lines, heartbeat_emf_line};
pub use env::*;
pub use live::{ConfigEvents, ConfigStore, Fetched, LiveConfig, Refresh};
pub use objects::{Message, MessageFailure, ObjectError, ObjectStore, RECORDS_IN_FLIGHT};
pub use redact::redact_quoted;
pub use redrive::{is_redriven_event, is_redriven_heartbeat};
pub use tor_fetch::*;

use std::sync::{Arc, PoisonError, RwLock};

use crate::deliver::{Counts, DeliverError, Delivery, Sink, SinkError};
use crate::engine::Engine;
use crate::heartbeat::{self, Canary, Heartbeat, HeartbeatError};
use crate::input::{self, InputError, Position, Visitor};
use crate::record::Record;
use crate::signal::Signal;
use crate::state::{HeartbeatStore, State, StateError};
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
    /// A log file named by an S3 notification could not be fetched or read to its end.
    #[error(transparent)]
    Object(#[from] ObjectError),
    /// The function has no good configuration (`SESGUARD_CONFIG` in S3 unreadable or invalid
    /// since the cold start): nothing is evaluated with settings or suppressions other than the
    /// user's, so the event is retried and, failing that, kept in the failure queue.
    #[error("no usable configuration: {0}")]
    Config(String),
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
            HandlerError::Object(err) => err.is_transient(),
            // A fixed file is picked up at the next invocation.
            HandlerError::Config(_) => true,
        }
    }

    /// The `errorType` Lambda reports (and the on-failure destination's record carries).
    pub fn error_type(&self) -> &'static str {
        match self {
            HandlerError::Malformed(_) => "sesguard.MalformedEvent",
            HandlerError::State(err) if err.is_transient() => "sesguard.StateUnavailable",
            HandlerError::State(_) => "sesguard.StateError",
            HandlerError::Publish(err) if from_security_hub(err) && err.is_transient() => {
                "sesguard.SecurityHubUnavailable"
            }
            HandlerError::Publish(err) if from_security_hub(err) => "sesguard.SecurityHubError",
            HandlerError::Publish(err) if err.is_transient() => "sesguard.PublishUnavailable",
            HandlerError::Publish(_) => "sesguard.PublishError",
            HandlerError::InFlight(_) => "sesguard.SignalInFlight",
            HandlerError::Object(err) if err.is_transient() => "sesguard.LogFileUnavailable",
            HandlerError::Object(_) => "sesguard.LogFileError",
            HandlerError::Config(_) => "sesguard.ConfigError",
        }
    }
}

/// Whether a sink error is Security Hub's (the import that runs before the SNS publish).
fn from_security_hub(err: &SinkError) -> bool {
    err.source.as_ref().is_some_and(|s| {
        s.downcast_ref::<crate::output::asff::ImportError>()
            .is_some()
    })
}

/// The engine with its state and sink. [`Handler::handle`] takes an EventBridge event;
/// [`Handler::handle_messages`] a batch of SQS messages naming log files in S3.
///
/// The engine can be replaced between invocations ([`Handler::replace_engine`]: a configuration
/// reloaded from S3); an invocation evaluates every record with the engine it started with.
pub struct Handler<S, K> {
    engine: RwLock<Arc<Engine>>,
    state: S,
    sink: K,
    /// The function's own heartbeat canary, recognised before any rule runs.
    canary: Option<Canary>,
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

impl<S: State + HeartbeatStore, K: Sink> Handler<S, K> {
    pub fn new(engine: Engine, state: S, sink: K) -> Self {
        Handler {
            engine: RwLock::new(Arc::new(engine)),
            state,
            sink,
            canary: None,
        }
    }

    /// The engine invocations start with now.
    pub fn engine(&self) -> Arc<Engine> {
        self.engine
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Makes later invocations use `engine` (one in progress keeps the one it started with).
    pub fn replace_engine(&self, engine: Engine) {
        *self.engine.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(engine);
    }

    /// Recognises `canary` (the function's own heartbeat calls): recorded, never evaluated.
    pub fn with_canary(mut self, canary: Canary) -> Self {
        self.canary = Some(canary);
        self
    }

    /// One heartbeat run at wall-clock `now` (see [`crate::heartbeat`]): the pipeline signals
    /// published.
    pub async fn heartbeat(
        &self,
        heartbeat: &Heartbeat,
        now: crate::model::Seconds,
    ) -> Result<Vec<Signal>, HandlerError> {
        heartbeat::run(heartbeat, &self.state, &self.sink, now)
            .await
            .map_err(|err| match err {
                HeartbeatError::State(err) => HandlerError::State(err),
                HeartbeatError::Publish(err) => HandlerError::Publish(err),
            })
    }

    /// Where and when the record in `json` was made, if it is the function's canary.
    fn canary_in(&self, json: &str) -> Option<(String, crate::model::Seconds)> {
        let canary = self.canary.as_ref()?;
        if !Canary::may_be(json) {
            return None;
        }
        Record::parse(json).ok().and_then(|r| canary.seen_in(&r))
    }

    /// Records the record in `json` if it is the function's canary; whether it was.
    async fn canary(&self, json: &str) -> Result<bool, StateError> {
        let Some((region, at)) = self.canary_in(json) else {
            return Ok(false);
        };
        self.state.canary_seen(&region, at).await?;
        tracing::debug!(region = %region, "heartbeat canary seen");
        Ok(true)
    }

    /// Whether the record in `json` is the function's canary, read from a log file: skipped
    /// (no rule evaluates it) but not recorded, as the heartbeat watches the EventBridge path
    /// (a log file comes minutes later, and would hide that path's outage).
    pub(crate) fn is_logged_canary(&self, json: &str) -> bool {
        self.canary_in(json).is_some()
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
        let engine = self.engine();
        let delivery = Delivery {
            engine: &engine,
            state: &self.state,
            sink: &self.sink,
        };
        let in_flight_before = counts.in_flight;
        for (json, position) in &found.records {
            counts.records += 1;
            // Before the rules: the canary is no event of the account (no sighting, no stage).
            if self.canary(json).await? {
                continue;
            }
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
            (
                HandlerError::Publish(
                    SinkError::new(FailureKind::Unavailable, "Security Hub: injected")
                        .with_source(crate::output::asff::ImportError::Rejected(Vec::new())),
                ),
                "sesguard.SecurityHubUnavailable",
                true,
            ),
            (
                HandlerError::Publish(
                    SinkError::new(FailureKind::Denied, "Security Hub: injected").with_source(
                        crate::output::asff::ImportError::Status {
                            status: 403,
                            code: "AccessDeniedException".to_owned(),
                        },
                    ),
                ),
                "sesguard.SecurityHubError",
                false,
            ),
            (HandlerError::InFlight(2), "sesguard.SignalInFlight", true),
            (
                HandlerError::Object(ObjectError::new(kind(true), "S3 GetObject: injected")),
                "sesguard.LogFileUnavailable",
                true,
            ),
            (
                HandlerError::Object(ObjectError::new(kind(false), "S3 GetObject: injected")),
                "sesguard.LogFileError",
                false,
            ),
            (
                HandlerError::Config("s3://b/sesguard.toml: suppression 2: …".into()),
                "sesguard.ConfigError",
                true,
            ),
        ] {
            assert_eq!(err.is_transient(), transient, "{err}");
            assert_eq!(err.error_type(), error_type);
        }
    }
}
