//! The fast path of `sesguard scan` (the log-file splitter, the prefilter, reader threads, mapped
//! files) gives exactly what the plain path gives (serde_json's reading, every record parsed,
//! one thread, files read): the same signals, problems and counts, over a generated CloudTrail
//! corpus with damaged files mixed in. And the splitter splits exactly like serde_json on any
//! valid JSON, declines whatever serde_json rejects, and never panics on any bytes.

mod support;

use std::path::{Path, PathBuf};

use proptest::prelude::*;
use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::value::RawValue;
use sesguard::Engine;
use sesguard::deliver::Counts;
use sesguard::deliver::{Collect, Collected};
use sesguard::input::{self, split};
use sesguard::scan::Scanner;
use support::engine;

// ---------------------------------------------------------------------------------------------
// The whole scan over a generated corpus

fn corpus(dir: &Path, form: &str) -> PathBuf {
    let options = sesguard_corpus::Options {
        size: 2 << 20,
        seed: 7,
        ses_per_mille: 40,
        form: match form {
            "raw" => sesguard_corpus::Form::Raw,
            "gz" => sesguard_corpus::Form::Gz,
            other => panic!("form {other:?}"),
        },
        ..sesguard_corpus::Options::default()
    };
    sesguard_corpus::generate(dir, &options).expect("generate the corpus");
    dir.join(form)
}

fn scan(
    engine: &Engine,
    paths: &[PathBuf],
    threads: usize,
    full_parse: bool,
) -> (Collected, Counts) {
    scan_with(engine, paths, threads, full_parse, true)
}

/// `map`: whether files are mapped into memory (the default) or read.
fn scan_with(
    engine: &Engine,
    paths: &[PathBuf],
    threads: usize,
    full_parse: bool,
    map: bool,
) -> (Collected, Counts) {
    let (sources, errors) = input::expand(paths);
    assert!(errors.is_empty(), "{errors:?}");
    let mut scanner = Scanner::new(engine, Collect::default())
        .expect("scanner")
        .threads(threads)
        .full_parse(full_parse)
        .map_files(map);
    scanner.scan(&sources).expect("scan");
    let (sink, counts) = scanner.into_parts();
    (sink.into_inner(), counts)
}

