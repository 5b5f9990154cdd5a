//! Settings and suppressions at run time: a configuration file (and a Tor exit list) in S3,
//! read at the cold start and checked again every `SESGUARD_CONFIG_REFRESH_SECONDS` with a
//! conditional read (ETag), so a change applies within minutes without a deployment.
//!
//! A new file that fails validation is never applied: the last good configuration stays in
//! force, the error is logged with the file and the entry, and [`ConfigEvents::rejected`] is
//! counted (a metric with an alarm). Without a good configuration since the cold start (the file
//! unreadable or invalid), [`Refresh::Unusable`] makes the invocation fail: events are retried and
//! kept in the failure queue rather than evaluated without the user's suppressions.
//!
//! A Tor exit list that does not exist yet (the scheduled fetch has not run since the stack was
//! created) is an empty list, not a failure; once read, a list that disappears or fails to parse
//! is a failed read, and the previous list stays.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Instant;

use super::{LambdaConfig, ObjectError};
use crate::config::{Config, TorList};
use crate::model::FailureKind;
use crate::s3url::S3Url;
use crate::text::truncate;

/// What a conditional read gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fetched {
    /// The object still has the ETag asked about (HTTP 304).
    NotModified,
    Text {
        text: String,
        etag: Option<String>,
    },
}

/// Where configuration objects come from: S3 in the Lambda (`sesguard_lambda::aws::s3`).
pub trait ConfigStore: Sync {
    /// The object's text, or [`Fetched::NotModified`] if `etag` is given and still current.
    fn fetch(
        &self,
        url: &S3Url,
        etag: Option<&str>,
    ) -> impl Future<Output = Result<Fetched, ObjectError>> + Send;
}

/// What the checks of one invocation did, for the metrics (`config_emf_line`).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ConfigEvents {
    /// Whether S3 was asked at all (the refresh interval had passed).
    pub checked: bool,
    /// A new configuration or Tor list failed validation (the last good one stays).
    pub rejected: u64,
    /// A read failed (S3 unavailable, access denied, a list that was there and is gone).
    pub unreadable: u64,
    /// A new configuration (or list) took effect.
    pub applied: u64,
}

/// What the invocation should do with the engine.
#[derive(Debug)]
pub enum Refresh {
    /// Keep the engine it has.
    Unchanged,
    /// A configuration to build the engine from (at the cold start, or a change).
    Changed(Config),
    /// There has been no good configuration since the cold start: fail the invocation.
    Unusable(String),
}

/// One object's text in force, with the ETag it was read with.
#[derive(Debug, Clone)]
struct Current {
    text: String,
    etag: Option<String>,
}

#[derive(Debug, Default)]
struct Loaded {
    config: Option<Current>,
    tor: Option<Current>,
    /// A configuration was built since the cold start.
    good: bool,
    checked: Option<Instant>,
}

/// The configuration of a function whose `SESGUARD_CONFIG` or `SESGUARD_TOR_EXIT_LIST` is in
/// S3 ([`LambdaConfig::config_url`], [`LambdaConfig::tor_url`]).
pub struct LiveConfig<C> {
    store: C,
    env: LambdaConfig,
    task_root: Option<PathBuf>,
    loaded: tokio::sync::Mutex<Loaded>,
}

impl<C: ConfigStore> LiveConfig<C> {
    pub fn new(store: C, env: LambdaConfig, task_root: Option<PathBuf>) -> Self {
        LiveConfig {
            store,
            env,
            task_root,
            loaded: tokio::sync::Mutex::new(Loaded::default()),
        }
    }

    /// Whether anything is read from S3 (else the function loads its configuration once, as
    /// before: [`LambdaConfig::engine_config`]).
    pub fn is_live(env: &LambdaConfig) -> bool {
        env.config_url.is_some() || env.tor_url.is_some()
    }

