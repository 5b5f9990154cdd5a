//! End-to-end tests of the `sesguard` binary: input shapes, directories, malformed input, exit
//! codes, output formats, the summary line, configuration and the committed samples.
//!
//! Inputs are written to temporary folders from records built here; `tests/fixtures/` holds the
//! few records that read better as real files.

mod support;

use std::collections::BTreeSet;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use assert_cmd::Command;
use serde_json::{Value, json};
use support::{R1, R2, R3, R4, R5, all_rules, gzip};
use tempfile::TempDir;

const ACCOUNT: &str = "111122223333";

// ---------------------------------------------------------------------------------------------
// Running the binary

fn sesguard() -> Command {
    Command::new(env!("CARGO_BIN_EXE_sesguard"))
}

/// What one run of the binary gave.
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn from_output(output: std::process::Output) -> Run {
        Run {
            code: output
                .status
                .code()
                .expect("sesguard was killed by a signal"),
            stdout: String::from_utf8(output.stdout).expect("stdout is UTF-8"),
            stderr: String::from_utf8(output.stderr).expect("stderr is UTF-8"),
        }
    }

    /// Every stdout line, parsed as one JSON signal.
    fn signals(&self) -> Vec<Value> {
        self.stdout
            .lines()
            .map(|line| {
                serde_json::from_str(line)
                    .unwrap_or_else(|err| panic!("stdout line is not JSON ({err}): {line}"))
            })
            .collect()
    }

    /// (rule_id, event_id) of every signal, in output order.
    fn pairs(&self) -> Vec<(String, String)> {
        self.signals()
            .iter()
            .map(|s| (text(&s["rule_id"]), text(&s["event_id"])))
            .collect()
    }

    fn pair_set(&self) -> BTreeSet<(String, String)> {
        self.pairs().into_iter().collect()
    }

    fn count(&self, rule: &str) -> usize {
        self.pairs().iter().filter(|(r, _)| r == rule).count()
    }

    /// The summary line (the last stderr line).
    fn summary(&self) -> &str {
        self.stderr.lines().last().unwrap_or("")
    }

    /// stderr lines that report a problem (not the summary).
    fn problems(&self) -> Vec<&str> {
        self.stderr
            .lines()
            .filter(|l| !(l.contains(" read, ") && l.contains(" unreadable")))
            .collect()
    }

    fn assert_code(&self, code: i32) -> &Self {
        assert_eq!(
            self.code, code,
            "exit code\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout, self.stderr
        );
        self
    }

    /// Exit 0, no problem reported, and these signals.
    fn assert_clean_with(&self, expected: &BTreeSet<(String, String)>, case: &str) {
        assert_eq!(self.code, 0, "{case}: exit code; stderr:\n{}", self.stderr);
        assert!(
            self.problems().is_empty(),
            "{case}: problems reported:\n{}",
            self.stderr
        );
        assert_eq!(&self.pair_set(), expected, "{case}: signals");
    }
}

fn text(value: &Value) -> String {
    value.as_str().unwrap_or_default().to_owned()
}

fn run(mut cmd: Command) -> Run {
    Run::from_output(cmd.output().expect("run sesguard"))
}

/// `sesguard scan ARGS` in `dir`, stdout a pipe (so jsonl unless told otherwise).
fn scan_in(dir: &Path, args: &[&str]) -> Run {
    let mut cmd = sesguard();
    cmd.current_dir(dir).arg("scan").args(args);
    run(cmd)
}

fn scan(args: &[&str]) -> Run {
    scan_in(Path::new(env!("CARGO_MANIFEST_DIR")), args)
}

fn scan_stdin(args: &[&str], input: Vec<u8>) -> Run {
    let mut cmd = sesguard();
    cmd.arg("scan").args(args).write_stdin(input);
    run(cmd)
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("temporary paths are UTF-8")
}

// ---------------------------------------------------------------------------------------------
// Records and files

fn key_of(user: &str) -> String {
    let mut key = format!("AKIA{}", user.to_ascii_uppercase().replace('-', ""));
    key.truncate(20);
    key
}

/// An SES call by IAM user `user` with its long-term key (the shared builder, with the fields
/// a real record carries besides).
fn call(event_id: &str, event_name: &str, user: &str, time: &str, params: Value) -> Value {
    support::ses(event_name)
        .id(event_id)
        .user(json!({
            "type": "IAMUser",
            "principalId": format!("AIDA{}", key_of(user)),
            "arn": format!("arn:aws:iam::{ACCOUNT}:user/{user}"),
            "accountId": ACCOUNT,
            "accessKeyId": key_of(user),
            "userName": user,
        }))
        .set(&["eventTime"], json!(time))
        .agent("aws-cli/2.15.30 Python/3.11.8 Linux/6.1 exe/x86_64.ubuntu.22 prompt/off")
        .params(params)
        .set(
            &["readOnly"],
            json!(event_name.starts_with("Get") || event_name.starts_with("List")),
        )
        .set(&["eventType"], json!("AwsApiCall"))
        .set(&["managementEvent"], json!(true))
        .set(&["eventCategory"], json!("Management"))
        .0
}

/// Fires R1 and R2 (the first time `user` is seen).
fn get_account(event_id: &str, user: &str, time: &str) -> Value {
    call(event_id, "GetAccount", user, time, Value::Null)
}

/// Fires R3.
fn verify_email(event_id: &str, user: &str, email: &str, time: &str) -> Value {
    call(
        event_id,
        "VerifyEmailIdentity",
        user,
        time,
        json!({ "emailAddress": email }),
    )
}

/// Fires R3 and R5, and R4 when the identity was verified in the hour before.
fn delete_identity(event_id: &str, user: &str, identity: &str, time: &str) -> Value {
    call(
        event_id,
        "DeleteIdentity",
        user,
        time,
        json!({ "identity": identity }),
    )
}

fn with_ip(mut record: Value, ip: &str) -> Value {
    record["sourceIPAddress"] = json!(ip);
    record
}

/// The EventBridge event around a record.
fn envelope(record: &Value) -> Value {
    json!({
        "version": "0",
        "id": format!("envelope-{}", text(&record["eventID"])),
        "detail-type": "AWS API Call via CloudTrail",
        "source": "aws.ses",
        "account": ACCOUNT,
        "time": record["eventTime"],
        "region": "us-east-1",
        "resources": [],
        "detail": record,
    })
}

/// A CloudTrail log file.
fn log_file(records: &[Value]) -> Value {
    json!({ "Records": records })
}

fn line(value: &Value) -> String {
    serde_json::to_string(value).expect("serialise")
}

fn pretty(value: &Value) -> String {
    serde_json::to_string_pretty(value).expect("serialise") + "\n"
}

fn jsonl(values: &[Value]) -> String {
    values.iter().map(|v| line(v) + "\n").collect()
}

/// Writes `bytes` to `dir/name`, creating folders on the way.
fn write(dir: &Path, name: &str, bytes: impl AsRef<[u8]>) -> PathBuf {
    let path = dir.join(name);
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).expect("create folder");
    }
    fs::write(&path, bytes).expect("write file");
    path
}

fn tempdir() -> TempDir {
    tempfile::tempdir().expect("temporary folder")
}

fn pairs(list: &[(&str, &str)]) -> BTreeSet<(String, String)> {
    list.iter()
        .map(|(r, e)| ((*r).to_owned(), (*e).to_owned()))
        .collect()
}

/// Three calls that fire every rule: a discovery call, then an identity verified and deleted.
fn story() -> Vec<Value> {
    vec![
        get_account("story-1", "leaked-cli", "2026-03-02T09:00:00Z"),
        verify_email(
            "story-2",
            "leaked-cli",
            "phish@example.net",
            "2026-03-02T09:05:00Z",
        ),
        delete_identity(
            "story-3",
            "leaked-cli",
            "phish@example.net",
            "2026-03-02T09:20:00Z",
        ),
    ]
}

fn story_signals() -> BTreeSet<(String, String)> {
    pairs(&[
        (R1, "story-1"),
        (R2, "story-1"),
        (R3, "story-2"),
        (R3, "story-3"),
        (R4, "story-3"),
        (R5, "story-3"),
    ])
}

/// Files to write: (name, content).
type Files = Vec<(String, Vec<u8>)>;

