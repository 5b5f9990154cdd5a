//! The heartbeat's DynamoDB items against moto: the region's view, the newest canary kept,
//! one outage however many runs race to open it, closed only by the run that saw its start; and
//! a heartbeat run over the real state and SNS publisher publishing one blind signal per outage
//! and one restored signal, whatever the overlapping runs.
//!
//! Skipped without `SESGUARD_TEST_ENDPOINT` (failing instead under `SESGUARD_REQUIRE_EMULATORS`),
//! as crates/lambda/tests/aws.rs.

use std::sync::atomic::{AtomicU64, Ordering};

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
};
use aws_sdk_sqs::types::QueueAttributeName;
use serde_json::{Value, json};
use sesguard::heartbeat::{BLIND, Heartbeat, HeartbeatStore, RESTORED, RegionView};
use sesguard::model::MINUTE;
use sesguard_lambda::aws::dynamodb::{DynamoState, KEY_ATTRIBUTE};
use sesguard_lambda::aws::sns::SnsPublisher;

fn endpoint() -> Option<String> {
    match std::env::var("SESGUARD_TEST_ENDPOINT") {
        Ok(endpoint) if !endpoint.is_empty() => Some(endpoint),
        _ => {
            assert!(
                std::env::var_os("SESGUARD_REQUIRE_EMULATORS").is_none(),
                "SESGUARD_REQUIRE_EMULATORS is set but SESGUARD_TEST_ENDPOINT is not"
            );
            eprintln!("skipped: no SESGUARD_TEST_ENDPOINT (run ./scripts/test.sh)");
            None
        }
    }
}

async fn sdk(endpoint: &str) -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(sesguard_lambda::aws::http_client())
        .endpoint_url(endpoint)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            "testing", "testing", None, None, "tests",
        ))
        .load()
        .await
}

static UNIQUE: AtomicU64 = AtomicU64::new(0);

fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        UNIQUE.fetch_add(1, Ordering::Relaxed)
    )
}

async fn table(sdk: &aws_config::SdkConfig) -> DynamoState {
    let client = aws_sdk_dynamodb::Client::new(sdk);
    let name = unique("sesguard-heartbeat-state");
    let attribute = AttributeDefinition::builder()
        .attribute_name(KEY_ATTRIBUTE)
        .attribute_type(ScalarAttributeType::S)
        .build()
        .expect("attribute");
    let key = KeySchemaElement::builder()
        .attribute_name(KEY_ATTRIBUTE)
        .key_type(KeyType::Hash)
        .build()
        .expect("key");
    client
        .create_table()
        .table_name(&name)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attribute)
        .key_schema(key)
        .send()
        .await
        .expect("create table");
    DynamoState::new(client, name)
}

struct Queue {
    url: String,
    arn: String,
}

