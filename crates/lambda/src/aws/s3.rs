//! The S3 object store: `GetObject` on the trail bucket, the body streamed to the reader.
//!
//! The body is an async stream; the reader (inflate, split, prefilter) is synchronous and runs
//! on a blocking thread, so the body is bridged with [`SyncIoBridge`]: each read waits for the
//! next chunk from the network, and nothing of the object is held beyond the reader's buffers.

use std::pin::Pin;

use aws_sdk_s3::Client;
use tokio::io::AsyncRead;
use tokio_util::io::SyncIoBridge;

use sesguard::lambda::{ObjectError, ObjectStore};
use sesguard::model::FailureKind;
use sesguard::notification::ObjectRef;

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
