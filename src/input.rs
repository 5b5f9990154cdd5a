//! Input readers: files, directories and stdin, in every shape CloudTrail records travel in.
//!
//! Auto-detected per file: an EventBridge envelope (`detail` holds the record), a bare record, a
//! CloudTrail log file `{"Records":[...]}`, a JSON array of records or envelopes, JSON Lines of any
//! of these, and any of them gzip-compressed (detected by magic bytes, not by name).
//!
//! Memory is bounded by `--max-record-bytes` (16 MiB by default), never by the size of the input,
//! of a line or of a value. A line up to [`STREAM_LINES_OVER`] (or `--max-record-bytes`, if
//! larger) is read whole and split in one pass ([`split`]), the fast path for CloudTrail's
//! one-line log files. A longer line, and pretty-printed documents, are read piece by piece
//! (`input/stream.rs`): record by record, each at most `--max-record-bytes`. A record larger
//! than that is reported and skipped without being held. Nothing grows with the number of
//! records: a line keeps the spans of at most 65,536 records, beyond which they are found again
//! one by one, and arrays are read element by element.
//!
//! Malformed input is reported with its position and skipped; reading goes on wherever the
//! format allows (the next line in JSON Lines, the next record in an array, the next file).

use std::fmt;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Chain, Cursor, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use flate2::bufread::MultiGzDecoder;
use memchr::memmem;
use serde::Deserialize;
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess};
use serde_json::value::RawValue;

use crate::record::Envelope;
use crate::text::{describe, json_kind, thousands, truncate};

mod shape;
pub mod split;
mod stream;

pub use shape::NotCloudTrail;

use split::Split;
use stream::{Mode, Stream};

const BUFFER: usize = 256 * 1024;
const BOM: &[u8] = b"\xEF\xBB\xBF";
const GZIP_MAGIC: &[u8] = &[0x1f, 0x8b];
/// The default of `--max-record-bytes`: CloudTrail records are a few kilobytes (EventBridge,
/// which delivers them to the Lambda, caps an event at 256 KB), so anything this large is not one.
pub const DEFAULT_MAX_RECORD_BYTES: usize = 16 << 20;
/// Lines up to this size (or `--max-record-bytes`, if larger) are read whole; longer ones are
/// read piece by piece. CloudTrail's log files are one line each, a few megabytes at most.
pub const STREAM_LINES_OVER: usize = 16 << 20;
/// A log file line's record spans are kept for up to this many records; beyond, its records
/// are found again one by one (a second pass, for hostile lines only).
const MOST_SPANS: usize = 1 << 16;
/// File name endings read when a directory is scanned (explicit file arguments are always read).
pub const SCANNED_SUFFIXES: &[&str] = &[".json", ".jsonl", ".ndjson", ".gz"];

/// Where a record or an error sits in the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Position {
    pub file: Arc<str>,
    /// 1-based line: set for JSON Lines and for syntax errors.
    pub line: Option<u64>,
    pub column: Option<u64>,
    /// 1-based top-level value, for documents that hold several pretty-printed values.
    pub value: Option<u64>,
    /// 1-based index inside a `Records` list or a JSON array.
    pub record: Option<u64>,
}

impl Position {
    pub fn file(file: &Arc<str>) -> Self {
        Position {
            file: file.clone(),
            line: None,
            column: None,
            value: None,
            record: None,
        }
    }

    fn with_record(&self, index: usize) -> Self {
        Position {
            record: Some(index as u64 + 1),
            ..self.clone()
        }
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.file)?;
        let mut sep = ": ";
        let mut part = |f: &mut fmt::Formatter<'_>, name: &str, n: Option<u64>| {
            if let Some(n) = n {
                write!(f, "{sep}{name} {n}")?;
                sep = ", ";
            }
            Ok(())
        };
        part(f, "line", self.line)?;
        part(f, "column", self.column)?;
        part(f, "value", self.value.filter(|v| *v > 1))?;
        part(f, "record", self.record)
    }
}

/// Input that could not be read or understood, with where it was.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{position}: {message}")]
pub struct InputError {
    pub position: Position,
    pub message: String,
    /// True when the input could not be read at all (open or I/O failure), false when it was
    /// read but is not valid input.
    pub unreadable: bool,
}

impl InputError {
    pub fn new(position: Position, message: impl Into<String>) -> Self {
        InputError {
            position,
            message: message.into(),
            unreadable: false,
        }
    }

    pub fn unreadable(position: Position, message: impl Into<String>) -> Self {
        InputError {
            unreadable: true,
            ..Self::new(position, message)
        }
    }
}

/// Receives what a reader finds, in input order.
pub trait Visitor {
    /// One CloudTrail record (already unwrapped from its envelope), as JSON text.
    fn record(&mut self, json: &str, position: &Position);
    /// Input that was skipped.
    fn error(&mut self, error: InputError);
    /// An object that is not a CloudTrail record (none of `eventName`, `eventSource`,
    /// `eventTime`), skipped: not malformed input, but worth telling (see `input/shape.rs`).
    fn not_cloudtrail(&mut self, _found: NotCloudTrail, _position: &Position) {}
    /// Whether CloudTrail log files are split with [`split::records`] (one pass) rather than
    /// read with serde_json (two); the records and problems are the same either way. False
    /// only to compare the two (tests).
    #[cfg(any(test, feature = "testing"))]
    fn split_log_files(&self) -> bool {
        true
    }
    /// Whether regular files are mapped into memory ([`read_source`]) rather than read into a
    /// buffer; the records and problems are the same either way. Off unless asked for: a file
    /// truncated while it is mapped ends the process (SIGBUS).
    fn map_files(&self) -> bool {
        false
    }
    /// Records (or array items) larger than this many bytes are reported and skipped, without
    /// being held in memory (`sesguard scan --max-record-bytes`).
    fn max_record_bytes(&self) -> usize {
        DEFAULT_MAX_RECORD_BYTES
    }
    /// Whether the next problem would be reported in full. A visitor that shows only so many
    /// (the CLI: the first few of each file) answers false after them, and readers then call
    /// [`Visitor::error_not_shown`] instead of building the error: a hostile file can hold
    /// millions.
    fn shows_errors(&self) -> bool {
        true
    }
    /// Malformed input found while [`Visitor::shows_errors`] is false: counted, not described.
    fn error_not_shown(&mut self) {}
    /// Lines longer than this are read piece by piece, as the longest ones are; `None` for the
    /// default ([`STREAM_LINES_OVER`]). Only to read ordinary input both ways (tests).
    #[cfg(any(test, feature = "testing"))]
    fn stream_lines_over(&self) -> Option<usize> {
        None
    }
}

/// Reports malformed input at `position`; the message is built only when it is shown.
fn malformed(visitor: &mut impl Visitor, position: &Position, message: impl FnOnce() -> String) {
    if visitor.shows_errors() {
        visitor.error(InputError::new(position.clone(), message()));
    } else {
        visitor.error_not_shown();
    }
}

/// The problem with a record of `size` bytes over the limit.
fn too_large(size: u64, max: usize) -> String {
    format!(
        "record of {} bytes is larger than --max-record-bytes ({}): skipped",
        thousands(size),
        thousands(max as u64)
    )
}

