//! `sesguard-tor-fetch`: the Tor exit list fetcher template.yaml schedules hourly
//! (`TorExitListFunction`). Each invocation, whatever its payload, downloads, validates and stores
//! the list ([`sesguard_lambda::tor::refresh`]); a run that stored nothing fails, so Lambda retries
//! it and counts an error.
//!
//! A binary of its own rather than a mode of `sesguard-lambda`: writing to S3 (PutObject, with
//! the SDK's request checksums) and HeadObject added 885 KB to the detector's binary, whose
//! size is budgeted (BENCHMARKS.md); the detector only reads.

use std::time::{SystemTime, UNIX_EPOCH};

use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::value::RawValue;
use sesguard::lambda::{TorFetchConfig, tor_emf_line};

#[tokio::main]
async fn main() -> Result<(), Error> {
    sesguard_lambda::init_logging();
    let config = match TorFetchConfig::from_env(|name| std::env::var(name).ok()) {
        Some(Ok(config)) => config,
        Some(Err(err)) => {
            tracing::error!(error = %err, "sesguard-tor-fetch cannot start");
            return Err(err.into());
        }
        None => {
            let message = "SESGUARD_TOR_SOURCE_URL: required but not set";
            tracing::error!(error = message, "sesguard-tor-fetch cannot start");
            return Err(message.into());
        }
    };
    let sdk = sesguard_lambda::aws::sdk_config().await;
    let s3: &'static aws_sdk_s3::Client = Box::leak(Box::new(aws_sdk_s3::Client::new(&sdk)));
    let config: &'static TorFetchConfig = Box::leak(Box::new(config));
    lambda_runtime::run(service_fn(
        move |_: LambdaEvent<Box<RawValue>>| async move {
            let outcome = sesguard_lambda::tor::refresh(s3, config).await;
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis());
            println!(
                "{}",
                tor_emf_line(outcome.age_seconds, outcome.addresses, !outcome.stored, now)
            );
            match outcome.error {
                None => Ok(outcome),
                Some(error) => Err(Error::from(error)),
            }
        },
    ))
    .await
}
