//! Every export shape sesguard reads gives the signals of the CloudTrail log file holding the
//! same records, and the inputs that hold no record say so (issue 16).
//!
//! The fixtures in `tests/fixtures/shapes/` are built here from the records of `events/` (the
//! sample attack), so they stay in step with them: `fixtures_are_built_from_the_sample_events`
//! fails when they drift, and `SESGUARD_WRITE_FIXTURES=1 cargo test --test shapes` rewrites them.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Output;

use assert_cmd::Command;
use serde_json::{Value, json};

const SHAPES: &str = "tests/fixtures/shapes";
const LOG_GROUP: &str = "aws-cloudtrail-logs-111122223333";
const LOG_STREAM: &str = "111122223333_CloudTrail_us-east-1";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

// ---------------------------------------------------------------------------------------------
// The fixtures, from the records of events/

/// The CloudTrail records of `events/`, in name order (as a folder scan reads them).
fn records() -> Vec<Value> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(root().join("events"))
        .expect("events/")
        .map(|entry| entry.expect("entry").path())
        .filter(|path| path.extension().is_some_and(|e| e == "json"))
        .collect();
    paths.sort();
    paths
        .iter()
        .map(|path| {
            let text = std::fs::read_to_string(path).expect("read event");
            let envelope: Value = serde_json::from_str(&text).expect("event is JSON");
            envelope["detail"].clone()
        })
        .collect()
}

fn compact(value: &Value) -> String {
    serde_json::to_string(value).expect("json")
}

fn pretty(value: &Value) -> String {
    serde_json::to_string_pretty(value).expect("json")
}

fn text(value: &Value, key: &str) -> String {
    value[key].as_str().unwrap_or_default().to_owned()
}

/// A record's event time in milliseconds since the epoch (CloudWatch Logs' timestamps).
fn millis(record: &Value) -> i64 {
    let at = time::OffsetDateTime::parse(
        &text(record, "eventTime"),
        &time::format_description::well_known::Rfc3339,
    )
    .expect("eventTime");
    (at.unix_timestamp_nanos() / 1_000_000) as i64
}

fn gzip(text: &str) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(text.as_bytes()).expect("gzip");
    gz.finish().expect("gzip")
}

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(bytes)
        .read_to_end(&mut out)
        .expect("gunzip");
    out
}

/// A subscription-filter payload (what CloudWatch Logs sends a Kinesis stream or Firehose).
fn subscription(records: &[Value], first_id: usize) -> Value {
    json!({
        "messageType": "DATA_MESSAGE",
        "owner": "111122223333",
        "logGroup": LOG_GROUP,
        "logStream": LOG_STREAM,
        "subscriptionFilters": ["sesguard"],
        "logEvents": records.iter().enumerate().map(|(i, record)| json!({
            "id": format!("{:056}", first_id + i),
            "timestamp": millis(record),
            "message": compact(record),
        })).collect::<Vec<_>>(),
    })
}

