//! What this crate's emulator tests share: moto's endpoint, an SDK configuration for it, unique
//! names, the sample events, a state table, SQS queues and a signals topic read through one.
//! Each test binary uses part of it.
#![allow(dead_code)]

use std::sync::atomic::{AtomicU64, Ordering};

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
};
use aws_sdk_sqs::types::QueueAttributeName;
use sesguard_lambda::aws::dynamodb::{DynamoState, KEY_ATTRIBUTE};
use sesguard_lambda::aws::sns::SnsPublisher;

/// moto's endpoint (`SESGUARD_TEST_ENDPOINT`, set by scripts/emulators.sh); `None` skips the
/// test, unless `SESGUARD_REQUIRE_EMULATORS` says the emulators must be there.
pub fn endpoint() -> Option<String> {
    match std::env::var("SESGUARD_TEST_ENDPOINT") {
        Ok(endpoint) if !endpoint.is_empty() => Some(endpoint),
        _ => {
            assert!(
                std::env::var_os("SESGUARD_REQUIRE_EMULATORS").is_none(),
                "SESGUARD_REQUIRE_EMULATORS is set but SESGUARD_TEST_ENDPOINT is not"
            );
            eprintln!(
                "skipped: no SESGUARD_TEST_ENDPOINT (run ./scripts/test.sh for the emulator tests)"
            );
            None
        }
    }
}

/// The SDK configuration for moto in `us-east-1`, on the Lambda's own HTTP client.
pub async fn sdk(endpoint: &str) -> aws_config::SdkConfig {
    sdk_in(endpoint, "us-east-1").await
}

/// The SDK configuration for moto in `region`, on the Lambda's own HTTP client.
pub async fn sdk_in(endpoint: &str, region: &'static str) -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(sesguard_lambda::aws::http_client())
        .endpoint_url(endpoint)
        .region(aws_config::Region::new(region))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            "testing", "testing", None, None, "tests",
        ))
        .load()
        .await
}

static UNIQUE: AtomicU64 = AtomicU64::new(0);

/// A name no other test of any run against the same moto uses.
pub fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        UNIQUE.fetch_add(1, Ordering::Relaxed)
    )
}

pub const EVENTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../events");

/// A sample event of `events/`.
pub fn sample(name: &str) -> String {
    std::fs::read_to_string(format!("{EVENTS}/{name}")).expect("sample event")
}

/// A new state table laid out as template.yaml's (hash key only): the admin client and its name.
pub async fn create_table(
    sdk: &aws_config::SdkConfig,
    prefix: &str,
) -> (aws_sdk_dynamodb::Client, String) {
    let client = aws_sdk_dynamodb::Client::new(sdk);
    let name = unique(prefix);
    client
        .create_table()
        .table_name(&name)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name(KEY_ATTRIBUTE)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .expect("attribute"),
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name(KEY_ATTRIBUTE)
                .key_type(KeyType::Hash)
                .build()
                .expect("key"),
        )
        .send()
        .await
        .expect("create table");
    (client, name)
}

/// Turns on TTL on `expires_at`, as template.yaml does.
pub async fn enable_ttl(client: &aws_sdk_dynamodb::Client, name: &str) {
    client
        .update_time_to_live()
        .table_name(name)
        .time_to_live_specification(
            aws_sdk_dynamodb::types::TimeToLiveSpecification::builder()
                .attribute_name(sesguard_lambda::aws::dynamodb::TTL_ATTRIBUTE)
                .enabled(true)
                .build()
                .expect("ttl"),
        )
        .send()
        .await
        .expect("ttl");
}

/// A new S3 bucket (path-style addressing, as moto needs): the client and its name.
pub async fn bucket(sdk: &aws_config::SdkConfig, prefix: &str) -> (aws_sdk_s3::Client, String) {
    let client = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(sdk)
            .force_path_style(true)
            .build(),
    );
    let name = unique(prefix);
    client
        .create_bucket()
        .bucket(&name)
        .send()
        .await
        .expect("create bucket");
    (client, name)
}

/// The state in a new table.
pub async fn table(sdk: &aws_config::SdkConfig, prefix: &str) -> DynamoState {
    let (client, name) = create_table(sdk, prefix).await;
    DynamoState::new(client, name)
}

/// An SQS queue.
pub struct Queue {
    pub url: String,
    pub arn: String,
}

