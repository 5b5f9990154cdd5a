//! The heartbeat's canary call: SES's `GetSendQuota` (the v1 Query API) in one region, made
//! with the function's role and [`sesguard::heartbeat::MARKER`] in its user agent, so that the
//! record CloudTrail makes of it comes back through EventBridge as the canary
//! (`sesguard::heartbeat`). Signed by hand ([`super::signed`]): the SES SDK crate would add
//! megabytes for one read call.
//!
//! The answer matters little: CloudTrail records a refused call too (with its `errorCode`), and
//! it still comes back as the canary. A failed call is reported so that it can be logged and
//! counted; the heartbeat run goes on with the other regions.

use super::signed::{CallError, Post, SignedHttp};

/// SES's signing name (the v1 API's endpoint is `email.<region>`).
const SERVICE: &str = "ses";
/// The Query API request: no parameters, no resource.
const BODY: &str = "Action=GetSendQuota&Version=2010-12-01";

/// Why a canary call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CanaryError {
    /// The call could not be made or got no answer.
    #[error("GetSendQuota in {region}: {source}")]
    Call {
        region: String,
        #[source]
        source: CallError,
    },
    /// SES answered an error (`code`: its error code, cut to letters and digits).
    #[error("GetSendQuota in {region} answered HTTP {status} {code}")]
    Status {
        region: String,
        status: u16,
        code: String,
    },
}

/// Makes the canary call, region by region.
#[derive(Debug, Clone)]
pub struct CanaryCaller {
    http: SignedHttp,
    /// An emulator's URL for every region (`AWS_ENDPOINT_URL_SES` / `AWS_ENDPOINT_URL`), else
    /// each region's own endpoint.
    endpoint_override: Option<String>,
    user_agent: String,
}

impl CanaryCaller {
    /// With the credentials of `sdk` (the function's role) and the endpoint of the environment.
    pub fn new(sdk: &aws_config::SdkConfig) -> Result<Self, CallError> {
        let endpoint_override = Some(super::signed::endpoint(
            |name| std::env::var(name).ok(),
            "AWS_ENDPOINT_URL_SES",
            String::new,
        ))
        .filter(|url| !url.is_empty());
        Ok(CanaryCaller {
            http: SignedHttp::from_sdk(sdk)?,
            endpoint_override,
            user_agent: user_agent(),
        })
    }

    /// With `credentials`, calling `endpoint_override` for every region if given (an emulator or
    /// a stub), else each region's own endpoint.
    pub fn with_endpoint(
        credentials: aws_credential_types::provider::SharedCredentialsProvider,
        endpoint_override: Option<String>,
    ) -> Self {
        CanaryCaller {
            http: SignedHttp::new(credentials),
            endpoint_override,
            user_agent: user_agent(),
        }
    }

    /// The endpoint of `region`: the override, else SES's regional endpoint.
    pub fn endpoint(&self, region: &str) -> String {
        self.endpoint_override
            .clone()
            .unwrap_or_else(|| regional_endpoint(region))
    }

    /// One `GetSendQuota` in `region`.
    pub async fn call(&self, region: &str) -> Result<(), CanaryError> {
        let url = format!("{}/", self.endpoint(region));
        let answer = self
            .http
            .post(Post {
                url: &url,
                region,
                service: SERVICE,
                content_type: "application/x-www-form-urlencoded; charset=utf-8",
                body: BODY,
                user_agent: Some(&self.user_agent),
            })
            .await
            .map_err(|source| CanaryError::Call {
                region: region.to_owned(),
                source,
            })?;
        if (200..300).contains(&answer.status) {
            return Ok(());
        }
        Err(CanaryError::Status {
            region: region.to_owned(),
            status: answer.status,
            code: error_code(&answer.body),
        })
    }
}

/// The canary's user agent: the marker the detector looks for, and the version that made it.
pub fn user_agent() -> String {
    format!(
        "{}/{}",
        sesguard::heartbeat::MARKER,
        env!("CARGO_PKG_VERSION")
    )
}

/// SES's v1 endpoint in `region` (China's regions are under `amazonaws.com.cn`).
pub fn regional_endpoint(region: &str) -> String {
    let suffix = if region.starts_with("cn-") {
        "amazonaws.com.cn"
    } else {
        "amazonaws.com"
    };
    format!("https://email.{region}.{suffix}")
}

/// The `<Code>` of a Query API error answer, cut to letters, digits and `.` (the answer is
/// SES's, but a proxy could answer anything); `unknown` without one.
fn error_code(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let code = text
        .split_once("<Code>")
        .and_then(|(_, rest)| rest.split_once("</Code>"))
        .map(|(code, _)| {
            code.chars()
                .filter(|c| c.is_ascii_alphanumeric() || *c == '.')
                .take(64)
                .collect::<String>()
        })
        .unwrap_or_default();
    if code.is_empty() {
        "unknown".to_owned()
    } else {
        code
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_user_agent_carries_the_marker() {
        assert!(user_agent().starts_with("sesguard-heartbeat/"));
        assert!(sesguard::heartbeat::Canary::may_be(&user_agent()));
    }

    #[test]
    fn each_region_has_its_endpoint() {
        assert_eq!(
            regional_endpoint("eu-west-1"),
            "https://email.eu-west-1.amazonaws.com"
        );
        assert_eq!(
            regional_endpoint("cn-north-1"),
            "https://email.cn-north-1.amazonaws.com.cn"
        );
    }

    #[test]
    fn an_error_answer_gives_its_code_and_nothing_else() {
        let denied = br#"<ErrorResponse xmlns="http://ses.amazonaws.com/doc/2010-12-01/"><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>User: arn:aws:sts::1:assumed-role/x is not authorized</Message></Error></ErrorResponse>"#;
        assert_eq!(error_code(denied), "AccessDenied");
        assert_eq!(error_code(b"<html>502 Bad Gateway</html>"), "unknown");
        assert_eq!(
            error_code(b"<Code>\x1b[31m<script>x</script></Code>"),
            "31mscriptxscript"
        );
    }
}
