//! Event-time order for `sesguard scan`: records are held until the newest record seen is more
//! than a window of event time ahead of them, then released oldest first. So the event a
//! first-sighting or dedup signal names is the one that happened first, whatever the file
//! names. Memory is bounded by the records of one window (only those the prefilter let
//! through are held), and by [`MOST_HELD_BYTES`] whatever the window; a record more than the
//! window behind the newest is `late`: it is handed back at once, to be evaluated as it came.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;
use std::sync::LazyLock;

use memchr::memmem::Finder;

use crate::model::Seconds;
use crate::time::parse_event_time;

/// Where a record sorts: its event time, then its event id (records of the same second sort the
/// same way whatever order they came in), then arrival.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Stamp {
    pub time: Seconds,
    pub event_id: String,
}

impl Stamp {
    /// The stamp of a record's JSON text; `None` when it has no parseable `eventTime` (such a
    /// record is evaluated when it arrives). Found without parsing the record (which would cost
    /// a tenth of the whole scan): the first `"eventTime"` and `"eventID"` members' strings in
    /// the text. CloudTrail writes both at the top level, the time before any request
    /// parameter; text that misleads this only places its record out of order, since the rules
    /// read the record parsed, and the order still depends on the text alone.
    pub fn of(json: &str) -> Option<Stamp> {
        static ID: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"\"eventID\""));
        let time = event_time(json)?;
        let event_id = string_member(json.as_bytes(), &ID)
            .and_then(|id| std::str::from_utf8(id).ok())
            .unwrap_or_default();
        Some(Stamp {
            time,
            event_id: event_id.to_owned(),
        })
    }
}

/// A record's `eventTime` from its JSON text, read as [`Stamp::of`] reads it.
pub fn event_time(json: &str) -> Option<Seconds> {
    static TIME: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"\"eventTime\""));
    let time = string_member(json.as_bytes(), &TIME)?;
    parse_event_time(std::str::from_utf8(time).ok()?).ok()
}

/// The text of the string after the first `key` (a quoted member name) in `text`, up to the
/// next quote (a time or an id holds no escape); `None` when the member is not followed by a
/// string, or the text ends first.
pub fn string_member<'t>(text: &'t [u8], key: &Finder<'_>) -> Option<&'t [u8]> {
    let at = key.find(text)? + key.needle().len();
    let rest = trim_start(&text[at..]).strip_prefix(b":")?;
    let rest = trim_start(rest).strip_prefix(b"\"")?;
    let end = memchr::memchr(b'"', rest)?;
    Some(&rest[..end])
}

fn trim_start(bytes: &[u8]) -> &[u8] {
    let start = bytes
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(bytes.len());
    &bytes[start..]
}

/// The largest the buffer grew.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Peak {
    pub records: usize,
    /// The bytes held for them: what the caller said each item weighs, plus the buffer's own
    /// entry and the event id.
    pub bytes: usize,
}

/// The most the buffer holds whatever the window: past it the oldest record is released early
/// (a hostile or very dense archive can pack any number of records into one window), and
/// records older than it are then late too.
pub const MOST_HELD_BYTES: usize = 64 << 20;

/// Items in event-time order, within a window.
pub struct Reorder<T> {
    window: Seconds,
    most_bytes: usize,
    newest: Option<Seconds>,
    /// The time of the last item released early (over [`MOST_HELD_BYTES`]): nothing older may
    /// be held any more.
    floor: Option<Seconds>,
    heap: BinaryHeap<Reverse<Entry<T>>>,
    arrivals: u64,
    bytes: usize,
    peak: Peak,
}

struct Entry<T> {
    stamp: Stamp,
    arrival: u64,
    bytes: usize,
    item: T,
}

impl<T> Entry<T> {
    fn key(&self) -> (&Stamp, u64) {
        (&self.stamp, self.arrival)
    }
}

impl<T> PartialEq for Entry<T> {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}

impl<T> Eq for Entry<T> {}