/// Every shape, as (file name, bytes): the reference log file first.
fn shapes() -> Vec<(&'static str, Vec<u8>)> {
    let records = records();
    let log_file = json!({ "Records": records });
    let lookup = json!({
        "Events": records.iter().map(|record| json!({
            "EventId": text(record, "eventID"),
            "EventName": text(record, "eventName"),
            "ReadOnly": if text(record, "eventName").starts_with("Get")
                || text(record, "eventName").starts_with("List") { "true" } else { "false" },
            "EventTime": text(record, "eventTime"),
            "EventSource": text(record, "eventSource"),
            "Resources": [],
            "CloudTrailEvent": compact(record),
        })).collect::<Vec<_>>(),
    });
    let filtered = json!({
        "events": records.iter().enumerate().map(|(i, record)| json!({
            "logStreamName": LOG_STREAM,
            "timestamp": millis(record),
            "message": compact(record),
            "ingestionTime": millis(record) + 5_000,
            "eventId": format!("{:056}", i),
        })).collect::<Vec<_>>(),
        "searchedLogStreams": [{ "logStreamName": LOG_STREAM, "searchedCompletely": true }],
    });
    let got = json!({
        "events": records.iter().map(|record| json!({
            "timestamp": millis(record),
            "message": compact(record),
            "ingestionTime": millis(record) + 5_000,
        })).collect::<Vec<_>>(),
        "nextForwardToken": "f/00000000000000000000000000000000000000000000000000000000",
        "nextBackwardToken": "b/00000000000000000000000000000000000000000000000000000000",
    });
    let half = records.len() / 2;
    let control = json!({
        "messageType": "CONTROL_MESSAGE",
        "owner": "CloudwatchLogs",
        "logGroup": "",
        "logStream": "",
        "subscriptionFilters": [],
        "logEvents": [{
            "id": "",
            "timestamp": 1772441999000_i64,
            "message": "CWL CONTROL MESSAGE: Checking health of destination Firehose.",
        }],
    });
    // What Firehose writes to S3 from a subscription: payloads one after the other, no newline.
    let firehose = [
        compact(&control),
        compact(&subscription(&records[..half], 0)),
        compact(&subscription(&records[half..], half)),
    ]
    .concat();
    // `zcat a.json.gz b.json.gz`: a compact log file without a final newline, then a
    // pretty-printed one.
    let concatenated = format!(
        "{}{}\n",
        compact(&json!({ "Records": records[..half] })),
        pretty(&json!({ "Records": records[half..] }))
    );
    vec![
        ("log-file.json", compact(&log_file).into_bytes()),
        (
            "lookup-events.json",
            format!("{}\n", pretty(&lookup)).into_bytes(),
        ),
        (
            "filter-log-events.json",
            format!("{}\n", pretty(&filtered)).into_bytes(),
        ),
        (
            "get-log-events.json",
            format!("{}\n", pretty(&got)).into_bytes(),
        ),
        (
            "subscription.json.gz",
            gzip(&compact(&subscription(&records, 0))),
        ),
        ("firehose-subscriptions.gz", gzip(&firehose)),
        ("concatenated.json", concatenated.into_bytes()),
    ]
}

/// The text of a fixture (inflated when gzip-compressed: compressors may differ in bytes).
fn content(name: &str, bytes: &[u8]) -> Vec<u8> {
    if name.ends_with(".gz") {
        gunzip(bytes)
    } else {
        bytes.to_vec()
    }
}

