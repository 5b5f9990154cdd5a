//! The Lambda's configuration, from its environment variables (names fixed: the template
//! passes them).

/// The Lambda's configuration, from its environment (names fixed: the template passes them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LambdaConfig {
    pub table_name: String,
    pub topic_arn: String,
    pub overrides: crate::config::Overrides,
    /// `SESGUARD_CONFIG`: the TOML file (relative paths are relative to `LAMBDA_TASK_ROOT`).
    pub config_path: Option<std::path::PathBuf>,
    /// `SESGUARD_CONFIG` when it is `s3://bucket/key` (`config_path` is then `None`): read at
    /// the cold start and again every `config_refresh` ([`super::LiveConfig`]).
    pub config_url: Option<crate::s3url::S3Url>,
    /// `SESGUARD_TOR_EXIT_LIST` when it is `s3://bucket/key` (`overrides.tor_exit_list` is then
    /// `None`): read like `config_url`.
    pub tor_url: Option<crate::s3url::S3Url>,
    /// `SESGUARD_CONFIG_REFRESH_SECONDS` (default [`DEFAULT_CONFIG_REFRESH`]): how often a warm
    /// function asks S3 whether `config_url` or `tor_url` changed.
    pub config_refresh: std::time::Duration,
    /// `SESGUARD_CLAIM_LEASE_SECONDS`, if set.
    pub claim_lease: Option<std::time::Duration>,
    /// `SESGUARD_TRAIL_BUCKET`: the only bucket the S3 path reads, if set (a notification naming
    /// another one fails).
    pub trail_bucket: Option<String>,
    /// `SESGUARD_TRAIL_BUCKET_OWNER`: the account that must own it (S3's expected bucket owner
    /// check), if set.
    pub trail_bucket_owner: Option<String>,
    /// `SESGUARD_SIGNAL_FORMAT`: what the SNS message holds, `sesguard` (the signal JSON, the
    /// default) or `ocsf` (an OCSF Detection Finding).
    pub signal_format: crate::output::SignalFormat,
    /// `SESGUARD_HEARTBEAT_ROLE_ARN`: the function's own role, whose heartbeat canaries are
    /// recorded and never evaluated (see `crate::heartbeat`), if set.
    pub heartbeat_role_arn: Option<String>,
    /// `SESGUARD_HEARTBEAT_REGIONS` (comma-separated; default the function's `AWS_REGION`): the
    /// regions a heartbeat run calls and watches.
    pub heartbeat_regions: Vec<String>,
    /// `SESGUARD_HEARTBEAT_MAX_DELAY_MINUTES` (default 30): a region whose last canary is older
    /// (wall clock) is blind.
    pub heartbeat_max_delay: crate::model::Seconds,
    /// `SESGUARD_SECURITY_HUB_PRODUCT_ARN`: when set, every signal is imported into Security Hub
    /// as a finding of this product (the account's `product/<account>/default`) before it is
    /// published to SNS.
    pub security_hub: Option<crate::output::asff::ProductArn>,
}

/// A configuration the function cannot start with; names the variable.
#[derive(Debug, thiserror::Error)]
#[error("{variable}: {message}")]
pub struct StartupError {
    pub variable: &'static str,
    pub message: String,
}