impl<T> PartialOrd for Entry<T> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<T> Ord for Entry<T> {
    fn cmp(&self, other: &Self) -> Ordering {
        self.key().cmp(&other.key())
    }
}

impl<T> Reorder<T> {
    /// A buffer holding `window` seconds of event time (0 orders only records of one second), at
    /// most [`MOST_HELD_BYTES`].
    pub fn new(window: Seconds) -> Self {
        Self::with_limit(window, MOST_HELD_BYTES)
    }

    /// A buffer holding at most `most_bytes` (as [`Peak::bytes`] counts them).
    pub fn with_limit(window: Seconds, most_bytes: usize) -> Self {
        Reorder {
            window: window.max(0),
            most_bytes,
            newest: None,
            floor: None,
            heap: BinaryHeap::new(),
            arrivals: 0,
            bytes: 0,
            peak: Peak::default(),
        }
    }

    /// Holds `item` (weighing `bytes`), or hands it back when it is late: more than the window
    /// behind the newest record seen, or older than a record released early.
    pub fn push(&mut self, stamp: Stamp, bytes: usize, item: T) -> Result<(), T> {
        if self.is_late(stamp.time) || self.floor.is_some_and(|floor| stamp.time < floor) {
            return Err(item);
        }
        self.newest = Some(self.newest.map_or(stamp.time, |n| n.max(stamp.time)));
        let bytes = bytes + std::mem::size_of::<Entry<T>>() + stamp.event_id.len();
        self.arrivals += 1;
        self.heap.push(Reverse(Entry {
            stamp,
            arrival: self.arrivals,
            bytes,
            item,
        }));
        self.bytes += bytes;
        self.peak.records = self.peak.records.max(self.heap.len());
        self.peak.bytes = self.peak.bytes.max(self.bytes);
        Ok(())
    }

    /// The oldest item held, once the window has passed it (no record still to come can sort
    /// before it without being late), or while the buffer holds more than its limit.
    pub fn ready(&mut self) -> Option<T> {
        let oldest = self.heap.peek()?.0.stamp.time;
        if self.is_late(oldest) {
            self.pop()
        } else if self.bytes > self.most_bytes {
            self.floor = Some(oldest);
            self.pop()
        } else {
            None
        }
    }

    /// The oldest item held, window or not (at the end of the input).
    pub fn pop(&mut self) -> Option<T> {
        let Reverse(entry) = self.heap.pop()?;
        self.bytes -= entry.bytes;
        Some(entry.item)
    }

    pub fn peak(&self) -> Peak {
        self.peak
    }

