//! Objects that are not CloudTrail records: the exports that carry records as JSON strings
//! (`aws cloudtrail lookup-events`, CloudWatch Logs `filter-log-events` / `get-log-events` and
//! subscription-filter payloads), CloudTrail digest files, and anything else, named for the user.
//!
//! Asked only about an object with none of `eventName`, `eventSource`, `eventTime`
//! ([`is_record`]): a record's text holds one of them within its first few hundred bytes, so the
//! common case costs one short search, and the wrappers (whose records are escaped strings)
//! never look like records.

use std::borrow::Cow;
use std::fmt;
use std::sync::LazyLock;

use memchr::memmem::Finder;
use serde::Deserialize;
use serde::de::{self, IgnoredAny, MapAccess};
use serde_json::value::RawValue;

use crate::text::truncate;

/// Whether `json` (an object's text) names a CloudTrail record field. Textual: the keys of an
/// export's elements are capitalised (`EventName`) or escaped inside strings (`\"eventTime\"`).
pub(super) fn is_record(json: &str) -> bool {
    static KEYS: LazyLock<[Finder<'static>; 3]> = LazyLock::new(|| {
        [
            Finder::new(b"\"eventTime\""),
            Finder::new(b"\"eventSource\""),
            Finder::new(b"\"eventName\""),
        ]
    });
    KEYS.iter().any(|key| key.find(json.as_bytes()).is_some())
}

/// What an object that is not a record turned out to be.
pub(super) enum Shape<'a> {
    /// An export whose list holds records as JSON strings in `field` of each element.
    Export {
        export: Export,
        elements: Vec<&'a RawValue>,
    },
    /// Something skipped: a digest file, a control message, any other object.
    NotCloudTrail(NotCloudTrail),
}

/// The exports sesguard unwraps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Export {
    /// `aws cloudtrail lookup-events`: `Events[].CloudTrailEvent`.
    LookupEvents,
    /// `aws logs filter-log-events` / `get-log-events`: `events[].message`.
    LogEvents,
    /// A CloudWatch Logs subscription-filter payload: `logEvents[].message`.
    Subscription,
}

impl Export {
    /// The member of each element that holds a record.
    pub(super) fn field(self) -> &'static str {
        match self {
            Export::LookupEvents => "CloudTrailEvent",
            Export::LogEvents | Export::Subscription => "message",
        }
    }

    /// How the user calls the list's elements, in messages.
    pub(super) fn element(self) -> &'static str {
        match self {
            Export::LookupEvents => "lookup-events result",
            Export::LogEvents => "CloudWatch Logs event",
            Export::Subscription => "subscription log event",
        }
    }
}

/// An object skipped because it is not a CloudTrail record, as the user is told about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotCloudTrail {
    /// A CloudTrail digest file (`digestStartTime`, `previousDigestSignature`, …): expected in a
    /// trail's folder, not a problem.
    Digest,
    /// A CloudWatch Logs subscription `CONTROL_MESSAGE` (a health check): not a problem.
    ControlMessage,
    /// Any other object, described by its first keys (`an object with keys a, b`).
    Other(String),
}

impl NotCloudTrail {
    /// Whether this is a known companion of CloudTrail data (skipped without a problem).
    pub fn is_expected(&self) -> bool {
        !matches!(self, NotCloudTrail::Other(_))
    }
}

impl fmt::Display for NotCloudTrail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NotCloudTrail::Digest => f.write_str("a CloudTrail digest file"),
            NotCloudTrail::ControlMessage => {
                f.write_str("a CloudWatch Logs subscription control message")
            }
            NotCloudTrail::Other(what) => f.write_str(what),
        }
    }
}

/// Keys named when an object is described; more are counted.
const KEYS_NAMED: usize = 8;
/// Characters of a key quoted (keys are attacker-controlled).
const KEY_CHARS: usize = 40;

/// Keys that only digest files have.
const DIGEST_KEYS: &[&str] = &[
    "digestStartTime",
    "digestEndTime",
    "previousDigestSignature",
    "previousDigestS3Object",
    "digestPublicKeyFingerprint",
];

