//! `sesguard scan`: the engine over files with an in-memory state.

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::time::{Duration, Instant};

use crate::engine::{Engine, EngineError};
use crate::event::Record;
use crate::input::{self, InputError, Position, Source, Visitor};
use crate::rules;
use crate::signal::Signal;
use crate::state::MemoryState;

/// Counts for the summary line.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Stats {
    pub files: u64,
    pub records: u64,
    /// Records or values skipped because they are not valid input.
    pub malformed: u64,
    /// Files (or parts of them) that could not be read at all.
    pub unreadable: u64,
    /// Records some rule read.
    pub matched: u64,
    pub signals: BTreeMap<&'static str, u64>,
    pub suppressed: u64,
    pub deduplicated: u64,
}

impl Stats {
    pub fn signal_count(&self) -> u64 {
        self.signals.values().sum()
    }

    /// Whether all input was read and understood (exit code 0).
    pub fn clean(&self) -> bool {
        self.malformed == 0 && self.unreadable == 0
    }
}

impl fmt::Display for Stats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} files, {} records read, {} malformed, {} unreadable, {} matched, {} signals",
            self.files,
            self.records,
            self.malformed,
            self.unreadable,
            self.matched,
            self.signal_count()
        )?;
        if !self.signals.is_empty() {
            let by_rule: Vec<String> = self
                .signals
                .iter()
                .map(|(rule, n)| format!("{rule} {n}"))
                .collect();
            write!(f, " ({})", by_rule.join(", "))?;
        }
        write!(
            f,
            ", {} suppressed, {} deduplicated",
            self.suppressed, self.deduplicated
        )
    }
}

/// Where a scan's output goes.
pub trait Sink {
    /// A signal; an error stops the scan (e.g. a closed pipe).
    fn signal(&mut self, signal: &Signal) -> std::io::Result<()>;
    /// Input that was skipped.
    fn problem(&mut self, error: &InputError);
    /// Called now and then with the counts so far (for progress display).
    fn progress(&mut self, _stats: &Stats) {}
}

/// Runs the engine over sources, in order, with one in-memory state.
pub struct Scanner<'e, K: Sink> {
    engine: &'e Engine,
    state: MemoryState,
    runtime: tokio::runtime::Runtime,
    sink: K,
    stats: Stats,
    output_error: Option<std::io::Error>,
    last_progress: Instant,
    full_parse: bool,
    map_files: bool,
    threads: usize,
}

const PROGRESS_EVERY: Duration = Duration::from_millis(250);

impl<'e, K: Sink> Scanner<'e, K> {
    pub fn new(engine: &'e Engine, sink: K) -> std::io::Result<Self> {
        // The in-memory state answers at once; a current-thread runtime only drives its futures.
        let runtime = tokio::runtime::Builder::new_current_thread().build()?;
        Ok(Scanner {
            engine,
            state: MemoryState::new(),
            runtime,
            sink,
            stats: Stats::default(),
            output_error: None,
            last_progress: Instant::now(),
            full_parse: false,
            map_files: true,
            threads: 1,
        })
    }

    /// Reads up to `threads` files at once, each on its own thread, while records are evaluated
    /// on the calling thread in input order: the signals, problems and counts are those of a
    /// one-thread scan. 1 (the default) reads on the calling thread.
    pub fn threads(mut self, threads: usize) -> Self {
        self.threads = threads.max(1);
        self
    }

    /// The plain path: log files read with serde_json rather than split in one pass, and every
    /// record parsed instead of skipping those that name no event source a rule reads. Signals
    /// are the same either way (`tests/fast_path.rs` compares them); only records of other
    /// services go unvalidated on the fast path.
    pub fn full_parse(mut self, full: bool) -> Self {
        self.full_parse = full;
        self
    }

    /// Whether files are mapped into memory rather than read (the default: it saves copying
    /// them); the signals are the same either way. Off for files that may be truncated while
    /// they are scanned (a truncated mapping ends the process with SIGBUS).
    pub fn map_files(mut self, map: bool) -> Self {
        self.map_files = map;
        self
    }

    /// Scans `sources` in order; stops early only if the output fails.
    pub fn scan(&mut self, sources: &[Source]) -> Result<(), std::io::Error> {
        if self.threads > 1 && sources.len() > 1 {
            return self.scan_parallel(sources);
        }
        for source in sources {
            self.stats.files += 1;
            input::read_source(source, self);
            if let Some(err) = self.output_error.take() {
                return Err(err);
            }
        }
        Ok(())
    }

    /// Counts input errors found before scanning (e.g. unreadable directories).
    pub fn report(&mut self, error: InputError) {
        self.error(error);
    }

    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    pub fn into_parts(self) -> (K, Stats) {
        (self.sink, self.stats)
    }

