//! The Tor exit list fetcher (the function template.yaml schedules hourly when `TorExitListUrl`
//! is set): downloads the list over HTTPS with a timeout and a size cap, validates it
//! ([`validate_tor_list`]) and writes it beside the configuration in S3, where the detector reads
//! it like its configuration. A failed download or a rejected list leaves the stored list as it
//! is; the stored list's age is a metric either way (alarmed past 24 hours).
//!
//! The HTTP client is hyper with rustls and ring, the stack the AWS SDK already links
//! ([`super::aws::http_client`]): no second TLS stack in the binary.

use std::future::poll_fn;
use std::pin::Pin;
use std::time::{Duration, SystemTime};

use aws_sdk_s3::primitives::ByteStream;
use hyper::body::Body as _;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use sesguard::lambda::{TorFetchConfig, TorListRejected, validate_tor_list};
use sesguard::s3url::S3Url;

/// Why a download gave no list.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("{url}: only https:// is fetched (http:// only from the loopback address, for tests)")]
    NotHttps { url: String },
    #[error("{url}: {message}")]
    Request { url: String, message: String },
    #[error("{url}: answered HTTP {status}")]
    Status { url: String, status: u16 },
    #[error("{url}: no complete answer within {} s", .timeout.as_secs_f32())]
    TimedOut { url: String, timeout: Duration },
    #[error("{url}: the body is larger than {max} bytes")]
    TooLarge { url: String, max: usize },
    #[error("{url}: {reason}")]
    Rejected {
        url: String,
        reason: TorListRejected,
    },
}

/// The list at `url`, validated: its text and number of addresses.
pub async fn download(
    url: &str,
    timeout: Duration,
    max_bytes: usize,
) -> Result<(String, usize), FetchError> {
    let uri: hyper::Uri = url.parse().map_err(|err| FetchError::Request {
        url: url.to_owned(),
        message: format!("not a URL: {err}"),
    })?;
    let loopback = matches!(uri.host(), Some("127.0.0.1" | "localhost" | "[::1]"));
    match uri.scheme_str() {
        Some("https") => {}
        Some("http") if loopback => {}
        _ => {
            return Err(FetchError::NotHttps {
                url: url.to_owned(),
            });
        }
    }
    let body = tokio::time::timeout(timeout, get(uri, url, max_bytes))
        .await
        .map_err(|_| FetchError::TimedOut {
            url: url.to_owned(),
            timeout,
        })??;
    let addresses = validate_tor_list(&body).map_err(|reason| FetchError::Rejected {
        url: url.to_owned(),
        reason,
    })?;
    // validate_tor_list accepted it as UTF-8.
    let text = String::from_utf8(body).map_err(|_| FetchError::Rejected {
        url: url.to_owned(),
        reason: TorListRejected::NotText,
    })?;
    Ok((text, addresses))
}

async fn get(uri: hyper::Uri, url: &str, max_bytes: usize) -> Result<Vec<u8>, FetchError> {
    let failed = |message: String| FetchError::Request {
        url: url.to_owned(),
        message,
    };
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_provider_and_native_roots(rustls::crypto::ring::default_provider())
        .map_err(|err| failed(format!("TLS set-up: {err}")))?
        .https_or_http()
        .enable_http1()
        .build();
    let client: Client<_, String> = Client::builder(TokioExecutor::new()).build(https);
    let request = hyper::Request::get(uri)
        .header(hyper::header::USER_AGENT, "sesguard-tor-exit-list")
        .body(String::new())
        .map_err(|err| failed(err.to_string()))?;
    let response = client
        .request(request)
        .await
        .map_err(|err| failed(err.to_string()))?;
    let status = response.status().as_u16();
    if status != 200 {
        return Err(FetchError::Status {
            url: url.to_owned(),
            status,
        });
    }
    let too_large = || FetchError::TooLarge {
        url: url.to_owned(),
        max: max_bytes,
    };
    let mut body = response.into_body();
    if body.size_hint().lower() > max_bytes as u64 {
        return Err(too_large());
    }
    let mut bytes = Vec::new();
    while let Some(frame) = poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
        let frame = frame.map_err(|err| failed(err.to_string()))?;
        if let Some(data) = frame.data_ref() {
            if bytes.len() + data.len() > max_bytes {
                return Err(too_large());
            }
            bytes.extend_from_slice(data);
        }
    }
    Ok(bytes)
}

/// What one scheduled run did.
#[derive(Debug, serde::Serialize)]
pub struct Outcome {
    pub stored: bool,
    pub addresses: Option<usize>,
    /// Seconds since the stored list was written (0 after this run stored it).
    pub age_seconds: Option<u64>,
    pub error: Option<String>,
}

/// One scheduled run: download, validate, store; or keep the stored list and say how old it is.
pub async fn refresh(s3: &aws_sdk_s3::Client, config: &TorFetchConfig) -> Outcome {
    let destination = &config.destination;
    match download(&config.source, config.timeout, config.max_bytes).await {
        Ok((text, addresses)) => match store(s3, destination, text).await {
            Ok(()) => {
                tracing::info!(source = %config.source, destination = %destination, addresses, "Tor exit list stored");
                Outcome {
                    stored: true,
                    addresses: Some(addresses),
                    age_seconds: Some(0),
                    error: None,
                }
            }
            Err(message) => kept(s3, destination, Some(addresses), message).await,
        },
        Err(err) => kept(s3, destination, None, err.to_string()).await,
    }
}

async fn kept(
    s3: &aws_sdk_s3::Client,
    destination: &S3Url,
    addresses: Option<usize>,
    error: String,
) -> Outcome {
    let age_seconds = age(s3, destination).await;
    tracing::error!(error = %error, age_seconds, "Tor exit list not refreshed; the stored one stays");
    Outcome {
        stored: false,
        addresses,
        age_seconds,
        error: Some(error),
    }
}

async fn store(s3: &aws_sdk_s3::Client, destination: &S3Url, text: String) -> Result<(), String> {
    s3.put_object()
        .bucket(&destination.bucket)
        .key(&destination.prefix)
        .content_type("text/plain; charset=utf-8")
        .body(ByteStream::from(text.into_bytes()))
        .send()
        .await
        .map(|_| ())
        .map_err(|err| format!("S3 PutObject {destination}: {}", crate::aws::describe(&err)))
}

/// Seconds since the stored list was last written; `None` if there is none (or it cannot be
/// asked about).
async fn age(s3: &aws_sdk_s3::Client, destination: &S3Url) -> Option<u64> {
    let head = s3
        .head_object()
        .bucket(&destination.bucket)
        .key(&destination.prefix)
        .send()
        .await
        .ok()?;
    let written = head.last_modified()?.secs();
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .ok()?
        .as_secs();
    Some(now.saturating_sub(u64::try_from(written).ok()?))
}
