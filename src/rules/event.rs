//! The event as rules read it: a record a rule reads, with what the rules key on worked out
//! once (event time, account, principal, the identity the call names).

use std::borrow::Cow;

use crate::model::{Seconds, Subject};
use crate::record::{Params, Record, RecordError, UserIdentity};
use crate::text::{Arn, capped};
use crate::time::parse_event_time;

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
    /// False for AWS services and service-linked roles, which never count as principals.
    pub counts_as_principal: bool,
    pub access_key_id: Option<&'r str>,
    /// The identity the call names, lowercased and reduced from an ARN to its name.
    pub identity: Option<String>,
    pub params: Params<'r>,
    pub subject: Subject,
}

/// The request parameters that name an SES identity, in the order they are looked for.
const IDENTITY_PARAMS: [&str; 4] = ["identity", "emailIdentity", "emailAddress", "domain"];

impl<'r> Event<'r> {
    /// `tor` says whether the source IP is a Tor exit.
    pub fn new(
        record: &'r Record<'r>,
        params: Params<'r>,
        tor: impl FnOnce(&str) -> bool,
    ) -> Result<Self, RecordError> {
        let time_text = non_empty(&record.event_time).ok_or(RecordError::Missing("eventTime"))?;
        let time = parse_event_time(time_text).map_err(RecordError::EventTime)?;
        let event_id = non_empty(&record.event_id).ok_or(RecordError::Missing("eventID"))?;
        let mut identity_field: Option<Cow<'r, str>> = None;
        for name in IDENTITY_PARAMS {
            if let Some(value) = params.str(name)? {
                identity_field = Some(value);
                break;
            }
        }
        let identity_field = identity_field.filter(|s| !s.is_empty());
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
            user_agent: record
                .user_agent
                .as_ref()
                .map(|ua| ua.text.as_ref())
                .filter(|ua| !ua.is_empty())
                .map(capped),
            identity: identity_field.as_deref().map(capped),
            error_code: non_empty(&record.error_code).map(capped),
            tor: source_ip.is_some_and(tor),
            text_replaced: record.user_agent.as_ref().is_some_and(|ua| ua.replaced),
        };
        Ok(Event {
            time,
            event_id,
            account,
            region,
            principal,
            counts_as_principal: user.is_none_or(counts_as_principal),
            access_key_id: user.and_then(|u| non_empty(&u.access_key_id)),
            identity: identity_field.as_deref().map(identity_key),
            params,
            subject,
        })
    }
}

/// A call and its request parameters: what a rule can test before the event is built
/// ([`super::Detection::considers`]).
#[derive(Debug, Clone, Copy)]
pub struct Call<'a> {
    pub name: &'a str,
    pub params: &'a Params<'a>,
}

impl<'r> Event<'r> {
    pub fn call(&self) -> Call<'_> {
        Call {
            name: &self.subject.event_name,
            params: &self.params,
        }
    }
}

fn non_empty<'a>(field: &'a Option<Cow<'_, str>>) -> Option<&'a str> {
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
/// principals: Trusted Advisor and AWS Config read SES all day.
pub fn counts_as_principal(user: &UserIdentity) -> bool {
    if user.kind.as_deref() == Some("AWSService") || non_empty(&user.invoked_by).is_some() {
        return false;
    }
    let issuer = user
        .session_context
        .as_ref()
        .and_then(|c| c.session_issuer.as_ref());
    let arns = [non_empty(&user.arn), issuer.and_then(|i| non_empty(&i.arn))];
    let service_linked_arn = arns
        .into_iter()
        .flatten()
        .any(|arn| role_arn(arn).is_some_and(|role| role.is_service_linked()));
    let service_linked_name = issuer
        .and_then(|i| non_empty(&i.user_name))
        .is_some_and(|n| n.starts_with("AWSServiceRoleFor"));
    !(service_linked_arn || service_linked_name)
}

/// A role named by an ARN, parsed structurally (an attacker's user name or path may hold any
/// text, `:role/aws-service-role/` included).
#[derive(Debug, PartialEq, Eq)]
struct RoleArn<'a> {
    /// The role's path without its leading `/` (`aws-service-role/ses.amazonaws.com/`); empty
    /// for an assumed role, whose ARN has none.
    path: &'a str,
    name: &'a str,
}

impl RoleArn<'_> {
    fn is_service_linked(&self) -> bool {
        self.path.starts_with("aws-service-role/") || self.name.starts_with("AWSServiceRoleFor")
    }
}

/// `arn:<partition>:iam::<account>:role/<path><name>` or
/// `arn:<partition>:sts::<account>:assumed-role/<name>/<session>`; anything else is not a role.
fn role_arn(arn: &str) -> Option<RoleArn<'_>> {
    let Arn {
        service,
        account,
        resource,
        ..
    } = Arn::parse(arn)?;
    if account.is_empty() {
        return None;
    }
    match service {
        "iam" => {
            let rest = resource.strip_prefix("role/")?;
            let (path, name) = match rest.rfind('/') {
                Some(at) => (&rest[..=at], &rest[at + 1..]),
                None => ("", rest),
            };
            Some(RoleArn { path, name })
        }
        "sts" => {
            let name = resource.strip_prefix("assumed-role/")?.split('/').next()?;
            Some(RoleArn { path: "", name })
        }
        _ => None,
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_arns_are_parsed_structurally() {
        let role = |arn| role_arn(arn);
        assert_eq!(
            role(
                "arn:aws:iam::111122223333:role/aws-service-role/ses.amazonaws.com/AWSServiceRoleForX"
            ),
            Some(RoleArn {
                path: "aws-service-role/ses.amazonaws.com/",
                name: "AWSServiceRoleForX"
            })
        );
        assert_eq!(
            role("arn:aws-us-gov:sts::111122223333:assumed-role/AWSServiceRoleForConfig/s"),
            Some(RoleArn {
                path: "",
                name: "AWSServiceRoleForConfig"
            })
        );
        assert_eq!(
            role("arn:aws:iam::111122223333:role/ops"),
            Some(RoleArn {
                path: "",
                name: "ops"
            })
        );
        for not_a_role in [
            "arn:aws:iam::111122223333:user/x:role/aws-service-role/backdoor",
            "arn:aws:iam::111122223333:user/AWSServiceRoleForX",
            "arn:aws:s3:::role/aws-service-role/x",
            "arn:aws:iam:::role/aws-service-role/x",
            "role/aws-service-role/x",
        ] {
            assert!(
                role(not_a_role).is_none_or(|r| !r.is_service_linked()),
                "{not_a_role}"
            );
        }
    }
}