pub const TABLE_NAME: &str = "SESGUARD_TABLE_NAME";
pub const TOPIC_ARN: &str = "SESGUARD_TOPIC_ARN";
pub const LEARNING_DAYS: &str = "SESGUARD_LEARNING_DAYS";
pub const FORGET_DAYS: &str = "SESGUARD_FORGET_DAYS";
pub const SEQUENCE_WINDOW_MINUTES: &str = "SESGUARD_SEQUENCE_WINDOW_MINUTES";
pub const DEDUP_MINUTES: &str = "SESGUARD_DEDUP_MINUTES";
pub const SANDBOX_EXIT_REGIONS: &str = "SESGUARD_SANDBOX_EXIT_REGIONS";
pub const SANDBOX_EXIT_WINDOW_MINUTES: &str = "SESGUARD_SANDBOX_EXIT_WINDOW_MINUTES";
pub const CHAIN_WINDOW_HOURS: &str = "SESGUARD_CHAIN_WINDOW_HOURS";
pub const CONFIG: &str = "SESGUARD_CONFIG";
pub const TOR_EXIT_LIST: &str = "SESGUARD_TOR_EXIT_LIST";
/// Seconds a signal claim protects an invocation that is publishing it (default 45,
/// `sesguard_lambda::aws::dynamodb::CLAIM_LEASE`).
pub const CLAIM_LEASE_SECONDS: &str = "SESGUARD_CLAIM_LEASE_SECONDS";
pub const TRAIL_BUCKET: &str = "SESGUARD_TRAIL_BUCKET";
pub const TRAIL_BUCKET_OWNER: &str = "SESGUARD_TRAIL_BUCKET_OWNER";
pub const SIGNAL_FORMAT: &str = "SESGUARD_SIGNAL_FORMAT";
/// Seconds between two checks of a configuration (or Tor list) in S3 by a warm function.
pub const CONFIG_REFRESH_SECONDS: &str = "SESGUARD_CONFIG_REFRESH_SECONDS";
/// Five minutes: a change applies within minutes, for one conditional GetObject per warm
/// instance per refresh.
pub const DEFAULT_CONFIG_REFRESH: std::time::Duration = std::time::Duration::from_secs(300);

/// `s3://bucket/key` of one object (a key, not a prefix), if `value` is an `s3://` URL.
fn s3_object(
    variable: &'static str,
    value: Option<&str>,
) -> Result<Option<crate::s3url::S3Url>, StartupError> {
    let Some(value) = value.filter(|v| crate::s3url::S3Url::is_s3(v)) else {
        return Ok(None);
    };
    let url = crate::s3url::S3Url::parse(value.trim())
        .map_err(|message| StartupError { variable, message })?;
    if url.prefix.is_empty() || url.prefix.ends_with('/') {
        return Err(StartupError {
            variable,
            message: format!("{value}: name an object (s3://bucket/key), not a bucket or folder"),
        });
    }
    Ok(Some(url))
}
pub const HEARTBEAT_ROLE_ARN: &str = "SESGUARD_HEARTBEAT_ROLE_ARN";
pub const HEARTBEAT_REGIONS: &str = "SESGUARD_HEARTBEAT_REGIONS";
pub const HEARTBEAT_MAX_DELAY_MINUTES: &str = "SESGUARD_HEARTBEAT_MAX_DELAY_MINUTES";
/// Twice the default schedule (15 minutes): one late or lost canary is not an outage.
pub const DEFAULT_HEARTBEAT_MAX_DELAY_MINUTES: u32 = 30;

/// Whether `name` is shaped like an AWS region (`eu-west-1`, `us-gov-west-1`, `cn-north-1`).
fn is_region(name: &str) -> bool {
    let mut parts = name.split('-');
    let first = parts.next().unwrap_or_default();
    let rest: Vec<&str> = parts.collect();
    first.len() == 2
        && first.bytes().all(|b| b.is_ascii_lowercase())
        && rest.len() >= 2
        && rest
            .last()
            .is_some_and(|n| !n.is_empty() && n.len() <= 2 && n.bytes().all(|b| b.is_ascii_digit()))
        && rest[..rest.len() - 1]
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase()))
}

/// The heartbeat's regions: `SESGUARD_HEARTBEAT_REGIONS`, else `AWS_REGION` (none if neither).
fn heartbeat_regions(
    lookup: &impl Fn(&str) -> Option<String>,
) -> Result<Vec<String>, StartupError> {
    let listed = lookup(HEARTBEAT_REGIONS).filter(|v| !v.trim().is_empty());
    let text = match listed {
        Some(text) => text,
        None => {
            return Ok(lookup("AWS_REGION")
                .filter(|r| is_region(r))
                .into_iter()
                .collect());
        }
    };
    let mut regions: Vec<String> = Vec::new();
    for name in text.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        if !is_region(name) {
            return Err(StartupError {
                variable: HEARTBEAT_REGIONS,
                message: format!(
                    "{:?} is not a region name (comma-separated, e.g. us-east-1,eu-west-1)",
                    crate::text::truncate(name, 40)
                ),
            });
        }
        if !regions.iter().any(|r| r == name) {
            regions.push(name.to_owned());
        }
    }
    Ok(regions)
}
pub const SECURITY_HUB_PRODUCT_ARN: &str = "SESGUARD_SECURITY_HUB_PRODUCT_ARN";