/// The story in every file shape: (shape, files).
fn story_shapes() -> Vec<(&'static str, Files)> {
    let records = story();
    let envelopes: Vec<Value> = records.iter().map(envelope).collect();
    let one = |name: &str, text: String| vec![(name.to_owned(), text.into_bytes())];
    let each = |texts: Vec<String>| {
        texts
            .into_iter()
            .enumerate()
            .map(|(i, t)| (format!("{}.json", i + 1), t.into_bytes()))
            .collect::<Files>()
    };
    let mixed_lines = [
        line(&envelopes[0]),
        line(&records[1]),
        line(&log_file(&records[2..])),
    ]
    .map(|l| l + "\n")
    .concat();
    vec![
        (
            "one EventBridge envelope per file, pretty-printed",
            each(envelopes.iter().map(pretty).collect()),
        ),
        (
            "one EventBridge envelope per file, on one line",
            each(envelopes.iter().map(line).collect()),
        ),
        (
            "one bare record per file",
            each(records.iter().map(line).collect()),
        ),
        (
            "a CloudTrail log file on one line",
            one("trail.json", line(&log_file(&records))),
        ),
        (
            "a pretty-printed CloudTrail log file",
            one("trail.json", pretty(&log_file(&records))),
        ),
        (
            "a JSON array of records",
            one("records.json", pretty(&json!(records))),
        ),
        (
            "a JSON array of envelopes",
            one("envelopes.json", line(&json!(envelopes))),
        ),
        (
            "JSON Lines of envelopes",
            one("events.jsonl", jsonl(&envelopes)),
        ),
        (
            "JSON Lines of records",
            one("events.ndjson", jsonl(&records)),
        ),
        (
            "JSON Lines mixing an envelope, a record and a log file",
            one("events.jsonl", mixed_lines),
        ),
    ]
}

// ---------------------------------------------------------------------------------------------
// 1. Input shapes

#[test]
fn every_file_shape_is_detected_and_gives_the_same_signals() {
    for (shape, files) in story_shapes() {
        let dir = tempdir();
        for (name, bytes) in &files {
            write(dir.path(), name, bytes);
        }
        scan(&[path_str(dir.path())]).assert_clean_with(&story_signals(), shape);
    }
}

#[test]
fn every_file_shape_gives_the_same_signals_when_gzip_compressed() {
    for (shape, files) in story_shapes() {
        let dir = tempdir();
        for (name, bytes) in &files {
            write(dir.path(), &format!("{name}.gz"), gzip(bytes));
        }
        scan(&[path_str(dir.path())]).assert_clean_with(&story_signals(), shape);
    }
}

#[test]
fn gzip_is_detected_by_magic_bytes_not_by_file_name() {
    let records = story();
    let dir = tempdir();
    // Gzip in a .json file (scanned in the folder) and in a .log file (named explicitly)...
    write(dir.path(), "in/1.json", gzip(line(&records[0]).as_bytes()));
    let log = write(dir.path(), "2.log", gzip(pretty(&records[1]).as_bytes()));
    // ...and plain text in a .gz file.
    write(dir.path(), "in/3.json.gz", jsonl(&records[2..]));
    scan(&[path_str(&dir.path().join("in")), path_str(&log)])
        .assert_clean_with(&story_signals(), "gzip without .gz and text with .gz");
}

#[test]
fn a_multi_member_gzip_file_is_read_to_its_last_member() {
    let records = story();
    let dir = tempdir();
    let mut bytes = gzip(jsonl(&records[..1]).as_bytes());
    bytes.extend(gzip(jsonl(&records[1..]).as_bytes()));
    let file = write(dir.path(), "concatenated.json.gz", bytes);
    scan(&[path_str(&file)]).assert_clean_with(&story_signals(), "two gzip members");
}

#[test]
fn standard_input_is_read_when_the_path_is_a_dash() {
    let text = jsonl(&story().iter().map(envelope).collect::<Vec<_>>());
    scan_stdin(&["-"], text.clone().into_bytes()).assert_clean_with(&story_signals(), "stdin");
    scan_stdin(&["-"], gzip(text.as_bytes())).assert_clean_with(&story_signals(), "gzip stdin");
    scan_stdin(&["-"], pretty(&log_file(&story())).into_bytes())
        .assert_clean_with(&story_signals(), "pretty-printed log file on stdin");
}

#[test]
fn a_utf8_byte_order_mark_and_crlf_line_ends_are_accepted() {
    const BOM: &str = "\u{feff}";
    let records = story();
    let crlf = |text: String| text.replace('\n', "\r\n");
    let cases = [
        ("JSON Lines", "events.jsonl", crlf(jsonl(&records))),
        ("log file", "trail.json", crlf(pretty(&log_file(&records)))),
        (
            "envelope array",
            "events.json",
            crlf(pretty(&json!(
                records.iter().map(envelope).collect::<Vec<_>>()
            ))),
        ),
    ];
    for (case, name, text) in cases {
        let dir = tempdir();
        let file = write(dir.path(), name, format!("{BOM}{text}"));
        scan(&[path_str(&file)]).assert_clean_with(&story_signals(), case);
        let gz = write(
            dir.path(),
            &format!("{name}.gz"),
            gzip(format!("{BOM}{text}").as_bytes()),
        );
        scan(&[path_str(&gz)]).assert_clean_with(&story_signals(), case);
    }
}