    fn is_late(&self, time: Seconds) -> bool {
        self.newest
            .is_some_and(|newest| time < newest.saturating_sub(self.window))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stamp(time: Seconds, id: &str) -> Stamp {
        Stamp {
            time,
            event_id: id.to_owned(),
        }
    }

    fn drain(buffer: &mut Reorder<&'static str>) -> Vec<&'static str> {
        std::iter::from_fn(|| buffer.pop()).collect()
    }

    #[test]
    fn items_come_out_by_time_then_event_id_then_arrival() {
        let mut buffer = Reorder::new(100);
        for (time, id, item) in [
            (50, "b", "50b"),
            (10, "z", "10z"),
            (50, "a", "50a-first"),
            (50, "a", "50a-second"),
            (30, "", "30"),
        ] {
            assert!(buffer.push(stamp(time, id), 1, item).is_ok());
        }
        assert_eq!(buffer.ready(), None, "all within the window of the newest");
        assert_eq!(
            drain(&mut buffer),
            ["10z", "30", "50a-first", "50a-second", "50b"]
        );
    }

    #[test]
    fn an_item_is_released_once_the_newest_is_more_than_the_window_ahead() {
        let mut buffer = Reorder::new(60);
        assert!(buffer.push(stamp(100, "a"), 1, "100").is_ok());
        assert!(buffer.push(stamp(160, "b"), 1, "160").is_ok());
        assert_eq!(buffer.ready(), None, "exactly the window ahead: still held");
        assert!(buffer.push(stamp(161, "c"), 1, "161").is_ok());
        assert_eq!(buffer.ready(), Some("100"));
        assert_eq!(buffer.ready(), None);
        assert_eq!(drain(&mut buffer), ["160", "161"]);
    }

    #[test]
    fn an_item_more_than_the_window_behind_the_newest_is_late_and_handed_back() {
        let mut buffer = Reorder::new(60);
        assert!(buffer.push(stamp(1000, "a"), 1, "new").is_ok());
        assert_eq!(buffer.push(stamp(939, "b"), 1, "late"), Err("late"));
        assert!(buffer.push(stamp(940, "c"), 1, "in time").is_ok());
        assert_eq!(drain(&mut buffer), ["in time", "new"]);
    }

    #[test]
    fn over_its_limit_the_buffer_releases_the_oldest_and_older_records_are_late() {
        let entry = std::mem::size_of::<Entry<&str>>() + 1;
        let mut buffer = Reorder::with_limit(600, 3 * (100 + entry));
        for (time, item) in [(10, "10"), (30, "30"), (20, "20")] {
            assert!(buffer.push(stamp(time, "a"), 100, item).is_ok());
            assert_eq!(buffer.ready(), None, "within the limit");
        }
        assert!(buffer.push(stamp(40, "a"), 100, "40").is_ok());
        assert_eq!(buffer.ready(), Some("10"), "over the limit: the oldest");
        assert_eq!(buffer.ready(), None);
        assert_eq!(buffer.push(stamp(5, "a"), 100, "5"), Err("5"));
        assert!(buffer.push(stamp(10, "b"), 100, "10b").is_ok());
        assert_eq!(buffer.ready(), Some("10b"));
        assert!(
            buffer.peak().bytes <= 4 * (100 + entry),
            "{:?}",
            buffer.peak()
        );
        assert_eq!(drain(&mut buffer), ["20", "30", "40"]);
    }

    #[test]
    fn the_peak_counts_records_and_bytes_and_falls_back_when_released() {
        let mut buffer = Reorder::new(0);
        assert!(buffer.push(stamp(1, "a"), 100, "1").is_ok());
        assert!(buffer.push(stamp(1, "b"), 100, "1b").is_ok());
        let two = buffer.peak();
        assert_eq!(two.records, 2);
        assert!(two.bytes >= 200, "{two:?}");
        assert!(buffer.push(stamp(2, "c"), 100, "2").is_ok());
        assert_eq!(buffer.ready(), Some("1"));
        assert_eq!(buffer.ready(), Some("1b"));
        assert!(buffer.push(stamp(3, "d"), 100, "3").is_ok());
        assert_eq!(buffer.peak().records, 3, "{:?}", buffer.peak());
    }

    #[test]
    fn stamps_are_read_from_cloudtrail_and_athena_times_and_absent_otherwise() {
        let ct = r#"{"eventVersion":"1.08","eventTime":"2026-03-02T09:00:00Z","eventID":"e1"}"#;
        assert_eq!(Stamp::of(ct), Some(stamp(1_772_442_000, "e1")));
        let athena = r#"{"eventTime":"2026-03-02 09:00:00.000"}"#;
        assert_eq!(Stamp::of(athena), Some(stamp(1_772_442_000, "")));
        assert_eq!(Stamp::of(r#"{"eventTime":"yesterday"}"#), None);
        assert_eq!(Stamp::of(r#"{"eventName":"GetAccount"}"#), None);
        assert_eq!(Stamp::of(r#"{"eventTime":"#), None);
        let spaced = "{ \"eventID\" : \"e2\",\n  \"eventTime\" :\t\"2026-03-02T09:00:00Z\" }";
        assert_eq!(Stamp::of(spaced), Some(stamp(1_772_442_000, "e2")));
    }
}