async fn queue(sqs: &aws_sdk_sqs::Client, name: &str, dead_letter: Option<&Queue>) -> Queue {
    let mut create = sqs.create_queue().queue_name(unique(name));
    if let Some(dlq) = dead_letter {
        // As template.yaml: what still fails goes back to the queue it came from. Visible again
        // at once (visibility 0), so the test needs no waiting.
        let policy = json!({"deadLetterTargetArn": dlq.arn, "maxReceiveCount": 1}).to_string();
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
async fn receive_all(sqs: &aws_sdk_sqs::Client, queue: &Queue) -> Vec<(String, String)> {
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

/// A signals topic with a queue subscribed to read what was published.
async fn topic(sdk: &aws_config::SdkConfig) -> (SnsPublisher, Queue) {
    let sns = aws_sdk_sns::Client::new(sdk);
    let sqs = aws_sdk_sqs::Client::new(sdk);
    let topic = sns
        .create_topic()
        .name(unique("sesguard-heartbeat-signals"))
        .send()
        .await
        .expect("topic")
        .topic_arn
        .expect("arn");
    let inbox = queue(&sqs, "sesguard-heartbeat-signals", None).await;
    sns.subscribe()
        .topic_arn(&topic)
        .protocol("sqs")
        .endpoint(&inbox.arn)
        .send()
        .await
        .expect("subscribe");
    (SnsPublisher::new(sns, topic), inbox)
}

const T0: i64 = 1_772_442_000;

#[tokio::test]
async fn the_heartbeat_items_keep_the_newest_canary_and_one_outage() {
    let Some(endpoint) = endpoint() else { return };
    let sdk = sdk(&endpoint).await;
    let state = table(&sdk).await;
    let first = state.check_region("us-east-1", T0).await.expect("view");
    assert_eq!(
        first,
        RegionView {
            last_seen: None,
            first_checked: T0,
            outage_since: None
        }
    );
    state.canary_seen("us-east-1", T0 + 60).await.expect("seen");
    state
        .canary_seen("us-east-1", T0 + 30)
        .await
        .expect("an older one, late");
    let view = state
        .check_region("us-east-1", T0 + 120)
        .await
        .expect("view");
    assert_eq!(view.last_seen, Some(T0 + 60));
    assert_eq!(view.first_checked, T0, "the first check is kept");
    // Two runs race to open the outage: both get the first one's start.
    assert_eq!(
        state.open_outage("us-east-1", T0 + 60).await.expect("open"),
        T0 + 60
    );
    assert_eq!(
        state.open_outage("us-east-1", T0 + 90).await.expect("open"),
        T0 + 60
    );
    // Closing another outage's start leaves it open; its own start closes it.
    state
        .close_outage("us-east-1", T0 + 90)
        .await
        .expect("close");
    let view = state
        .check_region("us-east-1", T0 + 120)
        .await
        .expect("view");
    assert_eq!(view.outage_since, Some(T0 + 60));
    state
        .close_outage("us-east-1", T0 + 60)
        .await
        .expect("close");
    let view = state
        .check_region("us-east-1", T0 + 120)
        .await
        .expect("view");
    assert_eq!(view.outage_since, None);
    // Regions are apart.
    let other = state
        .check_region("eu-west-1", T0 + 120)
        .await
        .expect("view");
    assert_eq!(other.last_seen, None);
}

#[tokio::test]
async fn a_heartbeat_run_publishes_one_blind_and_one_restored_signal_on_sns() {
    let Some(endpoint) = endpoint() else { return };
    let sdk = sdk(&endpoint).await;
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let state = table(&sdk).await;
    let (publisher, inbox) = topic(&sdk).await;
    let heartbeat = Heartbeat {
        regions: vec!["us-east-1".to_owned()],
        max_delay: 30 * MINUTE,
        account_id: "111122223333".to_owned(),
        role_arn: "arn:aws:iam::111122223333:role/sesguard".to_owned(),
    };
    let run = |now: i64| sesguard::heartbeat::run(&heartbeat, &state, &publisher, now);
    assert!(run(T0).await.expect("run").is_empty());
    state.canary_seen("us-east-1", T0 + 60).await.expect("seen");
    // Late: two overlapping runs, one signal.
    let (a, b) = tokio::join!(run(T0 + 40 * MINUTE), run(T0 + 40 * MINUTE));
    let blind = a.expect("run").len() + b.expect("run").len();
    assert_eq!(blind, 1);
    assert!(run(T0 + 55 * MINUTE).await.expect("run").is_empty());
    state
        .canary_seen("us-east-1", T0 + 60 * MINUTE)
        .await
        .expect("seen");
    assert_eq!(run(T0 + 61 * MINUTE).await.expect("run").len(), 1);
    assert!(run(T0 + 62 * MINUTE).await.expect("run").is_empty());
    // Each SNS message: the signal, its subject, and the attributes subscribers filter on,
    // as for every signal.
    let mut got: Vec<(String, String, String, String)> = receive_all(&sqs, &inbox)
        .await
        .iter()
        .map(|(_, body)| {
            let envelope: Value = serde_json::from_str(body).expect("envelope");
            let signal: Value =
                serde_json::from_str(envelope["Message"].as_str().unwrap_or_default())
                    .expect("signal");
            let attribute = |name: &str| {
                envelope["MessageAttributes"][name]["Value"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned()
            };
            assert_eq!(
                attribute("rule_id"),
                signal["rule_id"].as_str().unwrap_or_default()
            );
            assert_eq!(attribute("region"), "us-east-1");
            assert_eq!(attribute("account_id"), "111122223333");
            (
                attribute("rule_id"),
                attribute("severity"),
                envelope["Subject"].as_str().unwrap_or_default().to_owned(),
                signal["details"]["outage_since"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            )
        })
        .collect();
    got.sort();
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!((got[0].0.as_str(), got[0].1.as_str()), (BLIND, "high"));
    assert_eq!((got[1].0.as_str(), got[1].1.as_str()), (RESTORED, "info"));
    assert!(
        got[0].2.starts_with("[high] sesguard-pipeline-blind: "),
        "{got:?}"
    );
    assert_eq!(got[0].3, got[1].3, "one outage");
}
