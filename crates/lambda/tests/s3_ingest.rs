//! The S3 path against moto (S3, SQS, DynamoDB, SNS): log files put in a bucket whose
//! object-created notifications go to a queue, the messages read from the queue as the Lambda's
//! event source mapping hands them over (an SQS event), the batch run through the handler with
//! the real S3 store, DynamoDB state and SNS publisher, the signals read back from SNS and
//! compared with `sesguard scan` of the same files. Poisoned files fail only their message;
//! throttled GetObjects are retried; duplicate notifications, and events seen on both the
//! EventBridge and the S3 path, publish nothing twice.
//!
//! Skipped without `SESGUARD_TEST_ENDPOINT` (failing instead under `SESGUARD_REQUIRE_EMULATORS`),
//! as crates/lambda/tests/aws.rs.

mod support;
use support::*;

use std::io::Write as _;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use aws_lambda_events::event::sqs::SqsBatchResponse;
use aws_sdk_s3::types::{Event, NotificationConfiguration, QueueConfiguration};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::BeforeDeserializationInterceptorContextMut;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::config_bag::ConfigBag;
use flate2::Compression;
use flate2::write::GzEncoder;
use serde_json::{Value, json};
use sesguard::Engine;
use sesguard::config::{Config, Overrides};
use sesguard::deliver::Counts;
use sesguard::lambda::Handler;
use sesguard::notification::{Notice, parse};
use sesguard::scan::scan_text;
use sesguard_lambda::aws::s3::S3Objects;
use sesguard_lambda::aws::sns::SnsPublisher;
use sesguard_lambda::sqs::{handle_batch, sqs_batch};

/// A signals topic with a queue subscribed to read what was published.
async fn topic(sdk: &aws_config::SdkConfig) -> (SnsPublisher, String) {
    let sns = aws_sdk_sns::Client::new(sdk);
    let sqs = aws_sdk_sqs::Client::new(sdk);
    let topic = sns
        .create_topic()
        .name(unique("sesguard-s3-signals"))
        .send()
        .await
        .expect("topic")
        .topic_arn
        .expect("arn");
    let Queue { url, arn } = queue(&sqs, "sesguard-s3-signals", None).await;
    sns.subscribe()
        .topic_arn(&topic)
        .protocol("sqs")
        .endpoint(arn)
        .send()
        .await
        .expect("subscribe");
    (SnsPublisher::new(sns, topic), url)
}

/// The signals published so far (each SNS message's `Message`), sorted.
async fn published(sdk: &aws_config::SdkConfig, url: &str) -> Vec<String> {
    let sqs = aws_sdk_sqs::Client::new(sdk);
    let mut messages = Vec::new();
    loop {
        let batch = sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .send()
            .await
            .expect("receive")
            .messages
            .unwrap_or_default();
        if batch.is_empty() {
            break;
        }
        for message in batch {
            let envelope: Value =
                serde_json::from_str(message.body().unwrap_or_default()).expect("envelope");
            messages.push(envelope["Message"].as_str().unwrap_or_default().to_owned());
            if let Some(handle) = message.receipt_handle() {
                sqs.delete_message()
                    .queue_url(url)
                    .receipt_handle(handle)
                    .send()
                    .await
                    .expect("delete");
            }
        }
    }
    messages.sort();
    messages
}

/// A trail bucket whose object-created notifications go to an ingestion queue (moto sends them
/// as S3 does, keys URL-encoded, after an `s3:TestEvent`).
struct Trail {
    s3: aws_sdk_s3::Client,
    sqs: aws_sdk_sqs::Client,
    bucket: String,
    queue_url: String,
    queue_arn: String,
}

