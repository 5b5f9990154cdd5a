//! The pipeline heartbeat: is CloudTrail → EventBridge → the function still delivering?
//!
//! Every few minutes the function calls `ses:GetSendQuota` with its own role in each watched
//! region, its SDK client's user agent carrying [`MARKER`]. CloudTrail records the call and
//! EventBridge brings it back like any event. The function recognises its own canary
//! ([`Canary`]: its role as the principal *and* the marker in the user agent; a caller can write
//! any user agent, but cannot be the function's role) before any rule runs, so the canary gives
//! no first sighting, no chain stage, no signal: it only records, per region, when the canary
//! was made ([`HeartbeatStore::canary_seen`]).
//!
//! Each heartbeat run ([`run`]) then compares each region's last canary with the wall clock:
//! older than the allowed delay, and the region is blind: one [`BLIND`] signal per outage
//! (overlapping runs agree on the outage's start, and the signal's id is made from it, so its
//! claim lets one run publish it); seen again, one [`RESTORED`] signal. Unlike the rules, which
//! reason in event time, the heartbeat reasons in wall-clock time: the question is whether
//! events arrive now.
//!
//! These two signals have the envelope of every signal (SNS attributes, subject, JSON), but are
//! not rules: no CloudTrail call triggers them, and they are not in the rule registry.

use crate::deliver::{Sink, SinkError};
use crate::model::{MINUTE, Seconds, Severity, Subject};
use crate::record::Record;
use crate::signal::{Signal, signal_id};
use crate::state::{Claim, State, StateError};
pub use crate::state::{HeartbeatStore, RegionView};

/// The signal of a region whose canary is overdue.
pub const BLIND: &str = "sesguard-pipeline-blind";
/// The signal of a region whose canary is seen again after a [`BLIND`] one.
pub const RESTORED: &str = "sesguard-pipeline-restored";
/// What the heartbeat's SDK client adds to its user agent.
pub const MARKER: &str = "sesguard-heartbeat";
/// The call the heartbeat makes (an SES read that needs no resource and changes nothing).
pub const CALL: &str = "GetSendQuota";
const SES: &str = "ses.amazonaws.com";
/// What the schedule invokes the function with to run the heartbeat (template.yaml).
pub const REQUEST: &str = r#"{"sesguard": "heartbeat"}"#;

/// Whether an invocation's `payload` is the heartbeat's [`REQUEST`]: an object with the one
/// member `"sesguard": "heartbeat"` (no CloudTrail event, EventBridge envelope or SQS batch has
/// that shape).
pub fn is_request(payload: &str) -> bool {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Request<'a> {
        #[serde(borrow)]
        sesguard: &'a str,
    }
    payload.len() <= 256
        && serde_json::from_str::<Request<'_>>(payload).is_ok_and(|r| r.sesguard == "heartbeat")
}

/// The two pipeline signals, for `sesguard rules` and the docs: (id, severity, title).
pub const SIGNALS: [(&str, Severity, &str); 2] = [
    (
        BLIND,
        Severity::High,
        "sesguard sees no CloudTrail events from a region (its heartbeat canary is overdue)",
    ),
    (
        RESTORED,
        Severity::Info,
        "sesguard sees CloudTrail events from a region again",
    ),
];

/// The likely causes of a blind region, in the order to check them.
const BLIND_TRIAGE: &[&str] = &[
    "Check that the CloudTrail trail is logging (`aws cloudtrail get-trail-status`): a stopped or deleted trail, or one whose event selectors drop management read events, blinds every rule; an attacker may have done it (look for StopLogging, DeleteTrail, PutEventSelectors).",
    "Check the EventBridge rules (state ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS) and, with the organisation forwarders, the forwarder stack in this region and its dead-letter queue.",
    "Check the function: its Errors and Throttles alarms, its failure queue and the rule dead-letter queue (events may wait there: redrive them once fixed).",
    "Check that the heartbeat itself runs: the schedule rule is enabled, and the function's role may call ses:GetSendQuota in this region (an SCP denying the region blinds the heartbeat, not the pipeline).",
];
const RESTORED_TRIAGE: &[&str] = &[
    "Events from this region arrive again. Events of the outage may have been delayed, not lost: look at the failure queue and the rule dead-letter queue, and redrive them.",
    "Scan CloudTrail's own log files for the outage (`sesguard scan s3://<trail bucket>/… --since <outage start>`): what EventBridge never delivered is still in the trail.",
];

/// Recognises the function's own canary: its role as principal and [`MARKER`] in the user agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Canary {
    role_arn: String,
}

impl Canary {
    /// The canary of the role `role_arn` (`arn:<partition>:iam::<account>:role/<path/name>`).
    pub fn new(role_arn: impl Into<String>) -> Self {
        Canary {
            role_arn: role_arn.into(),
        }
    }

    pub fn role_arn(&self) -> &str {
        &self.role_arn
    }

    /// Whether `json` may hold a canary, without parsing it (the hot path's test).
    pub fn may_be(json: &str) -> bool {
        json.contains(MARKER)
    }

