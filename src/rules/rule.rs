//! What a detection is, as the engine sees it: metadata, the calls it reads, the state it asks
//! for, and a pure decision over the answer. The engine runs every rule through this interface
//! and knows none by name.

use std::fmt;

use super::event::{Call, Event};
use super::narrowing::Narrowing;
use crate::model::{Seconds, Settings, Severity, Subject};
use crate::record::Record;
use crate::state::{DistinctAnswer, Mark, Side, Sighting};

/// An API call a rule reads: the EventBridge patterns of the template are derived from these.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Trigger {
    pub event_source: &'static str,
    pub event_name: &'static str,
    /// Required `requestParameters.serviceCode`, if any (Service Quotas is shared by all services).
    pub service_code: Option<&'static str>,
    /// What the EventBridge patterns also require of the call, if anything (never checked by
    /// the engine: the rule's own condition implies it).
    pub narrowing: Option<&'static Narrowing>,
}

impl Trigger {
    pub const fn ses(event_name: &'static str) -> Self {
        Trigger {
            event_source: super::SES,
            event_name,
            service_code: None,
            narrowing: None,
        }
    }

    pub const fn iam(event_name: &'static str) -> Self {
        Trigger {
            event_source: super::IAM,
            event_name,
            service_code: None,
            narrowing: None,
        }
    }

    /// A Service Quotas call about one service (`serviceCode`, compared case-insensitively).
    pub const fn quota(event_name: &'static str, service_code: &'static str) -> Self {
        Trigger {
            event_source: super::SERVICE_QUOTAS,
            event_name,
            service_code: Some(service_code),
            narrowing: None,
        }
    }

    /// This trigger, with the EventBridge patterns also requiring `narrowing`.
    pub const fn narrowed(self, narrowing: &'static Narrowing) -> Self {
        Trigger {
            narrowing: Some(narrowing),
            ..self
        }
    }

    /// Whether `record` is this call (the service code is checked by [`RuleMeta::triggered_by`]).
    pub(crate) fn matches_call(&self, record: &Record) -> bool {
        record.source() == self.event_source && record.name() == self.event_name
    }
}

/// When a rule's suppressions are judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SuppressOn {
    /// On the event, before any state is touched: a suppressed match leaves no trace, so it
    /// cannot hide a later true signal.
    Event,
    /// On each finding only: the rule's findings describe another event than the one evaluated
    /// (a pairing names the delete whichever side arrives second).
    Finding,
}

/// A rule: what a signal says about it (from the seed documents), the calls it reads, and its
/// logic.
pub struct RuleMeta {
    pub id: &'static str,
    pub title: &'static str,
    pub severity: Severity,
    pub tactic: &'static str,
    pub tactic_name: &'static str,
    pub technique: &'static str,
    pub technique_name: &'static str,
    /// The seed's triage steps, with Datadog's placeholders (`{{@evt.name}}`,
    /// `{{@userIdentity.arn}}`, `{{@network.client.ip}}`) filled in per signal.
    pub triage: &'static [&'static str],
    pub triggers: &'static [Trigger],
    pub suppress_on: SuppressOn,
    /// Where the semantics come from.
    pub seed: &'static str,
    pub detection: &'static dyn Detection,
}

impl fmt::Debug for RuleMeta {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RuleMeta").field("id", &self.id).finish()
    }
}

impl RuleMeta {
    /// Whether this rule reads `record`'s call; `service_code` gives the record's
    /// `requestParameters.serviceCode` (read only when a trigger of the call needs it).
    pub fn triggered_by<E>(
        &self,
        record: &Record,
        service_code: impl Fn() -> Result<Option<String>, E>,
    ) -> Result<bool, E> {
        for trigger in self.triggers {
            if !trigger.matches_call(record) {
                continue;
            }
            let Some(code) = trigger.service_code else {
                return Ok(true);
            };
            if service_code()?.is_some_and(|c| c.eq_ignore_ascii_case(code)) {
                return Ok(true);
            }
        }
        Ok(false)
    }
}

/// The logic of one rule. Pure: the state it needs is asked for with [`Detection::ask`], the
/// engine answers, and [`Detection::decide`] turns the answer into findings.
pub trait Detection: Sync {
    /// Whether the call can concern the rule, judged on its name and request parameters before
    /// the event is built: a cheap test that spares building events for the many calls of a
    /// busy trigger that never concern the rule (IAM's policy writes for the SES grant rule).
    fn considers(&self, _call: &Call) -> bool {
        true
    }

    /// Whether the rule takes part for this event at all (after its triggers matched).
    fn applies(&self, _event: &Event) -> bool {
        true
    }

    /// The state step the rule needs for this event, if any.
    fn ask(&self, event: &Event, settings: &Settings) -> Option<Ask>;

    /// The rule's findings from the answer to its ask ([`Answer::Nothing`] when it asked
    /// nothing).
    fn decide(&self, event: &Event, answer: Answer, context: &Context) -> Decision;
}

/// A state step a rule asks for, on a key it builds (always including the account).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ask {
    pub key: String,
    /// Set when other rules keep state under the same key: the engine answers all their asks
    /// on that key in one step of the port (one call for an adapter that keeps them in one
    /// item), whichever of them take part for an event. It holds how long that state must be
    /// kept after the event: the same for every rule sharing the key (see [`super::shared`]).
    pub shared: Option<Seconds>,
    pub op: Op,
}

