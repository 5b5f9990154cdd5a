//! Shared leaf types: what the record model, the rules, the state, the signal and the
//! configuration all speak of. Depends on nothing else in the crate.

use serde::{Deserialize, Serialize};

/// Seconds since the Unix epoch, in event time.
pub type Seconds = i64;

pub const MINUTE: Seconds = 60;
pub const HOUR: Seconds = 3_600;
pub const DAY: Seconds = 86_400;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

/// The event a signal is about, as the signal shows it. Built once per evaluated event.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subject {
    pub event_id: String,
    pub event_name: String,
    pub event_source: String,
    pub event_time: String,
    pub account_id: String,
    pub region: String,
    /// The principal key: the session issuer's ARN for assumed roles, else the user ARN, else
    /// the principal id.
    pub principal: Option<String>,
    pub user_arn: Option<String>,
    pub user_type: Option<String>,
    pub access_key_id: Option<String>,
    pub source_ip: Option<String>,
    pub user_agent: Option<String>,
    /// The identity the call names, as given (an ARN stays an ARN).
    pub identity: Option<String>,
    pub error_code: Option<String>,
    pub tor: bool,
    /// Some text of the event no rule decides on (the user agent) was not valid JSON text and
    /// was read with U+FFFD in place of what was wrong (absent when all was read as sent).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub text_replaced: bool,
}

/// Windows and periods, in seconds of event time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// No first-sighting signal while an event is less than this after the first event the
    /// state saw.
    pub learning: Seconds,
    /// A principal not seen for this long is forgotten.
    pub forget: Seconds,
    /// The longest time from an add to its delete (pairings).
    pub window: Seconds,
    /// Repeats within this after a signal give no new one.
    pub dedup: Seconds,
    /// A sandbox-exit burst: `PutAccountDetails` in at least this many regions …
    pub sandbox_exit_regions: usize,
    /// … within a span of this much event time.
    pub sandbox_exit_window: Seconds,
    /// The span of event time an abuse chain's stages fall in.
    pub chain_window: Seconds,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            learning: 0,
            forget: 28 * DAY,
            window: 60 * MINUTE,
            dedup: 60 * MINUTE,
            sandbox_exit_regions: 3,
            sandbox_exit_window: 5 * MINUTE,
            chain_window: 24 * HOUR,
        }
    }
}

/// What kind of failure a port (state or sink) met. Callers decide on the kind, never on an
/// error message's text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// The service asked us to slow down (HTTP 429, throttling codes).
    Throttled,
    /// The service failed or could not be reached (5xx, connection or response failure).
    Unavailable,
    /// A call took longer than its timeout.
    TimedOut,
    /// Credentials or permissions refused the call (including a disabled KMS key).
    Denied,
    /// The table, topic or key does not exist.
    NotFound,
    /// An item or message over the service's size limit.
    TooLarge,
    /// The service rejected the request as invalid.
    Invalid,
    /// A failure inside sesguard itself (an encoding error, a poisoned lock).
    Internal,
}

impl FailureKind {
    /// Whether a retry may succeed: throttling, a service failure, a timeout. The others need a
    /// person (a missing table, a denied permission) and fail on every retry.
    pub fn is_transient(self) -> bool {
        matches!(
            self,
            FailureKind::Throttled | FailureKind::Unavailable | FailureKind::TimedOut
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::Throttled => "throttled",
            FailureKind::Unavailable => "unavailable",
            FailureKind::TimedOut => "timed out",
            FailureKind::Denied => "denied",
            FailureKind::NotFound => "not found",
            FailureKind::TooLarge => "too large",
            FailureKind::Invalid => "invalid",
            FailureKind::Internal => "internal",
        }
    }
}

/// Defines a port's error type: a [`FailureKind`], a message, and the source, shown as
/// `<prefix>: <message>`. The State and the Sink ports each have one, so a caller knows which
/// side failed.
#[macro_export]
#[doc(hidden)]
macro_rules! port_error {
    ($(#[$meta:meta])* $name:ident, $prefix:literal) => {
        $(#[$meta])*
        #[derive(Debug, thiserror::Error)]
        #[error("{}: {message}", $prefix)]
        pub struct $name {
            pub kind: $crate::model::FailureKind,
            pub message: String,
            #[source]
            pub source: Option<Box<dyn std::error::Error + Send + Sync>>,
        }

        impl $name {
            pub fn new(kind: $crate::model::FailureKind, message: impl Into<String>) -> Self {
                $name {
                    kind,
                    message: message.into(),
                    source: None,
                }
            }

            pub fn with_source(
                mut self,
                source: impl std::error::Error + Send + Sync + 'static,
            ) -> Self {
                self.source = Some(Box::new(source));
                self
            }

            /// Whether a retry may succeed (from the kind).
            pub fn is_transient(&self) -> bool {
                self.kind.is_transient()
            }
        }
    };
}
