//! `ses-sandbox-exit-burst` — one principal calls `PutAccountDetails` in several regions within
//! minutes: the scripted sandbox exit of an attacker holding a key (the requests of Wiz's May
//! 2025 campaign reached every region within about ten seconds). A team asks once, in the
//! region it sends from.
//!
//! Fires once, on the event whose evaluation first finds `sandbox_exit_regions` distinct
//! regions within one span of `sandbox_exit_window` of event time, whatever order the events
//! arrive in; then no second signal for the same (account, principal) within the dedup window.

use super::span::{self, InSpan};
use super::{Answer, Ask, Context, Decision, Detection, Event, Finding, Op, RuleMeta, SuppressOn};
use super::{Gate, Severity, Trigger};
use crate::model::Settings;
use crate::state::Occurrence;

pub const RULE: RuleMeta = RuleMeta {
    id: "ses-sandbox-exit-burst",
    title: "SES sandbox exit requested in many regions at once",
    severity: Severity::High,
    tactic: "TA0040",
    tactic_name: "impact",
    technique: "T1496",
    technique_name: "resource-hijacking",
    triage: &[
        "The user: `{{@userIdentity.arn}}` called `{{@evt.name}}` in the regions listed in the signal's `details.regions` within minutes, from this IP address: `{{@network.client.ip}}` . People do not do that by hand: it is a script leaving the SES sandbox everywhere at once.",
        "Look at the related events: their request parameters (mail type, website, use case) and user agents tell a script from a console session.",
        "Check what the key did before (SES quota and identity reads, `GetCallerIdentity`) and after (sending enabled, identities verified, IAM users or policies created) in every region, not only the one in this signal.",
        "If the results of the triage indicate that an attacker has taken the action, disable the access key, withdraw the production access requests with AWS Support, and begin your company's incident response process.",
    ],
    triggers: &[Trigger::ses("PutAccountDetails")],
    suppress_on: SuppressOn::Event,
    seed: "sesguard: Wiz's May 2025 SES campaign, Permiso; Elastic's closed PR #6258 was the only public attempt",
    detection: &SandboxExitBurst,
};

/// The most regions kept per principal (AWS has fewer; a forged record cannot grow the state).
const MAX_REGIONS: usize = 64;

struct SandboxExitBurst;

fn key(event: &Event, kind: &str) -> String {
    format!("{kind}|{}|{}", event.account, event.principal.unwrap_or(""))
}

impl Detection for SandboxExitBurst {
    fn applies(&self, event: &Event) -> bool {
        event.counts_as_principal && event.principal.is_some()
    }

    fn ask(&self, event: &Event, settings: &Settings) -> Option<Ask> {
        Some(Ask {
            key: key(event, "burst"),
            shared: None,
            op: Op::Distinct {
                value: event.region.to_owned(),
                // As long as the gate (the span itself is found within the burst window).
                window: settings.sandbox_exit_window.max(settings.dedup),
                max: MAX_REGIONS,
            },
        })
    }

    fn decide(&self, event: &Event, answer: Answer, context: &Context) -> Decision {
        let Answer::Distinct(answer) = answer else {
            return Decision::default();
        };
        let settings = context.settings;
        let now = Occurrence::new(event.time, event.event_id);
        let region = crate::text::capped_to(event.region, crate::state::MAX_VALUE_BYTES);
        let enough = |regions: &[InSpan]| regions.len() >= settings.sandbox_exit_regions;
        let Some(regions) = span::find(
            &answer.values,
            (&region, &now),
            settings.sandbox_exit_window,
            enough,
        ) else {
            return Decision::default();
        };
        let mut finding = Finding::of(&RULE, event);
        // Named by the event alone: a replay finds a different span once more regions came in.
        finding.id_from_related = false;
        finding.related_event_ids = regions
            .iter()
            .filter(|r| r.value != region)
            .map(|r| r.occurrence.event_id.clone())
            .collect();
        let mut names: Vec<&str> = regions.iter().map(|r| r.value).collect();
        names.sort_unstable();
        finding.details().insert("regions".to_owned(), names.into());
        let gate = Gate {
            key: key(event, "burst"),
            length: settings.dedup,
        };
        Decision::once_per(gate, &answer, event, finding)
    }
}
