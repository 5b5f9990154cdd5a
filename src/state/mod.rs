//! The State port the engine reads and writes for the rules, and its in-memory implementation
//! ([`MemoryState`], the CLI's). The DynamoDB one is `crate::aws::dynamodb`.
//!
//! Every operation is one atomic step an adapter can implement with a single conditional write,
//! and every one is replay-safe: evaluating the same event again (EventBridge delivers at least
//! once, Lambda retries) reaches the same decision, and the signal claim then decides whether
//! it is published again. All times are event times ([`Seconds`]); an entry whose expiry is
//! before the current event's time counts as absent, whether or not it was removed yet.

mod heartbeat;
mod memory;

use std::future::Future;

pub use heartbeat::{HeartbeatStore, RegionView};
pub use memory::MemoryState;

use crate::model::{Seconds, Subject};

crate::port_error!(
    /// A state backend failure, with its kind (which decides whether a retry may help) and its
    /// source. Transient ones make the Lambda return an error so the event is retried.
    StateError,
    "state backend"
);

/// Whether a key is new ([`State::sight`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sighting {
    /// Never seen, seen last more than the forget period ago, or first sighted by this very event.
    New,
    Known,
}

/// Which side of an add/delete pairing an event is ([`State::pair`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Add,
    Delete,
}

/// An event remembered for pairing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mark {
    pub event_id: String,
    pub time: Seconds,
    /// What a signal needs to describe the event when its counterpart arrives later.
    pub subject: Subject,
}

/// One event's step on a key that holds a pairing and a dedup window
/// ([`State::pair_and_window`]).
#[derive(Debug, Clone, Copy)]
pub struct PairStep<'a> {
    pub event_id: &'a str,
    pub now: Seconds,
    /// Remember the event as this side of an add/delete pairing (its `time` is `now`).
    pub pair: Option<(Side, &'a Mark)>,
    pub pair_window: Seconds,
    /// Open a dedup window for the event.
    pub open_window: bool,
    pub dedup_window: Seconds,
    /// How long the key's state must be kept after `now`: at least both windows, and the same
    /// for every step on the key, so an adapter's expiry for it only moves forward.
    pub keep: Seconds,
}

/// What [`State::pair_and_window`] answers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PairOutcome {
    /// The marks of the other side the event pairs with (empty when no pairing was asked for).
    pub paired: Vec<Mark>,
    /// Whether the dedup window opened (false when none was asked for).
    pub opened: bool,
}

/// The outcome of claiming a signal before it is emitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// First claim: emit it.
    Fresh,
    /// Claimed earlier but never marked published (a crash or failure in between), and its
    /// claimer is gone: emit it again.
    Unfinished,
    /// Claimed by another invocation that may still be publishing it (its lease is live): emit
    /// nothing now, and fail so the event is retried after the lease.
    InFlight,
    /// Already published: emit nothing.
    Done,
}

/// What the rules need remembered. Keys are built by the rules and always include the account;
/// operations are named for what they do, not for the rule that first used them.
pub trait State: Sync {
    /// Records `now` as the time of the first event the state ever saw, unless one is recorded,
    /// and returns the recorded time.
    fn first_event_time(
        &self,
        now: Seconds,
    ) -> impl Future<Output = Result<Seconds, StateError>> + Send;

    /// Sights `key` at `now` and refreshes it so it is remembered until `now + forget`: a key
    /// last seen `forget` or more before `now` is new again.
    fn sight(
        &self,
        key: &str,
        event_id: &str,
        now: Seconds,
        forget: Seconds,
    ) -> impl Future<Output = Result<Sighting, StateError>> + Send;

    /// Opens a dedup window of `window` seconds for `key` at `now`, unless one opened by another
    /// event is less than `window` away from `now` (on either side: records may arrive out of
    /// order). Returns whether it opened one; the window kept is the latest opened.
    fn open_window(
        &self,
        key: &str,
        event_id: &str,
        now: Seconds,
        window: Seconds,
    ) -> impl Future<Output = Result<bool, StateError>> + Send;

    /// Remembers `mark` as one `side` of `key` for `window` seconds and returns the marks of the
    /// other side it pairs with: for an add, deletes in `(t, t + window]`; for a delete, adds in
    /// `[t - window, t)`. Whichever of a pair arrives second finds the first.
    ///
    /// The pairing half of [`State::pair_and_window`], on its own.
    fn pair(
        &self,
        key: &str,
        side: Side,
        mark: &Mark,
        window: Seconds,
    ) -> impl Future<Output = Result<Vec<Mark>, StateError>> + Send {
        async move {
            let step = PairStep {
                event_id: &mark.event_id,
                now: mark.time,
                pair: Some((side, mark)),
                pair_window: window,
                open_window: false,
                dedup_window: 0,
                keep: window,
            };
            Ok(self.pair_and_window(key, step).await?.paired)
        }
    }

