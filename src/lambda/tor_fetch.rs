//! The scheduled refresh of the Tor exit list (the `TorExitListUrl` schedule of template.yaml):
//! what a downloaded list must be to replace the stored one, and the fetcher's settings. The
//! download and the S3 write are in `sesguard_lambda::tor`.

use std::net::IpAddr;
use std::time::Duration;

use super::StartupError;
use crate::s3url::S3Url;

/// `SESGUARD_TOR_SOURCE_URL`: where the list is downloaded from. Set only on the fetch function:
/// it makes the binary a fetcher instead of a detector.
pub const TOR_SOURCE_URL: &str = "SESGUARD_TOR_SOURCE_URL";
/// `SESGUARD_TOR_FETCH_TIMEOUT_SECONDS`: the whole download (connect, answer, body).
pub const TOR_FETCH_TIMEOUT_SECONDS: &str = "SESGUARD_TOR_FETCH_TIMEOUT_SECONDS";
/// `SESGUARD_TOR_FETCH_MAX_BYTES`: a larger body is refused.
pub const TOR_FETCH_MAX_BYTES: &str = "SESGUARD_TOR_FETCH_MAX_BYTES";

/// The Tor Project's bulk list answers in about a second; a slow body past this is dropped.
pub const DEFAULT_FETCH_TIMEOUT: Duration = Duration::from_secs(20);
/// The bulk list is some tens of kilobytes (a few thousand addresses).
pub const DEFAULT_FETCH_MAX_BYTES: usize = 2 * 1024 * 1024;

/// The fetch function's configuration, from its environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TorFetchConfig {
    pub source: String,
    /// `SESGUARD_TOR_EXIT_LIST`: the object written (the one the detector reads).
    pub destination: S3Url,
    pub timeout: Duration,
    pub max_bytes: usize,
}

impl TorFetchConfig {
    /// `None` when `SESGUARD_TOR_SOURCE_URL` is not set (the binary is the detector).
    pub fn from_env(
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Option<Result<TorFetchConfig, StartupError>> {
        let source = lookup(TOR_SOURCE_URL).filter(|v| !v.trim().is_empty())?;
        Some(Self::build(source.trim().to_owned(), &lookup))
    }

    fn build(
        source: String,
        lookup: &impl Fn(&str) -> Option<String>,
    ) -> Result<TorFetchConfig, StartupError> {
        let destination = lookup(super::TOR_EXIT_LIST)
            .filter(|v| S3Url::is_s3(v))
            .ok_or_else(|| StartupError {
                variable: super::TOR_EXIT_LIST,
                message: "the fetcher needs the s3://bucket/key to write the list to".to_owned(),
            })
            .and_then(|v| {
                S3Url::parse(v.trim())
                    .ok()
                    .filter(|u| !u.prefix.is_empty() && !u.prefix.ends_with('/'))
                    .ok_or_else(|| StartupError {
                        variable: super::TOR_EXIT_LIST,
                        message: format!("{v}: not an s3://bucket/key"),
                    })
            })?;
        let number = |variable: &'static str| -> Result<Option<u64>, StartupError> {
            lookup(variable)
                .filter(|v| !v.trim().is_empty())
                .map(|v| {
                    v.trim()
                        .parse::<u64>()
                        .ok()
                        .filter(|n| *n > 0)
                        .ok_or_else(|| StartupError {
                            variable,
                            message: format!("{v:?} is not a positive whole number"),
                        })
                })
                .transpose()
        };
        Ok(TorFetchConfig {
            source,
            destination,
            timeout: number(TOR_FETCH_TIMEOUT_SECONDS)?
                .map_or(DEFAULT_FETCH_TIMEOUT, Duration::from_secs),
            max_bytes: number(TOR_FETCH_MAX_BYTES)?.map_or(DEFAULT_FETCH_MAX_BYTES, |n| {
                usize::try_from(n).unwrap_or(usize::MAX)
            }),
        })
    }
}

/// Why a downloaded list is not stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TorListRejected {
    #[error("the body is empty")]
    Empty,
    #[error("the body is an HTML page, not a list of addresses")]
    Html,
    #[error("the body is not UTF-8 text")]
    NotText,
    #[error("line {line}: {text:?} is neither an IP address nor a comment")]
    NotAnAddress { line: usize, text: String },
    #[error("no address in the list (comments only)")]
    NoAddress,
}

