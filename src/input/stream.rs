//! Reads JSON piece by piece, for what is not read whole: a JSON Lines line longer than the
//! reader's line limit, and pretty-printed documents (values spanning lines, several a file).
//!
//! Only the top of the value is followed: the top-level array and its elements, or the
//! top-level object, its keys and the elements of its `Records` array. Each element (a record,
//! or an array item that may be an EventBridge envelope) is kept while it is at most
//! `--max-record-bytes` long, then checked as serde_json would check it and handed to
//! [`read_item`]. A longer one is reported and skipped, its end found by counting brackets
//! outside strings, so it is never held. Memory is therefore bounded by twice
//! `--max-record-bytes` (the element, and a top-level object kept while it may be one record)
//! whatever the size or depth of the value.
//!
//! Valid input gives the records and problems the in-memory reading gives (tested in
//! `super::tests`). Invalid input is reported where it is found, with its line and column: the
//! records before it were read, and the rest of the line (JSON Lines) or of the input
//! (documents) is skipped. Values of members other than `Records` are only delimited, not
//! checked, unless the object is read as one record.

use std::sync::Arc;

use memchr::{memchr_iter, memchr2, memrchr};
use serde::de::IgnoredAny;

use super::{InputError, Position, Visitor, malformed, read_item, split, too_large};
use crate::text::{describe, json_kind};

/// How values end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Mode {
    /// One value, ended by the end of its line (JSON Lines).
    Line,
    /// Any number of values, spanning lines (pretty-printed documents).
    Documents,
}

/// What the top of the value expects next, outside the element being delimited (if any).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// A top-level value (documents: or the end of input).
    Value,
    /// In the top-level array: the first element or `]`; an element after `,`; `,` or `]`.
    FirstItem,
    Item,
    AfterItem,
    /// In the top-level object: the first key or `}`; a key after `,`; `:`; a member's value;
    /// `,` or `}`.
    FirstKey,
    Key,
    Colon,
    Member,
    AfterMember,
    /// In `Records`: the first record or `]`; a record after `,`; `,` or `]`.
    FirstRecord,
    Record,
    AfterRecord,
    /// After the top-level value: whitespace (a line), or the next value (documents).
    End,
    /// After a syntax error: the rest of the line or of the input is not read.
    Skip,
}

/// What an element is, which decides what is kept of it and what happens at its end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A top-level value that is no array or object.
    Whole,
    /// An element of the top-level array: a record, or an envelope around one.
    Item,
    /// A key of the top-level object.
    Key,
    /// The value of `Records` when it is not an array (`null` reads as no `Records`).
    RecordsValue,
    /// The value of another member of the top-level object: delimited only.
    Member,
    /// An element of `Records`.
    Record,
}

/// Keys are kept (and checked) up to this size; longer ones are not `Records`.
const KEY_BYTES: usize = 256;
/// Enough of a `Records` value that is not an array to tell `null` from the rest.
const RECORDS_VALUE_BYTES: usize = 16;

/// An element being delimited.
struct Element {
    kind: Kind,
    /// Offset, line and column of its first byte.
    start: u64,
    line: u64,
    column: u64,
    /// Its first byte: `{`, `[`, `"` or the start of a scalar.
    first: u8,
    /// Brackets open inside it, outside strings: a count, so depth costs no memory.
    depth: u64,
    in_string: bool,
    /// A backslash in a string ended the previous piece: the next byte is escaped.
    escaped: bool,
}

/// Bytes kept from some offset on, while they fit in `limit`.
#[derive(Default)]
struct Capture {
    buf: Vec<u8>,
    /// Where the kept bytes start in the current piece; `None` when nothing is kept (not
    /// wanted, or over the limit).
    from: Option<usize>,
    limit: usize,
}

/// Where the bytes of a finished capture are.
enum Kept {
    /// All in the current piece (nothing copied).
    Piece(std::ops::Range<usize>),
    /// In the capture's buffer.
    Buffer,
}

impl Capture {
    fn start(&mut self, at: usize, limit: usize) {
        self.buf.clear();
        self.limit = limit;
        self.from = (limit > 0).then_some(at);
    }

    fn stop(&mut self) {
        self.from = None;
        self.buf.clear();
    }

    fn overflow(&mut self) {
        self.from = None;
        // Up to --max-record-bytes: given back rather than kept for the next element.
        self.buf = Vec::new();
    }