    /// A pairing and a dedup window kept under one `key` (rules that share a key, such as an
    /// SES identity's pairing and its deletion window), answered in one step: an adapter that
    /// keeps both in one item answers both with one call. Each half behaves exactly as
    /// [`State::pair`] and [`State::open_window`] would (`pair` with `mark` and `pair_window`;
    /// `open_window` with `event_id`, `now` and `dedup_window`), except that the window lives
    /// with the pairing, not beside the windows of [`State::open_window`]; a half not asked for
    /// is neither read nor written.
    fn pair_and_window(
        &self,
        key: &str,
        step: PairStep<'_>,
    ) -> impl Future<Output = Result<PairOutcome, StateError>> + Send;

    /// Records `value` under `key` as seen by `event_id` at `now`, and answers the values
    /// recorded under `key` with an occurrence within `window` of `now` (either side: records may
    /// arrive out of order), `value` included, sorted by value. Each value keeps its first and
    /// its last occurrence ([`Seen`]), so a rule can find a span of event time that holds them.
    /// At most `max` values are kept per key, the most recently seen (ties: the smaller value
    /// goes first), so state stays bounded whatever the input; values and event ids are kept to
    /// their first [`MAX_VALUE_BYTES`] bytes. Replay-safe: recording the same event again
    /// changes nothing. The answer also gives the set's gate ([`State::open_gate`]) as it was.
    fn distinct_in_window(
        &self,
        key: &str,
        value: &str,
        event_id: &str,
        now: Seconds,
        window: Seconds,
        max: usize,
    ) -> impl Future<Output = Result<DistinctAnswer, StateError>> + Send;

    /// Opens the gate of the distinct set `key` for `event_id` at `now`, unless another event
    /// opened it less than `length` away from `now` (either side), and answers whether it
    /// opened. A threshold rule fires through its set's gate, once per `length`; the gate lives
    /// with the set, so [`State::distinct_in_window`]'s answer tells the rule, for free, when it
    /// is held, and this conditional write is needed only when it may open. The gate records
    /// the event that opened it last. Replay-safe: the event that opened it opens it again.
    fn open_gate(
        &self,
        key: &str,
        event_id: &str,
        now: Seconds,
        length: Seconds,
    ) -> impl Future<Output = Result<bool, StateError>> + Send;

    /// Counts the event `event_id` under `key` at `now` and answers how many distinct events
    /// were counted under `key` within `window` of `now`, at most `max` (a threshold rule asks
    /// for its threshold). A replayed event is not counted twice.
    fn count_in_window(
        &self,
        key: &str,
        event_id: &str,
        now: Seconds,
        window: Seconds,
        max: usize,
    ) -> impl Future<Output = Result<u64, StateError>> + Send {
        async move {
            let events = self
                .distinct_in_window(key, event_id, event_id, now, window, max)
                .await?;
            Ok(events.values.len() as u64)
        }
    }

    /// Claims `signal_id` (until `expires`) before the signal is emitted.
    fn claim_signal(
        &self,
        signal_id: &str,
        now: Seconds,
        expires: Seconds,
    ) -> impl Future<Output = Result<Claim, StateError>> + Send;

    /// Marks a claimed signal as published, so a retry does not publish it again.
    fn mark_published(
        &self,
        signal_id: &str,
    ) -> impl Future<Output = Result<(), StateError>> + Send;
}

/// The most marks a pairing keeps per side of one key, the newest by time (ties: the smaller
/// event id first): state stays bounded whatever an attacker sends, and the marks of a
/// delete's window are the newest.
pub const MAX_MARKS_PER_SIDE: usize = 32;

/// Marks with their side.
pub type SideMarks<'m> = Vec<(Side, &'m Mark)>;

/// The marks of a pairing to keep, newest first per side (see [`MAX_MARKS_PER_SIDE`]), and
/// the event ids of those to drop. Every adapter decides with this, so they agree.
pub fn keep_newest_marks<'m>(
    marks: impl IntoIterator<Item = (Side, &'m Mark)>,
) -> (SideMarks<'m>, SideMarks<'m>) {
    let mut all: Vec<(Side, &Mark)> = marks.into_iter().collect();
    all.sort_by(|(sa, a), (sb, b)| {
        (*sa as u8)
            .cmp(&(*sb as u8))
            .then(b.time.cmp(&a.time))
            .then_with(|| a.event_id.cmp(&b.event_id))
    });
    let mut kept = Vec::new();
    let mut dropped = Vec::new();
    let mut per_side = [0usize; 2];
    for (side, mark) in all {
        let count = &mut per_side[side as usize];
        *count += 1;
        if *count <= MAX_MARKS_PER_SIDE {
            kept.push((side, mark));
        } else {
            dropped.push((side, mark));
        }
    }
    (kept, dropped)
}

/// The most bytes of a value (and of an event id) [`State::distinct_in_window`] keeps.
pub const MAX_VALUE_BYTES: usize = 200;

/// One occurrence of a value in a distinct set.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Occurrence {
    pub time: Seconds,
    pub event_id: String,
}

impl Occurrence {
    pub fn new(time: Seconds, event_id: &str) -> Self {
        Occurrence {
            time,
            event_id: crate::text::capped_to(event_id, MAX_VALUE_BYTES),
        }
    }

    /// Whether the occurrence is within `window` of `now`, on either side.
    pub fn near(&self, now: Seconds, window: Seconds) -> bool {
        now.abs_diff(self.time) <= window.unsigned_abs()
    }
}

