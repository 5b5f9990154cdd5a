//! One SigV4-signed HTTPS POST over the same rustls/ring connector as the SDK clients: the
//! calls sesguard makes without an SDK crate (Security Hub's `BatchImportFindings`, SES's
//! `GetSendQuota`), each of which would add megabytes to a binary with an 8 MB budget for one
//! operation (BENCHMARKS.md).

use std::sync::{Arc, OnceLock};
use std::time::SystemTime;

use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use aws_smithy_http_client::{Connector, tls};
use aws_smithy_runtime_api::client::http::{HttpConnector, HttpConnectorSettings};
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::byte_stream::ByteStream;

use super::{ATTEMPT_TIMEOUT, CONNECT_TIMEOUT};

/// A call that could not be made, or got no answer in time (`timed_out`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct CallError {
    pub message: String,
    pub timed_out: bool,
}

impl CallError {
    fn new(message: impl Into<String>) -> Self {
        CallError {
            message: message.into(),
            timed_out: false,
        }
    }
}

/// What a signed call answered: its HTTP status and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    pub body: Vec<u8>,
}

/// One request: where, as which service in which region, and what.
#[derive(Debug, Clone, Copy)]
pub struct Post<'a> {
    pub url: &'a str,
    pub region: &'a str,
    /// The signing name (`securityhub`, `ses`).
    pub service: &'a str,
    pub content_type: &'a str,
    pub body: &'a str,
    /// The `User-Agent` header, if any (not signed: CloudTrail records it as the call's
    /// `userAgent`).
    pub user_agent: Option<&'a str>,
}

/// Signs with the function's credentials and sends over rustls/ring, with the SDK clients'
/// connect and attempt timeouts. One attempt per call: the caller decides on retries.
///
/// The connector (its TLS configuration reads the system's root certificates) is built at the
/// first call, not at the cold start: most invocations never make one of these calls.
#[derive(Clone)]
pub struct SignedHttp {
    connector: Arc<OnceLock<Connector>>,
    credentials: SharedCredentialsProvider,
}

impl std::fmt::Debug for SignedHttp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignedHttp").finish_non_exhaustive()
    }
}

impl SignedHttp {
    /// With the credentials of `sdk` (the function's role).
    pub fn from_sdk(sdk: &aws_config::SdkConfig) -> Result<Self, CallError> {
        let credentials = sdk
            .credentials_provider()
            .ok_or_else(|| CallError::new("no credentials provider"))?;
        Ok(Self::new(credentials))
    }

    pub fn new(credentials: SharedCredentialsProvider) -> Self {
        SignedHttp {
            connector: Arc::new(OnceLock::new()),
            credentials,
        }
    }

    fn connector(&self) -> &Connector {
        self.connector.get_or_init(|| {
            Connector::builder()
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
                .build()
        })
    }

    /// One signed POST: the status and body of the answer, within [`ATTEMPT_TIMEOUT`].
    pub async fn post(&self, post: Post<'_>) -> Result<Answer, CallError> {
        let credentials = self
            .credentials
            .provide_credentials()
            .await
            .map_err(|err| CallError::new(format!("no credentials: {err}")))?;
        let identity = credentials.into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(post.region)
            .name(post.service)
            .time(SystemTime::now())
            .settings(SigningSettings::default())
            .build()
            .map_err(|err| CallError::new(format!("signing: {err}")))?
            .into();
        let headers = [("content-type", post.content_type)];
        let signable = SignableRequest::new(
            "POST",
            post.url,
            headers.iter().copied(),
            SignableBody::Bytes(post.body.as_bytes()),
        )
        .map_err(|err| CallError::new(format!("signing: {err}")))?;
        let (instructions, _) = sign(signable, &params)
            .map_err(|err| CallError::new(format!("signing: {err}")))?
            .into_parts();
        let mut request = http::Request::builder()
            .method("POST")
            .uri(post.url)
            .header("content-type", post.content_type);
        if let Some(agent) = post.user_agent {
            request = request.header("user-agent", agent);
        }
        let mut request = request
            .body(SdkBody::from(post.body.to_owned()))
            .map_err(|err| CallError::new(format!("request: {err}")))?;
        instructions.apply_to_request_http1x(&mut request);
        let request = request
            .try_into()
            .map_err(|err| CallError::new(format!("request: {err}")))?;
        let call = async {
            let response = self
                .connector()
                .call(request)
                .await
                .map_err(|err| CallError {
                    message: describe(&err),
                    timed_out: err.is_timeout(),
                })?;
            let status = response.status().as_u16();
            let body = ByteStream::new(response.into_body())
                .collect()
                .await
                .map_err(|err| CallError::new(format!("reading the answer: {err}")))?;
            Ok(Answer {
                status,
                body: body.into_bytes().to_vec(),
            })
        };
        tokio::time::timeout(ATTEMPT_TIMEOUT, call)
            .await
            .map_err(|_| CallError {
                message: format!("no answer within {ATTEMPT_TIMEOUT:?}"),
                timed_out: true,
            })?
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

/// A service's endpoint: `AWS_ENDPOINT_URL_<SERVICE>`, else `AWS_ENDPOINT_URL` (as the SDK
/// clients honour them: a local emulator in tests), else `default`.
pub fn endpoint(
    lookup: impl Fn(&str) -> Option<String>,
    service_variable: &str,
    default: impl FnOnce() -> String,
) -> String {
    [service_variable, "AWS_ENDPOINT_URL"]
        .iter()
        .find_map(|name| lookup(name).filter(|v| !v.trim().is_empty()))
        .map_or_else(default, |url| url.trim().trim_end_matches('/').to_owned())
}