impl Trail {
    async fn new(sdk: &aws_config::SdkConfig) -> Self {
        let s3 = aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(sdk)
                .force_path_style(true)
                .build(),
        );
        let sqs = aws_sdk_sqs::Client::new(sdk);
        let bucket = unique("trail");
        s3.create_bucket()
            .bucket(&bucket)
            .send()
            .await
            .expect("bucket");
        let Queue {
            url: queue_url,
            arn: queue_arn,
        } = queue(&sqs, "sesguard-ingest", None).await;
        s3.put_bucket_notification_configuration()
            .bucket(&bucket)
            .notification_configuration(
                NotificationConfiguration::builder()
                    .queue_configurations(
                        QueueConfiguration::builder()
                            .queue_arn(&queue_arn)
                            .events(Event::from("s3:ObjectCreated:*"))
                            .build()
                            .expect("queue configuration"),
                    )
                    .build(),
            )
            .send()
            .await
            .expect("notification configuration");
        Trail {
            s3,
            sqs,
            bucket,
            queue_url,
            queue_arn,
        }
    }

    async fn put(&self, key: &str, bytes: Vec<u8>) {
        self.s3
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .body(bytes.into())
            .send()
            .await
            .expect("put object");
    }

    /// Every message waiting in the queue, as the SQS event the Lambda receives (not deleted:
    /// the event source mapping deletes them after the invocation).
    async fn event(&self) -> String {
        let mut records = Vec::new();
        loop {
            let batch = self
                .sqs
                .receive_message()
                .queue_url(&self.queue_url)
                .max_number_of_messages(10)
                .send()
                .await
                .expect("receive")
                .messages
                .unwrap_or_default();
            if batch.is_empty() {
                break;
            }
            for m in batch {
                records.push(json!({
                    "messageId": m.message_id(),
                    "receiptHandle": m.receipt_handle(),
                    "body": m.body(),
                    "attributes": {"ApproximateReceiveCount": "1"},
                    "messageAttributes": {},
                    "md5OfBody": m.md5_of_body(),
                    "eventSource": "aws:sqs",
                    "eventSourceARN": self.queue_arn,
                    "awsRegion": "us-east-1",
                }));
            }
        }
        json!({ "Records": records }).to_string()
    }
}

/// The S3 store over `client`.
fn store(trail: &Trail, client: aws_sdk_s3::Client) -> S3Objects {
    S3Objects::new(client).only_bucket(Some(trail.bucket.clone()))
}

fn engine() -> Engine {
    Engine::new(Config::load(None, &Overrides::default()).expect("config"))
}

/// The sample events (EventBridge envelopes) in name order, and their records.
fn samples() -> Vec<(String, Value)> {
    let mut files: Vec<_> = std::fs::read_dir(EVENTS)
        .expect("events")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    files
        .iter()
        .map(|file| {
            let text = std::fs::read_to_string(file).expect("sample");
            let envelope: Value = serde_json::from_str(&text).expect("json");
            (text, envelope["detail"].clone())
        })
        .collect()
}

fn log_file(records: &[Value]) -> String {
    json!({ "Records": records }).to_string()
}

fn gzip(text: &str) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
    encoder.write_all(text.as_bytes()).expect("gzip");
    encoder.finish().expect("gzip")
}

const PREFIX: &str = "AWSLogs/o-abc123/111122223333/CloudTrail/us-east-1/2026/03/02/";

/// `sesguard scan` over log files (one per line), on a blocking thread.
async fn cli(files: Vec<String>) -> Vec<String> {
    let text = files.join("\n");
    let (collected, _) =
        tokio::task::spawn_blocking(move || scan_text(&engine(), "input", text.as_bytes()))
            .await
            .expect("scan");
    let mut signals: Vec<String> = collected.signals.iter().map(|s| s.to_json()).collect();
    signals.sort();
    signals
}

fn failed(response: &SqsBatchResponse) -> Vec<String> {
    let mut ids: Vec<String> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.clone())
        .collect();
    ids.sort();
    ids
}

/// The message ids of `event` whose notification names a key ending in `suffix`.
fn ids_for(event: &str, suffix: &str) -> Vec<String> {
    let event: Value = serde_json::from_str(event).expect("event");
    let mut ids: Vec<String> = event["Records"]
        .as_array()
        .expect("records")
        .iter()
        .filter(|m| {
            parse(m["body"].as_str().unwrap_or_default())
                .unwrap_or_default()
                .iter()
                .any(|n| matches!(n, Notice::LogFile(o) if o.key.ends_with(suffix)))
        })
        .map(|m| m["messageId"].as_str().unwrap_or_default().to_owned())
        .collect();
    ids.sort();
    ids
}

