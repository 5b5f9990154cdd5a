//! `sesguard timeline` end to end: the calls of the sample attack's principal and address, in
//! event-time order, whatever the order of the input; the command each signal's triage gives
//! runs as printed and finds the signal's own event.

use std::fs;
use std::path::Path;

use assert_cmd::Command;
use serde_json::Value;
use tempfile::TempDir;

const LEAKED: &str = "arn:aws:iam::111122223333:user/ses-ops-leaked";
const ATTACKER_IP: &str = "198.51.100.23";

fn sesguard() -> Command {
    Command::new(env!("CARGO_BIN_EXE_sesguard"))
}

fn events() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/events"))
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn run(args: &[&str]) -> Run {
    let output = sesguard().args(args).output().expect("runs");
    Run {
        code: output.status.code().expect("exit code"),
        stdout: String::from_utf8(output.stdout).expect("UTF-8"),
        stderr: String::from_utf8(output.stderr).expect("UTF-8"),
    }
}

fn lines(run: &Run) -> Vec<Value> {
    run.stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect()
}

/// Every record of `events/` as (eventTime, eventName, principal ARN, sourceIPAddress).
fn sample_records() -> Vec<Value> {
    let mut out = Vec::new();
    for entry in fs::read_dir(events()).expect("events/") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "json") {
            let text = fs::read_to_string(&path).expect("read");
            let value: Value = serde_json::from_str(&text).expect("JSON");
            out.push(value.get("detail").cloned().unwrap_or(value));
        }
    }
    out
}

