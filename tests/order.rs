//! Event-time order in `sesguard scan` (issue 16): records are evaluated in the order they
//! happened, whatever the file names, the number of reader threads or the order inside a file,
//! through a reorder buffer of `--reorder-window` minutes; `--input-order` evaluates as read.

use std::fs;
use std::path::{Path, PathBuf};

use assert_cmd::Command;
use serde_json::Value;
use tempfile::TempDir;

/// What one run gave.
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn signals(&self) -> Vec<Value> {
        self.stdout
            .lines()
            .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
            .collect()
    }

    fn times(&self) -> Vec<String> {
        self.signals()
            .iter()
            .map(|s| s["event_time"].as_str().unwrap_or_default().to_owned())
            .collect()
    }

    fn summary(&self) -> &str {
        self.stderr.lines().last().unwrap_or_default()
    }

    fn ok(self) -> Self {
        assert_eq!(self.code, 0, "stderr:\n{}", self.stderr);
        self
    }
}

fn scan(args: &[&str], stdin: Option<String>) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sesguard"));
    cmd.current_dir(env!("CARGO_MANIFEST_DIR"))
        .arg("scan")
        .args(args);
    if let Some(input) = stdin {
        cmd.write_stdin(input);
    }
    let output = cmd.output().expect("run sesguard");
    Run {
        code: output.status.code().expect("exit code"),
        stdout: String::from_utf8(output.stdout).expect("UTF-8"),
        stderr: String::from_utf8(output.stderr).expect("UTF-8"),
    }
}

fn events_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("events")
}

/// The sample files, in name order.
fn sample_paths() -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = fs::read_dir(events_dir())
        .expect("events/")
        .map(|entry| entry.expect("entry").path())
        .filter(|path| path.extension().is_some_and(|x| x == "json"))
        .collect();
    paths.sort();
    assert_eq!(paths.len(), 55, "the samples changed: update this test");
    paths
}

/// The samples copied under other names: name order is a fixed shuffle of the original one
/// (`step` apart, modulo the count), split over two folders.
fn shuffled_copy(step: usize) -> TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    let paths = sample_paths();
    let n = paths.len();
    for (i, path) in paths.iter().enumerate() {
        let rank = (i * step) % n;
        let folder = dir
            .path()
            .join(if rank.is_multiple_of(2) { "a" } else { "b" });
        fs::create_dir_all(&folder).expect("mkdir");
        fs::copy(path, folder.join(format!("{rank:03}.json"))).expect("copy");
    }
    dir
}

/// Every sample's record (its `detail`), as JSON Lines, in the given order of the files.
fn samples_as_lines(reverse: bool) -> String {
    let mut paths = sample_paths();
    if reverse {
        paths.reverse();
    }
    paths
        .iter()
        .map(|path| {
            let event: Value =
                serde_json::from_str(&fs::read_to_string(path).expect("read")).expect("JSON");
            format!("{}\n", event["detail"])
        })
        .collect()
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("UTF-8 path")
}

#[test]
fn the_readme_first_command_prints_the_attack_in_the_order_it_happened() {
    let run = scan(&["events/"], None).ok();
    let times = run.times();
    assert_eq!(times.len(), 33, "{}", run.stdout);
    assert!(
        times.windows(2).all(|w| w[0] <= w[1]),
        "signals out of time order: {times:?}"
    );
    assert!(!run.summary().contains("late"), "{}", run.summary());
    // The leaked key's chain as it happened: recon, the sandbox exit, then sending enabled.
    let chain: Vec<Value> = run
        .signals()
        .into_iter()
        .filter(|s| s["rule_id"] == "ses-abuse-chain")
        .collect();
    assert_eq!(chain.len(), 1, "{}", run.stdout);
    assert_eq!(chain[0]["event_name"], "UpdateAccountSendingEnabled");
    assert_eq!(
        chain[0]["details"]["stages"],
        serde_json::json!(["recon", "sandbox-exit", "sending"])
    );
    // The first sighting names the first call, not the first file in name order.
    let first = &run.signals()[0];
    assert_eq!(first["event_time"], "2026-03-02T09:00:03Z");
}