#[tokio::test]
async fn log_files_in_s3_give_exactly_the_signals_of_the_cli_once_whatever_the_duplicates() {
    let Some(endpoint) = endpoint() else { return };
    let sdk = sdk(&endpoint).await;
    let trail = Trail::new(&sdk).await;
    let (publisher, signals) = topic(&sdk).await;
    let handler = Handler::new(engine(), table(&sdk, "sesguard-s3-state").await, publisher);
    let records: Vec<Value> = samples().into_iter().map(|(_, r)| r).collect();
    let (first, second) = records.split_at(records.len() / 2);
    let (first, second) = (log_file(first), log_file(second));
    // A gzip'd log file with a key that needs URL-encoding, a plain one, and a digest file
    // (skipped: not records).
    trail
        .put(
            &format!("{PREFIX}111122223333_CloudTrail_us-east-1_20260302T1000Z_a+b c.json.gz"),
            gzip(&first),
        )
        .await;
    trail
        .put(
            &format!("{PREFIX}111122223333_CloudTrail_us-east-1_20260302T1005Z_x.json"),
            second.clone().into_bytes(),
        )
        .await;
    trail
        .put(
            "AWSLogs/o-abc123/111122223333/CloudTrail-Digest/us-east-1/2026/03/02/d.json.gz",
            b"not a log file".to_vec(),
        )
        .await;
    let payload = trail.event().await;
    let event = sqs_batch(&payload).expect("an SQS event");
    assert!(event.records.len() >= 3, "{payload}");
    let store = store(&trail, trail.s3.clone());
    let mut counts = Counts::default();
    let response = handle_batch(&handler, &store, &event, &mut counts).await;
    assert_eq!(failed(&response), Vec::<String>::new());
    assert_eq!(counts.files, 2, "the digest file was not read");
    assert_eq!(counts.records, records.len() as u64);

    let expected = cli(vec![first, second]).await;
    assert!(expected.len() > 20, "{}", expected.len());
    assert_eq!(published(&sdk, &signals).await, expected);

    // The same notifications again (SQS delivers at least once): nothing more.
    let response = handle_batch(&handler, &store, &event, &mut Counts::default()).await;
    assert_eq!(failed(&response), Vec::<String>::new());
    assert_eq!(published(&sdk, &signals).await, Vec::<String>::new());
}

#[tokio::test]
async fn an_event_seen_on_both_the_eventbridge_and_the_s3_path_gives_one_signal() {
    let Some(endpoint) = endpoint() else { return };
    let sdk = sdk(&endpoint).await;
    let trail = Trail::new(&sdk).await;
    let (publisher, signals) = topic(&sdk).await;
    let handler = Handler::new(engine(), table(&sdk, "sesguard-s3-state").await, publisher);
    let samples = samples();
    let records: Vec<Value> = samples.iter().map(|(_, r)| r.clone()).collect();
    let file = log_file(&records);
    let expected = cli(vec![file.clone()]).await;

    // EventBridge first (fast), the trail's log file later (complete).
    for (envelope, _) in &samples {
        handler
            .handle(envelope, "eventbridge", &mut Counts::default())
            .await
            .expect("EventBridge event");
    }
    trail
        .put(&format!("{PREFIX}both.json.gz"), gzip(&file))
        .await;
    let event = sqs_batch(&trail.event().await).expect("an SQS event");
    let store = store(&trail, trail.s3.clone());
    let response = handle_batch(&handler, &store, &event, &mut Counts::default()).await;
    assert_eq!(failed(&response), Vec::<String>::new());
    assert_eq!(published(&sdk, &signals).await, expected);
}