/// A new queue; with `dead_letter`, what fails once goes there (visible again at once:
/// visibility 0, so no test waits).
pub async fn queue(sqs: &aws_sdk_sqs::Client, name: &str, dead_letter: Option<&Queue>) -> Queue {
    let mut create = sqs.create_queue().queue_name(unique(name));
    if let Some(dlq) = dead_letter {
        let policy =
            serde_json::json!({"deadLetterTargetArn": dlq.arn, "maxReceiveCount": 1}).to_string();
        create = create
            .attributes(QueueAttributeName::RedrivePolicy, policy)
            .attributes(QueueAttributeName::VisibilityTimeout, "0");
    }
    let url = create.send().await.expect("queue").queue_url.expect("url");
    let arn = sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .expect("attributes")
        .attributes
        .and_then(|a| a.get(&QueueAttributeName::QueueArn).cloned())
        .expect("arn");
    Queue { url, arn }
}

/// Every message visible in `queue`: (receipt handle, body).
pub async fn receive_all(sqs: &aws_sdk_sqs::Client, queue: &Queue) -> Vec<(String, String)> {
    let mut out = Vec::new();
    loop {
        let batch = sqs
            .receive_message()
            .queue_url(&queue.url)
            .max_number_of_messages(10)
            .visibility_timeout(30)
            .send()
            .await
            .expect("receive")
            .messages
            .unwrap_or_default();
        if batch.is_empty() {
            return out;
        }
        for m in batch {
            out.push((
                m.receipt_handle().unwrap_or_default().to_owned(),
                m.body().unwrap_or_default().to_owned(),
            ));
        }
    }
}

/// A signals topic named after `name` with a queue subscribed to read what was published.
pub async fn topic(sdk: &aws_config::SdkConfig, name: &str) -> (SnsPublisher, Queue) {
    let sns = aws_sdk_sns::Client::new(sdk);
    let sqs = aws_sdk_sqs::Client::new(sdk);
    let topic = sns
        .create_topic()
        .name(unique(name))
        .send()
        .await
        .expect("topic")
        .topic_arn
        .expect("arn");
    let inbox = queue(&sqs, name, None).await;
    sns.subscribe()
        .topic_arn(&topic)
        .protocol("sqs")
        .endpoint(&inbox.arn)
        .send()
        .await
        .expect("subscribe");
    (SnsPublisher::new(sns, topic), inbox)
}

/// Static test credentials, for the calls signed by hand (Security Hub, the heartbeat's SES).
pub fn test_credentials() -> aws_credential_types::provider::SharedCredentialsProvider {
    aws_credential_types::provider::SharedCredentialsProvider::new(
        aws_credential_types::Credentials::new("testing", "testing", None, None, "tests"),
    )
}

/// One HTTP request a [`http_stub`] received: its head (request line and headers, lower-cased)
/// and body.
#[derive(Debug, Clone)]
pub struct StubRequest {
    pub head: String,
    pub body: Vec<u8>,
}

/// A stub HTTP server on 127.0.0.1 (keep-alive, `Content-Length` bodies): `answer` gives each
/// request's status and body; every request is kept. Returns its URL and the requests.
pub async fn http_stub<F>(answer: F) -> (String, std::sync::Arc<std::sync::Mutex<Vec<StubRequest>>>)
where
    F: Fn(&StubRequest) -> (u16, String) + Send + Sync + 'static,
{
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let requests = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let kept = requests.clone();
    let answer = std::sync::Arc::new(answer);
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let (kept, answer) = (kept.clone(), answer.clone());
            tokio::spawn(async move {
                let mut buffer = Vec::new();
                loop {
                    // One request: headers, then Content-Length bytes of body.
                    let (head_end, length) = loop {
                        if let Some(at) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                            let head = String::from_utf8_lossy(&buffer[..at]).to_lowercase();
                            let length = head
                                .lines()
                                .find_map(|l| l.strip_prefix("content-length:"))
                                .and_then(|v| v.trim().parse::<usize>().ok())
                                .unwrap_or(0);
                            break (at + 4, length);
                        }
                        let mut chunk = [0u8; 8192];
                        match socket.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
                        }
                    };
                    while buffer.len() < head_end + length {
                        let mut chunk = [0u8; 65536];
                        match socket.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
                        }
                    }
                    let request = StubRequest {
                        head: String::from_utf8_lossy(&buffer[..head_end]).to_lowercase(),
                        body: buffer[head_end..head_end + length].to_vec(),
                    };
                    buffer.drain(..head_end + length);
                    let (status, body) = answer(&request);
                    kept.lock().unwrap_or_else(|e| e.into_inner()).push(request);
                    let response = format!(
                        "HTTP/1.1 {status} Stub\r\ncontent-type: text/plain\r\ncontent-length: {}\r\n\r\n{body}",
                        body.len()
                    );
                    if socket.write_all(response.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (url, requests)
}
