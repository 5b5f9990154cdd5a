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
use sesguard::output::SignalFormat;
use sesguard::output::progress::Progress;
use sesguard::output::table::{Table, escape};
use sesguard::record::Record;
use sesguard::rules;
use sesguard::s3url::S3Url;
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
    /// PATH is a file, a directory (recursed; .json, .jsonl, .ndjson and .gz files; CloudTrail
    /// digest files skipped), - for stdin, or s3://bucket/prefix. Records are evaluated in
    /// event-time order (see --reorder-window), signals printed as decided. Each file may hold
    /// EventBridge envelopes, bare records, a CloudTrail log file {"Records":[...]}, a JSON
    /// array, JSON Lines, `aws cloudtrail lookup-events` output, CloudWatch Logs
    /// filter-log-events / get-log-events output or subscription payloads, or several such
    /// documents one after the other, gzip-compressed or not.
    ///
    /// Exit status: 0 all input read; 1 some input unreadable or malformed, or a file without a
    /// CloudTrail record (everything readable still evaluated and printed); 2 usage or
    /// configuration error, or a PATH that does not exist or a directory without an input file
    /// (after everything else was scanned).
    Scan(ScanArgs),
    /// List the detections, each one's mode (live, shadow or disabled, from --config) and the
    /// API calls each one reads.
    Rules {
        /// Output format.
        #[arg(long, value_enum, default_value_t = RulesFormat::Table)]
        format: RulesFormat,
        /// The TOML file whose [rules."<id>"] tables set the modes shown (every rule is live
        /// without one).
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
    /// Every CloudTrail call (any service) by a principal, an access key or a source address,
    /// in event-time order: the triage step "what else did this caller do, what else came from
    /// this address", over any input `scan` reads.
    ///
    /// A call matches if it matches any of --principal, --access-key and --source-ip (at least
    /// one is required), and falls within --since/--until. Prints a table on a terminal, JSON
    /// Lines otherwise, then the calls per service and per region (on stderr with JSON Lines).
    /// Memory grows with the number of matching calls (a few hundred bytes each), not with the
    /// input. Exit status as for `scan`.
    Timeline(TimelineArgs),
    /// Queue the trail's existing log files for the deployed function (the S3 ingestion queue),
    /// so that the function fleet processes history in parallel with the production state.
    ///
    /// Sends one S3 object-created notification per log file under each s3:// prefix (in key
    /// order; digests and Insights files left out; --since/--until by CloudTrail's key layout),
    /// as S3 would have sent it. Running it again is harmless: the function decides each event
    /// once (by eventID), so nothing is published twice. Needs the s3 feature.
    ///
    /// Exit status: 0 every object queued; 1 some prefix could not be listed or some
    /// notification was refused; 2 usage error.
    Backfill(BackfillArgs),
    /// Check a configuration file, or check it and upload it to S3 for the deployed function.
    #[command(subcommand)]
    Config(ConfigCommand),
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Validate a configuration offline as the function does, print every problem with its
    /// entry, and list the suppressions with their expiry (expired ones, and those that expire
    /// within 14 days, flagged).
    ///
    /// SOURCE is a file or s3://bucket/key (built with --features s3).
    ///
    /// Exit status: 0 valid (expired suppressions are flagged, not errors); 2 invalid or
    /// unreadable, or a usage error.
    Check {
        #[arg(value_name = "FILE|S3_URL")]
        source: String,
    },
    /// Validate FILE, then upload it to s3://bucket/key (the object the function's
    /// SESGUARD_CONFIG names): an invalid file is never uploaded. Needs the s3 feature.
    ///
    /// Exit status: 0 uploaded; 2 invalid, unreadable, not uploaded, or a usage error.
    Push {
        #[arg(value_name = "FILE")]
        file: PathBuf,
        #[arg(value_name = "S3_URL")]
        destination: String,
    },
}

