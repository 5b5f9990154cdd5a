//! The Security Hub sink: `BatchImportFindings` of the ASFF findings of signals
//! (`sesguard::output::asff`), a REST-JSON call signed with SigV4 over the same rustls/ring
//! connector as the SDK clients. The SDK's Security Hub crate would add megabytes to a binary
//! with an 8 MB budget for one operation (BENCHMARKS.md).
//!
//! Findings are imported under the signal id, so a retried or duplicated signal updates its
//! finding. A call that fails, or whose answer lists failed findings, is an error of kind
//! [`ImportError::kind`]: the invocation fails and Lambda retries it (nothing is lost).

use aws_credential_types::provider::SharedCredentialsProvider;
use serde_json::Value;

use sesguard::deliver::SinkError;
use sesguard::output::asff::{self, ImportError, ProductArn};
use sesguard::signal::Signal;

use super::signed::{CallError, Post, SignedHttp};

/// Security Hub's signing name.
const SERVICE: &str = "securityhub";

/// Imports findings into one account's Security Hub.
#[derive(Clone, Debug)]
pub struct SecurityHub {
    http: SignedHttp,
    product: ProductArn,
    endpoint: String,
}

/// Security Hub's endpoint: `AWS_ENDPOINT_URL_SECURITYHUB`, else `AWS_ENDPOINT_URL` (as the SDK
/// clients honour them: a local emulator in tests), else the product's region.
pub fn endpoint(lookup: impl Fn(&str) -> Option<String>, product: &ProductArn) -> String {
    super::signed::endpoint(lookup, "AWS_ENDPOINT_URL_SECURITYHUB", || {
        product.endpoint()
    })
}

fn call_failed(err: CallError) -> ImportError {
    ImportError::Call {
        message: err.message,
        timed_out: err.timed_out,
    }
}

impl SecurityHub {
    /// A client for `product`'s account and region, with the credentials of `sdk` (the
    /// function's role) and the endpoint of the environment (see [`endpoint`]).
    pub fn new(sdk: &aws_config::SdkConfig, product: ProductArn) -> Result<Self, ImportError> {
        let http = SignedHttp::from_sdk(sdk).map_err(call_failed)?;
        let endpoint = endpoint(|name| std::env::var(name).ok(), &product);
        Ok(SecurityHub {
            http,
            product,
            endpoint,
        })
    }

    pub fn with_endpoint(
        credentials: SharedCredentialsProvider,
        product: ProductArn,
        endpoint: String,
    ) -> Self {
        SecurityHub {
            http: SignedHttp::new(credentials),
            product,
            endpoint,
        }
    }

    pub fn product(&self) -> &ProductArn {
        &self.product
    }

    /// The findings of `signals`, in calls of at most [`asff::MAX_BATCH`]; the first failed
    /// call stops (its findings and the later ones are imported again on the retry).
    pub async fn import(&self, signals: &[Signal]) -> Result<u64, SinkError> {
        let arn = self.product.arn();
        let findings: Vec<Value> = signals
            .iter()
            .map(|s| asff::finding(s, &arn, &self.product.account))
            .collect();
        self.import_findings(&findings).await
    }

    /// `findings` (ASFF JSON) as they are, in calls of at most [`asff::MAX_BATCH`].
    pub async fn import_findings(&self, findings: &[Value]) -> Result<u64, SinkError> {
        // The mapping caps every field far below Security Hub's limit (asff's tests); a finding
        // over it would be refused on every retry, so it is refused here, named, not sent.
        if let Some(big) = findings
            .iter()
            .find(|f| serde_json::to_string(f).map_or(0, |t| t.len()) > asff::MAX_FINDING_BYTES)
        {
            let err = ImportError::TooLarge {
                id: sesguard::text::truncate(big["Id"].as_str().unwrap_or("unknown"), 100),
            };
            return Err(SinkError::new(err.kind(), format!("Security Hub: {err}")).with_source(err));
        }
        let mut imported = 0;
        for batch in asff::batches(findings) {
            let body = serde_json::json!({ "Findings": batch }).to_string();
            let result = match self.post("/findings/import", body).await {
                Ok((status, body)) => asff::import_result(status, &body),
                Err(err) => Err(err),
            };
            match result {
                Ok(n) => imported += n,
                Err(err) => {
                    tracing::warn!(
                        findings = batch.len(),
                        error = %err,
                        "Security Hub did not import the findings"
                    );
                    return Err(
                        SinkError::new(err.kind(), format!("Security Hub: {err}")).with_source(err)
                    );
                }
            }
        }
        Ok(imported)
    }

