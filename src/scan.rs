//! `sesguard scan`: the engine over files with an in-memory state.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::deliver::{Collect, Collected, Counts, DeliverError, Delivery, Sink, SinkError};
use crate::engine::Engine;
use crate::input::{self, InputError, NotCloudTrail, Position, Source, Visitor};
use crate::model::Seconds;
use crate::reorder::{Peak, Reorder, Stamp};
use crate::rules;
use crate::state::MemoryState;

/// Runs the engine over sources, in order (or in event-time order, see
/// [`Scanner::reorder_window`]), with one in-memory state.
pub struct Scanner<'e, K: Sink> {
    engine: &'e Engine,
    state: MemoryState,
    runtime: tokio::runtime::Runtime,
    sink: K,
    counts: Counts,
    output_error: Option<SinkError>,
    last_progress: Instant,
    full_parse: bool,
    reading: Reading,
    threads: usize,
    /// Problems found in the file being scanned, and how many of them were not shown.
    file_problems: u64,
    not_shown: u64,
    /// Records waiting for their turn in event time; `None` evaluates them as read.
    reorder: Option<Reorder<Held>>,
    /// Problems found in evaluating records released from the buffer (by then their file may
    /// be done): per file, how many were shown and how many were not.
    released_problems: BTreeMap<Arc<str>, (u64, u64)>,
    /// Event times evaluated: [since, until).
    range: (Option<Seconds>, Option<Seconds>),
    /// What the file being scanned held besides problems.
    file: FileTally,
}

/// A record held in the reorder buffer.
struct Held {
    json: String,
    position: Position,
}

/// Records and objects that are not records, in the file being scanned: a file without a record
/// is a problem, one with some objects that are not records gets a note.
#[derive(Default)]
struct FileTally {
    records: u64,
    /// Objects that are not CloudTrail records (digests and control messages aside), and the
    /// first of them with its position.
    others: u64,
    first_other: Option<(NotCloudTrail, Position)>,
    /// The first digest or control message: told only when the file holds nothing else.
    first_expected: Option<(NotCloudTrail, Position)>,
}

/// How files are read, the same on every reader thread.
#[derive(Debug, Clone, Copy)]
struct Reading {
    map_files: bool,
    max_record_bytes: usize,
    #[cfg(any(test, feature = "testing"))]
    stream_lines_over: Option<usize>,
}

const PROGRESS_EVERY: Duration = Duration::from_millis(250);

/// Problems reported in full per file; the rest are counted, and reported as one number at the
/// end of the file. A hostile file can hold millions (one per element of a huge array).
pub const PROBLEMS_SHOWN_PER_FILE: u64 = 10;

impl<'e, K: Sink> Scanner<'e, K> {
    pub fn new(engine: &'e Engine, sink: K) -> std::io::Result<Self> {
        // The in-memory state answers at once; a current-thread runtime only drives its futures.
        let runtime = tokio::runtime::Builder::new_current_thread().build()?;
        Ok(Scanner {
            engine,
            state: MemoryState::new(),
            runtime,
            sink,
            counts: Counts::default(),
            output_error: None,
            last_progress: Instant::now(),
            full_parse: false,
            reading: Reading {
                map_files: false,
                max_record_bytes: input::DEFAULT_MAX_RECORD_BYTES,
                #[cfg(any(test, feature = "testing"))]
                stream_lines_over: None,
            },
            threads: 1,
            file_problems: 0,
            not_shown: 0,
            reorder: None,
            released_problems: BTreeMap::new(),
            range: (None, None),
            file: FileTally::default(),
        })
    }

    /// Evaluates records in event-time order, through a buffer holding `window` seconds of
    /// event time behind the newest record seen (`None`, the default: in input order). Only
    /// records the prefilter lets through are held. A record more than the window behind the
    /// newest, or without a parseable `eventTime`, is evaluated when it arrives; the late ones
    /// are counted ([`Counts::late`]).
    pub fn reorder_window(mut self, window: Option<Seconds>) -> Self {
        self.reorder = window.map(Reorder::new);
        self
    }

