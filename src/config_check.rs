//! `sesguard config check`: every problem of a configuration file, each with its entry, and
//! its suppressions with their expiry. The same validation as the function's
//! ([`Config::parse`]): each `[[suppressions]]` entry is validated on its own, and the rest of the
//! file without them, so that one bad entry does not hide the next.

use std::path::Path;

use crate::config::{Config, ConfigError, Overrides, Suppression};
use crate::model::{DAY, Seconds};
use crate::time;

/// Suppressions that expire within this many days are flagged.
pub const EXPIRES_SOON_DAYS: i64 = 14;

/// What checking a file found.
#[derive(Debug, Default)]
pub struct Report {
    /// Problems that make the file unusable (the function would reject it).
    pub problems: Vec<String>,
    /// Every suppression entry that is valid, in file order.
    pub suppressions: Vec<Entry>,
}

/// One valid suppression entry.
#[derive(Debug)]
pub struct Entry {
    /// 1-based, as in the function's messages.
    pub index: usize,
    pub summary: String,
    pub expires: Option<Seconds>,
    pub reason: Option<String>,
}

/// Whether an entry still applies at `now`, and how long for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    Never,
    Expired,
    /// Within [`EXPIRES_SOON_DAYS`] days.
    Soon,
    Later,
}

impl Entry {
    pub fn expiry(&self, now: Seconds) -> Expiry {
        match self.expires {
            None => Expiry::Never,
            Some(at) if at <= now => Expiry::Expired,
            Some(at) if at - now <= EXPIRES_SOON_DAYS * DAY => Expiry::Soon,
            Some(_) => Expiry::Later,
        }
    }
}

