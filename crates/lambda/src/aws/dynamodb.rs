//! The State port on one DynamoDB table.
//!
//! # Table and item layout
//! The table (`template.yaml`, resource `StateTable`) has one key attribute, `pk` (String, hash
//! key), and TTL on `expires_at` (Number, epoch seconds): the item's expiry in *event* time, or
//! now plus two days of wall-clock time if that is later ([`deletable_after`]: an event replayed
//! days late must not be written already expired). DynamoDB deletes expired items only within
//! about two days, so every read and condition below compares the item's own time attributes
//! (and `until`, the event-time expiry, where the two can differ) with the current event's time
//! itself; TTL only reclaims space.
//!
//! | `pk` | attributes | written by |
//! |---|---|---|
//! | `meta#first-event` | `time` | [`State::first_event_time`] (once, conditional put; cached per container) |
//! | `seen#<key>` | `last_seen`, `new_by` (event that made it new), `until` = last_seen + forget, `expires_at` | [`State::sight`] (R2) |
//! | `window#<key>` | `opened`, `opened_by`, `expires_at` = opened + window + 1 day | [`State::open_window`] (R1/R3 dedup) |
//! | `pair#<key>` (one per identity: account, region, name) | R4: one attribute per remembered event, `a:<eventID>` (add) or `d:<eventID>` (delete), holding `{"time","event_id","subject"}` as JSON, the newest 32 of each side kept (older ones and stale ones removed, at most 20 a call); R5: its dedup window, `w_opened`, `w_by`; `expires_at` = newest event + max(sequence window, dedup window) + 1 day | [`State::pair_and_window`] (R4 and R5) |
//! | `set#<key>` | two attributes per value, `f:<value>` and `l:<value>`, its first and last occurrence as `"<time> <eventID>"`; at most the caller's `max` values; its gate, `g_at` and `g_by`; `expires_at` = newest time + window + 1 day | [`State::distinct_in_window`], [`State::count_in_window`] (the burst and the chain) |
//! | `heartbeat#<region>` | `last_seen` (when the newest canary seen was made), `first_checked`, `outage_since` (while a region is blind); wall-clock seconds, no expiry (one item per watched region) | [`HeartbeatStore`] (`sesguard::heartbeat`: never an event's state; no rule key starts with `heartbeat#`) |
//! | `signal#<signal_id>` | `status` (`pending` or `published`), `claimed_at` (wall-clock ms, for the lease), `until` (event time + 2 days), `expires_at` | [`State::claim_signal`], [`State::mark_published`] |
//!
//! Keys longer than [`MAX_KEY_CHARS`] (attacker-chosen identity names can be megabytes) are
//! shortened to a prefix plus a UUID v5 of the whole key.
//!
//! # Calls per event (the budget)
//! Every operation is one conditional write whose failure returns the old item
//! (`ReturnValuesOnConditionCheckFailure = ALL_OLD`), so no read precedes a write:
//! - an event no rule reads: 0 calls (the engine never reaches the state);
//! - every call that is a stage of `ses-abuse-chain` (all the calls below): +1, the write of
//!   the stage to the principal's `set#` item (unconditional, the old item answers);
//! - `GetAccount`/`GetAccountSendingEnabled` by an AKIA key: R1 window + R2 sighting = 2 (+1);
//! - any other discovery call: 1 (R2, +1); a verify/create: R3 window + R4 pair = 2 (+1);
//! - a delete: R3 window + one write to the identity item = 2 (+1). That write is unconditional and
//!   returns the old item: it records the R4 mark, and R5's window with `if_not_exists`, so the
//!   old item answers both rules (a transaction could not: it fails as a whole when one
//!   condition fails). A window that has run out is replaced by one more, conditional, write:
//!   +1, only when R5 fires (a signal costs +2 anyway);
//! - the first event a container sees: +1 (learning start); a principal's first sighting or its
//!   return after the forget period: +1 (the conditional create after the refresh missed);
//!   an identity item holding events older than the window, or an event more than a day older
//!   than the identity's newest: +1 (remove the old marks, put the item's expiry back up);
//! - the rules that keep one dedup window (production access, sending enabled, full access,
//!   SMTP user, feedback tampering): 1 each;
//! - `PutAccountDetails`: the burst's region write, the production-access window when the
//!   request asks for it, and the chain's stage = 2–3; a burst or a chain that holds: +1 (its
//!   once-per-window dedup), only then;
//! - a value that an out-of-order event lowered, a set beyond its bound: +1 (housekeeping);
//! - a signal: +2 (claim before publishing, mark after).

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue, ReturnValuesOnConditionCheckFailure};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use sesguard::model::{DAY, FailureKind, Seconds, Subject};
use sesguard::state::{
    Claim, DistinctAnswer, KEPT_OPENINGS, MAX_VALUE_BYTES, Mark, Occurrence, PairOutcome, PairStep,
    Seen, Side, Sighting, State, StateError, keep_newest_marks, pairs, record_distinct,
    window_opens,
};
use sesguard::state::{HeartbeatStore, RegionView};

/// The key attribute and the TTL attribute; `template.yaml` must declare the same names.
pub const KEY_ATTRIBUTE: &str = "pk";
pub const TTL_ATTRIBUTE: &str = "expires_at";
/// Longest key component kept verbatim (DynamoDB allows 2048 bytes for a partition key).
pub const MAX_KEY_CHARS: usize = 512;

