//! The `sesguard` command line: scan CloudTrail files with the engine and an in-memory state.

use std::collections::HashMap;
use std::io::{self, BufWriter, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Mutex;

use clap::{Args, Parser, Subcommand, ValueEnum};
use sesguard::Engine;
use sesguard::config::{Config, Overrides};
use sesguard::deliver::{Counts, Sink, SinkError};
use sesguard::engine::{Evaluation, Why};
use sesguard::file_order;
use sesguard::input::{self, InputError, Source};
use sesguard::model::{MINUTE, Seconds};
use sesguard::output::progress::Progress;
use sesguard::output::table::{Table, escape};
use sesguard::record::Record;
use sesguard::rules;
use sesguard::scan::{PROBLEMS_SHOWN_PER_FILE, Scanner};
use sesguard::signal::Signal;
use sesguard::text;

#[derive(Parser)]
#[command(
    name = "sesguard",
    version,
    about = "Catch Amazon SES abuse in CloudTrail records"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Evaluate CloudTrail records from files, directories or stdin and print signals.
    ///
    /// PATH is a file, a directory (recursed; .json, .jsonl, .ndjson and .gz files) or - for
    /// stdin. Records are evaluated in event-time order (see --reorder-window), signals printed
    /// as decided. Each file may hold EventBridge envelopes, bare records, a
    /// CloudTrail log file {"Records":[...]}, a JSON array or JSON Lines, gzip-compressed or not.
    ///
    /// Exit status: 0 all input read; 1 some input unreadable or malformed (everything readable
    /// still evaluated and printed); 2 usage or configuration error.
    Scan(ScanArgs),
    /// List the detections and the API calls each one reads.
    Rules {
        /// Output format.
        #[arg(long, value_enum, default_value_t = RulesFormat::Table)]
        format: RulesFormat,
    },
}