    /// The most records (and bytes) the reorder buffer held at once.
    pub fn reorder_peak(&self) -> Option<Peak> {
        self.reorder.as_ref().map(Reorder::peak)
    }

    /// Reads up to `threads` files at once, each on its own thread, while records are evaluated
    /// on the calling thread in the order a one-thread scan evaluates them (input order, or
    /// through the same reorder buffer): the signals, problems and counts are those of a
    /// one-thread scan. 1 (the default) reads on the calling thread.
    pub fn threads(mut self, threads: usize) -> Self {
        self.threads = threads.max(1);
        self
    }

    /// The plain path: log files read with serde_json rather than split in one pass, and every
    /// record parsed instead of skipping those that name no event source a rule reads. Signals
    /// are the same either way (`tests/fast_path.rs` compares them); only records of other
    /// services go unvalidated on the fast path.
    #[cfg(any(test, feature = "testing"))]
    pub fn full_parse(mut self, full: bool) -> Self {
        self.full_parse = full;
        self
    }

    /// Whether files are mapped into memory rather than read; the signals are the same either
    /// way. Mapping saves copying each file (the CLI maps unless `--no-mmap`), but a file
    /// truncated while it is mapped ends the process with SIGBUS, so a library user opts in.
    pub fn map_files(mut self, map: bool) -> Self {
        self.reading.map_files = map;
        self
    }

    /// Only records with an event time in [since, until) are evaluated (`--since`, `--until`);
    /// records without a readable `eventTime` are evaluated, so the engine reports them.
    pub fn between(mut self, since: Option<Seconds>, until: Option<Seconds>) -> Self {
        self.range = (since, until);
        self
    }

    /// Records larger than this many bytes are reported and skipped without being held
    /// (`--max-record-bytes`; at least 1).
    pub fn max_record_bytes(mut self, bytes: usize) -> Self {
        self.reading.max_record_bytes = bytes.max(1);
        self
    }

    /// Lines longer than this are read piece by piece, as the longest ones are: to check that
    /// both ways read ordinary input alike.
    #[cfg(any(test, feature = "testing"))]
    pub fn stream_lines_over(mut self, bytes: usize) -> Self {
        self.reading.stream_lines_over = Some(bytes);
        self
    }

    /// Scans `sources` in order; stops early only if the output fails.
    pub fn scan(&mut self, sources: &[Source]) -> Result<(), SinkError> {
        if self.threads > 1 && sources.len() > 1 {
            self.scan_parallel(sources)?;
        } else {
            self.scan_serial(sources)?;
        }
        self.release_all();
        match self.output_error.take() {
            Some(err) => Err(err),
            None => Ok(()),
        }
    }

    fn scan_serial(&mut self, sources: &[Source]) -> Result<(), SinkError> {
        for source in sources {
            self.counts.files += 1;
            input::read_source(source, self);
            self.end_file(&source.name());
            if let Some(err) = self.output_error.take() {
                return Err(err);
            }
        }
        Ok(())
    }

    /// Ends the file just scanned: one that held no CloudTrail record (and nothing expected
    /// beside them, like a digest) is a problem; objects that are not records are told once;
    /// then how many problems were not shown.
    fn end_file(&mut self, name: &std::sync::Arc<str>) {
        let tally = std::mem::take(&mut self.file);
        let no_record = tally.records == 0 && self.file_problems == 0;
        match (&tally.first_other, &tally.first_expected) {
            (Some((found, _)), _) if no_record => {
                let message = match tally.others {
                    1 => format!("no CloudTrail record in this file: found {found}"),
                    n => format!(
                        "no CloudTrail record in this file: found {found} and {} more objects \
                         that are not records",
                        n - 1
                    ),
                };
                Visitor::error(self, InputError::unreadable(Position::file(name), message));
            }
            (Some((found, position)), _) => {
                self.sink
                    .not_cloudtrail(position, &found.to_string(), tally.others);
            }
            (None, Some((found, position))) if no_record => {
                self.sink.not_cloudtrail(position, &found.to_string(), 1);
            }
            (None, Some(_)) => {}
            (None, None) if no_record => {
                let message = "no CloudTrail record in this file";
                Visitor::error(self, InputError::unreadable(Position::file(name), message));
            }
            (None, None) => {}
        }
        if self.not_shown > 0 {
            self.sink.problems_not_shown(name, self.not_shown);
        }
        self.file_problems = 0;
        self.not_shown = 0;
    }