#[derive(Args)]
struct BackfillArgs {
    /// The ingestion queue's URL (the stack's TrailIngestQueueUrl output).
    #[arg(long, value_name = "URL")]
    queue: String,
    /// s3://bucket/prefix of the trail.
    #[arg(required = true, value_name = "S3_URL")]
    urls: Vec<String>,
    #[command(flatten)]
    range: TimeRange,
    /// No progress on stderr.
    #[arg(long, short)]
    quiet: bool,
}

#[derive(Args)]
#[command(group(clap::ArgGroup::new("who").required(true).multiple(true)
    .args(["principal", "access_key", "source_ip"])))]
struct TimelineArgs {
    /// Files, directories, - for stdin, or s3://bucket/prefix (built with --features s3).
    #[arg(required = true, value_name = "PATH")]
    paths: Vec<PathBuf>,
    /// The caller's ARN as CloudTrail writes it, or the principal as a signal names it (the
    /// role ARN for an assumed role: all its sessions).
    #[arg(long, value_name = "ARN")]
    principal: Option<String>,
    /// An access key id (AKIA… or ASIA…).
    #[arg(long, value_name = "ID")]
    access_key: Option<String>,
    /// A source address, a network (CIDR), or a service name as CloudTrail writes it.
    #[arg(long, value_name = "IP")]
    source_ip: Option<String>,
    #[command(flatten)]
    range: TimeRange,
    /// Output format [default: table on a terminal, else jsonl].
    #[arg(long, value_enum)]
    format: Option<Format>,
    /// No counts or summary on stderr (problems are still reported).
    #[arg(long, short)]
    quiet: bool,
}

#[derive(Args)]
struct ScanArgs {
    /// Files, directories, - for stdin, or s3://bucket/prefix (built with --features s3).
    #[arg(required = true, value_name = "PATH")]
    paths: Vec<PathBuf>,
    /// TOML file with settings and [[suppressions]] (the same file the Lambda reads).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Output format [default: table on a terminal, else jsonl].
    #[arg(long, value_enum)]
    format: Option<ScanFormat>,
    /// Write the signals to FILE instead of standard output, in the chosen format (jsonl
    /// unless --format table or ocsf).
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    output: Option<PathBuf>,
    /// Colour the table by severity: auto (when the output is a terminal and NO_COLOR is not
    /// set), always or never. The table fits the terminal's width (or $COLUMNS).
    #[arg(long, value_enum, value_name = "WHEN", default_value_t = ColorWhen::Auto)]
    color: ColorWhen,
    /// ses-enumeration-unseen-user: no signal for events less than this many days after the
    /// first event seen (a learning period) [default: 0].
    #[arg(long, value_name = "DAYS")]
    learning_days: Option<u32>,
    /// ses-enumeration-unseen-user: forget a principal not seen for this many days [default: 28].
    #[arg(long, value_name = "DAYS")]
    forget_days: Option<u32>,
    /// ses-verify-then-delete: longest time from adding an identity to deleting it [default: 60].
    #[arg(long, visible_alias = "window-minutes", value_name = "MINUTES")]
    sequence_window_minutes: Option<u32>,
    /// Rules that signal once per window (ses-discovery-long-term-key, ses-modification,
    /// ses-identity-deleted and the newer rules): repeats within this many minutes after a
    /// signal give no new one [default: 60].
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
    /// Tor exit list (one address per line, # comments): ses-modification is high severity from
    /// these addresses.
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
    #[command(flatten)]
    range: TimeRange,
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
enum ScanFormat {
    /// One signal per line, as JSON (what the Lambda publishes).
    Jsonl,
    /// A readable table.
    Table,
    /// One OCSF 1.5 Detection Finding per line, as JSON (what the Lambda publishes with
    /// SESGUARD_SIGNAL_FORMAT=ocsf).
    Ocsf,
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
        Command::Rules { format, config } => list_rules(format, config.as_deref()),
        Command::Timeline(args) => timeline(args),
        Command::Backfill(args) => backfill(args),
        Command::Config(command) => config_command(command),
    }
}

