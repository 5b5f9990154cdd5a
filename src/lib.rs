//! sesguard: detect Amazon SES abuse in CloudTrail records.
//!
//! Data flows one way: [`input`] readers find records → [`record`] (the CloudTrail model) →
//! [`rules`] (pure; they ask for state) → [`engine`] (answers the asks from a [`state::State`],
//! claims each signal once) → [`deliver`] (the one loop the CLI and the Lambda share) → a
//! [`deliver::Sink`] (the CLI's stdout, or SNS in the Lambda). [`model`] and [`text`] are the
//! leaves every stage uses. The engine never knows where it runs.

pub mod config;
pub mod config_check;
pub mod deliver;
pub mod engine;
pub mod file_order;
pub mod heartbeat;
pub mod input;
pub mod lambda;
pub mod model;
pub mod notification;
pub mod output;
pub mod record;
pub mod reorder;
pub mod rules;
#[cfg(feature = "s3")]
pub mod s3;
pub mod s3url;
pub mod scan;
pub mod signal;
pub mod state;
pub mod text;
pub mod time;
pub mod timeline;

pub use config::{Config, ConfigError};
pub use engine::{Engine, EngineError, Evaluation};
pub use model::Settings;
pub use record::{Envelope, Record};
pub use signal::Signal;
pub use state::{MemoryState, State};
