//! `s3://bucket/prefix` arguments and CloudTrail's key layout: pure parts of reading the trail
//! from S3, compiled with or without the `s3` feature (so that a build without it can still say
//! what an `s3://` argument needs).

use std::fmt;

use crate::model::{DAY, Seconds};

/// An `s3://bucket[/prefix]` argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Url {
    pub bucket: String,
    pub prefix: String,
}

impl S3Url {
    /// Whether a command-line argument names S3 rather than a local path.
    pub fn is_s3(arg: &str) -> bool {
        arg.get(..5)
            .is_some_and(|s| s.eq_ignore_ascii_case("s3://"))
    }

    pub fn parse(arg: &str) -> Result<S3Url, String> {
        if !S3Url::is_s3(arg) {
            return Err(format!("{arg:?} is not an s3:// URL"));
        }
        let rest = &arg[5..];
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        // Bucket names: 3-63 characters of lower-case letters, digits, dots and hyphens.
        let valid = (3..=63).contains(&bucket.len())
            && bucket
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-');
        if !valid {
            return Err(format!(
                "{arg}: {bucket:?} is not an S3 bucket name (3 to 63 lower-case letters, digits, \
                 dots and hyphens)"
            ));
        }
        Ok(S3Url {
            bucket: bucket.to_owned(),
            prefix: prefix.to_owned(),
        })
    }

    /// The URL of one object.
    pub fn object(bucket: &str, key: &str) -> String {
        format!("s3://{bucket}/{key}")
    }
}

impl fmt::Display for S3Url {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "s3://{}/{}", self.bucket, self.prefix)
    }
}

/// Whether an object of the trail holds API calls to read: a log file, not a digest
/// (`…/CloudTrail-Digest/…`) or an Insights file (`…/CloudTrail-Insight/…`), with a suffix
/// `scan` reads.
pub fn is_log_key(key: &str) -> bool {
    crate::notification::not_a_log_file(key).is_none()
        && crate::input::SCANNED_SUFFIXES
            .iter()
            .any(|s| key.ends_with(s))
}

/// The day of a key in CloudTrail's layout (`…/CloudTrail/<region>/<yyyy>/<mm>/<dd>/…`), as the
/// event-time second of its midnight (UTC).
pub fn key_day(key: &str) -> Option<Seconds> {
    let parts: Vec<&str> = key.split('/').collect();
    let at = parts.iter().position(|p| *p == "CloudTrail")?;
    let (year, month, day) = match parts.get(at + 2..at + 5)? {
        [y, m, d] if y.len() == 4 && m.len() == 2 && d.len() == 2 => (y, m, d),
        _ => return None,
    };
    crate::time::parse_date_or_time(&format!("{year}-{month}-{day}")).ok()
}

/// The time in a CloudTrail log file's name (`…_CloudTrail_<region>_20260302T0905Z_<id>.json.gz`,
/// the end of the interval the file covers, to the minute), as event-time seconds.
pub fn name_time(key: &str) -> Option<Seconds> {
    let name = key.rsplit('/').next()?;
    name.split('_').find_map(|part| {
        let b = part.as_bytes();
        let digits =
            |r: std::ops::Range<usize>| b.get(r).is_some_and(|d| d.iter().all(u8::is_ascii_digit));
        if b.len() != 14 || b[8] != b'T' || b[13] != b'Z' || !digits(0..8) || !digits(9..13) {
            return None;
        }
        let text = format!(
            "{}-{}-{}T{}:{}:00Z",
            &part[0..4],
            &part[4..6],
            &part[6..8],
            &part[9..11],
            &part[11..13]
        );
        crate::time::parse_event_time(&text).ok()
    })
}

/// Whether an object of day `day` may hold events within [since, until). A log file is
/// delivered after its events, within minutes, so its folder's day can be one day later than
/// its earliest event (around midnight) but not earlier than its latest: a folder of day D is
/// read for a range that reaches into [D - 1 day, D + 1 day). Records are filtered by their
/// own event time afterwards.
pub fn day_may_hold(day: Seconds, since: Option<Seconds>, until: Option<Seconds>) -> bool {
    since.is_none_or(|s| day + DAY > s) && until.is_none_or(|u| day - DAY < u)
}

/// An S3 object-created notification for one object, in the shape S3 sends to a queue (what
/// the ingestion function reads): `backfill` queues these for objects already in the bucket.
/// The key is URL-encoded as S3 encodes it (form style: a space is `+`; `/` kept).
pub fn created_notification(bucket: &str, key: &str, size: u64, region: &str) -> String {
    serde_json::json!({
        "Records": [{
            "eventVersion": "2.1",
            "eventSource": "aws:s3",
            "awsRegion": region,
            "eventName": "ObjectCreated:Put",
            "userIdentity": {"principalId": "sesguard-backfill"},
            "s3": {
                "s3SchemaVersion": "1.0",
                "configurationId": "sesguard-backfill",
                "bucket": {"name": bucket, "arn": format!("arn:aws:s3:::{bucket}")},
                "object": {"key": encode_key(key), "size": size},
            },
        }]
    })
    .to_string()
}