const KEY_NAMESPACE: Uuid = Uuid::from_u128(0x1f0e_3c2b_9a48_4d7e_8f61_5b4a_3c2d_1e0f);
const UNKNOWN: i64 = i64::MIN;

type Item = HashMap<String, AttributeValue>;

/// The DynamoDB State adapter. Build it once per container.
#[derive(Debug)]
pub struct DynamoState {
    client: Client,
    table: String,
    first_event: AtomicI64,
    lease: Duration,
}

/// How long a signal claim protects its claimer (wall-clock time: it is about process
/// liveness, not event time). Longer than the function's timeout (template: 30 s), so a live
/// claimer is never overtaken; shorter than Lambda's first retry of a failed asynchronous
/// invocation (about a minute), so after a crash that retry already takes the claim over.
pub const CLAIM_LEASE: Duration = Duration::from_secs(45);

impl DynamoState {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        DynamoState {
            client,
            table: table.into(),
            first_event: AtomicI64::new(UNKNOWN),
            lease: CLAIM_LEASE,
        }
    }

    /// The same adapter with another claim lease (tests use zero to play a crashed claimer).
    pub fn with_lease(mut self, lease: Duration) -> Self {
        self.lease = lease;
        self
    }

    pub fn table(&self) -> &str {
        &self.table
    }
}

/// The attribute holding an item's expiry in *event* time where a decision reads it (sightings,
/// claims). `expires_at` (the TTL attribute) may be later: see [`deletable_after`].
pub const EVENT_EXPIRY_ATTRIBUTE: &str = "until";

/// How long any item written now survives at least, in wall-clock time.
pub const WALL_CLOCK_MARGIN: Duration = Duration::from_secs(2 * 86_400);

/// What an item expiring at `event_expiry` (event time) gets as its TTL: the later of that and
/// now plus [`WALL_CLOCK_MARGIN`]. An event replayed or redriven days late would otherwise be
/// written already expired, and DynamoDB's sweeper could delete a pairing or a claim before it
/// is used. Decisions never read the TTL where the two can differ (they read
/// [`EVENT_EXPIRY_ATTRIBUTE`], or times of their own).
pub fn deletable_after(event_expiry: Seconds) -> Seconds {
    let wall = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    event_expiry.max(wall.saturating_add(WALL_CLOCK_MARGIN.as_secs() as i64))
}

/// An item's expiry in event time: [`EVENT_EXPIRY_ATTRIBUTE`], or `expires_at` for an item
/// written before the two were kept apart.
fn event_expiry(item: &Item) -> Option<Seconds> {
    number(item, EVENT_EXPIRY_ATTRIBUTE).or_else(|| number(item, TTL_ATTRIBUTE))
}

/// Conditions on an item's event-time expiry (an item from before `until` falls back to
/// `expires_at`): live at `:now`, and expired at `:now`.
const LIVE_AT_NOW: &str = "(#until > :now OR (attribute_not_exists(#until) AND #ttl > :now))";
const EXPIRED_AT_NOW: &str = "(#until <= :now OR (attribute_not_exists(#until) AND #ttl <= :now))";

/// The `pk` of an item of `kind` for the engine's `key`, shortened if very long.
pub fn item_key(kind: &str, key: &str) -> String {
    if key.chars().count() <= MAX_KEY_CHARS {
        return format!("{kind}#{key}");
    }
    let prefix: String = key.chars().take(200).collect();
    let digest = Uuid::new_v5(&KEY_NAMESPACE, key.as_bytes());
    format!("{kind}#{prefix}…#{digest}")
}

/// The attribute name of a remembered R4 event.
fn mark_attribute(side: Side, event_id: &str) -> String {
    let tag = match side {
        Side::Add => "a:",
        Side::Delete => "d:",
    };
    if event_id.len() <= 200 {
        format!("{tag}{event_id}")
    } else {
        format!("{tag}{}", Uuid::new_v5(&KEY_NAMESPACE, event_id.as_bytes()))
    }
}

/// How many bytes of each string field a stored subject keeps: R4 items hold many subjects and
/// must stay far below DynamoDB's 400 KB item limit.
const COMPACT_FIELD_BYTES: usize = 512;

/// The subject with every string field cut to [`COMPACT_FIELD_BYTES`] (with the visible marker).
fn compact(subject: &Subject) -> Subject {
    let cut = |text: &str| sesguard::text::capped_to(text, COMPACT_FIELD_BYTES);
    let opt = |text: &Option<String>| text.as_deref().map(cut);
    Subject {
        event_id: cut(&subject.event_id),
        event_name: cut(&subject.event_name),
        event_source: cut(&subject.event_source),
        event_time: cut(&subject.event_time),
        account_id: cut(&subject.account_id),
        region: cut(&subject.region),
        principal: opt(&subject.principal),
        user_arn: opt(&subject.user_arn),
        user_type: opt(&subject.user_type),
        access_key_id: opt(&subject.access_key_id),
        source_ip: opt(&subject.source_ip),
        user_agent: opt(&subject.user_agent),
        identity: opt(&subject.identity),
        error_code: opt(&subject.error_code),
        tor: subject.tor,
        text_replaced: subject.text_replaced,
    }
}

/// The attribute name prefixes of a value's first and last occurrence in a distinct set
/// (`set#<key>` items).
const SET_FIRST: &str = "f:";
const SET_LAST: &str = "l:";

