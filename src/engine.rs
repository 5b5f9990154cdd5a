//! The engine: one record in, signals out, reading and writing a [`State`]. It never knows
//! whether it runs in the Lambda or the CLI, and never names a rule: every rule runs through
//! the same stages.
//!
//! triggered (the rule reads the call, and considers its parameters: a test before the event
//! is built) → applies (the rule takes part) → suppressed (judged on
//! the event, unless the rule's findings describe another event) → ask (the state steps the
//! rules need, shared keys answered in one step) → decide (pure) → suppressed (judged on each
//! finding) → claim (each signal once, across retries and duplicate deliveries).

use std::borrow::Cow;

use crate::config::{Config, Mode};
pub use crate::model::Settings;
use crate::model::{DAY, Seconds, Subject};
use crate::record::{Params, Record, RecordError};
use crate::rules::{self, Answer, Ask, Call, Context, Event, Finding, Op, RuleMeta, SuppressOn};
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
    /// Why each suppressed or deduplicated match gave no signal (`sesguard scan --explain`).
    pub hidden: Vec<Hidden>,
    /// For each of `signals`, the dedup window or gate key its rule holds it under, so a later
    /// match deduplicated on that key can name it.
    pub opened: Vec<Option<String>>,
}

/// A rule match that gave no signal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hidden {
    pub rule_id: &'static str,
    pub why: Why,
}

/// Why a match gave no signal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Why {
    /// The suppression entry at this index of [`Config::suppressions`] matched.
    Suppressed { entry: usize },
    /// An earlier signal of the rule holds its dedup window or gate on `key`.
    Deduplicated { key: String },
    /// This very signal was published already (the same event, evaluated before).
    Published { signal_id: String },
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
        let triggered = triggered(record, &params, &self.config)?;
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
                && let Some(entry) = self.suppression(rule.id, &event.subject, event.time)
            {
                out.suppressed += 1;
                out.hide(rule.id, Why::Suppressed { entry });
                continue;
            }
            taking.push((rule, rule.detection.ask(&event, settings)));
        }
        let asks: Vec<Option<&Ask>> = taking.iter().map(|(_, ask)| ask.as_ref()).collect();
        let answers = answer(&asks, &event, state).await?;
        for ((rule, ask), answer) in taking.iter().zip(answers) {
            let mut decision = rule.detection.decide(&event, answer, &context);
            let ask_key = ask.as_ref().map(|ask| ask.key.as_str());
            out.deduplicated += decision.deduplicated;
            for _ in 0..decision.deduplicated {
                let key = ask_key.unwrap_or_default().to_owned();
                out.hide(rule.id, Why::Deduplicated { key });
            }
            let gate = decision.once_per.take();
            if let Some(gate) = &gate
                && !decision.findings.is_empty()
                && !state
                    .open_gate(&gate.key, event.event_id, event.time, gate.length)
                    .await?
            {
                out.deduplicated += decision.findings.len();
                for _ in 0..decision.findings.len() {
                    let key = gate.key.clone();
                    out.hide(rule.id, Why::Deduplicated { key });
                }
                continue;
            }
            let key = gate.map(|g| g.key).or(ask_key.map(str::to_owned));
            for finding in decision.findings {
                if let Some(entry) =
                    self.suppression(finding.rule.id, &finding.subject, finding.time)
                {
                    out.suppressed += 1;
                    out.hide(finding.rule.id, Why::Suppressed { entry });
                    continue;
                }
                self.claim(finding, key.clone(), &event, state, &mut out)
                    .await?;
            }
        }
        Ok(out)
    }

    /// Turns a finding into a signal and claims it: a signal already published (or being
    /// published by another invocation) is counted, not returned.
    async fn claim<S: State>(
        &self,
        finding: Finding,
        key: Option<String>,
        event: &Event<'_>,
        state: &S,
        out: &mut Evaluation,
    ) -> Result<(), StateError> {
        let mut signal = Signal::of(finding);
        // The finding's rule, not the event's: a finding may be another rule's (the chain).
        signal.shadow = self.config.modes.of(&signal.rule_id) == Mode::Shadow;
        let expires = event.time.saturating_add(CLAIM_RETENTION);
        match state
            .claim_signal(&signal.claim_id(), event.time, expires)
            .await?
        {
            Claim::Fresh | Claim::Unfinished => {
                out.signals.push(signal);
                out.opened.push(key);
            }
            Claim::Done => {
                out.deduplicated += 1;
                let rule_id = finding_rule(&signal);
                out.hide(
                    rule_id,
                    Why::Published {
                        signal_id: signal.signal_id,
                    },
                );
            }
            Claim::InFlight => out.in_flight += 1,
        }
        Ok(())
    }

    /// Records that `signal` was emitted, so evaluating its event again gives nothing.
    pub async fn published<S: State>(&self, signal: &Signal, state: &S) -> Result<(), StateError> {
        state.mark_published(&signal.claim_id()).await
    }

    /// The index of the first suppression entry that matches, if any.
    fn suppression(&self, rule_id: &str, subject: &Subject, now: Seconds) -> Option<usize> {
        self.config
            .suppressions
            .iter()
            .position(|s| s.matches(rule_id, subject, now))
    }
}

