//! The Security Hub sink: `BatchImportFindings` of the ASFF findings of signals
//! (`sesguard::output::asff`), a REST-JSON call signed with SigV4 over the same rustls/ring
//! connector as the SDK clients. The SDK's Security Hub crate would add megabytes to a binary
//! with an 8 MB budget for one operation (BENCHMARKS.md).
//!
//! Findings are imported under the signal id, so a retried or duplicated signal updates its
//! finding. A call that fails, or whose answer lists failed findings, is an error of kind
//! [`ImportError::kind`]: the invocation fails and Lambda retries it (nothing is lost).

use std::sync::Arc;
use std::time::SystemTime;

use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use aws_smithy_http_client::{Connector, tls};
use aws_smithy_runtime_api::client::http::{HttpConnector, HttpConnectorSettings};
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::byte_stream::ByteStream;
use serde_json::Value;

use sesguard::deliver::SinkError;
use sesguard::output::asff::{self, ImportError, ProductArn};
use sesguard::signal::Signal;

use super::{ATTEMPT_TIMEOUT, CONNECT_TIMEOUT};

/// Security Hub's signing name.
const SERVICE: &str = "securityhub";

/// Imports findings into one account's Security Hub.
#[derive(Clone)]
pub struct SecurityHub {
    connector: Arc<Connector>,
    credentials: SharedCredentialsProvider,
    product: ProductArn,
    endpoint: String,
}

impl std::fmt::Debug for SecurityHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecurityHub")
            .field("product", &self.product)
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}

/// Security Hub's endpoint: `AWS_ENDPOINT_URL_SECURITYHUB`, else `AWS_ENDPOINT_URL` (as the SDK
/// clients honour them: a local emulator in tests), else the product's region.
pub fn endpoint(lookup: impl Fn(&str) -> Option<String>, product: &ProductArn) -> String {
    ["AWS_ENDPOINT_URL_SECURITYHUB", "AWS_ENDPOINT_URL"]
        .iter()
        .find_map(|name| lookup(name).filter(|v| !v.trim().is_empty()))
        .map_or_else(
            || product.endpoint(),
            |url| url.trim().trim_end_matches('/').to_owned(),
        )
}

fn call_failed(message: impl Into<String>, timed_out: bool) -> ImportError {
    ImportError::Call {
        message: message.into(),
        timed_out,
    }
}

impl SecurityHub {
    /// A client for `product`'s account and region, with the credentials of `sdk` (the
    /// function's role) and the endpoint of the environment (see [`endpoint`]).
    pub fn new(sdk: &aws_config::SdkConfig, product: ProductArn) -> Result<Self, ImportError> {
        let credentials = sdk
            .credentials_provider()
            .ok_or_else(|| call_failed("no credentials provider", false))?;
        let endpoint = endpoint(|name| std::env::var(name).ok(), &product);
        Ok(Self::with_endpoint(credentials, product, endpoint))
    }

    pub fn with_endpoint(
        credentials: SharedCredentialsProvider,
        product: ProductArn,
        endpoint: String,
    ) -> Self {
        let connector = Connector::builder()
            .connector_settings(
                HttpConnectorSettings::builder()
                    .connect_timeout(CONNECT_TIMEOUT)
                    .read_timeout(ATTEMPT_TIMEOUT)
                    .build(),
            )
            .sleep_impl(aws_smithy_async::rt::sleep::TokioSleep::new())
            .tls_provider(tls::Provider::Rustls(
                tls::rustls_provider::CryptoMode::Ring,
            ))
            .build();
        SecurityHub {
            connector: Arc::new(connector),
            credentials,
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
        let credentials = self
            .credentials
            .provide_credentials()
            .await
            .map_err(|err| call_failed(format!("no credentials: {err}"), false))?;
        let identity = credentials.into();
        let url = format!("{}{path}", self.endpoint);
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.product.region)
            .name(SERVICE)
            .time(SystemTime::now())
            .settings(SigningSettings::default())
            .build()
            .map_err(|err| call_failed(format!("signing: {err}"), false))?
            .into();
        let headers = [("content-type", "application/json")];
        let signable = SignableRequest::new(
            "POST",
            &url,
            headers.iter().copied(),
            SignableBody::Bytes(body.as_bytes()),
        )
        .map_err(|err| call_failed(format!("signing: {err}"), false))?;
        let (instructions, _) = sign(signable, &params)
            .map_err(|err| call_failed(format!("signing: {err}"), false))?
            .into_parts();
        let mut request = http::Request::builder()
            .method("POST")
            .uri(&url)
            .header("content-type", "application/json")
            .body(SdkBody::from(body))
            .map_err(|err| call_failed(format!("request: {err}"), false))?;
        instructions.apply_to_request_http1x(&mut request);
        let request = request
            .try_into()
            .map_err(|err| call_failed(format!("request: {err}"), false))?;
        let call = async {
            let response = self
                .connector
                .call(request)
                .await
                .map_err(|err| call_failed(describe(&err), err.is_timeout()))?;
            let status = response.status().as_u16();
            let body = ByteStream::new(response.into_body())
                .collect()
                .await
                .map_err(|err| call_failed(format!("reading the answer: {err}"), false))?;
            Ok((status, body.into_bytes().to_vec()))
        };
        tokio::time::timeout(ATTEMPT_TIMEOUT, call)
            .await
            .map_err(|_| call_failed(format!("no answer within {ATTEMPT_TIMEOUT:?}"), true))?
    }
}

/// A connector error with its causes (a bare "io error" says nothing of a refused connection).
fn describe(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
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
