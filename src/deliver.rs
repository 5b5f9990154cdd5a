//! The one delivery loop: record text in, signals out to a [`Sink`], counted in [`Counts`].
//! `sesguard scan` ([`crate::scan`]) and the Lambda handler ([`crate::lambda`]) both run every
//! record through [`Delivery::record`]; they differ only in where records come from, what
//! happens to problems, and which sink and state they use.
//!
//! # Delivery protocol: exactly-once effect over at-least-once delivery
//! 1. **Evaluate.** Every state write the rules make is replay-safe: evaluating the same event
//!    again reaches the same decisions (see [`crate::state`]).
//! 2. **Claim.** Each decided signal is claimed by its deterministic id (the engine does this).
//!    A claim already published means an earlier delivery finished: nothing is sent.
//! 3. **Emit** to the sink. On failure the caller stops (the Lambda fails the invocation, Lambda
//!    retries the event, and the retry finds the claim unfinished and emits it).
//! 4. **Mark** the claim published.
//!
//! Nothing is lost: a signal is only ever marked after the sink accepted it. A failed mark does
//! not stop delivery (a retry would emit it again). The one window for a duplicate is a crash
//! after the sink accepted a signal and before the mark (step 3 → 4), or a failed mark followed
//! by a duplicate delivery; SNS standard topics offer no transactional publish, so the message
//! is then sent again with the same `signal_id`, which subscribers can de-duplicate on.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::sync::Mutex;

use crate::engine::{Engine, EngineError, Evaluation};
use crate::input::{InputError, Position};
use crate::model::FailureKind;
use crate::record::Record;
use crate::rules;
use crate::signal::Signal;
use crate::state::{State, StateError};
use crate::text::describe;

crate::port_error!(
    /// A sink's failure, with its kind (which decides whether a retry may help) and its source.
    SinkError,
    "publishing"
);

impl SinkError {
    /// The I/O error behind it, if any (a closed pipe ends `sesguard scan` quietly).
    pub fn io_kind(&self) -> Option<std::io::ErrorKind> {
        self.source
            .as_ref()
            .and_then(|s| s.downcast_ref::<std::io::Error>())
            .map(std::io::Error::kind)
    }
}

impl From<std::io::Error> for SinkError {
    fn from(err: std::io::Error) -> Self {
        SinkError::new(FailureKind::Unavailable, format!("output: {err}")).with_source(err)
    }
}

/// Where signals go: SNS in the Lambda, stdout in the CLI, a vector in tests.
pub trait Sink: Sync {
    /// Emits one signal. An error leaves the signal's claim unfinished, so a retry emits it.
    fn emit(&self, signal: &Signal) -> impl Future<Output = Result<(), SinkError>> + Send;
    /// Input that was skipped (the CLI prints it as it happens).
    fn problem(&self, _error: &InputError) {}
    /// `count` more problems in `file` than were reported with [`Sink::problem`] (the scan
    /// reports the first few of each file; the counts have them all).
    fn problems_not_shown(&self, _file: &str, _count: u64) {}
    /// Objects in `position`'s file that are not CloudTrail records: `count` of them, the first
    /// at `position` being `found` (said once per file; see [`crate::input::NotCloudTrail`]).
    fn not_cloudtrail(&self, _position: &Position, _found: &str, _count: u64) {}
    /// Whether shadow signals (of rules in shadow mode) are emitted to this sink too, as the CLI
    /// prints them with their mark. Otherwise (SNS) the delivery logs and counts them and never
    /// emits them.
    fn takes_shadow(&self) -> bool {
        false
    }
    /// Called now and then with the counts so far (for a progress display).
    fn progress(&self, _counts: &Counts) {}
    /// A record that some rule matched, after its signals were emitted: which dedup keys they
    /// hold and why the other matches gave none (`sesguard scan --explain`).
    fn evaluated(&self, _record: &Record<'_>, _evaluation: &Evaluation) {}
}

/// A sink that keeps everything (for tests and embedding).
#[derive(Debug, Default)]
pub struct Collect {
    kept: Mutex<Collected>,
}

/// What a [`Collect`] kept, in order.
#[derive(Debug, Default, Clone)]
pub struct Collected {
    pub signals: Vec<Signal>,
    pub problems: Vec<InputError>,
    /// Problems not reported one by one: (file, how many).
    pub not_shown: Vec<(String, u64)>,
}

impl Collect {
    /// What was kept so far (the sink may still be in use, e.g. shared by a handler).
    pub fn collected(&self) -> Collected {
        self.kept.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn into_inner(self) -> Collected {
        self.kept.into_inner().unwrap_or_else(|e| e.into_inner())
    }

    fn keep(&self, f: impl FnOnce(&mut Collected)) {
        f(&mut self.kept.lock().unwrap_or_else(|e| e.into_inner()));
    }
}

impl Sink for Collect {
    async fn emit(&self, signal: &Signal) -> Result<(), SinkError> {
        self.keep(|kept| kept.signals.push(signal.clone()));
        Ok(())
    }