impl Evaluation {
    fn hide(&mut self, rule_id: &'static str, why: Why) {
        self.hidden.push(Hidden { rule_id, why });
    }
}

/// The registry's id of a signal's rule (signals are made from findings of registered rules).
fn finding_rule(signal: &Signal) -> &'static str {
    rules::by_id(&signal.rule_id).map_or("unknown", |rule| rule.id)
}

/// The rules that read this record's call (`requestParameters.serviceCode` is read only when a
/// trigger of the call needs it), disabled rules left out: a call only they read costs no state
/// call at all.
fn triggered(
    record: &Record<'_>,
    params: &Params<'_>,
    config: &Config,
) -> Result<Vec<&'static RuleMeta>, RecordError> {
    let service_code = || {
        params
            .str("serviceCode")
            .map(|code| code.map(Cow::into_owned))
    };
    let call = Call {
        name: record.name(),
        params,
    };
    let mut triggered = Vec::new();
    for rule in rules::ALL {
        if config.modes.of(rule.id) == Mode::Disabled {
            continue;
        }
        if rule.triggered_by(record, service_code)? && rule.detection.considers(&call) {
            triggered.push(rule);
        }
    }
    Ok(triggered)
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
    let mut answered = vec![false; asks.len()];
    for (i, ask) in asks.iter().enumerate() {
        let Some(ask) = ask else { continue };
        if answered[i] {
            continue;
        }
        if let Some(keep) = ask.shared {
            let group: Vec<usize> = (i..asks.len())
                .filter(|&j| {
                    !answered[j] && asks[j].is_some_and(|a| a.shared.is_some() && a.key == ask.key)
                })
                .collect();
            for (j, answer) in shared_step(&group, asks, keep, event, state).await? {
                answers[j] = answer;
                answered[j] = true;
            }
            if answered[i] {
                continue;
            }
        }
        answers[i] = answer_one(ask, event, state).await?;
        answered[i] = true;
    }
    Ok(answers)
}

/// One step on a shared key: the first pairing and the first window asked in `group` (indexes
/// into `asks`), answered together. Other asks of the group are left to [`answer_one`].
async fn shared_step<S: State>(
    group: &[usize],
    asks: &[Option<&Ask>],
    keep: Seconds,
    event: &Event<'_>,
    state: &S,
) -> Result<Vec<(usize, Answer)>, StateError> {
    let find = |wanted: fn(&Op) -> bool| {
        group
            .iter()
            .copied()
            .find_map(|j| asks[j].filter(|a| wanted(&a.op)).map(|a| (j, a)))
    };
    let pairing = find(|op| matches!(op, Op::Pair { .. }));
    let window = find(|op| matches!(op, Op::Window { .. }));
    let Some((_, first)) = pairing.or(window) else {
        return Ok(Vec::new());
    };
    let marked = pairing.map(|_| mark(event));
    let (side, pair_window) = match pairing.map(|(_, a)| &a.op) {
        Some(Op::Pair { side, window }) => (Some(*side), *window),
        _ => (None, 0),
    };
    let dedup_window = match window.map(|(_, a)| &a.op) {
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
    let outcome = state.pair_and_window(&first.key, step).await?;
    let mut out = Vec::new();
    if let Some((j, _)) = pairing {
        out.push((j, Answer::Paired(outcome.paired)));
    }
    if let Some((j, _)) = window {
        out.push((j, Answer::Window(outcome.opened)));
    }
    Ok(out)
}

/// One ask by its own operation of the port.
async fn answer_one<S: State>(
    ask: &Ask,
    event: &Event<'_>,
    state: &S,
) -> Result<Answer, StateError> {
    let (key, id, now) = (ask.key.as_str(), event.event_id, event.time);
    Ok(match &ask.op {
        Op::Sight { forget } => Answer::Sighting(state.sight(key, id, now, *forget).await?),
        Op::Window { length } => Answer::Window(state.open_window(key, id, now, *length).await?),
        Op::Pair { side, window } => {
            Answer::Paired(state.pair(key, *side, &mark(event), *window).await?)
        }
        Op::Distinct { value, window, max } => Answer::Distinct(
            state
                .distinct_in_window(key, value, id, now, *window, *max)
                .await?,
        ),
        Op::Count { window, max } => {
            Answer::Count(state.count_in_window(key, id, now, *window, *max).await?)
        }
    })
}

/// The event as a pairing remembers it (built only when a rule pairs it).
fn mark(event: &Event<'_>) -> Mark {
    Mark {
        event_id: event.event_id.to_owned(),
        time: event.time,
        subject: event.subject.clone(),
    }
}