#[test]
fn the_fast_path_gives_the_signals_problems_and_counts_of_the_plain_path() {
    let dir = tempfile::tempdir().expect("tempdir");
    let raw = corpus(dir.path(), "raw");
    let names: Vec<PathBuf> = {
        let mut names: Vec<PathBuf> = std::fs::read_dir(&raw)
            .expect("raw")
            .map(|e| e.expect("entry").path())
            .collect();
        names.sort();
        names
    };
    assert!(names.len() >= 3, "{names:?}");
    // Damage between the good files: every way a log file line can be wrong or unusual.
    let good = std::fs::read_to_string(&names[1]).expect("read");
    let damaged: Vec<(&str, String)> = vec![
        ("a-truncated.json", good[..good.len() / 2].to_owned()),
        (
            "b-bad-escape.json",
            good.replacen("\"eventName\"", "\"event\\qName\"", 3),
        ),
        (
            "c-number-record.json",
            good.replacen("{\"Records\":[", "{\"Records\":[42,", 1),
        ),
        ("d-trailing-comma.json", good.replacen("]}", ",]}", 1)),
        ("e-two-lines.json", format!("{good}\n{good}\n")),
        (
            "f-escaped-key.json",
            good.replacen("\"Records\"", "\"Rec\\u006frds\"", 1),
        ),
        ("g-empty.json", String::new()),
        ("h-pretty.json", {
            let value: serde_json::Value = serde_json::from_str(&good).expect("json");
            serde_json::to_string_pretty(&value).expect("pretty")
        }),
        (
            "i-wrong-type.json",
            good.replacen("\"eventTime\":\"", "\"eventTime\":1,\"x\":\"", 2),
        ),
    ];
    let extra = dir.path().join("extra");
    std::fs::create_dir(&extra).expect("mkdir");
    for (name, text) in &damaged {
        std::fs::write(extra.join(name), text).expect("write");
    }
    let paths = vec![raw.clone(), extra.clone(), raw.clone()];
    for toml in ["", "dedup_minutes = 1\nsequence_window_minutes = 5\n"] {
        let engine = engine(toml);
        // The plain path reads files; the fast path maps them (and reads them once, below).
        let (plain, plain_stats) = scan_with(&engine, &paths, 1, true, false);
        assert!(plain_stats.malformed > 0, "{plain_stats}");
        let rules: std::collections::BTreeSet<&str> =
            plain.signals.iter().map(|s| s.rule_id.as_str()).collect();
        assert_eq!(rules.len(), 5, "the corpus fires every rule: {rules:?}");
        for (threads, full_parse, map) in [
            (1, false, true),
            (2, false, true),
            (3, false, false),
            (2, true, true),
        ] {
            let (fast, fast_stats) = scan_with(&engine, &paths, threads, full_parse, map);
            let case = format!("threads {threads}, full parse {full_parse}, map {map}");
            assert_eq!(fast.signals, plain.signals, "{case}");
            if full_parse {
                assert_eq!(fast.problems, plain.problems, "{case}");
                assert_eq!(fast_stats, plain_stats, "{case}");
            } else {
                // The fast path does not parse records of other services, so it does not see
                // their wrong field types (`i-wrong-type.json`); every other problem is the same.
                let wrong_type =
                    |p: &&input::InputError| p.position.file.ends_with("i-wrong-type.json");
                let plain_rest: Vec<_> = plain.problems.iter().filter(|p| !wrong_type(p)).collect();
                let fast_rest: Vec<_> = fast.problems.iter().filter(|p| !wrong_type(p)).collect();
                assert_eq!(fast_rest, plain_rest, "{case}");
                assert_eq!(fast_stats.records, plain_stats.records, "{case}");
                assert_eq!(fast_stats.matched, plain_stats.matched, "{case}");
                assert_eq!(fast_stats.signals, plain_stats.signals, "{case}");
            }
        }
    }
}

#[test]
fn lines_read_piece_by_piece_give_the_signals_problems_and_counts_of_whole_lines() {
    let dir = tempfile::tempdir().expect("tempdir");
    let raw = corpus(dir.path(), "raw");
    let gz = dir.path().join("gz");
    sesguard_corpus::generate(
        dir.path(),
        &sesguard_corpus::Options {
            size: 2 << 20,
            seed: 7,
            ses_per_mille: 40,
            form: sesguard_corpus::Form::Gz,
            ..sesguard_corpus::Options::default()
        },
    )
    .expect("generate the corpus");
    let engine = engine("");
    let paths = vec![raw, gz];
    let (whole, whole_stats) = scan(&engine, &paths, 1, false);
    assert!(whole_stats.records > 1_000, "{whole_stats}");
    assert!(whole.signals.len() > 10, "{whole_stats}");
    for threads in [1, 2] {
        let (sources, _) = input::expand(&paths);
        let mut scanner = Scanner::new(&engine, Collect::default())
            .expect("scanner")
            .threads(threads)
            .map_files(true)
            // Every log file line is longer: all of them are read piece by piece.
            .stream_lines_over(1_000);
        scanner.scan(&sources).expect("scan");
        let (sink, stats) = scanner.into_parts();
        let streamed = sink.into_inner();
        assert_eq!(streamed.signals, whole.signals, "threads {threads}");
        assert_eq!(streamed.problems, whole.problems, "threads {threads}");
        assert_eq!(stats, whole_stats, "threads {threads}");
    }
}

