//! Hostile input: every case sits between valid SES events, which must still be evaluated and
//! signalled; nothing panics or hangs; the damage is reported with file and position; the CLI
//! exits 1 when input was malformed, and the Lambda handler returns an error. Plus property
//! tests over the readers and the engine.

mod support;

use assert_cmd::Command;
use proptest::prelude::*;
use serde_json::{Value, json};
use sesguard::Engine;
use sesguard::deliver::Counts;
use sesguard::lambda::{Handler, HandlerError};
use sesguard::scan::scan_text;
use sesguard::state::MemoryState;
use support::{Collect, R1, R2, R3, gzip};

fn good(id: &str, user: &str) -> Value {
    json!({
        "eventVersion": "1.09",
        "userIdentity": {"type": "IAMUser", "arn": format!("arn:aws:iam::111122223333:user/{user}"), "accountId": "111122223333", "accessKeyId": "AKIAEXAMPLE"},
        "eventTime": "2026-03-02T09:00:00Z",
        "eventSource": "ses.amazonaws.com",
        "eventName": "GetAccount",
        "awsRegion": "us-east-1",
        "sourceIPAddress": "198.51.100.23",
        "eventID": id,
        "recipientAccountId": "111122223333"
    })
}

fn verify(id: &str, identity: &str, agent: &str) -> Value {
    let mut record = good(id, "writer");
    record["eventName"] = json!("VerifyEmailIdentity");
    record["requestParameters"] = json!({"emailAddress": identity});
    record["userAgent"] = json!(agent);
    record
}

/// Damage cases: (name, bytes of the damaged line, whether it is malformed).
fn cases() -> Vec<(&'static str, Vec<u8>, bool)> {
    let deep = format!("{}{}", "[".repeat(5_000), "]".repeat(5_000));
    let deep_record = format!(
        r#"{{"eventSource":"ses.amazonaws.com","eventName":"GetAccount","requestParameters":{}{}}}"#,
        "{\"a\":".repeat(5_000),
        "}".repeat(5_000)
    );
    let mut wrong_user = good("x", "x");
    wrong_user["userIdentity"] = json!("arn:aws:iam::111122223333:user/x");
    let mut wrong_time = good("x", "x");
    wrong_time["eventTime"] = json!(1_772_442_000);
    let mut wrong_params = verify("x", "a@example.com", "cli");
    wrong_params["requestParameters"] = json!(["a@example.com"]);
    let mut absurd_time = good("absurd", "absurd");
    absurd_time["eventTime"] = json!("+999999-01-01T00:00:00Z");
    let mut invalid_utf8 = serde_json::to_vec(&good("utf8", "utf8")).expect("json");
    let at = invalid_utf8.len() - 10;
    invalid_utf8.splice(at..at, [0xff, 0xfe]);
    vec![
        ("truncated JSON", br#"{"eventSource":"ses.amazonaws.com","eventName":"GetAcc"#.to_vec(), true),
        ("not JSON at all", b"<html><body>502 Bad Gateway</body></html>".to_vec(), true),
        ("userIdentity a string", wrong_user.to_string().into_bytes(), true),
        ("eventTime a number", wrong_time.to_string().into_bytes(), true),
        ("requestParameters an array", wrong_params.to_string().into_bytes(), true),
        (
            "null detail",
            br#"{"version":"0","detail-type":"AWS API Call via CloudTrail","source":"aws.ses","detail":null}"#.to_vec(),
            true,
        ),
        ("5,000-level nesting", deep.into_bytes(), true),
        ("5,000-level nesting inside a record", deep_record.into_bytes(), true),
        ("invalid UTF-8", invalid_utf8, true),
        (
            "unknown envelope type",
            br#"{"version":"0","detail-type":"EC2 Instance State-change Notification","source":"aws.ec2","detail":{"state":"running"}}"#.to_vec(),
            true,
        ),
        ("absurd event time", absurd_time.to_string().into_bytes(), true),
    ]
}

fn jsonl(lines: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    for line in lines {
        out.extend_from_slice(line);
        out.push(b'\n');
    }
    out
}

fn surrounded(damage: &[u8], n: usize) -> Vec<u8> {
    jsonl(&[
        good(&format!("before-{n}"), &format!("before-{n}"))
            .to_string()
            .into_bytes(),
        damage.to_vec(),
        good(&format!("after-{n}"), &format!("after-{n}"))
            .to_string()
            .into_bytes(),
    ])
}

#[test]
fn the_cli_reports_each_damage_by_position_and_still_signals_the_events_around_it() {
    for (n, (name, damage, malformed)) in cases().into_iter().enumerate() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("hostile.jsonl");
        std::fs::write(&path, surrounded(&damage, n)).expect("write");
        let output = Command::cargo_bin("sesguard")
            .expect("binary")
            .args(["scan", "--format", "jsonl"])
            .arg(&path)
            .timeout(std::time::Duration::from_secs(60))
            .output()
            .expect("run");
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(
            output.status.code(),
            Some(if malformed { 1 } else { 0 }),
            "{name}: {stderr}"
        );
        for id in [format!("before-{n}"), format!("after-{n}")] {
            assert!(
                stdout.contains(&format!("\"event_id\":\"{id}\"")),
                "{name}: {id} not signalled; {stderr}"
            );
        }
        if malformed {
            assert!(stderr.contains("hostile.jsonl: line 2"), "{name}: {stderr}");
        }
    }
}