#[test]
fn the_principal_s_calls_come_in_event_time_order_with_counts() {
    let run = run(&[
        "timeline",
        "--principal",
        LEAKED,
        events().to_str().unwrap(),
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let calls = lines(&run);
    let expected = sample_records()
        .iter()
        .filter(|r| r["userIdentity"]["arn"] == LEAKED)
        .count();
    assert!(
        expected > 10,
        "the sample attack has many calls by {LEAKED}"
    );
    assert_eq!(calls.len(), expected);
    let times: Vec<&str> = calls
        .iter()
        .map(|c| c["event_time"].as_str().unwrap())
        .collect();
    let mut sorted = times.clone();
    sorted.sort();
    assert_eq!(times, sorted, "event-time order");
    // Any service, not only SES.
    let services: Vec<&str> = calls
        .iter()
        .map(|c| c["event_source"].as_str().unwrap())
        .collect();
    assert!(services.contains(&"iam.amazonaws.com"));
    assert!(services.contains(&"sts.amazonaws.com"));
    assert!(run.stderr.contains("by service: ses "), "{}", run.stderr);
    assert!(
        run.stderr.contains("by region: us-east-1 "),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains(&format!("{expected} matching calls, 0 problems")),
        "{}",
        run.stderr
    );
}

#[test]
fn the_order_does_not_depend_on_file_names() {
    // The same records under names that sort in reverse time order.
    let dir = TempDir::new().unwrap();
    let mut records = sample_records();
    records.sort_by(|a, b| a["eventTime"].as_str().cmp(&b["eventTime"].as_str()));
    for (i, record) in records.iter().enumerate() {
        let name = format!("{:03}.json", 999 - i);
        fs::write(dir.path().join(name), record.to_string()).unwrap();
    }
    let shuffled = run(&[
        "timeline",
        "--source-ip",
        ATTACKER_IP,
        dir.path().to_str().unwrap(),
    ]);
    let original = run(&[
        "timeline",
        "--source-ip",
        ATTACKER_IP,
        events().to_str().unwrap(),
    ]);
    let strip = |calls: Vec<Value>| -> Vec<Value> {
        calls
            .into_iter()
            .map(|mut c| {
                c.as_object_mut().unwrap().remove("at");
                c
            })
            .collect()
    };
    let (a, b) = (strip(lines(&shuffled)), strip(lines(&original)));
    assert!(!a.is_empty());
    assert_eq!(a, b);
}

#[test]
fn since_and_until_bound_the_event_time_and_bad_bounds_are_usage_errors() {
    let all = lines(&run(&[
        "timeline",
        "--principal",
        LEAKED,
        events().to_str().unwrap(),
    ]));
    let bounded = run(&[
        "timeline",
        "--principal",
        LEAKED,
        "--since",
        "2026-03-02T09:05:00Z",
        "--until",
        "2026-03-02T09:15:00Z",
        events().to_str().unwrap(),
    ]);
    let within = lines(&bounded);
    let expected = all
        .iter()
        .filter(|c| {
            let t = c["event_time"].as_str().unwrap();
            ("2026-03-02T09:05:00Z".."2026-03-02T09:15:00Z").contains(&t)
        })
        .count();
    assert!(expected > 0 && expected < all.len());
    assert_eq!(within.len(), expected);
    let bad = run(&[
        "timeline",
        "--principal",
        LEAKED,
        "--since",
        "yesterday",
        "events",
    ]);
    assert_eq!(bad.code, 2);
    assert!(bad.stderr.contains("--since"), "{}", bad.stderr);
    let nobody = run(&["timeline", events().to_str().unwrap()]);
    assert_eq!(
        nobody.code, 2,
        "one of --principal, --access-key, --source-ip is required"
    );
}

#[test]
fn the_table_escapes_what_an_attacker_wrote() {
    let dir = TempDir::new().unwrap();
    let record = r#"{"eventTime":"2026-03-02T09:00:00Z","eventSource":"ses.amazonaws.com","eventName":"GetAccount","awsRegion":"us-east-1\u001b[2J","sourceIPAddress":"203.0.113.9","userIdentity":{"type":"IAMUser","arn":"arn:aws:iam::1:user/x\u001b]0;pwned\u0007"}}"#;
    fs::write(dir.path().join("a.json"), record).unwrap();
    let run = run(&[
        "timeline",
        "--format",
        "table",
        "--source-ip",
        "203.0.113.0/24",
        dir.path().to_str().unwrap(),
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(!run.stdout.contains('\u{1b}'), "{:?}", run.stdout);
    assert!(run.stdout.contains("user/x?]0;pwned?"), "{}", run.stdout);
    assert!(run.stdout.contains("by service: ses 1"), "{}", run.stdout);
}

#[test]
fn each_signal_s_triage_command_finds_its_own_event() {
    let scan = run(&["scan", "--quiet", events().to_str().unwrap()]);
    let signals = lines(&scan);
    assert!(!signals.is_empty());
    let mut checked = 0;
    for signal in &signals {
        let step = signal["triage"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_str)
            .find(|s| s.contains("sesguard timeline"))
            .unwrap_or_else(|| panic!("no timeline step in {signal}"));
        let command = step
            .split('`')
            .nth(1)
            .expect("the command is in a code span");
        // Run it as a shell would, with the placeholder replaced by the samples.
        let args: Vec<String> = shell_words(command)
            .into_iter()
            .skip(1)
            .map(|a| {
                if a == "<your CloudTrail archive>" {
                    events().display().to_string()
                } else {
                    a
                }
            })
            .collect();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let found = lines(&run(&args));
        let event_id = &signal["event_id"];
        assert!(
            found.iter().any(|c| &c["event_id"] == event_id),
            "{command} does not find {event_id}"
        );
        checked += 1;
    }
    assert_eq!(checked, signals.len());
}

/// Splits a command line with single-quoted words (what the triage command uses).
fn shell_words(command: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quoted = false;
    let mut started = false;
    for c in command.chars() {
        match c {
            '\'' => {
                quoted = !quoted;
                started = true;
            }
            ' ' if !quoted => {
                if started {
                    words.push(std::mem::take(&mut word));
                    started = false;
                }
            }
            c => {
                word.push(c);
                started = true;
            }
        }
    }
    if started {
        words.push(word);
    }
    words
}