    /// The region and time (the canary call's `eventTime`) if `record` is this function's
    /// canary: `GetSendQuota` on SES by a session of the function's role, with the marker in
    /// its user agent. Both must hold: the user agent alone is the caller's to choose.
    pub fn seen_in(&self, record: &Record<'_>) -> Option<(String, Seconds)> {
        if record.source() != SES || record.name() != CALL {
            return None;
        }
        let agent = record.user_agent.as_ref()?;
        if !agent.text.contains(MARKER) {
            return None;
        }
        let identity = record.user_identity.as_ref()?;
        let issuer = identity.session_context.as_ref()?.session_issuer.as_ref()?;
        if identity.kind.as_deref() != Some("AssumedRole")
            || issuer.arn.as_deref() != Some(self.role_arn.as_str())
        {
            return None;
        }
        let region = record.aws_region.as_deref()?;
        let time = crate::time::parse_event_time(record.event_time.as_deref()?).ok()?;
        Some((region.to_owned(), time))
    }
}

/// A heartbeat run's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heartbeat {
    pub regions: Vec<String>,
    /// A canary older than this (wall clock) makes its region blind.
    pub max_delay: Seconds,
    /// The account the function runs in and its role (the signals' account and principal).
    pub account_id: String,
    pub role_arn: String,
}

impl Default for Heartbeat {
    fn default() -> Self {
        Heartbeat {
            regions: Vec::new(),
            max_delay: 30 * MINUTE,
            account_id: String::new(),
            role_arn: String::new(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum HeartbeatError {
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Publish(#[from] SinkError),
}

/// Checks every region at wall-clock `now`: publishes to `sink` the blind and restored signals
/// due (each once, claimed in `state`), and returns them. A failure stops the run; the next run
/// finds the same outage and publishes what was not published.
pub async fn run<S: State + HeartbeatStore, K: Sink>(
    heartbeat: &Heartbeat,
    state: &S,
    sink: &K,
    now: Seconds,
) -> Result<Vec<Signal>, HeartbeatError> {
    let mut published = Vec::new();
    for region in &heartbeat.regions {
        let view = state.check_region(region, now).await?;
        let fresh = view
            .last_seen
            .is_some_and(|seen| now.saturating_sub(seen) <= heartbeat.max_delay);
        let due = match (fresh, view.outage_since) {
            (true, None) => None,
            (true, Some(since)) => Some((RESTORED, since)),
            (false, open) => {
                let reference = view.last_seen.unwrap_or(view.first_checked);
                if open.is_none() && now.saturating_sub(reference) <= heartbeat.max_delay {
                    None
                } else {
                    let since = match open {
                        Some(since) => since,
                        None => state.open_outage(region, reference).await?,
                    };
                    Some((BLIND, since))
                }
            }
        };
        let Some((rule_id, since)) = due else {
            continue;
        };
        let signal = pipeline_signal(heartbeat, rule_id, region, since, &view, now);
        let claim_until = now.saturating_add(crate::engine::CLAIM_RETENTION);
        // The same outage gives the same id in every run: the claim lets one run publish it;
        // a run that finds it published or in flight leaves it.
        match state
            .claim_signal(&signal.signal_id, now, claim_until)
            .await?
        {
            Claim::Fresh | Claim::Unfinished => {
                sink.emit(&signal).await?;
                if let Err(err) = state.mark_published(&signal.signal_id).await {
                    tracing::warn!(signal_id = %signal.signal_id, error = %err, "pipeline signal published but not marked");
                }
                tracing::info!(
                    signal_id = %signal.signal_id,
                    rule_id = %signal.rule_id,
                    region = %region,
                    "pipeline signal published"
                );
                published.push(signal);
            }
            Claim::Done | Claim::InFlight => {}
        }
        if rule_id == RESTORED {
            state.close_outage(region, since).await?;
        }
    }
    Ok(published)
}

/// A blind or restored signal for `region`'s outage that started at `since`.
fn pipeline_signal(
    heartbeat: &Heartbeat,
    rule_id: &'static str,
    region: &str,
    since: Seconds,
    view: &RegionView,
    now: Seconds,
) -> Signal {
    let (severity, title, triage) = if rule_id == BLIND {
        (Severity::High, SIGNALS[0].2, BLIND_TRIAGE)
    } else {
        (Severity::Info, SIGNALS[1].2, RESTORED_TRIAGE)
    };
    let subject = Subject {
        // One id per region and outage: what the signal id is made from.
        event_id: format!("heartbeat|{region}|{since}"),
        event_name: CALL.to_owned(),
        event_source: SES.to_owned(),
        event_time: crate::time::format(now),
        account_id: heartbeat.account_id.clone(),
        region: region.to_owned(),
        principal: Some(heartbeat.role_arn.clone()),
        ..Subject::default()
    };
    let mut details = serde_json::Map::new();
    let time = |t: Option<Seconds>| {
        t.map_or(serde_json::Value::Null, |t| {
            serde_json::Value::from(crate::time::format(t))
        })
    };
    details.insert("last_seen".to_owned(), time(view.last_seen));
    details.insert("outage_since".to_owned(), time(Some(since)));
    details.insert(
        "max_delay_minutes".to_owned(),
        serde_json::Value::from(heartbeat.max_delay / MINUTE),
    );
    Signal {
        signal_id: signal_id(rule_id, &subject, &[]),
        rule_id: rule_id.to_owned(),
        title: title.to_owned(),
        severity,
        // A blind pipeline is what an attacker stopping the trail achieves.
        tactic: "TA0112".to_owned(),
        tactic_name: "defense-impairment".to_owned(),
        technique: "T1562.008".to_owned(),
        technique_name: "disable-or-modify-cloud-logs".to_owned(),
        subject,
        related_event_ids: Vec::new(),
        details: Some(details),
        triage: triage.iter().map(|s| (*s).to_owned()).collect(),
        shadow: false,
    }
}
