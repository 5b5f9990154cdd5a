//! DynamoDB calls of the Lambda handler over a file of EventBridge envelopes, one per line, with
//! its state in a fresh table of the DynamoDB at `SESGUARD_TEST_ENDPOINT` (moto: `source
//! scripts/emulators.sh`). For BENCHMARKS.md's organisation-scale cost (issue 14): the envelopes
//! are the corpus records the forwarders' patterns let through (scripts/org_share.py).
//!
//!     cargo run -p sesguard-lambda --example count_calls -- MATCHED.jsonl
//!
//! Prints JSON: events, DynamoDB calls by operation, signals. Not run in CI.

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
};
use sesguard::Engine;
use sesguard::deliver::{Collect, Counts};
use sesguard::lambda::Handler;
use sesguard_lambda::aws::calls::CallCounter;
use sesguard_lambda::aws::dynamodb::{DynamoState, KEY_ATTRIBUTE};
use std::io::BufRead;

type Error = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let path = std::env::args()
        .nth(1)
        .ok_or("usage: count_calls MATCHED.jsonl")?;
    let endpoint = std::env::var("SESGUARD_TEST_ENDPOINT")
        .map_err(|_| "SESGUARD_TEST_ENDPOINT is not set (source scripts/emulators.sh)")?;
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(sesguard_lambda::aws::http_client())
        .endpoint_url(&endpoint)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            "testing",
            "testing",
            None,
            None,
            "count-calls",
        ))
        .load()
        .await;
    let name = format!("sesguard-count-calls-{}", std::process::id());
    aws_sdk_dynamodb::Client::new(&sdk)
        .create_table()
        .table_name(&name)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name(KEY_ATTRIBUTE)
                .attribute_type(ScalarAttributeType::S)
                .build()?,
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name(KEY_ATTRIBUTE)
                .key_type(KeyType::Hash)
                .build()?,
        )
        .send()
        .await?;
    let counter = CallCounter::new();
    let config = aws_sdk_dynamodb::config::Builder::from(&sdk)
        .interceptor(counter.clone())
        .build();
    let state = DynamoState::new(aws_sdk_dynamodb::Client::from_conf(config), name);
    let handler = Handler::new(Engine::default(), state, Collect::default());
    let mut report = Counts::default();
    let mut events = 0u64;
    let mut failed = 0u64;
    for line in std::io::BufReader::new(std::fs::File::open(&path)?).lines() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        events += 1;
        if handler.handle(&line, "count", &mut report).await.is_err() {
            failed += 1;
        }
    }
    let by_operation = counter.counts();
    println!(
        "{}",
        serde_json::json!({
            "events": events,
            "failed": failed,
            "dynamodb_calls": counter.total(),
            "by_operation": by_operation,
            "signals": report.signal_count(),
        })
    );
    Ok(())
}
