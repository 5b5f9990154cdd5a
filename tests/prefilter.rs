//! The fast path (records that name no event source a rule reads are skipped unparsed) gives
//! exactly the signals of the plain full-parse path, over a mixed corpus.

mod support;

use serde_json::{Value, json};
use sesguard::scan::scan_text_with;

/// The CloudTrail records of the committed samples (the SES attack story).
fn sample_records() -> Vec<Value> {
    let mut paths: Vec<_> = std::fs::read_dir("events")
        .expect("events/")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    paths.sort();
    paths
        .iter()
        .map(|p| {
            let envelope: Value =
                serde_json::from_str(&std::fs::read_to_string(p).expect("read")).expect("json");
            envelope["detail"].clone()
        })
        .collect()
}

/// A deterministic mix: noise from many services (including look-alike call names from other
/// services), the samples spread through it, and some samples repeated as duplicates.
fn corpus() -> String {
    let samples = sample_records();
    let services = [
        ("s3.amazonaws.com", "GetObject"),
        ("ec2.amazonaws.com", "DescribeInstances"),
        ("sts.amazonaws.com", "AssumeRole"),
        ("iam.amazonaws.com", "ListUsers"),
        ("apigateway.amazonaws.com", "GetAccount"),
        ("cognito-identity.amazonaws.com", "ListIdentities"),
        ("kms.amazonaws.com", "Decrypt"),
    ];
    let mut seed: u64 = 0x5e5_6aad;
    let mut next = || {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (seed >> 33) as usize
    };
    let mut records = Vec::new();
    for i in 0..3_000 {
        let (source, name) = services[next() % services.len()];
        records.push(json!({
            "eventVersion": "1.08",
            "userIdentity": {"type": "IAMUser", "arn": format!("arn:aws:iam::111122223333:user/u{}", next() % 50), "accessKeyId": "AKIANOISE"},
            "eventTime": format!("2026-03-02T09:{:02}:{:02}Z", (i / 60) % 60, i % 60),
            "eventSource": source,
            "eventName": name,
            "awsRegion": "us-east-1",
            "sourceIPAddress": "192.0.2.1",
            "requestParameters": {"serviceCode": "ses", "bucketName": "b"},
            "eventID": format!("noise-{i}"),
            "recipientAccountId": "111122223333"
        }));
        // Every sample at least once (3,000 / 50 = 60 of them, in name order).
        if i % 50 == 0 {
            records.push(samples[(i / 50) % samples.len()].clone());
        }
        if i % 700 == 0 {
            records.push(samples[next() % samples.len()].clone());
        }
    }
    // CloudTrail log files of 250 records, one per line.
    records
        .chunks(250)
        .map(|chunk| format!("{}\n", json!({ "Records": chunk })))
        .collect()
}

#[test]
fn the_prefilter_changes_no_signal() {
    let text = corpus();
    for toml in [
        "",
        "dedup_minutes = 1\nlearning_days = 0\nsequence_window_minutes = 120\n",
    ] {
        let engine = support::engine(toml);
        let (fast, fast_stats) = scan_text_with(&engine, "corpus", text.as_bytes(), false);
        let (full, full_stats) = scan_text_with(&engine, "corpus", text.as_bytes(), true);
        assert!(!full.signals.is_empty());
        assert!(full.problems.is_empty(), "{:?}", full.problems);
        assert_eq!(fast.signals, full.signals);
        assert_eq!(fast_stats, full_stats);
        let rules: std::collections::BTreeSet<&str> =
            full.signals.iter().map(|s| s.rule_id.as_str()).collect();
        assert_eq!(
            rules.len(),
            support::all_rules().len(),
            "the corpus exercises every rule: {rules:?}"
        );
    }
}
