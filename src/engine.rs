//! The engine: one record in, signals out, reading and writing a [`State`]. It never knows
//! whether it runs in the Lambda or the CLI.

pub use crate::config::Settings;
use crate::config::{Config, Suppression};
use crate::event::{Record, RequestParameters, UserIdentity};
use crate::rules::{
    self, Detection, RuleMeta, Severity, discovery_long_term_key as r1,
    enumeration_unseen_user as r2, identity_deleted as r5, identity_state, modification as r3,
    verify_then_delete as r4,
};
use crate::signal::{Signal, Subject, capped};
use crate::state::{Claim, IdentityOutcome, State, StateError};
use crate::time::{DAY, Seconds, parse_event_time};

/// How long a signal claim is kept past its event time: longer than EventBridge retries an
/// event (24 h), so a late duplicate still finds it.
pub const CLAIM_RETENTION: Seconds = 2 * DAY;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The record can never be evaluated (a rule reads it, but a field it needs is missing or
    /// of the wrong type).
    #[error("{0}")]
    Malformed(String),
    #[error(transparent)]
    State(#[from] StateError),
}

/// What evaluating one record gave.
#[derive(Debug, Default)]
pub struct Evaluation {
    /// Signals to emit; after emitting each, call [`Engine::published`].
    pub signals: Vec<Signal>,
    /// Whether some rule read the record.
    pub matched: bool,
    /// Rule matches dropped by a suppression entry.
    pub suppressed: usize,
    /// Rule matches that gave no signal because an equal one was given already (dedup window,
    /// or the same event evaluated before).
    pub deduplicated: usize,
    /// Signals another invocation is publishing right now (a concurrent duplicate delivery):
    /// the caller must fail after emitting the rest, so the event is retried after the lease.
    pub in_flight: usize,
}

/// A rule's result before it becomes a [`Signal`].
#[derive(Debug)]
pub struct Finding {
    pub rule: &'static RuleMeta,
    pub severity: Severity,
    pub subject: Subject,
    pub related_event_ids: Vec<String>,
}

impl Finding {
    pub fn of(rule: &'static RuleMeta, event: &Event) -> Self {
        Finding {
            rule,
            severity: rule.severity,
            subject: event.subject.clone(),
            related_event_ids: Vec::new(),
        }
    }
}

/// A rule's decision on one event.
#[derive(Debug, Default)]
pub struct Decision {
    pub findings: Vec<Finding>,
    pub deduplicated: usize,
}

impl Decision {
    /// One finding, or a duplicate when `fire` is false.
    pub fn fire_or_duplicate(fire: bool, finding: impl FnOnce() -> Finding) -> Self {
        if fire {
            Decision {
                findings: vec![finding()],
                deduplicated: 0,
            }
        } else {
            Decision {
                findings: Vec::new(),
                deduplicated: 1,
            }
        }
    }
}

/// A record a rule reads, with what the rules key on worked out once.
#[derive(Debug)]
pub struct Event<'r> {
    pub time: Seconds,
    pub event_id: &'r str,
    /// `recipientAccountId`, else `userIdentity.accountId`.
    pub account: &'r str,
    pub region: &'r str,
    /// See [`principal`].
    pub principal: Option<&'r str>,
    /// False for AWS services and service-linked roles, which never count for R1/R2.
    pub counts_as_principal: bool,
    pub access_key_id: Option<&'r str>,
    /// The identity the call names, lowercased and reduced from an ARN to its name.
    pub identity: Option<String>,
    pub subject: Subject,
}

