//! The readers' memory does not grow with the input: a line far larger than the memory it may
//! use is read record by record, a record over `--max-record-bytes` is skipped without being
//! held, and millions of elements cost nothing each. Measured with a counting allocator (the
//! heap bytes live at the peak), on input made on the fly, so the test holds none of it.
//!
//! One test in its own binary: the counts are the process's, so nothing may run beside it.

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::Read;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use sesguard::input::{self, InputError, Position, Visitor};

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn grew(bytes: usize) {
    let live = LIVE.fetch_add(bytes, Ordering::Relaxed) + bytes;
    PEAK.fetch_max(live, Ordering::Relaxed);
}

// SAFETY: every call goes to the system allocator as it is; only sizes are counted.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract, passed on.
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            grew(layout.size());
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract, passed on.
        let ptr = unsafe { System.alloc_zeroed(layout) };
        if !ptr.is_null() {
            grew(layout.size());
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract, passed on.
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller's contract, passed on.
        let moved = unsafe { System.realloc(ptr, layout, new_size) };
        if !moved.is_null() {
            LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
            grew(new_size);
        }
        moved
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// The most heap bytes live at once while `f` runs, above what was live before it.
fn peak_of(f: impl FnOnce()) -> usize {
    let before = LIVE.load(Ordering::Relaxed);
    PEAK.store(before, Ordering::Relaxed);
    f();
    PEAK.load(Ordering::Relaxed) - before
}

/// Text made as it is read: `head`, `pattern` `repeats` times, then `tail`.
struct Generated {
    head: Vec<u8>,
    pattern: Vec<u8>,
    repeats: u64,
    tail: Vec<u8>,
    at: u64,
}

impl Generated {
    fn new(head: &str, pattern: &str, repeats: u64, tail: &str) -> Self {
        Generated {
            head: head.as_bytes().to_vec(),
            pattern: pattern.as_bytes().to_vec(),
            repeats,
            tail: tail.as_bytes().to_vec(),
            at: 0,
        }
    }

    fn len(&self) -> u64 {
        self.head.len() as u64 + self.pattern.len() as u64 * self.repeats + self.tail.len() as u64
    }
}

impl Read for Generated {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let head = self.head.len() as u64;
        let body = head + self.pattern.len() as u64 * self.repeats;
        let mut n = 0;
        while n < buf.len() && self.at < self.len() {
            let (part, from): (&[u8], usize) = if self.at < head {
                (&self.head, self.at as usize)
            } else if self.at < body {
                let into = (self.at - head) % self.pattern.len() as u64;
                // Up to the end of the pattern, and not past the body.
                let left = ((body - self.at) as usize).min(self.pattern.len() - into as usize);
                (&self.pattern[..into as usize + left], into as usize)
            } else {
                (&self.tail, (self.at - body) as usize)
            };
            let take = (part.len() - from).min(buf.len() - n);
            buf[n..n + take].copy_from_slice(&part[from..from + take]);
            n += take;
            self.at += take as u64;
        }
        Ok(n)
    }
}

/// Counts what a reader finds, keeping only the records' event IDs and the problems'
/// first lines.
#[derive(Default)]
struct Tally {
    max: Option<usize>,
    stream_over: Option<usize>,
    records: u64,
    ids: Vec<String>,
    problems: u64,
    shown: Vec<String>,
}

impl Visitor for Tally {
    fn record(&mut self, json: &str, _: &Position) {
        self.records += 1;
        if let Some(at) = json.find("\"eventID\":\"") {
            let id = &json[at + 11..];
            self.ids.push(id[..id.find('"').unwrap_or(0)].to_owned());
        }
    }
    fn error(&mut self, error: InputError) {
        self.problems += 1;
        if self.shown.len() < 3 {
            self.shown.push(error.to_string());
        }
    }
    fn shows_errors(&self) -> bool {
        self.shown.len() < 3
    }
    fn error_not_shown(&mut self) {
        self.problems += 1;
    }
    fn max_record_bytes(&self) -> usize {
        self.max.unwrap_or(input::DEFAULT_MAX_RECORD_BYTES)
    }
    fn stream_lines_over(&self) -> Option<usize> {
        self.stream_over
    }
}

