//! The CloudTrail record and the EventBridge envelope, modelled with every field optional.
//!
//! Real records vary by `eventVersion` (1.02 … 1.11), `requestParameters` is often `null`,
//! `sessionIssuer` may be `{}` and service events may lack `userIdentity.type`: nothing here
//! assumes a field is present. Strings borrow from the input when they hold no escapes.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::text::{describe, json_kind};

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
    /// Read leniently: no rule decides on it, so a bad escape in it (an attacker's choice)
    /// must not make the record malformed and hide it from every rule.
    #[serde(borrow)]
    pub user_agent: Option<LenientText<'a>>,
    #[serde(borrow)]
    pub error_code: Option<Cow<'a, str>>,
    #[serde(rename = "eventID", borrow)]
    pub event_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub recipient_account_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub user_identity: Option<UserIdentity<'a>>,
    /// Kept raw: only records a rule reads pay for parsing it (see [`Params`]).
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
                Err(tracked) if tracked.path().iter().next().is_some() => serde::de::Error::custom(
                    format!("{}: {}", tracked.path(), describe(tracked.inner())),
                ),
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

    /// The request parameters, parsed on demand into their members (each value stays raw
    /// until a rule reads it). `null` or absent gives the empty set; anything other than an
    /// object is an error, as it is in no real record.
    pub fn request_parameters(&self) -> Result<Params<'a>, serde_json::Error> {
        match self.request_parameters {
            None => Ok(Params::default()),
            Some(raw) => {
                let json = raw.get();
                if json == "null" {
                    return Ok(Params::default());
                }
                if !starts_with_object(json) {
                    return Err(serde::de::Error::custom(format!(
                        "requestParameters: expected a JSON object, found {}",
                        json_kind(json)
                    )));
                }
                serde_json::from_str::<Members<'a>>(json)
                    .map(|members| Params { members: members.0 })
                    .map_err(|e| {
                        serde::de::Error::custom(format!("requestParameters: {}", describe(&e)))
                    })
            }
        }
    }
}

/// The members of `requestParameters`, their values unparsed: a rule reads any member by its
/// API name without a field per parameter here, and records no rule reads never get this far.
#[derive(Debug, Default)]
pub struct Params<'a> {
    members: Vec<(Cow<'a, str>, &'a RawValue)>,
}

/// A member of `requestParameters` that is there but cannot be read as asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("requestParameters.{name}: {message}")]
pub struct ParamError {
    pub name: String,
    pub message: String,
}

impl<'a> Params<'a> {
    /// The raw value of member `name`: its API name in lower camel case, or the same name in
    /// upper camel case (some services' records spell it so). `Ok(None)` when absent; an error
    /// when given twice.
    pub fn raw(&self, name: &str) -> Result<Option<&'a RawValue>, ParamError> {
        let mut found = self
            .members
            .iter()
            .filter(|(key, _)| same_member(key, name))
            .map(|(_, value)| *value);
        let first = found.next();
        if found.next().is_some() {
            return Err(ParamError {
                name: name.to_owned(),
                message: "given more than once".to_owned(),
            });
        }
        Ok(first)
    }

    /// Member `name` as a string; `null` counts as absent.
    pub fn str(&self, name: &str) -> Result<Option<Cow<'a, str>>, ParamError> {
        let Some(raw) = self.raw(name)? else {
            return Ok(None);
        };
        serde_json::from_str::<Option<Text<'a>>>(raw.get())
            .map(|text| text.map(|t| t.0))
            .map_err(|err| ParamError {
                name: name.to_owned(),
                message: describe(&err),
            })
    }

    /// Member `name` as a boolean: `true`/`false`, or the strings `"true"`/`"false"` in any
    /// case; `null` counts as absent.
    pub fn bool(&self, name: &str) -> Result<Option<bool>, ParamError> {
        let Some(raw) = self.raw(name)? else {
            return Ok(None);
        };
        let json = raw.get().trim();
        match json {
            "true" => return Ok(Some(true)),
            "false" => return Ok(Some(false)),
            "null" => return Ok(None),
            _ => {}
        }
        match self.str(name)? {
            Some(text) if text.eq_ignore_ascii_case("true") => Ok(Some(true)),
            Some(text) if text.eq_ignore_ascii_case("false") => Ok(Some(false)),
            _ => Err(ParamError {
                name: name.to_owned(),
                message: format!("expected a boolean, found {}", json_kind(json)),
            }),
        }
    }
}

/// Whether a member's key is `name`, in lower or upper camel case.
fn same_member(key: &str, name: &str) -> bool {
    if key == name {
        return true;
    }
    let (mut k, mut n) = (key.chars(), name.chars());
    match (k.next(), n.next()) {
        (Some(a), Some(b)) => a == b.to_ascii_uppercase() && k.as_str() == n.as_str(),
        _ => false,
    }
}

/// A string field no rule decides on, read leniently: an escape that is not valid JSON text (a
/// lone surrogate, `\x`) becomes U+FFFD, a value that is not a string becomes empty, and
/// `replaced` says so (the signal flags it).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct LenientText<'a> {
    pub text: Cow<'a, str>,
    pub replaced: bool,
}

