//! The table `sesguard scan` prints for people (issue 16): it fits the width, wraps instead of
//! truncating, colours by severity when asked (NO_COLOR, `--color`), shows hostile text
//! escaped, lists signals in time order; `-o FILE` writes the signals to a file.

use std::fs;
use std::path::Path;

use assert_cmd::Command;
use serde_json::{Value, json};

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

/// `sesguard scan ARGS` from the repository root, with these environment variables (and
/// without the colour ones the test runner may have).
fn scan(args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sesguard"));
    cmd.current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("NO_COLOR")
        .env_remove("CLICOLOR_FORCE")
        .env_remove("CLICOLOR")
        .env_remove("COLUMNS")
        .arg("scan")
        .args(args);
    for (name, value) in env {
        cmd.env(name, value);
    }
    let output = cmd.output().expect("run sesguard");
    Run {
        code: output.status.code().expect("exit code"),
        stdout: String::from_utf8(output.stdout).expect("UTF-8"),
        stderr: String::from_utf8(output.stderr).expect("UTF-8"),
    }
}

fn width_of(line: &str) -> usize {
    line.chars().count()
}

#[test]
fn the_table_fits_the_width_and_keeps_every_principal_whole() {
    let jsonl = scan(&["events/"], &[]);
    let principals: Vec<String> = jsonl
        .stdout
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).expect("JSON"))
        .filter_map(|s| s["principal"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(principals.len(), 33);
    for columns in ["60", "80", "120", "160", "220"] {
        let run = scan(&["--format", "table", "events/"], &[("COLUMNS", columns)]);
        assert_eq!(run.code, 0, "{}", run.stderr);
        let width: usize = columns.parse().expect("number");
        for line in run.stdout.lines() {
            assert!(width_of(line) <= width, "{columns}: {line:?}");
        }
        if width < 160 {
            // A block per signal: every principal is on its lines, wrapped but whole.
            let joined: String = run.stdout.split_whitespace().collect();
            for principal in &principals {
                assert!(
                    joined.contains(principal.as_str()),
                    "{columns}: {principal}"
                );
            }
            assert_eq!(
                run.stdout.matches("principal").count(),
                33,
                "{}",
                run.stdout
            );
        } else {
            assert!(run.stdout.starts_with("TIME"), "{}", run.stdout);
            assert_eq!(run.stdout.matches("TIME").count(), 1);
        }
        assert!(
            !run.stdout.contains('…'),
            "nothing is truncated:\n{}",
            run.stdout
        );
    }
}

#[test]
fn rows_come_in_time_order() {
    let run = scan(&["--format", "table", "events/"], &[("COLUMNS", "200")]);
    let times: Vec<&str> = run
        .stdout
        .lines()
        .skip(1)
        .filter(|line| line.starts_with("2026-"))
        .map(|line| &line[..20])
        .collect();
    assert!(times.len() >= 30, "{}", run.stdout);
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
}

#[test]
fn colour_follows_the_flag_and_no_color() {
    let has_colour = |run: &Run| run.stdout.contains("\u{1b}[");
    let table = ["--format", "table", "events/"];
    fn with(flag: &'static str) -> Vec<&'static str> {
        vec!["--color", flag, "--format", "table", "events/"]
    }
    // stdout is a pipe here: auto means no colour, unless CLICOLOR_FORCE asks for it.
    assert!(!has_colour(&scan(&table, &[])));
    assert!(has_colour(&scan(&table, &[("CLICOLOR_FORCE", "1")])));
    assert!(!has_colour(&scan(
        &table,
        &[("CLICOLOR_FORCE", "1"), ("NO_COLOR", "1")]
    )));
    assert!(has_colour(&scan(&with("always"), &[])));
    assert!(!has_colour(&scan(
        &with("never"),
        &[("CLICOLOR_FORCE", "1")]
    )));
    // Critical is bold bright red, high red, medium yellow.
    let always = scan(&with("always"), &[("COLUMNS", "200")]);
    assert!(
        always.stdout.contains("\u{1b}[1m\u{1b}[91mcritical"),
        "{}",
        always.stdout
    );
    assert!(always.stdout.contains("\u{1b}[31mhigh"));
    assert!(always.stdout.contains("\u{1b}[33mmedium"));
    // JSON Lines are never coloured.
    assert!(!has_colour(&scan(
        &["--color", "always", "--format", "jsonl", "events/"],
        &[]
    )));
}

#[test]
fn hostile_text_is_shown_escaped_in_the_table() {
    let principal = "arn:aws:iam::111122223333:user/x\u{1b}[2J\u{1b}]0;owned\u{7}\r\u{202e}gpj.exe";
    let record = json!({
        "eventVersion": "1.08",
        "eventTime": "2026-03-02T09:00:00Z",
        "eventID": "hostile-1",
        "eventSource": "ses.amazonaws.com",
        "eventName": "GetAccount",
        "awsRegion": "us-east-1\u{1b}[31m",
        "sourceIPAddress": "198.51.100.7",
        "recipientAccountId": "111122223333",
        "userIdentity": {
            "type": "IAMUser",
            "arn": principal,
            "accountId": "111122223333",
            "accessKeyId": "AKIAIOSFODNN7EXAMPLE"
        }
    });
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("hostile.json");
    fs::write(&file, record.to_string()).expect("write");
    for columns in ["80", "200"] {
        let run = scan(
            &["--format", "table", "--color", "never", path(&file)],
            &[("COLUMNS", columns)],
        );
        assert_eq!(run.code, 0, "{}", run.stderr);
        assert!(!run.stdout.is_empty());
        let raw: Vec<char> = run
            .stdout
            .chars()
            .filter(|c| (c.is_control() && *c != '\n') || *c == '\u{202e}')
            .collect();
        assert!(raw.is_empty(), "{columns}: raw {raw:?} in {:?}", run.stdout);
        let joined: String = run.stdout.split_whitespace().collect();
        assert!(joined.contains("\\u{1b}[2J"), "{}", run.stdout);
        assert!(joined.contains("\\u{202e}gpj.exe"), "{}", run.stdout);
    }
}

fn path(p: &Path) -> &str {
    p.to_str().expect("UTF-8 path")
}

#[test]
fn output_file_gets_the_signals_in_the_chosen_format() {
    let dir = tempfile::tempdir().expect("temp dir");
    let jsonl_file = dir.path().join("signals.jsonl");
    let to_stdout = scan(&["events/"], &[]);
    let to_file = scan(&["-o", path(&jsonl_file), "events/"], &[]);
    assert_eq!(to_file.code, 0, "{}", to_file.stderr);
    assert!(to_file.stdout.is_empty(), "{}", to_file.stdout);
    assert_eq!(
        fs::read_to_string(&jsonl_file).expect("read"),
        to_stdout.stdout,
        "the file holds what stdout would"
    );
    assert!(to_file.stderr.contains("33 signals"), "{}", to_file.stderr);

    let table_file = dir.path().join("signals.txt");
    let table = scan(
        &[
            "--output",
            path(&table_file),
            "--format",
            "table",
            "events/",
        ],
        &[("COLUMNS", "200")],
    );
    assert_eq!(table.code, 0, "{}", table.stderr);
    let text = fs::read_to_string(&table_file).expect("read");
    assert!(text.starts_with("TIME"), "{text}");
    assert!(!text.contains('\u{1b}'), "no colour in a file by default");

    let unwritable = scan(
        &["-o", path(&dir.path().join("no/such/dir/x")), "events/"],
        &[],
    );
    assert_eq!(unwritable.code, 2, "{}", unwritable.stderr);
    assert!(
        unwritable.stderr.contains("cannot create"),
        "{}",
        unwritable.stderr
    );
}

#[test]
fn no_progress_bar_when_stderr_is_not_a_terminal() {
    let run = scan(&["/work/does-not-matter-missing.json", "events/"], &[]);
    assert!(
        !run.stderr.contains('\r') && !run.stderr.contains('\u{1b}'),
        "{:?}",
        run.stderr
    );
    assert!(
        run.stderr
            .lines()
            .last()
            .unwrap_or_default()
            .contains("33 signals")
    );
}