#[test]
fn compressed_and_raw_corpora_give_the_same_signals() {
    let dir = tempfile::tempdir().expect("tempdir");
    let engine = engine("");
    let options = sesguard_corpus::Options {
        size: 1 << 20,
        seed: 3,
        ses_per_mille: 50,
        ..sesguard_corpus::Options::default()
    };
    sesguard_corpus::generate(dir.path(), &options).expect("generate the corpus");
    let (raw, raw_stats) = scan(&engine, &[dir.path().join("raw")], 2, false);
    let (gz, gz_stats) = scan(&engine, &[dir.path().join("gz")], 2, false);
    assert!(!raw.signals.is_empty());
    assert_eq!(raw.signals, gz.signals);
    assert_eq!(raw_stats, gz_stats);
    assert!(raw_stats.clean(), "{raw_stats}");
}

#[test]
fn the_tuned_prefilter_answers_like_a_plain_substring_search() {
    let mut cases = vec![
        String::new(),
        "ses.amazonaws.co".into(),
        "xses.amazonaws.comx".into(),
        "servicequotas.amazonaws.com".into(),
        "servicequotas.amazonaws.co".into(),
        "\"eventSource\":\"email.amazonaws.com\"".into(),
        "\"eventSource\":\"iam.amazonaws.com\",\"eventName\":\"GetRole\"".into(),
        "\"eventSource\":\"iam.amazonaws.com\",\"eventName\":\"CreateUser\"".into(),
        "\"eventName\":\"CreateUser\"".into(),
    ];
    let dir = tempfile::tempdir().expect("tempdir");
    let raw = corpus(dir.path(), "raw");
    for entry in std::fs::read_dir(raw).expect("raw") {
        let text = std::fs::read_to_string(entry.expect("entry").path()).expect("read");
        let mut spans = Vec::new();
        assert!(split::records(text.as_bytes(), &mut spans));
        cases.extend(spans.into_iter().map(|s| text[s].to_owned()));
    }
    let triggers = sesguard::rules::all_triggers();
    let iam = sesguard::rules::IAM;
    // A source, and for IAM one of the call names the rules read from it.
    let named = |case: &str, source: &str| {
        case.contains(source)
            && (source != iam
                || triggers
                    .iter()
                    .any(|t| t.event_source == iam && case.contains(t.event_name)))
    };
    let mut hits = 0;
    for case in &cases {
        let expected = triggers.iter().any(|t| named(case, t.event_source));
        assert_eq!(sesguard::rules::may_match(case), expected, "{case}");
        hits += usize::from(expected);
    }
    assert!(hits > 10, "{hits}");
}

// ---------------------------------------------------------------------------------------------
// The splitter against serde_json

#[derive(Deserialize)]
struct LogFile<'a> {
    #[serde(rename = "Records", borrow)]
    records: Option<Vec<&'a RawValue>>,
}

/// The record spans serde_json finds, as `read_value` reads a log file; `None` when it finds
/// none (an error, or no `Records`).
fn serde_spans(bytes: &[u8]) -> Option<Vec<std::ops::Range<usize>>> {
    let text = std::str::from_utf8(bytes).ok()?;
    let log: LogFile = serde_json::from_str(text).ok()?;
    let base = text.as_ptr() as usize;
    Some(
        log.records?
            .iter()
            .map(|r| {
                let start = r.get().as_ptr() as usize - base;
                start..start + r.get().len()
            })
            .collect(),
    )
}

/// Checks the splitter's promise on `bytes`: when it splits, serde_json reads the same records
/// (and the JSON Lines test sees a complete value); it never panics.
fn check(bytes: &[u8]) -> Result<bool, TestCaseError> {
    let mut spans = Vec::new();
    let ours = split::records(bytes, &mut spans);
    if ours && std::str::from_utf8(bytes).is_ok() {
        prop_assert!(bytes.iter().any(|b| !b.is_ascii_whitespace()));
        prop_assert_eq!(Some(spans.clone()), serde_spans(bytes));
        prop_assert!(serde_json::from_slice::<IgnoredAny>(bytes).is_ok());
    }
    if !ours {
        prop_assert!(spans.is_empty());
    }
    Ok(ours)
}