impl<'de: 'a, 'a> Deserialize<'de> for LenientText<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw: &'de RawValue = Deserialize::deserialize(deserializer)?;
        Ok(LenientText::read(raw.get()))
    }
}

impl<'a> LenientText<'a> {
    fn read(json: &'a str) -> Self {
        if let Ok(Text(text)) = serde_json::from_str::<Text<'a>>(json) {
            return LenientText {
                text,
                replaced: false,
            };
        }
        let Some(inner) = json
            .trim()
            .strip_prefix('"')
            .and_then(|rest| rest.strip_suffix('"'))
        else {
            return LenientText {
                text: Cow::Borrowed(""),
                replaced: true,
            };
        };
        LenientText {
            text: Cow::Owned(unescape_lossy(inner)),
            replaced: true,
        }
    }
}

/// The text of a JSON string's inside, escapes decoded, anything invalid as U+FFFD.
fn unescape_lossy(inner: &str) -> String {
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars().peekable();
    let hex4 = |chars: &mut std::iter::Peekable<std::str::Chars<'_>>| -> Option<u32> {
        let digits: String = (0..4).filter_map(|_| chars.next()).collect();
        (digits.len() == 4)
            .then(|| u32::from_str_radix(&digits, 16).ok())
            .flatten()
    };
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(if c.is_control() { '\u{FFFD}' } else { c });
            continue;
        }
        let decoded = match chars.next() {
            Some('"') => Some('"'),
            Some('\\') => Some('\\'),
            Some('/') => Some('/'),
            Some('b') => Some('\u{8}'),
            Some('f') => Some('\u{c}'),
            Some('n') => Some('\n'),
            Some('r') => Some('\r'),
            Some('t') => Some('\t'),
            Some('u') => match hex4(&mut chars) {
                Some(high @ 0xD800..=0xDBFF) => {
                    let mut rest = chars.clone();
                    let low = (rest.next() == Some('\\') && rest.next() == Some('u'))
                        .then(|| hex4(&mut rest))
                        .flatten()
                        .filter(|low| (0xDC00..=0xDFFF).contains(low));
                    match low {
                        Some(low) => {
                            chars = rest;
                            char::from_u32(0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00))
                        }
                        None => None,
                    }
                }
                Some(code) => char::from_u32(code),
                None => None,
            },
            _ => None,
        };
        out.push(decoded.unwrap_or('\u{FFFD}'));
    }
    out
}

/// A string that borrows from the input when it holds no escapes.
#[derive(Deserialize)]
struct Text<'a>(#[serde(borrow)] Cow<'a, str>);

/// An object's members in order, keys borrowed where possible, values raw.
struct Members<'a>(Vec<(Cow<'a, str>, &'a RawValue)>);

impl<'de: 'a, 'a> Deserialize<'de> for Members<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visit<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> serde::de::Visitor<'de> for Visit<'a> {
            type Value = Members<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Self::Value, A::Error> {
                let mut members = Vec::new();
                while let Some(Text(key)) = map.next_key::<Text<'de>>()? {
                    let value: &'de RawValue = map.next_value()?;
                    members.push((key, value));
                }
                Ok(Members(members))
            }
        }
        deserializer.deserialize_map(Visit(std::marker::PhantomData))
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

/// Why a record a rule reads cannot be evaluated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    #[error("{0} is missing")]
    Missing(&'static str),
    #[error("{0}")]
    EventTime(String),
    #[error(transparent)]
    Param(#[from] ParamError),
    /// Not valid as a record (the JSON parser's message, without its position).
    #[error("{0}")]
    Json(String),
}

impl From<serde_json::Error> for RecordError {
    fn from(err: serde_json::Error) -> Self {
        RecordError::Json(describe(&err))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_escape_in_a_lenient_field_is_replaced_and_flagged() {
        let read = |json| {
            let text = LenientText::read(json);
            (text.text.into_owned(), text.replaced)
        };
        assert_eq!(read(r#""aws-cli/2""#), ("aws-cli/2".to_owned(), false));
        assert_eq!(read(r#""a\u00e9b""#), ("aéb".to_owned(), false));
        assert_eq!(
            read(r#""aws-cli/2 \ud800""#),
            ("aws-cli/2 \u{FFFD}".to_owned(), true)
        );
        assert_eq!(
            read(r#""x\ud83d\ude00\udc00\q""#),
            ("x😀\u{FFFD}\u{FFFD}".to_owned(), true)
        );
        assert_eq!(read("5"), (String::new(), true));
        let record = Record::parse(
            r#"{"eventName":"DeleteIdentity","userAgent":"aws-cli/2 \ud800","eventID":"e"}"#,
        )
        .expect("a bad user agent does not make the record malformed");
        assert_eq!(record.event_id.as_deref(), Some("e"));
        assert!(record.user_agent.is_some_and(|ua| ua.replaced));
    }
}
