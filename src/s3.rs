//! Reading CloudTrail from S3 for the CLI (`scan s3://…`, `timeline s3://…`, `backfill`): lists
//! a prefix in key order and opens each object as a stream the readers pull chunk by chunk, so
//! memory stays that of a local scan whatever the object's size.
//!
//! Credentials and region come from the standard AWS chain (environment, profiles, SSO,
//! credential_process, container and instance roles); `AWS_ENDPOINT_URL` (or
//! `AWS_ENDPOINT_URL_S3`) points it at an emulator, and then bucket names go in the path.

use std::io::{self, Read};
use std::sync::Arc;

use aws_sdk_s3::Client;
use aws_sdk_s3::error::DisplayErrorContext;
use aws_sdk_s3::primitives::ByteStream;
use aws_smithy_http_client::tls;

use crate::input::{Remote, Source};
use crate::model::Seconds;
use crate::notification::{Ignored, not_a_log_file};
use crate::s3url::{S3Url, day_may_hold, is_log_key, key_day};

/// A failure of S3 naming what was asked for.
#[derive(Debug, thiserror::Error)]
pub enum S3Error {
    #[error("{url}: cannot list: {message}")]
    List { url: String, message: String },
    #[error("cannot start the AWS client: {0}")]
    Runtime(#[from] io::Error),
    #[error("{url}: cannot read: {message}")]
    Get { url: String, message: String },
    #[error("{url}: cannot write: {message}")]
    Put { url: String, message: String },
}

/// One object of a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Object {
    pub bucket: String,
    pub key: String,
    pub size: u64,
    pub etag: Option<String>,
}

impl Object {
    pub fn url(&self) -> String {
        S3Url::object(&self.bucket, &self.key)
    }
}

/// What a listing kept and what it left out.
#[derive(Debug, Default)]
pub struct Listing {
    pub objects: Vec<Object>,
    /// CloudTrail digest files (counted as the local scan counts them).
    pub digests: u64,
    /// Insights files, and keys with a suffix `scan` does not read.
    pub not_logs: u64,
    /// Log files of days outside --since/--until.
    pub outside_dates: u64,
}

/// An S3 client with its own runtime: the readers are plain threads, which block on it.
pub struct S3 {
    runtime: Arc<tokio::runtime::Runtime>,
    client: Client,
    config: aws_config::SdkConfig,
}

