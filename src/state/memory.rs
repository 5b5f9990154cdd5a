//! The in-memory State of `sesguard scan` (and of unit tests).

use std::collections::HashMap;
use std::sync::Mutex;

use super::{
    Claim, DistinctAnswer, HeartbeatStore, Mark, Occurrence, PairOutcome, PairStep, RegionView,
    Seen, Side, Sighting, State, StateError, keep_newest_marks, pairs,
};
use crate::model::{FailureKind, Seconds};

/// The in-memory state of `sesguard scan`. Expired entries are dropped now and then, once the
/// newest event time seen is well past their expiry, so memory follows the number of live keys
/// (principals, open windows, identities within the window), not the input size.
#[derive(Debug, Default)]
pub struct MemoryState {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    first_event: Option<Seconds>,
    sightings: HashMap<String, SightingEntry>,
    windows: HashMap<String, WindowEntry>,
    marks: HashMap<String, Vec<(Side, Mark, Seconds)>>,
    signals: HashMap<String, (bool, Seconds)>,
    /// Distinct sets: their values, their expiry and their gate.
    sets: HashMap<String, SetEntry>,
    newest: Seconds,
    operations: u64,
    /// The heartbeat's regions (wall-clock times, never pruned: one entry per watched region).
    heartbeats: HashMap<String, RegionView>,
}

#[derive(Debug, Default)]
struct SetEntry {
    values: Vec<Seen>,
    expires: Seconds,
    /// Newest first, at most [`super::KEPT_OPENINGS`].
    gate: Vec<Occurrence>,
}

#[derive(Debug)]
struct SightingEntry {
    last_seen: Seconds,
    expires: Seconds,
    new_by: String,
}

#[derive(Debug, Default)]
struct WindowEntry {
    /// Newest first, at most [`super::KEPT_OPENINGS`].
    openings: Vec<Occurrence>,
    expires: Seconds,
}

/// Entries are kept this long past their expiry (in event time) before they are dropped, so
/// late duplicates and out-of-order records within a day still find them.
const PRUNE_GRACE: Seconds = crate::model::DAY;
const PRUNE_EVERY: u64 = 4096;

impl MemoryState {
    pub fn new() -> Self {
        Self::default()
    }

