//! What sesguard shows: the signal table that fits the terminal and the progress bar (`sesguard
//! scan`), and the renderings of a signal besides its own JSON ([`crate::signal`]) that the CLI
//! and the Lambda share: the OCSF Detection Finding ([`ocsf`]), the e-mail text ([`email`]) and
//! the Security Hub finding ([`asff`]).

pub mod asff;
pub mod email;
pub mod ocsf;
pub mod progress;
pub mod table;

use crate::signal::Signal;

/// The machine rendering of a signal: what `sesguard scan --format` prints as JSON Lines and
/// what the Lambda publishes as the SNS message (`SESGUARD_SIGNAL_FORMAT`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SignalFormat {
    /// sesguard's own JSON, the contract of the first issue.
    #[default]
    Sesguard,
    /// An OCSF 1.5 Detection Finding.
    Ocsf,
}

impl SignalFormat {
    /// The names `SESGUARD_SIGNAL_FORMAT` takes.
    pub const NAMES: [&'static str; 2] = ["sesguard", "ocsf"];

    pub fn parse(text: &str) -> Option<Self> {
        match text.trim() {
            "sesguard" => Some(SignalFormat::Sesguard),
            "ocsf" => Some(SignalFormat::Ocsf),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SignalFormat::Sesguard => "sesguard",
            SignalFormat::Ocsf => "ocsf",
        }
    }

    /// `signal` as one line of JSON in this format.
    pub fn render(self, signal: &Signal) -> String {
        match self {
            SignalFormat::Sesguard => signal.to_json(),
            SignalFormat::Ocsf => ocsf::to_json(signal),
        }
    }
}