/// Lines longer than this are read piece by piece: at least the largest record allowed, so a
/// line read piece by piece holds no record that could be read.
fn stream_lines_over(visitor: &impl Visitor) -> usize {
    #[cfg(any(test, feature = "testing"))]
    if let Some(bytes) = visitor.stream_lines_over() {
        return bytes;
    }
    visitor.max_record_bytes().max(STREAM_LINES_OVER)
}

/// Whether `visitor` wants log files split in one pass (always, outside tests).
#[cfg(any(test, feature = "testing"))]
fn splits(visitor: &impl Visitor) -> bool {
    visitor.split_log_files()
}

#[cfg(not(any(test, feature = "testing")))]
fn splits(_: &impl Visitor) -> bool {
    true
}

/// A named input: a file, standard input, or a stream opened on demand (an S3 object).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Stdin,
    File(PathBuf),
    Remote(Remote),
}

impl Source {
    pub fn name(&self) -> Arc<str> {
        match self {
            Source::Stdin => Arc::from("<stdin>"),
            Source::File(path) => Arc::from(path.display().to_string()),
            Source::Remote(remote) => remote.name.clone(),
        }
    }
}

/// Opens a remote input's stream; called on the thread that reads it.
pub type Open = dyn Fn() -> io::Result<Box<dyn Read + Send>> + Send + Sync;

/// An input read as a stream opened when its turn comes (the core knows no AWS: the CLI's S3
/// support builds these).
#[derive(Clone)]
pub struct Remote {
    /// What problems name (`s3://bucket/key`).
    pub name: Arc<str>,
    pub open: Arc<Open>,
}

impl fmt::Debug for Remote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Remote").field("name", &self.name).finish()
    }
}