/// A JSON value, rendered with every form the grammar allows.
#[derive(Debug, Clone)]
enum Json {
    Literal(&'static str),
    Number(String),
    String(Vec<Piece>),
    Array(Vec<(String, Json, String)>),
    Object(Vec<(String, Vec<Piece>, String, String, Json, String)>),
}

#[derive(Debug, Clone)]
enum Piece {
    Char(char),
    Escape(&'static str),
    Unicode(u16, bool),
}

fn ws() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => Just(String::new()),
        1 => "[ \t\r\n]{1,3}",
    ]
}

fn pieces() -> impl Strategy<Value = Vec<Piece>> {
    prop::collection::vec(
        prop_oneof![
            6 => any::<char>()
                .prop_filter("plain", |c| *c != '"' && *c != '\\' && (*c as u32) >= 0x20)
                .prop_map(Piece::Char),
            3 => "[a-zA-Z0-9.:/@_-]".prop_map(|s| Piece::Char(s.chars().next().unwrap_or('a'))),
            1 => prop::sample::select(vec!["\\\"", "\\\\", "\\/", "\\b", "\\f", "\\n", "\\r", "\\t"])
                .prop_map(Piece::Escape),
            1 => (any::<u16>(), any::<bool>()).prop_map(|(u, upper)| Piece::Unicode(u, upper)),
        ],
        0..24,
    )
}

fn json() -> impl Strategy<Value = Json> {
    let leaf = prop_oneof![
        prop::sample::select(vec!["true", "false", "null"]).prop_map(Json::Literal),
        "-?(0|[1-9][0-9]{0,8})(\\.[0-9]{1,4})?([eE][+-]?[0-9]{1,3})?".prop_map(Json::Number),
        pieces().prop_map(Json::String),
    ];
    leaf.prop_recursive(5, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec((ws(), inner.clone(), ws()), 0..6).prop_map(Json::Array),
            prop::collection::vec((ws(), pieces(), ws(), ws(), inner, ws()), 0..6)
                .prop_map(Json::Object),
        ]
    })
}

fn render_string(out: &mut String, pieces: &[Piece]) {
    out.push('"');
    for piece in pieces {
        match piece {
            Piece::Char(c) => out.push(*c),
            Piece::Escape(e) => out.push_str(e),
            Piece::Unicode(u, true) => out.push_str(&format!("\\u{u:04X}")),
            Piece::Unicode(u, false) => out.push_str(&format!("\\u{u:04x}")),
        }
    }
    out.push('"');
}

fn render(out: &mut String, json: &Json) {
    match json {
        Json::Literal(l) => out.push_str(l),
        Json::Number(n) => out.push_str(n),
        Json::String(pieces) => render_string(out, pieces),
        Json::Array(items) => {
            out.push('[');
            for (i, (before, item, after)) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(before);
                render(out, item);
                out.push_str(after);
            }
            if items.is_empty() {
                out.push(' ');
            }
            out.push(']');
        }
        Json::Object(members) => {
            out.push('{');
            for (i, (a, key, b, c, value, d)) in members.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(a);
                render_string(out, key);
                out.push_str(b);
                out.push(':');
                out.push_str(c);
                render(out, value);
                out.push_str(d);
            }
            out.push('}');
        }
    }
}

/// A log file document: `Records` among other members, any whitespace.
fn log_file() -> impl Strategy<Value = String> {
    (
        ws(),
        prop::collection::vec((ws(), json(), ws()), 0..8),
        prop::collection::vec((pieces(), json()), 0..3),
        0usize..3,
        ws(),
    )
        .prop_map(|(outer, records, others, at, tail)| {
            let mut members: Vec<String> = others
                .iter()
                .filter(|(key, _)| {
                    // Another member named Records would be a duplicate.
                    let plain: String = key
                        .iter()
                        .filter_map(|p| match p {
                            Piece::Char(c) => Some(*c),
                            _ => None,
                        })
                        .collect();
                    plain != "Records"
                })
                .map(|(key, value)| {
                    // Keys at the top without escapes: the splitter leaves escaped ones to
                    // serde_json (covered by the mutation test).
                    let key: Vec<Piece> = key
                        .iter()
                        .filter(|p| matches!(p, Piece::Char(_)))
                        .cloned()
                        .collect();
                    let mut text = String::new();
                    render_string(&mut text, &key);
                    text.push(':');
                    render(&mut text, value);
                    text
                })
                .collect();
            let mut list = String::from("\"Records\" : [");
            for (i, (before, record, after)) in records.iter().enumerate() {
                if i > 0 {
                    list.push(',');
                }
                list.push_str(before);
                render(&mut list, record);
                list.push_str(after);
            }
            list.push(']');
            members.insert(at.min(members.len()), list);
            format!("{outer}{{{}}}{tail}", members.join(" , "))
        })
}