/// `config check` and `config push`.
fn config_command(command: ConfigCommand) -> ExitCode {
    let (source, destination) = match command {
        ConfigCommand::Check { source } => (source, None),
        ConfigCommand::Push { file, destination } => {
            (file.display().to_string(), Some(destination))
        }
    };
    let destination = match destination.as_deref().map(S3Url::parse) {
        None => None,
        Some(Ok(url)) if !url.prefix.is_empty() && !url.prefix.ends_with('/') => Some(url),
        Some(Ok(url)) => {
            eprintln!("sesguard: error: {url}: name the object (s3://bucket/key), not a folder");
            return ExitCode::from(2);
        }
        Some(Err(err)) => {
            eprintln!("sesguard: error: {err}");
            return ExitCode::from(2);
        }
    };
    let from_s3 = S3Url::is_s3(&source);
    let text = if from_s3 {
        match S3Url::parse(&source).and_then(|url| read_s3_text(&url)) {
            Ok(text) => text,
            Err(err) => {
                eprintln!("sesguard: error: {err}");
                return ExitCode::from(2);
            }
        }
    } else {
        match std::fs::read_to_string(&source) {
            Ok(text) => text,
            Err(err) => {
                eprintln!("sesguard: error: cannot read {source}: {err}");
                return ExitCode::from(2);
            }
        }
    };
    let report = sesguard::config_check::check(
        &text,
        std::path::Path::new(&source),
        from_s3 || destination.is_some(),
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| {
            Seconds::try_from(d.as_secs()).unwrap_or(Seconds::MAX)
        });
    for problem in &report.problems {
        eprintln!("sesguard: error: {problem}");
    }
    for entry in &report.suppressions {
        println!("{}", sesguard::config_check::describe(entry, now));
    }
    if !report.is_valid() {
        eprintln!(
            "{source}: {} problem(s); {}",
            report.problems.len(),
            if destination.is_some() {
                "not uploaded"
            } else {
                "the function would reject it"
            }
        );
        return ExitCode::from(2);
    }
    eprintln!(
        "{source}: valid, {} suppression(s)",
        report.suppressions.len()
    );
    let Some(destination) = destination else {
        return ExitCode::SUCCESS;
    };
    match write_s3_text(&destination, &text) {
        Ok(etag) => {
            eprintln!(
                "uploaded to {destination} (ETag {}); the function applies it within \
                 SESGUARD_CONFIG_REFRESH_SECONDS",
                etag.as_deref().unwrap_or("-")
            );
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("sesguard: error: {err}");
            ExitCode::from(2)
        }
    }
}

#[cfg(feature = "s3")]
fn read_s3_text(url: &S3Url) -> Result<String, String> {
    let s3 = sesguard::s3::S3::from_env().map_err(|e| e.to_string())?;
    s3.get_text(url).map_err(|e| e.to_string())
}

#[cfg(feature = "s3")]
fn write_s3_text(url: &S3Url, text: &str) -> Result<Option<String>, String> {
    let s3 = sesguard::s3::S3::from_env().map_err(|e| e.to_string())?;
    s3.put_text(url, text).map_err(|e| e.to_string())
}

#[cfg(not(feature = "s3"))]
fn read_s3_text(url: &S3Url) -> Result<String, String> {
    Err(no_s3_feature(url))
}

#[cfg(not(feature = "s3"))]
fn write_s3_text(url: &S3Url, _text: &str) -> Result<Option<String>, String> {
    Err(no_s3_feature(url))
}