/// The attributes of the openings a window keeps ([`KEPT_OPENINGS`]), newest first: when, and
/// by which event. A `window#` item's, and a distinct set's gate ([`State::open_gate`]).
type Openings = [(&'static str, &'static str); KEPT_OPENINGS];
const WINDOW_OPENINGS: Openings = [
    ("opened", "opened_by"),
    ("opened_1", "opened_by_1"),
    ("opened_2", "opened_by_2"),
];
const GATE_OPENINGS: Openings = [("g_at", "g_by"), ("g_at_1", "g_by_1"), ("g_at_2", "g_by_2")];

/// The openings an item holds, newest first.
fn openings(item: &Item, attributes: &Openings) -> Vec<Occurrence> {
    attributes
        .iter()
        .map_while(|(at, by)| {
            Some(Occurrence {
                time: number(item, at)?,
                event_id: string(item, by)?.to_owned(),
            })
        })
        .collect()
}

/// An occurrence as a distinct set stores it: `"<time> <eventID>"`.
fn occurrence_text(occurrence: &Occurrence) -> String {
    format!("{} {}", occurrence.time, occurrence.event_id)
}

fn parse_occurrence(value: &AttributeValue) -> Option<Occurrence> {
    let (time, event_id) = value.as_s().ok()?.split_once(' ')?;
    Some(Occurrence {
        time: time.parse().ok()?,
        event_id: event_id.to_owned(),
    })
}

/// The values of a distinct set item (a value missing one of its occurrences uses the other).
fn set_values(item: &Item) -> Vec<Seen> {
    let mut values: HashMap<&str, (Option<Occurrence>, Option<Occurrence>)> = HashMap::new();
    for (name, value) in item {
        if let Some(v) = name.strip_prefix(SET_FIRST) {
            values.entry(v).or_default().0 = parse_occurrence(value);
        } else if let Some(v) = name.strip_prefix(SET_LAST) {
            values.entry(v).or_default().1 = parse_occurrence(value);
        }
    }
    values
        .into_iter()
        .filter_map(|(value, (first, last))| {
            let (first, last) = match (first, last) {
                (Some(f), Some(l)) => (f, l),
                (Some(one), None) | (None, Some(one)) => (one.clone(), one),
                (None, None) => return None,
            };
            Some(Seen {
                value: value.to_owned(),
                first,
                last,
            })
        })
        .collect()
}
/// Most attributes one housekeeping call removes (a distinct set's values, a pairing's marks):
/// the expression stays far below DynamoDB's 4 KB whatever the input.
const MAX_REMOVALS: usize = 20;

/// The attributes of R5's dedup window on an identity item.
const WINDOW_OPENED: &str = "w_opened";
const WINDOW_OPENED_BY: &str = "w_by";

/// What an identity item's old dedup window means for an event.
enum Window {
    /// None was recorded (this event's write recorded it), the event opened it (a replay), or
    /// it opened a whole window after the event (out of order: the event fires, the later
    /// window is kept).
    Opened,
    /// Another event opened it less than a window away.
    Held,
    /// It opened a whole window or more before the event: the event opens a new one.
    RunOut,
}

fn window_in(old: &Item, event_id: &str, now: Seconds, window: Seconds) -> Window {
    let Some(opened) = number(old, WINDOW_OPENED) else {
        return Window::Opened;
    };
    if string(old, WINDOW_OPENED_BY) == Some(event_id) {
        Window::Opened
    } else if now.abs_diff(opened) < window.unsigned_abs() {
        Window::Held
    } else if opened > now {
        Window::Opened
    } else {
        Window::RunOut
    }
}

/// The marks of `old` that `mark` pairs with (sorted), and the attributes to remove: marks
/// beyond [`sesguard::state::MAX_MARKS_PER_SIDE`] (the oldest) and marks too old to pair with anything still to
/// come, at most [`MAX_REMOVALS`] a call (the rest go with the next events).
fn pairs_in(old: &Item, side: Side, mark: &Mark, window: Seconds) -> (Vec<Mark>, Vec<String>) {
    let mut marks: Vec<(Side, Mark, &str)> = Vec::new();
    for (name, value) in old {
        let stored_side = match name.get(..2) {
            Some("a:") => Side::Add,
            Some("d:") => Side::Delete,
            _ => continue,
        };
        let Some(stored) = value
            .as_s()
            .ok()
            .and_then(|j| serde_json::from_str::<StoredMark>(j).ok())
        else {
            continue;
        };
        let stored = Mark {
            event_id: stored.event_id,
            time: stored.time,
            subject: stored.subject,
        };
        marks.push((stored_side, stored, name.as_str()));
    }
    // This event's own mark, just written (unless this is a replay and it is there already).
    let own = mark_attribute(side, &mark.event_id);
    if !marks
        .iter()
        .any(|(s, m, _)| *s == side && m.event_id == mark.event_id)
    {
        marks.push((side, mark.clone(), own.as_str()));
    }
    let (kept, dropped) = keep_newest_marks(marks.iter().map(|(s, m, _)| (*s, m)));
    let name_of = |m: &Mark| {
        marks
            .iter()
            .find(|(_, other, _)| std::ptr::eq(other, m))
            .map(|(_, _, name)| (*name).to_owned())
    };
    let mut remove: Vec<String> = dropped.iter().filter_map(|(_, m)| name_of(m)).collect();
    let mut found = Vec::new();
    for (other_side, other) in kept {
        if other.time.saturating_add(window).saturating_add(DAY) < mark.time {
            remove.extend(name_of(other));
        } else if other_side != side && pairs(side, mark.time, other.time, window) {
            found.push(other.clone());
        }
    }
    remove.truncate(MAX_REMOVALS);
    found.sort_by(|a, b| (a.time, &a.event_id).cmp(&(b.time, &b.event_id)));
    (found, remove)
}