    fn with<T>(&self, now: Seconds, f: impl FnOnce(&mut Inner) -> T) -> Result<T, StateError> {
        let mut inner = self.lock()?;
        inner.newest = inner.newest.max(now);
        inner.operations += 1;
        if inner.operations.is_multiple_of(PRUNE_EVERY) {
            inner.prune();
        }
        Ok(f(&mut inner))
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, Inner>, StateError> {
        self.inner.lock().map_err(|_| {
            StateError::new(
                FailureKind::Internal,
                "in-memory state poisoned by an earlier panic",
            )
        })
    }

    /// Number of live entries of every kind (for tests of the memory bound).
    pub fn len(&self) -> usize {
        self.inner
            .lock()
            .map(|i| {
                i.sightings.len() + i.windows.len() + i.marks.len() + i.signals.len() + i.sets.len()
            })
            .unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Drops every entry that expired before `now - grace` (normally done as events flow).
    pub fn prune_now(&self) {
        if let Ok(mut inner) = self.inner.lock() {
            inner.prune();
        }
    }
}

impl Inner {
    fn prune(&mut self) {
        let cutoff = self.newest.saturating_sub(PRUNE_GRACE);
        self.sightings.retain(|_, e| e.expires >= cutoff);
        self.sets.retain(|_, set| set.expires >= cutoff);
        self.windows.retain(|_, e| e.expires >= cutoff);
        self.marks.retain(|_, marks| {
            marks.retain(|(_, _, expires)| *expires >= cutoff);
            !marks.is_empty()
        });
        self.signals.retain(|_, (_, expires)| *expires >= cutoff);
    }

    /// `latest_only`: decide on the latest opening alone (the identity item's window, whose
    /// DynamoDB twin keeps one).
    fn open_window(
        &mut self,
        key: &str,
        event_id: &str,
        now: Seconds,
        window: Seconds,
        latest_only: bool,
    ) -> bool {
        let entry = self.windows.entry(key.to_owned()).or_default();
        let considered = if latest_only {
            &entry.openings[..entry.openings.len().min(1)]
        } else {
            &entry.openings[..]
        };
        let opens = super::window_opens(considered, event_id, now, window);
        if opens && super::record_opening(&mut entry.openings, event_id, now) {
            entry.expires = entry.expires.max(now.saturating_add(window));
        }
        opens
    }

    fn pair(&mut self, key: &str, side: Side, mark: &Mark, window: Seconds) -> Vec<Mark> {
        let marks = self.marks.entry(key.to_owned()).or_default();
        if !marks
            .iter()
            .any(|(s, m, _)| *s == side && m.event_id == mark.event_id)
        {
            // An add is needed until its window closes; a delete as long as an add up to
            // `window` before it may still arrive.
            let expires = mark.time.saturating_add(window);
            marks.push((side, mark.clone(), expires));
        }
        let (_, dropped) = keep_newest_marks(marks.iter().map(|(s, m, _)| (*s, m)));
        let dropped: Vec<(Side, String)> = dropped
            .into_iter()
            .map(|(s, m)| (s, m.event_id.clone()))
            .collect();
        marks.retain(|(s, m, _)| !dropped.iter().any(|(ds, id)| ds == s && *id == m.event_id));
        marks
            .iter()
            .filter(|(s, other, _)| *s != side && pairs(side, mark.time, other.time, window))
            .map(|(_, other, _)| other.clone())
            .collect()
    }
}

/// The heartbeat's times are wall clock, not event time: they do not move `newest` (pruning).
impl HeartbeatStore for MemoryState {
    async fn canary_seen(&self, region: &str, at: Seconds) -> Result<(), StateError> {
        let mut inner = self.lock()?;
        let view = inner.heartbeats.entry(region.to_owned()).or_default();
        view.last_seen = Some(view.last_seen.map_or(at, |seen| seen.max(at)));
        Ok(())
    }

    async fn check_region(&self, region: &str, now: Seconds) -> Result<RegionView, StateError> {
        let mut inner = self.lock()?;
        let view = inner
            .heartbeats
            .entry(region.to_owned())
            .or_insert_with(|| RegionView {
                first_checked: now,
                ..RegionView::default()
            });
        if view.first_checked == 0 {
            // Seen (canary) before any check: the first check is now.
            view.first_checked = now;
        }
        Ok(*view)
    }

    async fn open_outage(&self, region: &str, since: Seconds) -> Result<Seconds, StateError> {
        let mut inner = self.lock()?;
        let view = inner.heartbeats.entry(region.to_owned()).or_default();
        Ok(*view.outage_since.get_or_insert(since))
    }

    async fn close_outage(&self, region: &str, since: Seconds) -> Result<(), StateError> {
        let mut inner = self.lock()?;
        if let Some(view) = inner.heartbeats.get_mut(region)
            && view.outage_since == Some(since)
        {
            view.outage_since = None;
        }
        Ok(())
    }
}

impl State for MemoryState {
    async fn first_event_time(&self, now: Seconds) -> Result<Seconds, StateError> {
        self.with(now, |inner| *inner.first_event.get_or_insert(now))
    }

    async fn sight(
        &self,
        key: &str,
        event_id: &str,
        now: Seconds,
        forget: Seconds,
    ) -> Result<Sighting, StateError> {
        self.with(now, |inner| {
            let expires = now.saturating_add(forget);
            match inner.sightings.get_mut(key) {
                Some(entry) if entry.new_by == event_id => Sighting::New,
                Some(entry) if entry.expires > now => {
                    if now > entry.last_seen {
                        entry.last_seen = now;
                        entry.expires = expires;
                    }
                    Sighting::Known
                }
                _ => {
                    let entry = SightingEntry {
                        last_seen: now,
                        expires,
                        new_by: event_id.to_owned(),
                    };
                    inner.sightings.insert(key.to_owned(), entry);
                    Sighting::New
                }
            }
        })
    }

    async fn open_window(
        &self,
        key: &str,
        event_id: &str,
        now: Seconds,
        window: Seconds,
    ) -> Result<bool, StateError> {
        self.with(now, |inner| {
            inner.open_window(key, event_id, now, window, false)
        })
    }

    async fn pair_and_window(
        &self,
        key: &str,
        step: PairStep<'_>,
    ) -> Result<PairOutcome, StateError> {
        self.with(step.now, |inner| PairOutcome {
            paired: step
                .pair
                .map(|(side, mark)| inner.pair(key, side, mark, step.pair_window))
                .unwrap_or_default(),
            opened: step.open_window
                && inner.open_window(key, step.event_id, step.now, step.dedup_window, true),
        })
    }

    async fn distinct_in_window(
        &self,
        key: &str,
        value: &str,
        event_id: &str,
        now: Seconds,
        window: Seconds,
        max: usize,
    ) -> Result<DistinctAnswer, StateError> {
        self.with(now, |inner| {
            let set = inner.sets.entry(key.to_owned()).or_default();
            let occurrence = Occurrence::new(now, event_id);
            let step =
                super::record_distinct(set.values.drain(..), value, &occurrence, window, max);
            set.expires = set.expires.max(now.saturating_add(window));
            set.values.extend(step.kept);
            DistinctAnswer {
                values: step.answer,
                gate: set.gate.clone(),
            }
        })
    }

    async fn open_gate(
        &self,
        key: &str,
        event_id: &str,
        now: Seconds,
        length: Seconds,
    ) -> Result<bool, StateError> {
        self.with(now, |inner| {
            let set = inner.sets.entry(key.to_owned()).or_default();
            let opens = super::window_opens(&set.gate, event_id, now, length);
            if opens && super::record_opening(&mut set.gate, event_id, now) {
                set.expires = set.expires.max(now.saturating_add(length));
            }
            opens
        })
    }

    async fn claim_signal(
        &self,
        signal_id: &str,
        now: Seconds,
        expires: Seconds,
    ) -> Result<Claim, StateError> {
        self.with(now, |inner| match inner.signals.get(signal_id) {
            Some((true, until)) if *until > now => Claim::Done,
            Some((false, until)) if *until > now => Claim::Unfinished,
            _ => {
                inner.signals.insert(signal_id.to_owned(), (false, expires));
                Claim::Fresh
            }
        })
    }

    async fn mark_published(&self, signal_id: &str) -> Result<(), StateError> {
        let mut inner = self.lock()?;
        if let Some(entry) = inner.signals.get_mut(signal_id) {
            entry.0 = true;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{DAY, MINUTE};
    use std::future::Future;

    fn block<F: Future>(future: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime")
            .block_on(future)
    }

    #[test]
    fn memory_follows_live_keys_not_input_size() {
        let state = MemoryState::new();
        block(async {
            for i in 0..200_000i64 {
                let now = i * MINUTE;
                let key = format!("k{i}");
                state.sight(&key, &key, now, DAY).await.expect("sight");
                state
                    .open_window(&key, &key, now, 60 * MINUTE)
                    .await
                    .expect("window");
                state
                    .claim_signal(&key, now, now + 2 * DAY)
                    .await
                    .expect("claim");
            }
        });
        // One key a minute, each live about three days (expiry plus the prune grace):
        // a few thousand per kind, not 200,000.
        assert!(state.len() < 3 * 6_000, "{} entries", state.len());
    }

    #[test]
    fn an_expired_entry_counts_as_absent_before_it_is_pruned() {
        let state = MemoryState::new();
        block(async {
            assert_eq!(
                state.sight("k", "a", 0, 100).await.ok(),
                Some(Sighting::New)
            );
            assert_eq!(
                state.sight("k", "b", 99, 100).await.ok(),
                Some(Sighting::Known)
            );
            assert_eq!(
                state.sight("k", "c", 199, 100).await.ok(),
                Some(Sighting::New)
            );
            assert_eq!(
                state.sight("k", "c", 199, 100).await.ok(),
                Some(Sighting::New),
                "a replay decides the same"
            );
        });
    }

    #[test]
    fn a_claimed_signal_is_unfinished_until_marked_published() {
        let state = MemoryState::new();
        block(async {
            assert_eq!(
                state.claim_signal("s", 0, 10).await.ok(),
                Some(Claim::Fresh)
            );
            assert_eq!(
                state.claim_signal("s", 0, 10).await.ok(),
                Some(Claim::Unfinished)
            );
            state.mark_published("s").await.expect("mark");
            assert_eq!(state.claim_signal("s", 0, 10).await.ok(), Some(Claim::Done));
        });
    }
}