#[cfg(not(feature = "s3"))]
fn no_s3_feature(url: &S3Url) -> String {
    format!(
        "{url}: this sesguard was built without S3 support. Build it with the s3 feature: \
         `cargo install --path . --features s3`"
    )
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
        ScanFormat::Table
    } else {
        ScanFormat::Jsonl
    });
    let json = match format {
        ScanFormat::Ocsf => SignalFormat::Ocsf,
        ScanFormat::Jsonl | ScanFormat::Table => SignalFormat::Sesguard,
    };
    let table = (format == ScanFormat::Table).then(|| {
        let color = match args.color {
            ColorWhen::Always => true,
            ColorWhen::Never => false,
            ColorWhen::Auto => destination.color_wanted(),
        };
        Table::new(destination.width(), color)
    });
    let (since, until) = match args.range.bounds() {
        Ok(bounds) => bounds,
        Err(code) => return code,
    };
    let mut expanded = match gather(&args.paths, since, until, args.quiet) {
        Ok(expanded) => expanded,
        Err(code) => return code,
    };
    if !args.input_order {
        file_order::by_first_event(&mut expanded.sources);
    }
    let progress = (!args.quiet && io::stderr().is_terminal()).then(|| {
        let sizes: Vec<u64> = expanded
            .sources
            .iter()
            .map(|source| match source {
                Source::Stdin | Source::Remote(_) => 0,
                Source::File(path) => std::fs::metadata(path).map_or(0, |m| m.len()),
            })
            .collect();
        Progress::new(&sizes)
    });
    let sink = Terminal(Mutex::new(Screen {
        out: BufWriter::with_capacity(64 * 1024, destination.into_writer()),
        table,
        json,
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
            .between(since, until)
            .max_record_bytes(usize::try_from(args.max_record_bytes).unwrap_or(usize::MAX))
            .reorder_window(
                (!args.input_order).then(|| Seconds::from(args.reorder_window) * MINUTE),
            ),
        Err(err) => {
            eprintln!("sesguard: error: cannot start: {err}");
            return ExitCode::from(2);
        }
    };
    for error in expanded.errors {
        scanner.report(error);
    }
    scanner.digests_skipped(expanded.digests);
    let result = scanner.scan(&expanded.sources);
    if let Some(peak) = scanner.reorder_peak() {
        tracing::info!(
            records = peak.records,
            bytes = peak.bytes,
            "reorder buffer peak"
        );
    }
    // Named last, where they are seen: the rest was scanned all the same.
    for error in expanded.missing {
        scanner.missing(error);
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
    if stats.missing > 0 {
        ExitCode::from(2)
    } else if stats.clean() {
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
    /// The table's layout and colours; `None` prints JSON Lines …
    table: Option<Table>,
    /// … in this format.
    json: SignalFormat,
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
            None => writeln!(self.out, "{}", self.json.render(signal)),
            Some(table) => self.out.write_all(table.signal(signal).as_bytes()),
        }
    }
}

impl<W: Write + Send> Sink for Terminal<W> {
    async fn emit(&self, signal: &Signal) -> Result<(), SinkError> {
        Ok(self.screen().signal(signal)?)
    }

    /// Printed with their mark (`shadow` in the table, `"shadow": true` in JSON Lines).
    fn takes_shadow(&self) -> bool {
        true
    }

    fn problem(&self, error: &InputError) {
        self.screen().note(|| eprintln!("sesguard: {error}"));
    }

    fn not_cloudtrail(&self, position: &input::Position, found: &str, count: u64) {
        self.screen().note(|| match count {
            1 => eprintln!("sesguard: {position}: skipped, not a CloudTrail record: {found}"),
            _ => eprintln!(
                "sesguard: {position}: skipped {} objects that are not CloudTrail records, the \
                 first {found}",
                text::thousands(count)
            ),
        });
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

fn list_rules(format: RulesFormat, config: Option<&std::path::Path>) -> ExitCode {
    let config = match Config::load(config, &Overrides::default()) {
        Ok(config) => config,
        Err(err) => {
            eprintln!("sesguard: error: {err}");
            return ExitCode::from(2);
        }
    };
    let mode = |id: &str| config.modes.of(id).as_str();
    match format {
        RulesFormat::Json => {
            let list: Vec<serde_json::Value> = rules::ALL
                .iter()
                .map(|rule| {
                    serde_json::json!({
                        "rule_id": rule.id,
                        "title": rule.title,
                        "severity": rule.severity,
                        "mode": mode(rule.id),
                        "tactic": rule.tactic,
                        "technique": rule.technique,
                        "seed": rule.seed,
                        "triggers": rule.triggers.iter().map(|t| serde_json::json!({
                            "event_source": t.event_source,
                            "event_name": t.event_name,
                            "service_code": t.service_code,
                            "eventbridge_narrowing": t.narrowing.map(|n| n.pattern()),
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
                println!(
                    "{}  {}  {}  {}",
                    rule.id,
                    rule.severity.as_str(),
                    mode(rule.id),
                    rule.title
                );
                for t in rule.triggers {
                    match t.service_code {
                        Some(code) => println!(
                            "    {} {} (serviceCode {code})",
                            t.event_source, t.event_name
                        ),
                        None => println!("    {} {}", t.event_source, t.event_name),
                    }
                    if let Some(narrowing) = t.narrowing {
                        println!(
                            "        forwarded only where requestParameters.{} may grant it",
                            narrowing.field
                        );
                    }
                }
            }
            // Not rules (no CloudTrail call triggers them): the function's heartbeat gives them.
            println!();
            println!("pipeline signals (the function's heartbeat, not rules):");
            for (id, severity, title) in sesguard::heartbeat::SIGNALS {
                println!("{id}  {}  {title}", severity.as_str());
            }
        }
    }
    ExitCode::SUCCESS
}

fn timeline(args: TimelineArgs) -> ExitCode {
    use sesguard::timeline::{self, Address, Query, Tally, Timeline};
    let (since, until) = match args.range.bounds() {
        Ok(bounds) => bounds,
        Err(code) => return code,
    };
    let query = Query {
        principal: args.principal,
        access_key: args.access_key,
        source: args.source_ip.as_deref().map(Address::parse),
        since,
        until,
    };
    let mut collector = Timeline::new(query);
    let expanded = match gather(&args.paths, since, until, args.quiet) {
        Ok(expanded) => expanded,
        Err(code) => return code,
    };
    for source in &expanded.sources {
        input::read_source(source, &mut collector);
    }
    let records = collector.records();
    let (calls, errors) = collector.into_calls();
    let mut problems = 0u64;
    for error in expanded
        .errors
        .iter()
        .chain(&errors)
        .chain(&expanded.missing)
    {
        problems += 1;
        eprintln!("sesguard: {error}");
    }
    let sources = expanded.sources;
    let format = args.format.unwrap_or(if io::stdout().is_terminal() {
        Format::Table
    } else {
        Format::Jsonl
    });
    let tally = Tally::of(&calls);
    let mut out = BufWriter::new(io::stdout().lock());
    let written = (|| -> io::Result<()> {
        match format {
            Format::Table => {
                writeln!(out, "{}", timeline::table_header())?;
                for call in &calls {
                    writeln!(out, "{}", timeline::table_row(call))?;
                }
                if !calls.is_empty() {
                    for line in tally.lines() {
                        writeln!(out, "{line}")?;
                    }
                }
            }
            Format::Jsonl => {
                for call in &calls {
                    let line = serde_json::to_string(call).map_err(io::Error::other)?;
                    writeln!(out, "{line}")?;
                }
            }
        }
        out.flush()
    })();
    if let Err(err) = written
        && err.kind() != io::ErrorKind::BrokenPipe
    {
        eprintln!("sesguard: error: cannot write output: {err}");
        return ExitCode::from(1);
    }
    if !args.quiet {
        if format == Format::Jsonl && !calls.is_empty() {
            for line in tally.lines() {
                eprintln!("sesguard: {line}");
            }
        }
        let noun = if calls.len() == 1 { "call" } else { "calls" };
        eprintln!(
            "sesguard: {} files, {} records read, {} matching {noun}, {problems} problems",
            sources.len(),
            text::thousands(records),
            calls.len()
        );
    }
    if !expanded.missing.is_empty() {
        ExitCode::from(2)
    } else if problems == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// `--since` and `--until`, shared by `scan`, `timeline` and `backfill`.
#[derive(Args)]
struct TimeRange {
    /// Only events at or after this event time (a UTC date, meaning its midnight, or an RFC
    /// 3339 time); S3 objects of days that cannot hold one are not read (CloudTrail's key layout).
    #[arg(long, value_name = "DATE")]
    since: Option<String>,
    /// Only events before this event time (a UTC date, meaning its midnight, or an RFC 3339 time).
    #[arg(long, value_name = "DATE")]
    until: Option<String>,
}

impl TimeRange {
    /// The bounds as event-time seconds; a bad one is a usage error (exit 2).
    fn bounds(&self) -> Result<(Option<Seconds>, Option<Seconds>), ExitCode> {
        let parse = |text: &Option<String>, flag: &str| match text {
            None => Ok(None),
            Some(text) => sesguard::time::parse_date_or_time(text)
                .map(Some)
                .map_err(|e| format!("{flag}: {e}")),
        };
        match (parse(&self.since, "--since"), parse(&self.until, "--until")) {
            (Ok(since), Ok(until)) => Ok((since, until)),
            (Err(err), _) | (_, Err(err)) => {
                eprintln!("sesguard: error: {err}");
                Err(ExitCode::from(2))
            }
        }
    }
}

/// The inputs the arguments name, in argument order: local paths expanded, `s3://` prefixes
/// listed in key order. A prefix that cannot be listed is a problem naming it (the rest is
/// still read); an `s3://` argument to a build without S3 support is a usage error.
fn gather(
    paths: &[PathBuf],
    since: Option<Seconds>,
    until: Option<Seconds>,
    quiet: bool,
) -> Result<input::Expanded, ExitCode> {
    let mut out = input::Expanded::default();
    let mut s3 = None;
    for path in paths {
        let arg = path.to_string_lossy();
        if !S3Url::is_s3(&arg) {
            let found = input::expand_all(std::slice::from_ref(path));
            out.sources.extend(found.sources);
            out.errors.extend(found.errors);
            out.missing.extend(found.missing);
            out.digests += found.digests;
            continue;
        }
        let url = match S3Url::parse(&arg) {
            Ok(url) => url,
            Err(err) => {
                eprintln!("sesguard: error: {err}");
                return Err(ExitCode::from(2));
            }
        };
        list_s3(&url, since, until, quiet, &mut s3, &mut out)?;
    }
    Ok(out)
}

#[cfg(feature = "s3")]
fn list_s3(
    url: &S3Url,
    since: Option<Seconds>,
    until: Option<Seconds>,
    quiet: bool,
    client: &mut Option<sesguard::s3::S3>,
    out: &mut input::Expanded,
) -> Result<(), ExitCode> {
    if client.is_none() {
        match sesguard::s3::S3::from_env() {
            Ok(s3) => *client = Some(s3),
            Err(err) => {
                eprintln!("sesguard: error: {err}");
                return Err(ExitCode::from(2));
            }
        }
    }
    let Some(s3) = client.as_ref() else {
        return Err(ExitCode::from(2));
    };
    let name: std::sync::Arc<str> = std::sync::Arc::from(url.to_string());
    match s3.list(url, since, until) {
        // Like a folder with no input file: the user named the wrong thing (exit 2).
        Ok(listing) if listing.objects.is_empty() => out.missing.push(InputError::unreadable(
            input::Position::file(&name),
            format!(
                "no CloudTrail log file under this prefix ({} other objects, {} of days outside \
                 --since/--until)",
                listing.not_logs, listing.outside_dates
            ),
        )),
        Ok(listing) => {
            if !quiet {
                let bytes: u64 = listing.objects.iter().map(|o| o.size).sum();
                eprintln!(
                    "sesguard: {url}: {} log files, {} bytes ({} other objects and {} of days \
                     outside --since/--until skipped)",
                    listing.objects.len(),
                    text::thousands(bytes),
                    listing.not_logs,
                    listing.outside_dates
                );
            }
            out.digests += listing.digests;
            out.sources
                .extend(listing.objects.iter().map(|o| s3.source(o)));
        }
        Err(err) => out.errors.push(InputError::unreadable(
            input::Position::file(&name),
            err.to_string(),
        )),
    }
    Ok(())
}

#[cfg(not(feature = "s3"))]
fn list_s3(
    url: &S3Url,
    _: Option<Seconds>,
    _: Option<Seconds>,
    _: bool,
    _: &mut Option<()>,
    _: &mut input::Expanded,
) -> Result<(), ExitCode> {
    eprintln!(
        "sesguard: error: {url}: this sesguard was built without S3 support. Build it with the \
         s3 feature: `cargo install --path . --features s3` (or `cargo run --release --features \
         s3 -- scan {url}`)"
    );
    Err(ExitCode::from(2))
}

#[cfg(feature = "s3")]
fn backfill(args: BackfillArgs) -> ExitCode {
    let (since, until) = match args.range.bounds() {
        Ok(bounds) => bounds,
        Err(code) => return code,
    };
    let mut urls = Vec::new();
    for arg in &args.urls {
        match S3Url::parse(arg) {
            Ok(url) => urls.push(url),
            Err(err) => {
                eprintln!("sesguard: error: {err}");
                return ExitCode::from(2);
            }
        }
    }
    let s3 = match sesguard::s3::S3::from_env() {
        Ok(s3) => s3,
        Err(err) => {
            eprintln!("sesguard: error: {err}");
            return ExitCode::from(2);
        }
    };
    let mut failed = false;
    let (mut total_objects, mut total_bytes) = (0u64, 0u64);
    for url in &urls {
        let listing = match s3.list(url, since, until) {
            Ok(listing) => listing,
            Err(err) => {
                eprintln!("sesguard: {err}");
                failed = true;
                continue;
            }
        };
        let count = listing.objects.len() as u64;
        let size: u64 = listing.objects.iter().map(|o| o.size).sum();
        let progress = !args.quiet && io::stderr().is_terminal();
        let queued = s3.queue_notifications(&args.queue, &listing.objects, |sent, bytes| {
            if progress {
                eprint!(
                    "\r\x1b[Ksesguard: {url}: {} of {} log files queued ({} of {} bytes)",
                    text::thousands(sent),
                    text::thousands(count),
                    text::thousands(bytes),
                    text::thousands(size)
                );
            }
        });
        if progress {
            eprint!("\r\x1b[K");
        }
        match queued {
            Ok(refused) => {
                for (object, why) in &refused {
                    eprintln!("sesguard: {}: refused by the queue: {why}", object.url());
                }
                failed |= !refused.is_empty();
                let refused_bytes: u64 = refused.iter().map(|(o, _)| o.size).sum();
                let sent = count - refused.len() as u64;
                total_objects += sent;
                total_bytes += size - refused_bytes;
                if !args.quiet {
                    eprintln!(
                        "sesguard: {url}: {} log files ({} bytes) queued; {} other objects and {} \
                         of days outside --since/--until skipped",
                        text::thousands(sent),
                        text::thousands(size - refused_bytes),
                        listing.not_logs,
                        listing.outside_dates
                    );
                }
            }
            Err(err) => {
                eprintln!("sesguard: {err}");
                failed = true;
            }
        }
    }
    println!(
        "{} log files, {} bytes queued to {}",
        text::thousands(total_objects),
        text::thousands(total_bytes),
        args.queue
    );
    if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

#[cfg(not(feature = "s3"))]
fn backfill(args: BackfillArgs) -> ExitCode {
    eprintln!(
        "sesguard: error: backfill reads S3, and this sesguard was built without S3 support. \
         Build it with the s3 feature: `cargo install --path . --features s3` (queue: {})",
        args.queue
    );
    ExitCode::from(2)
}