/// Checks a downloaded list: every line an IPv4 or IPv6 address, a `#` comment or blank, and at
/// least one address. An error page (HTML), an empty body or anything else is rejected, so a
/// broken download never replaces a good list. Returns the number of addresses.
pub fn validate_tor_list(body: &[u8]) -> Result<usize, TorListRejected> {
    let text = std::str::from_utf8(body).map_err(|_| TorListRejected::NotText)?;
    let trimmed = text.trim_start_matches('\u{feff}').trim();
    if trimmed.is_empty() {
        return Err(TorListRejected::Empty);
    }
    if trimmed.starts_with('<') {
        return Err(TorListRejected::Html);
    }
    let mut addresses = 0;
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if line.parse::<IpAddr>().is_err() {
            return Err(TorListRejected::NotAnAddress {
                line: index + 1,
                text: crate::text::truncate(line, 60),
            });
        }
        addresses += 1;
    }
    if addresses == 0 {
        return Err(TorListRejected::NoAddress);
    }
    Ok(addresses)
}

/// The fetcher's EMF line: `TorExitListAgeSeconds` (since the stored list was written; 0 after a
/// good fetch; absent when there is none), `TorExitListAddresses` and `TorExitListFetchFailed`.
/// template.yaml alarms on the age (past 24 hours).
pub fn tor_emf_line(
    age_seconds: Option<u64>,
    addresses: Option<usize>,
    failed: bool,
    timestamp_ms: u128,
) -> String {
    let mut metrics = vec![serde_json::json!({"Name": "TorExitListFetchFailed", "Unit": "Count"})];
    let mut line = serde_json::json!({"TorExitListFetchFailed": u64::from(failed)});
    if let Some(age) = age_seconds {
        metrics.push(serde_json::json!({"Name": "TorExitListAgeSeconds", "Unit": "Seconds"}));
        line["TorExitListAgeSeconds"] = serde_json::json!(age);
    }
    if let Some(n) = addresses {
        metrics.push(serde_json::json!({"Name": "TorExitListAddresses", "Unit": "Count"}));
        line["TorExitListAddresses"] = serde_json::json!(n);
    }
    line["_aws"] = serde_json::json!({
        "Timestamp": timestamp_ms as u64,
        "CloudWatchMetrics": [{
            "Namespace": "sesguard",
            "Dimensions": [[]],
            "Metrics": metrics,
        }],
    });
    line.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_list_of_addresses_is_accepted() {
        assert_eq!(
            validate_tor_list(b"# exits\n192.0.2.1\n\n2001:db8::7\n198.51.100.9\n"),
            Ok(3)
        );
        assert_eq!(validate_tor_list(b""), Err(TorListRejected::Empty));
        assert_eq!(validate_tor_list(b" \n\n"), Err(TorListRejected::Empty));
        assert_eq!(
            validate_tor_list(b"<!DOCTYPE html><html><body>502</body></html>"),
            Err(TorListRejected::Html)
        );
        assert_eq!(
            validate_tor_list(b"# only\n# comments\n"),
            Err(TorListRejected::NoAddress)
        );
        assert_eq!(
            validate_tor_list(b"192.0.2.1\nExitAddress 192.0.2.2 2026-01-01\n"),
            Err(TorListRejected::NotAnAddress {
                line: 2,
                text: "ExitAddress 192.0.2.2 2026-01-01".into()
            })
        );
        assert_eq!(
            validate_tor_list(b"\xff\xfe"),
            Err(TorListRejected::NotText)
        );
    }

    #[test]
    fn the_fetcher_is_configured_by_its_own_variables() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| (*v).to_owned())
            }
        };
        assert!(TorFetchConfig::from_env(env(&[])).is_none(), "a detector");
        let config = TorFetchConfig::from_env(env(&[
            (
                TOR_SOURCE_URL,
                "https://check.torproject.org/torbulkexitlist",
            ),
            (
                "SESGUARD_TOR_EXIT_LIST",
                "s3://config-bucket/tor-exit-list.txt",
            ),
        ]))
        .expect("a fetcher")
        .expect("valid");
        assert_eq!(config.destination.prefix, "tor-exit-list.txt");
        assert_eq!(config.timeout, DEFAULT_FETCH_TIMEOUT);
        assert_eq!(config.max_bytes, DEFAULT_FETCH_MAX_BYTES);
        let err = TorFetchConfig::from_env(env(&[(TOR_SOURCE_URL, "https://x")]))
            .expect("a fetcher")
            .expect_err("no destination");
        assert!(
            err.to_string().starts_with("SESGUARD_TOR_EXIT_LIST: "),
            "{err}"
        );
    }

    #[test]
    fn the_age_is_a_metric_only_when_there_is_a_list() {
        let line: serde_json::Value =
            serde_json::from_str(&tor_emf_line(Some(7200), None, true, 1)).expect("json");
        assert_eq!(line["TorExitListAgeSeconds"], 7200);
        assert_eq!(line["TorExitListFetchFailed"], 1);
        assert_eq!(
            line["_aws"]["CloudWatchMetrics"][0]["Metrics"]
                .as_array()
                .map(Vec::len),
            Some(2)
        );
        let line: serde_json::Value =
            serde_json::from_str(&tor_emf_line(None, None, true, 1)).expect("json");
        assert!(line.get("TorExitListAgeSeconds").is_none());
    }
}