#[derive(Serialize, Deserialize)]
struct StoredMark {
    time: Seconds,
    event_id: String,
    subject: Subject,
}

/// `REMOVE #<tag>0, #<tag>1, …` for `attributes` (no clause when there are none), and the
/// placeholders' names. Callers pass at most [`MAX_REMOVALS`] attributes.
fn remove_clause<'a>(tag: &str, attributes: &'a [String]) -> (Vec<(String, &'a str)>, Vec<String>) {
    let names: Vec<(String, &str)> = attributes
        .iter()
        .enumerate()
        .map(|(i, name)| (format!("{tag}{i}"), name.as_str()))
        .collect();
    let mut clauses = Vec::new();
    if !names.is_empty() {
        let list: Vec<&str> = names.iter().map(|(p, _)| p.as_str()).collect();
        clauses.push(format!("REMOVE {}", list.join(", ")));
    }
    (names, clauses)
}

fn n(value: Seconds) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

fn s(value: &str) -> AttributeValue {
    AttributeValue::S(value.to_owned())
}

fn number(item: &Item, name: &str) -> Option<Seconds> {
    item.get(name)?.as_n().ok()?.parse().ok()
}

fn string<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    item.get(name)?.as_s().ok().map(String::as_str)
}

fn state_error<E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static>(
    operation: &str,
    err: SdkError<E, HttpResponse>,
) -> StateError {
    StateError::new(
        super::failure_kind(&err),
        format!("DynamoDB {operation}: {}", super::describe(&err)),
    )
    .with_source(err)
}

/// The outcome of a conditional write: `Ok(old item)` when it was written, `Err(old item)` when
/// the condition failed (the old item as DynamoDB returned it; `None` when there was none).
type Conditional = Result<Option<Item>, Option<Item>>;

macro_rules! conditional {
    ($operation:literal, $call:expr, $failure:path) => {
        match $call.send().await {
            Ok(output) => Ok(Ok(output.attributes)),
            Err(err) => match err.as_service_error() {
                Some($failure(failed)) => Ok(Err(failed.item.clone())),
                _ => Err(state_error($operation, err)),
            },
        }
    };
}

impl DynamoState {
    async fn update(
        &self,
        pk: &str,
        update: &str,
        condition: Option<&str>,
        names: &[(&str, &str)],
        values: Vec<(&str, AttributeValue)>,
    ) -> Result<Conditional, StateError> {
        let mut call = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(KEY_ATTRIBUTE, s(pk))
            .update_expression(update)
            .set_condition_expression(condition.map(str::to_owned))
            .return_values(ReturnValue::AllOld)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        for (placeholder, name) in names {
            call = call.expression_attribute_names(*placeholder, *name);
        }
        for (placeholder, value) in values {
            call = call.expression_attribute_values(placeholder, value);
        }
        conditional!(
            "UpdateItem",
            call,
            aws_sdk_dynamodb::operation::update_item::UpdateItemError::ConditionalCheckFailedException
        )
    }

    async fn put_new(
        &self,
        pk: &str,
        attributes: Vec<(&str, AttributeValue)>,
        now: Seconds,
    ) -> Result<Conditional, StateError> {
        let mut call = self
            .client
            .put_item()
            .table_name(&self.table)
            .item(KEY_ATTRIBUTE, s(pk))
            .condition_expression("attribute_not_exists(#pk) OR #ttl <= :now")
            .expression_attribute_names("#pk", KEY_ATTRIBUTE)
            .expression_attribute_names("#ttl", TTL_ATTRIBUTE)
            .expression_attribute_values(":now", n(now))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        for (name, value) in attributes {
            call = call.item(name, value);
        }
        conditional!(
            "PutItem",
            call,
            aws_sdk_dynamodb::operation::put_item::PutItemError::ConditionalCheckFailedException
        )
    }
    /// Opens a window (or a gate) kept as `attributes` on item `pk`: one conditional write that
    /// shifts the kept openings down and records this one, when the latest ran out before the
    /// event (events in order). Otherwise the old item answers, with [`window_opens`]: a replay,
    /// or an out-of-order event no kept opening holds, opens without being recorded.
    async fn open(
        &self,
        pk: &str,
        attributes: &Openings,
        event_id: &str,
        now: Seconds,
        window: Seconds,
        expires: Option<Seconds>,
    ) -> Result<bool, StateError> {
        let opener = Occurrence::new(now, event_id);
        let [(at0, by0), (at1, by1), (at2, by2)] = *attributes;
        // Earlier generations are copied with a stand-in where there is none (an item's first
        // opening); `openings` stops at the first missing or stand-in generation.
        let mut update = String::from(
            "SET #at2 = if_not_exists(#at1, :none), #by2 = if_not_exists(#by1, :none), \
             #at1 = if_not_exists(#at0, :none), #by1 = if_not_exists(#by0, :none), \
             #at0 = :now, #by0 = :eid",
        );
        let mut names = vec![
            ("#at0", at0),
            ("#by0", by0),
            ("#at1", at1),
            ("#by1", by1),
            ("#at2", at2),
            ("#by2", by2),
        ];
        let mut values = vec![
            (":now", n(now)),
            (":eid", s(&opener.event_id)),
            (":lo", n(now.saturating_sub(window))),
            (":none", s("")),
        ];
        if let Some(expires) = expires {
            update.push_str(", #ttl = :exp");
            names.push(("#ttl", TTL_ATTRIBUTE));
            values.push((":exp", n(expires)));
        }
        let outcome = self
            .update(
                pk,
                &update,
                Some("attribute_not_exists(#at0) OR #at0 <= :lo"),
                &names,
                values,
            )
            .await?;
        Ok(match outcome {
            Ok(_) => true,
            Err(old) => window_opens(
                &openings(&old.unwrap_or_default(), attributes),
                event_id,
                now,
                window,
            ),
        })
    }