    /// At the end of a piece: keeps its part, while within the limit.
    fn save(&mut self, piece: &[u8]) {
        if let Some(from) = self.from {
            let part = &piece[from..];
            if self.buf.len() + part.len() > self.limit {
                self.overflow();
            } else {
                self.buf.extend_from_slice(part);
                self.from = Some(0);
            }
        }
    }

    /// Ends the capture just before `end` in the piece; `None` when its bytes were not kept.
    fn finish(&mut self, piece: &[u8], end: usize) -> Option<Kept> {
        let from = self.from.take()?;
        if self.buf.len() + (end - from) > self.limit {
            self.overflow();
            return None;
        }
        if self.buf.is_empty() {
            return Some(Kept::Piece(from..end));
        }
        self.buf.extend_from_slice(&piece[from..end]);
        Some(Kept::Buffer)
    }
}

fn kept_bytes<'a>(kept: &Option<Kept>, piece: &'a [u8], buf: &'a [u8]) -> Option<&'a [u8]> {
    match kept {
        Some(Kept::Piece(range)) => Some(&piece[range.clone()]),
        Some(Kept::Buffer) => Some(buf),
        None => None,
    }
}

/// Why kept bytes are not one valid JSON value.
enum Invalid {
    Json(serde_json::Error),
    /// The offset of the first byte that is not UTF-8.
    Utf8(usize),
    /// The splitter and serde_json disagree (they are tested not to).
    Other,
}

/// `bytes` as text, when they are exactly one JSON value as serde_json reads it.
fn check<'a>(bytes: &'a [u8], stack: &mut Vec<u8>) -> Result<&'a str, Invalid> {
    if !split::is_value(bytes, stack) {
        return Err(match serde_json::from_slice::<IgnoredAny>(bytes) {
            Err(err) => Invalid::Json(err),
            Ok(_) => Invalid::Other,
        });
    }
    std::str::from_utf8(bytes).map_err(|err| Invalid::Utf8(err.valid_up_to()))
}

/// A byte that cannot be part of a number or a literal.
fn ends_scalar(c: u8) -> bool {
    matches!(
        c,
        b' ' | b'\t' | b'\n' | b'\r' | b',' | b':' | b'[' | b']' | b'{' | b'}' | b'"'
    )
}

/// Finds the end of `element` in `b` from `i`: the index just after it, or `None` when it goes
/// on past the piece. Inside strings it skips to the next quote or backslash with memchr.
fn delimit(element: &mut Element, b: &[u8], mut i: usize) -> Option<usize> {
    loop {
        if element.in_string {
            if element.escaped {
                if i >= b.len() {
                    return None;
                }
                element.escaped = false;
                i += 1;
            }
            let at = i + memchr2(b'"', b'\\', &b[i..])?;
            i = at + 1;
            if b[at] == b'\\' {
                element.escaped = true;
            } else {
                element.in_string = false;
                if element.depth == 0 {
                    return Some(i);
                }
            }
        } else if element.depth > 0 {
            loop {
                let c = *b.get(i)?;
                i += 1;
                match c {
                    b'"' => {
                        element.in_string = true;
                        break;
                    }
                    b'[' | b'{' => element.depth += 1,
                    b']' | b'}' => {
                        element.depth -= 1;
                        if element.depth == 0 {
                            return Some(i);
                        }
                    }
                    _ => {}
                }
            }
        } else {
            return b[i..].iter().position(|&c| ends_scalar(c)).map(|n| i + n);
        }
    }
}

/// A JSON reader fed piece by piece; see the module documentation.
pub(super) struct Stream {
    name: Arc<str>,
    mode: Mode,
    max: usize,
    /// The line of the first byte fed.
    first_line: u64,
    /// Bytes fed before the current piece.
    offset: u64,
    /// Newlines counted so far, the offset just after the last of them, and how far into the
    /// current piece they were counted.
    newlines: u64,
    line_start: u64,
    counted: usize,
    /// The current top-level value, 1-based (documents).
    value: u64,
    expect: Expect,
    /// In the top-level object: the last key was `Records`; a `Records` key was seen; its value
    /// is an array (the object is a log file, not a record).
    key_is_records: bool,
    /// The top-level object has a key of an export (`Events`, `events`, `logEvents`): read
    /// whole, so a too large one is told what to do.
    export_key: bool,
    records_key: bool,
    log_file: bool,
    /// The next element of the top-level array or of `Records`, 0-based.
    index: u64,
    element: Option<Element>,
    kept: Capture,
    /// The top-level object, kept while it may be one record; and where it starts.
    object: Capture,
    object_start: (u64, u64, u64),
    /// Scratch space for checking kept values.
    stack: Vec<u8>,
}

