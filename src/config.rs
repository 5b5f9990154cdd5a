//! Settings, suppressions and the Tor exit list: one [`Config`], read from a TOML file (the same
//! file for the CLI and the Lambda), then overridden by flags or environment variables.
//!
//! ```toml
//! learning_days = 7
//! forget_days = 28
//! sequence_window_minutes = 60
//! dedup_minutes = 60
//! sandbox_exit_regions = 3          # ses-sandbox-exit-burst: this many regions …
//! sandbox_exit_window_minutes = 5   # … within this many minutes
//! chain_window_hours = 24           # ses-abuse-chain: the stages within this many hours
//! tor_exit_list = "tor-exits.txt"   # relative to this file
//!
//! [[suppressions]]
//! rule = "ses-discovery-long-term-key"   # optional: all rules when absent
//! principal = "arn:aws:iam::111122223333:user/ci-*"   # optional glob on the principal
//! user_arn = "arn:aws:sts::111122223333:assumed-role/ci/*"   # optional glob on the caller's ARN
//! source_ip = "203.0.113.0/24"           # optional CIDR (or one address)
//! user_agent = "*Terraform*"             # optional glob; only with principal, user_arn or source_ip
//! allow_broad = false                    # true lets a glob or CIDR match anything (with a reason)
//! expires = "2027-01-01"                 # optional; compared with event time
//! reason = "deploy pipeline health check"
//!
//! [rules."ses-modification"]
//! enabled = false                        # not evaluated, no state written
//! [rules."ses-identity-deleted"]
//! shadow = true                          # evaluated and stateful; signals logged, not published
//! ```

use std::collections::{BTreeMap, HashSet};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use globset::{GlobBuilder, GlobMatcher};
use ipnet::IpNet;
use serde::Deserialize;

pub use crate::model::Settings;
use crate::model::{DAY, HOUR, MINUTE, Seconds, Subject};
use crate::rules;
use crate::text::{Arn, truncate};
use crate::time::parse_date_or_time;

/// A configuration that cannot be used, with what to fix.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Toml { path: PathBuf, message: String },
    #[error("{path}: suppression {index}: {message}")]
    Suppression {
        path: PathBuf,
        index: usize,
        message: String,
    },
    /// The Tor exit list named in the config file (or by the flag, `config` then `None`) cannot
    /// be read: both paths are named, the list's as resolved against the config's folder.
    #[error("cannot read the Tor exit list {}{}: {source}", path.display(), named_in(config))]
    TorListRead {
        path: PathBuf,
        config: Option<PathBuf>,
        source: std::io::Error,
    },
    #[error("Tor exit list {path}, line {line}: {text:?} is not an IP address")]
    TorList {
        path: PathBuf,
        line: usize,
        text: String,
    },
    #[error("{name}: {message}")]
    Setting { name: String, message: String },
    /// A `[rules."<id>"]` table that cannot be used (an unknown rule id, contradicting modes).
    #[error("{path}: [rules.{id:?}]: {message}")]
    Rule {
        path: PathBuf,
        id: String,
        message: String,
    },
}

/// Overrides from flags or environment variables; `None` keeps the file's value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Overrides {
    pub learning_days: Option<u32>,
    pub forget_days: Option<u32>,
    pub sequence_window_minutes: Option<u32>,
    pub dedup_minutes: Option<u32>,
    pub sandbox_exit_regions: Option<u32>,
    pub sandbox_exit_window_minutes: Option<u32>,
    pub chain_window_hours: Option<u32>,
    pub tor_exit_list: Option<PathBuf>,
}

/// ` (tor_exit_list in FILE)` for a list the config file names; nothing for one from a flag.
fn named_in(config: &Option<PathBuf>) -> String {
    config
        .as_ref()
        .map(|c| format!(" (tor_exit_list in {})", c.display()))
        .unwrap_or_default()
}

/// Everything the engine is configured with.
#[derive(Debug, Default)]
pub struct Config {
    pub settings: Settings,
    pub suppressions: Vec<Suppression>,
    pub tor: TorList,
    /// Each rule's mode (`[rules."<id>"]`): live unless the file says otherwise.
    pub modes: RuleModes,
}

