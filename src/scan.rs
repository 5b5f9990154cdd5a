//! `sesguard scan`: the engine over files with an in-memory state.

use std::collections::BTreeMap;
use std::fmt;
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
        })
    }

    /// Parses every record, instead of skipping those that name no event source a rule reads.
    /// Signals are the same either way (a test compares them); only records of other services
    /// go unvalidated on the fast path.
    pub fn full_parse(mut self, full: bool) -> Self {
        self.full_parse = full;
        self
    }

    /// Scans `sources` in order; stops early only if the output fails.
    pub fn scan(&mut self, sources: &[Source]) -> Result<(), std::io::Error> {
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
        self.stats.records += 1;
        if self.stats.records.is_multiple_of(1024) && self.last_progress.elapsed() >= PROGRESS_EVERY
        {
            self.last_progress = Instant::now();
            self.sink.progress(&self.stats);
        }
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

    fn error(&mut self, error: InputError) {
        if error.unreadable {
            self.stats.unreadable += 1;
        } else {
            self.stats.malformed += 1;
        }
        self.sink.problem(&error);
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