    /// Replaces an identity item's dedup window that ran out with one opened by `step`'s event,
    /// unless another event replaced it meanwhile; answers whether the event's window opened.
    async fn reopen_window(&self, pk: &str, step: PairStep<'_>) -> Result<bool, StateError> {
        let outcome = self
            .update(
                pk,
                "SET #wo = :now, #wb = :eid",
                Some("#wo <= :lo"),
                &[("#wo", WINDOW_OPENED), ("#wb", WINDOW_OPENED_BY)],
                vec![
                    (":now", n(step.now)),
                    (":eid", s(step.event_id)),
                    (":lo", n(step.now.saturating_sub(step.dedup_window))),
                ],
            )
            .await?;
        Ok(match outcome {
            Ok(_) => true,
            Err(Some(old)) => !matches!(
                window_in(&old, step.event_id, step.now, step.dedup_window),
                Window::Held
            ),
            // The item is gone (it cannot have expired: this event just raised its expiry).
            Err(None) => true,
        })
    }

    /// Replaces a full pairing item with one holding only `step`'s event: its mark (attribute
    /// name and JSON) and its window.
    async fn restart_pair_item(
        &self,
        pk: &str,
        step: &PairStep<'_>,
        mark: Option<(&str, &str)>,
        expires: Seconds,
    ) -> Result<(), StateError> {
        let mut call = self
            .client
            .put_item()
            .table_name(&self.table)
            .item(KEY_ATTRIBUTE, s(pk))
            .item(TTL_ATTRIBUTE, n(expires));
        if let Some((name, json)) = mark {
            call = call.item(name, s(json));
        }
        if step.open_window {
            call = call
                .item(WINDOW_OPENED, n(step.now))
                .item(WINDOW_OPENED_BY, s(step.event_id));
        }
        call.send()
            .await
            .map_err(|err| state_error("PutItem", err))?;
        Ok(())
    }

    /// A distinct set's housekeeping: removes `dropped` values (at most [`MAX_REMOVALS`] of
    /// them), puts back the merged occurrences of the value just written where the unconditional
    /// write lost them (an event older than the value's first, or than its last), and an expiry
    /// that was `lowered`.
    async fn tidy_set(
        &self,
        pk: &str,
        dropped: &[String],
        restore: &[(&str, String)],
        lowered: Option<Seconds>,
    ) -> Result<(), StateError> {
        let removed: Vec<String> = dropped
            .iter()
            .take(MAX_REMOVALS / 2)
            .flat_map(|v| [format!("{SET_FIRST}{v}"), format!("{SET_LAST}{v}")])
            .collect();
        let (mut names, mut clauses) = remove_clause("#d", &removed);
        let mut sets = Vec::new();
        let mut values = Vec::new();
        let placeholders: Vec<(String, String)> = (0..restore.len())
            .map(|i| (format!("#r{i}"), format!(":r{i}")))
            .collect();
        for ((name, value), (name_tag, value_tag)) in restore.iter().zip(&placeholders) {
            names.push((name_tag.clone(), name));
            sets.push(format!("{name_tag} = {value_tag}"));
            values.push((value_tag.as_str(), s(value)));
        }
        if let Some(ttl) = lowered {
            names.push(("#ttl".to_owned(), TTL_ATTRIBUTE));
            sets.push("#ttl = :ttl".to_owned());
            values.push((":ttl", n(ttl)));
        }
        if !sets.is_empty() {
            clauses.push(format!("SET {}", sets.join(", ")));
        }
        let name_refs: Vec<(&str, &str)> =
            names.iter().map(|(p, name)| (p.as_str(), *name)).collect();
        // An unconditional write: its outcome is the old item, which nothing needs.
        let _ = self
            .update(pk, &clauses.join(" "), None, &name_refs, values)
            .await?;
        Ok(())
    }