/// How a rule runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// Evaluated; its signals are published.
    #[default]
    Live,
    /// Evaluated and stateful; its signals are marked `shadow`, logged and counted, not
    /// published (the Lambda) or printed with the mark (`sesguard scan`).
    Shadow,
    /// Not evaluated at all: no state read or written.
    Disabled,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Live => "live",
            Mode::Shadow => "shadow",
            Mode::Disabled => "disabled",
        }
    }
}

/// The rules not live, by id (data for the engine, which never names a rule).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RuleModes {
    modes: BTreeMap<&'static str, Mode>,
}

impl RuleModes {
    /// The mode of the rule `id` (live when the configuration does not name it).
    pub fn of(&self, id: &str) -> Mode {
        self.modes.get(id).copied().unwrap_or_default()
    }

    /// Sets a rule's mode (registered rule ids only: the id is the registry's).
    pub fn set(&mut self, id: &'static str, mode: Mode) {
        if mode == Mode::Live {
            self.modes.remove(id);
        } else {
            self.modes.insert(id, mode);
        }
    }

    fn compile(path: &Path, file: &BTreeMap<String, RuleFile>) -> Result<RuleModes, ConfigError> {
        let mut modes = RuleModes::default();
        for (id, spec) in file {
            let failed = |message: String| ConfigError::Rule {
                path: path.to_owned(),
                id: truncate(id, 100),
                message,
            };
            let rule = rules::by_id(id).ok_or_else(|| {
                let known: Vec<&str> = rules::ALL.iter().map(|r| r.id).collect();
                failed(format!(
                    "unknown rule id; the rules are {}",
                    known.join(", ")
                ))
            })?;
            let mode = match (spec.enabled.unwrap_or(true), spec.shadow.unwrap_or(false)) {
                (true, false) => Mode::Live,
                (true, true) => Mode::Shadow,
                (false, false) => Mode::Disabled,
                (false, true) => {
                    return Err(failed(
                        "enabled = false and shadow = true contradict each other: a disabled \
                         rule is not evaluated, a shadow rule is; keep one"
                            .to_owned(),
                    ));
                }
            };
            modes.set(rule.id, mode);
        }
        Ok(modes)
    }
}

/// One `[rules."<id>"]` table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFile {
    enabled: Option<bool>,
    shadow: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    learning_days: Option<u32>,
    forget_days: Option<u32>,
    sequence_window_minutes: Option<u32>,
    dedup_minutes: Option<u32>,
    sandbox_exit_regions: Option<u32>,
    sandbox_exit_window_minutes: Option<u32>,
    chain_window_hours: Option<u32>,
    tor_exit_list: Option<PathBuf>,
    #[serde(default)]
    suppressions: Vec<SuppressionFile>,
    #[serde(default)]
    rules: BTreeMap<String, RuleFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SuppressionFile {
    rule: Option<String>,
    principal: Option<String>,
    user_arn: Option<String>,
    #[serde(default)]
    allow_broad: bool,
    source_ip: Option<String>,
    user_agent: Option<String>,
    expires: Option<toml::Value>,
    reason: Option<String>,
}