#[tokio::test]
async fn a_poisoned_log_file_fails_only_its_message_and_is_reported() {
    let Some(endpoint) = endpoint() else { return };
    let sdk = sdk(&endpoint).await;
    let trail = Trail::new(&sdk).await;
    let (publisher, signals) = topic(&sdk).await;
    let handler = Handler::new(engine(), table(&sdk, "sesguard-s3-state").await, publisher);
    let samples = samples();
    let good = |name: &str| -> String {
        let (_, record) = samples
            .iter()
            .find(|(text, _)| text.contains(name))
            .expect("sample");
        log_file(std::slice::from_ref(record))
    };
    let get_account = good("\"GetAccount\"");
    let list_identities = good("\"ListIdentities\"");
    let whole = gzip(&list_identities);
    trail
        .put(&format!("{PREFIX}good.json.gz"), gzip(&get_account))
        .await;
    trail
        .put(
            &format!("{PREFIX}not-gzip.json.gz"),
            b"PK\x03\x04 a zip archive".to_vec(),
        )
        .await;
    trail
        .put(
            &format!("{PREFIX}truncated.json.gz"),
            whole[..whole.len() * 2 / 3].to_vec(),
        )
        .await;
    trail
        .put(
            &format!("{PREFIX}not-json.json"),
            b"<html>403 Forbidden</html>".to_vec(),
        )
        .await;
    let payload = trail.event().await;
    let event = sqs_batch(&payload).expect("an SQS event");
    let store = store(&trail, trail.s3.clone());
    let mut counts = Counts::default();
    let response = handle_batch(&handler, &store, &event, &mut counts).await;
    let mut poisoned = [
        ids_for(&payload, "not-gzip.json.gz"),
        ids_for(&payload, "truncated.json.gz"),
        ids_for(&payload, "not-json.json"),
    ]
    .concat();
    poisoned.sort();
    assert_eq!(poisoned.len(), 3);
    assert_eq!(
        failed(&response),
        poisoned,
        "only the poisoned files failed"
    );
    assert!(counts.malformed + counts.unreadable >= 3, "{counts:?}");
    // The good file's signals were published.
    assert_eq!(
        published(&sdk, &signals).await,
        cli(vec![get_account]).await
    );

    // Each failure says which file and what is wrong with it.
    let messages = handler
        .handle_messages(
            &store,
            &event
                .records
                .iter()
                .map(|m| sesguard::lambda::Message {
                    id: m.message_id.as_deref().unwrap_or(""),
                    body: m.body.as_deref().unwrap_or(""),
                })
                .collect::<Vec<_>>(),
            &mut Counts::default(),
        )
        .await;
    let errors: Vec<String> = messages.iter().map(|f| f.error.to_string()).collect();
    for (file, what) in [
        ("not-gzip.json.gz", "expected"),
        ("truncated.json.gz", "cannot read"),
        ("not-json.json", "expected"),
    ] {
        assert!(
            errors
                .iter()
                .any(|e| e.contains(&format!("{PREFIX}{file}")) && e.contains(what)),
            "{file}: {errors:?}"
        );
    }
    assert!(
        messages
            .iter()
            .all(|f| f.error.error_type() == "sesguard.MalformedEvent")
    );
}

/// Replaces the response of the first `fail` GetObject attempts with S3's throttling answer
/// (503 SlowDown), counting the attempts.
#[derive(Debug, Clone, Default)]
struct SlowDown {
    fail: Arc<AtomicU32>,
    attempts: Arc<AtomicU32>,
    injected: Arc<Mutex<u32>>,
}

impl Intercept for SlowDown {
    fn name(&self) -> &'static str {
        "SlowDown"
    }

    fn modify_before_deserialization(
        &self,
        context: &mut BeforeDeserializationInterceptorContextMut<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        self.attempts.fetch_add(1, Ordering::Relaxed);
        let left = self.fail.load(Ordering::Relaxed);
        if left > 0 {
            self.fail.store(left - 1, Ordering::Relaxed);
            if let Ok(mut injected) = self.injected.lock() {
                *injected += 1;
            }
            let response = context.response_mut();
            *response.status_mut() = 503u16.try_into()?;
            *response.body_mut() = SdkBody::from(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>",
            );
        }
        Ok(())
    }
}

#[tokio::test]
async fn a_throttled_get_object_is_retried_and_publishes_each_signal_once() {
    let Some(endpoint) = endpoint() else { return };
    let sdk = sdk(&endpoint).await;
    let trail = Trail::new(&sdk).await;
    let (publisher, signals) = topic(&sdk).await;
    let handler = Handler::new(engine(), table(&sdk, "sesguard-s3-state").await, publisher);
    let records: Vec<Value> = samples().into_iter().map(|(_, r)| r).collect();
    let file = log_file(&records[..records.len() / 3]);
    trail
        .put(&format!("{PREFIX}throttled.json.gz"), gzip(&file))
        .await;
    let event = sqs_batch(&trail.event().await).expect("an SQS event");
    let expected = cli(vec![file]).await;
    assert!(!expected.is_empty());
    let client = |retries: bool, faults: &SlowDown| {
        let mut config = aws_sdk_s3::config::Builder::from(&sdk)
            .force_path_style(true)
            .interceptor(faults.clone());
        if !retries {
            config = config.retry_config(aws_config::retry::RetryConfig::disabled());
        }
        aws_sdk_s3::Client::from_conf(config.build())
    };

    // Throttled once: the SDK's retry reads it.
    let faults = SlowDown::default();
    faults.fail.store(1, Ordering::Relaxed);
    let response = handle_batch(
        &handler,
        &store(&trail, client(true, &faults)),
        &event,
        &mut Counts::default(),
    )
    .await;
    assert_eq!(failed(&response), Vec::<String>::new());
    assert_eq!(faults.attempts.load(Ordering::Relaxed), 2);
    assert_eq!(published(&sdk, &signals).await, expected);

    // Throttled past the SDK's retries: the message fails as transient, SQS delivers it again,
    // and the redelivery publishes nothing that was published.
    let (publisher, signals) = topic(&sdk).await;
    let handler = Handler::new(engine(), table(&sdk, "sesguard-s3-state").await, publisher);
    let faults = SlowDown::default();
    faults.fail.store(1, Ordering::Relaxed);
    let store_once = store(&trail, client(false, &faults));
    let messages: Vec<sesguard::lambda::Message<'_>> = event
        .records
        .iter()
        .map(|m| sesguard::lambda::Message {
            id: m.message_id.as_deref().unwrap_or(""),
            body: m.body.as_deref().unwrap_or(""),
        })
        .collect();
    let failures = handler
        .handle_messages(&store_once, &messages, &mut Counts::default())
        .await;
    assert_eq!(failures.len(), 1);
    assert!(failures[0].error.is_transient(), "{}", failures[0].error);
    assert_eq!(
        failures[0].error.error_type(),
        "sesguard.LogFileUnavailable"
    );
    assert_eq!(published(&sdk, &signals).await, Vec::<String>::new());
    let response = handle_batch(&handler, &store_once, &event, &mut Counts::default()).await;
    assert_eq!(failed(&response), Vec::<String>::new());
    assert_eq!(published(&sdk, &signals).await, expected);
}