fn record(id: &str) -> String {
    format!(r#"{{"eventSource":"ses.amazonaws.com","eventName":"GetAccount","eventID":"{id}"}}"#)
}

const MIB: usize = 1 << 20;

fn read(mut tally: Tally, text: Generated) -> (Tally, usize) {
    let size = text.len();
    let name: Arc<str> = Arc::from("generated.json");
    let peak = peak_of(|| input::read_stream(&name, text, &mut tally));
    eprintln!(
        "{size} bytes read with a peak of {peak} heap bytes: {} records, {} problems",
        tally.records, tally.problems
    );
    (tally, peak)
}

#[test]
fn memory_stays_bounded_whatever_the_size_of_a_line_or_a_record() {
    // A 96 MiB line holding a 96 MiB record between two small ones, then a line: with lines
    // over 1 MiB read piece by piece and records up to 1 MiB, the read holds a few MiB.
    let huge_record = || {
        Generated::new(
            &format!("{{\"Records\":[{},{{\"pad\":\"", record("first")),
            "abcdefgh\\\"\\\\",
            8 * 1024 * 1024,
            &format!("\"}},{}]}}\n{}\n", record("third"), record("after")),
        )
    };
    let limits = Tally {
        max: Some(MIB),
        stream_over: Some(MIB),
        ..Tally::default()
    };
    let (tally, peak) = read(limits, huge_record());
    assert_eq!(tally.ids, ["first", "third", "after"]);
    assert_eq!(tally.problems, 1, "{:?}", tally.shown);
    assert!(
        tally.shown[0].starts_with(
            "generated.json: line 1, record 2: record of 100,663,306 bytes is larger than --max-record-bytes (1,048,576): skipped"
        ),
        "{:?}",
        tally.shown
    );
    assert!(peak < 6 * MIB, "peak {peak}");

    // The same with the defaults: lines up to 16 MiB are read whole, records up to 16 MiB.
    let (tally, peak) = read(Tally::default(), huge_record());
    assert_eq!(tally.ids, ["first", "third", "after"]);
    assert_eq!(tally.problems, 1, "{:?}", tally.shown);
    assert!(peak < 72 * MIB, "peak {peak}");

    // Four million numbers, as an array and as a log file, in a line read whole (8 MB): one
    // problem each, and nothing kept per element (a span or a reference each would be 64 MB).
    for (head, tail) in [("[", "0]\n"), ("{\"Records\":[", "0]}\n")] {
        let numbers = Generated::new(head, "0,", 4_000_000 - 1, tail);
        let (tally, peak) = read(Tally::default(), numbers);
        assert_eq!(tally.problems, 4_000_000, "{head}");
        assert_eq!(tally.records, 0);
        assert!(
            tally.shown[0].contains("line 1, record 1: expected a CloudTrail record"),
            "{:?}",
            tally.shown
        );
        assert!(peak < 40 * MIB, "{head}: peak {peak}");
    }

    // The same read piece by piece.
    let numbers = Generated::new("[", "0,", 4_000_000 - 1, "0]\n");
    let limits = Tally {
        stream_over: Some(MIB),
        ..Tally::default()
    };
    let (tally, peak) = read(limits, numbers);
    assert_eq!(tally.problems, 4_000_000);
    assert!(peak < 4 * MIB, "peak {peak}");

    // A line of 32 million unclosed brackets: one problem, no stack per level, and the next
    // line is read.
    // (After a line holding a whole value: an unclosed first line would make the file one
    // pretty-printed document.)
    let deep = Generated::new(
        &format!("{}\n[", record("before")),
        "[[[[",
        8 * 1024 * 1024,
        &format!("\n{}\n", record("next")),
    );
    let limits = Tally {
        max: Some(MIB),
        stream_over: Some(MIB),
        ..Tally::default()
    };
    let (tally, peak) = read(limits, deep);
    assert_eq!(tally.ids, ["before", "next"]);
    assert_eq!(tally.problems, 1, "{:?}", tally.shown);
    assert!(
        tally.shown[0].starts_with("generated.json: line 2: EOF while parsing"),
        "{:?}",
        tally.shown
    );
    assert!(peak < 4 * MIB, "peak {peak}");
}