/// Bytes that matter to the grammar, for mutations.
const INTERESTING: &[u8] = b"\"\\{}[],:0123456789-+.eEtrufalsn \t\r\n\x00\x1f\x7fu/bx\xc3\xa9\xff";
/// Fragments that are almost right, for mutations.
const SNIPPETS: &[&str] = &[
    "\\x",
    "\\u12",
    "\\u00g0",
    "\\U0041",
    "\\",
    "\"",
    "01",
    "1.",
    "1e",
    "1e+",
    "-",
    ".5",
    "tru",
    "nul",
    "fals",
    ",",
    ",]",
    ",}",
    "[",
    "{",
    ":",
    "\u{1}",
    "\u{1f}",
    "\"Records\":[]",
    "\"Records\"",
    "\\u0052",
    "}",
    "]",
    "{}",
    "[]",
    "\"\":",
    "\u{a0}",
    "\u{c}",
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    #[test]
    fn the_splitter_splits_every_valid_log_file_like_serde_json(text in log_file()) {
        let expected = serde_spans(text.as_bytes());
        prop_assert!(expected.is_some(), "serde_json rejects the generated document {}", text);
        prop_assert!(check(text.as_bytes())?, "the splitter declined {}", text);
    }

    #[test]
    fn the_splitter_declines_whatever_serde_json_reads_otherwise(
        text in log_file(),
        edits in prop::collection::vec((
            any::<prop::sample::Index>(),
            0u8..4,
            prop::sample::select(INTERESTING.to_vec()),
            prop::sample::select(SNIPPETS.to_vec()),
        ), 1..4),
    ) {
        let mut bytes = text.into_bytes();
        for (at, kind, byte, snippet) in edits {
            let i = at.index(bytes.len() + 1);
            match kind {
                0 => bytes.insert(i, byte),
                3 => {
                    bytes.splice(i..i, snippet.bytes());
                }
                1 if i < bytes.len() => { bytes.remove(i); }
                _ if i < bytes.len() => bytes[i] = byte,
                _ => bytes.push(byte),
            }
        }
        check(&bytes)?;
    }

    #[test]
    fn the_splitter_never_panics_on_any_bytes(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        check(&bytes)?;
        let mut framed = b"{\"Records\":[".to_vec();
        framed.extend_from_slice(&bytes);
        check(&framed)?;
        framed.extend_from_slice(b"]}");
        check(&framed)?;
    }

    #[test]
    fn any_json_value_as_a_record_splits_like_serde_json(value in json(), before in ws(), after in ws()) {
        let mut text = format!("{{\"Records\":[{before}");
        render(&mut text, &value);
        text.push_str(&after);
        text.push_str("]}");
        prop_assert!(check(text.as_bytes())?, "declined {}", text);
    }
}

// ---------------------------------------------------------------------------------------------
// The reader of lines piece by piece against the reader of whole lines

/// Every record and problem a reader reports, in order.
#[derive(Default)]
struct Found {
    stream_over: Option<usize>,
    max: Option<usize>,
    items: Vec<String>,
}

impl input::Visitor for Found {
    fn record(&mut self, json: &str, position: &input::Position) {
        // A line read whole gives a bare record with its newline.
        let json = json.trim_matches(|c| matches!(c, ' ' | '\t' | '\n' | '\r'));
        self.items.push(format!("{position} {json}"));
    }
    fn error(&mut self, error: input::InputError) {
        self.items.push(format!("error {error}"));
    }
    fn max_record_bytes(&self) -> usize {
        self.max.unwrap_or(input::DEFAULT_MAX_RECORD_BYTES)
    }
    fn stream_lines_over(&self) -> Option<usize> {
        self.stream_over
    }
}