    /// Called at the start of each invocation: reads the objects if there is no good
    /// configuration yet or the refresh interval has passed since the last check.
    pub async fn refresh(&self, now: Instant, events: &mut ConfigEvents) -> Refresh {
        let mut loaded = self.loaded.lock().await;
        let due = loaded
            .checked
            .is_none_or(|at| now.saturating_duration_since(at) >= self.env.config_refresh);
        if loaded.good && !due {
            return Refresh::Unchanged;
        }
        loaded.checked = Some(now);
        events.checked = true;
        let good = loaded.good;

        let mut new_config = None;
        if let Some(url) = &self.env.config_url {
            let current = loaded.config.as_ref().filter(|_| good);
            match self.fetch(url, current).await {
                Ok(found) => new_config = found,
                Err(message) => {
                    events.unreadable += 1;
                    if !good {
                        tracing::error!(error = %message, "cannot read the configuration");
                        return Refresh::Unusable(message);
                    }
                    tracing::warn!(
                        error = %message,
                        "cannot read the configuration; the last good one stays in force"
                    );
                }
            }
        }

        // Some(None): no list (not created yet).
        let mut new_tor: Option<Option<Current>> = None;
        if let Some(url) = &self.env.tor_url {
            let current = loaded.tor.as_ref().filter(|_| good);
            match self.fetch(url, current).await {
                Ok(Some(list)) => match TorList::parse(&list.text) {
                    Ok(_) => new_tor = Some(Some(list)),
                    Err((line, text)) => {
                        events.rejected += 1;
                        let message = format!(
                            "Tor exit list {url}, line {line}: {text:?} is not an IP address"
                        );
                        tracing::error!(error = %message, "Tor exit list rejected; the previous one stays in force");
                        if !good {
                            return Refresh::Unusable(message);
                        }
                    }
                },
                Ok(None) => {}
                // Never read: the scheduled fetch has not written it yet (its age alarm says
                // so if that lasts).
                Err(message) if loaded.tor.is_none() && message.starts_with(NOT_FOUND) => {
                    if !good {
                        tracing::warn!(error = %message, "no Tor exit list yet: none is used until the scheduled fetch writes it");
                        new_tor = Some(None);
                    }
                }
                Err(message) => {
                    events.unreadable += 1;
                    if !good {
                        tracing::error!(error = %message, "cannot read the Tor exit list");
                        return Refresh::Unusable(message);
                    }
                    tracing::warn!(
                        error = %message,
                        "cannot read the Tor exit list; the previous one stays in force"
                    );
                }
            }
        }

        if good && new_config.is_none() && new_tor.is_none() {
            return Refresh::Unchanged;
        }
        let config_text = new_config.as_ref().or(loaded.config.as_ref());
        let tor_text = match &new_tor {
            Some(list) => list.as_ref(),
            None => loaded.tor.as_ref(),
        };
        match self.build(
            config_text.map(|c| c.text.as_str()),
            tor_text.map(|c| c.text.as_str()),
        ) {
            Ok(config) => {
                tracing::info!(
                    config = %self.describe(config_text, self.env.config_url.as_ref()),
                    tor_exit_list = %self.describe(tor_text, self.env.tor_url.as_ref()),
                    suppressions = config.suppressions.len(),
                    tor_exits = config.tor.len(),
                    "configuration in force"
                );
                if let Some(config) = new_config {
                    loaded.config = Some(config);
                }
                if let Some(tor) = new_tor {
                    loaded.tor = tor;
                }
                loaded.good = true;
                events.applied += 1;
                Refresh::Changed(config)
            }
            Err(message) => {
                events.rejected += 1;
                tracing::error!(error = %message, "configuration rejected; the last good one stays in force");
                if good {
                    Refresh::Unchanged
                } else {
                    Refresh::Unusable(message)
                }
            }
        }
    }