/// A key as S3 notifications write it.
pub fn encode_key(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    for byte in key.bytes() {
        match byte {
            b' ' => out.push('+'),
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                out.push(char::from(byte));
            }
            other => out.push_str(&format!("%{other:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::parse_date_or_time as at;

    #[test]
    fn parses_s3_urls() {
        assert_eq!(
            S3Url::parse("s3://trail-bucket/AWSLogs/o-abc/"),
            Ok(S3Url {
                bucket: "trail-bucket".into(),
                prefix: "AWSLogs/o-abc/".into()
            })
        );
        assert_eq!(
            S3Url::parse("S3://abc").map(|u| u.prefix),
            Ok(String::new())
        );
        assert!(S3Url::parse("s3://").is_err());
        assert!(S3Url::parse("s3://Bad_Bucket/x").is_err());
        assert!(S3Url::parse("/local/path").is_err());
        assert!(S3Url::is_s3("s3://x") && !S3Url::is_s3("s3:/x") && !S3Url::is_s3("é"));
    }

    #[test]
    fn knows_cloudtrail_keys_and_their_days() {
        let log = "AWSLogs/o-abc123/111122223333/CloudTrail/eu-west-1/2026/03/02/111122223333_CloudTrail_eu-west-1_20260302T0905Z_abc.json.gz";
        assert!(is_log_key(log));
        assert_eq!(key_day(log), at("2026-03-02").ok());
        let without_org = "AWSLogs/111122223333/CloudTrail/us-east-1/2026/12/31/x.json.gz";
        assert_eq!(key_day(without_org), at("2026-12-31").ok());
        assert!(!is_log_key(
            "AWSLogs/111122223333/CloudTrail-Digest/us-east-1/2026/03/02/x.json.gz"
        ));
        assert!(!is_log_key(
            "AWSLogs/111122223333/CloudTrail-Insight/us-east-1/2026/03/02/x.json.gz"
        ));
        assert!(!is_log_key(
            "AWSLogs/111122223333/CloudTrail/us-east-1/2026/03/02/notes.txt"
        ));
        assert_eq!(key_day("exports/2026/03/02/x.json"), None);
        assert_eq!(
            key_day("AWSLogs/1/CloudTrail/us-east-1/2026/3/2/x.json"),
            None
        );
    }

    #[test]
    fn log_file_names_give_their_time() {
        assert_eq!(
            name_time(
                "AWSLogs/1/CloudTrail/eu-west-1/2026/03/02/1_CloudTrail_eu-west-1_20260302T0905Z_abc.json.gz"
            ),
            crate::time::parse_event_time("2026-03-02T09:05:00Z").ok()
        );
        assert_eq!(name_time("a/b/export.json.gz"), None);
        assert_eq!(name_time("x_2026030xT0905Z_y.json"), None);
    }

    #[test]
    fn a_day_folder_is_read_for_ranges_that_reach_it() {
        let day = at("2026-03-02").unwrap();
        assert!(day_may_hold(day, None, None));
        assert!(day_may_hold(
            day,
            at("2026-03-02").ok(),
            at("2026-03-03").ok()
        ));
        // Its last events are before the next midnight...
        assert!(!day_may_hold(day, at("2026-03-03").ok(), None));
        // ... its first may be late deliveries of the day before.
        assert!(day_may_hold(day, None, at("2026-03-01T23:00:00Z").ok()));
        assert!(!day_may_hold(day, None, at("2026-03-01").ok()));
    }

    #[test]
    fn notifications_carry_keys_encoded_as_s3_encodes_them() {
        assert_eq!(
            encode_key("AWSLogs/a b+c:d/é.json"),
            "AWSLogs/a+b%2Bc%3Ad/%C3%A9.json"
        );
        let body: serde_json::Value =
            serde_json::from_str(&created_notification("trail", "a b.json", 42, "eu-west-1"))
                .unwrap();
        let record = &body["Records"][0];
        assert_eq!(record["eventSource"], "aws:s3");
        assert_eq!(record["eventName"], "ObjectCreated:Put");
        assert_eq!(record["s3"]["bucket"]["name"], "trail");
        assert_eq!(record["s3"]["object"]["key"], "a+b.json");
        assert_eq!(record["s3"]["object"]["size"], 42);
    }
}
