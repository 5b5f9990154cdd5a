//! R5 — SES identity deleted (seed 004: the Sigma rule "SES Identity Has Been Deleted",
//! id 20f754db-d025-4a8f-9d74-e0037e999a9a), extended to its SES v2 twin `DeleteEmailIdentity`,
//! which the Sigma rule misses. Any outcome fires. One signal per (account, region, identity)
//! per dedup window.

use super::{Answer, Ask, Context, Decision, Detection, Event, Finding, Op, RuleMeta, SuppressOn};
use super::{Severity, Trigger, shared};
use crate::model::Settings;

pub const RULE: RuleMeta = RuleMeta {
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
    suppress_on: SuppressOn::Event,
    seed: "004: Sigma rule 20f754db-d025-4a8f-9d74-e0037e999a9a (aws_delete_identity), via a threat brief",
    detection: &IdentityDeleted,
};

struct IdentityDeleted;

impl Detection for IdentityDeleted {
    /// The dedup window lives with the identity's pairing state (one step for a delete).
    fn ask(&self, event: &Event, settings: &Settings) -> Option<Ask> {
        let (key, keep) = shared::identity(event, settings);
        Some(Ask {
            key,
            shared: Some(keep),
            op: Op::Window {
                length: settings.dedup,
            },
        })
    }

    fn decide(&self, event: &Event, answer: Answer, _: &Context) -> Decision {
        let opened = answer.opened();
        Decision::fire_or_duplicate(opened, || Finding::of(&RULE, event))
    }
}