impl Stream {
    /// A reader of input from line `first_line` on, skipping records over `max` bytes.
    pub(super) fn new(name: &Arc<str>, mode: Mode, first_line: u64, max: usize) -> Self {
        Stream {
            name: name.clone(),
            mode,
            max,
            first_line,
            offset: 0,
            newlines: 0,
            line_start: 0,
            counted: 0,
            value: 0,
            expect: Expect::Value,
            key_is_records: false,
            export_key: false,
            records_key: false,
            log_file: false,
            index: 0,
            element: None,
            kept: Capture::default(),
            object: Capture::default(),
            object_start: (0, 0, 0),
            stack: Vec::new(),
        }
    }

    /// Reads the next piece of input.
    pub(super) fn feed(&mut self, piece: &[u8], visitor: &mut impl Visitor) {
        let mut i = 0;
        while i < piece.len() && self.expect != Expect::Skip {
            if let Some(element) = &mut self.element {
                match delimit(element, piece, i) {
                    Some(end) => {
                        self.end_element(piece, end, visitor);
                        i = end;
                    }
                    None => i = piece.len(),
                }
            } else if matches!(piece[i], b' ' | b'\t' | b'\n' | b'\r') {
                i += 1;
            } else {
                i = self.structure(piece, i, visitor);
            }
        }
        self.kept.save(piece);
        self.object.save(piece);
        self.locate(piece, piece.len());
        self.offset += piece.len() as u64;
        self.counted = 0;
    }

    /// Whether nothing but whitespace was read.
    pub(super) fn is_blank(&self) -> bool {
        self.expect == Expect::Value && self.element.is_none()
    }

    /// Whether a value is open with nothing wrong so far: a first line that goes on on the
    /// next one, so the input is a pretty-printed document.
    pub(super) fn is_incomplete(&self) -> bool {
        !matches!(self.expect, Expect::Value | Expect::End | Expect::Skip) || self.element.is_some()
    }

    /// Whether a syntax error ended the reading.
    pub(super) fn is_skipping(&self) -> bool {
        self.expect == Expect::Skip
    }

    /// Whether the line turned out to hold several documents (see [`Stream::structure`]).
    pub(super) fn is_documents(&self) -> bool {
        self.mode == Mode::Documents
    }

    /// Whether the line held only `{` or `[`: the first line of a pretty-printed document.
    pub(super) fn is_only_opened(&self) -> bool {
        matches!(self.expect, Expect::FirstKey | Expect::FirstItem) && self.element.is_none()
    }

    /// Reads on past the end of the line, as documents.
    pub(super) fn continue_as_documents(&mut self) {
        self.mode = Mode::Documents;
    }

    /// The end of the line (JSON Lines) or of the input (documents): reports a value left open.
    pub(super) fn finish(&mut self, visitor: &mut impl Visitor) {
        if let Some(element) = &self.element
            && !element.in_string
            && element.depth == 0
        {
            // A number or literal ends with the input.
            self.end_element(&[], 0, visitor);
        }
        if self.is_incomplete() {
            let what = match (&self.element, self.expect) {
                (Some(element), _) if element.in_string => "a string",
                (Some(element), _) if element.depth == 1 && element.first == b'{' => "an object",
                (Some(element), _) if element.depth == 1 => "a list",
                (Some(_), _) => "a value",
                (
                    None,
                    Expect::FirstItem
                    | Expect::Item
                    | Expect::AfterItem
                    | Expect::FirstRecord
                    | Expect::Record
                    | Expect::AfterRecord,
                ) => "a list",
                (None, _) => "an object",
            };
            let mut position = self.position(self.current_line(), None);
            if self.mode == Mode::Documents {
                position.column = Some(self.offset - self.line_start);
            }
            visitor.error(InputError::new(
                position,
                format!("EOF while parsing {what}"),
            ));
        }
        self.element = None;
        self.expect = Expect::End;
    }

    /// A read error in this input: where reading stopped.
    pub(super) fn read_error(&self, err: &std::io::Error) -> InputError {
        let position = self.position(self.current_line(), None);
        InputError::unreadable(position, format!("cannot read: {err}"))
    }

