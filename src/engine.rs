//! The engine: one record in, signals out, reading and writing a [`State`]. It never knows
//! whether it runs in the Lambda or the CLI, and never names a rule: every rule runs through
//! the same stages.
//!
//! triggered (the rule reads the call) → applies (the rule takes part) → suppressed (judged on
//! the event, unless the rule's findings describe another event) → ask (the state steps the
//! rules need, shared keys answered in one step) → decide (pure) → suppressed (judged on each
//! finding) → claim (each signal once, across retries and duplicate deliveries).

use std::borrow::Cow;

use crate::config::Config;
pub use crate::model::Settings;
use crate::model::{DAY, Seconds, Subject};
use crate::record::{Record, RecordError};
use crate::rules::{self, Answer, Ask, Context, Event, Op, RuleMeta, SuppressOn};
use crate::signal::Signal;
use crate::state::{Claim, Mark, PairStep, State, StateError};

/// How long a signal claim is kept past its event time: longer than EventBridge retries an
/// event (24 h), so a late duplicate still finds it.
pub const CLAIM_RETENTION: Seconds = 2 * DAY;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The record can never be evaluated (a rule reads it, but a field it needs is missing or
    /// of the wrong type).
    #[error(transparent)]
    Malformed(#[from] RecordError),
    #[error(transparent)]
    State(#[from] StateError),
}

/// What evaluating one record gave.
#[derive(Debug, Default)]
pub struct Evaluation {
    /// Signals to emit; after emitting each, call [`Engine::published`].
    pub signals: Vec<Signal>,
    /// Whether some rule read the record.
    pub matched: bool,
    /// Rule matches dropped by a suppression entry.
    pub suppressed: usize,
    /// Rule matches that gave no signal because an equal one was given already (dedup window,
    /// or the same event evaluated before).
    pub deduplicated: usize,
    /// Signals another invocation is publishing right now (a concurrent duplicate delivery):
    /// the caller must fail after emitting the rest, so the event is retried after the lease.
    pub in_flight: usize,
}

/// The configured engine.
#[derive(Debug, Default)]
pub struct Engine {
    config: Config,
}

impl Engine {
    pub fn new(config: Config) -> Self {
        Engine { config }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Evaluates one record. A record no rule reads costs no state call.
    pub async fn evaluate<S: State>(
        &self,
        record: &Record<'_>,
        state: &S,
    ) -> Result<Evaluation, EngineError> {
        let mut out = Evaluation::default();
        if !rules::reads(record) {
            return Ok(out);
        }
        let params = record.request_parameters().map_err(RecordError::from)?;
        let service_code = || {
            params
                .str("serviceCode")
                .map(|code| code.map(Cow::into_owned))
        };
        let mut triggered = Vec::new();
        for rule in rules::ALL {
            if rule
                .triggered_by(record, service_code)
                .map_err(RecordError::from)?
            {
                triggered.push(rule);
            }
        }
        if triggered.is_empty() {
            return Ok(out);
        }
        let tor = &self.config.tor;
        let event = Event::new(record, params, |ip| tor.contains(ip))?;
        out.matched = true;
        let settings = &self.config.settings;
        let context = Context {
            settings,
            first_event: state.first_event_time(event.time).await?,
        };
        let mut taking: Vec<(&'static RuleMeta, Option<Ask>)> = Vec::new();
        for rule in triggered {
            if !rule.detection.applies(&event) {
                continue;
            }
            if rule.suppress_on == SuppressOn::Event
                && self.suppressed(rule.id, &event.subject, event.time)
            {
                out.suppressed += 1;
                continue;
            }
            taking.push((rule, rule.detection.ask(&event, settings)));
        }
        let asks: Vec<Option<&Ask>> = taking.iter().map(|(_, ask)| ask.as_ref()).collect();
        let mut answers = answer(&asks, &event, state).await?;
        for ((rule, _), answer) in taking.iter().zip(answers.iter_mut()) {
            let decision = rule
                .detection
                .decide(&event, std::mem::take(answer), &context);
            out.deduplicated += decision.deduplicated;
            for finding in decision.findings {
                if self.suppressed(finding.rule.id, &finding.subject, finding.time) {
                    out.suppressed += 1;
                    continue;
                }
                let signal = Signal::new(
                    finding.rule,
                    finding.severity,
                    finding.subject,
                    finding.related_event_ids,
                );
                let expires = event.time.saturating_add(CLAIM_RETENTION);
                match state
                    .claim_signal(&signal.signal_id, event.time, expires)
                    .await?
                {
                    Claim::Fresh | Claim::Unfinished => out.signals.push(signal),
                    Claim::Done => out.deduplicated += 1,
                    Claim::InFlight => out.in_flight += 1,
                }
            }
        }
        Ok(out)
    }

    /// Records that `signal` was emitted, so evaluating its event again gives nothing.
    pub async fn published<S: State>(&self, signal: &Signal, state: &S) -> Result<(), StateError> {
        state.mark_published(&signal.signal_id).await
    }

    fn suppressed(&self, rule_id: &str, subject: &Subject, now: Seconds) -> bool {
        self.config
            .suppressions
            .iter()
            .any(|s| s.matches(rule_id, subject, now))
    }
}

/// Answers the rules' asks, in their order. Shared asks on one key are answered by one
/// [`State::pair_and_window`] step (its pairing and its window half); every other ask by its
/// own operation.
async fn answer<S: State>(
    asks: &[Option<&Ask>],
    event: &Event<'_>,
    state: &S,
) -> Result<Vec<Answer>, StateError> {
    let mut answers = vec![Answer::Nothing; asks.len()];
    let mut done = vec![false; asks.len()];
    // The event as a pairing remembers it; built only when a rule pairs it.
    let mark = || Mark {
        event_id: event.event_id.to_owned(),
        time: event.time,
        subject: event.subject.clone(),
    };
    for i in 0..asks.len() {
        let Some(ask) = asks[i] else { continue };
        if done[i] {
            continue;
        }
        if let Some(keep) = ask.shared {
            // Every shared ask on this key: at most one pairing and one window in one step.
            let group: Vec<usize> = (i..asks.len())
                .filter(|&j| {
                    !done[j] && asks[j].is_some_and(|a| a.shared.is_some() && a.key == ask.key)
                })
                .collect();
            let pairing = group
                .iter()
                .copied()
                .find(|&j| asks[j].is_some_and(|a| matches!(a.op, Op::Pair { .. })));
            let window = group
                .iter()
                .copied()
                .find(|&j| asks[j].is_some_and(|a| matches!(a.op, Op::Window { .. })));
            if pairing.is_some() || window.is_some() {
                let marked = pairing.map(|_| mark());
                let (side, pair_window) = match pairing.and_then(|j| asks[j]).map(|a| &a.op) {
                    Some(Op::Pair { side, window }) => (Some(*side), *window),
                    _ => (None, 0),
                };
                let dedup_window = match window.and_then(|j| asks[j]).map(|a| &a.op) {
                    Some(Op::Window { length }) => *length,
                    _ => 0,
                };
                let step = PairStep {
                    event_id: event.event_id,
                    now: event.time,
                    pair: side.zip(marked.as_ref()),
                    pair_window,
                    open_window: window.is_some(),
                    dedup_window,
                    keep,
                };
                let outcome = state.pair_and_window(&ask.key, step).await?;
                if let Some(j) = pairing {
                    answers[j] = Answer::Paired(outcome.paired);
                    done[j] = true;
                }
                if let Some(j) = window {
                    answers[j] = Answer::Window(outcome.opened);
                    done[j] = true;
                }
            }
            if done[i] {
                continue;
            }
        }
        answers[i] = match &ask.op {
            Op::Sight { forget } => Answer::Sighting(
                state
                    .sight(&ask.key, event.event_id, event.time, *forget)
                    .await?,
            ),
            Op::Window { length } => Answer::Window(
                state
                    .open_window(&ask.key, event.event_id, event.time, *length)
                    .await?,
            ),
            Op::Pair { side, window } => {
                Answer::Paired(state.pair(&ask.key, *side, &mark(), *window).await?)
            }
            Op::Distinct { value, window, max } => Answer::Distinct(
                state
                    .distinct_in_window(&ask.key, value, event.time, *window, *max)
                    .await?,
            ),
            Op::Count { window, max } => Answer::Count(
                state
                    .count_in_window(&ask.key, event.event_id, event.time, *window, *max)
                    .await?,
            ),
        };
        done[i] = true;
    }
    Ok(answers)
}