    fn problem(&self, error: &InputError) {
        self.keep(|kept| kept.problems.push(error.clone()));
    }

    /// Kept with their `shadow` mark, so tests see what a shadow rule decided.
    fn takes_shadow(&self) -> bool {
        true
    }

    fn problems_not_shown(&self, file: &str, count: u64) {
        self.keep(|kept| kept.not_shown.push((file.to_owned(), count)));
    }
}

/// What a delivery did: the CLI's summary line and the Lambda's metrics.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Counts {
    pub files: u64,
    pub records: u64,
    /// Records or values skipped because they are not valid input.
    pub malformed: u64,
    /// Files (or parts of them) that could not be read at all, and files without a record.
    pub unreadable: u64,
    /// Paths that do not exist, and directories without an input file (the CLI's exit 2).
    pub missing: u64,
    /// Objects that are not CloudTrail records (no `eventName`, `eventSource` or `eventTime`),
    /// digest files aside.
    pub not_cloudtrail: u64,
    /// CloudTrail digest files skipped, by name or by shape.
    pub digests: u64,
    /// Records some rule read.
    pub matched: u64,
    /// Signals emitted, per rule id.
    pub signals: BTreeMap<&'static str, u64>,
    /// Signals of rules in shadow mode, per rule id: logged (and printed by the CLI), never
    /// published; not in [`Counts::signals`].
    pub shadow: BTreeMap<&'static str, u64>,
    pub suppressed: u64,
    pub deduplicated: u64,
    /// Records that came more than the reorder window behind the newest, evaluated as they
    /// came (`sesguard scan` without `--input-order`).
    pub late: u64,
    /// Signals another invocation was publishing (the Lambda retries the event later).
    pub in_flight: u64,
    pub state_errors: u64,
    pub publish_errors: u64,
    /// Records outside `--since`/`--until`, not evaluated.
    pub outside_range: u64,
}

impl Counts {
    pub fn signal_count(&self) -> u64 {
        self.signals.values().sum()
    }

    /// Whether all input was read and understood (the CLI's exit code 0).
    pub fn clean(&self) -> bool {
        self.malformed == 0 && self.unreadable == 0 && self.missing == 0
    }

    /// Counts a problem as unreadable or malformed input.
    pub fn problem(&mut self, error: &InputError) {
        if error.unreadable {
            self.unreadable += 1;
        } else {
            self.malformed += 1;
        }
    }
}

/// `1 file`, `2 files`.
fn counted(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// The summary line: what was read, then records matched, then signals (those emitted, by rule,
/// and those a suppression or the dedup window held back).
impl fmt::Display for Counts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}, {} read, {} malformed, {} unreadable",
            counted(self.files, "file", "files"),
            counted(self.records, "record", "records"),
            self.malformed,
            self.unreadable,
        )?;
        if self.missing > 0 {
            write!(
                f,
                ", {} not found or empty",
                counted(self.missing, "path", "paths")
            )?;
        }
        if self.not_cloudtrail > 0 {
            write!(
                f,
                ", {} not CloudTrail",
                counted(self.not_cloudtrail, "object", "objects")
            )?;
        }
        if self.digests > 0 {
            write!(
                f,
                ", {} skipped",
                counted(self.digests, "digest file", "digest files")
            )?;
        }
        write!(
            f,
            "; {} matched a rule; {}",
            counted(self.matched, "record", "records"),
            counted(self.signal_count(), "signal", "signals")
        )?;
        if !self.signals.is_empty() {
            let by_rule: Vec<String> = self
                .signals
                .iter()
                .map(|(rule, n)| format!("{rule} {n}"))
                .collect();
            write!(f, " ({})", by_rule.join(", "))?;
        }
        if !self.shadow.is_empty() {
            let total: u64 = self.shadow.values().sum();
            let by_rule: Vec<String> = self
                .shadow
                .iter()
                .map(|(rule, n)| format!("{rule} {n}"))
                .collect();
            write!(
                f,
                ", {} ({})",
                counted(total, "shadow signal", "shadow signals"),
                by_rule.join(", ")
            )?;
        }
        write!(
            f,
            ", {} suppressed, {} deduplicated",
            counted(self.suppressed, "signal", "signals"),
            counted(self.deduplicated, "signal", "signals")
        )?;
        if self.outside_range > 0 {
            write!(
                f,
                ", {} outside --since/--until",
                counted(self.outside_range, "record", "records")
            )?;
        }
        if self.late > 0 {
            write!(f, ", {}", counted(self.late, "record late", "records late"))?;
        }
        Ok(())
    }
}