    /// The line reading is on (a line's own newline does not count).
    fn current_line(&self) -> u64 {
        match self.mode {
            Mode::Line => self.first_line,
            Mode::Documents => self.first_line + self.newlines,
        }
    }

    /// Line and column of byte `at` of the piece, counting newlines up to it (`at` only grows
    /// within a piece, so each byte is counted once).
    fn locate(&mut self, piece: &[u8], at: usize) -> (u64, u64) {
        if at > self.counted {
            let span = &piece[self.counted..at];
            if let Some(last) = memrchr(b'\n', span) {
                self.newlines += memchr_iter(b'\n', span).count() as u64;
                self.line_start = self.offset + (self.counted + last + 1) as u64;
            }
            self.counted = at;
        }
        (
            self.first_line + self.newlines,
            self.offset + at as u64 - self.line_start + 1,
        )
    }

    /// Where a value starting on `line` is: the line, and in documents the value's number.
    fn position(&self, line: u64, record: Option<u64>) -> Position {
        Position {
            file: self.name.clone(),
            line: Some(line),
            column: None,
            value: (self.mode == Mode::Documents).then_some(self.value),
            record,
        }
    }

    fn rest_skipped(&self) -> &'static str {
        match self.mode {
            Mode::Line => "the rest of the line is skipped",
            Mode::Documents => "the rest of this file is skipped",
        }
    }

    /// Reports a syntax error at byte `at` of the piece and stops reading; returns the end of
    /// the piece.
    fn syntax(
        &mut self,
        piece: &[u8],
        at: usize,
        message: &str,
        visitor: &mut impl Visitor,
    ) -> usize {
        let (line, column) = self.locate(piece, at);
        let mut position = self.position(line, None);
        position.column = Some(column);
        visitor.error(InputError::new(
            position,
            format!("{message}; {}", self.rest_skipped()),
        ));
        self.stop();
        piece.len()
    }

    fn stop(&mut self) {
        self.expect = Expect::Skip;
        self.element = None;
        self.kept.stop();
        self.object.stop();
    }

    /// Reports kept bytes that are not valid JSON (from line `line`, column `column` on) and
    /// stops reading.
    fn invalid(
        &mut self,
        invalid: Invalid,
        bytes: &[u8],
        (start, line, column): (u64, u64, u64),
        record: Option<u64>,
        visitor: &mut impl Visitor,
    ) {
        let mut position = self.position(line, record);
        let message = match invalid {
            Invalid::Json(err) => {
                // serde_json counts from the start of the bytes: 1-based line and column.
                let (at_line, at_column) = (err.line().max(1) as u64, err.column() as u64);
                position.line = Some(line + at_line - 1);
                position.column = Some(if at_line == 1 {
                    column + at_column.max(1) - 1
                } else {
                    at_column
                });
                describe(&err)
            }
            Invalid::Utf8(at) => {
                let before = &bytes[..at];
                match memrchr(b'\n', before) {
                    Some(last) => {
                        position.line = Some(line + memchr_iter(b'\n', before).count() as u64);
                        position.column = Some((at - last) as u64);
                    }
                    None => position.column = Some(column + at as u64),
                }
                match self.mode {
                    Mode::Line => format!(
                        "invalid UTF-8 at byte {} of the line",
                        start + at as u64 + 1
                    ),
                    Mode::Documents => "invalid UTF-8".to_owned(),
                }
            }
            Invalid::Other => "invalid JSON".to_owned(),
        };
        visitor.error(InputError::new(
            position,
            format!("{message}; {}", self.rest_skipped()),
        ));
        self.stop();
    }

    /// Reads the structural byte at `i` (no whitespace), outside any element; returns where to
    /// go on.
    fn structure(&mut self, piece: &[u8], i: usize, visitor: &mut impl Visitor) -> usize {
        let c = piece[i];
        match self.expect {
            Expect::End if self.mode == Mode::Line && !matches!(c, b'{' | b'[') => {
                self.syntax(piece, i, "trailing characters", visitor)
            }
            Expect::Value | Expect::End => {
                if self.expect == Expect::End {
                    // Another document on the same line (concatenated files): read on as
                    // documents, as the whole-line reading does.
                    self.mode = Mode::Documents;
                }
                self.value += 1;
                self.index = 0;
                self.records_key = false;
                self.export_key = false;
                self.log_file = false;
                match c {
                    b'[' => {
                        self.expect = Expect::FirstItem;
                        i + 1
                    }
                    b'{' => {
                        let (line, column) = self.locate(piece, i);
                        self.object_start = (self.offset + i as u64, line, column);
                        self.object.start(i, self.max);
                        self.expect = Expect::FirstKey;
                        i + 1
                    }
                    _ => self.start(Kind::Whole, piece, i, visitor),
                }
            }
            Expect::FirstItem | Expect::Item => match c {
                b']' if self.expect == Expect::FirstItem => {
                    self.expect = Expect::End;
                    i + 1
                }
                b']' => self.syntax(piece, i, "trailing comma", visitor),
                _ => self.start(Kind::Item, piece, i, visitor),
            },
            Expect::AfterItem => match c {
                b',' => {
                    self.expect = Expect::Item;
                    i + 1
                }
                b']' => {
                    self.expect = Expect::End;
                    i + 1
                }
                _ => self.syntax(piece, i, "expected `,` or `]`", visitor),
            },
            Expect::FirstKey | Expect::Key => match c {
                b'"' => self.start(Kind::Key, piece, i, visitor),
                b'}' if self.expect == Expect::FirstKey => self.end_object(piece, i, visitor),
                b'}' => self.syntax(piece, i, "trailing comma", visitor),
                _ => self.syntax(piece, i, "key must be a string", visitor),
            },
            Expect::Colon => {
                if c == b':' {
                    self.expect = Expect::Member;
                    i + 1
                } else {
                    self.syntax(piece, i, "expected `:`", visitor)
                }
            }
            Expect::Member if self.key_is_records => {
                if self.records_key {
                    return self.syntax(piece, i, "duplicate field `Records`", visitor);
                }
                self.records_key = true;
                if c == b'[' {
                    // A log file: its records are read one by one, the object is no record.
                    self.log_file = true;
                    self.object.stop();
                    self.index = 0;
                    self.expect = Expect::FirstRecord;
                    i + 1
                } else {
                    self.start(Kind::RecordsValue, piece, i, visitor)
                }
            }
            Expect::Member => self.start(Kind::Member, piece, i, visitor),
            Expect::AfterMember => match c {
                b',' => {
                    self.expect = Expect::Key;
                    i + 1
                }
                b'}' => self.end_object(piece, i, visitor),
                _ => self.syntax(piece, i, "expected `,` or `}`", visitor),
            },
            Expect::FirstRecord | Expect::Record => match c {
                b']' if self.expect == Expect::FirstRecord => {
                    self.expect = Expect::AfterMember;
                    i + 1
                }
                b']' => self.syntax(piece, i, "trailing comma", visitor),
                _ => self.start(Kind::Record, piece, i, visitor),
            },
            Expect::AfterRecord => match c {
                b',' => {
                    self.expect = Expect::Record;
                    i + 1
                }
                b']' => {
                    self.expect = Expect::AfterMember;
                    i + 1
                }
                _ => self.syntax(piece, i, "expected `,` or `]`", visitor),
            },
            Expect::Skip => piece.len(),
        }
    }

    /// Starts delimiting an element at byte `i`; returns where to go on.
    fn start(&mut self, kind: Kind, piece: &[u8], i: usize, visitor: &mut impl Visitor) -> usize {
        let first = piece[i];
        if matches!(first, b',' | b':' | b']' | b'}') {
            return self.syntax(piece, i, "expected value", visitor);
        }
        let (line, column) = self.locate(piece, i);
        let limit = match kind {
            Kind::Whole | Kind::Item | Kind::Record => self.max,
            Kind::Key => KEY_BYTES,
            Kind::RecordsValue => RECORDS_VALUE_BYTES,
            Kind::Member => 0,
        };
        self.kept.start(i, limit);
        let mut element = Element {
            kind,
            start: self.offset + i as u64,
            line,
            column,
            first,
            depth: 0,
            in_string: false,
            escaped: false,
        };
        let next = match first {
            b'"' => {
                element.in_string = true;
                i + 1
            }
            b'[' | b'{' => {
                element.depth = 1;
                i + 1
            }
            _ => i,
        };
        self.element = Some(element);
        next
    }

    /// The element ended just before `end` in the piece.
    fn end_element(&mut self, piece: &[u8], end: usize, visitor: &mut impl Visitor) {
        let Some(element) = self.element.take() else {
            return;
        };
        let size = self.offset + end as u64 - element.start;
        let kept = self.kept.finish(piece, end);
        let record = matches!(element.kind, Kind::Item | Kind::Record).then_some(self.index + 1);
        let position = self.position(element.line, record);
        let at = (element.start, element.line, element.column);
        let bytes = kept_bytes(&kept, piece, &self.kept.buf);
        let mut not_a_list = false;
        let failed = match element.kind {
            Kind::Member => None,
            Kind::Whole | Kind::Item | Kind::Record => match bytes {
                None => {
                    let max = self.max;
                    malformed(visitor, &position, || too_large(size, max));
                    None
                }
                Some(bytes) => match check(bytes, &mut self.stack) {
                    Ok(text) => {
                        read_item(text, &position, element.kind != Kind::Record, visitor);
                        None
                    }
                    Err(invalid) => Some((invalid, bytes.to_vec())),
                },
            },
            Kind::Key => match bytes {
                None => {
                    self.key_is_records = false;
                    None
                }
                Some(bytes) => match check(bytes, &mut self.stack) {
                    Ok(key) => {
                        // Written without escapes, as the whole-line reading requires too
                        // (it looks for the text `"Records"` before reading a log file).
                        self.key_is_records = key == "\"Records\"";
                        self.export_key |=
                            matches!(key, "\"Events\"" | "\"events\"" | "\"logEvents\"");
                        None
                    }
                    Err(invalid) => Some((invalid, bytes.to_vec())),
                },
            },
            Kind::RecordsValue => match bytes.map(|bytes| (check(bytes, &mut self.stack), bytes)) {
                // serde_json reads `"Records": null` as no `Records`: the object is a record.
                Some((Ok("null"), _)) => None,
                Some((Err(invalid), bytes)) => Some((invalid, bytes.to_vec())),
                Some((Ok(_), _)) | None => {
                    not_a_list = true;
                    None
                }
            },
        };
        if let Some((invalid, bytes)) = failed {
            self.invalid(invalid, &bytes, at, record, visitor);
        } else if not_a_list {
            let found = json_kind(&char::from(element.first).to_string());
            let message = format!("invalid type: {found}, expected a sequence");
            self.syntax_at(&position, at, &message, visitor);
        }
        if self.expect == Expect::Skip {
            return;
        }
        self.expect = match element.kind {
            Kind::Whole => Expect::End,
            Kind::Item => {
                self.index += 1;
                Expect::AfterItem
            }
            Kind::Key => Expect::Colon,
            Kind::RecordsValue | Kind::Member => Expect::AfterMember,
            Kind::Record => {
                self.index += 1;
                Expect::AfterRecord
            }
        };
    }

    /// Reports a problem with the value at `at` (offset, line, column) and stops reading.
    fn syntax_at(
        &mut self,
        position: &Position,
        (_, line, column): (u64, u64, u64),
        message: &str,
        visitor: &mut impl Visitor,
    ) {
        let mut position = position.clone();
        position.line = Some(line);
        position.column = Some(column);
        visitor.error(InputError::new(
            position,
            format!("{message}; {}", self.rest_skipped()),
        ));
        self.stop();
    }

    /// The top-level object ends at byte `i` (its `}`): unless it was a log file, it is one
    /// record. Returns where to go on.
    fn end_object(&mut self, piece: &[u8], i: usize, visitor: &mut impl Visitor) -> usize {
        self.expect = Expect::End;
        if self.log_file {
            return i + 1;
        }
        let kept = self.object.finish(piece, i + 1);
        let (start, line, _) = self.object_start;
        let size = self.offset + i as u64 + 1 - start;
        let position = self.position(line, None);
        let failed = match kept_bytes(&kept, piece, &self.object.buf) {
            None => {
                let (max, export) = (self.max, self.export_key);
                malformed(visitor, &position, || {
                    let message = too_large(size, max);
                    if export {
                        // Exports are read whole (`input/shape.rs`), unlike log files.
                        format!(
                            "{message} (an export of records, such as lookup-events or \
                             CloudWatch Logs output, is read whole: raise --max-record-bytes \
                             to read it)"
                        )
                    } else {
                        message
                    }
                });
                None
            }
            Some(bytes) => match check(bytes, &mut self.stack) {
                Ok(text) => {
                    read_item(text, &position, true, visitor);
                    None
                }
                Err(invalid) => Some((invalid, bytes.to_vec())),
            },
        };
        if let Some((invalid, bytes)) = failed {
            self.invalid(invalid, &bytes, self.object_start, None, visitor);
        }
        self.object.stop();
        i + 1
    }
}
