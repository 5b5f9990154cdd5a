//! sesguard: detect Amazon SES abuse in CloudTrail records.
//!
//! Data flows one way: input ([`event`]) → record → rules ([`rules`], reading and writing a
//! [`state::State`]) → signals ([`signal`]) → a sink (the CLI's stdout, or SNS in the Lambda).
//! The engine never knows where it runs.

pub mod aws;
pub mod config;
pub mod engine;
pub mod event;
pub mod input;
pub mod lambda;
pub mod rules;
pub mod scan;
pub mod signal;
pub mod sink;
pub mod state;
pub mod time;

pub use config::{Config, ConfigError, Settings};
pub use engine::{Engine, EngineError, Evaluation};
pub use event::{Envelope, Record};
pub use signal::Signal;
pub use state::{MemoryState, State};