/// Why a record's delivery stopped short.
#[derive(Debug, thiserror::Error)]
pub enum DeliverError {
    /// The record is not valid input; the rest of the input goes on.
    #[error(transparent)]
    Malformed(InputError),
    /// The state failed: nothing of this record was emitted.
    #[error(transparent)]
    State(#[from] StateError),
    /// The sink failed: the signals before it were emitted, the rest were not.
    #[error(transparent)]
    Sink(#[from] SinkError),
}

/// The engine with the state and the sink of one run.
pub struct Delivery<'a, S, K> {
    pub engine: &'a Engine,
    pub state: &'a S,
    pub sink: &'a K,
}

impl<S: State, K: Sink> Delivery<'_, S, K> {
    /// Evaluates one record (its JSON text, at `position`) and emits its signals, counting what
    /// it matched, suppressed and emitted. The caller counts the record itself (the CLI also
    /// counts those its prefilter drops), and a problem is returned, not counted (see
    /// [`Counts::problem`]).
    pub async fn record(
        &self,
        json: &str,
        position: &Position,
        counts: &mut Counts,
    ) -> Result<(), DeliverError> {
        let malformed =
            |message: String| DeliverError::Malformed(InputError::new(position.clone(), message));
        let record = Record::parse(json).map_err(|err| malformed(describe(&err)))?;
        if !rules::reads(&record) {
            return Ok(());
        }
        let evaluation = match self.engine.evaluate(&record, self.state).await {
            Ok(evaluation) => evaluation,
            Err(EngineError::Malformed(err)) => return Err(malformed(err.to_string())),
            Err(EngineError::State(err)) => {
                counts.state_errors += 1;
                return Err(err.into());
            }
        };
        tracing::debug!(
            event_id = record.event_id.as_deref().unwrap_or(""),
            event_name = record.name(),
            matched = evaluation.matched,
            signals = evaluation.signals.len(),
            "evaluated"
        );
        counts.matched += u64::from(evaluation.matched);
        counts.suppressed += evaluation.suppressed as u64;
        counts.deduplicated += evaluation.deduplicated as u64;
        counts.in_flight += evaluation.in_flight as u64;
        for signal in &evaluation.signals {
            let emitted = !signal.shadow || self.sink.takes_shadow();
            if emitted && let Err(err) = self.sink.emit(signal).await {
                counts.publish_errors += 1;
                return Err(err.into());
            }
            if let Err(err) = self.engine.published(signal, self.state).await {
                // The sink has the signal: stopping now would make a retry emit it twice. The
                // claim stays unfinished; only a later duplicate delivery of this event would
                // emit it again.
                counts.state_errors += 1;
                tracing::warn!(signal_id = %signal.signal_id, error = %err, "signal published but not marked");
            }
            let rule = rules::by_id(&signal.rule_id).map_or("unknown", |r| r.id);
            let (tally, message) = if signal.shadow {
                (&mut counts.shadow, "shadow signal, not published")
            } else {
                (&mut counts.signals, "signal published")
            };
            *tally.entry(rule).or_default() += 1;
            tracing::info!(
                signal_id = %signal.signal_id,
                rule_id = %signal.rule_id,
                severity = signal.severity.as_str(),
                event_id = %signal.subject.event_id,
                account_id = %signal.subject.account_id,
                region = %signal.subject.region,
                shadow = signal.shadow,
                "{message}"
            );
        }
        if evaluation.matched {
            self.sink.evaluated(&record, &evaluation);
        }
        Ok(())
    }
}
