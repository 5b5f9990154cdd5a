//! The Lambda's metrics as CloudWatch Embedded Metric Format log lines.

use crate::deliver::Counts;

/// CloudWatch Embedded Metric Format lines for one invocation (namespace `sesguard`).
pub fn emf_lines(counts: &Counts, timestamp_ms: u128, dynamodb_calls: u64) -> Vec<String> {
    let metric = |name: &str| serde_json::json!({"Name": name, "Unit": "Count"});
    let totals = [
        ("EventsEvaluated", counts.matched),
        ("Records", counts.records),
        ("SignalsPublished", counts.signal_count()),
        ("ShadowSignals", counts.shadow.values().sum()),
        ("Suppressed", counts.suppressed),
        ("Deduplicated", counts.deduplicated),
        ("Malformed", counts.malformed),
        ("StateErrors", counts.state_errors),
        ("PublishErrors", counts.publish_errors),
        ("DynamoDBCalls", dynamodb_calls),
    ];
    let mut line = serde_json::json!({
        "_aws": {
            "Timestamp": timestamp_ms as u64,
            "CloudWatchMetrics": [{
                "Namespace": "sesguard",
                "Dimensions": [[]],
                "Metrics": totals.iter().map(|(name, _)| metric(name)).collect::<Vec<_>>(),
            }],
        },
    });
    for (name, value) in totals {
        line[name] = serde_json::json!(value);
    }
    let mut lines = vec![line.to_string()];
    // One line per rule and metric: published signals, and shadow signals (logged, not
    // published) under their own name so a shadow rule's volume is seen before it goes live.
    let per_rule = [
        ("SignalsPublished", &counts.signals),
        ("ShadowSignals", &counts.shadow),
    ];
    for (name, tally) in per_rule {
        for (rule, count) in tally {
            let mut line = serde_json::json!({
                "_aws": {
                    "Timestamp": timestamp_ms as u64,
                    "CloudWatchMetrics": [{
                        "Namespace": "sesguard",
                        "Dimensions": [["Rule"]],
                        "Metrics": [metric(name)],
                    }],
                },
                "Rule": rule,
            });
            line[name] = serde_json::json!(count);
            lines.push(line.to_string());
        }
    }
    lines
}

/// The EMF line of the configuration checks of one invocation (`None` when S3 was not asked):
/// `ConfigRejected` (a new file or Tor list failed validation; the last good one stays),
/// `ConfigUnreadable` (a read failed) and `ConfigApplied`. template.yaml alarms on the first two.
pub fn config_emf_line(events: &super::ConfigEvents, timestamp_ms: u128) -> Option<String> {
    if !events.checked {
        return None;
    }
    let totals = [
        ("ConfigRejected", events.rejected),
        ("ConfigUnreadable", events.unreadable),
        ("ConfigApplied", events.applied),
    ];
    Some(metric_line(&totals, timestamp_ms))
}

/// The EMF line of one heartbeat run: `HeartbeatRuns` (1: template.yaml alarms when runs stop),
/// `HeartbeatCanaryFailed` (regions whose `GetSendQuota` call failed) and `PipelineSignals`
/// (blind and restored signals published).
pub fn heartbeat_emf_line(canary_failed: u64, pipeline_signals: u64, timestamp_ms: u128) -> String {
    metric_line(
        &[
            ("HeartbeatRuns", 1),
            ("HeartbeatCanaryFailed", canary_failed),
            ("PipelineSignals", pipeline_signals),
        ],
        timestamp_ms,
    )
}