    /// Counts CloudTrail digest files skipped by name, without reading them.
    pub fn digests_skipped(&mut self, count: u64) {
        self.counts.digests += count;
    }

    /// Counts and reports a path that does not exist, or a directory without an input file.
    pub fn missing(&mut self, error: InputError) {
        self.counts.missing += 1;
        self.sink.problem(&error);
    }

    /// Problems counted but not shown (found on a reader thread).
    fn problems_not_shown(&mut self, malformed: u64, unreadable: u64) {
        self.counts.malformed += malformed;
        self.counts.unreadable += unreadable;
        self.file_problems += malformed + unreadable;
        self.not_shown += malformed + unreadable;
    }

    /// Counts and reports input errors found before scanning (e.g. unreadable directories).
    pub fn report(&mut self, error: InputError) {
        self.counts.problem(&error);
        self.sink.problem(&error);
    }

    pub fn counts(&self) -> &Counts {
        &self.counts
    }

    pub fn into_parts(self) -> (K, Counts) {
        (self.sink, self.counts)
    }

    /// Reader threads take files in order and send what they find, file by file, through
    /// bounded channels; this thread replays it in order. At most `2 × threads` files are in
    /// flight, and batches hold only the records the prefilter lets through, so memory stays
    /// bounded by a few lines per thread whatever the input size.
    fn scan_parallel<'s>(&mut self, sources: &'s [Source]) -> Result<(), SinkError> {
        type Job<'s> = (&'s Source, SyncSender<Batch>);
        let filter = !self.full_parse;
        let reading = self.reading;
        let stop = AtomicBool::new(false);
        let (job_tx, job_rx) = mpsc::channel::<Job<'_>>();
        let job_rx = Mutex::new(job_rx);
        std::thread::scope(|scope| {
            for _ in 0..self.threads {
                scope.spawn(|| {
                    loop {
                        let job = job_rx.lock().unwrap_or_else(|e| e.into_inner()).recv();
                        let Ok((source, tx)) = job else { return };
                        if stop.load(Ordering::Relaxed) {
                            return;
                        }
                        let mut batcher = Batcher::new(tx, filter, reading);
                        input::read_source(source, &mut batcher);
                        batcher.flush();
                    }
                });
            }
            let mut pending: VecDeque<(&'s Source, Receiver<Batch>)> = VecDeque::new();
            let mut next = sources.iter();
            let mut dispatch = move |pending: &mut VecDeque<(&'s Source, Receiver<Batch>)>| {
                if let Some(source) = next.next() {
                    let (tx, rx) = mpsc::sync_channel(BATCHES_PER_FILE);
                    // The workers hold the receiving end until this scope ends.
                    let _ = job_tx.send((source, tx));
                    pending.push_back((source, rx));
                }
            };
            for _ in 0..2 * self.threads {
                dispatch(&mut pending);
            }
            let mut result = Ok(());
            while let Some((source, batches)) = pending.pop_front() {
                self.counts.files += 1;
                for batch in batches.iter() {
                    self.replay(batch);
                    if self.output_error.is_some() {
                        break;
                    }
                }
                self.end_file(&source.name());
                if let Some(err) = self.output_error.take() {
                    result = Err(err);
                    break;
                }
                dispatch(&mut pending);
            }
            // On an output error, workers drop the files they hold at their next send and take
            // no new one.
            stop.store(true, Ordering::Relaxed);
            drop(pending);
            drop(dispatch);
            result
        })
    }

    /// What a reader thread found, as if it were found here.
    fn replay(&mut self, batch: Batch) {
        let mut start = 0;
        for item in batch.items {
            match item {
                Item::Record { end, position } => {
                    Visitor::record(self, &batch.text[start..end], &position);
                    start = end;
                }
                Item::Skipped(records) => self.count_records(records),
                Item::Error(error) => self.error(error),
                Item::NotCloudTrail(found, position) => {
                    Visitor::not_cloudtrail(self, found, &position);
                }
                Item::NotShown {
                    malformed,
                    unreadable,
                } => self.problems_not_shown(malformed, unreadable),
            }
        }
    }

    fn count_records(&mut self, records: u64) {
        self.file.records += records;
        let before = self.counts.records;
        self.counts.records += records;
        if before / 1024 != self.counts.records / 1024
            && self.last_progress.elapsed() >= PROGRESS_EVERY
        {
            self.last_progress = Instant::now();
            self.sink.progress(&self.counts);
        }
    }

    /// A record the prefilter let through: evaluated now, or held for its turn in event time.
    fn arrive(&mut self, json: &str, position: &Position) {
        let Some(reorder) = &mut self.reorder else {
            return self.deliver_now(json, position);
        };
        let Some(stamp) = Stamp::of(json) else {
            return self.deliver_now(json, position);
        };
        let held = Held {
            json: json.to_owned(),
            position: position.clone(),
        };
        if let Err(late) = reorder.push(stamp, json.len(), held) {
            self.counts.late += 1;
            return self.deliver_now(&late.json, &late.position);
        }
        while self.output_error.is_none()
            && let Some(held) = self.reorder.as_mut().and_then(Reorder::ready)
        {
            self.deliver_released(held);
        }
    }

    /// Evaluates what the reorder buffer still holds (at the end of the input), and reports
    /// how many problems found in it were not shown.
    fn release_all(&mut self) {
        while self.output_error.is_none()
            && let Some(held) = self.reorder.as_mut().and_then(Reorder::pop)
        {
            self.deliver_released(held);
        }
        for (file, (_, hidden)) in std::mem::take(&mut self.released_problems) {
            if hidden > 0 {
                self.sink.problems_not_shown(&file, hidden);
            }
        }
    }

    fn deliver_now(&mut self, json: &str, position: &Position) {
        if let Err(error) = self.deliver(json, position) {
            self.error(error);
        }
    }

    /// A record from the reorder buffer: its problems are counted against its own file,
    /// which may be done by now (the first few of a file are shown, as when reading).
    fn deliver_released(&mut self, held: Held) {
        let Err(error) = self.deliver(&held.json, &held.position) else {
            return;
        };
        self.counts.problem(&error);
        let (shown, hidden) = self
            .released_problems
            .entry(error.position.file.clone())
            .or_default();
        if *shown < PROBLEMS_SHOWN_PER_FILE {
            *shown += 1;
            self.sink.problem(&error);
        } else {
            *hidden += 1;
        }
    }

    /// One record through the delivery loop, with the in-memory state; a problem is returned
    /// for the caller to report, an output error kept to end the scan.
    fn deliver(&mut self, json: &str, position: &Position) -> Result<(), InputError> {
        let delivery = Delivery {
            engine: self.engine,
            state: &self.state,
            sink: &self.sink,
        };
        let result = self
            .runtime
            .block_on(delivery.record(json, position, &mut self.counts));
        match result {
            Ok(()) => Ok(()),
            Err(DeliverError::Malformed(error)) => Err(error),
            // The in-memory state fails only on a poisoned lock: reported, and the scan goes on.
            Err(DeliverError::State(err)) => {
                Err(InputError::new(position.clone(), err.to_string()))
            }
            Err(DeliverError::Sink(err)) => {
                self.output_error = Some(err);
                Ok(())
            }
        }
    }
}