#[tokio::test]
async fn notifications_through_sns_and_eventbridge_name_the_same_log_file() {
    let Some(endpoint) = endpoint() else { return };
    let sdk = sdk(&endpoint).await;
    let trail = Trail::new(&sdk).await;
    let (publisher, signals) = topic(&sdk).await;
    let handler = Handler::new(engine(), table(&sdk, "sesguard-s3-state").await, publisher);
    let records: Vec<Value> = samples().into_iter().map(|(_, r)| r).collect();
    let file = log_file(&records);
    let key = format!("{PREFIX}shapes.json.gz");
    trail.put(&key, gzip(&file)).await;
    let direct = trail.event().await;
    let direct: Value = serde_json::from_str(&direct).expect("event");
    let s3_event = direct["Records"]
        .as_array()
        .expect("records")
        .iter()
        .map(|m| m["body"].as_str().unwrap_or_default())
        .find(|b| b.contains("ObjectCreated"))
        .expect("the object's notification")
        .to_owned();
    let through_sns = json!({"Type": "Notification", "MessageId": "n", "Message": s3_event});
    let eventbridge = json!({
        "version": "0", "id": "e", "detail-type": "Object Created", "source": "aws.s3",
        "account": "111122223333", "time": "2026-03-02T10:05:00Z", "region": "us-east-1",
        "resources": [format!("arn:aws:s3:::{}", trail.bucket)],
        "detail": {"bucket": {"name": trail.bucket}, "object": {"key": key}}
    });
    let cloudtrail = json!({"Type": "Notification", "Message":
        json!({"s3Bucket": trail.bucket, "s3ObjectKey": [key]}).to_string()});
    let event = |id: &str, body: &Value| {
        json!({"Records": [{"messageId": id, "body": body.to_string(), "eventSource": "aws:sqs"}]})
            .to_string()
    };
    let store = store(&trail, trail.s3.clone());
    for (id, body) in [
        ("sns", through_sns),
        ("eventbridge", eventbridge),
        ("cloudtrail", cloudtrail),
    ] {
        let batch = sqs_batch(&event(id, &body)).expect("SQS event");
        let mut counts = Counts::default();
        let response = handle_batch(&handler, &store, &batch, &mut counts).await;
        assert_eq!(failed(&response), Vec::<String>::new(), "{id}");
        assert_eq!(counts.records, records.len() as u64, "{id}");
    }
    // Three notifications of one file: its signals once.
    assert_eq!(published(&sdk, &signals).await, cli(vec![file]).await);
    // A notification naming another bucket is refused.
    let other = json!({"Type": "Notification", "Message":
        json!({"s3Bucket": "someone-elses", "s3ObjectKey": [key]}).to_string()});
    let batch = sqs_batch(&event("other", &other)).expect("SQS event");
    let response = handle_batch(&handler, &store, &batch, &mut Counts::default()).await;
    assert_eq!(failed(&response), vec!["other".to_owned()]);
}