/// What the object `json` (not a record, see [`is_record`]) is. `exports` is false for records
/// found inside an export, which are not unwrapped again.
pub(super) fn classify(json: &str, exports: bool) -> Result<Shape<'_>, serde_json::Error> {
    let Members(members) = match serde_json::from_str(json) {
        Ok(members) => members,
        // Valid JSON all the same: a key escapes a lone surrogate (`"\ud800"`), which no
        // string can hold.
        Err(err) => {
            serde_json::from_str::<IgnoredAny>(json).map_err(|_| err)?;
            return Ok(Shape::NotCloudTrail(NotCloudTrail::Other(
                "an object with keys that are not valid Unicode".to_owned(),
            )));
        }
    };
    let get = |name: &str| {
        members
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| *value)
    };
    let list = |name: &str| {
        get(name).and_then(|value| serde_json::from_str::<Vec<&RawValue>>(value.get()).ok())
    };
    if exports {
        if let Some(elements) = list("Events") {
            return Ok(Shape::Export {
                export: Export::LookupEvents,
                elements,
            });
        }
        if let Some(elements) = list("logEvents") {
            let kind = get("messageType").and_then(|v| serde_json::from_str::<&str>(v.get()).ok());
            if kind == Some("CONTROL_MESSAGE") {
                return Ok(Shape::NotCloudTrail(NotCloudTrail::ControlMessage));
            }
            return Ok(Shape::Export {
                export: Export::Subscription,
                elements,
            });
        }
        if let Some(elements) = list("events") {
            return Ok(Shape::Export {
                export: Export::LogEvents,
                elements,
            });
        }
    }
    if members
        .iter()
        .any(|(key, _)| DIGEST_KEYS.contains(&key.as_ref()))
    {
        return Ok(Shape::NotCloudTrail(NotCloudTrail::Digest));
    }
    Ok(Shape::NotCloudTrail(NotCloudTrail::Other(describe_keys(
        members.iter().map(|(key, _)| key.as_ref()),
        members.len(),
    ))))
}

/// `an object with keys a, b` (`an empty object`), keys cut and escaped so that no input can
/// break the line it is printed on.
fn describe_keys<'k>(keys: impl Iterator<Item = &'k str>, count: usize) -> String {
    if count == 0 {
        return "an empty object".to_owned();
    }
    let named: Vec<String> = keys
        .take(KEYS_NAMED)
        .map(|key| {
            let key = truncate(key, KEY_CHARS);
            if key
                .chars()
                .all(|c| c.is_alphanumeric() || "_-.:@$".contains(c))
                && !key.is_empty()
            {
                key
            } else {
                format!("{key:?}")
            }
        })
        .collect();
    let more = count.saturating_sub(KEYS_NAMED);
    let noun = if count == 1 { "key" } else { "keys" };
    if more > 0 {
        format!("an object with {noun} {} and {more} more", named.join(", "))
    } else {
        format!("an object with {noun} {}", named.join(", "))
    }
}

/// The record text an element of an export carries, unescaped; or why there is none.
pub(super) fn embedded<'a>(element: &'a RawValue, export: Export) -> Result<Cow<'a, str>, String> {
    let field = export.field();
    let what = export.element();
    let Ok(Members(members)) = serde_json::from_str::<Members>(element.get()) else {
        return Err(format!(
            "{what} must be an object with a {field} string, found {}",
            crate::text::json_kind(element.get())
        ));
    };
    let Some((_, value)) = members.into_iter().find(|(key, _)| key == field) else {
        return Err(format!("{what} has no {field}"));
    };
    let text: Cow<'a, str> = serde_json::from_str(value.get()).map_err(|_| {
        format!(
            "{what}: {field} must be a string holding a CloudTrail record, found {}",
            crate::text::json_kind(value.get())
        )
    })?;
    if let Err(err) = serde_json::from_str::<IgnoredAny>(&text) {
        return Err(format!(
            "{what}: {field} is not JSON ({}): {:?}",
            crate::text::describe(&err),
            truncate(&text, 60)
        ));
    }
    Ok(text)
}