#[test]
fn fixtures_are_built_from_the_sample_events() {
    let dir = root().join(SHAPES);
    let write = std::env::var_os("SESGUARD_WRITE_FIXTURES").is_some();
    for (name, bytes) in shapes() {
        let path = dir.join(name);
        if write {
            std::fs::create_dir_all(&dir).expect("mkdir");
            std::fs::write(&path, &bytes).expect("write fixture");
        }
        let committed = std::fs::read(&path).unwrap_or_else(|err| {
            panic!("{name}: {err}; run SESGUARD_WRITE_FIXTURES=1 cargo test --test shapes")
        });
        assert!(
            content(name, &committed) == content(name, &bytes),
            "{name} differs from what events/ gives; run SESGUARD_WRITE_FIXTURES=1 cargo test \
             --test shapes"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Running the binary

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn new(output: Output) -> Run {
        Run {
            code: output.status.code().expect("exit code"),
            stdout: String::from_utf8(output.stdout).expect("UTF-8"),
            stderr: String::from_utf8(output.stderr).expect("UTF-8"),
        }
    }

    /// The signals, as printed (JSON Lines).
    fn signals(&self) -> Vec<String> {
        self.stdout.lines().map(str::to_owned).collect()
    }

    fn summary(&self) -> &str {
        self.stderr.lines().last().unwrap_or("")
    }

    /// stderr lines other than the summary.
    fn problems(&self) -> Vec<&str> {
        let summary = self.summary();
        self.stderr.lines().filter(|l| *l != summary).collect()
    }
}

fn sesguard(dir: &Path, args: &[&str], stdin: Option<Vec<u8>>) -> Run {
    sesguard_threads(dir, "1", args, stdin)
}

fn sesguard_threads(dir: &Path, threads: &str, args: &[&str], stdin: Option<Vec<u8>>) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sesguard"));
    cmd.current_dir(dir)
        .args(["scan", "--format", "jsonl", "--threads", threads])
        .args(args);
    if let Some(input) = stdin {
        cmd.write_stdin(input);
    }
    Run::new(cmd.output().expect("run sesguard"))
}

fn scan(args: &[&str]) -> Run {
    sesguard(&root(), args, None)
}

fn scan_stdin(input: Vec<u8>) -> Run {
    sesguard(&root(), &["-"], Some(input))
}

fn fixture(name: &str) -> String {
    format!("{SHAPES}/{name}")
}

/// The signals of the reference log file (checked to be there: the sample attack fires).
fn reference() -> Vec<String> {
    let run = scan(&[&fixture("log-file.json")]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.signals().len() >= 8, "{}", run.stdout);
    run.signals()
}

#[test]
fn every_export_shape_gives_the_signals_of_the_log_file() {
    let expected = reference();
    let records = records().len();
    for (name, _) in shapes().iter().skip(1) {
        let run = scan(&[&fixture(name)]);
        assert_eq!(run.code, 0, "{name}: {}", run.stderr);
        assert!(run.problems().is_empty(), "{name}: {}", run.stderr);
        assert_eq!(run.signals(), expected, "{name}");
        assert!(
            run.summary().starts_with(&format!(
                "sesguard: 1 file, {records} records read, 0 malformed"
            )),
            "{name}: {}",
            run.summary()
        );
    }
}

#[test]
fn every_export_shape_on_stdin_gives_the_signals_of_the_log_file() {
    let expected = reference();
    for (name, bytes) in shapes() {
        let run = scan_stdin(bytes);
        assert_eq!(run.code, 0, "{name}: {}", run.stderr);
        assert_eq!(run.signals(), expected, "{name}");
    }
}

#[test]
fn joined_gzip_files_on_stdin_one_compact_one_pretty_give_the_signals_of_the_folder() {
    let expected = reference();
    let records = records();
    let half = records.len() / 2;
    // `zcat a.json.gz b.json.gz | sesguard scan -`, and the files as they are (`cat`).
    let a = gzip(&compact(&json!({ "Records": records[..half] })));
    let b = gzip(&pretty(&json!({ "Records": records[half..] })));
    let zcat = [gunzip(&a), gunzip(&b)].concat();
    for (how, input) in [("zcat", zcat), ("cat", [a, b].concat())] {
        let run = scan_stdin(input);
        assert_eq!(run.code, 0, "{how}: {}", run.stderr);
        assert!(run.problems().is_empty(), "{how}: {}", run.stderr);
        assert_eq!(run.signals(), expected, "{how}");
    }
    // Compact and pretty the other way round, with whitespace between and without.
    for sep in ["", "\n", " \n\t"] {
        let input = format!(
            "{}{sep}{}",
            pretty(&json!({ "Records": records[..half] })),
            compact(&json!({ "Records": records[half..] }))
        );
        let run = scan_stdin(input.into_bytes());
        assert_eq!(run.signals(), expected, "separator {sep:?}");
        assert_eq!(run.code, 0, "{}", run.stderr);
    }
}

#[test]
fn an_embedded_record_that_is_not_json_is_named_by_file_and_element() {
    let records = records();
    let mut lookup = json!({
        "Events": records.iter().map(|r| json!({ "CloudTrailEvent": compact(r) })).collect::<Vec<_>>()
    });
    lookup["Events"][2]["CloudTrailEvent"] = json!("{\"eventVersion\":\"1.08\",");
    lookup["Events"][4] = json!({ "EventId": "no-record" });
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("lookup.json"), pretty(&lookup)).expect("write");
    let run = sesguard(dir.path(), &["lookup.json"], None);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_eq!(
        run.problems(),
        [
            "sesguard: lookup.json: line 1, record 3: lookup-events result: CloudTrailEvent is \
             not JSON (EOF while parsing an object): \"{\\\"eventVersion\\\":\\\"1.08\\\",\"",
            "sesguard: lookup.json: line 1, record 5: lookup-events result has no CloudTrailEvent",
        ],
        "{}",
        run.stderr
    );
    // The other records were read.
    assert!(
        run.summary()
            .contains(&format!("{} records read, 2 malformed", records.len() - 2)),
        "{}",
        run.summary()
    );
}

// ---------------------------------------------------------------------------------------------
// Honest zeros

#[test]
fn objects_that_are_not_cloudtrail_are_counted_and_named_once_per_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let record = compact(&records()[0]);
    std::fs::write(
        dir.path().join("only.json"),
        "{\"a\":1,\"b\":2}\n{\"a\":3}\n",
    )
    .expect("w");
    std::fs::write(
        dir.path().join("mixed.jsonl"),
        format!("{record}\n{{\"zeta\":1}}\n{{}}\n"),
    )
    .expect("w");
    let run = sesguard(dir.path(), &["only.json"], None);
    assert_eq!(
        run.code, 1,
        "a file without a record is unreadable: {}",
        run.stderr
    );
    assert_eq!(
        run.problems(),
        [
            "sesguard: only.json: no CloudTrail record in this file: found an object with keys \
          a, b and 1 more objects that are not records"
        ]
    );
    assert_eq!(
        run.summary(),
        "sesguard: 1 file, 0 records read, 0 malformed, 1 unreadable, 2 objects not CloudTrail; \
         0 records matched a rule; 0 signals, 0 signals suppressed, 0 signals deduplicated"
    );
    let run = sesguard(dir.path(), &["mixed.jsonl"], None);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        run.problems(),
        [
            "sesguard: mixed.jsonl: line 2: skipped 2 objects that are not CloudTrail records, the \
          first an object with key zeta"
        ]
    );
    assert!(
        run.summary().starts_with(
            "sesguard: 1 file, 1 record read, 0 malformed, 0 unreadable, 2 objects not CloudTrail;"
        ),
        "{}",
        run.summary()
    );
}