impl<K: Sink> Visitor for Scanner<'_, K> {
    fn record(&mut self, json: &str, position: &Position) {
        self.count_records(1);
        if self.output_error.is_some() || (!self.full_parse && !rules::may_match(json)) {
            return;
        }
        if !in_range(json, self.range) {
            self.counts.outside_range += 1;
            return;
        }
        self.arrive(json, position);
    }

    #[cfg(any(test, feature = "testing"))]
    fn split_log_files(&self) -> bool {
        !self.full_parse
    }

    fn map_files(&self) -> bool {
        self.reading.map_files
    }

    fn max_record_bytes(&self) -> usize {
        self.reading.max_record_bytes
    }

    #[cfg(any(test, feature = "testing"))]
    fn stream_lines_over(&self) -> Option<usize> {
        self.reading.stream_lines_over
    }

    fn not_cloudtrail(&mut self, found: NotCloudTrail, position: &Position) {
        if found == NotCloudTrail::Digest {
            self.counts.digests += 1;
        } else {
            self.counts.not_cloudtrail += 1;
        }
        if found.is_expected() {
            if self.file.first_expected.is_none() {
                self.file.first_expected = Some((found, position.clone()));
            }
        } else {
            self.file.others += 1;
            if self.file.first_other.is_none() {
                self.file.first_other = Some((found, position.clone()));
            }
        }
    }

    fn error(&mut self, error: InputError) {
        self.counts.problem(&error);
        self.file_problems += 1;
        if self.file_problems <= PROBLEMS_SHOWN_PER_FILE {
            self.sink.problem(&error);
        } else {
            self.not_shown += 1;
        }
    }

    fn shows_errors(&self) -> bool {
        self.file_problems < PROBLEMS_SHOWN_PER_FILE
    }

    fn error_not_shown(&mut self) {
        self.problems_not_shown(1, 0);
    }
}