/// Remote inputs are the same input when they have the same name.
impl PartialEq for Remote {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

impl Eq for Remote {}

/// What command-line paths expand to.
#[derive(Debug, Default)]
pub struct Expanded {
    pub sources: Vec<Source>,
    /// Entries that could not be listed (an unreadable directory).
    pub errors: Vec<InputError>,
    /// Paths that do not exist, and directories holding no input file: the user named the
    /// wrong thing (the CLI exits with 2 after scanning the rest).
    pub missing: Vec<InputError>,
    /// CloudTrail digest files (`…_CloudTrail-Digest_…`), skipped by name.
    pub digests: u64,
}

/// Expands command-line paths into sources: `-` is stdin, directories are walked recursively
/// with entries in name order (CloudTrail's file names sort by time), hidden entries and files
/// that are not `.json`, `.jsonl`, `.ndjson` or `.gz` skipped.
pub fn expand(paths: &[PathBuf]) -> (Vec<Source>, Vec<InputError>) {
    let Expanded {
        sources,
        mut errors,
        missing,
        ..
    } = expand_all(paths);
    errors.extend(missing);
    (sources, errors)
}

/// [`expand`], telling paths that do not exist from unreadable ones, and skipping CloudTrail
/// digest files (a trail's folder holds one an hour beside its log files).
pub fn expand_all(paths: &[PathBuf]) -> Expanded {
    let mut out = Expanded::default();
    let name_of = |path: &Path| -> Arc<str> { Arc::from(path.display().to_string()) };
    for path in paths {
        if path.as_os_str() == "-" {
            out.sources.push(Source::Stdin);
            continue;
        }
        if !path.exists() {
            // `exists` follows links: a dangling link is missing too.
            out.missing.push(InputError::unreadable(
                Position::file(&name_of(path)),
                "no such file or directory",
            ));
            continue;
        }
        if !path.is_dir() {
            if is_digest(path) {
                out.digests += 1;
            } else {
                // Readability is checked when the file is opened, so the error names the cause.
                out.sources.push(Source::File(path.clone()));
            }
            continue;
        }
        let found_before = (out.sources.len(), out.digests, out.errors.len());
        let walk = walkdir::WalkDir::new(path)
            .follow_links(true)
            .sort_by_file_name()
            .into_iter()
            .filter_entry(|e| e.depth() == 0 || !is_hidden(e.file_name()));
        for entry in walk {
            match entry {
                Ok(entry) if entry.file_type().is_file() && is_scanned(entry.path()) => {
                    if is_digest(entry.path()) {
                        out.digests += 1;
                    } else {
                        out.sources.push(Source::File(entry.into_path()));
                    }
                }
                Ok(_) => {}
                Err(err) => {
                    let at = err.path().unwrap_or(path);
                    out.errors.push(InputError::unreadable(
                        Position::file(&name_of(at)),
                        err.to_string(),
                    ));
                }
            }
        }
        if (out.sources.len(), out.digests, out.errors.len()) == found_before {
            out.missing.push(InputError::unreadable(
                Position::file(&name_of(path)),
                "no input file in this directory (read: .json, .jsonl, .ndjson and .gz files; \
                 hidden entries are skipped)",
            ));
        }
    }
    out
}

/// A CloudTrail digest file, by the name CloudTrail gives it
/// (`111122223333_CloudTrail-Digest_us-east-1_trail_us-east-1_20260302T090000Z.json.gz`).
fn is_digest(path: &Path) -> bool {
    path.file_name()
        .is_some_and(|name| name.to_string_lossy().contains("_CloudTrail-Digest_"))
}

fn is_hidden(name: &std::ffi::OsStr) -> bool {
    name.to_string_lossy().starts_with('.')
}

fn is_scanned(path: &Path) -> bool {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    SCANNED_SUFFIXES.iter().any(|s| name.ends_with(s))
}

/// Regular files of this size range are mapped rather than read (when the visitor allows it):
/// their bytes are scanned where the page cache holds them, with no copy into a buffer. Below
/// it the mapping costs more than the copy; above it, the mapped pages a scan touches would
/// count in its resident memory up to the file's size, where reading needs one line's buffer.
const MAP_AT_LEAST: u64 = 64 * 1024;
const MAP_AT_MOST: u64 = KEPT_BUFFER as u64;

/// Reads one source to the end, reporting records and errors to `visitor`.
pub fn read_source(source: &Source, visitor: &mut impl Visitor) {
    let name = source.name();
    match source {
        Source::Stdin => read_stream(&name, io::stdin().lock(), visitor),
        Source::File(path) => match File::open(path) {
            Ok(file) => match map(&file, visitor.map_files()) {
                Some(mapped) => read_bytes(&name, &mapped, visitor),
                None => read_stream(&name, file, visitor),
            },
            Err(err) => visitor.error(InputError::unreadable(
                Position::file(&name),
                format!("cannot open: {err}"),
            )),
        },
        Source::Remote(remote) => match (remote.open)() {
            Ok(reader) => read_stream(&name, reader, visitor),
            Err(err) => visitor.error(InputError::unreadable(
                Position::file(&name),
                format!("cannot read: {err}"),
            )),
        },
    }
}

/// A read-only mapping of `file`, if it is a regular file worth mapping; `None` reads it instead
/// (also when mapping fails: reading reports any real problem with the file).
fn map(file: &File, allowed: bool) -> Option<memmap2::Mmap> {
    if !allowed {
        return None;
    }
    let metadata = file.metadata().ok()?;
    if !metadata.is_file() || !(MAP_AT_LEAST..=MAP_AT_MOST).contains(&metadata.len()) {
        return None;
    }
    // SAFETY: the mapping is read-only, private to this read and dropped with it, and Rust sees
    // it only as `&[u8]`. What the type system cannot rule out is another process changing the
    // file meanwhile: new bytes would only be read as they are (UTF-8 and JSON are still
    // checked), but a truncation makes the lost pages raise SIGBUS, which ends the process.
    // CloudTrail log files are written once and never change; `sesguard scan --no-mmap` reads
    // files instead, for inputs that may be truncated while scanned.
    match unsafe { memmap2::Mmap::map(file) } {
        Ok(mapped) => Some(mapped),
        Err(err) => {
            tracing::debug!(error = %err, "cannot map the file; reading it");
            None
        }
    }
}

/// Reads a whole input held in memory (a mapped file) that may be gzip-compressed.
pub fn read_bytes(name: &Arc<str>, bytes: &[u8], visitor: &mut impl Visitor) {
    if bytes.starts_with(GZIP_MAGIC) {
        let inflated = BufReader::with_capacity(BUFFER, MultiGzDecoder::new(bytes));
        read_text(name, inflated, visitor);
    } else {
        let text = bytes.strip_prefix(BOM).unwrap_or(bytes);
        read_lines(name, Lines::borrowed(text), visitor);
    }
}

/// Reads a stream that may be gzip-compressed.
pub fn read_stream(name: &Arc<str>, reader: impl Read, visitor: &mut impl Visitor) {
    let raw = match peek(BufReader::with_capacity(BUFFER, reader), GZIP_MAGIC.len()) {
        Ok(raw) => raw,
        Err(err) => {
            visitor.error(InputError::unreadable(
                Position::file(name),
                format!("cannot read: {err}"),
            ));
            return;
        }
    };
    if raw.get_ref().0.get_ref().starts_with(GZIP_MAGIC) {
        let inflated = BufReader::with_capacity(BUFFER, MultiGzDecoder::new(raw));
        read_text(name, inflated, visitor);
    } else {
        read_text(name, raw, visitor);
    }
}

/// Reads uncompressed text: JSON Lines when the first non-blank line is a whole JSON value (or is
/// broken beyond repair), else a stream of (pretty-printed) JSON documents.
fn read_text(name: &Arc<str>, reader: impl BufRead, visitor: &mut impl Visitor) {
    let reader = match peek(reader, BOM.len()) {
        Ok(mut reader) => {
            let (head, _) = reader.get_mut();
            if head.get_ref() == BOM {
                head.set_position(BOM.len() as u64);
            }
            reader
        }
        Err(err) => {
            visitor.error(read_error(name, 1, err));
            return;
        }
    };
    read_lines(name, Lines::new(reader), visitor);
}

/// A read of `name` that failed at 1-based `line`.
fn read_error(name: &Arc<str>, line: u64, err: io::Error) -> InputError {
    let mut position = Position::file(name);
    position.line = Some(line);
    InputError::unreadable(position, format!("cannot read: {err}"))
}

/// Reads text after its byte order mark, line by line (see [`read_text`]).
fn read_lines<R: Read>(name: &Arc<str>, mut lines: Lines<'_, R>, visitor: &mut impl Visitor) {
    let limit = stream_lines_over(visitor);
    let max = visitor.max_record_bytes();
    let mut spans = Vec::new();
    let mut line_no = 0u64;
    // The first non-blank line decides: JSON Lines when it is a whole JSON value (or is broken
    // beyond repair), else (pretty-printed) documents from it on.
    loop {
        let line = match lines.next(limit) {
            Ok(Some(line)) => line,
            Ok(None) => {
                let message = if line_no == 0 {
                    "empty input: no JSON value"
                } else {
                    "blank input: no JSON value"
                };
                visitor.error(InputError::new(Position::file(name), message));
                return;
            }
            Err(err) => {
                visitor.error(read_error(name, line_no + 1, err));
                return;
            }
        };
        line_no += 1;
        match line {
            Line::Whole(range) => {
                let bytes = lines.get(&range);
                if is_blank(bytes) {
                    continue;
                }
                // A CloudTrail log file line is split (and so validated) once, here; anything
                // else is checked with serde_json.
                let (split, tried) = split_tried(bytes, &mut spans, visitor);
                if split == Split::No && starts_documents(bytes, tried, true) {
                    lines.unread(range.start);
                    let stream = Stream::new(name, Mode::Documents, line_no, max);
                    read_rest(&mut lines, stream, visitor);
                    return;
                }
                read_line(name, line_no, bytes, split, &spans, visitor);
            }
            Line::Long => {
                let mut stream = Stream::new(name, Mode::Line, line_no, max);
                if !read_long_line(name, line_no, &mut lines, &mut stream, visitor) {
                    return;
                }
                if stream.is_blank() {
                    continue;
                }
                if stream.is_incomplete() || stream.is_documents() {
                    stream.continue_as_documents();
                    read_rest(&mut lines, stream, visitor);
                    return;
                }
                stream.finish(visitor);
            }
        }
        break;
    }
    loop {
        match lines.next(limit) {
            Ok(None) => return,
            Ok(Some(Line::Whole(range))) => {
                line_no += 1;
                let bytes = lines.get(&range);
                if !is_blank(bytes) {
                    let (split, tried) = split_tried(bytes, &mut spans, visitor);
                    if split == Split::No && starts_documents(bytes, tried, false) {
                        lines.unread(range.start);
                        let stream = Stream::new(name, Mode::Documents, line_no, max);
                        read_rest(&mut lines, stream, visitor);
                        return;
                    }
                    read_line(name, line_no, bytes, split, &spans, visitor);
                }
            }
            Ok(Some(Line::Long)) => {
                line_no += 1;
                let mut stream = Stream::new(name, Mode::Line, line_no, max);
                if !read_long_line(name, line_no, &mut lines, &mut stream, visitor) {
                    return;
                }
                if stream.is_documents() || stream.is_only_opened() {
                    stream.continue_as_documents();
                    read_rest(&mut lines, stream, visitor);
                    return;
                }
                stream.finish(visitor);
            }
            Err(err) => {
                visitor.error(read_error(name, line_no + 1, err));
                return;
            }
        }
    }
}

/// One JSON Lines line held whole, `split` by [`split_log_file`] into `spans`.
fn read_line(
    name: &Arc<str>,
    line_no: u64,
    bytes: &[u8],
    split: Split,
    spans: &[std::ops::Range<usize>],
    visitor: &mut impl Visitor,
) {
    let mut position = Position::file(name);
    position.line = Some(line_no);
    match std::str::from_utf8(bytes) {
        Ok(text) => match split {
            Split::Spans => read_records(text, spans, &position, visitor),
            Split::Many => read_many_records(text, &position, visitor),
            Split::No => read_unsplit_value(text, &position, visitor),
        },
        Err(err) => visitor.error(InputError::new(
            position,
            format!(
                "invalid UTF-8 at byte {} of the line",
                err.valid_up_to() + 1
            ),
        )),
    }
}

/// Feeds the long line [`Lines::next`] announced to `stream`, to its end; false on a read error
/// (reported).
fn read_long_line<R: Read>(
    name: &Arc<str>,
    line_no: u64,
    lines: &mut Lines<'_, R>,
    stream: &mut Stream,
    visitor: &mut impl Visitor,
) -> bool {
    loop {
        match lines.piece(true) {
            Ok(Some(piece)) => stream.feed(lines.get(&piece), visitor),
            Ok(None) => return true,
            Err(err) => {
                visitor.error(read_error(name, line_no, err));
                return false;
            }
        }
    }
}

/// Pretty-printed documents: one or more top-level values, to the end of the input, read piece
/// by piece. A syntax error ends the file, since no later value can be found reliably after it.
fn read_rest<R: Read>(lines: &mut Lines<'_, R>, mut stream: Stream, visitor: &mut impl Visitor) {
    while !stream.is_skipping() {
        match lines.piece(false) {
            Ok(Some(piece)) => stream.feed(lines.get(&piece), visitor),
            Ok(None) => break,
            Err(err) => {
                visitor.error(stream.read_error(&err));
                return;
            }
        }
    }
    stream.finish(visitor);
}

/// Lines read straight into one buffer, which grows to the longest line read whole: long lines
/// (a CloudTrail log file is one) are read from the source (a file, or the inflater) with no
/// copy through an intermediate buffer. Or lines of bytes already in memory (a mapped file),
/// with no copy at all. A line longer than the limit given to [`Lines::next`] is given in
/// pieces ([`Lines::piece`]), read into the same buffer.
struct Lines<'a, R> {
    reader: R,
    buf: Bytes<'a>,
    /// Where the next line (or piece) starts, where the read bytes end, and how far `\n` was
    /// searched.
    start: usize,
    end: usize,
    searched: usize,
    eof: bool,
    /// A long line is being given in pieces.
    long: bool,
}