/// An object's members in order, values left raw.
struct Members<'a>(Vec<(Cow<'a, str>, &'a RawValue)>);

impl<'de> Deserialize<'de> for Members<'de> {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> de::Visitor<'de> for Visit {
            type Value = Members<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Members<'de>, A::Error> {
                let mut members = Vec::new();
                while let Some(key) = map.next_key::<Cow<'de, str>>()? {
                    let value = map.next_value::<&'de RawValue>()?;
                    members.push((key, value));
                }
                Ok(Members(members))
            }
        }
        deserializer.deserialize_map(Visit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(json: &str) -> String {
        match classify(json, true) {
            Ok(Shape::Export { export, elements }) => format!("{export:?} {}", elements.len()),
            Ok(Shape::NotCloudTrail(what)) => what.to_string(),
            Err(err) => format!("error {err}"),
        }
    }

    #[test]
    fn objects_that_are_not_records_are_named() {
        assert!(is_record(r#"{"eventTime":"x"}"#));
        assert!(!is_record(
            r#"{"Events":[{"EventName":"x","CloudTrailEvent":"{\"eventTime\":1}"}]}"#
        ));
        assert_eq!(
            shape(r#"{"Events":[{},{}],"NextToken":"t"}"#),
            "LookupEvents 2"
        );
        assert_eq!(
            shape(r#"{"events":[],"searchedLogStreams":[]}"#),
            "LogEvents 0"
        );
        assert_eq!(
            shape(r#"{"messageType":"DATA_MESSAGE","logEvents":[{}]}"#),
            "Subscription 1"
        );
        assert_eq!(
            shape(r#"{"messageType":"CONTROL_MESSAGE","logEvents":[{}]}"#),
            "a CloudWatch Logs subscription control message"
        );
        assert_eq!(
            shape(r#"{"awsAccountId":"1","digestStartTime":"t","logFiles":[]}"#),
            "a CloudTrail digest file"
        );
        assert_eq!(shape(r#"{"a":1,"b":{}}"#), "an object with keys a, b");
        assert_eq!(shape("{}"), "an empty object");
        assert_eq!(
            shape(r#"{"x\n\u001b[31m":1}"#),
            r#"an object with key "x\n\u{1b}[31m""#
        );
        let many: Vec<String> = (0..10).map(|i| format!("\"k{i}\":{i}")).collect();
        assert_eq!(
            shape(&format!("{{{}}}", many.join(","))),
            "an object with keys k0, k1, k2, k3, k4, k5, k6, k7 and 2 more"
        );
        assert!(shape("{\"a\":tru}").starts_with("error "));
        assert_eq!(
            shape(r#"{"\ud800":1}"#),
            "an object with keys that are not valid Unicode"
        );
    }

    #[test]
    fn embedded_records_are_unescaped_or_refused_with_the_reason() {
        let element = |json: &str| serde_json::from_str::<&RawValue>(json).map(ToOwned::to_owned);
        let ok = element(r#"{"CloudTrailEvent":"{\"eventName\":\"x\"}"}"#).expect("json");
        assert_eq!(
            embedded(&ok, Export::LookupEvents).as_deref(),
            Ok(r#"{"eventName":"x"}"#)
        );
        let broken = element(r#"{"CloudTrailEvent":"{\"eventName\":"}"#).expect("json");
        let err = embedded(&broken, Export::LookupEvents).expect_err("not JSON");
        assert!(
            err.starts_with("lookup-events result: CloudTrailEvent is not JSON (EOF while parsing"),
            "{err}"
        );
        let missing = element(r#"{"timestamp":1}"#).expect("json");
        assert_eq!(
            embedded(&missing, Export::LogEvents),
            Err("CloudWatch Logs event has no message".to_owned())
        );
        let number = element("7").expect("json");
        assert_eq!(
            embedded(&number, Export::Subscription),
            Err(
                "subscription log event must be an object with a message string, found a number"
                    .to_owned()
            )
        );
    }
}