    /// Removes `stale` marks (so an identity verified and deleted all day does not outgrow the
    /// item size limit) and puts back an expiry a late event `lowered`.
    async fn tidy(
        &self,
        pk: &str,
        stale: &[String],
        lowered: Option<Seconds>,
    ) -> Result<(), StateError> {
        let (mut names, mut clauses) = remove_clause("#s", stale);
        let mut values = Vec::new();
        let mut condition = None;
        if let Some(ttl) = lowered {
            names.push(("#ttl".to_owned(), TTL_ATTRIBUTE));
            clauses.push("SET #ttl = :ttl".to_owned());
            values.push((":ttl", n(ttl)));
            // Unless a concurrent event raised it further meanwhile (then its own call removes
            // what is stale).
            condition = Some("#ttl < :ttl");
        }
        let name_refs: Vec<(&str, &str)> =
            names.iter().map(|(p, name)| (p.as_str(), *name)).collect();
        let _ = self
            .update(pk, &clauses.join(" "), condition, &name_refs, values)
            .await?;
        Ok(())
    }
}

impl State for DynamoState {
    async fn first_event_time(&self, now: Seconds) -> Result<Seconds, StateError> {
        let cached = self.first_event.load(Ordering::Relaxed);
        if cached != UNKNOWN {
            return Ok(cached);
        }
        // Never expires: the far-future TTL keeps the conditional put's "or expired" arm inert.
        let outcome = self
            .put_new(
                "meta#first-event",
                vec![("time", n(now)), (TTL_ATTRIBUTE, n(i64::MAX / 2))],
                now,
            )
            .await?;
        let recorded = match outcome {
            Ok(_) => now,
            Err(old) => old
                .as_ref()
                .and_then(|item| number(item, "time"))
                .unwrap_or(now),
        };
        self.first_event.store(recorded, Ordering::Relaxed);
        Ok(recorded)
    }

    async fn sight(
        &self,
        key: &str,
        event_id: &str,
        now: Seconds,
        forget: Seconds,
    ) -> Result<Sighting, StateError> {
        let pk = item_key("seen", key);
        let expires = now.saturating_add(forget);
        let replay = |item: &Item| string(item, "new_by") == Some(event_id);
        let names = [
            ("#pk", KEY_ATTRIBUTE),
            ("#ttl", TTL_ATTRIBUTE),
            ("#until", EVENT_EXPIRY_ATTRIBUTE),
        ];
        // The sighting's time, its expiry in event time, and the TTL.
        let times = || {
            vec![
                (":now", n(now)),
                (":until", n(expires)),
                (":exp", n(deletable_after(expires))),
            ]
        };
        // Steady state: refresh a live principal seen before `now` (one call).
        let refreshed = self
            .update(
                &pk,
                "SET last_seen = :now, #until = :until, #ttl = :exp",
                Some(&format!(
                    "attribute_exists(#pk) AND {LIVE_AT_NOW} AND last_seen < :now"
                )),
                &names,
                times(),
            )
            .await?;
        match refreshed {
            Ok(Some(old)) => {
                return Ok(if replay(&old) {
                    Sighting::New
                } else {
                    Sighting::Known
                });
            }
            Err(Some(old)) if event_expiry(&old).is_some_and(|until| until > now) => {
                // Live and already seen at or after `now`.
                return Ok(if replay(&old) {
                    Sighting::New
                } else {
                    Sighting::Known
                });
            }
            // Absent or expired (including "expired" items TTL has not deleted yet).
            _ => {}
        }
        let created = self
            .update(
                &pk,
                "SET last_seen = :now, #until = :until, #ttl = :exp, new_by = :eid",
                Some(&format!("attribute_not_exists(#pk) OR {EXPIRED_AT_NOW}")),
                &names,
                [times(), vec![(":eid", s(event_id))]].concat(),
            )
            .await?;
        Ok(match created {
            Ok(_) => Sighting::New,
            // Another invocation created it first: only one of them sees it new.
            Err(Some(old)) if replay(&old) => Sighting::New,
            Err(_) => Sighting::Known,
        })
    }

    async fn open_window(
        &self,
        key: &str,
        event_id: &str,
        now: Seconds,
        window: Seconds,
    ) -> Result<bool, StateError> {
        let pk = item_key("window", key);
        let expires = deletable_after(now.saturating_add(window).saturating_add(DAY));
        self.open(&pk, &WINDOW_OPENINGS, event_id, now, window, Some(expires))
            .await
    }

