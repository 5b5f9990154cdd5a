//! Event time: every window, learning period and expiry in sesguard is measured in `eventTime`
//! seconds since the Unix epoch, never in wall-clock time.

use time::format_description::well_known::Rfc3339;
use time::{Date, OffsetDateTime, PrimitiveDateTime, macros::format_description};

pub use crate::model::{DAY, MINUTE, Seconds};

/// Parses a CloudTrail `eventTime`: RFC 3339 (`2026-03-02T09:00:00Z`, as CloudTrail writes it),
/// or `YYYY-MM-DD HH:MM:SS[.fff]` in UTC (as Athena, CloudTrail Lake and Panther export it).
pub fn parse_event_time(text: &str) -> Result<Seconds, String> {
    OffsetDateTime::parse(text, &Rfc3339)
        .map(|t| t.unix_timestamp())
        .or_else(|err| {
            let plain = format_description!(
                version = 2,
                "[year]-[month]-[day] [hour]:[minute]:[second][optional [.[subsecond]]]"
            );
            PrimitiveDateTime::parse(text, plain)
                .map(|t| t.assume_utc().unix_timestamp())
                .map_err(|_| {
                    format!(
                        "eventTime {:?} is neither an RFC 3339 time nor YYYY-MM-DD HH:MM:SS \
                         (UTC): {err}",
                        crate::text::truncate(text, 40)
                    )
                })
        })
}

/// Parses a date (`2027-01-01`, meaning its midnight UTC) or an RFC 3339 time.
pub fn parse_date_or_time(text: &str) -> Result<Seconds, String> {
    if let Ok(date) = Date::parse(text, format_description!("[year]-[month]-[day]")) {
        return Ok(date.midnight().assume_utc().unix_timestamp());
    }
    OffsetDateTime::parse(text, &Rfc3339)
        .map(|t| t.unix_timestamp())
        .map_err(|_| format!("{text:?} is neither a date (YYYY-MM-DD) nor an RFC 3339 time"))
}

/// Formats event-time seconds as RFC 3339 (for messages and tables).
pub fn format(seconds: Seconds) -> String {
    OffsetDateTime::from_unix_timestamp(seconds)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| seconds.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_cloudtrail_times_and_dates() {
        assert_eq!(parse_event_time("1970-01-01T00:01:00Z"), Ok(60));
        assert_eq!(
            parse_event_time("2026-03-02T09:00:00.123Z"),
            Ok(1_772_442_000)
        );
        // Athena / CloudTrail Lake / Panther: UTC, a space, optional fraction.
        assert_eq!(parse_event_time("2026-03-02 09:00:00"), Ok(1_772_442_000));
        assert_eq!(
            parse_event_time("2015-02-04 01:05:33.000"),
            parse_event_time("2015-02-04T01:05:33Z")
        );
        assert!(parse_event_time("2026-03-02 09:00").is_err());
        assert!(parse_event_time("2026-03-02 09:00:00 junk").is_err());
        assert!(parse_event_time("+999999-01-01T00:00:00Z").is_err());
        assert_eq!(parse_date_or_time("1970-01-02"), Ok(DAY));
        assert_eq!(parse_date_or_time("1970-01-02T00:00:00Z"), Ok(DAY));
        assert!(parse_date_or_time("tomorrow").is_err());
        assert_eq!(format(60), "1970-01-01T00:01:00Z");
    }
}
