//! The configuration in S3 against moto: the conditional `GetObject` of the real adapter
//! (`If-None-Match` answered 304 while the object is unchanged), and the live configuration over
//! it (a change picked up at the next check, a bad file rejected with the last good one kept, a
//! Tor list beside it).
//!
//! Skipped without `SESGUARD_TEST_ENDPOINT` (failing instead under `SESGUARD_REQUIRE_EMULATORS`),
//! as crates/lambda/tests/aws.rs.

mod support;
use support::*;

use std::time::{Duration, Instant};

use aws_sdk_s3::primitives::ByteStream;
use sesguard::lambda::{ConfigEvents, ConfigStore, Fetched, LambdaConfig, LiveConfig, Refresh};
use sesguard::model::FailureKind;
use sesguard::s3url::S3Url;
use sesguard_lambda::aws::s3::S3Objects;

/// A new bucket for a configuration.
async fn config_bucket(endpoint: &str) -> (aws_sdk_s3::Client, String) {
    bucket(&sdk(endpoint).await, "sesguard-config").await
}

async fn put(client: &aws_sdk_s3::Client, bucket: &str, key: &str, text: &str) {
    client
        .put_object()
        .bucket(bucket)
        .key(key)
        .body(ByteStream::from(text.as_bytes().to_vec()))
        .send()
        .await
        .expect("put object");
}

fn url(bucket: &str, key: &str) -> S3Url {
    S3Url::parse(&format!("s3://{bucket}/{key}")).expect("url")
}

#[tokio::test]
async fn moto_answers_a_conditional_get_with_304_while_the_object_is_unchanged() {
    let Some(endpoint) = endpoint() else { return };
    let (client, bucket) = config_bucket(&endpoint).await;
    let store = S3Objects::new(client.clone());
    let config = url(&bucket, "sesguard.toml");
    put(&client, &bucket, "sesguard.toml", "dedup_minutes = 5\n").await;

    let Fetched::Text { text, etag } = store.fetch(&config, None).await.expect("read") else {
        panic!("an unconditional read gives the text");
    };
    assert_eq!(text, "dedup_minutes = 5\n");
    let etag = etag.expect("S3 gives an ETag");
    assert_eq!(
        store.fetch(&config, Some(&etag)).await.expect("read"),
        Fetched::NotModified,
        "If-None-Match with the current ETag: 304"
    );
    put(&client, &bucket, "sesguard.toml", "dedup_minutes = 7\n").await;
    match store.fetch(&config, Some(&etag)).await.expect("read") {
        Fetched::Text { text, etag: new } => {
            assert_eq!(text, "dedup_minutes = 7\n");
            assert_ne!(new.as_deref(), Some(etag.as_str()));
        }
        Fetched::NotModified => panic!("a changed object is read again"),
    }
    let err = store
        .fetch(&url(&bucket, "missing.toml"), None)
        .await
        .expect_err("no such key");
    assert_eq!(err.kind, FailureKind::NotFound, "{err}");
}

fn live_env(bucket: &str) -> LambdaConfig {
    let vars = [
        ("SESGUARD_TABLE_NAME", "t".to_owned()),
        ("SESGUARD_TOPIC_ARN", "arn".to_owned()),
        ("SESGUARD_CONFIG", format!("s3://{bucket}/sesguard.toml")),
        (
            "SESGUARD_TOR_EXIT_LIST",
            format!("s3://{bucket}/tor-exit-list.txt"),
        ),
        ("SESGUARD_CONFIG_REFRESH_SECONDS", "1".to_owned()),
    ];
    LambdaConfig::from_env(|name| {
        vars.iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.clone())
    })
    .expect("env")
}

#[tokio::test]
async fn a_warm_function_picks_up_a_change_and_keeps_the_last_good_file_over_a_bad_one() {
    let Some(endpoint) = endpoint() else { return };
    let (client, bucket) = config_bucket(&endpoint).await;
    put(
        &client,
        &bucket,
        "sesguard.toml",
        "[[suppressions]]\nrule = \"ses-identity-deleted\"\n",
    )
    .await;
    let live = LiveConfig::new(S3Objects::new(client.clone()), live_env(&bucket), None);
    let t0 = Instant::now();
    let at = |s: u64| t0 + Duration::from_secs(s);

    let mut events = ConfigEvents::default();
    let Refresh::Changed(config) = live.refresh(at(0), &mut events).await else {
        panic!("the cold start reads the file");
    };
    assert_eq!(config.suppressions.len(), 1);
    assert!(config.tor.is_empty(), "no Tor list written yet: none");

    // Unchanged: a 304, nothing rebuilt.
    let mut events = ConfigEvents::default();
    assert!(matches!(
        live.refresh(at(1), &mut events).await,
        Refresh::Unchanged
    ));
    assert!(events.checked && events.unreadable == 0 && events.rejected == 0);

    put(
        &client,
        &bucket,
        "sesguard.toml",
        "[[suppressions]]\nrule = \"ses-identity-deleted\"\n[[suppressions]]\nrule = \"ses-modification\"\n",
    )
    .await;
    put(
        &client,
        &bucket,
        "tor-exit-list.txt",
        "# exits\n198.51.100.7\n",
    )
    .await;
    let Refresh::Changed(config) = live.refresh(at(2), &mut ConfigEvents::default()).await else {
        panic!("the change is picked up at the next check");
    };
    assert_eq!(config.suppressions.len(), 2);
    assert!(config.tor.contains("198.51.100.7"));

    put(
        &client,
        &bucket,
        "sesguard.toml",
        "[[suppressions]]\nrule = \"ses-no-such-rule\"\n",
    )
    .await;
    let mut events = ConfigEvents::default();
    assert!(matches!(
        live.refresh(at(3), &mut events).await,
        Refresh::Unchanged
    ));
    assert_eq!(events.rejected, 1, "the bad file is rejected and counted");
}