    async fn pair_and_window(
        &self,
        key: &str,
        step: PairStep<'_>,
    ) -> Result<PairOutcome, StateError> {
        let pk = item_key("pair", key);
        // Every write to the item sets its expiry from the same span, so it only ever moves
        // forward with event time (a late event is put back below).
        let span = step.keep.max(step.pair_window).max(step.dedup_window);
        let expires = deletable_after(step.now.saturating_add(span).saturating_add(DAY));
        let mut clauses = vec!["#ttl = :exp"];
        let mut names = vec![("#ttl", TTL_ATTRIBUTE)];
        let mut values = vec![(":exp", n(expires))];
        let mut mark_attribute_name = String::new();
        let mut mark_json = String::new();
        if let Some((side, mark)) = step.pair {
            // Only a delete's subject is ever shown (signals describe the delete), and it is
            // stored with short fields: the item holds every mark of the window under
            // DynamoDB's 400 KB.
            let stored = StoredMark {
                time: mark.time,
                event_id: mark.event_id.clone(),
                subject: match side {
                    Side::Add => Subject::default(),
                    Side::Delete => compact(&mark.subject),
                },
            };
            mark_json = serde_json::to_string(&stored).map_err(|err| {
                StateError::new(
                    FailureKind::Internal,
                    format!("cannot encode a mark: {err}"),
                )
                .with_source(err)
            })?;
            mark_attribute_name = mark_attribute(side, &mark.event_id);
            clauses.push("#m = :mark");
            names.push(("#m", &mark_attribute_name));
            values.push((":mark", s(&mark_json)));
        }
        if step.open_window {
            // Opened only if no window is recorded; the old item tells whether one is, and a
            // recorded one that has run out is replaced below (only then, when R5 fires).
            clauses.push("#wo = if_not_exists(#wo, :now), #wb = if_not_exists(#wb, :eid)");
            names.extend([("#wo", WINDOW_OPENED), ("#wb", WINDOW_OPENED_BY)]);
            values.extend([(":now", n(step.now)), (":eid", s(step.event_id))]);
        }
        let update = format!("SET {}", clauses.join(", "));
        let outcome = match self.update(&pk, &update, None, &names, values).await {
            Err(err) if err.kind == FailureKind::TooLarge => {
                // An identity added and deleted hundreds of times within a day filled the
                // item: start it again with this event rather than fail every later event of
                // it (which would also silence R3). Pairs with the dropped marks are lost, and
                // the dropped window opens again.
                tracing::warn!(error = %err, "identity item full; starting it again");
                let mark = step
                    .pair
                    .is_some()
                    .then_some((mark_attribute_name.as_str(), mark_json.as_str()));
                self.restart_pair_item(&pk, &step, mark, expires).await?;
                return Ok(PairOutcome {
                    paired: Vec::new(),
                    opened: step.open_window,
                });
            }
            other => other?,
        };
        let old = match outcome {
            Ok(Some(old)) | Err(Some(old)) => old,
            Ok(None) | Err(None) => {
                return Ok(PairOutcome {
                    paired: Vec::new(),
                    opened: step.open_window,
                });
            }
        };
        let (paired, stale) = match step.pair {
            Some((side, mark)) => pairs_in(&old, side, mark, step.pair_window),
            None => (Vec::new(), Vec::new()),
        };
        let opened = if step.open_window {
            match window_in(&old, step.event_id, step.now, step.dedup_window) {
                Window::Opened => true,
                Window::Held => false,
                Window::RunOut => self.reopen_window(&pk, step).await?,
            }
        } else {
            false
        };
        // A write from an event more than a day older than the newest one lowered the item's
        // expiry. Put it back, or DynamoDB would delete marks and a window still needed.
        let lowered = number(&old, TTL_ATTRIBUTE).filter(|ttl| *ttl > expires);
        if !stale.is_empty() || lowered.is_some() {
            // Housekeeping never fails the evaluation: what it leaves is bounded and the next
            // event's step redoes it.
            if let Err(err) = self.tidy(&pk, &stale, lowered).await {
                tracing::warn!(error = %err, "identity item housekeeping failed; the next event redoes it");
            }
        }
        Ok(PairOutcome { paired, opened })
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
        let pk = item_key("set", key);
        let value = sesguard::text::capped_to(value, MAX_VALUE_BYTES);
        let occurrence = Occurrence::new(now, event_id);
        let (first, last) = (format!("{SET_FIRST}{value}"), format!("{SET_LAST}{value}"));
        let expires = deletable_after(now.saturating_add(window).saturating_add(DAY));
        // One unconditional write records the occurrence (the first one kept if there is one,
        // right for events in order); the old item answers.
        let outcome = self
            .update(
                &pk,
                "SET #f = if_not_exists(#f, :o), #l = :o, #ttl = :exp",
                None,
                &[("#f", &first), ("#l", &last), ("#ttl", TTL_ATTRIBUTE)],
                vec![
                    (":o", s(&occurrence_text(&occurrence))),
                    (":exp", n(expires)),
                ],
            )
            .await?;
        let old = match outcome {
            Ok(Some(old)) | Err(Some(old)) => old,
            Ok(None) | Err(None) => Item::new(),
        };
        let recorded = set_values(&old);
        let before = recorded.iter().find(|seen| seen.value == value).cloned();
        let step = record_distinct(recorded, &value, &occurrence, window, max);
        // Housekeeping, one more call only when needed: values beyond `max` removed (a few a
        // call, so the expression stays small), an occurrence this out-of-order write lost put
        // back, and an expiry it lowered raised again. It never fails the evaluation: what it
        // leaves is bounded and redone by the next write.
        let mut restore = Vec::new();
        if let Some(before) = before {
            if occurrence < before.first {
                restore.push((first.as_str(), occurrence_text(&occurrence)));
            }
            if occurrence < before.last {
                restore.push((last.as_str(), occurrence_text(&before.last)));
            }
        }
        let lowered = number(&old, TTL_ATTRIBUTE).filter(|ttl| *ttl > expires);
        if !step.dropped.is_empty() || !restore.is_empty() || lowered.is_some() {
            let tidied = self.tidy_set(&pk, &step.dropped, &restore, lowered).await;
            if let Err(err) = tidied {
                tracing::warn!(error = %err, "distinct set housekeeping failed; the next write redoes it");
            }
        }
        Ok(DistinctAnswer {
            values: step.answer,
            gate: openings(&old, &GATE_OPENINGS),
        })
    }

    async fn open_gate(
        &self,
        key: &str,
        event_id: &str,
        now: Seconds,
        length: Seconds,
    ) -> Result<bool, StateError> {
        // The set's own writes keep the item as long as the gate (the rule asks for a window
        // at least the gate's length), so this write leaves the expiry alone.
        self.open(
            &item_key("set", key),
            &GATE_OPENINGS,
            event_id,
            now,
            length,
            None,
        )
        .await
    }