    /// `GetFindings` with `filters` (ASFF filter JSON): the findings it answers (its first page).
    /// For tests and checks; the function only imports.
    pub async fn get_findings(&self, filters: Value) -> Result<Vec<Value>, ImportError> {
        let body = serde_json::json!({ "Filters": filters, "MaxResults": 100 }).to_string();
        let (status, body) = self.post("/findings", body).await?;
        let answer: Value =
            serde_json::from_slice(&body).map_err(|_| ImportError::Unreadable { status })?;
        if !(200..300).contains(&status) {
            return Err(ImportError::Status {
                status,
                code: "GetFindings".to_owned(),
            });
        }
        Ok(answer["Findings"].as_array().cloned().unwrap_or_default())
    }

    /// One signed POST of `body` to `path`: the status and the body of the answer.
    async fn post(&self, path: &str, body: String) -> Result<(u16, Vec<u8>), ImportError> {
        let url = format!("{}{path}", self.endpoint);
        let answer = self
            .http
            .post(Post {
                url: &url,
                region: &self.product.region,
                service: SERVICE,
                content_type: "application/json",
                body: &body,
                user_agent: None,
            })
            .await
            .map_err(call_failed)?;
        Ok((answer.status, answer.body))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_endpoint_is_the_emulators_if_set_else_the_regions() {
        let product = ProductArn::parse(
            "arn:aws:securityhub:eu-west-1:111122223333:product/111122223333/default",
        )
        .expect("arn");
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| (*v).to_owned())
            }
        };
        assert_eq!(
            endpoint(env(&[]), &product),
            "https://securityhub.eu-west-1.amazonaws.com"
        );
        assert_eq!(
            endpoint(
                env(&[("AWS_ENDPOINT_URL", "http://127.0.0.1:5000/")]),
                &product
            ),
            "http://127.0.0.1:5000"
        );
        assert_eq!(
            endpoint(
                env(&[
                    ("AWS_ENDPOINT_URL", "http://127.0.0.1:5000"),
                    ("AWS_ENDPOINT_URL_SECURITYHUB", "http://127.0.0.1:6000")
                ]),
                &product
            ),
            "http://127.0.0.1:6000"
        );
    }
}

/// A sink that imports each signal into Security Hub (when it has one) before handing it to
/// `inner` (SNS): a failed import fails the emit before anything is published, and the retry
/// imports again (the same Id: an update) then publishes once.
#[derive(Debug)]
pub struct ImportThen<K> {
    security_hub: Option<SecurityHub>,
    inner: K,
}

impl<K> ImportThen<K> {
    pub fn new(security_hub: Option<SecurityHub>, inner: K) -> Self {
        ImportThen {
            security_hub,
            inner,
        }
    }

    pub fn inner(&self) -> &K {
        &self.inner
    }

    pub fn security_hub(&self) -> Option<&SecurityHub> {
        self.security_hub.as_ref()
    }
}

impl<K: sesguard::deliver::Sink + Send> sesguard::deliver::Sink for ImportThen<K> {
    async fn emit(&self, signal: &Signal) -> Result<(), SinkError> {
        if let Some(hub) = &self.security_hub {
            hub.import(std::slice::from_ref(signal)).await?;
        }
        self.inner.emit(signal).await
    }
}
