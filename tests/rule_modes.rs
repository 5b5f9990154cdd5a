//! Per-rule modes from the configuration (`[rules."<id>"]`): a disabled rule is not evaluated
//! and writes no state; a shadow rule is evaluated and stateful, its signals marked `shadow`,
//! emitted only to sinks that take them (the CLI), counted apart, and claimed apart from live
//! signals so the rule turned live later is not confused by what its shadow run decided.

mod support;

use std::path::Path;

use serde_json::json;
use sesguard::config::{Config, ConfigError, Mode, Overrides};
use sesguard::deliver::{Counts, Delivery, Sink, SinkError};
use sesguard::input::Position;
use sesguard::{Engine, MemoryState, Record, Signal};
use support::*;

fn parse(toml: &str) -> Result<Config, ConfigError> {
    Config::parse(toml, Path::new("modes.toml"), &Overrides::default())
}

/// The sample attack of `events/`, as records (delete after verify, a grant, an SMTP user...).
fn attack() -> Vec<R> {
    vec![
        ses("GetAccount").at(0),
        verify("a@example.com").id("v1").at(1),
        delete("a@example.com").id("d1").at(2),
    ]
}

#[test]
fn modes_come_from_rules_tables_and_every_rule_is_live_by_default() {
    let config = parse(&format!(
        "[rules.\"{R3}\"]\nenabled = false\n[rules.\"{R5}\"]\nshadow = true\n\
         [rules.\"{R1}\"]\nenabled = true\nshadow = false\n"
    ))
    .expect("config");
    assert_eq!(config.modes.of(R3), Mode::Disabled);
    assert_eq!(config.modes.of(R5), Mode::Shadow);
    assert_eq!(config.modes.of(R1), Mode::Live);
    assert_eq!(config.modes.of(R4), Mode::Live);
    assert_eq!(parse("").expect("empty").modes.of(R3), Mode::Live);
}

#[test]
fn an_unknown_rule_id_a_contradiction_or_an_unknown_key_is_rejected_with_the_entry_named() {
    let err = parse("[rules.\"ses-no-such-rule\"]\nenabled = false\n").expect_err("unknown id");
    let text = err.to_string();
    assert!(
        text.starts_with("modes.toml: [rules.\"ses-no-such-rule\"]: unknown rule id; the rules are ses-discovery-long-term-key,"),
        "{text}"
    );
    let err = parse(&format!(
        "[rules.\"{R3}\"]\nenabled = false\nshadow = true\n"
    ))
    .expect_err("contradiction");
    assert!(
        err.to_string().starts_with(&format!(
            "modes.toml: [rules.\"{R3}\"]: enabled = false and shadow = true"
        )),
        "{err}"
    );
    let err = parse(&format!("[rules.\"{R3}\"]\nmuted = true\n")).expect_err("unknown key");
    assert!(err.to_string().contains("unknown field `muted`"), "{err}");
}

#[test]
fn a_disabled_rule_gives_nothing_and_the_others_still_fire() {
    let live = run(&attack());
    assert!(count(&live, R4) == 1 && count(&live, R5) == 1, "{live:?}");
    let without = run_with(
        &engine(&format!("[rules.\"{R4}\"]\nenabled = false\n")),
        &attack(),
    );
    assert_eq!(count(&without, R4), 0, "{:?}", fired(&without));
    assert_eq!(count(&without, R5), 1, "{:?}", fired(&without));
    let others = |signals: &[Signal]| -> Vec<(String, String)> {
        fired(signals)
            .into_iter()
            .filter(|(r, _)| r != R4)
            .collect()
    };
    assert_eq!(others(&without), others(&live));
}

#[tokio::test]
async fn disabled_rules_read_and_write_no_state() {
    let every_rule: String = all_rules()
        .iter()
        .map(|id| format!("[rules.\"{id}\"]\nenabled = false\n"))
        .collect();
    let engine = engine(&every_rule);
    let state = MemoryState::new();
    for record in attack() {
        let json = record.0.to_string();
        let record = Record::parse(&json).expect("record");
        let evaluation = engine.evaluate(&record, &state).await.expect("evaluate");
        assert!(!evaluation.matched && evaluation.signals.is_empty());
    }
    assert!(state.is_empty(), "{} state items written", state.len());
    // The same records with the rules live do write state: the test above can fail.
    let live = Engine::new(config(""));
    let json = attack()[1].0.to_string();
    let record = Record::parse(&json).expect("record");
    live.evaluate(&record, &state).await.expect("evaluate");
    assert!(!state.is_empty());
}

#[test]
fn a_shadow_rule_signals_with_its_mark_and_the_live_signals_json_is_unchanged() {
    let shadow = run_with(
        &engine(&format!("[rules.\"{R5}\"]\nshadow = true\n")),
        &attack(),
    );
    let live = run(&attack());
    let deleted = of_rule(&shadow, R5);
    assert_eq!(deleted.len(), 1);
    assert!(deleted[0].shadow);
    let json: serde_json::Value = serde_json::from_str(&deleted[0].to_json()).expect("json");
    assert_eq!(json["shadow"], json!(true));
    // Same id as the live rule would give (the mark, not the id, tells them apart)...
    assert_eq!(deleted[0].signal_id, of_rule(&live, R5)[0].signal_id);
    // ... and every other signal is byte for byte the live run's, without a shadow field.
    for (s, l) in shadow.iter().zip(&live).filter(|(s, _)| s.rule_id != R5) {
        assert_eq!(s.to_json(), l.to_json());
        assert!(!s.to_json().contains("shadow"), "{}", s.to_json());
    }
    assert_eq!(shadow.len(), live.len());
}