    /// The object's text if it changed (`None`: still `current`); an error message otherwise,
    /// starting with [`NOT_FOUND`] if the object does not exist.
    async fn fetch(
        &self,
        url: &S3Url,
        current: Option<&Current>,
    ) -> Result<Option<Current>, String> {
        let etag = current.and_then(|c| c.etag.as_deref());
        match self.store.fetch(url, etag).await {
            Ok(Fetched::NotModified) if current.is_some() => Ok(None),
            // A 304 for an ETag not asked about would be a store bug: read it as unchanged only
            // when there is a text in force.
            Ok(Fetched::NotModified) => Err(format!("{url}: not modified, but no copy is held")),
            Ok(Fetched::Text { text, etag }) => {
                // The same text under the same ETag: unchanged (a store that ignored the
                // condition). Under a new ETag (uploaded again) it is taken, so that the next
                // check asks about the new ETag and gets its 304.
                if current.is_some_and(|c| c.text == text && c.etag == etag) {
                    return Ok(None);
                }
                Ok(Some(Current { text, etag }))
            }
            Err(err) => {
                let prefix = if err.kind == FailureKind::NotFound {
                    NOT_FOUND
                } else {
                    ""
                };
                Err(format!("{prefix}{}", truncate(&err.to_string(), 1000)))
            }
        }
    }

    fn build(&self, config: Option<&str>, tor: Option<&str>) -> Result<Config, String> {
        let mut built = match (&self.env.config_url, config) {
            (Some(url), Some(text)) => {
                Config::parse(text, Path::new(&url.to_string()), &self.env.overrides)
                    .map_err(|err| err.to_string())?
            }
            (Some(url), None) => return Err(format!("{url}: not read")),
            (None, _) => self
                .env
                .engine_config(self.task_root.as_deref())
                .map_err(|err| err.to_string())?,
        };
        if let (Some(url), Some(text)) = (&self.env.tor_url, tor) {
            built.tor = TorList::parse(text).map_err(|(line, text)| {
                format!("Tor exit list {url}, line {line}: {text:?} is not an IP address")
            })?;
        }
        Ok(built)
    }

    fn describe(&self, current: Option<&Current>, url: Option<&S3Url>) -> String {
        match (url, current) {
            (None, _) => "packaged".to_owned(),
            (Some(url), None) => format!("{url} (none yet)"),
            (Some(url), Some(c)) => format!("{url} (ETag {})", c.etag.as_deref().unwrap_or("-")),
        }
    }
}