impl Ask {
    /// The rule's dedup window on its own `key`: a signal, then none for `settings.dedup`.
    pub fn dedup(key: String, settings: &Settings) -> Self {
        Ask {
            key,
            shared: None,
            op: Op::Window {
                length: settings.dedup,
            },
        }
    }
}

/// The operations of the [`State`](crate::state::State) port a rule can ask for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// First sighting of the key, forgotten after `forget` without a sighting.
    Sight { forget: Seconds },
    /// A dedup window of `length` for the key.
    Window { length: Seconds },
    /// Remember the event as `side` of an add/delete pairing within `window`; answers the
    /// events of the other side it pairs with.
    Pair { side: Side, window: Seconds },
    /// Record `value` in the key's set; answers the distinct values with an occurrence within
    /// `window` of the event, with their first and last occurrence (at most `max` kept):
    /// regions a principal called within minutes, stages of a chain.
    Distinct {
        value: String,
        window: Seconds,
        max: usize,
    },
    /// Count the event under the key; answers how many events were counted within `window`,
    /// at most `max` (a threshold).
    Count { window: Seconds, max: usize },
}

/// The state's answer to an [`Ask`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Answer {
    /// No ask was made.
    #[default]
    Nothing,
    Sighting(Sighting),
    /// Whether the event opened the window.
    Window(bool),
    /// The events of the other side the event pairs with, oldest first.
    Paired(Vec<Mark>),
    /// The distinct values within the window, and the set's gate.
    Distinct(DistinctAnswer),
    /// Events counted within the window (at most the `max` asked).
    Count(u64),
}

impl Answer {
    /// Whether the event opened the dedup window it asked for.
    pub fn opened(&self) -> bool {
        matches!(self, Answer::Window(true))
    }
}

/// What every rule may read besides the event.
#[derive(Debug, Clone)]
pub struct Context<'a> {
    pub settings: &'a Settings,
    /// The time of the first event the state ever saw (the learning period's start).
    pub first_event: Seconds,
}

/// A rule's result before it becomes a [`Signal`](crate::signal::Signal).
#[derive(Debug)]
pub struct Finding {
    pub rule: &'static RuleMeta,
    pub severity: Severity,
    /// The event the finding describes, and its time.
    pub subject: Subject,
    pub time: Seconds,
    pub related_event_ids: Vec<String>,
    /// Whether the related events take part in the signal's id (the default). False when the
    /// event alone names the signal, so it is given once whatever events relate to it.
    pub id_from_related: bool,
    /// Rule-specific facts for the signal's `details`.
    /// `None` for the first five rules' findings (their signals had no `details`, and keep
    /// their bytes); the rules of the abuse chain always give an object.
    pub details: Option<serde_json::Map<String, serde_json::Value>>,
}

impl Finding {
    /// A finding about `event` itself, at the rule's severity.
    pub fn of(rule: &'static RuleMeta, event: &Event) -> Self {
        Finding {
            rule,
            severity: rule.severity,
            subject: event.subject.clone(),
            time: event.time,
            related_event_ids: Vec::new(),
            id_from_related: true,
            details: None,
        }
    }

    /// The finding's `details`, created (empty) if it had none.
    pub fn details(&mut self) -> &mut serde_json::Map<String, serde_json::Value> {
        self.details.get_or_insert_default()
    }
}

/// The gate of a distinct set ([`Op::Distinct`]'s key), opened at most once per `length`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gate {
    pub key: String,
    pub length: Seconds,
}

/// A rule's decision on one event.
#[derive(Debug, Default)]
pub struct Decision {
    pub findings: Vec<Finding>,
    /// Matches that gave no finding because an equal one was given already.
    pub deduplicated: usize,
    /// The gate the findings are given through: they stand only if this event opens it
    /// ([`State::open_gate`](crate::state::State::open_gate)), else they count as duplicates. A
    /// threshold rule, whose condition stays true for every later event of the burst, fires once
    /// per gate length this way; the gate is asked for only when there is something to fire
    /// and the set's answer does not already show it held.
    pub once_per: Option<Gate>,
}

impl Decision {
    /// One finding, or a duplicate when `fire` is false.
    pub fn fire_or_duplicate(fire: bool, finding: impl FnOnce() -> Finding) -> Self {
        if fire {
            Decision {
                findings: vec![finding()],
                ..Decision::default()
            }
        } else {
            Decision {
                deduplicated: 1,
                ..Decision::default()
            }
        }
    }

    /// `finding`, given through `gate` (see [`Decision::once_per`]), or a duplicate when the
    /// set's answer shows the gate held by another event already (no state call then).
    pub fn once_per(gate: Gate, answer: &DistinctAnswer, event: &Event, finding: Finding) -> Self {
        if answer.gate_held(event.event_id, event.time, gate.length) {
            return Decision::fire_or_duplicate(false, || finding);
        }
        Decision {
            findings: vec![finding],
            deduplicated: 0,
            once_per: Some(gate),
        }
    }
}