#[test]
fn empty_files_and_bom_crlf_files_are_handled() {
    let dir = tempfile::tempdir().expect("dir");
    std::fs::write(dir.path().join("a-empty.json"), b"").expect("write");
    let mut crlf = b"\xEF\xBB\xBF".to_vec();
    crlf.extend_from_slice(good("bom", "bom").to_string().as_bytes());
    crlf.extend_from_slice(b"\r\n\r\n");
    std::fs::write(dir.path().join("b-bom.json"), crlf).expect("write");
    let output = Command::cargo_bin("sesguard")
        .expect("binary")
        .args(["scan", "--format", "jsonl"])
        .arg(dir.path())
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("a-empty.json: empty input"), "{stderr}");
    assert!(String::from_utf8_lossy(&output.stdout).contains("\"event_id\":\"bom\""));
}

#[test]
fn attacker_strings_reach_the_signal_escaped_and_bounded() {
    let identity = format!(
        "<script>alert(1)</script>`\n# [phish](https://evil.example)\u{1b}[31m{}@example.com",
        "a".repeat(5 * 1024 * 1024)
    );
    let agent = "Mozilla/5.0`\r\n## injected heading <img src=x onerror=alert(1)>";
    let record = verify("hostile-strings", &identity, agent);
    let text = format!("{record}\n");
    let (out, stats) = scan_text(&Engine::default(), "hostile", text.as_bytes());
    assert_eq!(stats.malformed, 0);
    let signal = out
        .signals
        .iter()
        .find(|s| s.rule_id == R3)
        .expect("signal");
    let json = signal.to_json();
    assert!(json.len() < 64 * 1024, "{} bytes", json.len());
    assert!(
        !json.contains('\n') && !json.contains('\u{1b}'),
        "JSON escapes control characters"
    );
    let identity_field = signal.subject.identity.as_deref().unwrap_or("");
    assert!(
        identity_field.contains("…[truncated "),
        "visible truncation marker"
    );
    for step in &signal.triage {
        assert!(!step.contains("\n## injected"), "{step}");
        assert!(!step.contains("`\r"), "{step}");
    }
    let title = signal.short_title();
    assert!(
        title.len() <= 100 && title.bytes().all(|b| (0x20..0x7f).contains(&b)),
        "{title:?}"
    );
}

#[test]
fn the_lambda_handler_fails_on_each_damage_and_evaluates_what_it_can() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    for (name, damage, malformed) in cases() {
        let Ok(text) = String::from_utf8(damage.clone()) else {
            // A Lambda payload is JSON text: invalid UTF-8 never reaches the handler.
            continue;
        };
        let handler = Handler::new(Engine::default(), MemoryState::new(), Collect::default());
        let mut report = Counts::default();
        let payload = format!("[{}, {text}]", good("valid", "valid"));
        let result = runtime.block_on(handler.handle(&payload, "hostile", &mut report));
        if malformed {
            assert!(
                matches!(result, Err(HandlerError::Malformed(_))),
                "{name}: {result:?}"
            );
        }
        // Unless the whole payload is broken JSON, the valid record was still evaluated.
        if serde_json::from_str::<Value>(&payload).is_ok() {
            assert!(report.signal_count() >= 1, "{name}: {report:?}");
        }
    }
}