impl Config {
    /// Loads `path` (if any), applies `overrides`, and reads the Tor exit list.
    pub fn load(path: Option<&Path>, overrides: &Overrides) -> Result<Config, ConfigError> {
        match path {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.to_owned(),
                    source,
                })?;
                Self::parse(&text, path, overrides)
            }
            None => Self::build(ConfigFile::default(), Path::new(""), overrides),
        }
    }

    /// Parses TOML text as if read from `path` (relative paths in it are relative to its folder).
    pub fn parse(text: &str, path: &Path, overrides: &Overrides) -> Result<Config, ConfigError> {
        let file: ConfigFile = toml::from_str(text).map_err(|err| ConfigError::Toml {
            path: path.to_owned(),
            message: err.to_string().trim_end().to_owned(),
        })?;
        Self::build(file, path, overrides)
    }

    fn build(file: ConfigFile, path: &Path, overrides: &Overrides) -> Result<Config, ConfigError> {
        let base = path.parent().map(Path::to_owned);
        let suppressions = file
            .suppressions
            .iter()
            .enumerate()
            .map(|(index, spec)| {
                Suppression::compile(spec).map_err(|message| ConfigError::Suppression {
                    path: path.to_owned(),
                    index: index + 1,
                    message,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let modes = RuleModes::compile(path, &file.rules)?;
        let mut settings = Settings::default();
        let days = |v: u32| Seconds::from(v) * DAY;
        let minutes = |v: u32| Seconds::from(v) * MINUTE;
        if let Some(v) = overrides.learning_days.or(file.learning_days) {
            settings.learning = days(v);
        }
        if let Some(v) = overrides.forget_days.or(file.forget_days) {
            settings.forget = days(v);
        }
        if let Some(v) = overrides
            .sequence_window_minutes
            .or(file.sequence_window_minutes)
        {
            settings.window = minutes(v);
        }
        if let Some(v) = overrides.dedup_minutes.or(file.dedup_minutes) {
            settings.dedup = minutes(v);
        }
        if let Some(v) = overrides.sandbox_exit_regions.or(file.sandbox_exit_regions) {
            if v < 2 {
                return Err(ConfigError::Setting {
                    name: "sandbox_exit_regions".to_owned(),
                    message: format!("must be at least 2 (a burst spans regions), not {v}"),
                });
            }
            settings.sandbox_exit_regions = v as usize;
        }
        if let Some(v) = overrides
            .sandbox_exit_window_minutes
            .or(file.sandbox_exit_window_minutes)
        {
            if v == 0 {
                return Err(ConfigError::Setting {
                    name: "sandbox_exit_window_minutes".to_owned(),
                    message: "must be at least 1".to_owned(),
                });
            }
            settings.sandbox_exit_window = minutes(v);
        }
        if let Some(v) = overrides.chain_window_hours.or(file.chain_window_hours) {
            if v == 0 {
                return Err(ConfigError::Setting {
                    name: "chain_window_hours".to_owned(),
                    message: "must be at least 1".to_owned(),
                });
            }
            settings.chain_window = Seconds::from(v) * HOUR;
        }
        if settings.forget == 0 {
            return Err(ConfigError::Setting {
                name: "forget_days".to_owned(),
                message: "must be at least 1 (0 would make every sighting new)".to_owned(),
            });
        }
        // A path from the file is relative to the file; one from a flag, to the working directory.
        let tor_path = match (&overrides.tor_exit_list, &file.tor_exit_list) {
            (Some(flag), _) => Some((flag.clone(), None)),
            (None, Some(from_file)) => Some((
                match &base {
                    Some(base) if from_file.is_relative() => base.join(from_file),
                    _ => from_file.clone(),
                },
                Some(path.to_owned()),
            )),
            (None, None) => None,
        };
        let tor = match tor_path {
            Some((tor_path, config)) => TorList::load(&tor_path).map_err(|err| match err {
                ConfigError::Read { path, source } => ConfigError::TorListRead {
                    path,
                    config,
                    source,
                },
                other => other,
            })?,
            None => TorList::default(),
        };
        Ok(Config {
            settings,
            suppressions,
            tor,
            modes,
        })
    }
}

/// Principals of different kinds and accounts: a glob that matches them all matches anyone.
const BROAD_PRINCIPAL_PROBES: &[&str] = &[
    "arn:aws:iam::111111111111:user/probe",
    "arn:aws:iam::222222222222:role/path/probe",
    "arn:aws:iam::333333333333:root",
    "arn:aws:sts::444444444444:assumed-role/probe/session",
];
/// User agents of different tools: a glob that matches them all matches any agent.
const BROAD_AGENT_PROBES: &[&str] = &[
    "aws-cli/2.15.30 Python/3.11.8 Linux/6.1 exe/x86_64",
    "Boto3/1.34.0 md/Botocore#1.34.0",
    "console.amazonaws.com",
    "Mozilla/5.0",
    "x",
];

/// The role of a role-session ARN (`arn:<partition>:sts::<account>:assumed-role/<role>/<session>`)
/// as the principal CloudTrail's records give for it (`arn:<partition>:iam::<account>:role/<role>`;
/// a role path is not in the session ARN).
fn session_role(arn: &str) -> Option<String> {
    let arn = Arn::parse(arn)?;
    if arn.service != "sts" {
        return None;
    }
    let role = arn
        .resource
        .strip_prefix("assumed-role/")?
        .split('/')
        .next()?;
    Some(format!(
        "arn:{}:iam::{}:role/{role}",
        arn.partition, arn.account
    ))
}

/// One `[[suppressions]]` entry: every field given must match.
#[derive(Debug)]
pub struct Suppression {
    pub rule: Option<&'static str>,
    pub principal: Option<GlobMatcher>,
    /// The caller's ARN as CloudTrail names it (`userIdentity.arn`: for a role session, the
    /// `assumed-role` ARN with its session name).
    pub user_arn: Option<GlobMatcher>,
    pub source_ip: Option<IpNet>,
    pub user_agent: Option<GlobMatcher>,
    /// Event time from which the entry no longer applies.
    pub expires: Option<Seconds>,
    pub reason: Option<String>,
}

impl Suppression {
    fn compile(spec: &SuppressionFile) -> Result<Suppression, String> {
        let rule = match &spec.rule {
            Some(id) => Some(rules::by_id(id).map(|r| r.id).ok_or_else(|| {
                let known: Vec<&str> = rules::ALL.iter().map(|r| r.id).collect();
                format!("unknown rule {id:?}; the rules are {}", known.join(", "))
            })?),
            None => None,
        };
        let glob = |field: &str, pattern: &Option<String>| -> Result<Option<GlobMatcher>, String> {
            pattern
                .as_deref()
                .map(|p| {
                    GlobBuilder::new(p)
                        .case_insensitive(true)
                        .build()
                        .map(|g| g.compile_matcher())
                        .map_err(|err| format!("{field}: {err}"))
                })
                .transpose()
        };
        let source_ip = spec
            .source_ip
            .as_deref()
            .map(|text| {
                text.parse::<IpNet>()
                    .or_else(|_| text.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| format!("source_ip {text:?} is not a CIDR block or an IP address"))
            })
            .transpose()?;
        let expires = match &spec.expires {
            None => None,
            Some(toml::Value::String(text)) => {
                Some(parse_date_or_time(text).map_err(|e| format!("expires: {e}"))?)
            }
            Some(toml::Value::Datetime(dt)) => {
                Some(parse_date_or_time(&dt.to_string()).map_err(|e| format!("expires: {e}"))?)
            }
            Some(other) => {
                return Err(format!(
                    "expires: expected a date, found {}",
                    other.type_str()
                ));
            }
        };
        if let Some(principal) = &spec.principal
            && let Some(role) = session_role(principal)
        {
            return Err(format!(
                "principal {:?} names a role session, which is never a principal (a role's \
                 sessions are one principal, the role): use principal = {role:?}, or \
                 user_arn = {:?} to match the session as CloudTrail names the caller",
                truncate(principal, 200),
                truncate(principal, 200)
            ));
        }
        let suppression = Suppression {
            rule,
            principal: glob("principal", &spec.principal)?,
            user_arn: glob("user_arn", &spec.user_arn)?,
            source_ip,
            user_agent: glob("user_agent", &spec.user_agent)?,
            expires,
            reason: spec.reason.clone(),
        };
        if suppression.rule.is_none()
            && suppression.principal.is_none()
            && suppression.user_arn.is_none()
            && suppression.source_ip.is_none()
            && suppression.user_agent.is_none()
        {
            return Err("matches every signal of every rule; give at least one of rule, principal, user_arn, source_ip, user_agent".to_owned());
        }
        if suppression.user_agent.is_some()
            && suppression.principal.is_none()
            && suppression.user_arn.is_none()
            && suppression.source_ip.is_none()
        {
            // The caller writes its own user agent: alone, it would let an attacker holding a
            // key silence the rule by sending the agent the entry names.
            return Err(
                "user_agent is chosen by the caller: give principal, user_arn or source_ip with it"
                    .to_owned(),
            );
        }
        let broad = suppression.broad_fields();
        if !broad.is_empty() {
            if !spec.allow_broad {
                return Err(format!(
                    "{} would match any value, which silences the rule for everyone; narrow it, \
                     or set allow_broad = true with a reason",
                    broad.join(" and ")
                ));
            }
            if spec.reason.as_deref().is_none_or(|r| r.trim().is_empty()) {
                return Err("allow_broad = true needs a reason".to_owned());
            }
        }
        Ok(suppression)
    }

    /// The fields that would match any value: a principal or caller glob matching every probe
    /// principal (users, roles and the root, across accounts), a user-agent glob matching every
    /// probe agent, a CIDR block wider than a /8 (IPv4) or a /16 (IPv6).
    fn broad_fields(&self) -> Vec<&'static str> {
        let matches_all = |glob: &Option<GlobMatcher>, probes: &[&str]| {
            glob.as_ref()
                .is_some_and(|g| probes.iter().all(|p| g.is_match(p)))
        };
        let mut broad = Vec::new();
        if matches_all(&self.principal, BROAD_PRINCIPAL_PROBES) {
            broad.push("principal");
        }
        if matches_all(&self.user_arn, BROAD_PRINCIPAL_PROBES) {
            broad.push("user_arn");
        }
        if matches_all(&self.user_agent, BROAD_AGENT_PROBES) {
            broad.push("user_agent");
        }
        let wide = |net: &IpNet| match net {
            IpNet::V4(v4) => v4.prefix_len() < 8,
            IpNet::V6(v6) => v6.prefix_len() < 16,
        };
        if self.source_ip.as_ref().is_some_and(wide) {
            broad.push("source_ip");
        }
        broad
    }

    /// Whether this entry suppresses `rule_id` for the event `subject` at event time `now`.
    pub fn matches(&self, rule_id: &str, subject: &Subject, now: Seconds) -> bool {
        self.rule.is_none_or(|r| r == rule_id)
            && self.expires.is_none_or(|expires| now < expires)
            && self.principal.as_ref().is_none_or(|glob| {
                subject
                    .principal
                    .as_deref()
                    .is_some_and(|p| glob.is_match(p))
            })
            && self.user_arn.as_ref().is_none_or(|glob| {
                subject
                    .user_arn
                    .as_deref()
                    .is_some_and(|arn| glob.is_match(arn))
            })
            && self.source_ip.is_none_or(|net| {
                subject
                    .source_ip
                    .as_deref()
                    .and_then(|ip| ip.parse::<IpAddr>().ok())
                    .is_some_and(|ip| net.contains(&ip))
            })
            && self.user_agent.as_ref().is_none_or(|glob| {
                subject
                    .user_agent
                    .as_deref()
                    .is_some_and(|ua| glob.is_match(ua))
            })
    }
}

/// Tor exit addresses, in the format of the Tor Project's bulk exit list: one address per line,
/// `#` comments. Lines of the `exit-addresses` format (`ExitAddress <ip> <date>`) are read too.
#[derive(Debug, Default)]
pub struct TorList {
    addresses: HashSet<IpAddr>,
}

impl TorList {
    pub fn load(path: &Path) -> Result<TorList, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text).map_err(|(line, text)| ConfigError::TorList {
            path: path.to_owned(),
            line,
            text,
        })
    }

    /// Parses the list; the error gives the 1-based line and its text.
    pub fn parse(text: &str) -> Result<TorList, (usize, String)> {
        let mut addresses = HashSet::new();
        for (index, line) in text.lines().enumerate() {
            let content = line.split('#').next().unwrap_or("").trim();
            if content.is_empty() {
                continue;
            }
            let mut words = content.split_whitespace();
            let address = match words.next() {
                Some("ExitAddress") => words.next().unwrap_or(""),
                Some("ExitNode" | "Published" | "LastStatus") => continue,
                Some(word) => word,
                None => continue,
            };
            let ip = address
                .parse::<IpAddr>()
                .map_err(|_| (index + 1, crate::text::truncate(content, 60)))?;
            addresses.insert(ip);
        }
        Ok(TorList { addresses })
    }

    pub fn contains(&self, ip: &str) -> bool {
        ip.parse::<IpAddr>()
            .is_ok_and(|ip| self.addresses.contains(&ip))
    }

    pub fn len(&self) -> usize {
        self.addresses.len()
    }

    pub fn is_empty(&self) -> bool {
        self.addresses.is_empty()
    }
}