/// What [`Lines::next`] found.
enum Line {
    /// A line, with its `\n` (the last one may have none).
    Whole(std::ops::Range<usize>),
    /// A line longer than the limit: its pieces follow ([`Lines::piece`]).
    Long,
}

/// Where [`Lines`] finds its bytes.
enum Bytes<'a> {
    Read(Buffer),
    InMemory(&'a [u8]),
}

impl Bytes<'_> {
    fn get(&self) -> &[u8] {
        match self {
            Bytes::Read(buf) => &buf.0,
            Bytes::InMemory(bytes) => bytes,
        }
    }
}

thread_local! {
    /// The line buffer of the last file read on this thread, kept for the next one: a new file
    /// then costs no allocation, zeroing or regrowth.
    static LINE_BUFFER: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Line buffers larger than this (a file with an exceptionally long line) are not kept.
const KEPT_BUFFER: usize = 16 << 20;

/// A line buffer that goes back to [`LINE_BUFFER`] when dropped.
struct Buffer(Vec<u8>);

impl Buffer {
    fn take() -> Self {
        Buffer(LINE_BUFFER.with(|kept| std::mem::take(&mut *kept.borrow_mut())))
    }
}

impl Drop for Buffer {
    fn drop(&mut self) {
        if self.0.len() <= KEPT_BUFFER {
            let buf = std::mem::take(&mut self.0);
            LINE_BUFFER.with(|kept| *kept.borrow_mut() = buf);
        }
    }
}

impl<'a> Lines<'a, io::Empty> {
    /// The lines of `bytes`.
    fn borrowed(bytes: &'a [u8]) -> Self {
        Lines {
            reader: io::empty(),
            buf: Bytes::InMemory(bytes),
            start: 0,
            end: bytes.len(),
            searched: 0,
            eof: true,
            long: false,
        }
    }
}

impl<R: Read> Lines<'_, R> {
    fn new(reader: R) -> Self {
        Lines {
            reader,
            buf: Bytes::Read(Buffer::take()),
            start: 0,
            end: 0,
            searched: 0,
            eof: false,
            long: false,
        }
    }

    fn get(&self, line: &std::ops::Range<usize>) -> &[u8] {
        &self.buf.get()[line.clone()]
    }

    /// The next line, or [`Line::Long`] when it is longer than `limit` bytes; `None` at the
    /// end. A range is valid until the next call.
    fn next(&mut self, limit: usize) -> io::Result<Option<Line>> {
        // The pieces of a long line nobody read are skipped.
        while self.piece(true)?.is_some() {}
        loop {
            if let Some(at) = memchr::memchr(b'\n', &self.buf.get()[self.searched..self.end]) {
                let end = self.searched + at + 1;
                if end - self.start > limit {
                    return Ok(Some(self.long_line()));
                }
                let line = self.start..end;
                self.start = end;
                self.searched = end;
                return Ok(Some(Line::Whole(line)));
            }
            self.searched = self.end;
            if self.end - self.start > limit {
                return Ok(Some(self.long_line()));
            }
            // In-memory bytes are all there from the start (`eof` is set).
            let (false, Bytes::Read(buf)) = (self.eof, &mut self.buf) else {
                if self.start == self.end {
                    return Ok(None);
                }
                let line = self.start..self.end;
                self.start = self.end;
                return Ok(Some(Line::Whole(line)));
            };
            let buf = &mut buf.0;
            if self.start > 0 {
                buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.searched -= self.start;
                self.start = 0;
            }
            if buf.len() - self.end < BUFFER {
                let size = (self.end + BUFFER).max(buf.len() * 2);
                buf.resize(size, 0);
            }
            match self.reader.read(&mut buf[self.end..]) {
                Ok(0) => self.eof = true,
                Ok(n) => self.end += n,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => return Err(err),
            }
        }
    }

    fn long_line(&mut self) -> Line {
        self.searched = self.start;
        self.long = true;
        Line::Long
    }

    /// The next piece of input: with `to_newline`, of the long line [`Lines::next`] announced,
    /// up to and with its `\n` (`None` after it); else of the rest of the input, lines or not
    /// (`None` at the end). Pieces are read into the buffer as it is, which does not grow.
    fn piece(&mut self, to_newline: bool) -> io::Result<Option<std::ops::Range<usize>>> {
        if to_newline && !self.long {
            return Ok(None);
        }
        loop {
            if self.start < self.end {
                let from = self.start;
                let mut to = self.end;
                if to_newline && let Some(at) = memchr::memchr(b'\n', &self.buf.get()[from..to]) {
                    to = from + at + 1;
                    self.long = false;
                }
                self.start = to;
                self.searched = to;
                return Ok(Some(from..to));
            }
            let (false, Bytes::Read(buf)) = (self.eof, &mut self.buf) else {
                self.long = false;
                return Ok(None);
            };
            // Everything read was given: read on from the start of the buffer.
            let buf = &mut buf.0;
            (self.start, self.end, self.searched) = (0, 0, 0);
            if buf.len() < BUFFER {
                buf.resize(BUFFER, 0);
            }
            match self.reader.read(buf) {
                Ok(0) => self.eof = true,
                Ok(n) => self.end = n,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => return Err(err),
            }
        }
    }

    /// Gives the bytes from `start` (where the last line returned starts) again.
    fn unread(&mut self, start: usize) {
        self.start = start;
        self.searched = start;
    }
}