#[test]
fn the_output_does_not_depend_on_file_names_threads_or_the_order_inside_a_file() {
    let reference = scan(&["--reorder-window", "60", "events/"], None).ok();
    assert_eq!(reference.signals().len(), 33);
    let default_window = scan(&["events/"], None).ok();
    assert_eq!(default_window.stdout, reference.stdout);
    for step in [1, 7, 23, 54] {
        let dir = shuffled_copy(step);
        for threads in ["1", "2", "4"] {
            let run = scan(
                &[
                    "--reorder-window",
                    "60",
                    "--threads",
                    threads,
                    path_str(dir.path()),
                ],
                None,
            )
            .ok();
            assert_eq!(
                run.stdout, reference.stdout,
                "shuffle step {step}, {threads} threads"
            );
        }
    }
    // One stream, in name order and in reverse: the buffer orders records inside a file too.
    for reverse in [false, true] {
        let run = scan(
            &["--reorder-window", "60", "-"],
            Some(samples_as_lines(reverse)),
        )
        .ok();
        assert_eq!(run.stdout, reference.stdout, "stdin, reverse {reverse}");
        assert!(!run.summary().contains("late"), "{}", run.summary());
    }
}

#[test]
fn input_order_evaluates_as_read_and_names_the_first_event_in_name_order() {
    let run = scan(&["--input-order", "events/"], None).ok();
    let times = run.times();
    assert_eq!(times.len(), 33);
    assert!(
        times.windows(2).any(|w| w[0] > w[1]),
        "name order is not time order for the samples: {times:?}"
    );
    // iam-… sorts first: the grant at 09:14 is the first signal.
    assert_eq!(run.signals()[0]["event_name"], "AttachUserPolicy");
    assert!(!run.summary().contains("late"), "{}", run.summary());
    let usage = scan(&["--input-order", "--reorder-window", "5", "events/"], None);
    assert_eq!(usage.code, 2, "{}", usage.stderr);
}

#[test]
fn records_further_behind_than_the_window_are_evaluated_as_they_come_and_counted_late() {
    // In reverse time order the samples span 47 minutes: with a 5-minute window, every record
    // more than 5 minutes older than the first (09:47) is late.
    let reversed = samples_as_lines(true);
    let late = scan(&["--reorder-window", "5", "-"], Some(reversed.clone())).ok();
    let wide = scan(&["--reorder-window", "60", "-"], Some(reversed)).ok();
    let count = |summary: &str| -> u64 {
        summary
            .split(", ")
            .find_map(|part| part.strip_suffix(" late"))
            // "3 records late": the number is the first word.
            .and_then(|n| n.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    };
    assert!(count(late.summary()) > 0, "{}", late.summary());
    assert_eq!(count(wide.summary()), 0, "{}", wide.summary());
    // The rules' results do not depend on order: the same signals per rule either way.
    let rules = |run: &Run| -> Vec<String> {
        let mut rules: Vec<String> = run
            .signals()
            .iter()
            .map(|s| s["rule_id"].as_str().unwrap_or_default().to_owned())
            .collect();
        rules.sort();
        rules
    };
    assert_eq!(rules(&late), rules(&wide));
    assert_ne!(late.times(), wide.times(), "late records came out of order");
}

#[test]
fn problems_of_held_records_are_reported_with_their_file_and_line_and_limited_per_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    // A record a rule reads, with a field of the wrong type: malformed when evaluated, after
    // the buffer held it.
    let bad = |i: usize| {
        format!(
            "{{\"eventVersion\":\"1.08\",\"eventTime\":\"2026-03-02T09:00:{:02}Z\",\
             \"eventID\":\"bad-{i}\",\"eventSource\":\"ses.amazonaws.com\",\
             \"eventName\":\"GetAccount\",\"awsRegion\":7,\"userIdentity\":{{}}}}\n",
            i % 60
        )
    };
    let text: String = (0..12).map(bad).collect();
    fs::write(dir.path().join("bad.jsonl"), text).expect("write");
    let run = scan(&[path_str(dir.path())], None);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let problems: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.contains("bad.jsonl: line"))
        .collect();
    assert_eq!(problems.len(), 10, "{}", run.stderr);
    assert!(
        problems[0].contains("bad.jsonl: line 1") && problems[0].contains("awsRegion"),
        "{}",
        problems[0]
    );
    assert!(
        run.stderr.contains("bad.jsonl: 2 more problems"),
        "{}",
        run.stderr
    );
    assert!(run.summary().contains("12 malformed"), "{}", run.summary());
}
