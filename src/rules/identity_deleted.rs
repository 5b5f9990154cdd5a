//! R5 — SES identity deleted (seed 004: the Sigma rule "SES Identity Has Been Deleted",
//! id 20f754db-d025-4a8f-9d74-e0037e999a9a), extended to its SES v2 twin `DeleteEmailIdentity`,
//! which the Sigma rule misses. Any outcome fires. One signal per (account, region, identity)
//! per dedup window.

use super::{Detection, RuleMeta, Severity, Trigger};
use crate::engine::{Decision, Event, Finding, Settings};
use crate::state::{State, StateError};

pub const RULE: RuleMeta = RuleMeta {
    detection: Detection::IdentityDeleted,
    id: "ses-identity-deleted",
    title: "SES identity has been deleted",
    severity: Severity::Medium,
    tactic: "TA0005",
    tactic_name: "stealth",
    technique: "T1070",
    technique_name: "indicator-removal",
    triage: &[
        "Determine if the API call: `{{@evt.name}}` should have been made by the user: `{{@userIdentity.arn}}` from this IP address: `{{@network.client.ip}}` .",
        "Correlate it with other suspicious activity of the same user and IP, such as unusual IAM role usage, unauthorized access attempts, identity verifications and e-mail sending shortly before the deletion.",
        "If the deletion is legitimate (an IaC stack or a clean-up job), consider including the user in a suppression list (a `[[suppressions]]` entry in the sesguard config).",
        "Make sure CloudTrail logs every region of the account, and that no other CloudTrail logs were deleted or modified.",
        "If the results of the triage indicate that an attacker has taken the action, initiate your company's incident response process and an investigation; enforce MFA and least-privilege IAM policies for the principals involved.",
    ],
    triggers: &[
        Trigger::ses("DeleteIdentity"),
        Trigger::ses("DeleteEmailIdentity"),
    ],
    seed: "004: Sigma rule 20f754db-d025-4a8f-9d74-e0037e999a9a (aws_delete_identity), via a threat brief",
};

pub async fn decide<S: State>(
    event: &Event<'_>,
    state: &S,
    settings: &Settings,
) -> Result<Decision, StateError> {
    let key = format!(
        "r5|{}|{}|{}",
        event.account,
        event.region,
        event.identity.as_deref().unwrap_or("")
    );
    let opened = state
        .open_window(&key, event.event_id, event.time, settings.dedup)
        .await?;
    Ok(Decision::fire_or_duplicate(opened, || {
        Finding::of(&RULE, event)
    }))
}
