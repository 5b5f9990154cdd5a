//! The signal sink port: where signals go once decided (SNS in the Lambda).

use std::future::Future;

use crate::signal::Signal;

#[derive(Debug, thiserror::Error)]
#[error("publishing: {message}")]
pub struct PublishError {
    pub message: String,
    pub transient: bool,
}

/// Publishes one signal. An error leaves the signal's claim unfinished, so a retry publishes it.
pub trait Publisher: Sync {
    fn publish(&self, signal: &Signal) -> impl Future<Output = Result<(), PublishError>> + Send;
}
