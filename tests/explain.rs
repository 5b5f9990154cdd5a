//! `sesguard scan --explain` (issue 16): for every rule match that gave no signal, stderr says
//! why, the suppression entry (its number and reason) or the earlier signal that hid it,
//! without changing the signals.

use std::fs;

use assert_cmd::Command;
use serde_json::Value;

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn explained(&self) -> Vec<&str> {
        self.stderr
            .lines()
            .filter(|l| l.starts_with("sesguard: explain: "))
            .collect()
    }

    /// The number before `word` in the summary line.
    fn summary_count(&self, word: &str) -> usize {
        let summary = self.stderr.lines().last().unwrap_or_default();
        summary
            .split(", ")
            .find_map(|part| part.strip_suffix(word))
            // "4 signals suppressed": the number is the first word.
            .and_then(|n| n.split_whitespace().next()?.parse().ok())
            .unwrap_or_else(|| panic!("no {word} in {summary}"))
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

const CONFIG: &str = r#"
[[suppressions]]
rule = "ses-feedback-tampering"
principal = "arn:aws:iam::111122223333:user/nobody"
reason = "matches nothing in the samples"

[[suppressions]]
rule = "ses-modification"
principal = "arn:aws:iam::111122223333:role/MailAdmin"
reason = "the mail team's console work"
"#;

#[test]
fn every_suppressed_and_deduplicated_match_is_explained_and_the_signals_do_not_change() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("sesguard.toml");
    fs::write(&config, CONFIG).expect("write");
    let config = config.to_str().expect("UTF-8 path");
    let plain = scan(&["--config", config, "events/"], None);
    let explained = scan(&["--explain", "--config", config, "events/"], None);
    assert_eq!(explained.code, 0, "{}", explained.stderr);
    assert_eq!(
        explained.stdout, plain.stdout,
        "--explain changes no signal"
    );
    assert!(plain.explained().is_empty(), "{}", plain.stderr);

    let lines = explained.explained();
    let suppressed: Vec<&&str> = lines
        .iter()
        .filter(|l| l.contains(": suppressed by"))
        .collect();
    let deduplicated: Vec<&&str> = lines
        .iter()
        .filter(|l| l.contains(": deduplicated: "))
        .collect();
    assert_eq!(
        suppressed.len() + deduplicated.len(),
        lines.len(),
        "{lines:#?}"
    );
    assert_eq!(suppressed.len(), explained.summary_count(" suppressed"));
    assert_eq!(deduplicated.len(), explained.summary_count(" deduplicated"));
    assert!(!suppressed.is_empty() && !deduplicated.is_empty());
    for line in &suppressed {
        assert!(
            line.starts_with("sesguard: explain: ses-modification on ")
                && line.ends_with(&format!(
                    "suppressed by [[suppressions]] entry 2 of {config} (reason: \"the mail \
                     team's console work\")"
                )),
            "{line}"
        );
    }

    // A duplicate names the signal that holds the window: one printed on stdout, of the same
    // rule, for an earlier event.
    let signals: Vec<Value> = plain
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON"))
        .collect();
    let repeat = lines
        .iter()
        .find(|l| {
            l.starts_with("sesguard: explain: ses-discovery-long-term-key on GetAccount ")
                && l.contains("09:48:30Z")
        })
        .unwrap_or_else(|| panic!("the repeated GetAccount is explained: {lines:#?}"));
    let first = signals
        .iter()
        .find(|s| s["rule_id"] == "ses-discovery-long-term-key")
        .expect("the discovery signal");
    assert!(
        repeat.contains(&format!(
            "deduplicated: signal {} (GetAccount {} at 2026-03-02T09:00:03Z) holds the rule's \
             dedup window",
            first["signal_id"].as_str().unwrap_or_default(),
            first["event_id"].as_str().unwrap_or_default()
        )),
        "{repeat}"
    );
}

#[test]
fn the_same_event_twice_is_explained_as_given_already() {
    let sample = fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("events/ses-DeleteIdentity.json"),
    )
    .expect("sample");
    let event: Value = serde_json::from_str(&sample).expect("JSON");
    let line = format!("{}\n", event["detail"]);
    let run = scan(&["--explain", "-"], Some(line.repeat(2)));
    assert_eq!(run.code, 0, "{}", run.stderr);
    let signals = run.stdout.lines().count();
    assert!(signals > 0);
    let lines = run.explained();
    assert_eq!(
        lines.len(),
        signals,
        "one explanation per signal not repeated"
    );
    assert!(
        lines
            .iter()
            .all(|l| l.contains("was given for this same event already")),
        "{lines:#?}"
    );
}