#[derive(Args)]
struct ScanArgs {
    /// Files, directories, or - for stdin.
    #[arg(required = true, value_name = "PATH")]
    paths: Vec<PathBuf>,
    /// TOML file with settings and [[suppressions]] (the same file the Lambda reads).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Output format [default: table on a terminal, else jsonl].
    #[arg(long, value_enum)]
    format: Option<Format>,
    /// Write the signals to FILE instead of standard output, in the chosen format (jsonl
    /// unless --format table).
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    output: Option<PathBuf>,
    /// Colour the table by severity: auto (when the output is a terminal and NO_COLOR is not
    /// set), always or never. The table fits the terminal's width (or $COLUMNS).
    #[arg(long, value_enum, value_name = "WHEN", default_value_t = ColorWhen::Auto)]
    color: ColorWhen,
    /// R2: no signal for events less than this many days after the first event seen [default: 0].
    #[arg(long, value_name = "DAYS")]
    learning_days: Option<u32>,
    /// R2: forget a principal not seen for this many days [default: 28].
    #[arg(long, value_name = "DAYS")]
    forget_days: Option<u32>,
    /// R4: longest time from adding an identity to deleting it [default: 60].
    #[arg(long, visible_alias = "window-minutes", value_name = "MINUTES")]
    sequence_window_minutes: Option<u32>,
    /// R1/R3/R5: repeats within this many minutes after a signal give no new one [default: 60].
    #[arg(long, value_name = "MINUTES")]
    dedup_minutes: Option<u32>,
    /// ses-sandbox-exit-burst: PutAccountDetails in at least this many regions … [default: 3].
    #[arg(long, value_name = "N")]
    sandbox_exit_regions: Option<u32>,
    /// … within this many minutes of event time [default: 5].
    #[arg(long, value_name = "MINUTES")]
    sandbox_exit_window_minutes: Option<u32>,
    /// ses-abuse-chain: the stages of a chain fall within this many hours [default: 24].
    #[arg(long, value_name = "HOURS")]
    chain_window_hours: Option<u32>,
    /// Tor exit list (one address per line, # comments): R3 is high severity from these.
    #[arg(long, value_name = "FILE")]
    tor_exit_list: Option<PathBuf>,
    /// Files read at once, each on its own thread; records are still evaluated in the same
    /// order, so the output does not depend on it [default: the number of CPUs].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    threads: Option<u16>,
    /// Records are evaluated in event-time order, across files, through a buffer holding this
    /// many minutes of event time behind the newest record read. A record further behind is
    /// evaluated when it arrives and counted as late in the summary; one without a readable
    /// eventTime is evaluated when it arrives.
    #[arg(
        long,
        value_name = "MINUTES",
        default_value_t = 15,
        conflicts_with = "input_order"
    )]
    reorder_window: u32,
    /// Evaluate records as they are read (files in name order) instead of in event-time order.
    #[arg(long)]
    input_order: bool,
    /// Read files instead of mapping them into memory. Mapping saves copying each file; use
    /// this for files that may be truncated while they are scanned (reading the lost part of a
    /// mapping ends the process with SIGBUS). The output is the same.
    #[arg(long)]
    no_mmap: bool,
    /// Skip (and report) any single record larger than this many bytes, without holding it in
    /// memory; the records around it are still read. CloudTrail records are a few kilobytes.
    /// Memory use grows with it: a few times this limit per reading thread, at most.
    #[arg(
        long,
        value_name = "BYTES",
        default_value_t = input::DEFAULT_MAX_RECORD_BYTES as u64,
        value_parser = clap::value_parser!(u64).range(1..=(usize::MAX as u64))
    )]
    max_record_bytes: u64,
    /// Print on stderr, for each rule match that gave no signal, why: the suppression entry
    /// (its number in the config and its reason) or the earlier signal holding the dedup window.
    #[arg(long)]
    explain: bool,
    /// No summary or progress on stderr (problems are still reported).
    #[arg(long, short)]
    quiet: bool,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    /// One signal per line, as JSON (what the Lambda publishes).
    Jsonl,
    /// A readable table.
    Table,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ColorWhen {
    Auto,
    Always,
    Never,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum RulesFormat {
    Table,
    Json,
    /// The EventBridge event patterns that deliver every call the rules read.
    Eventbridge,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("SESGUARD_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    match cli.command {
        Command::Scan(args) => scan(args),
        Command::Rules { format } => list_rules(format),
    }
}

fn scan(args: ScanArgs) -> ExitCode {
    let overrides = Overrides {
        learning_days: args.learning_days,
        forget_days: args.forget_days,
        sequence_window_minutes: args.sequence_window_minutes,
        dedup_minutes: args.dedup_minutes,
        sandbox_exit_regions: args.sandbox_exit_regions,
        sandbox_exit_window_minutes: args.sandbox_exit_window_minutes,
        chain_window_hours: args.chain_window_hours,
        tor_exit_list: args.tor_exit_list.clone(),
    };
    let config = match Config::load(args.config.as_deref(), &overrides) {
        Ok(config) => config,
        Err(err) => {
            eprintln!("sesguard: error: {err}");
            return ExitCode::from(2);
        }
    };
    let explain = args.explain.then(|| Explain {
        config: args
            .config
            .as_ref()
            .map_or_else(String::new, |path| path.display().to_string()),
        reasons: config
            .suppressions
            .iter()
            .map(|s| s.reason.clone())
            .collect(),
        holders: HashMap::new(),
    });
    let engine = Engine::new(config);
    let destination = match Destination::open(args.output.as_deref()) {
        Ok(destination) => destination,
        Err(err) => {
            eprintln!("sesguard: error: {err}");
            return ExitCode::from(2);
        }
    };
    let format = args.format.unwrap_or(if destination.is_terminal() {
        Format::Table
    } else {
        Format::Jsonl
    });
    let table = (format == Format::Table).then(|| {
        let color = match args.color {
            ColorWhen::Always => true,
            ColorWhen::Never => false,
            ColorWhen::Auto => destination.color_wanted(),
        };
        Table::new(destination.width(), color)
    });
    let (mut sources, expand_errors) = input::expand(&args.paths);
    if !args.input_order {
        file_order::by_first_event(&mut sources);
    }
    let progress = (!args.quiet && io::stderr().is_terminal()).then(|| {
        let sizes: Vec<u64> = sources
            .iter()
            .map(|source| match source {
                Source::Stdin => 0,
                Source::File(path) => std::fs::metadata(path).map_or(0, |m| m.len()),
            })
            .collect();
        Progress::new(&sizes)
    });
    let sink = Terminal(Mutex::new(Screen {
        out: BufWriter::with_capacity(64 * 1024, destination.into_writer()),
        table,
        explain,
        progress,
    }));
    let threads = args.threads.map_or_else(
        || std::thread::available_parallelism().map_or(1, |n| n.get()),
        usize::from,
    );
    let mut scanner = match Scanner::new(&engine, sink) {
        Ok(scanner) => scanner
            .threads(threads)
            .map_files(!args.no_mmap)
            .max_record_bytes(usize::try_from(args.max_record_bytes).unwrap_or(usize::MAX))
            .reorder_window(
                (!args.input_order).then(|| Seconds::from(args.reorder_window) * MINUTE),
            ),
        Err(err) => {
            eprintln!("sesguard: error: cannot start: {err}");
            return ExitCode::from(2);
        }
    };
    for error in expand_errors {
        scanner.report(error);
    }
    let result = scanner.scan(&sources);
    if let Some(peak) = scanner.reorder_peak() {
        tracing::info!(
            records = peak.records,
            bytes = peak.bytes,
            "reorder buffer peak"
        );
    }
    let (sink, stats) = scanner.into_parts();
    let flushed = sink.screen().finish().map_err(SinkError::from);
    if let Err(err) = result.and(flushed)
        && err.io_kind() != Some(io::ErrorKind::BrokenPipe)
    {
        eprintln!("sesguard: error: cannot write output: {err}");
        return ExitCode::from(1);
    }
    if !args.quiet {
        eprintln!("sesguard: {stats}");
    }
    if stats.clean() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// Where the signals go: standard output or the file of `-o`.
enum Destination {
    Stdout,
    File(std::fs::File),
}

/// Width of the table when the output is no terminal and `COLUMNS` is not set: wide, as a
/// file or pipe has no edge to fit (the columns layout, rows rarely wrapped).
const UNKNOWN_WIDTH: usize = 250;

impl Destination {
    fn open(path: Option<&std::path::Path>) -> Result<Self, String> {
        match path {
            None => Ok(Destination::Stdout),
            Some(path) => std::fs::File::create(path)
                .map(Destination::File)
                .map_err(|err| format!("cannot create {}: {err}", path.display())),
        }
    }

    fn is_terminal(&self) -> bool {
        match self {
            Destination::Stdout => io::stdout().is_terminal(),
            Destination::File(file) => file.is_terminal(),
        }
    }

    /// Whether colour suits it: a terminal, NO_COLOR unset (anstream reads the conventions).
    fn color_wanted(&self) -> bool {
        let choice = match self {
            Destination::Stdout => anstream::AutoStream::choice(&io::stdout()),
            Destination::File(file) => anstream::AutoStream::choice(file),
        };
        choice != anstream::ColorChoice::Never
    }

    /// `COLUMNS` if set, else the terminal's width, else [`UNKNOWN_WIDTH`].
    fn width(&self) -> usize {
        let columns = std::env::var("COLUMNS")
            .ok()
            .and_then(|c| c.trim().parse().ok());
        let terminal = match self {
            Destination::Stdout => terminal_size::terminal_size_of(io::stdout()),
            Destination::File(file) => terminal_size::terminal_size_of(file),
        };
        columns
            .or(terminal.map(|(width, _)| usize::from(width.0)))
            .filter(|w| *w > 0)
            .unwrap_or(UNKNOWN_WIDTH)
    }

    fn into_writer(self) -> Box<dyn Write + Send> {
        match self {
            Destination::Stdout => Box::new(io::stdout()),
            Destination::File(file) => Box::new(file),
        }
    }
}

/// Signals to stdout (or `-o FILE`), problems and progress to stderr.
struct Terminal<W: Write>(Mutex<Screen<W>>);

struct Screen<W: Write> {
    out: W,
    /// The table's layout and colours; `None` prints JSON Lines.
    table: Option<Table>,
    explain: Option<Explain>,
    /// The progress bar, when stderr is a terminal.
    progress: Option<Progress>,
}

/// `--explain`: why matches gave no signal.
struct Explain {
    /// The config file, as given.
    config: String,
    /// Each suppression entry's reason, in the file's order.
    reasons: Vec<Option<String>>,
    /// The latest signal of each rule per dedup key: what a later duplicate names.
    holders: HashMap<(&'static str, String), Earlier>,
}

/// A signal, as a duplicate names it.
struct Earlier {
    signal_id: String,
    event: String,
}

impl Explain {
    /// Lines for one evaluated record (its text escaped: it comes from the record).
    fn lines(&mut self, record: &Record<'_>, evaluation: &Evaluation) -> Vec<String> {
        let event = describe_event(record);
        for (signal, key) in evaluation.signals.iter().zip(&evaluation.opened) {
            if let (Some(rule), Some(key)) = (rules::by_id(&signal.rule_id), key) {
                let earlier = Earlier {
                    signal_id: signal.signal_id.clone(),
                    event: event.clone(),
                };
                self.holders.insert((rule.id, key.clone()), earlier);
            }
        }
        evaluation
            .hidden
            .iter()
            .map(|hidden| {
                let why = match &hidden.why {
                    Why::Suppressed { entry } => {
                        let reason = match self.reasons.get(*entry).cloned().flatten() {
                            Some(reason) => format!("reason: {:?}", escape(&reason)),
                            None => "no reason given".to_owned(),
                        };
                        format!(
                            "suppressed by [[suppressions]] entry {} of {} ({reason})",
                            entry + 1,
                            self.config
                        )
                    }
                    Why::Deduplicated { key } => {
                        match self.holders.get(&(hidden.rule_id, key.clone())) {
                            Some(earlier) => format!(
                                "deduplicated: signal {} ({}) holds the rule's dedup window",
                                earlier.signal_id, earlier.event
                            ),
                            None => {
                                "deduplicated: an earlier match that gave no signal (suppressed) \
                                     holds the rule's dedup window"
                                    .to_owned()
                            }
                        }
                    }
                    Why::Published { signal_id } => format!(
                        "deduplicated: signal {signal_id} was given for this same event already \
                         (a repeated record)"
                    ),
                };
                format!("sesguard: explain: {} on {event}: {why}", hidden.rule_id)
            })
            .collect()
    }
}

/// `DeleteIdentity 5e1093f0-… at 2026-03-02T09:40:00Z`, escaped.
fn describe_event(record: &Record<'_>) -> String {
    format!(
        "{} {} at {}",
        escape(record.name()),
        escape(record.event_id.as_deref().unwrap_or("(no eventID)")),
        escape(record.event_time.as_deref().unwrap_or("(no eventTime)"))
    )
}

impl<W: Write> Terminal<W> {
    /// The scan runs on one thread: the lock is never contended, and a panic while holding it
    /// leaves nothing half-written that matters.
    fn screen(&self) -> std::sync::MutexGuard<'_, Screen<W>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl<W: Write> Screen<W> {
    /// Writes to stderr with the progress bar out of the way.
    fn note(&self, write: impl FnOnce()) {
        match &self.progress {
            Some(progress) => progress.suspend(write),
            None => write(),
        }
    }

    fn finish(&mut self) -> io::Result<()> {
        if let Some(progress) = &self.progress {
            progress.finish();
        }
        self.out.flush()
    }

    fn signal(&mut self, signal: &Signal) -> io::Result<()> {
        match &mut self.table {
            None => writeln!(self.out, "{}", signal.to_json()),
            Some(table) => self.out.write_all(table.signal(signal).as_bytes()),
        }
    }
}

impl<W: Write + Send> Sink for Terminal<W> {
    async fn emit(&self, signal: &Signal) -> Result<(), SinkError> {
        Ok(self.screen().signal(signal)?)
    }

    fn problem(&self, error: &InputError) {
        self.screen().note(|| eprintln!("sesguard: {error}"));
    }

    fn problems_not_shown(&self, file: &str, count: u64) {
        self.screen().note(|| {
            eprintln!(
                "sesguard: {file}: {} more problems in this file not shown (only the first {} of \
                 a file are; the summary counts them all)",
                text::thousands(count),
                PROBLEMS_SHOWN_PER_FILE
            )
        });
    }

    fn evaluated(&self, record: &Record<'_>, evaluation: &Evaluation) {
        let mut screen = self.screen();
        let Some(explain) = screen.explain.as_mut() else {
            return;
        };
        let lines = explain.lines(record, evaluation);
        if !lines.is_empty() {
            screen.note(|| {
                for line in lines {
                    eprintln!("{line}");
                }
            });
        }
    }

    fn progress(&self, counts: &Counts) {
        if let Some(progress) = &self.screen().progress {
            progress.update(counts.files, counts.records, counts.signal_count());
        }
    }
}

fn list_rules(format: RulesFormat) -> ExitCode {
    match format {
        RulesFormat::Json => {
            let list: Vec<serde_json::Value> = rules::ALL
                .iter()
                .map(|rule| {
                    serde_json::json!({
                        "rule_id": rule.id,
                        "title": rule.title,
                        "severity": rule.severity,
                        "tactic": rule.tactic,
                        "technique": rule.technique,
                        "seed": rule.seed,
                        "triggers": rule.triggers.iter().map(|t| serde_json::json!({
                            "event_source": t.event_source,
                            "event_name": t.event_name,
                            "service_code": t.service_code,
                        })).collect::<Vec<_>>(),
                    })
                })
                .collect();
            println!("{}", serde_json::Value::Array(list));
        }
        RulesFormat::Eventbridge => {
            println!(
                "{}",
                serde_json::Value::Array(rules::eventbridge_patterns())
            );
        }
        RulesFormat::Table => {
            for rule in rules::ALL {
                println!("{}  {}  {}", rule.id, rule.severity.as_str(), rule.title);
                for t in rule.triggers {
                    match t.service_code {
                        Some(code) => println!(
                            "    {} {} (serviceCode {code})",
                            t.event_source, t.event_name
                        ),
                        None => println!("    {} {}", t.event_source, t.event_name),
                    }
                }
            }
        }
    }
    ExitCode::SUCCESS
}