/// One EMF line of counts without dimensions (namespace `sesguard`).
pub(super) fn metric_line(totals: &[(&str, u64)], timestamp_ms: u128) -> String {
    let mut line = serde_json::json!({
        "_aws": {
            "Timestamp": timestamp_ms as u64,
            "CloudWatchMetrics": [{
                "Namespace": "sesguard",
                "Dimensions": [[]],
                "Metrics": totals
                    .iter()
                    .map(|(name, _)| serde_json::json!({"Name": name, "Unit": "Count"}))
                    .collect::<Vec<_>>(),
            }],
        },
    });
    for (name, value) in totals {
        line[*name] = serde_json::json!(value);
    }
    line.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_heartbeat_run_counts_itself_its_failed_calls_and_its_signals() {
        let line: serde_json::Value =
            serde_json::from_str(&heartbeat_emf_line(2, 1, 7)).expect("json");
        assert_eq!(line["HeartbeatRuns"], 1);
        assert_eq!(line["HeartbeatCanaryFailed"], 2);
        assert_eq!(line["PipelineSignals"], 1);
        assert_eq!(
            line["_aws"]["CloudWatchMetrics"][0]["Namespace"],
            "sesguard"
        );
        assert_eq!(line["_aws"]["Timestamp"], 7);
    }

    #[test]
    fn the_config_line_is_written_only_when_s3_was_asked() {
        let mut events = super::super::ConfigEvents::default();
        assert_eq!(config_emf_line(&events, 1), None);
        events.checked = true;
        events.rejected = 1;
        let line: serde_json::Value =
            serde_json::from_str(&config_emf_line(&events, 1).expect("a line")).expect("json");
        assert_eq!(line["ConfigRejected"], 1);
        assert_eq!(line["ConfigUnreadable"], 0);
        let names: Vec<&str> = line["_aws"]["CloudWatchMetrics"][0]["Metrics"]
            .as_array()
            .map(|m| m.iter().filter_map(|m| m["Name"].as_str()).collect())
            .unwrap_or_default();
        assert_eq!(
            names,
            ["ConfigRejected", "ConfigUnreadable", "ConfigApplied"]
        );
    }

    #[test]
    fn emf_lines_carry_every_metric_and_one_line_per_rule() {
        let counts = Counts {
            records: 1,
            matched: 1,
            signals: std::collections::BTreeMap::from([("ses-modification", 2)]),
            suppressed: 3,
            deduplicated: 4,
            malformed: 5,
            state_errors: 6,
            publish_errors: 7,
            ..Counts::default()
        };
        let lines = emf_lines(&counts, 1_700_000_000_000, 9);
        assert_eq!(lines.len(), 2);
        let totals: serde_json::Value = serde_json::from_str(&lines[0]).expect("json");
        let declared: Vec<&str> = totals["_aws"]["CloudWatchMetrics"][0]["Metrics"]
            .as_array()
            .map(|m| m.iter().filter_map(|m| m["Name"].as_str()).collect())
            .unwrap_or_default();
        for (name, value) in [
            ("EventsEvaluated", 1),
            ("SignalsPublished", 2),
            ("Suppressed", 3),
            ("Deduplicated", 4),
            ("Malformed", 5),
            ("StateErrors", 6),
            ("DynamoDBCalls", 9),
        ] {
            assert!(declared.contains(&name), "{name} declared");
            assert_eq!(totals[name], value, "{name}");
        }
        assert_eq!(totals["_aws"]["Timestamp"], 1_700_000_000_000u64);
        let by_rule: serde_json::Value = serde_json::from_str(&lines[1]).expect("json");
        assert_eq!(by_rule["Rule"], "ses-modification");
        assert_eq!(by_rule["SignalsPublished"], 2);
        assert_eq!(
            by_rule["_aws"]["CloudWatchMetrics"][0]["Dimensions"][0][0],
            "Rule"
        );
    }

    #[test]
    fn shadow_signals_are_counted_apart_from_published_ones() {
        let counts = Counts {
            signals: std::collections::BTreeMap::from([("ses-modification", 1)]),
            shadow: std::collections::BTreeMap::from([("ses-identity-deleted", 3)]),
            ..Counts::default()
        };
        let lines = emf_lines(&counts, 0, 0);
        assert_eq!(lines.len(), 3, "{lines:?}");
        let totals: serde_json::Value = serde_json::from_str(&lines[0]).expect("json");
        assert_eq!(totals["SignalsPublished"], 1);
        assert_eq!(totals["ShadowSignals"], 3);
        let shadow: serde_json::Value = serde_json::from_str(&lines[2]).expect("json");
        assert_eq!(shadow["Rule"], "ses-identity-deleted");
        assert_eq!(shadow["ShadowSignals"], 3);
        assert!(shadow.get("SignalsPublished").is_none(), "{shadow}");
        assert_eq!(
            shadow["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Name"],
            "ShadowSignals"
        );
    }
}