#[test]
fn a_shadow_rule_is_stateful_its_dedup_window_holds() {
    let repeat = |engine: &Engine| {
        run_with(
            engine,
            &[
                delete("a@example.com").id("d1").at(0),
                delete("a@example.com").id("d2").at(5),
            ],
        )
    };
    let shadow = repeat(&engine(&format!("[rules.\"{R5}\"]\nshadow = true\n")));
    let live = repeat(&engine(""));
    assert_eq!(event_ids(&live, R5), ["d1"]);
    assert_eq!(
        event_ids(&shadow, R5),
        ["d1"],
        "the window holds in shadow too"
    );
}

/// A sink that, like SNS, does not take shadow signals.
#[derive(Default)]
struct Publisher(std::sync::Mutex<Vec<Signal>>);

impl Sink for Publisher {
    async fn emit(&self, signal: &Signal) -> Result<(), SinkError> {
        self.0.lock().expect("lock").push(signal.clone());
        Ok(())
    }
}

async fn deliver(engine: &Engine, state: &MemoryState, sink: &Publisher) -> Counts {
    let delivery = Delivery {
        engine,
        state,
        sink,
    };
    let mut counts = Counts::default();
    let name: std::sync::Arc<str> = std::sync::Arc::from("test");
    for record in attack() {
        delivery
            .record(&record.0.to_string(), &Position::file(&name), &mut counts)
            .await
            .expect("delivered");
    }
    counts
}

#[tokio::test]
async fn shadow_signals_are_counted_not_published_and_publish_once_the_rule_is_live() {
    let state = MemoryState::new();
    let shadow_engine = engine(&format!("[rules.\"{R5}\"]\nshadow = true\n"));
    let sink = Publisher::default();
    let counts = deliver(&shadow_engine, &state, &sink).await;
    let published: Vec<String> = sink
        .0
        .lock()
        .expect("lock")
        .iter()
        .map(|s| s.rule_id.clone())
        .collect();
    assert!(!published.iter().any(|r| r == R5), "{published:?}");
    assert!(published.iter().any(|r| r == R4), "{published:?}");
    assert_eq!(counts.shadow.get(R5), Some(&1));
    assert_eq!(counts.signals.get(R5), None);
    assert!(
        counts
            .to_string()
            .contains(&format!("1 shadow signal ({R5} 1)")),
        "{counts}"
    );
    // The same events again on the same state (a replay), now with the rule live: its signal
    // is published, once; the shadow run's claim does not stand in for it.
    let live_sink = Publisher::default();
    let counts = deliver(&engine(""), &state, &live_sink).await;
    let published: Vec<String> = live_sink
        .0
        .lock()
        .expect("lock")
        .iter()
        .map(|s| s.rule_id.clone())
        .collect();
    assert_eq!(published, [R5], "{counts}");
    assert!(!live_sink.0.lock().expect("lock")[0].shadow);
}

/// Runs the `sesguard` binary; (exit code, stdout, stderr).
fn sesguard(args: &[&str]) -> (i32, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sesguard"))
        .args(args)
        .env("COLUMNS", "200")
        .output()
        .expect("run sesguard");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn scan_marks_shadow_signals_in_the_table_and_the_json_lines_and_rules_shows_each_mode() {
    let dir = std::env::temp_dir().join(format!("sesguard-modes-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let config = dir.join("modes.toml");
    std::fs::write(
        &config,
        format!("[rules.\"{R5}\"]\nshadow = true\n[rules.\"{R3}\"]\nenabled = false\n"),
    )
    .expect("config");
    let events = dir.join("events.jsonl");
    let lines: String = attack().iter().map(|r| format!("{}\n", r.0)).collect();
    std::fs::write(&events, lines).expect("events");
    let (config, events) = (
        config.to_str().expect("path"),
        events.to_str().expect("path"),
    );

    let (code, out, err) = sesguard(&["scan", "--config", config, "--format", "jsonl", events]);
    assert_eq!(code, 0, "{err}");
    let signals: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    assert!(!signals.iter().any(|s| s["rule_id"] == R3), "{out}");
    for signal in &signals {
        let shadow = signal["rule_id"] == R5;
        assert_eq!(
            signal.get("shadow"),
            shadow.then_some(&json!(true)),
            "{signal}"
        );
    }
    assert!(signals.iter().any(|s| s["rule_id"] == R5), "{out}");
    assert!(err.contains(&format!("1 shadow signal ({R5} 1)")), "{err}");

    let (code, out, err) = sesguard(&["scan", "--config", config, "--format", "table", events]);
    assert_eq!(code, 0, "{err}");
    // The severity cell reads `medium shadow` (wrapped in its column), once: only that row.
    assert!(out.lines().any(|l| l.contains(R5)), "{out}");
    assert_eq!(out.matches("shadow").count(), 1, "{out}");

    let (code, out, _) = sesguard(&["rules", "--config", config, "--format", "json"]);
    assert_eq!(code, 0);
    let rules: serde_json::Value = serde_json::from_str(&out).expect("json");
    let mode = |id: &str| {
        rules
            .as_array()
            .and_then(|a| a.iter().find(|r| r["rule_id"] == id))
            .map(|r| r["mode"].clone())
    };
    assert_eq!(mode(R5), Some(json!("shadow")));
    assert_eq!(mode(R3), Some(json!("disabled")));
    assert_eq!(mode(R4), Some(json!("live")));
    let (_, table, _) = sesguard(&["rules", "--config", config]);
    assert!(table.contains(&format!("{R3}  low  disabled  ")), "{table}");
    let (code, _, err) = sesguard(&["rules", "--config", "/no/such/sesguard.toml"]);
    assert_eq!(code, 2, "{err}");
    std::fs::remove_dir_all(&dir).ok();
}