/// Gives its bytes `size` at a time.
struct Trickle<'a>(&'a [u8], usize);

impl std::io::Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.1.min(buf.len()).min(self.0.len());
        buf[..n].copy_from_slice(&self.0[..n]);
        self.0 = &self.0[n..];
        Ok(n)
    }
}

/// What the reader finds in `text`, read whole (`stream_over` `None`) or with lines over
/// `stream_over` bytes read piece by piece from reads of `read_size` bytes.
fn found(
    text: &[u8],
    stream_over: Option<usize>,
    read_size: usize,
    max: Option<usize>,
) -> Vec<String> {
    let mut found = Found {
        stream_over,
        max,
        ..Found::default()
    };
    let name = std::sync::Arc::from("t.json");
    match stream_over {
        None => input::read_stream(&name, text, &mut found),
        Some(_) => input::read_stream(&name, Trickle(text, read_size), &mut found),
    }
    found.items
}

fn rendered(value: &Json) -> String {
    let mut text = String::new();
    render(&mut text, value);
    text
}

/// A value as the input may hold one: a log file, an array, or any value.
fn top_value() -> impl Strategy<Value = String> {
    prop_oneof![
        2 => log_file(),
        1 => prop::collection::vec((ws(), json(), ws()), 0..6).prop_map(|items| {
            rendered(&Json::Array(items))
        }),
        1 => json().prop_map(|value| rendered(&value)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn valid_json_lines_read_piece_by_piece_read_as_whole_lines(
        lines in prop::collection::vec(top_value(), 1..5),
        stream_over in 0usize..200,
        read_size in 1usize..50,
        max in prop::option::of(1usize..300),
    ) {
        // One value a line: whitespace in them (the only raw newlines) made spaces.
        let text: String = lines
            .iter()
            .map(|line| format!("{}\n", line.replace(['\n', '\r'], " ")))
            .collect();
        let whole = found(text.as_bytes(), None, 0, max);
        prop_assert!(!whole.iter().any(|i| i.starts_with("error") && !i.contains("expected a CloudTrail record") && !i.contains("--max-record-bytes")), "{:#?}", whole);
        let streamed = found(text.as_bytes(), Some(stream_over), read_size, max);
        prop_assert_eq!(streamed, whole, "{}", text);
    }

    #[test]
    fn a_valid_document_read_piece_by_piece_reads_as_it_does_whole(
        value in top_value(),
        stream_over in 0usize..200,
        read_size in 1usize..50,
        max in prop::option::of(1usize..300),
    ) {
        let whole = found(value.as_bytes(), None, 0, max);
        let streamed = found(value.as_bytes(), Some(stream_over), read_size, max);
        prop_assert_eq!(streamed, whole, "{}", value);
    }

    #[test]
    fn any_bytes_read_piece_by_piece_never_panic(
        bytes in prop::collection::vec(prop::sample::select(INTERESTING.to_vec()), 0..400),
        stream_over in 0usize..50,
        read_size in 1usize..20,
    ) {
        let items = found(&bytes, Some(stream_over), read_size, Some(40));
        prop_assert!(items.len() <= bytes.len() + 1);
    }
}

#[test]
fn deep_nesting_costs_no_recursion() {
    let depth = 200_000;
    let text = format!(
        "{{\"Records\":[{{\"a\":{}{}}}]}}",
        "[".repeat(depth),
        "]".repeat(depth)
    );
    let mut spans = Vec::new();
    assert!(split::records(text.as_bytes(), &mut spans));
    assert_eq!(spans.len(), 1);
    let unbalanced = format!("{{\"Records\":[{}]}}", "[{".repeat(depth));
    assert!(!split::records(unbalanced.as_bytes(), &mut spans));
}