/// The start of the message of a read that failed because the object does not exist.
const NOT_FOUND: &str = "not found: ";

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::sync::Mutex;
    use std::time::Duration;

    /// Objects by key, with ETags; counts the reads and which were conditional.
    #[derive(Default)]
    struct Store {
        objects: Mutex<HashMap<String, (String, String)>>,
        failing: Mutex<Option<FailureKind>>,
        reads: Mutex<Vec<(String, Option<String>)>>,
    }

    impl Store {
        fn put(&self, key: &str, text: &str) {
            let mut objects = self.objects.lock().unwrap();
            let n = objects.len() + self.reads.lock().unwrap().len();
            objects.insert(
                key.to_owned(),
                (text.to_owned(), format!("\"etag-{key}-{n}\"")),
            );
        }
        fn fail(&self, kind: Option<FailureKind>) {
            *self.failing.lock().unwrap() = kind;
        }
        fn reads(&self) -> Vec<(String, Option<String>)> {
            self.reads.lock().unwrap().clone()
        }
    }

    impl ConfigStore for &Store {
        async fn fetch(&self, url: &S3Url, etag: Option<&str>) -> Result<Fetched, ObjectError> {
            self.reads
                .lock()
                .unwrap()
                .push((url.prefix.clone(), etag.map(str::to_owned)));
            if let Some(kind) = *self.failing.lock().unwrap() {
                return Err(ObjectError::new(
                    kind,
                    format!("S3 GetObject {url}: injected"),
                ));
            }
            match self.objects.lock().unwrap().get(&url.prefix) {
                None => Err(ObjectError::new(
                    FailureKind::NotFound,
                    format!("S3 GetObject {url}: NoSuchKey"),
                )),
                Some((_, tag)) if Some(tag.as_str()) == etag => Ok(Fetched::NotModified),
                Some((text, tag)) => Ok(Fetched::Text {
                    text: text.clone(),
                    etag: Some(tag.clone()),
                }),
            }
        }
    }

    fn env(refresh: u64, tor: bool) -> LambdaConfig {
        let mut vars = vec![
            ("SESGUARD_TABLE_NAME", "t"),
            ("SESGUARD_TOPIC_ARN", "arn"),
            ("SESGUARD_CONFIG", "s3://config/sesguard.toml"),
        ];
        if tor {
            vars.push(("SESGUARD_TOR_EXIT_LIST", "s3://config/tor.txt"));
        }
        let refresh = refresh.to_string();
        vars.push(("SESGUARD_CONFIG_REFRESH_SECONDS", refresh.as_str()));
        LambdaConfig::from_env(|name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        })
        .expect("env")
    }

    const ONE: &str =
        "dedup_minutes = 5\n[[suppressions]]\nrule = \"ses-identity-deleted\"\nreason = \"r\"\n";
    const TWO: &str = "dedup_minutes = 7\n[[suppressions]]\nrule = \"ses-identity-deleted\"\n[[suppressions]]\nrule = \"ses-modification\"\n";
    const BAD: &str = "dedup_minutes = 9\n[[suppressions]]\nrule = \"ses-identity-deleted\"\n[[suppressions]]\nrule = \"no-such-rule\"\n";

    fn changed(refresh: Refresh) -> Config {
        match refresh {
            Refresh::Changed(config) => config,
            other => panic!("expected a new configuration, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_change_is_read_after_the_refresh_interval_with_a_conditional_read() {
        let store = Store::default();
        store.put("sesguard.toml", ONE);
        let live = LiveConfig::new(&store, env(300, false), None);
        let t0 = Instant::now();
        let mut events = ConfigEvents::default();
        let config = changed(live.refresh(t0, &mut events).await);
        assert_eq!(config.settings.dedup, 5 * 60);
        assert_eq!(config.suppressions.len(), 1);
        assert_eq!(events.applied, 1);

        // Within the interval: no read at all.
        store.put("sesguard.toml", TWO);
        let mut events = ConfigEvents::default();
        assert!(matches!(
            live.refresh(t0 + Duration::from_secs(299), &mut events)
                .await,
            Refresh::Unchanged
        ));
        assert!(!events.checked);
        assert_eq!(store.reads().len(), 1);

        // After it: a conditional read with the ETag held, and the new file.
        let config = changed(
            live.refresh(t0 + Duration::from_secs(300), &mut events)
                .await,
        );
        assert_eq!(config.settings.dedup, 7 * 60);
        assert_eq!(config.suppressions.len(), 2);
        let reads = store.reads();
        assert_eq!(reads[0].1, None, "the cold start reads unconditionally");
        assert!(
            reads[1]
                .1
                .as_deref()
                .is_some_and(|e| e.starts_with("\"etag-"))
        );

        // The same text uploaded again (a new ETag): taken, so later checks get their 304.
        store.put("sesguard.toml", TWO);
        changed(
            live.refresh(t0 + Duration::from_secs(600), &mut ConfigEvents::default())
                .await,
        );

        // Unchanged since: 304, nothing rebuilt.
        let mut events = ConfigEvents::default();
        assert!(matches!(
            live.refresh(t0 + Duration::from_secs(900), &mut events)
                .await,
            Refresh::Unchanged
        ));
        assert!(events.checked);
        assert_eq!(events.applied + events.rejected + events.unreadable, 0);
        let latest = store.objects.lock().unwrap()["sesguard.toml"].1.clone();
        assert_eq!(
            store.reads().last().and_then(|r| r.1.clone()),
            Some(latest),
            "asked about the new ETag"
        );
    }

    #[tokio::test]
    async fn a_rejected_file_leaves_the_last_good_one_in_force_and_is_counted_each_time() {
        let store = Store::default();
        store.put("sesguard.toml", ONE);
        let live = LiveConfig::new(&store, env(0, false), None);
        let t0 = Instant::now();
        changed(live.refresh(t0, &mut ConfigEvents::default()).await);
        store.put("sesguard.toml", BAD);
        for i in 1..=2 {
            let mut events = ConfigEvents::default();
            let refresh = live.refresh(t0 + Duration::from_secs(i), &mut events).await;
            assert!(matches!(refresh, Refresh::Unchanged), "{refresh:?}");
            assert_eq!(events.rejected, 1, "rejected at every check until fixed");
        }
        // The last good ETag is still the one asked about: the bad file is read again.
        let reads = store.reads();
        assert_eq!(reads[1].1, reads[2].1);
        store.put("sesguard.toml", TWO);
        let config = changed(
            live.refresh(t0 + Duration::from_secs(3), &mut ConfigEvents::default())
                .await,
        );
        assert_eq!(config.suppressions.len(), 2);
    }

    #[tokio::test]
    async fn without_a_good_file_since_the_cold_start_invocations_fail_naming_the_entry() {
        let store = Store::default();
        let live = LiveConfig::new(&store, env(300, false), None);
        let t0 = Instant::now();
        let mut events = ConfigEvents::default();
        match live.refresh(t0, &mut events).await {
            Refresh::Unusable(message) => {
                assert!(message.contains("s3://config/sesguard.toml"), "{message}")
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(events.unreadable, 1);
        store.put("sesguard.toml", BAD);
        let mut events = ConfigEvents::default();
        // Retried at once (not after the interval): the next invocation may succeed.
        match live
            .refresh(t0 + Duration::from_millis(1), &mut events)
            .await
        {
            Refresh::Unusable(message) => assert!(
                message.contains("s3://config/sesguard.toml: suppression 2: unknown rule"),
                "{message}"
            ),
            other => panic!("{other:?}"),
        }
        assert_eq!(events.rejected, 1);
        store.put("sesguard.toml", ONE);
        changed(
            live.refresh(t0 + Duration::from_millis(2), &mut ConfigEvents::default())
                .await,
        );
    }

    #[tokio::test]
    async fn an_unreadable_file_on_a_warm_function_keeps_the_last_good_one() {
        let store = Store::default();
        store.put("sesguard.toml", ONE);
        let live = LiveConfig::new(&store, env(0, false), None);
        let t0 = Instant::now();
        changed(live.refresh(t0, &mut ConfigEvents::default()).await);
        store.fail(Some(FailureKind::Denied));
        let mut events = ConfigEvents::default();
        assert!(matches!(
            live.refresh(t0 + Duration::from_secs(1), &mut events).await,
            Refresh::Unchanged
        ));
        assert_eq!(events.unreadable, 1);
        assert_eq!(events.rejected, 0);
    }

    #[tokio::test]
    async fn the_tor_list_is_read_like_the_config_and_may_not_exist_yet() {
        let store = Store::default();
        store.put("sesguard.toml", ONE);
        let live = LiveConfig::new(&store, env(0, true), None);
        let t0 = Instant::now();
        let config = changed(live.refresh(t0, &mut ConfigEvents::default()).await);
        assert!(config.tor.is_empty(), "no list yet: none, and no failure");

        store.put("tor.txt", "# bulk list\n192.0.2.1\n2001:db8::1\n");
        let config = changed(
            live.refresh(t0 + Duration::from_secs(1), &mut ConfigEvents::default())
                .await,
        );
        assert!(config.tor.contains("192.0.2.1") && config.tor.contains("2001:db8::1"));
        assert_eq!(config.suppressions.len(), 1, "the config held is kept");

        // A bad list is rejected; the good one stays.
        store.put("tor.txt", "<html>502 Bad Gateway</html>\n");
        let mut events = ConfigEvents::default();
        assert!(matches!(
            live.refresh(t0 + Duration::from_secs(2), &mut events).await,
            Refresh::Unchanged
        ));
        assert_eq!(events.rejected, 1);
        // A list that was read and then is gone is a failed read, not an empty list.
        store.objects.lock().unwrap().remove("tor.txt");
        let mut events = ConfigEvents::default();
        assert!(matches!(
            live.refresh(t0 + Duration::from_secs(3), &mut events).await,
            Refresh::Unchanged
        ));
        assert_eq!(events.unreadable, 1);
    }
}