impl S3 {
    /// A client from the environment.
    pub fn from_env() -> Result<S3, S3Error> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        let config = runtime.block_on(
            aws_config::defaults(aws_config::BehaviorVersion::latest())
                .http_client(
                    aws_smithy_http_client::Builder::new()
                        .tls_provider(tls::Provider::Rustls(
                            tls::rustls_provider::CryptoMode::Ring,
                        ))
                        .build_https(),
                )
                .load(),
        );
        // An emulator on 127.0.0.1 cannot serve bucket.127.0.0.1: path-style addressing.
        let emulated = ["AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"]
            .iter()
            .any(|v| std::env::var_os(v).is_some_and(|s| !s.is_empty()));
        let s3_config = aws_sdk_s3::config::Builder::from(&config)
            .force_path_style(emulated)
            .build();
        Ok(S3 {
            runtime: Arc::new(runtime),
            client: Client::from_conf(s3_config),
            config,
        })
    }

    /// The log files under `url` in key order, those of days outside [since, until) left out
    /// (by CloudTrail's key layout; keys outside it are kept).
    pub fn list(
        &self,
        url: &S3Url,
        since: Option<Seconds>,
        until: Option<Seconds>,
    ) -> Result<Listing, S3Error> {
        let mut listing = Listing::default();
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&url.bucket)
            .prefix(&url.prefix)
            .into_paginator()
            .send();
        while let Some(page) = self.runtime.block_on(pages.next()) {
            let page = page.map_err(|err| S3Error::List {
                url: url.to_string(),
                message: DisplayErrorContext(&err).to_string(),
            })?;
            for object in page.contents() {
                let Some(key) = object.key() else { continue };
                if !is_log_key(key) {
                    if matches!(not_a_log_file(key), Some(Ignored::Digest)) {
                        listing.digests += 1;
                    } else {
                        listing.not_logs += 1;
                    }
                    continue;
                }
                if key_day(key).is_some_and(|day| !day_may_hold(day, since, until)) {
                    listing.outside_dates += 1;
                    continue;
                }
                listing.objects.push(Object {
                    bucket: url.bucket.clone(),
                    key: key.to_owned(),
                    size: object
                        .size()
                        .and_then(|s| u64::try_from(s).ok())
                        .unwrap_or(0),
                    etag: object.e_tag().map(str::to_owned),
                });
            }
        }
        Ok(listing)
    }

    /// The text of the object `url` names (`sesguard config check s3://…`).
    pub fn get_text(&self, url: &S3Url) -> Result<String, S3Error> {
        let failed = |message: String| S3Error::Get {
            url: url.to_string(),
            message,
        };
        let answer = self
            .runtime
            .block_on(
                self.client
                    .get_object()
                    .bucket(&url.bucket)
                    .key(&url.prefix)
                    .send(),
            )
            .map_err(|err| failed(DisplayErrorContext(&err).to_string()))?;
        let bytes = self
            .runtime
            .block_on(answer.body.collect())
            .map_err(|err| failed(err.to_string()))?
            .into_bytes();
        String::from_utf8(bytes.to_vec()).map_err(|_| failed("not UTF-8 text".to_owned()))
    }

    /// Writes `text` to the object `url` names (`sesguard config push`); its new ETag.
    pub fn put_text(&self, url: &S3Url, text: &str) -> Result<Option<String>, S3Error> {
        let answer = self
            .runtime
            .block_on(
                self.client
                    .put_object()
                    .bucket(&url.bucket)
                    .key(&url.prefix)
                    .content_type("application/toml")
                    .body(ByteStream::from(text.as_bytes().to_vec()))
                    .send(),
            )
            .map_err(|err| S3Error::Put {
                url: url.to_string(),
                message: DisplayErrorContext(&err).to_string(),
            })?;
        Ok(answer.e_tag().map(str::to_owned))
    }

    /// An input that streams `object` when read.
    pub fn source(&self, object: &Object) -> Source {
        let runtime = self.runtime.clone();
        let client = self.client.clone();
        let (bucket, key) = (object.bucket.clone(), object.key.clone());
        let open = move || -> io::Result<Box<dyn Read + Send>> {
            let answer = runtime
                .block_on(client.get_object().bucket(&bucket).key(&key).send())
                .map_err(|err| io::Error::other(DisplayErrorContext(&err).to_string()))?;
            Ok(Box::new(Body {
                runtime: runtime.clone(),
                stream: answer.body,
                chunk: Vec::new(),
                at: 0,
            }))
        };
        Source::Remote(Remote {
            name: Arc::from(object.url()),
            open: Arc::new(open),
        })
    }

    /// Queues an object-created notification per object to `queue` (SQS), ten per request, as
    /// S3 would have sent them: the ingestion function then reads them like new log files.
    /// Calls `progress` after each request with the objects and bytes queued so far. Entries
    /// SQS refuses are sent again (3 attempts); those it still refuses are returned.
    pub fn queue_notifications(
        &self,
        queue: &str,
        objects: &[Object],
        mut progress: impl FnMut(u64, u64),
    ) -> Result<Vec<(Object, String)>, QueueError> {
        let sqs = aws_sdk_sqs::Client::new(&self.config);
        let region = self
            .config
            .region()
            .map_or_else(|| "us-east-1".to_owned(), |r| r.to_string());
        let (mut sent, mut bytes) = (0u64, 0u64);
        let mut refused = Vec::new();
        for batch in objects.chunks(10) {
            let mut pending: Vec<(usize, &Object)> = batch.iter().enumerate().collect();
            for attempt in 1..=3 {
                let entries: Result<Vec<_>, _> = pending
                    .iter()
                    .map(|(i, o)| {
                        aws_sdk_sqs::types::SendMessageBatchRequestEntry::builder()
                            .id(i.to_string())
                            .message_body(crate::s3url::created_notification(
                                &o.bucket, &o.key, o.size, &region,
                            ))
                            .build()
                    })
                    .collect();
                let entries = entries.map_err(|err| QueueError {
                    queue: queue.to_owned(),
                    message: err.to_string(),
                })?;
                let answer = self
                    .runtime
                    .block_on(
                        sqs.send_message_batch()
                            .queue_url(queue)
                            .set_entries(Some(entries))
                            .send(),
                    )
                    .map_err(|err| QueueError {
                        queue: queue.to_owned(),
                        message: DisplayErrorContext(&err).to_string(),
                    })?;
                let failed: Vec<(String, String)> = answer
                    .failed()
                    .iter()
                    .map(|f| {
                        (
                            f.id().to_owned(),
                            f.message().unwrap_or(f.code()).to_owned(),
                        )
                    })
                    .collect();
                for (i, object) in &pending {
                    if !failed.iter().any(|(id, _)| *id == i.to_string()) {
                        sent += 1;
                        bytes += object.size;
                    }
                }
                let again: Vec<(usize, &Object)> = pending
                    .iter()
                    .filter(|(i, _)| failed.iter().any(|(id, _)| *id == i.to_string()))
                    .copied()
                    .collect();
                if again.is_empty() {
                    break;
                }
                if attempt == 3 {
                    for (i, object) in again {
                        let why = failed
                            .iter()
                            .find(|(id, _)| *id == i.to_string())
                            .map(|(_, m)| m.clone())
                            .unwrap_or_default();
                        refused.push((object.clone(), why));
                    }
                    break;
                }
                pending = again;
            }
            progress(sent, bytes);
        }
        Ok(refused)
    }
}

/// The queue could not be written to at all.
#[derive(Debug, thiserror::Error)]
#[error("{queue}: cannot send: {message}")]
pub struct QueueError {
    pub queue: String,
    pub message: String,
}

/// An object's body as a blocking reader: one chunk held at a time.
struct Body {
    runtime: Arc<tokio::runtime::Runtime>,
    stream: ByteStream,
    chunk: Vec<u8>,
    at: usize,
}

impl Read for Body {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.at == self.chunk.len() {
            match self.runtime.block_on(self.stream.next()) {
                Some(Ok(chunk)) => {
                    self.chunk.clear();
                    self.chunk.extend_from_slice(&chunk);
                    self.at = 0;
                }
                Some(Err(err)) => return Err(io::Error::other(err)),
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.chunk.len() - self.at);
        buf[..n].copy_from_slice(&self.chunk[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}
