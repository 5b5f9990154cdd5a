//! What processing out of order changes (a backfill through the function fleet, late
//! deliveries): the sample attack's records evaluated in event-time order and in reverse give
//! the same signals per rule, account and principal; only which event a signal names may
//! differ, for rules that fire once per window or sighting (the first event to arrive is named).

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use assert_cmd::Command;
use serde_json::Value;
use tempfile::TempDir;

fn records_in_time_order() -> Vec<Value> {
    let events = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/events"));
    let mut records: Vec<Value> = fs::read_dir(events)
        .expect("events/")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .map(|p| {
            let event: Value =
                serde_json::from_str(&fs::read_to_string(p).expect("read")).expect("JSON");
            event["detail"].clone()
        })
        .collect();
    records.sort_by(|a, b| {
        (a["eventTime"].as_str(), a["eventID"].as_str())
            .cmp(&(b["eventTime"].as_str(), b["eventID"].as_str()))
    });
    records
}

fn scan(dir: &TempDir, name: &str, records: &[Value]) -> Vec<Value> {
    let path = dir.path().join(name);
    let lines: Vec<String> = records.iter().map(Value::to_string).collect();
    fs::write(&path, lines.join("\n")).expect("write");
    let output = Command::new(env!("CARGO_BIN_EXE_sesguard"))
        .args(["scan", "--format", "jsonl"])
        .arg(&path)
        .output()
        .expect("runs");
    assert_eq!(output.status.code(), Some(0));
    String::from_utf8(output.stdout)
        .expect("UTF-8")
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON"))
        .collect()
}

/// Signals per (rule, account, principal).
fn tally(signals: &[Value]) -> BTreeMap<(String, String, String), usize> {
    let mut out = BTreeMap::new();
    for s in signals {
        let key = (
            s["rule_id"].as_str().unwrap_or("").to_owned(),
            s["account_id"].as_str().unwrap_or("").to_owned(),
            s["principal"].as_str().unwrap_or("").to_owned(),
        );
        *out.entry(key).or_insert(0) += 1;
    }
    out
}

#[test]
fn any_order_gives_the_same_signals_only_the_named_event_may_differ() {
    let dir = TempDir::new().expect("temp dir");
    let mut records = records_in_time_order();
    let in_order = scan(&dir, "in-order.jsonl", &records);
    records.reverse();
    let reversed = scan(&dir, "reversed.jsonl", &records);
    assert!(in_order.len() > 20);
    assert_eq!(tally(&in_order), tally(&reversed));
    // Rules that decide per pair or per event name the same events in any order.
    let events = |signals: &[Value], rule: &str| -> Vec<String> {
        let mut ids: Vec<String> = signals
            .iter()
            .filter(|s| s["rule_id"] == rule)
            .map(|s| s["event_id"].as_str().unwrap_or("").to_owned())
            .collect();
        ids.sort();
        ids
    };
    for rule in [
        "ses-verify-then-delete",
        "ses-identity-deleted",
        "ses-modification",
    ] {
        assert_eq!(events(&in_order, rule), events(&reversed, rule), "{rule}");
    }
    // A first sighting names the first event to arrive: the earliest in order, the latest in
    // reverse.
    let first = |signals: &[Value]| -> String {
        signals
            .iter()
            .find(|s| s["rule_id"] == "ses-discovery-long-term-key")
            .and_then(|s| s["event_time"].as_str())
            .unwrap_or("")
            .to_owned()
    };
    assert!(first(&in_order) < first(&reversed));
}