/// Whether a record's `eventTime` lies in `range`; true without a range, and when there is no
/// readable time (the engine then reports the record if a rule reads it).
fn in_range(json: &str, range: (Option<Seconds>, Option<Seconds>)) -> bool {
    if range == (None, None) {
        return true;
    }
    let Some(time) = crate::reorder::event_time(json) else {
        return true;
    };
    range.0.is_none_or(|s| time >= s) && range.1.is_none_or(|u| time < u)
}

/// Batches are sent when they hold this much record text or this many items.
const BATCH_BYTES: usize = 1 << 20;
const BATCH_ITEMS: usize = 4096;
/// Batches a reader thread may send ahead of the scanning thread, per file.
const BATCHES_PER_FILE: usize = 4;

/// What a reader thread found in a stretch of a file: the text of the records it kept, one
/// after the other, and in input order those records (with where their text ends), counts of
/// records the prefilter dropped, and problems.
#[derive(Default)]
struct Batch {
    text: String,
    items: Vec<Item>,
}

enum Item {
    Record {
        end: usize,
        position: Position,
    },
    Skipped(u64),
    Error(InputError),
    NotCloudTrail(NotCloudTrail, Position),
    /// Problems past the first [`PROBLEMS_SHOWN_PER_FILE`] of the file: counted only.
    NotShown {
        malformed: u64,
        unreadable: u64,
    },
}

/// The visitor on a reader thread: applies the prefilter (as [`Scanner`] would) and sends
/// batches to the scanning thread.
struct Batcher {
    tx: SyncSender<Batch>,
    batch: Batch,
    filter: bool,
    reading: Reading,
    /// The scanning thread stopped listening (its output failed): read on, keep nothing.
    closed: bool,
    /// Problems found in the file: those past the first few are sent as counts, since the
    /// scanning thread would not show them (it shows the first few of the file, and these are
    /// among them: it adds only problems found in evaluating records).
    errors: u64,
}

impl Batcher {
    fn new(tx: SyncSender<Batch>, filter: bool, reading: Reading) -> Self {
        Batcher {
            tx,
            batch: Batch::default(),
            filter,
            reading,
            closed: false,
            errors: 0,
        }
    }

    fn not_shown(&mut self, unreadable: bool) {
        if self.closed {
            return;
        }
        let (m, u) = (u64::from(!unreadable), u64::from(unreadable));
        if let Some(Item::NotShown {
            malformed,
            unreadable,
        }) = self.batch.items.last_mut()
        {
            *malformed += m;
            *unreadable += u;
        } else {
            self.push(Item::NotShown {
                malformed: m,
                unreadable: u,
            });
        }
    }

