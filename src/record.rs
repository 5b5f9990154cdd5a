//! The CloudTrail record and the EventBridge envelope, modelled with every field optional.
//!
//! Real records vary by `eventVersion` (1.02 … 1.11), `requestParameters` is often `null`,
//! `sessionIssuer` may be `{}` and service events may lack `userIdentity.type`: nothing here
//! assumes a field is present. Strings borrow from the input when they hold no escapes.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;

/// The `detail-type` EventBridge gives CloudTrail API records.
pub const CLOUDTRAIL_API_CALL: &str = "AWS API Call via CloudTrail";

/// One CloudTrail record: the few fields the rules and the signal read.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Record<'a> {
    #[serde(borrow)]
    pub event_version: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub event_time: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub event_source: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub event_name: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub aws_region: Option<Cow<'a, str>>,
    #[serde(rename = "sourceIPAddress", borrow)]
    pub source_ip_address: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub user_agent: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub error_code: Option<Cow<'a, str>>,
    #[serde(rename = "eventID", borrow)]
    pub event_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub recipient_account_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub user_identity: Option<UserIdentity<'a>>,
    /// Kept raw: only records a rule reads pay for parsing it (see [`RequestParameters`]).
    #[serde(borrow)]
    pub request_parameters: Option<&'a RawValue>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserIdentity<'a> {
    #[serde(rename = "type", borrow)]
    pub kind: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub principal_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub arn: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub account_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub access_key_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub invoked_by: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub session_context: Option<SessionContext<'a>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionContext<'a> {
    #[serde(borrow)]
    pub session_issuer: Option<SessionIssuer<'a>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionIssuer<'a> {
    #[serde(rename = "type", borrow)]
    pub kind: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub arn: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub user_name: Option<Cow<'a, str>>,
}

/// The request parameters the rules read (names from the SES v1/v2 and Service Quotas APIs).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestParameters<'a> {
    /// DeleteIdentity (v1): a name or an identity ARN.
    #[serde(borrow)]
    pub identity: Option<Cow<'a, str>>,
    /// VerifyEmailIdentity, VerifyEmailAddress, DeleteVerifiedEmailAddress (v1).
    #[serde(borrow)]
    pub email_address: Option<Cow<'a, str>>,
    /// VerifyDomainIdentity (v1).
    #[serde(borrow)]
    pub domain: Option<Cow<'a, str>>,
    /// CreateEmailIdentity, DeleteEmailIdentity (v2).
    #[serde(borrow)]
    pub email_identity: Option<Cow<'a, str>>,
    /// ListServiceQuotas.
    #[serde(borrow)]
    pub service_code: Option<Cow<'a, str>>,
}

impl<'a> Record<'a> {
    /// Parses one record from JSON that must be an object.
    pub fn parse(json: &'a str) -> Result<Self, serde_json::Error> {
        if !starts_with_object(json) {
            return Err(serde::de::Error::custom(format!(
                "expected a JSON object, found {}",
                json_kind(json)
            )));
        }
        serde_json::from_str(json).map_err(|err| {
            // Parse again, only on failure, to name the field that is wrong.
            let mut de = serde_json::Deserializer::from_str(json);
            match serde_path_to_error::deserialize::<_, Record>(&mut de) {
                Err(tracked) if tracked.path().iter().next().is_some() => {
                    serde::de::Error::custom(format!(
                        "{}: {}",
                        tracked.path(),
                        crate::input::describe(tracked.inner())
                    ))
                }
                _ => err,
            }
        })
    }

    pub fn source(&self) -> &str {
        self.event_source.as_deref().unwrap_or("")
    }

    pub fn name(&self) -> &str {
        self.event_name.as_deref().unwrap_or("")
    }

    /// The request parameters, parsed on demand. `null` or absent gives the empty set; anything
    /// other than an object is an error, as it is in no real record.
    pub fn request_parameters(&self) -> Result<RequestParameters<'a>, serde_json::Error> {
        match self.request_parameters {
            None => Ok(RequestParameters::default()),
            Some(raw) => {
                let json = raw.get();
                if json == "null" {
                    return Ok(RequestParameters::default());
                }
                if !starts_with_object(json) {
                    return Err(serde::de::Error::custom(format!(
                        "requestParameters: expected a JSON object, found {}",
                        json_kind(json)
                    )));
                }
                serde_json::from_str(json).map_err(|e| {
                    serde::de::Error::custom(format!(
                        "requestParameters: {}",
                        crate::input::describe(&e)
                    ))
                })
            }
        }
    }
}

/// The parts of an EventBridge envelope the reader needs to unwrap it.
#[derive(Debug, Deserialize)]
pub struct Envelope<'a> {
    #[serde(rename = "detail-type", borrow)]
    pub detail_type: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub source: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub detail: Option<&'a RawValue>,
}

fn starts_with_object(json: &str) -> bool {
    json.trim_start().starts_with('{')
}

/// A short name for the kind of JSON value `json` holds, for error messages.
pub(crate) fn json_kind(json: &str) -> &'static str {
    match json.trim_start().as_bytes().first() {
        Some(b'{') => "an object",
        Some(b'[') => "an array",
        Some(b'"') => "a string",
        Some(b't' | b'f') => "a boolean",
        Some(b'n') => "null",
        Some(_) => "a number",
        None => "nothing",
    }
}