// ---------------------------------------------------------------- properties

fn signals_of(text: &[u8]) -> Vec<(String, String, Vec<String>)> {
    let (out, _) = scan_text(&Engine::default(), "prop", text);
    out.signals
        .iter()
        .map(|s| {
            (
                s.rule_id.clone(),
                s.signal_id.clone(),
                s.related_event_ids.clone(),
            )
        })
        .collect()
}

fn record_strategy() -> impl Strategy<Value = Value> {
    let names = prop::sample::select(vec![
        "GetAccount",
        "GetAccountSendingEnabled",
        "ListIdentities",
        "GetSendQuota",
        "VerifyEmailIdentity",
        "CreateEmailIdentity",
        "DeleteIdentity",
        "DeleteEmailIdentity",
        "DescribeInstances",
    ]);
    (
        names,
        0..4u8,
        prop::bool::ANY,
        0..3u8,
        0..120i64,
        prop::option::of(Just("AccessDenied")),
        "[a-z0-9-]{1,12}",
        prop::bool::ANY,
    )
        .prop_map(|(name, user, long_term, identity, minute, error, id, role)| {
            let user_identity = if role {
                json!({"type": "AssumedRole", "arn": format!("arn:aws:sts::111122223333:assumed-role/R{user}/s"),
                       "accessKeyId": "ASIAX", "sessionContext": {"sessionIssuer": {"arn": format!("arn:aws:iam::111122223333:role/R{user}")}}})
            } else {
                json!({"type": "IAMUser", "arn": format!("arn:aws:iam::111122223333:user/u{user}"),
                       "accessKeyId": if long_term { "AKIAX" } else { "ASIAX" }})
            };
            let source = if name == "DescribeInstances" { "ec2.amazonaws.com" } else { "ses.amazonaws.com" };
            let mut record = json!({
                "eventTime": sesguard::time::format(1_772_442_000 + minute * 60),
                "eventSource": source,
                "eventName": name,
                "awsRegion": "us-east-1",
                "eventID": id,
                "recipientAccountId": "111122223333",
                "userIdentity": user_identity,
                "requestParameters": {"emailAddress": format!("x{identity}@example.com"), "identity": format!("X{identity}@example.com"), "emailIdentity": format!("x{identity}@EXAMPLE.com")},
            });
            if let Some(code) = error {
                record["errorCode"] = json!(code);
            }
            record
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn any_bytes_never_panic_the_reader_or_the_engine(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        let (_, stats) = scan_text(&Engine::default(), "fuzz", &bytes);
        prop_assert!(stats.records <= bytes.len() as u64 + 1);
    }

    #[test]
    fn any_json_like_text_never_panics(text in r#"[\[\]{}",:a-z0-9 \n\\]{0,512}"#) {
        let _ = scan_text(&Engine::default(), "fuzz", text.as_bytes());
    }

    #[test]
    fn valid_records_give_the_same_signals_in_every_wrapping(records in prop::collection::vec(record_strategy(), 1..10)) {
        let envelope = |r: &Value| json!({"version": "0", "detail-type": "AWS API Call via CloudTrail", "source": "aws.ses", "detail": r});
        let bare: String = records.iter().map(|r| format!("{r}\n")).collect();
        let envelopes: String = records.iter().map(|r| format!("{}\n", envelope(r))).collect();
        let records_file = json!({"Records": records}).to_string();
        let pretty_records_file = serde_json::to_string_pretty(&json!({"Records": records})).expect("json");
        let array = Value::Array(records.iter().map(envelope).collect()).to_string();
        let gzipped = gzip(records_file.as_bytes());
        let expected = signals_of(bare.as_bytes());
        prop_assert_eq!(&signals_of(envelopes.as_bytes()), &expected);
        prop_assert_eq!(&signals_of(records_file.as_bytes()), &expected);
        prop_assert_eq!(&signals_of(pretty_records_file.as_bytes()), &expected);
        prop_assert_eq!(&signals_of(array.as_bytes()), &expected);
        prop_assert_eq!(&signals_of(&gzipped), &expected);
    }
}

// ---------------------------------------------------------------- redrive

/// The on-failure destination's record of `event`, which failed with `error_type`.
fn destination(event: &Value, error_type: &str) -> Value {
    json!({
        "version": "1.0",
        "requestContext": {"requestId": "r", "condition": "RetriesExhausted", "approximateInvokeCount": 3},
        "requestPayload": event,
        "responseContext": {"statusCode": 200, "functionError": "Unhandled"},
        "responsePayload": {"errorType": error_type},
    })
}

#[test]
fn the_function_reads_its_on_failure_destination_record_as_the_event_it_carries() {
    // Redriving the on-failure queue's message as it is must evaluate the event, not read the
    // destination record as an empty CloudTrail record that matches nothing.
    let envelope = json!({
        "version": "0",
        "detail-type": "AWS API Call via CloudTrail",
        "source": "aws.ses",
        "detail": good("redriven", "someone"),
    });
    let destination = destination(&envelope, "sesguard.StateUnavailable");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let handler = Handler::new(Engine::default(), MemoryState::new(), Collect::default());
    let mut counts = Counts::default();
    runtime
        .block_on(handler.handle(&destination.to_string(), "redrive", &mut counts))
        .expect("handle");
    assert_eq!(counts.matched, 1, "{counts:?}");
    let signals = handler.sink().collected().signals;
    assert_eq!(signals.len(), 2, "R1 and R2");
    assert!(signals.iter().all(|s| s.subject.event_id == "redriven"));
}

/// A sink whose first `failures` emits fail as SNS would when it is down.
struct Flaky {
    failures: std::sync::atomic::AtomicUsize,
    kept: Collect,
}

impl sesguard::deliver::Sink for Flaky {
    async fn emit(&self, signal: &sesguard::Signal) -> Result<(), sesguard::deliver::SinkError> {
        use std::sync::atomic::Ordering;
        let left = self.failures.load(Ordering::SeqCst);
        if left > 0 {
            self.failures.store(left - 1, Ordering::SeqCst);
            return Err(sesguard::deliver::SinkError::new(
                sesguard::model::FailureKind::Unavailable,
                "SNS Publish: injected 503",
            ));
        }
        self.kept.emit(signal).await
    }
}

#[test]
fn a_signal_whose_publish_failed_every_retry_is_published_once_by_the_redrive() {
    // The first sighting of a principal, while SNS fails the invocation and Lambda's two
    // retries: the event lands in the on-failure queue, its signals decided but unpublished.
    let event = json!({
        "version": "0",
        "detail-type": "AWS API Call via CloudTrail",
        "source": "aws.ses",
        "detail": good("first-sighting", "newcomer"),
    });
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let sink = Flaky {
        failures: std::sync::atomic::AtomicUsize::new(3),
        kept: Collect::default(),
    };
    let handler = Handler::new(Engine::default(), MemoryState::new(), sink);
    for attempt in 0..3 {
        let result =
            runtime.block_on(handler.handle(&event.to_string(), "attempt", &mut Counts::default()));
        assert!(
            matches!(result, Err(HandlerError::Publish(ref err)) if err.is_transient()),
            "attempt {attempt}: {result:?}"
        );
    }
    // SNS is back. The same principal ten minutes later is no first sighting any more.
    let mut later = good("ten-minutes-later", "newcomer");
    later["eventTime"] = json!("2026-03-02T09:10:00Z");
    let mut counts = Counts::default();
    runtime
        .block_on(handler.handle(&later.to_string(), "later", &mut counts))
        .expect("later");
    assert_eq!(counts.signal_count(), 0, "{counts:?}");
    // The on-failure queue's message, redriven as it is, publishes what was decided: once.
    let destination = destination(&event, "sesguard.PublishUnavailable");
    for redrive in 0..2 {
        runtime
            .block_on(handler.handle(&destination.to_string(), "redrive", &mut Counts::default()))
            .unwrap_or_else(|err| panic!("redrive {redrive}: {err}"));
    }
    let published: Vec<(String, String)> = handler
        .sink()
        .kept
        .collected()
        .signals
        .iter()
        .map(|s| (s.rule_id.clone(), s.subject.event_id.clone()))
        .collect();
    assert_eq!(
        published,
        [
            (R1.to_owned(), "first-sighting".to_owned()),
            (R2.to_owned(), "first-sighting".to_owned())
        ]
    );
}

// ---------------------------------------------------------------- size

fn sesguard_scan(args: &[&str], paths: &[&std::path::Path]) -> (i32, String, String) {
    let output = Command::cargo_bin("sesguard")
        .expect("binary")
        .args(["scan", "--format", "jsonl"])
        .args(args)
        .args(paths)
        .timeout(std::time::Duration::from_secs(300))
        .output()
        .expect("run");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn signalled(stdout: &str, id: &str) -> bool {
    stdout.contains(&format!("\"event_id\":\"{id}\""))
}

#[test]
fn a_record_over_the_limit_in_a_line_too_long_to_hold_is_skipped_and_the_rest_is_read() {
    // One line of 17 MiB and more (longer than the 16 MiB read whole), whose second record is
    // over the default --max-record-bytes (16 MiB); then a line, and another file.
    let dir = tempfile::tempdir().expect("dir");
    let mut huge = good("huge", "huge");
    huge["pad"] = json!("a\\\"b".repeat(17 << 18));
    let huge = huge.to_string();
    let text = format!(
        "{{\"Records\":[{},{huge},{}]}}\n{}\n",
        good("first", "first"),
        good("third", "third"),
        good("after", "after")
    );
    let big = dir.path().join("big.json.gz");
    std::fs::write(&big, gzip(text.as_bytes())).expect("write");
    let next = dir.path().join("next.json");
    std::fs::write(
        &next,
        json!({"Records": [good("next", "next")]}).to_string(),
    )
    .expect("write");
    let expected = format!(
        "big.json.gz: line 1, record 2: record of {} bytes is larger than --max-record-bytes (16,777,216): skipped",
        sesguard::text::thousands(huge.len() as u64)
    );
    for threads in ["1", "2"] {
        let (code, stdout, stderr) = sesguard_scan(&["--threads", threads], &[&big, &next]);
        assert_eq!(code, 1, "{stderr}");
        for id in ["first", "third", "after", "next"] {
            assert!(signalled(&stdout, id), "{id} not signalled; {stderr}");
        }
        assert!(!signalled(&stdout, "huge"));
        let problems: Vec<&str> = stderr
            .lines()
            .filter(|l| !l.contains("records read"))
            .collect();
        assert_eq!(problems.len(), 1, "{stderr}");
        assert!(problems[0].ends_with(&expected), "{stderr}");
        assert!(stderr.contains(" 4 records read, 1 malformed"), "{stderr}");
    }
}

#[test]
fn max_record_bytes_skips_larger_records_in_lines_read_whole_too() {
    let dir = tempfile::tempdir().expect("dir");
    let mut padded = good("padded", "padded");
    padded["pad"] = json!("x".repeat(3_000));
    let log_file = json!({"Records": [good("a", "a"), padded, good("b", "b")]}).to_string();
    let mut bare = good("bare", "bare");
    bare["pad"] = json!("y".repeat(3_000));
    let file = dir.path().join("events.json");
    std::fs::write(&file, format!("{log_file}\n{bare}\n{}\n", good("c", "c"))).expect("write");
    let (code, stdout, stderr) = sesguard_scan(&["--max-record-bytes", "2000"], &[&file]);
    assert_eq!(code, 1, "{stderr}");
    for id in ["a", "b", "c"] {
        assert!(signalled(&stdout, id), "{id}; {stderr}");
    }
    assert!(!signalled(&stdout, "padded") && !signalled(&stdout, "bare"));
    assert!(
        stderr.contains("events.json: line 1, record 2: record of 3,"),
        "{stderr}"
    );
    assert!(
        stderr.contains("events.json: line 2: record of 3,"),
        "{stderr}"
    );
    assert!(
        stderr.contains("larger than --max-record-bytes (2,000): skipped"),
        "{stderr}"
    );
    assert!(stderr.contains(" 2 malformed"), "{stderr}");
    // The default reads them all.
    let (code, stdout, stderr) = sesguard_scan(&[], &[&file]);
    assert_eq!(code, 0, "{stderr}");
    assert!(signalled(&stdout, "padded") && signalled(&stdout, "bare"));
    // Zero is no limit anyone means.
    let (code, _, stderr) = sesguard_scan(&["--max-record-bytes", "0"], &[&file]);
    assert_eq!(code, 2, "{stderr}");
}

#[test]
fn a_million_problems_in_a_file_print_ten_lines_and_a_count_and_the_next_file_is_read() {
    let dir = tempfile::tempdir().expect("dir");
    let n = 1_000_000;
    let numbers = format!("[{}0]", "0,".repeat(n - 1));
    let path = dir.path().join("numbers.json.gz");
    std::fs::write(&path, gzip(numbers.as_bytes())).expect("write");
    let next = dir.path().join("next.json");
    std::fs::write(&next, good("next", "next").to_string()).expect("write");
    for threads in ["1", "2"] {
        let (code, stdout, stderr) = sesguard_scan(&["--threads", threads], &[&path, &next]);
        assert_eq!(code, 1, "{stderr}");
        assert!(signalled(&stdout, "next"), "{stderr}");
        let lines: Vec<&str> = stderr.lines().collect();
        assert_eq!(lines.len(), 12, "{stderr}");
        for (i, line) in lines[..10].iter().enumerate() {
            assert!(
                line.ends_with(&format!(
                    "numbers.json.gz: line 1, record {}: expected a CloudTrail record (a JSON object), found a number",
                    i + 1
                )),
                "{line}"
            );
        }
        assert!(
            lines[10].ends_with("numbers.json.gz: 999,990 more problems in this file not shown (only the first 10 of a file are; the summary counts them all)"),
            "{stderr}"
        );
        assert!(
            lines[11].contains(" 1 record read, 1000000 malformed, "),
            "{stderr}"
        );
    }
}

#[test]
fn problems_past_the_first_ten_of_each_file_are_counted_not_listed_on_every_read_path() {
    use sesguard::scan::Scanner;
    let dir = tempfile::tempdir().expect("dir");
    let first = dir.path().join("a.json");
    std::fs::write(&first, format!("[{}0]\n", "1,".repeat(99_999))).expect("write");
    let second = dir.path().join("b.jsonl");
    let mut lines: String = (0..15).map(|i| format!("{i}\n")).collect();
    lines.push_str(&format!("{}\n", good("kept", "kept")));
    std::fs::write(&second, lines).expect("write");
    let (sources, _) = sesguard::input::expand(&[first.clone(), second.clone()]);
    let engine = Engine::default();
    for threads in [1, 2] {
        for stream_over in [None, Some(100)] {
            let mut scanner = Scanner::new(&engine, Collect::default())
                .expect("scanner")
                .threads(threads);
            if let Some(bytes) = stream_over {
                scanner = scanner.stream_lines_over(bytes);
            }
            scanner.scan(&sources).expect("scan");
            let (sink, counts) = scanner.into_parts();
            let collected = sink.into_inner();
            let case = format!("threads {threads}, lines streamed over {stream_over:?}");
            assert_eq!(counts.malformed, 100_000 + 15, "{case}");
            assert_eq!(collected.problems.len(), 20, "{case}");
            assert!(
                collected.problems[9]
                    .to_string()
                    .contains("a.json: line 1, record 10: "),
                "{case}"
            );
            assert!(
                collected.problems[19]
                    .to_string()
                    .contains("b.jsonl: line 10: "),
                "{case}"
            );
            assert_eq!(
                collected.not_shown,
                [
                    (first.display().to_string(), 99_990),
                    (second.display().to_string(), 5)
                ],
                "{case}"
            );
            assert_eq!(collected.signals.len(), 2, "{case}");
        }
    }
}