/// One top-level value: a `Records` file, an array, an envelope or a bare record.
pub fn read_value(json: &str, position: &Position, visitor: &mut impl Visitor) {
    let mut spans = Vec::new();
    match split_log_file(json.as_bytes(), &mut spans, visitor) {
        Split::Spans => read_records(json, &spans, position, visitor),
        Split::Many => read_many_records(json, position, visitor),
        Split::No => read_unsplit_value(json, position, visitor),
    }
}

/// [`read_value`] for a value [`split_log_file`] declined. Arrays and log files are checked
/// whole first (one problem and no records when broken, as serde_json reads them), then read
/// element by element with nothing kept per element.
fn read_unsplit_value(json: &str, position: &Position, visitor: &mut impl Visitor) {
    let trimmed = json.trim_start();
    if trimmed.starts_with('[') {
        if let Err(err) = each_element(json, None) {
            visitor.error(InputError::new(position.clone(), describe(&err)));
            return;
        }
        let mut index = 0;
        let mut each = |item: &str| {
            read_item(item, &position.with_record(index), true, visitor);
            index += 1;
        };
        // Checked above: it cannot fail now.
        let _ = each_element(json, Some(&mut each));
        return;
    }
    if trimmed.starts_with('{') && memmem::find(json.as_bytes(), b"\"Records\"").is_some() {
        // Not split: something unusual (or malformed) that serde_json reads or reports.
        match log_file_records(json, None) {
            Ok(true) => {
                let mut index = 0;
                let mut each = |record: &str| {
                    read_item(record, &position.with_record(index), false, visitor);
                    index += 1;
                };
                let _ = log_file_records(json, Some(&mut each));
                return;
            }
            Ok(false) => {}
            Err(err) => {
                visitor.error(InputError::new(position.clone(), describe(&err)));
                return;
            }
        }
    }
    read_item(json, position, true, visitor);
}

/// Called with each element's JSON text, in order.
type Each<'e, 'a> = Option<&'e mut dyn FnMut(&'a str)>;

/// Reads the JSON array `json` as serde_json reads a `Vec<&RawValue>`, giving each element to
/// `each` instead of keeping it (without `each`, only checks it).
fn each_element<'a>(json: &'a str, each: Each<'_, 'a>) -> Result<(), serde_json::Error> {
    let mut de = serde_json::Deserializer::from_str(json);
    de::Deserializer::deserialize_seq(&mut de, List(each))?;
    de.end()
}

/// Reads `json` as serde_json reads `struct { Records: Option<Vec<&RawValue>> }` (errors and
/// all), giving each record to `each` instead of keeping it; true when `Records` is a list.
fn log_file_records<'a>(json: &'a str, each: Each<'_, 'a>) -> Result<bool, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_str(json);
    let found =
        de::Deserializer::deserialize_struct(&mut de, "LogFile", &["Records"], LogFile(each))?;
    de.end()?;
    Ok(found)
}

/// The visitors behind [`each_element`] and [`log_file_records`].
struct List<'e, 'a>(Each<'e, 'a>);
struct LogFile<'e, 'a>(Each<'e, 'a>);
struct RecordsField<'e, 'a>(Each<'e, 'a>);

#[derive(Deserialize)]
#[serde(field_identifier)]
enum Field {
    Records,
    #[serde(other)]
    Other,
}

impl<'a> de::Visitor<'a> for List<'_, 'a> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a sequence")
    }

    fn visit_seq<A: SeqAccess<'a>>(mut self, mut seq: A) -> Result<(), A::Error> {
        while let Some(element) = seq.next_element::<&'a RawValue>()? {
            if let Some(each) = self.0.as_deref_mut() {
                each(element.get());
            }
        }
        Ok(())
    }
}

impl<'a> de::Visitor<'a> for LogFile<'_, 'a> {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("struct LogFile")
    }

    fn visit_map<A: MapAccess<'a>>(mut self, mut map: A) -> Result<bool, A::Error> {
        let mut records = None;
        while let Some(field) = map.next_key::<Field>()? {
            match field {
                Field::Records if records.is_some() => {
                    return Err(de::Error::duplicate_field("Records"));
                }
                Field::Records => {
                    records = Some(map.next_value_seed(RecordsField(self.0.take()))?);
                }
                Field::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(records.unwrap_or(false))
    }
}

impl<'a> DeserializeSeed<'a> for RecordsField<'_, 'a> {
    type Value = bool;

    fn deserialize<D: de::Deserializer<'a>>(self, deserializer: D) -> Result<bool, D::Error> {
        deserializer.deserialize_option(self)
    }
}

impl<'a> de::Visitor<'a> for RecordsField<'_, 'a> {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("option")
    }

    fn visit_none<E: de::Error>(self) -> Result<bool, E> {
        Ok(false)
    }

    fn visit_unit<E: de::Error>(self) -> Result<bool, E> {
        Ok(false)
    }

    fn visit_some<D: de::Deserializer<'a>>(self, deserializer: D) -> Result<bool, D::Error> {
        deserializer.deserialize_seq(List(self.0))?;
        Ok(true)
    }
}

/// Whether `json` looks like a CloudTrail log file and [`split::records_at_most`] splits it
/// (into `spans`, or too many records for them). Such a document gives the same records as
/// serde_json's reading of it (see [`read_unsplit_value`]), in one pass instead of two.
fn split_log_file(
    json: &[u8],
    spans: &mut Vec<std::ops::Range<usize>>,
    visitor: &impl Visitor,
) -> Split {
    split_tried(json, spans, visitor).0
}

/// [`split_log_file`], and whether the text looked like a log file (so was tried).
fn split_tried(
    json: &[u8],
    spans: &mut Vec<std::ops::Range<usize>>,
    visitor: &impl Visitor,
) -> (Split, bool) {
    let start = json
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(json.len());
    if splits(visitor)
        && json.get(start) == Some(&b'{')
        && memmem::find(json, b"\"Records\"").is_some()
    {
        (split::records_at_most(json, spans, MOST_SPANS), true)
    } else {
        spans.clear();
        (Split::No, false)
    }
}

/// Whether a whole line that is no log file (`split` declined it) starts documents that go
/// on past it. The `first` line: when it is an incomplete value (a pretty-printed document) or
/// several values one after the other (`zcat a.json.gz b.json.gz` of files without a final
/// newline). A later line: when it is several values, or only `{` or `[` (a pretty-printed
/// document after JSON Lines); a later line cut short stays one bad line. Only lines `tried`
/// as log files or ending in `{` or `[` are parsed again: a JSON Lines record costs one look at
/// its last byte.
fn starts_documents(bytes: &[u8], tried: bool, first: bool) -> bool {
    let last = bytes.iter().rev().find(|b| !b.is_ascii_whitespace());
    let open_end = matches!(last, Some(b'{' | b'['));
    if !(first || tried || open_end) {
        return false;
    }
    match serde_json::from_slice::<IgnoredAny>(bytes) {
        Ok(_) => false,
        Err(err) if err.is_eof() => first || bytes.trim_ascii().len() == 1,
        // `trailing characters` at the next value's opening bracket: another document follows.
        Err(err) if err.line() == 1 && err.to_string().starts_with("trailing characters") => {
            let at = err.column().saturating_sub(1);
            matches!(bytes.get(at), Some(b'{' | b'['))
        }
        Err(_) => false,
    }
}