impl Report {
    pub fn is_valid(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Checks `text`, read from `path` (named in messages; a relative `tor_exit_list` is read
/// relative to it). `in_s3`: the file is (or goes) in S3, where the Tor list is not named in the
/// file but by `SESGUARD_TOR_EXIT_LIST`.
pub fn check(text: &str, path: &Path, in_s3: bool) -> Report {
    let mut report = Report::default();
    let overrides = Overrides::default();
    let mut table: toml::Table = match toml::from_str(text) {
        Ok(table) => table,
        Err(_) => {
            // The parser's own message, with the line and column of the whole file.
            if let Err(err) = Config::parse(text, path, &overrides) {
                report.problems.push(err.to_string());
            }
            return report;
        }
    };
    if in_s3 && table.contains_key("tor_exit_list") {
        report.problems.push(format!(
            "{}: tor_exit_list: a configuration in S3 cannot name a file; the function reads \
             the Tor exit list named by SESGUARD_TOR_EXIT_LIST (the stack's scheduled fetch)",
            path.display()
        ));
        table.remove("tor_exit_list");
    }
    let entries = match table.remove("suppressions") {
        None => Vec::new(),
        Some(toml::Value::Array(entries)) => entries,
        Some(other) => {
            report.problems.push(format!(
                "{}: suppressions: expected [[suppressions]] entries, found {}",
                path.display(),
                other.type_str()
            ));
            Vec::new()
        }
    };
    // Each setting (or table) on its own, then together (for the checks across settings).
    let mut parts: Vec<(Option<&str>, toml::Table)> = table
        .iter()
        .map(|(key, value)| {
            let mut one = toml::Table::new();
            one.insert(key.clone(), value.clone());
            (Some(key.as_str()), one)
        })
        .collect();
    parts.push((None, table.clone()));
    for (key, part) in parts {
        if key.is_none() && !report.problems.is_empty() {
            break;
        }
        let result = toml::to_string(&part)
            .map_err(|err| format!("{}: {err}", path.display()))
            .and_then(|text| {
                Config::parse(&text, path, &overrides).map_err(|err| rebased(err, None, key))
            });
        if let Err(message) = result {
            report.problems.push(message);
        }
    }
    for (i, entry) in entries.into_iter().enumerate() {
        let index = i + 1;
        let mut one = toml::Table::new();
        one.insert("suppressions".to_owned(), toml::Value::Array(vec![entry]));
        let parsed = toml::to_string(&one)
            .map_err(|err| format!("{}: suppression {index}: {err}", path.display()))
            .and_then(|text| {
                Config::parse(&text, path, &overrides)
                    .map_err(|err| rebased(err, Some(index), None))
            });
        match parsed {
            Ok(config) => {
                if let Some(suppression) = config.suppressions.first() {
                    report.suppressions.push(Entry {
                        index,
                        summary: summary(suppression),
                        expires: suppression.expires,
                        reason: suppression.reason.clone(),
                    });
                }
            }
            Err(message) => report.problems.push(message),
        }
    }
    report
}

/// An error of a part of the file (one suppression entry, or one setting `key`), as the error
/// of the whole: the entry's own index, and no line numbers (they would be those of the part).
fn rebased(err: ConfigError, index: Option<usize>, key: Option<&str>) -> String {
    match (err, index) {
        (ConfigError::Suppression { path, message, .. }, Some(index)) => ConfigError::Suppression {
            path,
            index,
            message,
        }
        .to_string(),
        (ConfigError::Toml { path, message }, index) => {
            // The last line of the parser's message says what is wrong; the lines before it
            // quote the part, not the file.
            let what = message.lines().last().unwrap_or_default().trim();
            match (index, key) {
                (Some(index), _) => format!("{}: suppression {index}: {what}", path.display()),
                (None, Some(key)) => format!("{}: {key}: {what}", path.display()),
                (None, None) => format!("{}: {what}", path.display()),
            }
        }
        (other, _) => other.to_string(),
    }
}

/// The fields an entry matches on, as written.
fn summary(s: &Suppression) -> String {
    let mut parts = vec![format!("rule {}", s.rule.unwrap_or("(every rule)"))];
    let mut glob = |name: &str, g: &Option<globset::GlobMatcher>| {
        if let Some(g) = g {
            parts.push(format!("{name} {}", g.glob().glob()));
        }
    };
    glob("principal", &s.principal);
    glob("user_arn", &s.user_arn);
    glob("user_agent", &s.user_agent);
    if let Some(net) = &s.source_ip {
        parts.push(format!("source_ip {net}"));
    }
    parts.join(", ")
}

/// One line per suppression: its index, fields, expiry (flagged when expired or expiring within
/// [`EXPIRES_SOON_DAYS`] days) and reason.
pub fn describe(entry: &Entry, now: Seconds) -> String {
    let expiry = match (entry.expiry(now), entry.expires) {
        (Expiry::Never, _) | (_, None) => "never expires".to_owned(),
        (Expiry::Expired, Some(at)) => format!("EXPIRED {} (no longer applies)", time::format(at)),
        (Expiry::Soon, Some(at)) => format!(
            "EXPIRES SOON {} (in {} days)",
            time::format(at),
            (at - now + DAY - 1) / DAY
        ),
        (Expiry::Later, Some(at)) => format!("expires {}", time::format(at)),
    };
    format!(
        "suppression {}: {}; {}; reason: {}",
        entry.index,
        entry.summary,
        expiry,
        entry.reason.as_deref().unwrap_or("(none)")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Seconds = 1_800_000_000;

    #[test]
    fn every_problem_is_reported_with_its_entry() {
        let text = r#"
dedup_minutes = "an hour"
forget_days = 0

[[suppressions]]
rule = "ses-identity-deleted"
reason = "fine"

[[suppressions]]
rule = "no-such-rule"

[[suppressions]]
principal = "*"

[[suppressions]]
rule = "ses-modification"
colour = "blue"
"#;
        let report = check(text, Path::new("conf/sesguard.toml"), false);
        let problems = report.problems.join("\n");
        assert_eq!(report.problems.len(), 5, "{problems}");
        assert!(
            problems.contains("conf/sesguard.toml: dedup_minutes: invalid type"),
            "{problems}"
        );
        assert!(
            problems.contains("forget_days: must be at least 1"),
            "{problems}"
        );
        assert!(
            problems.contains("suppression 2: unknown rule \"no-such-rule\""),
            "{problems}"
        );
        assert!(
            problems.contains("suppression 3: principal would match any value"),
            "{problems}"
        );
        assert!(
            problems.contains("suppression 4: unknown field `colour`"),
            "{problems}"
        );
        assert_eq!(report.suppressions.len(), 1);
        assert_eq!(report.suppressions[0].index, 1);
    }

    #[test]
    fn a_valid_file_lists_its_suppressions_with_their_expiry() {
        let text = format!(
            r#"
[[suppressions]]
rule = "ses-identity-deleted"
principal = "arn:aws:iam::111122223333:user/ci"
expires = "{}"
reason = "old"

[[suppressions]]
rule = "ses-modification"
expires = "{}"

[[suppressions]]
source_ip = "203.0.113.0/24"
expires = "{}"

[[suppressions]]
rule = "ses-sending-enabled"
"#,
            time::format(NOW - DAY),
            time::format(NOW + 3 * DAY),
            time::format(NOW + 30 * DAY),
        );
        let report = check(&text, Path::new("sesguard.toml"), false);
        assert!(report.is_valid(), "{:?}", report.problems);
        let expiries: Vec<Expiry> = report.suppressions.iter().map(|e| e.expiry(NOW)).collect();
        assert_eq!(
            expiries,
            [Expiry::Expired, Expiry::Soon, Expiry::Later, Expiry::Never]
        );
        let lines: Vec<String> = report
            .suppressions
            .iter()
            .map(|e| describe(e, NOW))
            .collect();
        assert!(
            lines[0].contains("EXPIRED")
                && lines[0].contains("principal arn:aws:iam::111122223333:user/ci"),
            "{}",
            lines[0]
        );
        assert!(
            lines[1].contains("EXPIRES SOON") && lines[1].contains("in 3 days"),
            "{}",
            lines[1]
        );
        assert!(
            lines[2].contains("source_ip 203.0.113.0/24"),
            "{}",
            lines[2]
        );
        assert!(lines[3].contains("never expires"), "{}", lines[3]);
    }

    #[test]
    fn a_syntax_error_names_the_line_of_the_file_and_s3_files_name_no_tor_list() {
        let report = check(
            "learning_days = 7\n[[suppressions]\n",
            Path::new("x.toml"),
            false,
        );
        assert_eq!(report.problems.len(), 1);
        assert!(
            report.problems[0].contains("line 2"),
            "{}",
            report.problems[0]
        );
        let report = check(
            "tor_exit_list = \"tor.txt\"\n",
            Path::new("s3://b/x.toml"),
            true,
        );
        assert_eq!(report.problems.len(), 1, "{:?}", report.problems);
        assert!(report.problems[0].contains("SESGUARD_TOR_EXIT_LIST"));
    }
}