/// Writes `input` to sesguard's stdin one byte first, the rest a moment later, as a slow pipe
/// may deliver it.
fn scan_trickled_stdin(input: &[u8]) -> Run {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_sesguard"))
        .args(["scan", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start sesguard");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(&input[..1]).expect("write");
    stdin.flush().expect("flush");
    std::thread::sleep(Duration::from_millis(150));
    stdin.write_all(&input[1..]).expect("write");
    drop(stdin);
    Run::from_output(child.wait_with_output().expect("wait for sesguard"))
}

#[test]
fn gzip_and_a_byte_order_mark_are_recognised_when_stdin_delivers_one_byte_first() {
    let text = jsonl(&story());
    scan_trickled_stdin(&gzip(text.as_bytes()))
        .assert_clean_with(&story_signals(), "gzip, first byte alone");
    scan_trickled_stdin(format!("\u{feff}{text}").as_bytes())
        .assert_clean_with(&story_signals(), "BOM, first byte alone");
}

// ---------------------------------------------------------------------------------------------
// Records with old or sparse fields (committed fixtures)

fn fixture(name: &str) -> String {
    format!("tests/fixtures/{name}")
}

#[test]
fn an_event_version_1_02_record_without_recipient_account_id_is_evaluated() {
    let run = scan(&[&fixture("eventversion-1.02.json")]);
    run.assert_clean_with(
        &pairs(&[
            (R1, "fixture-eventversion-1-02"),
            (R2, "fixture-eventversion-1-02"),
        ]),
        "eventVersion 1.02",
    );
    for signal in run.signals() {
        assert_eq!(signal["account_id"], ACCOUNT, "account from userIdentity");
    }
}

#[test]
fn a_record_with_null_request_parameters_is_evaluated() {
    scan(&[&fixture("request-parameters-null.json")]).assert_clean_with(
        &pairs(&[(R2, "fixture-request-parameters-null")]),
        "requestParameters null",
    );
}

#[test]
fn a_console_session_with_an_empty_session_issuer_is_baselined_on_the_user() {
    let run = scan(&[&fixture("session-issuer-empty.json")]);
    run.assert_clean_with(
        &pairs(&[(R2, "fixture-session-issuer-empty")]),
        "sessionIssuer {}",
    );
    assert_eq!(
        run.signals()[0]["principal"],
        "arn:aws:iam::111122223333:user/carol"
    );
}

#[test]
fn a_record_without_a_user_identity_type_is_evaluated() {
    scan(&[&fixture("no-identity-type.json")]).assert_clean_with(
        &pairs(&[
            (R3, "fixture-no-identity-type"),
            (R5, "fixture-no-identity-type"),
        ]),
        "no userIdentity.type",
    );
}

// ---------------------------------------------------------------------------------------------
// 2. Directories

#[test]
fn directories_are_recursed_and_files_read_in_name_order() {
    let dir = tempdir();
    // Written out of order, so only sorting gives the expected order.
    write(
        dir.path(),
        "z.json.gz",
        gzip(line(&get_account("top-z", "erin", "2026-03-02T09:30:00Z")).as_bytes()),
    );
    write(
        dir.path(),
        "c/0.ndjson",
        line(&get_account("c-0", "dave", "2026-03-02T09:25:00Z")),
    );
    write(
        dir.path(),
        "b/2.json",
        line(&delete_identity(
            "b-2-delete",
            "bob",
            "phish@example.net",
            "2026-03-02T09:20:00Z",
        )),
    );
    write(
        dir.path(),
        "a/3.jsonl",
        line(&get_account("a-3", "carol", "2026-03-02T09:10:00Z")),
    );
    write(
        dir.path(),
        "a/1.json",
        pretty(&envelope(&verify_email(
            "a-1-verify",
            "bob",
            "phish@example.net",
            "2026-03-02T09:05:00Z",
        ))),
    );
    let run = scan(&[path_str(dir.path())]);
    run.assert_code(0);
    assert!(run.summary().contains("5 files"), "{}", run.summary());

    let mut order: Vec<String> = run.pairs().into_iter().map(|(_, event)| event).collect();
    order.dedup();
    assert_eq!(order, ["a-1-verify", "a-3", "b-2-delete", "c-0", "top-z"]);

    let pair = run
        .signals()
        .into_iter()
        .find(|s| s["rule_id"] == R4)
        .expect("the verify in a/1.json and the delete in b/2.json pair");
    assert_eq!(pair["event_id"], "b-2-delete");
    assert_eq!(pair["related_event_ids"], json!(["a-1-verify"]));
}

#[test]
fn hidden_entries_and_other_extensions_are_skipped_in_directories() {
    let dir = tempdir();
    let firing = |id: &str| line(&get_account(id, id, "2026-03-02T09:00:00Z"));
    write(dir.path(), "ok.json", firing("ok"));
    write(dir.path(), "more/ok.jsonl", firing("ok-jsonl"));
    write(dir.path(), ".hidden.json", firing("hidden-file"));
    write(dir.path(), ".git/events.json", firing("hidden-folder"));
    write(dir.path(), "notes.txt", firing("txt"));
    write(dir.path(), "trail.json.bak", firing("bak"));
    write(dir.path(), "README.md", firing("md"));
    let run = scan(&[path_str(dir.path())]);
    run.assert_clean_with(
        &pairs(&[(R1, "ok"), (R2, "ok"), (R1, "ok-jsonl"), (R2, "ok-jsonl")]),
        "folder scan",
    );
    assert!(run.summary().contains("2 files"), "{}", run.summary());
}

#[test]
fn a_file_named_explicitly_is_read_whatever_its_name() {
    let dir = tempdir();
    let firing = |id: &str| line(&get_account(id, id, "2026-03-02T09:00:00Z"));
    let txt = write(dir.path(), "notes.txt", firing("txt"));
    let hidden = write(dir.path(), ".hidden", firing("hidden"));
    scan(&[path_str(&txt), path_str(&hidden)]).assert_clean_with(
        &pairs(&[(R1, "txt"), (R2, "txt"), (R1, "hidden"), (R2, "hidden")]),
        "explicit files",
    );
}

/// What the function's on-failure destination holds for an event that failed (the SQS
/// message body): the EventBridge event under `requestPayload`.
fn destination_record(event: &Value) -> Value {
    json!({
        "version": "1.0",
        "timestamp": "2026-03-02T09:05:00.000Z",
        "requestContext": {
            "requestId": "c0ffee00-0000-4000-8000-000000000001",
            "functionArn": "arn:aws:lambda:us-east-1:111122223333:function:sesguard:$LATEST",
            "condition": "RetriesExhausted",
            "approximateInvokeCount": 3
        },
        "requestPayload": event,
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
        "responsePayload": {"errorType": "sesguard.StateUnavailable", "errorMessage": "state backend: …"}
    })
}

#[test]
fn an_on_failure_destination_record_replays_the_event_it_carries() {
    let dir = tempdir();
    let lines = format!(
        "{}\n{}\n",
        line(&destination_record(&envelope(&firing("failed-1")))),
        line(&destination_record(&firing("failed-2")))
    );
    let file = write(dir.path(), "on-failure.jsonl", lines);
    scan(&[path_str(&file)])
        .assert_clean_with(&fired_by(&["failed-1", "failed-2"]), "destination records");
    // One whose payload is not an event is reported, not read as an empty record.
    let bad = write(
        dir.path(),
        "bad.json",
        line(&json!({"requestContext": {}, "requestPayload": [1]})),
    );
    let run = scan(&[path_str(&bad)]);
    run.assert_code(1);
    assert_problem(&run, &["bad.json", "found an array"]);
}

// ---------------------------------------------------------------------------------------------
// 3. Malformed and unreadable input

/// GetAccount by a user of its own, so each gives R1 and R2 whatever else is in the file.
fn firing(id: &str) -> Value {
    get_account(id, &format!("user-{id}"), "2026-03-02T09:00:00Z")
}

fn fired_by(ids: &[&str]) -> BTreeSet<(String, String)> {
    ids.iter()
        .flat_map(|id| {
            [
                (R1.to_owned(), (*id).to_owned()),
                (R2.to_owned(), (*id).to_owned()),
            ]
        })
        .collect()
}

fn assert_problem(run: &Run, expected: &[&str]) {
    let problems = run.problems();
    assert!(
        problems
            .iter()
            .any(|p| expected.iter().all(|part| p.contains(part))),
        "no problem line with all of {expected:?}; stderr:\n{}",
        run.stderr
    );
}

#[test]
fn a_bad_json_line_is_reported_by_line_and_skipped_while_its_neighbours_give_signals() {
    let dir = tempdir();
    let text = format!(
        "{}\n{{\"eventSource\": \"ses.amazonaws.com\", \"eventName\": \n{}\n",
        line(&firing("before")),
        line(&firing("after"))
    );
    let file = write(dir.path(), "events.jsonl", text);
    let run = scan(&[path_str(&file)]);
    run.assert_code(1);
    assert_eq!(run.pair_set(), fired_by(&["before", "after"]));
    assert_problem(&run, &["sesguard: ", "events.jsonl: line 2: "]);
    assert_eq!(run.problems().len(), 1, "{}", run.stderr);
    assert!(run.summary().contains(" 1 malformed"), "{}", run.summary());
}

#[test]
fn a_records_entry_that_is_not_an_object_is_reported_by_its_index() {
    let dir = tempdir();
    let text = format!(
        "{{\"Records\":[{},42,{}]}}",
        line(&firing("first")),
        line(&firing("third"))
    );
    let file = write(dir.path(), "trail.json", text);
    let run = scan(&[path_str(&file)]);
    run.assert_code(1);
    assert_eq!(run.pair_set(), fired_by(&["first", "third"]));
    assert_problem(&run, &["trail.json: line 1, record 2: ", "a number"]);
    assert!(run.summary().contains(" 1 malformed"), "{}", run.summary());
}

#[test]
fn fields_of_the_wrong_type_skip_only_their_record() {
    let mut user_identity_string = firing("bad-user");
    user_identity_string["userIdentity"] = json!("arn:aws:iam::111122223333:user/x");
    let mut event_time_number = firing("bad-time");
    event_time_number["eventTime"] = json!(1_772_442_000);
    let request_parameters_array = call(
        "bad-params",
        "VerifyEmailIdentity",
        "mallory",
        "2026-03-02T09:05:00Z",
        json!(["phish@example.net"]),
    );
    let lines = [
        firing("ok-1"),
        user_identity_string,
        firing("ok-3"),
        event_time_number,
        firing("ok-5"),
        request_parameters_array,
        firing("ok-7"),
    ];
    let dir = tempdir();
    let file = write(dir.path(), "events.jsonl", jsonl(&lines));
    let run = scan(&[path_str(&file)]);
    run.assert_code(1);
    assert_eq!(run.pair_set(), fired_by(&["ok-1", "ok-3", "ok-5", "ok-7"]));
    assert_problem(&run, &["events.jsonl: line 2: ", "string"]);
    assert_problem(&run, &["events.jsonl: line 4: ", "integer"]);
    assert_problem(
        &run,
        &["events.jsonl: line 6: ", "requestParameters", "array"],
    );
    assert_eq!(run.problems().len(), 3, "{}", run.stderr);
    assert!(run.summary().contains(" 3 malformed"), "{}", run.summary());
}

#[test]
fn a_truncated_pretty_printed_file_is_reported_with_line_and_column() {
    let dir = tempdir();
    let full = pretty(&log_file(&[firing("lost")]));
    let lines: Vec<&str> = full.lines().take(8).collect();
    let last = lines[7];
    let truncated = write(dir.path(), "truncated.json", lines.join("\n"));
    let good = write(dir.path(), "good.json", pretty(&firing("kept")));
    let run = scan(&[path_str(&truncated), path_str(&good)]);
    run.assert_code(1);
    assert_eq!(run.pair_set(), fired_by(&["kept"]));
    assert_problem(
        &run,
        &[
            &format!("truncated.json: line 8, column {}: ", last.len()),
            "EOF",
        ],
    );
}

#[test]
fn an_empty_file_is_reported_as_malformed() {
    let dir = tempdir();
    let empty = write(dir.path(), "empty.json", "");
    let good = write(dir.path(), "good.json", line(&firing("kept")));
    let run = scan(&[path_str(&empty), path_str(&good)]);
    run.assert_code(1);
    assert_eq!(run.pair_set(), fired_by(&["kept"]));
    assert_problem(&run, &["empty.json: ", "empty"]);
    assert!(run.summary().contains(" 1 malformed"), "{}", run.summary());
}

#[test]
fn invalid_utf8_in_a_line_skips_only_that_line() {
    let dir = tempdir();
    let mut bytes = jsonl(&[firing("before")]).into_bytes();
    bytes.extend_from_slice(b"{\"eventName\": \"Get\xff\xfeAccount\"}\n");
    bytes.extend(jsonl(&[firing("after")]).into_bytes());
    let file = write(dir.path(), "events.jsonl", bytes);
    let run = scan(&[path_str(&file)]);
    run.assert_code(1);
    assert_eq!(run.pair_set(), fired_by(&["before", "after"]));
    assert_problem(&run, &["events.jsonl: line 2: ", "UTF-8"]);
}

#[test]
fn envelopes_with_a_null_detail_or_another_detail_type_are_reported() {
    let null_detail = json!({
        "version": "0", "id": "x", "detail-type": "AWS API Call via CloudTrail",
        "source": "aws.ses", "account": ACCOUNT, "time": "2026-03-02T09:00:00Z",
        "region": "us-east-1", "resources": [], "detail": null,
    });
    let other_type = json!({
        "version": "0", "id": "y", "detail-type": "EC2 Instance State-change Notification",
        "source": "aws.ec2", "account": ACCOUNT, "time": "2026-03-02T09:00:00Z",
        "region": "us-east-1", "resources": [], "detail": {"state": "running"},
    });
    let lines = [
        envelope(&firing("ok-1")),
        null_detail,
        other_type,
        envelope(&firing("ok-4")),
    ];
    let dir = tempdir();
    let file = write(dir.path(), "events.jsonl", jsonl(&lines));
    let run = scan(&[path_str(&file)]);
    run.assert_code(1);
    assert_eq!(run.pair_set(), fired_by(&["ok-1", "ok-4"]));
    assert_problem(&run, &["events.jsonl: line 2: ", "detail", "null"]);
    assert_problem(
        &run,
        &[
            "events.jsonl: line 3: ",
            "EC2 Instance State-change Notification",
        ],
    );
    assert!(run.summary().contains(" 2 malformed"), "{}", run.summary());
}

#[test]
fn a_missing_path_exits_2_and_the_other_paths_are_still_scanned() {
    let dir = tempdir();
    let good = write(dir.path(), "good.json", line(&firing("kept")));
    let missing = dir.path().join("missing.json");
    let run = scan(&[path_str(&missing), path_str(&good)]);
    run.assert_code(2);
    assert_eq!(run.pair_set(), fired_by(&["kept"]));
    assert_problem(&run, &["missing.json: ", "no such file or directory"]);
    assert!(run.summary().contains(" 0 unreadable"), "{}", run.summary());
    assert!(
        run.summary().contains(", 1 path not found or empty;"),
        "{}",
        run.summary()
    );
}

#[test]
fn a_corrupt_gzip_file_is_unreadable_and_the_other_files_are_still_scanned() {
    let dir = tempdir();
    let mut corrupt = vec![0x1f, 0x8b, 0x08, 0x00];
    corrupt.extend_from_slice(b"this is not a deflate stream at all");
    write(dir.path(), "a-corrupt.json.gz", corrupt);
    // A stream cut short still gives the records before the cut.
    let ids: Vec<String> = (1..=100).map(|i| format!("cut-{i}")).collect();
    let records: Vec<Value> = ids.iter().map(|id| firing(id)).collect();
    let mut cut = gzip(jsonl(&records).as_bytes());
    cut.truncate(cut.len() / 2);
    write(dir.path(), "b-cut.json.gz", cut);
    write(dir.path(), "c-good.json", line(&firing("kept")));
    let run = scan(&[path_str(dir.path())]);
    run.assert_code(1);
    let events: BTreeSet<String> = run.pairs().into_iter().map(|(_, e)| e).collect();
    assert!(events.contains("kept"), "{}", run.stdout);
    assert!(events.contains("cut-1"), "{}", run.stdout);
    assert!(!events.contains("cut-100"), "{}", run.stdout);
    assert_problem(&run, &["a-corrupt.json.gz: ", "cannot read"]);
    assert_problem(&run, &["b-cut.json.gz: ", "cannot read"]);
    assert!(run.summary().contains(" 2 unreadable"), "{}", run.summary());
}

#[test]
fn problems_on_standard_input_are_reported_as_stdin() {
    let text = format!("{}\nnot json\n", line(&firing("ok")));
    let run = scan_stdin(&["-"], text.into_bytes());
    run.assert_code(1);
    assert_eq!(run.pair_set(), fired_by(&["ok"]));
    assert_problem(&run, &["<stdin>: line 2: "]);
}

// ---------------------------------------------------------------------------------------------
// 4. Usage and configuration errors: exit 2

/// Runs `sesguard ARGS` in `dir` and checks it stops with exit code 2, printing no signal and
/// a message with every part of `expected`.
fn assert_usage_error(dir: &Path, args: &[&str], expected: &[&str]) {
    let mut cmd = sesguard();
    cmd.current_dir(dir).args(args);
    let run = run(cmd);
    run.assert_code(2);
    assert!(run.stdout.is_empty(), "stdout: {}", run.stdout);
    for part in expected {
        assert!(
            run.stderr.contains(part),
            "stderr lacks {part:?}:\n{}",
            run.stderr
        );
    }
}

/// A folder with `events.json` (one firing record) and `sesguard.toml` holding `config`.
fn config_dir(config: &str) -> TempDir {
    let dir = tempdir();
    write(dir.path(), "events.json", line(&firing("x")));
    write(dir.path(), "sesguard.toml", config);
    dir
}

#[test]
fn scan_without_a_path_is_a_usage_error() {
    let dir = tempdir();
    assert_usage_error(dir.path(), &["scan"], &["<PATH>"]);
}

#[test]
fn an_unknown_flag_is_a_usage_error() {
    let dir = config_dir("");
    assert_usage_error(
        dir.path(),
        &["scan", "--no-such-flag", "events.json"],
        &["--no-such-flag"],
    );
}

#[test]
fn a_config_file_that_does_not_exist_is_a_config_error() {
    let dir = config_dir("");
    assert_usage_error(
        dir.path(),
        &["scan", "--config", "missing.toml", "events.json"],
        &["sesguard: error: ", "missing.toml"],
    );
}

#[test]
fn an_unknown_config_key_is_a_config_error() {
    let dir = config_dir("dedupe_minutes = 5\n");
    assert_usage_error(
        dir.path(),
        &["scan", "--config", "sesguard.toml", "events.json"],
        &["sesguard: error: ", "sesguard.toml", "dedupe_minutes"],
    );
}

#[test]
fn a_suppression_with_an_unknown_rule_id_is_a_config_error() {
    let dir = config_dir("[[suppressions]]\nrule = \"ses-no-such-rule\"\nreason = \"typo\"\n");
    assert_usage_error(
        dir.path(),
        &["scan", "--config", "sesguard.toml", "events.json"],
        &["sesguard: error: ", "suppression 1", "ses-no-such-rule"],
    );
}

#[test]
fn a_suppression_on_the_user_agent_alone_is_a_config_error() {
    // The caller chooses its user agent: an attacker would send the one the entry names.
    let dir = config_dir("[[suppressions]]\nuser_agent = \"*Terraform*\"\n");
    assert_usage_error(
        dir.path(),
        &["scan", "--config", "sesguard.toml", "events.json"],
        &[
            "sesguard: error: ",
            "suppression 1",
            "user_agent is chosen by the caller",
        ],
    );
    let dir =
        config_dir("[[suppressions]]\nrule = \"ses-modification\"\nuser_agent = \"*Terraform*\"\n");
    assert_usage_error(
        dir.path(),
        &["scan", "--config", "sesguard.toml", "events.json"],
        &[
            "sesguard: error: ",
            "suppression 1",
            "give principal, user_arn or source_ip",
        ],
    );
    let dir =
        config_dir("[[suppressions]]\nprincipal = \"*:user/ci-*\"\nuser_agent = \"*Terraform*\"\n");
    sesguard()
        .current_dir(dir.path())
        .args([
            "scan",
            "--config",
            "sesguard.toml",
            "--quiet",
            "events.json",
        ])
        .assert()
        .success();
}

#[test]
fn a_suppression_that_would_match_anyone_is_a_config_error_unless_allowed_with_a_reason() {
    for (entry, field) in [
        ("principal = \"*\"", "principal"),
        ("principal = \"arn:*\"", "principal"),
        ("principal = \"arn:aws:*\"", "principal"),
        ("source_ip = \"0.0.0.0/0\"", "source_ip"),
        ("source_ip = \"::/0\"", "source_ip"),
        (
            "principal = \"*:user/ci-*\"\nuser_agent = \"*\"",
            "user_agent",
        ),
    ] {
        // The broad entry is the second one: the message names it.
        let dir = config_dir(&format!(
            "[[suppressions]]\nrule = \"ses-modification\"\nprincipal = \"*:user/ci-*\"\n\n[[suppressions]]\n{entry}\n"
        ));
        assert_usage_error(
            dir.path(),
            &["scan", "--config", "sesguard.toml", "events.json"],
            &[
                "sesguard: error: ",
                "suppression 2",
                &format!("{field} would match any value"),
                "allow_broad = true",
            ],
        );
    }
    let dir = config_dir("[[suppressions]]\nsource_ip = \"0.0.0.0/0\"\nallow_broad = true\n");
    assert_usage_error(
        dir.path(),
        &["scan", "--config", "sesguard.toml", "events.json"],
        &["suppression 1", "allow_broad = true needs a reason"],
    );
    // Allowed on purpose, with a reason: it silences everything, as asked.
    let dir = config_dir(
        "[[suppressions]]\nsource_ip = \"0.0.0.0/0\"\nallow_broad = true\nreason = \"lab account\"\n",
    );
    sesguard()
        .current_dir(dir.path())
        .args([
            "scan",
            "--config",
            "sesguard.toml",
            "--format",
            "jsonl",
            "--quiet",
            "events.json",
        ])
        .assert()
        .success()
        .stdout("");
}

#[test]
fn a_suppression_naming_a_role_session_as_principal_is_a_config_error_with_a_hint() {
    let dir = config_dir(
        "[[suppressions]]\nprincipal = \"arn:aws:sts::111122223333:assumed-role/ops/alice\"\n",
    );
    assert_usage_error(
        dir.path(),
        &["scan", "--config", "sesguard.toml", "events.json"],
        &[
            "suppression 1",
            "names a role session",
            "arn:aws:iam::111122223333:role/ops",
            "user_arn",
        ],
    );
}

#[test]
fn a_suppression_with_a_bad_cidr_is_a_config_error() {
    let dir = config_dir("[[suppressions]]\nsource_ip = \"203.0.113.0/33\"\n");
    assert_usage_error(
        dir.path(),
        &["scan", "--config", "sesguard.toml", "events.json"],
        &["sesguard: error: ", "suppression 1", "203.0.113.0/33"],
    );
}

#[test]
fn a_tor_exit_list_with_a_line_that_is_not_an_ip_is_a_config_error() {
    let dir = config_dir("");
    write(
        dir.path(),
        "tor.txt",
        "# exits\n198.51.100.7\nnot-an-address\n",
    );
    assert_usage_error(
        dir.path(),
        &["scan", "--tor-exit-list", "tor.txt", "events.json"],
        &["sesguard: error: ", "tor.txt", "line 3", "not-an-address"],
    );
}

// ---------------------------------------------------------------------------------------------
// 5. The summary line

#[test]
fn the_summary_line_counts_files_records_problems_matches_and_signals_by_rule() {
    let dir = tempdir();
    let mut records = story();
    // Read, but no rule's call: API Gateway also has a GetAccount.
    let mut api_gateway = get_account("apigw", "leaked-cli", "2026-03-02T09:01:00Z");
    api_gateway["eventSource"] = json!("apigateway.amazonaws.com");
    records.insert(1, api_gateway);
    write(dir.path(), "a.jsonl", jsonl(&records));
    write(dir.path(), "b-empty.json", "");
    let run = scan(&[path_str(dir.path())]);
    run.assert_code(1);
    assert_eq!(
        run.summary(),
        "sesguard: 2 files, 4 records read, 1 malformed, 0 unreadable; 3 records matched a rule; \
         6 signals (ses-discovery-long-term-key 1, ses-enumeration-unseen-user 1, \
         ses-identity-deleted 1, ses-modification 2, ses-verify-then-delete 1), 0 signals \
         suppressed, 0 signals deduplicated"
    );
}

#[test]
fn quiet_hides_the_summary_but_not_problems_or_signals() {
    let dir = tempdir();
    write(dir.path(), "a.jsonl", jsonl(&story()));
    write(dir.path(), "b-empty.json", "");
    let run = scan(&["--quiet", path_str(dir.path())]);
    run.assert_code(1);
    assert_eq!(run.pair_set(), story_signals());
    assert!(!run.stderr.contains("records read"), "{}", run.stderr);
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    assert_problem(&run, &["b-empty.json: "]);
}

// ---------------------------------------------------------------------------------------------
// 6. Output formats

fn story_file() -> (TempDir, PathBuf) {
    let dir = tempdir();
    let file = write(dir.path(), "story.jsonl", jsonl(&story()));
    (dir, file)
}

#[test]
fn table_format_prints_a_header_then_one_row_per_signal() {
    let (_dir, file) = story_file();
    let run = scan(&["--format", "table", path_str(&file)]);
    run.assert_code(0);
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert!(lines[0].contains("RULE"), "header: {}", lines[0]);
    assert!(lines[0].contains("SEVERITY"), "header: {}", lines[0]);
    let rows = &lines[1..];
    assert_eq!(rows.len(), story_signals().len(), "{}", run.stdout);
    let mut rules: Vec<&str> = rows
        .iter()
        .map(|row| {
            all_rules()
                .into_iter()
                .find(|rule| row.contains(rule))
                .unwrap_or_else(|| panic!("row names no rule: {row}"))
        })
        .collect();
    rules.sort();
    assert_eq!(rules, [R1, R2, R5, R3, R3, R4]);
    assert!(rows.iter().all(|row| !row.starts_with('{')));
}

#[test]
fn jsonl_format_prints_one_json_signal_per_line_with_the_documented_fields() {
    let (_dir, file) = story_file();
    let run = scan(&["--format", "jsonl", path_str(&file)]);
    run.assert_code(0);
    let signals = run.signals();
    assert_eq!(signals.len(), story_signals().len());
    let mut ids = BTreeSet::new();
    for signal in &signals {
        for field in [
            "signal_id",
            "rule_id",
            "title",
            "severity",
            "event_id",
            "event_name",
            "event_source",
            "event_time",
            "account_id",
            "region",
            "principal",
            "user_arn",
            "access_key_id",
            "source_ip",
            "identity",
            "tor",
            "related_event_ids",
            "triage",
        ] {
            assert!(signal.get(field).is_some(), "no {field} in {signal}");
        }
        assert!(ids.insert(text(&signal["signal_id"])), "signal ids repeat");
        assert!(all_rules().contains(&signal["rule_id"].as_str().unwrap_or("")));
        assert_eq!(
            signal["principal"],
            "arn:aws:iam::111122223333:user/leaked-cli"
        );
        assert_eq!(signal["account_id"], ACCOUNT);
        assert_eq!(signal["region"], "us-east-1");
        let triage = signal["triage"].as_array().expect("triage is a list");
        assert!(!triage.is_empty() && triage.iter().all(Value::is_string));
    }
    let delete = signals
        .iter()
        .find(|s| s["rule_id"] == R5)
        .expect("an R5 signal");
    assert_eq!(delete["identity"], "phish@example.net");
    assert_eq!(delete["severity"], "medium");
}

#[test]
fn ocsf_format_prints_one_detection_finding_per_signal_in_the_same_order() {
    let (_dir, file) = story_file();
    let jsonl = scan(&["--format", "jsonl", path_str(&file)]);
    let ocsf = scan(&["--format", "ocsf", path_str(&file)]);
    ocsf.assert_code(0);
    let (signals, findings) = (jsonl.signals(), ocsf.signals());
    assert_eq!(findings.len(), signals.len());
    assert!(!findings.is_empty());
    for (signal, finding) in signals.iter().zip(&findings) {
        assert_eq!(finding["class_uid"], 2004, "{finding}");
        assert_eq!(finding["metadata"]["version"], "1.5.0");
        assert_eq!(finding["finding_info"]["uid"], signal["signal_id"]);
        assert_eq!(
            finding["finding_info"]["analytic"]["uid"],
            signal["rule_id"]
        );
        assert_eq!(
            finding["finding_info"]["related_events"][0]["uid"],
            signal["event_id"]
        );
        assert_eq!(
            finding["evidences"][0]["actor"]["user"]["credential_uid"],
            signal["access_key_id"]
        );
        assert_eq!(finding["cloud"]["account"]["uid"], signal["account_id"]);
    }
    // -o writes the chosen format too.
    let dir = tempdir();
    let out = dir.path().join("findings.jsonl");
    scan(&["--format", "ocsf", "-o", path_str(&out), path_str(&file)]).assert_code(0);
    assert_eq!(fs::read_to_string(&out).expect("read -o"), ocsf.stdout);
}

#[test]
fn output_is_jsonl_by_default_when_stdout_is_not_a_terminal() {
    let (_dir, file) = story_file();
    let default = scan(&[path_str(&file)]);
    let jsonl = scan(&["--format", "jsonl", path_str(&file)]);
    default.assert_code(0);
    assert_eq!(default.stdout, jsonl.stdout);
    assert_eq!(default.pair_set(), story_signals());
}

// ---------------------------------------------------------------------------------------------
// 7. The committed samples

const PRODUCTION_ACCESS: &str = "ses-production-access-requested";
const BURST: &str = "ses-sandbox-exit-burst";
const SENDING: &str = "ses-sending-enabled";
const FULL_ACCESS: &str = "ses-full-access-granted";
const SMTP_USER: &str = "ses-smtp-user-created";
const FEEDBACK: &str = "ses-feedback-tampering";
const CHAIN: &str = "ses-abuse-chain";

/// What `scan --input-order events/` gives, file by file (files read in name order; every file
/// not listed gives nothing). events/README.md tells the story behind each row.
const SAMPLE_SIGNALS: &[(&str, &[&str])] = &[
    (
        "iam-AttachUserPolicy-AmazonSESFullAccess.json",
        &[FULL_ACCESS],
    ),
    ("iam-CreateAccessKey-ses-smtp-user.json", &[SMTP_USER]),
    ("iam-CreateUser-ses-smtp-user.json", &[SMTP_USER]),
    ("iam-PutUserPolicy-ses-smtp-user.json", &[FULL_ACCESS]),
    // The leaked user's first discovery call in name order.
    ("servicequotas-GetServiceQuota-ses.json", &[R2]),
    ("ses-CreateEmailIdentity.json", &[R3]),
    ("ses-CreateEmailIdentityPolicy.json", &[R3]),
    // In name order the third stage (recon, privilege, evasion) of the leaked user.
    (
        "ses-DeleteConfigurationSetEventDestination.json",
        &[FEEDBACK, CHAIN],
    ),
    ("ses-DeleteEmailIdentity.json", &[R3, R4, R5]),
    ("ses-DeleteIdentity-AccessDenied.json", &[R3, R5]),
    ("ses-DeleteIdentity-by-arn.json", &[R3, R4, R5]),
    ("ses-DeleteIdentity.json", &[R3, R4, R5]),
    ("ses-DeleteVerifiedEmailAddress.json", &[R3]),
    // Read before ses-GetAccount.json ('-' sorts before '.'); the other is a duplicate.
    ("ses-GetAccount-AccessDenied.json", &[R1]),
    ("ses-ListEmailIdentities.json", &[R2]),
    // One request to leave the sandbox per principal; the burst on the third region.
    (
        "ses-PutAccountDetails-ap-south-1.json",
        &[PRODUCTION_ACCESS],
    ),
    ("ses-PutAccountDetails-us-east-1.json", &[BURST]),
    ("ses-PutAccountSendingAttributes.json", &[SENDING]),
    ("ses-PutIdentityPolicy.json", &[R3]),
    ("ses-SetIdentityFeedbackForwardingEnabled.json", &[FEEDBACK]),
    ("ses-SetIdentityNotificationTopic.json", &[FEEDBACK]),
    ("ses-UpdateAccountSendingEnabled.json", &[SENDING]),
    ("ses-VerifyDomainIdentity.json", &[R3]),
    ("ses-VerifyEmailAddress.json", &[R3]),
    ("ses-VerifyEmailIdentity.json", &[R3]),
];

fn events_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("events")
}

/// Every sample: (file name, envelope), in name order.
fn samples() -> Vec<(String, Value)> {
    let mut out: Vec<(String, Value)> = fs::read_dir(events_dir())
        .expect("events/")
        .map(|entry| entry.expect("entry").path())
        .filter(|path| path.extension().is_some_and(|x| x == "json"))
        .map(|path| {
            let name = path.file_name().unwrap_or_default().to_string_lossy();
            let event = serde_json::from_str(&fs::read_to_string(&path).expect("read"))
                .unwrap_or_else(|err| panic!("{name}: {err}"));
            (name.into_owned(), event)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// The sample file each eventID is from.
fn sample_files() -> std::collections::BTreeMap<String, String> {
    samples()
        .into_iter()
        .map(|(name, event)| (text(&event["detail"]["eventID"]), name))
        .collect()
}

/// The rule ids a run gave, per sample file (sorted within a file).
fn signals_by_file(run: &Run) -> std::collections::BTreeMap<String, Vec<String>> {
    let files = sample_files();
    let mut out = std::collections::BTreeMap::<String, Vec<String>>::new();
    for (rule, event) in run.pairs() {
        let file = files
            .get(&event)
            .unwrap_or_else(|| panic!("{rule} on {event}, which is no sample"));
        out.entry(file.clone()).or_default().push(rule);
    }
    for rules in out.values_mut() {
        rules.sort();
    }
    out
}

/// The samples as JSON Lines, in `eventTime` order (name order among equal times).
fn samples_in_time_order() -> Vec<Value> {
    let mut events: Vec<Value> = samples().into_iter().map(|(_, event)| event).collect();
    events.sort_by_key(|event| text(&event["detail"]["eventTime"]));
    events
}

/// The one signal of `rule` in a run.
fn only(run: &Run, rule: &str) -> Value {
    let found: Vec<Value> = run
        .signals()
        .into_iter()
        .filter(|s| s["rule_id"] == rule)
        .collect();
    assert_eq!(found.len(), 1, "{rule} signals:\n{}", run.stdout);
    found.into_iter().next().unwrap_or_default()
}

/// The sample files named by a signal's `event_id` and `related_event_ids` (sorted).
fn files_of(signal: &Value) -> (String, Vec<String>) {
    let files = sample_files();
    let file = |id: &Value| files.get(&text(id)).cloned().unwrap_or_default();
    let mut related: Vec<String> = signal["related_event_ids"]
        .as_array()
        .expect("related_event_ids")
        .iter()
        .map(file)
        .collect();
    related.sort();
    (file(&signal["event_id"]), related)
}

#[test]
fn the_sample_events_fire_every_rule_and_nothing_for_the_filtered_or_quiet_ones() {
    let run = scan(&["events/"]);
    run.assert_code(0);
    let fired: BTreeSet<String> = run.pairs().into_iter().map(|(rule, _)| rule).collect();
    for rule in all_rules() {
        assert!(fired.contains(rule), "no {rule} signal from events/");
    }
    let mut negatives = Vec::new();
    for (name, event) in samples() {
        if name.starts_with("filtered-") || name.starts_with("quiet-") {
            negatives.push(text(&event["detail"]["eventID"]));
        }
    }
    assert_eq!(negatives.len(), 16, "negative samples: {negatives:?}");
    for (rule, event) in run.pairs() {
        assert!(
            !negatives.contains(&event),
            "{rule} fired on negative sample event {event}"
        );
    }
}

#[test]
fn each_sample_gives_exactly_its_pinned_signals() {
    let run = scan(&["--input-order", "events/"]);
    run.assert_code(0);
    assert!(run.problems().is_empty(), "{}", run.stderr);
    let expected: std::collections::BTreeMap<String, Vec<String>> = SAMPLE_SIGNALS
        .iter()
        .map(|(file, rules)| {
            let mut rules: Vec<String> = rules.iter().map(|r| (*r).to_owned()).collect();
            rules.sort();
            ((*file).to_owned(), rules)
        })
        .collect();
    assert_eq!(signals_by_file(&run), expected, "{}", run.stdout);
    assert_eq!(run.pairs().len(), 33);
    assert!(
        run.summary().contains("55 records read") && run.summary().contains("41 records matched"),
        "{}",
        run.summary()
    );
}

#[test]
fn the_samples_give_one_abuse_chain_signal_naming_the_first_event_of_each_other_stage() {
    let run = scan(&["--input-order", "events/"]);
    run.assert_code(0);
    let chain = only(&run, CHAIN);
    assert_eq!(chain["severity"], "critical");
    assert_eq!(
        chain["principal"],
        "arn:aws:iam::111122223333:user/ses-ops-leaked"
    );
    // Name order: the IAM files come first, then the Service Quotas reads, then this delete.
    assert_eq!(
        chain["details"]["stages"],
        json!(["recon", "privilege", "evasion"])
    );
    assert_eq!(
        files_of(&chain),
        (
            "ses-DeleteConfigurationSetEventDestination.json".to_owned(),
            vec![
                "iam-AttachUserPolicy-AmazonSESFullAccess.json".to_owned(),
                "servicequotas-ListServiceQuotas-ses.json".to_owned(),
            ]
        )
    );
}

#[test]
fn replayed_in_event_time_order_the_chain_fires_on_sending_enabled_after_the_sandbox_exit() {
    let run = scan_stdin(&["-"], jsonl(&samples_in_time_order()).into_bytes());
    run.assert_code(0);
    let chain = only(&run, CHAIN);
    assert_eq!(
        chain["details"]["stages"],
        json!(["recon", "sandbox-exit", "sending"])
    );
    assert_eq!(
        files_of(&chain),
        (
            "ses-UpdateAccountSendingEnabled.json".to_owned(),
            vec![
                "ses-GetAccount.json".to_owned(),
                "ses-PutAccountDetails-ap-south-1.json".to_owned(),
            ]
        )
    );
}

#[test]
fn the_samples_give_the_same_signals_per_rule_in_name_time_and_reverse_time_order() {
    let count = |run: &Run| -> Vec<String> {
        run.assert_code(0);
        let mut rules: Vec<String> = run.pairs().into_iter().map(|(rule, _)| rule).collect();
        rules.sort();
        rules
    };
    let by_name = count(&scan(&["events/"]));
    let in_time = samples_in_time_order();
    let reversed: Vec<Value> = in_time.iter().rev().cloned().collect();
    for (order, events) in [("time", in_time), ("reverse time", reversed)] {
        let run = scan_stdin(&["-"], jsonl(&events).into_bytes());
        assert_eq!(count(&run), by_name, "{order} order:\n{}", run.stdout);
        for rule in [CHAIN, BURST, PRODUCTION_ACCESS] {
            assert_eq!(run.count(rule), 1, "{order} order: {rule}");
        }
    }
}

#[test]
fn the_sandbox_exit_samples_give_one_burst_over_three_regions_and_one_production_access_request() {
    let run = scan(&["events/"]);
    run.assert_code(0);
    let burst = only(&run, BURST);
    assert_eq!(burst["severity"], "high");
    assert_eq!(
        burst["details"]["regions"],
        json!(["ap-south-1", "eu-west-1", "us-east-1"])
    );
    assert_eq!(
        files_of(&burst),
        (
            "ses-PutAccountDetails-us-east-1.json".to_owned(),
            vec![
                "ses-PutAccountDetails-ap-south-1.json".to_owned(),
                "ses-PutAccountDetails-eu-west-1.json".to_owned(),
            ]
        )
    );
    let request = only(&run, PRODUCTION_ACCESS);
    assert_eq!(request["severity"], "medium");
    assert_eq!(request["region"], "ap-south-1");
    assert_eq!(request["details"]["mail_type"], "MARKETING");
    assert_eq!(request["details"]["website_url"], "https://www.example.com");
    assert_eq!(request["details"]["contact_language"], "EN");
    assert_eq!(
        request["details"]["additional_contact_email_addresses"],
        json!(["billing@example.org"])
    );
    assert!(
        request["details"]["use_case_description"]
            .as_str()
            .is_some_and(|text| text.starts_with("We send order confirmations")),
        "{request}"
    );
}

#[test]
fn the_iam_samples_name_the_grantee_the_policy_and_the_smtp_user() {
    let run = scan(&["events/"]);
    run.assert_code(0);
    let files = sample_files();
    let of = |rule: &str| -> Vec<(String, String, Value)> {
        let mut found: Vec<(String, String, Value)> = run
            .signals()
            .into_iter()
            .filter(|s| s["rule_id"] == rule)
            .map(|s| {
                let file = files
                    .get(&text(&s["event_id"]))
                    .cloned()
                    .unwrap_or_default();
                (file, text(&s["severity"]), s["details"].clone())
            })
            .collect();
        found.sort_by(|a, b| a.0.cmp(&b.0));
        found
    };
    let smtp_user = "ses-smtp-user.20260302-101500";
    assert_eq!(
        of(FULL_ACCESS),
        vec![
            (
                "iam-AttachUserPolicy-AmazonSESFullAccess.json".to_owned(),
                "high".to_owned(),
                json!({"target_type": "user", "target": "ses-ops-leaked",
                       "policy": "arn:aws:iam::aws:policy/AmazonSESFullAccess"}),
            ),
            (
                "iam-PutUserPolicy-ses-smtp-user.json".to_owned(),
                "high".to_owned(),
                json!({"target_type": "user", "target": smtp_user,
                       "policy": "AmazonSesSendingAccess"}),
            ),
        ]
    );
    assert_eq!(
        of(SMTP_USER),
        vec![
            (
                "iam-CreateAccessKey-ses-smtp-user.json".to_owned(),
                "medium".to_owned(),
                json!({ "target": smtp_user }),
            ),
            (
                "iam-CreateUser-ses-smtp-user.json".to_owned(),
                "medium".to_owned(),
                json!({ "target": smtp_user }),
            ),
        ]
    );
    // IAM is global: its events carry us-east-1.
    for signal in run.signals() {
        if signal["event_source"] == "iam.amazonaws.com" {
            assert_eq!(signal["region"], "us-east-1", "{signal}");
        }
    }
}

#[test]
fn the_feedback_samples_name_the_identity_or_configuration_set() {
    let run = scan(&["events/"]);
    run.assert_code(0);
    let mut found: Vec<(String, String)> = run
        .signals()
        .into_iter()
        .filter(|s| s["rule_id"] == FEEDBACK)
        .map(|s| (text(&s["event_name"]), text(&s["identity"])))
        .collect();
    found.sort();
    assert_eq!(
        found,
        vec![
            (
                "DeleteConfigurationSetEventDestination".to_owned(),
                "transactional".to_owned()
            ),
            (
                "SetIdentityFeedbackForwardingEnabled".to_owned(),
                "example.com".to_owned()
            ),
            (
                "SetIdentityNotificationTopic".to_owned(),
                "example.com".to_owned()
            ),
        ]
    );
}

// ---------------------------------------------------------------------------------------------
// 8. Configuration file and flags

/// Two GetAccount calls with the same long-term key, ten minutes apart.
fn repeated_discovery(dir: &Path) -> PathBuf {
    write(
        dir,
        "events.jsonl",
        jsonl(&[
            get_account("first", "leaked-cli", "2026-03-02T09:00:00Z"),
            get_account("second", "leaked-cli", "2026-03-02T09:10:00Z"),
        ]),
    )
}

#[test]
fn a_repeated_discovery_call_within_the_default_hour_gives_one_signal() {
    let dir = tempdir();
    let events = repeated_discovery(dir.path());
    let run = scan(&[path_str(&events)]);
    run.assert_code(0);
    assert_eq!(run.count(R1), 1, "{}", run.stdout);
}

#[test]
fn dedup_minutes_in_the_config_file_shortens_the_dedup_window() {
    let dir = tempdir();
    let events = repeated_discovery(dir.path());
    let config = write(dir.path(), "sesguard.toml", "dedup_minutes = 1\n");
    let run = scan(&["--config", path_str(&config), path_str(&events)]);
    run.assert_code(0);
    assert_eq!(run.count(R1), 2, "{}", run.stdout);
}

#[test]
fn the_dedup_minutes_flag_overrides_the_config_file() {
    let dir = tempdir();
    let events = repeated_discovery(dir.path());
    let config = write(dir.path(), "sesguard.toml", "dedup_minutes = 1\n");
    let run = scan(&[
        "--config",
        path_str(&config),
        "--dedup-minutes",
        "60",
        path_str(&events),
    ]);
    run.assert_code(0);
    assert_eq!(run.count(R1), 1, "{}", run.stdout);
}

#[test]
fn sandbox_exit_regions_in_the_config_file_or_as_a_flag_sets_how_many_regions_make_a_burst() {
    // The samples request production access in four regions within seconds.
    let default = scan(&["events/"]);
    assert_eq!(default.count("ses-sandbox-exit-burst"), 1);
    let five = scan(&["--sandbox-exit-regions", "5", "events/"]);
    five.assert_code(0);
    assert_eq!(five.count("ses-sandbox-exit-burst"), 0, "{}", five.stdout);

    let dir = tempdir();
    let config = write(dir.path(), "sesguard.toml", "sandbox_exit_regions = 4\n");
    let four = scan(&["--config", path_str(&config), "events/"]);
    four.assert_code(0);
    let burst: Vec<Value> = four
        .signals()
        .into_iter()
        .filter(|s| s["rule_id"] == "ses-sandbox-exit-burst")
        .collect();
    assert_eq!(burst.len(), 1, "{}", four.stdout);
    assert_eq!(burst[0]["region"], "us-west-2");
    assert_eq!(
        burst[0]["details"]["regions"],
        json!(["ap-south-1", "eu-west-1", "us-east-1", "us-west-2"])
    );
    // The flag wins over the file.
    let flag = scan(&[
        "--config",
        path_str(&config),
        "--sandbox-exit-regions",
        "5",
        "events/",
    ]);
    assert_eq!(flag.count("ses-sandbox-exit-burst"), 0, "{}", flag.stdout);

    let one = scan(&["--sandbox-exit-regions", "1", "events/"]);
    one.assert_code(2);
    assert!(
        one.stderr.contains("sandbox_exit_regions"),
        "{}",
        one.stderr
    );
}

/// `PutAccountDetails` by one user in three regions, three minutes apart (a six-minute span).
fn slow_sandbox_exit(dir: &Path) -> PathBuf {
    let records: Vec<Value> = [
        ("us-east-1", "09:00"),
        ("eu-west-1", "09:03"),
        ("ap-south-1", "09:06"),
    ]
    .iter()
    .map(|(region, time)| {
        let mut record = call(
            &format!("exit-{region}"),
            "PutAccountDetails",
            "leaked-cli",
            &format!("2026-03-02T{time}:00Z"),
            json!({"mailType": "TRANSACTIONAL", "productionAccessEnabled": true}),
        );
        record["awsRegion"] = json!(region);
        record
    })
    .collect();
    write(dir, "events.jsonl", jsonl(&records))
}

#[test]
fn the_sandbox_exit_window_minutes_flag_and_setting_widen_the_span_of_a_burst() {
    let dir = tempdir();
    let events = slow_sandbox_exit(dir.path());
    let default = scan(&[path_str(&events)]);
    default.assert_code(0);
    assert_eq!(
        default.count("ses-sandbox-exit-burst"),
        0,
        "{}",
        default.stdout
    );
    assert_eq!(default.count("ses-production-access-requested"), 1);
    let wide = scan(&["--sandbox-exit-window-minutes", "10", path_str(&events)]);
    assert_eq!(wide.count("ses-sandbox-exit-burst"), 1, "{}", wide.stdout);
    let config = write(
        dir.path(),
        "sesguard.toml",
        "sandbox_exit_window_minutes = 6\n",
    );
    let from_file = scan(&["--config", path_str(&config), path_str(&events)]);
    from_file.assert_code(0);
    assert_eq!(
        from_file.count("ses-sandbox-exit-burst"),
        1,
        "{}",
        from_file.stdout
    );
}

/// Recon at 09:00, the sandbox exit at 10:00 and sending enabled at 12:00, by one user.
fn slow_chain(dir: &Path) -> PathBuf {
    write(
        dir,
        "events.jsonl",
        jsonl(&[
            get_account("recon", "leaked-cli", "2026-03-02T09:00:00Z"),
            call(
                "sandbox-exit",
                "PutAccountDetails",
                "leaked-cli",
                "2026-03-02T10:00:00Z",
                json!({"mailType": "MARKETING", "productionAccessEnabled": true}),
            ),
            call(
                "sending",
                "UpdateAccountSendingEnabled",
                "leaked-cli",
                "2026-03-02T12:00:00Z",
                json!({ "enabled": true }),
            ),
        ]),
    )
}

#[test]
fn chain_window_hours_in_the_config_file_or_as_a_flag_bounds_the_span_of_a_chain() {
    let dir = tempdir();
    let events = slow_chain(dir.path());
    let default = scan(&[path_str(&events)]);
    default.assert_code(0);
    let chain: Vec<(String, String)> = default
        .pairs()
        .into_iter()
        .filter(|(rule, _)| rule == "ses-abuse-chain")
        .collect();
    assert_eq!(
        chain,
        vec![("ses-abuse-chain".to_owned(), "sending".to_owned())],
        "{}",
        default.stdout
    );
    let short = scan(&["--chain-window-hours", "2", path_str(&events)]);
    short.assert_code(0);
    assert_eq!(short.count("ses-abuse-chain"), 0, "{}", short.stdout);
    let config = write(dir.path(), "sesguard.toml", "chain_window_hours = 2\n");
    let from_file = scan(&["--config", path_str(&config), path_str(&events)]);
    from_file.assert_code(0);
    assert_eq!(
        from_file.count("ses-abuse-chain"),
        0,
        "{}",
        from_file.stdout
    );
    let flag_wins = scan(&[
        "--config",
        path_str(&config),
        "--chain-window-hours",
        "4",
        path_str(&events),
    ]);
    assert_eq!(
        flag_wins.count("ses-abuse-chain"),
        1,
        "{}",
        flag_wins.stdout
    );
}

const TOR_EXIT: &str = "203.0.113.66";

/// VerifyEmailIdentity from the Tor exit and from an ordinary address, by two users.
fn verifies_from_tor_and_elsewhere(dir: &Path) -> PathBuf {
    write(
        dir,
        "events.jsonl",
        jsonl(&[
            with_ip(
                verify_email(
                    "from-tor",
                    "mallory",
                    "phish@example.net",
                    "2026-03-02T09:05:00Z",
                ),
                TOR_EXIT,
            ),
            with_ip(
                verify_email(
                    "from-office",
                    "alice",
                    "news@example.com",
                    "2026-03-02T09:06:00Z",
                ),
                "198.51.100.10",
            ),
        ]),
    )
}

fn severity_and_tor(run: &Run, event_id: &str) -> (String, bool) {
    let signal = run
        .signals()
        .into_iter()
        .find(|s| s["rule_id"] == R3 && s["event_id"] == event_id)
        .unwrap_or_else(|| panic!("no {R3} signal for {event_id}:\n{}", run.stdout));
    (
        text(&signal["severity"]),
        signal["tor"].as_bool().expect("tor is a boolean"),
    )
}

#[test]
fn the_tor_exit_list_flag_makes_a_modification_from_a_listed_ip_high_severity() {
    let dir = tempdir();
    let events = verifies_from_tor_and_elsewhere(dir.path());
    let list = write(
        dir.path(),
        "tor-exits.txt",
        format!("# Tor exits\n{TOR_EXIT}\n198.51.100.200\n"),
    );
    let run = scan(&["--tor-exit-list", path_str(&list), path_str(&events)]);
    run.assert_code(0);
    assert_eq!(
        severity_and_tor(&run, "from-tor"),
        ("high".to_owned(), true)
    );
    assert_eq!(
        severity_and_tor(&run, "from-office"),
        ("low".to_owned(), false)
    );

    let without = scan(&[path_str(&events)]);
    assert_eq!(
        severity_and_tor(&without, "from-tor"),
        ("low".to_owned(), false)
    );
}

#[test]
fn a_tor_exit_list_in_the_config_file_is_found_relative_to_the_config_folder() {
    let dir = tempdir();
    let events = verifies_from_tor_and_elsewhere(dir.path());
    write(dir.path(), "conf/tor-exits.txt", format!("{TOR_EXIT}\n"));
    write(
        dir.path(),
        "conf/sesguard.toml",
        "tor_exit_list = \"tor-exits.txt\"\n",
    );
    // Run from the parent folder, which has no tor-exits.txt.
    let run = scan_in(
        dir.path(),
        &["--config", "conf/sesguard.toml", path_str(&events)],
    );
    run.assert_code(0);
    assert_eq!(
        severity_and_tor(&run, "from-tor"),
        ("high".to_owned(), true)
    );
    assert_eq!(
        severity_and_tor(&run, "from-office"),
        ("low".to_owned(), false)
    );
}

// ---------------------------------------------------------------------------------------------
// 9. sesguard rules

#[test]
fn rules_as_json_lists_every_rule_with_its_triggers() {
    let mut cmd = sesguard();
    cmd.args(["rules", "--format", "json"]);
    let run = run(cmd);
    run.assert_code(0);
    let rules: Value = serde_json::from_str(&run.stdout).expect("rules JSON");
    let rules = rules.as_array().expect("a list of rules");
    let ids: Vec<&str> = rules.iter().filter_map(|r| r["rule_id"].as_str()).collect();
    assert_eq!(ids, all_rules());
    let triggers = |id: &str| -> Vec<(String, String)> {
        rules
            .iter()
            .find(|r| r["rule_id"] == id)
            .and_then(|r| r["triggers"].as_array())
            .expect("triggers")
            .iter()
            .map(|t| (text(&t["event_source"]), text(&t["event_name"])))
            .collect()
    };
    let ses = |name: &str| ("ses.amazonaws.com".to_owned(), name.to_owned());
    for rule in rules {
        assert!(
            !rule["triggers"].as_array().expect("triggers").is_empty(),
            "{rule}"
        );
    }
    assert!(triggers(R1).contains(&ses("GetAccount")));
    assert!(triggers(R2).contains(&(
        "servicequotas.amazonaws.com".to_owned(),
        "ListServiceQuotas".to_owned()
    )));
    assert!(triggers(R3).contains(&ses("VerifyEmailIdentity")));
    assert!(triggers(R4).contains(&ses("DeleteIdentity")));
    assert!(triggers(R5).contains(&ses("DeleteEmailIdentity")));
    let iam = |name: &str| ("iam.amazonaws.com".to_owned(), name.to_owned());
    assert!(triggers("ses-sandbox-exit-burst").contains(&ses("PutAccountDetails")));
    assert!(triggers("ses-full-access-granted").contains(&iam("PutUserPolicy")));
    assert!(triggers("ses-smtp-user-created").contains(&iam("CreateAccessKey")));
    assert!(triggers("ses-abuse-chain").contains(&iam("AttachUserPolicy")));
    let quotas = rules
        .iter()
        .flat_map(|r| r["triggers"].as_array().into_iter().flatten())
        .find(|t| t["event_name"] == "ListServiceQuotas")
        .expect("ListServiceQuotas trigger");
    assert_eq!(quotas["service_code"], "ses");
}