/// The configuration file compiled into the function: used when `SESGUARD_CONFIG` names
/// `sesguard.toml` and the package holds no such file (SAM's cargo-lambda build ships only the
/// binary).
pub const EMBEDDED_CONFIG: &str = include_str!("../../sesguard.toml");

impl LambdaConfig {
    /// Reads the configuration through `lookup` (the process environment in production).
    pub fn from_env(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, StartupError> {
        let required = |variable: &'static str| {
            lookup(variable)
                .filter(|v| !v.trim().is_empty())
                .ok_or_else(|| StartupError {
                    variable,
                    message: "required but not set".to_owned(),
                })
        };
        let number = |variable: &'static str| -> Result<Option<u32>, StartupError> {
            match lookup(variable).filter(|v| !v.trim().is_empty()) {
                None => Ok(None),
                Some(text) => text.trim().parse().map(Some).map_err(|_| StartupError {
                    variable,
                    message: format!("{text:?} is not a whole number"),
                }),
            }
        };
        let path = |variable: &'static str| {
            lookup(variable)
                .filter(|v| !v.trim().is_empty())
                .map(Into::into)
        };
        let signal_format = match lookup(SIGNAL_FORMAT).filter(|v| !v.trim().is_empty()) {
            None => crate::output::SignalFormat::default(),
            Some(text) => {
                crate::output::SignalFormat::parse(&text).ok_or_else(|| StartupError {
                    variable: SIGNAL_FORMAT,
                    message: format!(
                        "{:?} is not one of {}",
                        crate::text::truncate(&text, 40),
                        crate::output::SignalFormat::NAMES.join(", ")
                    ),
                })?
            }
        };
        let config_url = s3_object(CONFIG, lookup(CONFIG).as_deref())?;
        let tor_url = s3_object(TOR_EXIT_LIST, lookup(TOR_EXIT_LIST).as_deref())?;
        let security_hub = match lookup(SECURITY_HUB_PRODUCT_ARN).filter(|v| !v.trim().is_empty()) {
            None => None,
            Some(text) => Some(
                crate::output::asff::ProductArn::parse(text.trim()).ok_or_else(|| StartupError {
                    variable: SECURITY_HUB_PRODUCT_ARN,
                    message: format!(
                        "{:?} is not arn:<partition>:securityhub:<region>:<account>:product/<account>/default",
                        crate::text::truncate(&text, 120)
                    ),
                })?,
            ),
        };
        Ok(LambdaConfig {
            table_name: required(TABLE_NAME)?,
            topic_arn: required(TOPIC_ARN)?,
            overrides: crate::config::Overrides {
                learning_days: number(LEARNING_DAYS)?,
                forget_days: number(FORGET_DAYS)?,
                sequence_window_minutes: number(SEQUENCE_WINDOW_MINUTES)?,
                dedup_minutes: number(DEDUP_MINUTES)?,
                sandbox_exit_regions: number(SANDBOX_EXIT_REGIONS)?,
                sandbox_exit_window_minutes: number(SANDBOX_EXIT_WINDOW_MINUTES)?,
                chain_window_hours: number(CHAIN_WINDOW_HOURS)?,
                tor_exit_list: path(TOR_EXIT_LIST).filter(|_| tor_url.is_none()),
            },
            config_path: path(CONFIG).filter(|_| config_url.is_none()),
            config_url,
            tor_url,
            config_refresh: number(CONFIG_REFRESH_SECONDS)?.map_or(DEFAULT_CONFIG_REFRESH, |s| {
                std::time::Duration::from_secs(u64::from(s))
            }),
            claim_lease: number(CLAIM_LEASE_SECONDS)?
                .map(|s| std::time::Duration::from_secs(u64::from(s))),
            trail_bucket: lookup(TRAIL_BUCKET).filter(|v| !v.trim().is_empty()),
            trail_bucket_owner: lookup(TRAIL_BUCKET_OWNER).filter(|v| !v.trim().is_empty()),
            signal_format,
            heartbeat_role_arn: match lookup(HEARTBEAT_ROLE_ARN).filter(|v| !v.trim().is_empty()) {
                Some(arn) if !arn.starts_with("arn:") || !arn.contains(":role/") => {
                    return Err(StartupError {
                        variable: HEARTBEAT_ROLE_ARN,
                        message: format!("{arn:?} is not an IAM role ARN"),
                    });
                }
                other => other,
            },
            heartbeat_regions: heartbeat_regions(&lookup)?,
            heartbeat_max_delay: match number(HEARTBEAT_MAX_DELAY_MINUTES)? {
                Some(0) => {
                    return Err(StartupError {
                        variable: HEARTBEAT_MAX_DELAY_MINUTES,
                        message: "must be at least 1".to_owned(),
                    });
                }
                minutes => {
                    crate::model::Seconds::from(
                        minutes.unwrap_or(DEFAULT_HEARTBEAT_MAX_DELAY_MINUTES),
                    ) * crate::model::MINUTE
                }
            },
            security_hub,
        })
    }

    /// The heartbeat's settings, if the heartbeat is on (`SESGUARD_HEARTBEAT_ROLE_ARN` set).
    pub fn heartbeat(&self) -> Option<crate::heartbeat::Heartbeat> {
        let role_arn = self.heartbeat_role_arn.clone()?;
        // arn:<partition>:iam::<account>:role/<name>: the account is the fifth field.
        let account_id = role_arn.split(':').nth(4).unwrap_or_default().to_owned();
        Some(crate::heartbeat::Heartbeat {
            regions: self.heartbeat_regions.clone(),
            max_delay: self.heartbeat_max_delay,
            account_id,
            role_arn,
        })
    }

    /// Loads the engine configuration: the file (or the embedded default), then the variables.
    pub fn engine_config(
        &self,
        task_root: Option<&std::path::Path>,
    ) -> Result<crate::config::Config, StartupError> {
        use crate::config::Config;
        let failed = |err: crate::config::ConfigError| StartupError {
            variable: CONFIG,
            message: err.to_string(),
        };
        let Some(path) = &self.config_path else {
            return Config::load(None, &self.overrides).map_err(failed);
        };
        let resolved = match task_root {
            Some(root) if path.is_relative() => root.join(path),
            _ => path.clone(),
        };
        if !resolved.exists() && path.as_os_str() == "sesguard.toml" {
            let base = task_root
                .unwrap_or(std::path::Path::new("."))
                .join("sesguard.toml");
            return Config::parse(EMBEDDED_CONFIG, &base, &self.overrides).map_err(failed);
        }
        Config::load(Some(&resolved), &self.overrides).map_err(failed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: std::collections::HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn a_missing_required_variable_is_named() {
        let err = LambdaConfig::from_env(env(&[(TOPIC_ARN, "arn")])).expect_err("no table");
        assert_eq!(err.to_string(), "SESGUARD_TABLE_NAME: required but not set");
        let err = LambdaConfig::from_env(env(&[(TABLE_NAME, "t")])).expect_err("no topic");
        assert_eq!(err.to_string(), "SESGUARD_TOPIC_ARN: required but not set");
    }

    #[test]
    fn numbers_and_paths_come_from_their_variables() {
        let config = LambdaConfig::from_env(env(&[
            (TABLE_NAME, "t"),
            (TOPIC_ARN, "arn"),
            (LEARNING_DAYS, "7"),
            (FORGET_DAYS, "28"),
            (SEQUENCE_WINDOW_MINUTES, "30"),
            (DEDUP_MINUTES, "15"),
            (TOR_EXIT_LIST, "tor.txt"),
        ]))
        .expect("config");
        assert_eq!(config.overrides.learning_days, Some(7));
        assert_eq!(config.overrides.sequence_window_minutes, Some(30));
        assert_eq!(config.overrides.dedup_minutes, Some(15));
        assert_eq!(
            config.overrides.tor_exit_list.as_deref(),
            Some(std::path::Path::new("tor.txt"))
        );
        let err = LambdaConfig::from_env(env(&[
            (TABLE_NAME, "t"),
            (TOPIC_ARN, "a"),
            (DEDUP_MINUTES, "an hour"),
        ]))
        .expect_err("bad number");
        assert!(
            err.to_string().starts_with("SESGUARD_DEDUP_MINUTES: "),
            "{err}"
        );
    }

    #[test]
    fn the_signal_format_defaults_to_sesguard_and_a_wrong_one_is_named() {
        use crate::output::SignalFormat;
        let base = [(TABLE_NAME, "t"), (TOPIC_ARN, "arn")];
        let config = LambdaConfig::from_env(env(&base)).expect("config");
        assert_eq!(config.signal_format, SignalFormat::Sesguard);
        let config = LambdaConfig::from_env(env(&[base[0], base[1], (SIGNAL_FORMAT, "ocsf")]))
            .expect("ocsf");
        assert_eq!(config.signal_format, SignalFormat::Ocsf);
        let err = LambdaConfig::from_env(env(&[base[0], base[1], (SIGNAL_FORMAT, "OCSF 1.1")]))
            .expect_err("unknown format");
        assert_eq!(
            err.to_string(),
            "SESGUARD_SIGNAL_FORMAT: \"OCSF 1.1\" is not one of sesguard, ocsf"
        );
    }

    #[test]
    fn s3_urls_name_objects_read_at_run_time_and_paths_stay_paths() {
        let config = LambdaConfig::from_env(env(&[
            (TABLE_NAME, "t"),
            (TOPIC_ARN, "arn"),
            (CONFIG, "s3://config-bucket/sesguard.toml"),
            (TOR_EXIT_LIST, "s3://config-bucket/tor-exit-list.txt"),
            (CONFIG_REFRESH_SECONDS, "1"),
        ]))
        .expect("config");
        assert_eq!(config.config_path, None);
        assert_eq!(config.overrides.tor_exit_list, None);
        let url = config.config_url.as_ref().expect("config url");
        assert_eq!(
            (url.bucket.as_str(), url.prefix.as_str()),
            ("config-bucket", "sesguard.toml")
        );
        assert_eq!(
            config.tor_url.as_ref().map(|u| u.prefix.as_str()),
            Some("tor-exit-list.txt")
        );
        assert_eq!(config.config_refresh, std::time::Duration::from_secs(1));

        let packaged = LambdaConfig::from_env(env(&[
            (TABLE_NAME, "t"),
            (TOPIC_ARN, "arn"),
            (CONFIG, "sesguard.toml"),
        ]))
        .expect("config");
        assert_eq!(packaged.config_url, None);
        assert_eq!(packaged.tor_url, None);
        assert_eq!(
            packaged.config_path.as_deref(),
            Some(std::path::Path::new("sesguard.toml"))
        );
        assert_eq!(packaged.config_refresh, DEFAULT_CONFIG_REFRESH);

        for bad in [
            "s3://config-bucket",
            "s3://config-bucket/folder/",
            "s3://Bad_Bucket/x",
        ] {
            let err =
                LambdaConfig::from_env(env(&[(TABLE_NAME, "t"), (TOPIC_ARN, "a"), (CONFIG, bad)]))
                    .expect_err(bad);
            assert!(err.to_string().starts_with("SESGUARD_CONFIG: "), "{err}");
        }
    }

    #[test]
    fn the_heartbeat_role_is_a_role_arn() {
        let config = LambdaConfig::from_env(env(&[
            (TABLE_NAME, "t"),
            (TOPIC_ARN, "arn"),
            (
                HEARTBEAT_ROLE_ARN,
                "arn:aws:iam::111122223333:role/sesguard",
            ),
        ]))
        .expect("config");
        assert_eq!(
            config.heartbeat_role_arn.as_deref(),
            Some("arn:aws:iam::111122223333:role/sesguard")
        );
        let err = LambdaConfig::from_env(env(&[
            (TABLE_NAME, "t"),
            (TOPIC_ARN, "arn"),
            (HEARTBEAT_ROLE_ARN, "sesguard"),
        ]))
        .expect_err("not an ARN");
        assert!(
            err.to_string().starts_with("SESGUARD_HEARTBEAT_ROLE_ARN: "),
            "{err}"
        );
    }

    #[test]
    fn the_heartbeat_watches_the_listed_regions_else_the_functions_own() {
        let role = "arn:aws:iam::111122223333:role/path/sesguard-fn";
        let config = LambdaConfig::from_env(env(&[
            (TABLE_NAME, "t"),
            (TOPIC_ARN, "arn"),
            ("AWS_REGION", "eu-west-1"),
        ]))
        .expect("config");
        assert_eq!(config.heartbeat(), None, "off without the role");
        assert_eq!(config.heartbeat_regions, ["eu-west-1"]);
        let config = LambdaConfig::from_env(env(&[
            (TABLE_NAME, "t"),
            (TOPIC_ARN, "arn"),
            ("AWS_REGION", "eu-west-1"),
            (HEARTBEAT_ROLE_ARN, role),
            (
                HEARTBEAT_REGIONS,
                " us-east-1, eu-west-1,us-gov-west-1,,us-east-1 ",
            ),
            (HEARTBEAT_MAX_DELAY_MINUTES, "45"),
        ]))
        .expect("config");
        let heartbeat = config.heartbeat().expect("on");
        assert_eq!(
            heartbeat.regions,
            ["us-east-1", "eu-west-1", "us-gov-west-1"]
        );
        assert_eq!(heartbeat.max_delay, 45 * crate::model::MINUTE);
        assert_eq!(heartbeat.account_id, "111122223333");
        assert_eq!(heartbeat.role_arn, role);
        let default = LambdaConfig::from_env(env(&[
            (TABLE_NAME, "t"),
            (TOPIC_ARN, "arn"),
            (HEARTBEAT_ROLE_ARN, role),
        ]))
        .expect("config");
        assert_eq!(
            default.heartbeat().map(|h| h.max_delay),
            Some(30 * crate::model::MINUTE)
        );
        for (variable, bad) in [
            (HEARTBEAT_REGIONS, "eu-west-1,eu west 1"),
            (HEARTBEAT_REGIONS, "*"),
            (HEARTBEAT_REGIONS, "EU-WEST-1"),
            (HEARTBEAT_MAX_DELAY_MINUTES, "0"),
            (HEARTBEAT_MAX_DELAY_MINUTES, "half an hour"),
        ] {
            let err = LambdaConfig::from_env(env(&[
                (TABLE_NAME, "t"),
                (TOPIC_ARN, "a"),
                (variable, bad),
            ]))
            .expect_err(bad);
            assert!(
                err.to_string().starts_with(&format!("{variable}: ")),
                "{err}"
            );
        }
    }

    #[test]
    fn security_hub_is_off_unless_its_product_arn_is_set_and_a_wrong_one_is_named() {
        let base = [(TABLE_NAME, "t"), (TOPIC_ARN, "arn")];
        assert_eq!(
            LambdaConfig::from_env(env(&base))
                .expect("config")
                .security_hub,
            None
        );
        let arn = "arn:aws:securityhub:eu-west-1:111122223333:product/111122223333/default";
        let config =
            LambdaConfig::from_env(env(&[base[0], base[1], (SECURITY_HUB_PRODUCT_ARN, arn)]))
                .expect("config");
        assert_eq!(config.security_hub.map(|p| p.arn()).as_deref(), Some(arn));
        let err = LambdaConfig::from_env(env(&[
            base[0],
            base[1],
            (
                SECURITY_HUB_PRODUCT_ARN,
                "arn:aws:securityhub:eu-west-1:111122223333:hub/default",
            ),
        ]))
        .expect_err("not a product ARN");
        assert!(
            err.to_string()
                .starts_with("SESGUARD_SECURITY_HUB_PRODUCT_ARN: "),
            "{err}"
        );
    }

    #[test]
    fn the_packaged_config_falls_back_to_the_embedded_copy_and_variables_override_it() {
        let config = LambdaConfig::from_env(env(&[
            (TABLE_NAME, "t"),
            (TOPIC_ARN, "arn"),
            (CONFIG, "sesguard.toml"),
            (DEDUP_MINUTES, "5"),
        ]))
        .expect("config");
        let root = std::env::temp_dir().join("sesguard-no-such-task-root");
        let engine = config.engine_config(Some(&root)).expect("embedded config");
        assert_eq!(engine.settings.dedup, 5 * 60);
        let missing = LambdaConfig {
            config_path: Some("other.toml".into()),
            ..config
        };
        let err = missing
            .engine_config(Some(&root))
            .expect_err("missing file");
        assert!(
            err.to_string().starts_with("SESGUARD_CONFIG: cannot read "),
            "{err}"
        );
    }
}