    fn push(&mut self, item: Item) {
        self.batch.items.push(item);
        if self.batch.text.len() >= BATCH_BYTES || self.batch.items.len() >= BATCH_ITEMS {
            self.flush();
        }
    }

    fn flush(&mut self) {
        if self.closed || self.batch.items.is_empty() {
            return;
        }
        let batch = std::mem::take(&mut self.batch);
        if self.tx.send(batch).is_err() {
            self.closed = true;
        }
    }
}

impl Visitor for Batcher {
    fn record(&mut self, json: &str, position: &Position) {
        if self.closed {
            return;
        }
        if self.filter && !rules::may_match(json) {
            if let Some(Item::Skipped(records)) = self.batch.items.last_mut() {
                *records += 1;
                // Sent now and then all the same, for progress.
                if *records % (BATCH_ITEMS as u64) == 0 {
                    self.flush();
                }
            } else {
                self.push(Item::Skipped(1));
            }
            return;
        }
        self.batch.text.push_str(json);
        let end = self.batch.text.len();
        self.push(Item::Record {
            end,
            position: position.clone(),
        });
    }

    #[cfg(any(test, feature = "testing"))]
    fn split_log_files(&self) -> bool {
        self.filter
    }

    fn map_files(&self) -> bool {
        self.reading.map_files
    }

    fn max_record_bytes(&self) -> usize {
        self.reading.max_record_bytes
    }

    #[cfg(any(test, feature = "testing"))]
    fn stream_lines_over(&self) -> Option<usize> {
        self.reading.stream_lines_over
    }

    fn not_cloudtrail(&mut self, found: NotCloudTrail, position: &Position) {
        if !self.closed {
            self.push(Item::NotCloudTrail(found, position.clone()));
        }
    }

    fn error(&mut self, error: InputError) {
        self.errors += 1;
        if self.errors > PROBLEMS_SHOWN_PER_FILE {
            self.not_shown(error.unreadable);
        } else if !self.closed {
            self.push(Item::Error(error));
        }
    }

    fn shows_errors(&self) -> bool {
        self.errors < PROBLEMS_SHOWN_PER_FILE
    }

    fn error_not_shown(&mut self) {
        self.errors += 1;
        self.not_shown(false);
    }
}

/// Scans in-memory text as one source named `name` (for tests and embedding).
pub fn scan_text(engine: &Engine, name: &str, text: &[u8]) -> (Collected, Counts) {
    scan_text_parsing(engine, name, text, false)
}

/// [`scan_text`], choosing whether every record is parsed (see [`Scanner::full_parse`]).
#[cfg(any(test, feature = "testing"))]
pub fn scan_text_with(
    engine: &Engine,
    name: &str,
    text: &[u8],
    full_parse: bool,
) -> (Collected, Counts) {
    scan_text_parsing(engine, name, text, full_parse)
}

fn scan_text_parsing(
    engine: &Engine,
    name: &str,
    text: &[u8],
    full_parse: bool,
) -> (Collected, Counts) {
    let scanner = Scanner::new(engine, Collect::default()).map(|mut s| {
        s.full_parse = full_parse;
        s
    });
    let mut scanner = match scanner {
        Ok(scanner) => scanner,
        Err(err) => {
            let problem = InputError::unreadable(Position::file(&name.into()), err.to_string());
            let mut counts = Counts::default();
            counts.problem(&problem);
            return (
                Collected {
                    signals: Vec::new(),
                    problems: vec![problem],
                    not_shown: Vec::new(),
                },
                counts,
            );
        }
    };
    scanner.counts.files = 1;
    let name: std::sync::Arc<str> = name.into();
    input::read_stream(&name, text, &mut scanner);
    scanner.end_file(&name);
    scanner.release_all();
    let (sink, counts) = scanner.into_parts();
    (sink.into_inner(), counts)
}