#[test]
fn a_trail_folder_with_digest_files_scans_clean_and_counts_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let trail = dir
        .path()
        .join("AWSLogs/111122223333/CloudTrail/us-east-1/2026/03/02");
    let digests = dir
        .path()
        .join("AWSLogs/111122223333/CloudTrail-Digest/us-east-1/2026/03/02");
    std::fs::create_dir_all(&trail).expect("mkdir");
    std::fs::create_dir_all(&digests).expect("mkdir");
    let log = std::fs::read(root().join(SHAPES).join("log-file.json")).expect("fixture");
    std::fs::write(
        trail.join("111122223333_CloudTrail_us-east-1_20260302T0905Z_a.json.gz"),
        gzip(&String::from_utf8(log).expect("UTF-8")),
    )
    .expect("w");
    let digest = json!({
        "awsAccountId": "111122223333",
        "digestStartTime": "2026-03-02T08:00:00Z",
        "digestEndTime": "2026-03-02T09:00:00Z",
        "digestS3Bucket": "trail-bucket",
        "newestEventTime": "2026-03-02T08:59:59Z",
        "previousDigestSignature": "00",
        "logFiles": [],
    });
    std::fs::write(
        digests.join(
            "111122223333_CloudTrail-Digest_us-east-1_trail_us-east-1_20260302T090000Z.json.gz",
        ),
        gzip(&compact(&digest)),
    )
    .expect("w");
    let run = sesguard(dir.path(), &["AWSLogs"], None);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.problems().is_empty(), "{}", run.stderr);
    assert_eq!(run.signals(), reference());
    assert!(
        run.summary().contains(", 1 digest file skipped;"),
        "{}",
        run.summary()
    );
    // A digest file under another name is known by its shape: skipped, told, not an error.
    std::fs::write(dir.path().join("renamed.json"), pretty(&digest)).expect("w");
    let run = sesguard(dir.path(), &["renamed.json"], None);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        run.problems(),
        [
            "sesguard: renamed.json: line 1: skipped, not a CloudTrail record: a CloudTrail digest file"
        ]
    );
    assert!(
        run.summary().contains(", 1 digest file skipped;"),
        "{}",
        run.summary()
    );
}

#[test]
fn a_control_message_alone_is_skipped_without_a_problem() {
    let control = json!({
        "messageType": "CONTROL_MESSAGE",
        "logEvents": [{ "id": "", "timestamp": 1, "message": "CWL CONTROL MESSAGE: Checking health of destination Firehose." }],
    });
    let run = scan_stdin(gzip(&compact(&control)));
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        run.problems(),
        [
            "sesguard: <stdin>: line 1: skipped, not a CloudTrail record: a CloudWatch Logs \
          subscription control message"
        ]
    );
}

#[test]
fn text_that_is_not_json_says_so() {
    let run = scan_stdin(b"hello\n".to_vec());
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_eq!(
        run.problems(),
        [
            "sesguard: <stdin>: line 1: not JSON (expected value): expected a CloudTrail record (a \
          JSON object)"
        ]
    );
}

#[test]
fn missing_paths_and_empty_directories_exit_2_after_the_rest_was_scanned() {
    let expected = reference();
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(dir.path().join("empty")).expect("mkdir");
    std::fs::create_dir(dir.path().join("text-only")).expect("mkdir");
    std::fs::write(dir.path().join("text-only/notes.txt"), "hello").expect("w");
    let log = root().join(SHAPES).join("log-file.json");
    let log = log.to_str().expect("UTF-8 path");
    let run = sesguard(dir.path(), &["nope.json", "empty", log, "text-only"], None);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert_eq!(run.signals(), expected, "the rest was scanned");
    assert_eq!(
        run.problems(),
        [
            "sesguard: nope.json: no such file or directory",
            "sesguard: empty: no input file in this directory (read: .json, .jsonl, .ndjson and \
             .gz files; hidden entries are skipped)",
            "sesguard: text-only: no input file in this directory (read: .json, .jsonl, .ndjson \
             and .gz files; hidden entries are skipped)",
        ]
    );
    assert!(
        run.summary().contains(", 3 paths not found or empty;"),
        "{}",
        run.summary()
    );
}