impl<'r> Event<'r> {
    pub fn new(
        record: &'r Record<'r>,
        params: &RequestParameters,
        tor: &crate::config::TorList,
    ) -> Result<Self, EngineError> {
        let time_text = non_empty(&record.event_time)
            .ok_or_else(|| EngineError::Malformed("eventTime is missing".to_owned()))?;
        let time = parse_event_time(time_text).map_err(EngineError::Malformed)?;
        let event_id = non_empty(&record.event_id)
            .ok_or_else(|| EngineError::Malformed("eventID is missing".to_owned()))?;
        let identity_field = params
            .identity
            .as_deref()
            .or(params.email_identity.as_deref())
            .or(params.email_address.as_deref())
            .or(params.domain.as_deref())
            .filter(|s| !s.is_empty());
        let user = record.user_identity.as_ref();
        let account = non_empty(&record.recipient_account_id)
            .or_else(|| user.and_then(|u| non_empty(&u.account_id)))
            .unwrap_or("");
        let region = non_empty(&record.aws_region).unwrap_or("");
        let principal = user.and_then(principal);
        let source_ip = non_empty(&record.source_ip_address);
        let subject = Subject {
            event_id: capped(event_id),
            event_name: capped(record.name()),
            event_source: capped(record.source()),
            event_time: capped(time_text),
            account_id: capped(account),
            region: capped(region),
            principal: principal.map(capped),
            user_arn: user.and_then(|u| non_empty(&u.arn)).map(capped),
            user_type: user.and_then(|u| non_empty(&u.kind)).map(capped),
            access_key_id: user.and_then(|u| non_empty(&u.access_key_id)).map(capped),
            source_ip: source_ip.map(capped),
            user_agent: non_empty(&record.user_agent).map(capped),
            identity: identity_field.map(capped),
            error_code: non_empty(&record.error_code).map(capped),
            tor: source_ip.is_some_and(|ip| tor.contains(ip)),
        };
        Ok(Event {
            time,
            event_id,
            account,
            region,
            principal,
            counts_as_principal: user.is_none_or(counts_as_principal),
            access_key_id: user.and_then(|u| non_empty(&u.access_key_id)),
            identity: identity_field.map(identity_key),
            subject,
        })
    }
}

fn non_empty<'a>(field: &'a Option<std::borrow::Cow<'_, str>>) -> Option<&'a str> {
    field.as_deref().filter(|s| !s.is_empty())
}

/// The principal key: the session issuer's ARN for an assumed role (its sessions are one
/// principal), else the user ARN, else the principal id.
pub fn principal<'a>(user: &'a UserIdentity) -> Option<&'a str> {
    if user.kind.as_deref() == Some("AssumedRole") {
        let issuer = user
            .session_context
            .as_ref()
            .and_then(|c| c.session_issuer.as_ref())
            .and_then(|i| non_empty(&i.arn));
        if issuer.is_some() {
            return issuer;
        }
    }
    non_empty(&user.arn).or_else(|| non_empty(&user.principal_id))
}

/// AWS services (`AWSService`, or calls with `invokedBy`) and service-linked roles are not
/// principals for R1/R2: Trusted Advisor and AWS Config read SES all day.
pub fn counts_as_principal(user: &UserIdentity) -> bool {
    if user.kind.as_deref() == Some("AWSService") || non_empty(&user.invoked_by).is_some() {
        return false;
    }
    let issuer = user
        .session_context
        .as_ref()
        .and_then(|c| c.session_issuer.as_ref());
    let arns = [non_empty(&user.arn), issuer.and_then(|i| non_empty(&i.arn))];
    let service_linked_arn = arns.into_iter().flatten().any(|arn| {
        arn.contains(":role/aws-service-role/")
            || role_name(arn).is_some_and(|n| n.starts_with("AWSServiceRoleFor"))
    });
    let service_linked_name = issuer
        .and_then(|i| non_empty(&i.user_name))
        .is_some_and(|n| n.starts_with("AWSServiceRoleFor"));
    !(service_linked_arn || service_linked_name)
}

/// The role name in a role or assumed-role ARN.
fn role_name(arn: &str) -> Option<&str> {
    if let Some((_, rest)) = arn.split_once(":assumed-role/") {
        return rest.split('/').next();
    }
    arn.split_once(":role/")
        .and_then(|(_, rest)| rest.rsplit('/').next())
}

/// Identities compare case-insensitively, and a delete may name one by its ARN
/// (`arn:aws:ses:<region>:<account>:identity/<name>`).
pub fn identity_key(identity: &str) -> String {
    let name = match identity.split_once(":identity/") {
        Some((prefix, name)) if prefix.starts_with("arn:") => name,
        _ => identity,
    };
    name.to_lowercase()
}

/// The configured engine.
#[derive(Debug, Default)]
pub struct Engine {
    config: Config,
}