/// The records of a log file split by [`split_log_file`].
fn read_records(
    json: &str,
    spans: &[std::ops::Range<usize>],
    position: &Position,
    visitor: &mut impl Visitor,
) {
    for (index, span) in spans.iter().enumerate() {
        read_item(
            &json[span.clone()],
            &position.with_record(index),
            false,
            visitor,
        );
    }
}

/// The records of a log file with more than [`MOST_SPANS`], found again one by one.
fn read_many_records(json: &str, position: &Position, visitor: &mut impl Visitor) {
    let mut index = 0;
    split::for_each_record(json.as_bytes(), |span| {
        read_item(&json[span], &position.with_record(index), false, visitor);
        index += 1;
    });
}

/// One item: a record, or (where envelopes may appear) an EventBridge envelope around one, or a
/// Lambda destination record around such an envelope (what the function's on-failure queue
/// holds: replayed as it is, it gives the event it failed on). One larger than
/// `--max-record-bytes` is reported and skipped.
fn read_item(json: &str, position: &Position, may_be_envelope: bool, visitor: &mut impl Visitor) {
    read_item_in(json, position, may_be_envelope, true, visitor);
}

/// [`read_item`]; `exports` is false for a record found inside an export (not unwrapped again).
fn read_item_in(
    json: &str,
    position: &Position,
    may_be_envelope: bool,
    exports: bool,
    visitor: &mut impl Visitor,
) {
    let size = json
        .trim_matches(|c| matches!(c, ' ' | '\t' | '\n' | '\r'))
        .len();
    let max = visitor.max_record_bytes();
    if size > max {
        return malformed(visitor, position, || too_large(size as u64, max));
    }
    if may_be_envelope && memmem::find(json.as_bytes(), b"\"requestPayload\"").is_some() {
        match destination_payload(json) {
            Ok(Some(payload)) => return read_event(payload, position, true, exports, visitor),
            Ok(None) => {}
            Err(message) => return visitor.error(InputError::new(position.clone(), message)),
        }
    }
    read_event(json, position, may_be_envelope, exports, visitor);
}

/// The event a Lambda destination record (`requestContext`, `requestPayload`, …) carries;
/// `None` when the object is no destination record.
fn destination_payload(json: &str) -> Result<Option<&str>, String> {
    #[derive(Deserialize)]
    struct Destination<'a> {
        #[serde(rename = "requestContext", borrow, default)]
        request_context: Option<&'a RawValue>,
        #[serde(rename = "requestPayload", borrow, default)]
        request_payload: Option<&'a RawValue>,
    }
    match serde_json::from_str::<Destination>(json) {
        Ok(Destination {
            request_context: Some(_),
            request_payload: Some(payload),
        }) => Ok(Some(payload.get())),
        Ok(_) => Ok(None),
        Err(err) => Err(format!("Lambda destination record: {}", describe(&err))),
    }
}

/// A record, or (where envelopes may appear) an EventBridge envelope around one.
fn read_event(
    json: &str,
    position: &Position,
    may_be_envelope: bool,
    exports: bool,
    visitor: &mut impl Visitor,
) {
    if !json.trim_start().starts_with('{') {
        return malformed(visitor, position, || not_an_object(json));
    }
    let bytes = json.as_bytes();
    let envelope_like = may_be_envelope
        && (memmem::find(bytes, b"\"detail-type\"").is_some()
            || memmem::find(bytes, b"\"detail\"").is_some());
    if !envelope_like {
        read_object(json, position, exports, visitor);
        return;
    }
    match serde_json::from_str::<Envelope>(json) {
        Ok(envelope) => match unwrap_envelope(&envelope) {
            Ok(Some(detail)) => visitor.record(detail, position),
            Ok(None) => read_object(json, position, exports, visitor),
            Err(message) => visitor.error(InputError::new(position.clone(), message)),
        },
        Err(err) => visitor.error(InputError::new(
            position.clone(),
            format!("EventBridge envelope: {}", describe(&err)),
        )),
    }
}

/// Why `json`, which is no object, is no record: what it is, or that it is not JSON at all.
fn not_an_object(json: &str) -> String {
    match serde_json::from_str::<IgnoredAny>(json) {
        Ok(_) => format!(
            "expected a CloudTrail record (a JSON object), found {}",
            json_kind(json)
        ),
        Err(err) => format!(
            "not JSON ({}): expected a CloudTrail record (a JSON object)",
            describe(&err)
        ),
    }
}

/// An object: a record, or else an export to unwrap or something that is not CloudTrail.
fn read_object(json: &str, position: &Position, exports: bool, visitor: &mut impl Visitor) {
    if shape::is_record(json) {
        visitor.record(json, position);
        return;
    }
    match shape::classify(json, exports) {
        Ok(shape::Shape::Export { export, elements }) => {
            for (index, element) in elements.into_iter().enumerate() {
                let at = position.with_record(index);
                match shape::embedded(element, export) {
                    // A log group fed by an EventBridge rule holds envelopes.
                    Ok(text) => read_item_in(&text, &at, true, false, visitor),
                    Err(message) => malformed(visitor, &at, || message),
                }
            }
        }
        Ok(shape::Shape::NotCloudTrail(found)) => visitor.not_cloudtrail(found, position),
        Err(err) => malformed(visitor, position, || describe(&err)),
    }
}

/// The record inside an envelope; `None` when the object is no envelope after all.
fn unwrap_envelope<'a>(envelope: &Envelope<'a>) -> Result<Option<&'a str>, String> {
    if envelope.detail_type.is_none() && envelope.source.is_none() {
        return Ok(None);
    }
    if let Some(kind) = envelope.detail_type.as_deref()
        && !kind.ends_with("via CloudTrail")
    {
        return Err(format!(
            "unsupported EventBridge detail-type {:?}: sesguard reads CloudTrail events \
             (\"AWS API Call via CloudTrail\")",
            truncate(kind, 80)
        ));
    }
    // serde reads `"detail": null` as `None`, like a missing detail.
    match envelope.detail {
        None => Err("EventBridge envelope without a detail (missing or null)".to_owned()),
        Some(detail) if !detail.get().trim_start().starts_with('{') => Err(format!(
            "EventBridge detail must be a CloudTrail record (a JSON object), found {}",
            json_kind(detail.get())
        )),
        Some(detail) => Ok(Some(detail.get())),
    }
}

/// Reads the first `n` bytes (fewer at the end of input) and puts them back in front of the
/// rest. Unlike `fill_buf`, this waits for all `n`: a pipe may deliver one byte at a time.
fn peek<R: BufRead>(mut reader: R, n: usize) -> io::Result<Chain<Cursor<Vec<u8>>, R>> {
    let mut head = Vec::with_capacity(n);
    (&mut reader).take(n as u64).read_to_end(&mut head)?;
    Ok(Cursor::new(head).chain(reader))
}