    /// Reader threads take files in order and send what they find, file by file, through
    /// bounded channels; this thread replays it in order. At most `2 × threads` files are in
    /// flight, and batches hold only the records the prefilter lets through, so memory stays
    /// bounded by a few lines per thread whatever the input size.
    fn scan_parallel(&mut self, sources: &[Source]) -> Result<(), std::io::Error> {
        type Job<'s> = (&'s Source, SyncSender<Batch>);
        let filter = !self.full_parse;
        let map = self.map_files;
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
                        let mut batcher = Batcher::new(tx, filter, map);
                        input::read_source(source, &mut batcher);
                        batcher.flush();
                    }
                });
            }
            let mut pending: VecDeque<Receiver<Batch>> = VecDeque::new();
            let mut next = sources.iter();
            let mut dispatch = move |pending: &mut VecDeque<Receiver<Batch>>| {
                if let Some(source) = next.next() {
                    let (tx, rx) = mpsc::sync_channel(BATCHES_PER_FILE);
                    // The workers hold the receiving end until this scope ends.
                    let _ = job_tx.send((source, tx));
                    pending.push_back(rx);
                }
            };
            for _ in 0..2 * self.threads {
                dispatch(&mut pending);
            }
            let mut result = Ok(());
            while let Some(batches) = pending.pop_front() {
                self.stats.files += 1;
                for batch in batches.iter() {
                    self.replay(batch);
                    if self.output_error.is_some() {
                        break;
                    }
                }
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
            }
        }
    }

    fn count_records(&mut self, records: u64) {
        let before = self.stats.records;
        self.stats.records += records;
        if before / 1024 != self.stats.records / 1024
            && self.last_progress.elapsed() >= PROGRESS_EVERY
        {
            self.last_progress = Instant::now();
            self.sink.progress(&self.stats);
        }
    }

    fn evaluate(&mut self, record: &Record, position: &Position) {
        let evaluation = match self
            .runtime
            .block_on(self.engine.evaluate(record, &self.state))
        {
            Ok(evaluation) => evaluation,
            Err(EngineError::Malformed(message)) => {
                self.error(InputError::new(position.clone(), message));
                return;
            }
            Err(EngineError::State(err)) => {
                self.error(InputError::new(position.clone(), err.to_string()));
                return;
            }
        };
        if evaluation.matched {
            self.stats.matched += 1;
        }
        self.stats.suppressed += evaluation.suppressed as u64;
        self.stats.deduplicated += evaluation.deduplicated as u64;
        for signal in &evaluation.signals {
            if self.output_error.is_some() {
                return;
            }
            if let Err(err) = self.sink.signal(signal) {
                self.output_error = Some(err);
                return;
            }
            let rule = rules::by_id(&signal.rule_id).map_or("unknown", |r| r.id);
            *self.stats.signals.entry(rule).or_default() += 1;
            // The in-memory state cannot fail.
            let _ = self
                .runtime
                .block_on(self.engine.published(signal, &self.state));
        }
    }
}

impl<K: Sink> Visitor for Scanner<'_, K> {
    fn record(&mut self, json: &str, position: &Position) {
        self.count_records(1);
        if self.output_error.is_some() || (!self.full_parse && !rules::may_match(json)) {
            return;
        }
        match Record::parse(json) {
            Ok(record) => {
                if rules::reads(&record) {
                    self.evaluate(&record, position);
                }
            }
            Err(err) => self.error(InputError::new(position.clone(), input::describe(&err))),
        }
    }

    fn split_log_files(&self) -> bool {
        !self.full_parse
    }

    fn map_files(&self) -> bool {
        self.map_files
    }

    fn error(&mut self, error: InputError) {
        if error.unreadable {
            self.stats.unreadable += 1;
        } else {
            self.stats.malformed += 1;
        }
        self.sink.problem(&error);
    }
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
    Record { end: usize, position: Position },
    Skipped(u64),
    Error(InputError),
}

/// The visitor on a reader thread: applies the prefilter (as [`Scanner`] would) and sends
/// batches to the scanning thread.
struct Batcher {
    tx: SyncSender<Batch>,
    batch: Batch,
    filter: bool,
    map: bool,
    /// The scanning thread stopped listening (its output failed): read on, keep nothing.
    closed: bool,
}

impl Batcher {
    fn new(tx: SyncSender<Batch>, filter: bool, map: bool) -> Self {
        Batcher {
            tx,
            batch: Batch::default(),
            filter,
            map,
            closed: false,
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

    fn split_log_files(&self) -> bool {
        self.filter
    }

    fn map_files(&self) -> bool {
        self.map
    }

    fn error(&mut self, error: InputError) {
        if !self.closed {
            self.push(Item::Error(error));
        }
    }
}

/// A sink that keeps everything (for tests and embedding).
#[derive(Debug, Default)]
pub struct Collect {
    pub signals: Vec<Signal>,
    pub problems: Vec<InputError>,
}

impl Sink for Collect {
    fn signal(&mut self, signal: &Signal) -> std::io::Result<()> {
        self.signals.push(signal.clone());
        Ok(())
    }

    fn problem(&mut self, error: &InputError) {
        self.problems.push(error.clone());
    }
}

/// Scans in-memory text as one source named `name` (for tests and embedding).
pub fn scan_text(engine: &Engine, name: &str, text: &[u8]) -> (Collect, Stats) {
    scan_text_with(engine, name, text, false)
}

/// [`scan_text`], choosing whether every record is parsed (see [`Scanner::full_parse`]).
pub fn scan_text_with(
    engine: &Engine,
    name: &str,
    text: &[u8],
    full_parse: bool,
) -> (Collect, Stats) {
    let scanner = Scanner::new(engine, Collect::default()).map(|s| s.full_parse(full_parse));
    let mut scanner = match scanner {
        Ok(scanner) => scanner,
        Err(err) => {
            let problem = InputError::unreadable(Position::file(&name.into()), err.to_string());
            return (
                Collect {
                    signals: Vec::new(),
                    problems: vec![problem],
                },
                Stats::default(),
            );
        }
    };
    scanner.stats.files = 1;
    input::read_stream(&name.into(), text, &mut scanner);
    scanner.into_parts()
}