#[test]
fn a_missing_tor_list_names_the_config_file_and_the_resolved_path() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(dir.path().join("conf")).expect("mkdir");
    std::fs::write(
        dir.path().join("conf/sesguard.toml"),
        "tor_exit_list = \"lists/tor.txt\"\n",
    )
    .expect("w");
    let run = sesguard(
        dir.path(),
        &["--config", "conf/sesguard.toml", "-"],
        Some(Vec::new()),
    );
    assert_eq!(run.code, 2, "{}", run.stderr);
    let expected: BTreeSet<&str> = [
        "sesguard: error: cannot read the Tor exit list conf/lists/tor.txt (tor_exit_list in \
         conf/sesguard.toml): No such file or directory (os error 2)",
    ]
    .into();
    assert_eq!(run.stderr.lines().collect::<BTreeSet<_>>(), expected);
}

#[test]
fn one_signal_is_one_signal_in_the_summary() {
    let record = std::fs::read_to_string(root().join("events/iam-CreateUser-ses-smtp-user.json"))
        .expect("event");
    let run = scan_stdin(record.into_bytes());
    assert_eq!(run.signals().len(), 1, "{}", run.stdout);
    assert_eq!(
        run.summary(),
        format!(
            "sesguard: 1 file, 1 record read, 0 malformed, 0 unreadable; 1 record matched a \
             rule; 1 signal ({} 1), 0 signals suppressed, 0 signals deduplicated",
            serde_json::from_str::<Value>(&run.stdout)
                .map(|s| text(&s, "rule_id"))
                .unwrap_or_default()
        )
    );
}

#[test]
fn files_read_on_several_threads_tell_the_same_zeros_as_one_thread() {
    let dir = tempfile::tempdir().expect("tempdir");
    let fixtures = root().join(SHAPES);
    for (name, _) in shapes().iter() {
        std::fs::copy(fixtures.join(name), dir.path().join(name)).expect("copy");
    }
    let record = compact(&records()[0]);
    std::fs::write(dir.path().join("a-only.json"), "{\"a\":1}\n").expect("w");
    std::fs::write(
        dir.path().join("b-mixed.jsonl"),
        format!("{record}\n{{\"zeta\":1}}\n"),
    )
    .expect("w");
    std::fs::write(dir.path().join("c-empty-log.json"), "{\"Records\":[]}").expect("w");
    let one = sesguard_threads(dir.path(), "1", &["."], None);
    assert_eq!(one.code, 1, "{}", one.stderr);
    assert_eq!(
        one.problems(),
        // Files are read by the time of their first record; those without one come first.
        [
            "sesguard: ./a-only.json: no CloudTrail record in this file: found an object with key a",
            "sesguard: ./c-empty-log.json: no CloudTrail record in this file",
            "sesguard: ./b-mixed.jsonl: line 2: skipped, not a CloudTrail record: an object with \
             key zeta",
        ]
    );
    let two = sesguard_threads(dir.path(), "2", &["."], None);
    assert_eq!(
        (two.code, &two.stdout, &two.stderr),
        (one.code, &one.stdout, &one.stderr)
    );
}

#[test]
fn an_export_larger_than_max_record_bytes_says_how_to_read_it() {
    let run = scan(&["--max-record-bytes", "1000", &fixture("lookup-events.json")]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let problems = run.problems();
    assert_eq!(problems.len(), 1, "{}", run.stderr);
    // The document without its final newline.
    let size = std::fs::metadata(root().join(SHAPES).join("lookup-events.json"))
        .expect("fixture")
        .len()
        - 1;
    assert!(
        problems[0].ends_with(&format!(
            "lookup-events.json: line 1: record of {} bytes is larger than --max-record-bytes \
             (1,000): skipped (an export of records, such as lookup-events or CloudWatch Logs \
             output, is read whole: raise --max-record-bytes to read it)",
            sesguard::text::thousands(size)
        )),
        "{}",
        run.stderr
    );
}