fn is_blank(line: &[u8]) -> bool {
    line.iter().all(u8::is_ascii_whitespace)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every record and problem a reader reports, in order.
    #[derive(Default)]
    struct Seen {
        map: bool,
        /// Lines longer than this are read piece by piece; records larger than `max` skipped.
        stream_over: Option<usize>,
        max: Option<usize>,
        items: Vec<String>,
    }

    impl Visitor for Seen {
        fn record(&mut self, json: &str, position: &Position) {
            // A line read whole gives a bare record with its newline.
            let json = json.trim_matches(|c| matches!(c, ' ' | '\t' | '\n' | '\r'));
            self.items.push(format!("{position} {json}"));
        }
        fn error(&mut self, error: InputError) {
            self.items.push(format!("error {error}"));
        }
        fn map_files(&self) -> bool {
            self.map
        }
        fn max_record_bytes(&self) -> usize {
            self.max.unwrap_or(DEFAULT_MAX_RECORD_BYTES)
        }
        fn stream_lines_over(&self) -> Option<usize> {
            self.stream_over
        }
    }

    /// Gives its bytes a few at a time, as a pipe may; the read sizes cycle through `sizes`.
    struct Chunky<'a> {
        bytes: &'a [u8],
        sizes: &'a [usize],
        next: usize,
    }

    impl Read for Chunky<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let size = self.sizes[self.next % self.sizes.len()];
            self.next += 1;
            let n = size.min(buf.len()).min(self.bytes.len());
            buf[..n].copy_from_slice(&self.bytes[..n]);
            self.bytes = &self.bytes[n..];
            Ok(n)
        }
    }

    /// What the reader finds in `text`: read whole when `stream_over` is `None`, else with
    /// lines over that size read piece by piece, from reads of `sizes` bytes.
    fn seen(
        text: &[u8],
        stream_over: Option<usize>,
        sizes: &[usize],
        max: Option<usize>,
    ) -> Vec<String> {
        let mut seen = Seen {
            stream_over,
            max,
            ..Seen::default()
        };
        let name: Arc<str> = Arc::from("t.json");
        match stream_over {
            None => read_stream(&name, text, &mut seen),
            Some(_) => read_stream(
                &name,
                Chunky {
                    bytes: text,
                    sizes,
                    next: 0,
                },
                &mut seen,
            ),
        }
        seen.items
    }

    /// Reads `text` whole, then piece by piece in pieces of many sizes: the same findings.
    fn reads_alike(text: &str, max: Option<usize>) -> Vec<String> {
        let whole = seen(text.as_bytes(), None, &[], max);
        for stream_over in [0, 1, 10, 100] {
            for sizes in [&[1][..], &[2], &[3], &[7, 1, 13], &[64], &[1 << 20]] {
                let streamed = seen(text.as_bytes(), Some(stream_over), sizes, max);
                assert_eq!(
                    streamed, whole,
                    "{text:?}: lines over {stream_over} bytes streamed, reads of {sizes:?}"
                );
            }
        }
        whole
    }

    fn record(id: &str) -> String {
        format!(
            r#"{{"eventSource":"ses.amazonaws.com","eventID":"{id}","s":"q\"uo]te}}\\","u":"é\u00e9","n":[1,-2.5e3,{{"a":[true,false,null]}}],"e":{{}},"l":[]}}"#
        )
    }

    #[test]
    fn lines_read_piece_by_piece_read_exactly_as_whole_ones() {
        let (a, b, c) = (record("a"), record("b"), record("c"));
        let envelope = format!(
            r#"{{"version":"0","detail-type":"AWS API Call via CloudTrail","source":"aws.ses","detail":{a}}}"#
        );
        let destination = format!(
            r#"{{"requestContext":{{"requestId":"r"}},"requestPayload":{envelope},"responsePayload":null}}"#
        );
        let pretty = |text: &str| {
            let value: serde_json::Value = serde_json::from_str(text).expect("json");
            serde_json::to_string_pretty(&value).expect("pretty")
        };
        let log_file = format!("{{\"Records\":[{a},{b},{c}]}}");
        let many: Vec<&str> = vec!["{}"; MOST_SPANS + 3];
        let cases = [
            format!("{log_file}\n"),
            log_file.clone(),
            format!(
                " {{ \"a\" : {{\"Records\":1}} , \"Records\" : [ {a} ,\t42 , \"s\" , [1] , {{}} ] , \"z\" : [ ] }} \r\n{log_file}\r\n"
            ),
            format!("\n\n{a}\n{envelope}\n\n{destination}\n42\n\"text\"\n{{}}\n[]\nnull\n{b}"),
            format!("[{envelope}, {b} ,3,[{c}],\"x\"]\n[]\n"),
            format!(
                "{{\"Records\": null, \"eventSource\": \"ses.amazonaws.com\", \"x\": [{a}]}}\n"
            ),
            "{\"Records\":[]}\n{\"Records\" : [ ] }".to_owned(),
            format!(
                "{}\n{}\n",
                pretty(&log_file),
                pretty(&format!("[{envelope},{b}]"))
            ),
            format!("{{\"Records\": [{a},\n{b}],\n\"x\": 1}}\n{c}\n"),
            "12345".to_owned(),
            "  \n \t \n".to_owned(),
            format!("{{\"Records\":[{}]}}\n", many.join(",")),
            // Documents one after the other (`zcat` of files without a final newline), compact
            // and pretty-printed, from the first line or after JSON Lines.
            format!("{log_file}{log_file}{{\n\"Records\": [{a}]}}{b}\n{c}\n"),
            format!("{a}\n{log_file} {log_file}\n[\n{b}\n]\n{c}"),
            format!("{a}\n{{\n  \"Records\": [{b}]\n}}\n"),
        ];
        for text in &cases {
            reads_alike(text, None);
        }
        // A record over the limit is skipped and reported the same way, and so is a line.
        let limited = reads_alike(&format!("{}\n{a}\n[{a},{b}]", cases[0]), Some(a.len() - 1));
        assert!(
            limited
                .iter()
                .any(|item| item.contains("line 1, record 2: record of")
                    && item.contains("bytes is larger than --max-record-bytes")),
            "{limited:#?}"
        );
        assert_eq!(limited.len(), 3 + 1 + 2, "{limited:#?}");
    }

    #[test]
    fn documents_one_after_the_other_are_all_read_wherever_they_start() {
        let (a, b, c) = (record("a"), record("b"), record("c"));
        let log_file = format!("{{\"Records\":[{a},{b}]}}");
        let items = reads_alike(
            &format!("{log_file}{log_file}{{\n\"Records\": [{c}]}}"),
            None,
        );
        assert_eq!(
            items
                .iter()
                .map(|i| i.split(" {").next().unwrap_or(""))
                .collect::<Vec<_>>(),
            [
                "t.json: line 1, record 1",
                "t.json: line 1, record 2",
                "t.json: line 1, value 2, record 1",
                "t.json: line 1, value 2, record 2",
                "t.json: line 2, value 3, record 1",
            ]
        );
        // A later line cut short stays one bad line: the next is read.
        let items = seen(
            format!("{a}\n{{\"Records\":[{b}\n{c}\n").as_bytes(),
            None,
            &[],
            None,
        );
        assert_eq!(items.len(), 3, "{items:#?}");
        assert!(items[2].starts_with("t.json: line 3 {"), "{items:#?}");
    }

    #[test]
    fn a_broken_line_read_piece_by_piece_is_reported_where_it_breaks_and_the_next_is_read() {
        let (a, b) = (record("a"), record("b"));
        let read = |text: &str| seen(text.as_bytes(), Some(0), &[5], None);
        // A broken record: the ones before it are read, the rest of the line is not.
        let items = read(&format!("{{\"Records\":[{a},{{\"x\":tru}},{a}]}}\n{b}\n"));
        assert_eq!(items.len(), 3, "{items:#?}");
        assert!(
            items[0].starts_with("t.json: line 1, record 1 {"),
            "{items:#?}"
        );
        assert_eq!(
            items[1],
            format!(
                "error t.json: line 1, column {}, record 2: expected ident; the rest of the line is skipped",
                a.len() + 22
            )
        );
        assert!(items[2].starts_with("t.json: line 2 {"), "{items:#?}");
        // Broken structure, with its column.
        let items = read(&format!("[{a} {b}]\n{b}"));
        assert_eq!(
            items[1],
            format!(
                "error t.json: line 1, column {}: expected `,` or `]`; the rest of the line is skipped",
                a.len() + 3
            ),
            "{items:#?}"
        );
        assert_eq!(items.len(), 3, "{items:#?}");
        // A line cut short, and one of unclosed brackets: the next line is read all the same.
        for broken in ["{\"Records\":[{\"a\":1}".to_owned(), "[".repeat(100_000)] {
            let items = read(&format!("{a}\n{broken}\n{b}\n"));
            let problems: Vec<&String> = items.iter().filter(|i| i.starts_with("error")).collect();
            assert_eq!(problems.len(), 1, "{items:#?}");
            assert!(
                problems[0].starts_with("error t.json: line 2: EOF while parsing"),
                "{items:#?}"
            );
            assert!(
                items
                    .last()
                    .is_some_and(|i| i.starts_with("t.json: line 3 {")),
                "{items:#?}"
            );
        }
        // Invalid UTF-8 in a record, by its byte in the line.
        let mut bytes = format!("[{a},\"").into_bytes();
        bytes.extend_from_slice(b"\xff\"]\n");
        bytes.extend_from_slice(b.as_bytes());
        let items = seen(&bytes, Some(0), &[3], None);
        assert_eq!(
            items[1],
            format!(
                "error t.json: line 1, column {}, record 2: invalid UTF-8 at byte {} of the line; the rest of the line is skipped",
                a.len() + 4,
                a.len() + 4
            ),
            "{items:#?}"
        );
        assert_eq!(items.len(), 3, "{items:#?}");
    }

    #[test]
    fn pretty_printed_documents_are_read_record_by_record_with_their_lines() {
        let (a, b) = (record("a"), record("b"));
        let text = format!(
            "{{\n  \"Records\": [\n    {a},\n    {b}\n  ]\n}}\n{{\n\"Records\": [{a}, 7]}}\n"
        );
        let items = seen(text.as_bytes(), None, &[], None);
        assert!(
            items[0].starts_with("t.json: line 3, record 1 {"),
            "{items:#?}"
        );
        assert!(
            items[1].starts_with("t.json: line 4, record 2 {"),
            "{items:#?}"
        );
        assert!(
            items[2].starts_with("t.json: line 8, value 2, record 1 {"),
            "{items:#?}"
        );
        assert!(
            items[3].starts_with(
                "error t.json: line 8, value 2, record 2: expected a CloudTrail record"
            ),
            "{items:#?}"
        );
        assert_eq!(items.len(), 4);
        // Cut short: an error at the end, with line and column; the records before it are read.
        let cut = &text[..text.find(&b).map_or(0, |at| at + 10)];
        let items = seen(cut.as_bytes(), None, &[], None);
        assert_eq!(items.len(), 2, "{items:#?}");
        assert_eq!(
            items[1],
            "error t.json: line 4, column 14: EOF while parsing a string"
        );
    }

    fn read(path: &Path, map: bool) -> Vec<String> {
        let mut seen = Seen {
            map,
            ..Seen::default()
        };
        read_source(&Source::File(path.to_owned()), &mut seen);
        seen.items
    }

    #[test]
    fn a_mapped_file_reads_exactly_as_a_read_one() {
        let dir = tempfile::tempdir().expect("tempdir");
        let record = |i: usize| {
            format!(
                r#"{{"eventSource":"ses.amazonaws.com","eventName":"ListIdentities","eventID":"{i}","pad":"{}"}}"#,
                "x".repeat(i % 300)
            )
        };
        let log_file = |from: usize| {
            let records: Vec<String> = (from..from + 400).map(record).collect();
            format!("{{\"Records\":[{}]}}", records.join(","))
        };
        let pretty = {
            let value: serde_json::Value = serde_json::from_str(&log_file(0)).expect("json");
            serde_json::to_string_pretty(&value).expect("pretty")
        };
        let mut broken_utf8 = format!("{}\n", log_file(0)).into_bytes();
        broken_utf8.extend_from_slice(b"{\"Records\":[\"\xff\"]}\n");
        broken_utf8.extend_from_slice(log_file(400).as_bytes());
        let mut gzipped = Vec::new();
        {
            use std::io::Write;
            let mut gz = flate2::write::GzEncoder::new(&mut gzipped, flate2::Compression::fast());
            for i in 0..30 {
                gz.write_all(log_file(i * 400).as_bytes()).expect("gzip");
                gz.write_all(b"\n").expect("gzip");
            }
            gz.finish().expect("gzip");
        }
        let files: Vec<(&str, Vec<u8>)> = vec![
            ("bom-crlf.json", {
                let mut text = BOM.to_vec();
                text.extend_from_slice(
                    format!("{}\r\n{}\r\n", log_file(0), log_file(400)).as_bytes(),
                );
                text
            }),
            ("no-final-newline.json", log_file(0).into_bytes()),
            ("jsonl.jsonl", {
                let lines: Vec<String> = (0..2_000).map(record).collect();
                format!("\n{}\nnot json\n", lines.join("\n")).into_bytes()
            }),
            ("pretty.json", format!("{pretty}\n{pretty}").into_bytes()),
            ("truncated-pretty.json", {
                let cut = pretty.get(..pretty.len() - 100).unwrap_or_default();
                format!("{pretty}\n{cut}").into_bytes()
            }),
            ("broken-utf8.json", broken_utf8),
            ("gzipped.json.gz", gzipped),
        ];
        for (name, bytes) in files {
            let path = dir.path().join(name);
            std::fs::write(&path, &bytes).expect("write");
            let file = File::open(&path).expect("open");
            assert!(map(&file, true).is_some(), "{name} is mapped");
            assert!(map(&file, false).is_none(), "{name}: mapping is off");
            let (mapped, read) = (read(&path, true), read(&path, false));
            assert!(mapped.len() >= 2, "{name}: {mapped:?}");
            assert_eq!(mapped, read, "{name}");
        }
        // Small files are read, never mapped.
        let small = dir.path().join("small.json");
        std::fs::write(&small, log_file(0).get(..1000).unwrap_or_default()).expect("write");
        assert!(map(&File::open(&small).expect("open"), true).is_none());
    }
}