/// A value of a distinct set with its first and last occurrence (the smallest and the largest
/// by time, then event id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub value: String,
    pub first: Occurrence,
    pub last: Occurrence,
}

impl Seen {
    pub fn once(value: &str, occurrence: Occurrence) -> Self {
        Seen {
            value: value.to_owned(),
            first: occurrence.clone(),
            last: occurrence,
        }
    }

    /// Records one more occurrence.
    pub fn merge(&mut self, occurrence: &Occurrence) {
        if *occurrence < self.first {
            self.first = occurrence.clone();
        }
        if *occurrence > self.last {
            self.last = occurrence.clone();
        }
    }

    /// The value's occurrences (one or two).
    pub fn occurrences(&self) -> impl Iterator<Item = &Occurrence> {
        std::iter::once(&self.first).chain((self.last != self.first).then_some(&self.last))
    }
}

/// What [`State::distinct_in_window`] answers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DistinctAnswer {
    /// The values with an occurrence within the window, sorted by value.
    pub values: Vec<Seen>,
    /// When and by which events the set's gate was opened, newest first (at most
    /// [`KEPT_OPENINGS`]), as it was before this event's write.
    pub gate: Vec<Occurrence>,
}

impl DistinctAnswer {
    /// Whether [`State::open_gate`] would keep the gate shut for this event (then its
    /// finding is a duplicate, and no call is needed to know it).
    pub fn gate_held(&self, event_id: &str, now: Seconds, length: Seconds) -> bool {
        !window_opens(&self.gate, event_id, now, length)
    }
}

/// The openings a dedup window or a gate keeps: the latest and the ones before it. Older ones
/// let a late duplicate of an event that a window held stay held after a later window opened
/// (the same decision as the first time: idempotency on the event), within the kept ones.
pub const KEPT_OPENINGS: usize = 3;

/// Whether an event at `now` opens a window (or a gate) of `window` seconds that holds
/// `openings` (newest first, at most [`KEPT_OPENINGS`]): it does when it opened one of them
/// itself (a replay), or when none is less than `window` from it (either side). Every adapter
/// decides with this, so they agree.
pub fn window_opens(
    openings: &[Occurrence],
    event_id: &str,
    now: Seconds,
    window: Seconds,
) -> bool {
    let event_id = crate::text::capped_to(event_id, MAX_VALUE_BYTES);
    openings.iter().any(|o| o.event_id == event_id)
        || !openings
            .iter()
            .any(|o| now.abs_diff(o.time) < window.unsigned_abs())
}

/// The openings after `event_id` opened at `now` (only an opening later than every kept one is
/// recorded: an out-of-order event opens without moving the window back).
pub fn record_opening(openings: &mut Vec<Occurrence>, event_id: &str, now: Seconds) -> bool {
    if openings.first().is_some_and(|latest| latest.time > now)
        || openings.iter().any(|o| o.event_id == event_id)
    {
        return false;
    }
    openings.insert(0, Occurrence::new(now, event_id));
    openings.truncate(KEPT_OPENINGS);
    true
}

/// A distinct set after recording one occurrence: what to keep, and the answer. Every adapter
/// decides with this, so they agree.
pub fn record_distinct(
    old: impl IntoIterator<Item = Seen>,
    value: &str,
    occurrence: &Occurrence,
    window: Seconds,
    max: usize,
) -> DistinctStep {
    let value = crate::text::capped_to(value, MAX_VALUE_BYTES);
    let now = occurrence.time;
    let mut kept: Vec<Seen> = old.into_iter().collect();
    match kept.iter_mut().find(|seen| seen.value == value) {
        Some(seen) => seen.merge(occurrence),
        None => kept.push(Seen::once(&value, occurrence.clone())),
    }
    // Newest first; the oldest beyond `max` are dropped.
    kept.sort_by(|a, b| {
        b.last
            .time
            .cmp(&a.last.time)
            .then_with(|| a.value.cmp(&b.value))
    });
    let dropped: Vec<String> = kept
        .split_off(max.max(1).min(kept.len()))
        .into_iter()
        .map(|seen| seen.value)
        .collect();
    let mut answer: Vec<Seen> = kept
        .iter()
        .filter(|seen| seen.occurrences().any(|o| o.near(now, window)))
        .cloned()
        .collect();
    answer.sort_by(|a, b| a.value.cmp(&b.value));
    DistinctStep {
        kept,
        dropped,
        answer,
    }
}

/// See [`record_distinct`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DistinctStep {
    /// The values kept, newest first, at most `max`.
    pub kept: Vec<Seen>,
    /// Values no longer kept.
    pub dropped: Vec<String>,
    pub answer: Vec<Seen>,
}

/// Whether an event at `time` on `side` pairs with one at `other` on the other side: the delete
/// strictly after the add and at most `window` later.
pub fn pairs(side: Side, time: Seconds, other: Seconds, window: Seconds) -> bool {
    let (add, delete) = match side {
        Side::Add => (time, other),
        Side::Delete => (other, time),
    };
    delete > add && delete - add <= window
}
