//! The S3 object store: `GetObject` on the trail bucket, the body streamed to the reader; and
//! the configuration store (conditional `GetObject` of the configuration and the Tor list).
//!
//! The body is an async stream; the reader (inflate, split, prefilter) is synchronous and runs
//! on a blocking thread, so the body is bridged with [`SyncIoBridge`]: each read waits for the
//! next chunk from the network, and nothing of the object is held beyond the reader's buffers.

use std::pin::Pin;

use aws_sdk_s3::Client;
use tokio::io::AsyncRead;
use tokio_util::io::SyncIoBridge;

use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use sesguard::lambda::{ConfigStore, Fetched, ObjectError, ObjectStore};
use sesguard::model::FailureKind;
use sesguard::notification::ObjectRef;
use sesguard::s3url::S3Url;

/// An object's body, readable on a blocking thread.
pub type Body = SyncIoBridge<Pin<Box<dyn AsyncRead + Send>>>;

#[derive(Debug, Clone)]
pub struct S3Objects {
    client: Client,
    /// The only bucket read, if set.
    bucket: Option<String>,
    /// The account that must own the bucket, if set (S3 refuses the call otherwise).
    owner: Option<String>,
}

impl S3Objects {
    pub fn new(client: Client) -> Self {
        S3Objects {
            client,
            bucket: None,
            owner: None,
        }
    }

    /// Reads only `bucket`: a notification naming another fails (not retried into success).
    pub fn only_bucket(mut self, bucket: Option<String>) -> Self {
        self.bucket = bucket;
        self
    }

    /// Sends `ExpectedBucketOwner`: a bucket re-created in another account is not read.
    pub fn expected_owner(mut self, account: Option<String>) -> Self {
        self.owner = account;
        self
    }
}

impl ObjectStore for S3Objects {
    type Body = Body;

    async fn open(&self, object: &ObjectRef) -> Result<Body, ObjectError> {
        if let Some(bucket) = &self.bucket
            && *bucket != object.bucket
        {
            return Err(ObjectError::new(
                FailureKind::Denied,
                format!(
                    "{}: not the trail bucket ({bucket}): not read",
                    sesguard::text::truncate(&object.url(), 300)
                ),
            ));
        }
        let output = self
            .client
            .get_object()
            .bucket(&object.bucket)
            .key(&object.key)
            .set_expected_bucket_owner(self.owner.clone())
            .send()
            .await
            .map_err(|err| {
                let kind = match err.as_service_error() {
                    Some(e) if e.is_no_such_key() => FailureKind::NotFound,
                    _ => super::failure_kind(&err),
                };
                ObjectError::new(
                    kind,
                    format!(
                        "S3 GetObject {}: {}",
                        sesguard::text::truncate(&object.url(), 300),
                        super::describe(&err)
                    ),
                )
                .with_source(err)
            })?;
        let body: Pin<Box<dyn AsyncRead + Send>> = Box::pin(output.body.into_async_read());
        Ok(SyncIoBridge::new(body))
    }
}

/// The largest configuration file or Tor exit list read (the Tor Project's bulk list is tens of
/// kilobytes): a larger object is refused, not held in memory.
pub const CONFIG_MAX_BYTES: usize = 4 * 1024 * 1024;

impl ConfigStore for S3Objects {
    /// A conditional `GetObject` (`If-None-Match`): S3 answers 304 without a body while the
    /// object is unchanged.
    async fn fetch(&self, url: &S3Url, etag: Option<&str>) -> Result<Fetched, ObjectError> {
        let output = self
            .client
            .get_object()
            .bucket(&url.bucket)
            .key(&url.prefix)
            .set_if_none_match(etag.map(str::to_owned))
            .send()
            .await;
        let output = match output {
            Ok(output) => output,
            Err(err) if not_modified(&err) => return Ok(Fetched::NotModified),
            Err(err) => {
                let kind = match err.as_service_error() {
                    Some(e) if e.is_no_such_key() => FailureKind::NotFound,
                    _ => super::failure_kind(&err),
                };
                return Err(ObjectError::new(
                    kind,
                    format!("S3 GetObject {url}: {}", super::describe(&err)),
                )
                .with_source(err));
            }
        };
        if output
            .content_length()
            .is_some_and(|n| usize::try_from(n).map_or(true, |n| n > CONFIG_MAX_BYTES))
        {
            return Err(ObjectError::new(
                FailureKind::TooLarge,
                format!("{url}: larger than {CONFIG_MAX_BYTES} bytes"),
            ));
        }
        let new_etag = output.e_tag().map(str::to_owned);
        let bytes = output
            .body
            .collect()
            .await
            .map_err(|err| {
                ObjectError::new(
                    FailureKind::Unavailable,
                    format!("S3 GetObject {url}: {err}"),
                )
            })?
            .into_bytes();
        let text = String::from_utf8(bytes.to_vec()).map_err(|_| {
            ObjectError::new(FailureKind::Invalid, format!("{url}: not UTF-8 text"))
        })?;
        Ok(Fetched::Text {
            text,
            etag: new_etag,
        })
    }
}

/// Whether S3 answered 304 Not Modified (the SDK reports it as an error without a code).
fn not_modified<E>(err: &SdkError<E, HttpResponse>) -> bool {
    matches!(err, SdkError::ServiceError(context) if context.raw().status().as_u16() == 304)
}