impl Engine {
    pub fn new(config: Config) -> Self {
        Engine { config }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Evaluates one record. A record no rule reads costs no state call.
    pub async fn evaluate<S: State>(
        &self,
        record: &Record<'_>,
        state: &S,
    ) -> Result<Evaluation, EngineError> {
        let mut out = Evaluation::default();
        if !rules::reads(record) {
            return Ok(out);
        }
        let params = record
            .request_parameters()
            .map_err(|err| EngineError::Malformed(crate::input::describe(&err)))?;
        let service_code = params.service_code.as_deref();
        let triggered: Vec<&RuleMeta> = rules::ALL
            .into_iter()
            .filter(|rule| rule.triggered_by(record, service_code))
            .collect();
        if triggered.is_empty() {
            return Ok(out);
        }
        let event = Event::new(record, &params, &self.config.tor)?;
        out.matched = true;
        let first_event = state.first_event_time(event.time).await?;
        let settings = &self.config.settings;
        let mut taking = Vec::with_capacity(triggered.len());
        for rule in triggered {
            let applies = match rule.detection {
                Detection::DiscoveryLongTermKey => r1::applies(&event),
                Detection::EnumerationUnseenUser => r2::applies(&event),
                Detection::VerifyThenDelete => r4::applies(&event),
                Detection::Modification | Detection::IdentityDeleted => true,
            };
            if !applies {
                continue;
            }
            // Suppressed matches leave no trace in state, so they cannot hide a later true
            // signal (R4 pairs are judged on the delete the signal describes, below).
            if rule.detection != Detection::VerifyThenDelete
                && self.suppressed(rule.id, &event.subject, event.time)
            {
                out.suppressed += 1;
                continue;
            }
            taking.push(rule);
        }
        // R4 and R5 share one step on the identity's state (a delete takes both).
        let halves = identity_state::Halves {
            pair: taking
                .iter()
                .any(|r| r.detection == Detection::VerifyThenDelete),
            window: taking
                .iter()
                .any(|r| r.detection == Detection::IdentityDeleted),
        };
        let mut identity = None;
        for rule in taking {
            let shares_identity = matches!(
                rule.detection,
                Detection::VerifyThenDelete | Detection::IdentityDeleted
            );
            if shares_identity && identity.is_none() {
                identity = Some(identity_state::step(&event, state, settings, halves).await?);
            }
            let decision = match rule.detection {
                Detection::DiscoveryLongTermKey => r1::decide(&event, state, settings).await?,
                Detection::EnumerationUnseenUser => {
                    r2::decide(&event, state, settings, first_event).await?
                }
                Detection::Modification => r3::decide(&event, state, settings).await?,
                Detection::VerifyThenDelete => r4::decide(
                    &event,
                    identity
                        .as_mut()
                        .map(|o: &mut IdentityOutcome| std::mem::take(&mut o.paired))
                        .unwrap_or_default(),
                ),
                Detection::IdentityDeleted => {
                    r5::decide(&event, identity.as_ref().is_some_and(|o| o.opened))
                }
            };
            out.deduplicated += decision.deduplicated;
            for finding in decision.findings {
                let when = parse_event_time(&finding.subject.event_time).unwrap_or(event.time);
                if self.suppressed(finding.rule.id, &finding.subject, when) {
                    out.suppressed += 1;
                    continue;
                }
                let signal = Signal::new(
                    finding.rule,
                    finding.severity,
                    finding.subject,
                    finding.related_event_ids,
                );
                let expires = event.time.saturating_add(CLAIM_RETENTION);
                match state
                    .claim_signal(&signal.signal_id, event.time, expires)
                    .await?
                {
                    Claim::Fresh | Claim::Unfinished => out.signals.push(signal),
                    Claim::Done => out.deduplicated += 1,
                    Claim::InFlight => out.in_flight += 1,
                }
            }
        }
        Ok(out)
    }

    /// Records that `signal` was emitted, so evaluating its event again gives nothing.
    pub async fn published<S: State>(&self, signal: &Signal, state: &S) -> Result<(), StateError> {
        state.mark_published(&signal.signal_id).await
    }

    fn suppressed(&self, rule_id: &str, subject: &Subject, now: Seconds) -> bool {
        self.config
            .suppressions
            .iter()
            .any(|s: &Suppression| s.matches(rule_id, subject, now))
    }
}