    async fn claim_signal(
        &self,
        signal_id: &str,
        now: Seconds,
        expires: Seconds,
    ) -> Result<Claim, StateError> {
        let pk = item_key("signal", signal_id);
        let wall_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        let stale_before = wall_ms.saturating_sub(self.lease.as_millis() as i64);
        let call = self
            .client
            .put_item()
            .table_name(&self.table)
            .item(KEY_ATTRIBUTE, s(&pk))
            .item("status", s("pending"))
            .item("claimed_at", n(wall_ms))
            .item(EVENT_EXPIRY_ATTRIBUTE, n(expires))
            .item(TTL_ATTRIBUTE, n(deletable_after(expires)))
            // New, expired, or pending under a lease that ran out (its claimer died).
            .condition_expression(format!(
                "attribute_not_exists(#pk) OR {EXPIRED_AT_NOW} OR (#status = :pending AND claimed_at <= :stale)"
            ))
            .expression_attribute_names("#pk", KEY_ATTRIBUTE)
            .expression_attribute_names("#ttl", TTL_ATTRIBUTE)
            .expression_attribute_names("#until", EVENT_EXPIRY_ATTRIBUTE)
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":now", n(now))
            .expression_attribute_values(":pending", s("pending"))
            .expression_attribute_values(":stale", n(stale_before))
            .return_values(ReturnValue::AllOld)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        let outcome: Conditional = conditional!(
            "PutItem",
            call,
            aws_sdk_dynamodb::operation::put_item::PutItemError::ConditionalCheckFailedException
        )?;
        Ok(match outcome {
            Ok(Some(old))
                if string(&old, "status") == Some("pending")
                    && event_expiry(&old).is_some_and(|until| until > now) =>
            {
                Claim::Unfinished
            }
            Ok(_) => Claim::Fresh,
            Err(Some(old)) if string(&old, "status") == Some("published") => Claim::Done,
            Err(_) => Claim::InFlight,
        })
    }

    async fn mark_published(&self, signal_id: &str) -> Result<(), StateError> {
        let pk = item_key("signal", signal_id);
        // Conditional: a claim already swept by TTL must not come back as an item that never
        // expires.
        let _ = self
            .update(
                &pk,
                "SET #status = :published",
                Some("attribute_exists(#pk)"),
                &[("#status", "status"), ("#pk", KEY_ATTRIBUTE)],
                vec![(":published", s("published"))],
            )
            .await?;
        Ok(())
    }
}

/// The heartbeat's items: one per region, wall-clock seconds. Each operation is one UpdateItem
/// (the actions the role already has), conditional where two runs may race.
impl HeartbeatStore for DynamoState {
    async fn canary_seen(&self, region: &str, at: Seconds) -> Result<(), StateError> {
        // An older canary arriving late leaves the newer time (the condition fails: fine).
        self.update(
            &item_key("heartbeat", region),
            "SET last_seen = :at",
            Some("attribute_not_exists(last_seen) OR last_seen < :at"),
            &[],
            vec![(":at", n(at))],
        )
        .await
        .map(|_| ())
    }

    async fn check_region(&self, region: &str, now: Seconds) -> Result<RegionView, StateError> {
        let old = self
            .update(
                &item_key("heartbeat", region),
                "SET first_checked = if_not_exists(first_checked, :now)",
                None,
                &[],
                vec![(":now", n(now))],
            )
            .await?
            .unwrap_or_else(|old| old);
        let number_of = |name: &str| old.as_ref().and_then(|item| number(item, name));
        Ok(RegionView {
            last_seen: number_of("last_seen"),
            first_checked: number_of("first_checked").unwrap_or(now),
            outage_since: number_of("outage_since"),
        })
    }

    async fn open_outage(&self, region: &str, since: Seconds) -> Result<Seconds, StateError> {
        let outcome = self
            .update(
                &item_key("heartbeat", region),
                "SET outage_since = :since",
                Some("attribute_not_exists(outage_since)"),
                &[],
                vec![(":since", n(since))],
            )
            .await?;
        Ok(match outcome {
            Ok(_) => since,
            // Another run opened it first: its start is the outage's.
            Err(old) => old
                .as_ref()
                .and_then(|item| number(item, "outage_since"))
                .unwrap_or(since),
        })
    }

    async fn close_outage(&self, region: &str, since: Seconds) -> Result<(), StateError> {
        self.update(
            &item_key("heartbeat", region),
            "REMOVE outage_since",
            Some("outage_since = :since"),
            &[],
            vec![(":since", n(since))],
        )
        .await
        .map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_keys_are_shortened_deterministically_and_distinctly() {
        assert_eq!(item_key("seen", "r2|1|arn"), "seen#r2|1|arn");
        let a = item_key("pair", &format!("r4|1|r|{}", "a".repeat(5_000_000)));
        let b = item_key("pair", &format!("r4|1|r|{}b", "a".repeat(5_000_000)));
        assert!(a.len() < 1024 && b.len() < 1024);
        assert_ne!(a, b);
        assert_eq!(
            a,
            item_key("pair", &format!("r4|1|r|{}", "a".repeat(5_000_000)))
        );
    }
}
