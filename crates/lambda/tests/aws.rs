//! The AWS adapters against a real emulator (moto server, started by `scripts/test.sh`, which
//! exports `SESGUARD_TEST_ENDPOINT`): DynamoDB state semantics equal to the in-memory state's,
//! race-freedom under concurrency, the per-event call budget, the SNS message read back through
//! SQS, and the Lambda handler over the sample events giving exactly the CLI's signals.
//!
//! Without `SESGUARD_TEST_ENDPOINT` these tests skip with a message, unless
//! `SESGUARD_REQUIRE_EMULATORS` is set (as in CI), where they fail.

mod support;
use support::*;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::Value;
use sesguard::config::{Config, Overrides};
use sesguard::deliver::{Collect, Counts};
use sesguard::lambda::Handler;
use sesguard::model::Subject;
use sesguard::scan::scan_text;
use sesguard::state::{Claim, Mark, MemoryState, PairStep, Side, Sighting, State};
use sesguard::{Engine, Signal};
use sesguard_lambda::aws::calls::CallCounter;
use sesguard_lambda::aws::dynamodb::{DynamoState, KEY_ATTRIBUTE, TTL_ATTRIBUTE, item_key};
use sesguard_lambda::aws::sns::SnsPublisher;

/// A fresh table with the template's key schema and TTL attribute.
async fn table(sdk: &aws_config::SdkConfig, counter: Option<CallCounter>) -> DynamoState {
    let (admin, name) = create_table(sdk, "sesguard-state").await;
    enable_ttl(&admin, &name).await;
    // Every request checked against DynamoDB's limits that moto does not enforce.
    let mut config = aws_sdk_dynamodb::config::Builder::from(sdk).interceptor(DynamoLimits);
    if let Some(counter) = counter {
        config = config.interceptor(counter);
    }
    DynamoState::new(aws_sdk_dynamodb::Client::from_conf(config.build()), name)
}

/// DynamoDB's limits on a request that moto does not enforce: each expression at most 4 KB.
/// A request over them fails here as DynamoDB would fail it (a ValidationException), so no
/// test passes on a request the real service refuses.
#[derive(Debug)]
struct DynamoLimits;

const MAX_EXPRESSION_BYTES: usize = 4 * 1024;

impl aws_smithy_runtime_api::client::interceptors::Intercept for DynamoLimits {
    fn name(&self) -> &'static str {
        "DynamoLimits"
    }

    fn read_before_transmit(
        &self,
        context: &aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef<'_>,
        _components: &aws_smithy_runtime_api::client::runtime_components::RuntimeComponents,
        _cfg: &mut aws_smithy_types::config_bag::ConfigBag,
    ) -> Result<(), aws_smithy_runtime_api::box_error::BoxError> {
        let Some(body) = context.request().body().bytes() else {
            return Ok(());
        };
        let request: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        for field in [
            "UpdateExpression",
            "ConditionExpression",
            "ProjectionExpression",
            "KeyConditionExpression",
            "FilterExpression",
        ] {
            let length = request[field].as_str().map_or(0, str::len);
            if length > MAX_EXPRESSION_BYTES {
                return Err(format!(
                    "ValidationException: {field} is {length} bytes, over DynamoDB's 4 KB"
                )
                .into());
            }
        }
        Ok(())
    }
}

fn mark(id: &str, time: i64) -> Mark {
    Mark {
        event_id: id.to_owned(),
        time,
        subject: Subject {
            event_id: id.to_owned(),
            ..Subject::default()
        },
    }
}

/// One scripted run of every State operation, returning what each answered: DynamoDB must
/// answer exactly as the in-memory state does.
async fn script<S: State>(state: &S) -> Vec<String> {
    let mut out = Vec::new();
    let day = 86_400;
    out.push(format!(
        "first {:?}",
        state.first_event_time(1_000).await.ok()
    ));
    out.push(format!(
        "first again {:?}",
        state.first_event_time(500).await.ok()
    ));
    for (event, now) in [
        ("a", 1_000),
        ("b", 1_500),
        ("a", 1_000),
        ("c", 1_400),
        ("d", 1_500 + 10 * day),
        ("e", 1_500 + 30 * day),
    ] {
        out.push(format!(
            "sight {event}@{now} {:?}",
            state.sight("p", event, now, 10 * day).await.ok()
        ));
    }
    for (event, now) in [
        ("w1", 0),
        ("w2", 59),
        ("w1", 0),
        ("w3", 60),
        ("w4", 5),
        ("w5", -100),
        ("w6", 200),
        ("w10", 110),
    ] {
        out.push(format!(
            "window {event}@{now} {:?}",
            state.open_window("k", event, now, 60).await.ok()
        ));
    }
    for (side, id, time) in [
        (Side::Delete, "del", 100),
        (Side::Add, "add", 40),
        (Side::Add, "add", 40),
        (Side::Add, "late-add", 99),
        (Side::Add, "too-early", 30),
        (Side::Delete, "same-second", 99),
    ] {
        let found = state
            .pair("i", side, &mark(id, time), 60)
            .await
            .map(|marks| {
                marks
                    .into_iter()
                    .map(|m| format!("{}@{}", m.event_id, m.time))
                    .collect::<Vec<_>>()
            });
        out.push(format!("pair {side:?} {id}@{time} {:?}", found.ok()));
    }
    // R4's pairing and R5's window on one identity (sequence window 60, dedup window 100).
    for (id, side, now, window) in [
        ("v1", Some(Side::Add), 1_000, false),
        ("d1", Some(Side::Delete), 1_030, true),
        ("d1", Some(Side::Delete), 1_030, true),
        ("failed-1", None, 1_050, true),
        ("d2", Some(Side::Delete), 1_200, true),
        ("d0", Some(Side::Delete), 1_040, true),
        ("failed-2", None, 1_250, true),
        ("d2", Some(Side::Delete), 1_200, true),
        ("v2", Some(Side::Add), 1_190, false),
    ] {
        let event = mark(id, now);
        let step = PairStep {
            event_id: id,
            now,
            pair: side.map(|side| (side, &event)),
            pair_window: 60,
            open_window: window,
            dedup_window: 100,
            keep: 100,
        };
        let outcome = state.pair_and_window("ident", step).await.map(|o| {
            let paired: Vec<String> = o
                .paired
                .into_iter()
                .map(|m| format!("{}@{}", m.event_id, m.time))
                .collect();
            (paired, o.opened)
        });
        out.push(format!("identity {id}@{now} {:?}", outcome.ok()));
    }
    out.push(format!(
        "claim {:?}",
        state.claim_signal("s", 0, 100).await.ok()
    ));
    out.push(format!("mark {:?}", state.mark_published("s").await.ok()));
    out.push(format!(
        "claim published {:?}",
        state.claim_signal("s", 0, 100).await.ok()
    ));
    out.push(format!(
        "claim after expiry {:?}",
        state.claim_signal("s", 200, 300).await.ok()
    ));
    // Distinct values within 300 s, at most 3 kept: out of order, a replay, one dropped.
    for (value, id, now) in [
        ("us-east-1", "r1", 5_000),
        ("eu-west-1", "r2", 5_010),
        ("us-east-1", "r3", 5_020),
        ("ap-south-1", "r4", 4_990),
        ("us-east-1", "r0", 4_995),
        ("us-east-1", "r3", 5_020),
        ("sa-east-1", "r5", 5_030),
        ("eu-west-1", "r6", 5_400),
    ] {
        let found = state
            .distinct_in_window("regions", value, id, now, 300, 3)
            .await
            .map(|seen| {
                seen.values
                    .into_iter()
                    .map(|s| {
                        format!(
                            "{} {}@{}..{}@{}",
                            s.value, s.first.event_id, s.first.time, s.last.event_id, s.last.time
                        )
                    })
                    .collect::<Vec<_>>()
            });
        out.push(format!("distinct {value} {id}@{now} {:?}", found.ok()));
    }
    // The set's gate: held by another opening less than 100 s away, replay-safe, the latest
    // opening kept; the set's answer shows it.
    for (id, now) in [
        ("g1", 5_000),
        ("g2", 5_050),
        ("g1", 5_000),
        ("g3", 5_100),
        ("g0", 4_950),
        ("g4", 5_150),
        ("g9", 4_800),
        ("g2", 5_050),
    ] {
        out.push(format!(
            "gate {id}@{now} {:?}",
            state.open_gate("regions", id, now, 100).await.ok()
        ));
    }
    let gate = state
        .distinct_in_window("regions", "eu-west-1", "r7", 5_160, 300, 3)
        .await
        .map(|answer| {
            let gate = answer.gate.iter();
            gate.map(|g| format!("{}@{}", g.event_id, g.time))
                .collect::<Vec<_>>()
        });
    out.push(format!("gate shown {:?}", gate.ok()));
    for (id, now) in [("e1", 9_000), ("e2", 9_010), ("e1", 9_000), ("e3", 9_500)] {
        out.push(format!(
            "count {id}@{now} {:?}",
            state.count_in_window("calls", id, now, 300, 10).await.ok()
        ));
    }
    out
}

/// Lines the conformance script must give (not two wrong implementations agreeing).
const EXPECTED_LINES: &[&str] = &[
    "first Some(1000)",
    "first again Some(1000)",
    "sight a@1000 Some(New)",
    "sight b@1500 Some(Known)",
    "sight a@1000 Some(New)",
    "sight c@1400 Some(Known)",
    "sight d@865500 Some(New)",
    "sight e@2593500 Some(New)",
    "window w1@0 Some(true)",
    "window w2@59 Some(false)",
    "window w1@0 Some(true)",
    "window w3@60 Some(true)",
    "window w4@5 Some(false)",
    "window w5@-100 Some(true)",
    "window w6@200 Some(true)",
    "window w10@110 Some(false)",
    "identity v1@1000 Some(([], false))",
    "identity d1@1030 Some(([\"v1@1000\"], true))",
    "identity failed-1@1050 Some(([], false))",
    "identity d2@1200 Some(([], true))",
    "identity d0@1040 Some(([\"v1@1000\"], true))",
    "identity failed-2@1250 Some(([], false))",
    "identity v2@1190 Some(([\"d2@1200\"], false))",
    "claim Some(Fresh)",
    "claim published Some(Done)",
    "claim after expiry Some(Fresh)",
    "pair Add add@40 Some([\"del@100\"])",
    "pair Add late-add@99 Some([\"del@100\"])",
    "pair Add too-early@30 Some([])",
    "distinct us-east-1 r1@5000 Some([\"us-east-1 r1@5000..r1@5000\"])",
    "distinct eu-west-1 r2@5010 Some([\"eu-west-1 r2@5010..r2@5010\", \"us-east-1 r1@5000..r1@5000\"])",
    "distinct us-east-1 r3@5020 Some([\"eu-west-1 r2@5010..r2@5010\", \"us-east-1 r1@5000..r3@5020\"])",
    "distinct ap-south-1 r4@4990 Some([\"ap-south-1 r4@4990..r4@4990\", \"eu-west-1 r2@5010..r2@5010\", \"us-east-1 r1@5000..r3@5020\"])",
    "distinct us-east-1 r0@4995 Some([\"ap-south-1 r4@4990..r4@4990\", \"eu-west-1 r2@5010..r2@5010\", \"us-east-1 r0@4995..r3@5020\"])",
    "distinct us-east-1 r3@5020 Some([\"ap-south-1 r4@4990..r4@4990\", \"eu-west-1 r2@5010..r2@5010\", \"us-east-1 r0@4995..r3@5020\"])",
    "distinct sa-east-1 r5@5030 Some([\"eu-west-1 r2@5010..r2@5010\", \"sa-east-1 r5@5030..r5@5030\", \"us-east-1 r0@4995..r3@5020\"])",
    "distinct eu-west-1 r6@5400 Some([\"eu-west-1 r2@5010..r6@5400\"])",
    "gate g1@5000 Some(true)",
    "gate g2@5050 Some(false)",
    "gate g1@5000 Some(true)",
    "gate g3@5100 Some(true)",
    "gate g0@4950 Some(false)",
    "gate g4@5150 Some(false)",
    "gate g9@4800 Some(true)",
    "gate g2@5050 Some(false)",
    "gate shown Some([\"g3@5100\", \"g1@5000\"])",
    "count e1@9000 Some(1)",
    "count e2@9010 Some(2)",
    "count e1@9000 Some(2)",
    "count e3@9500 Some(1)",
];

/// The conformance script on the in-memory state, in every `cargo test` (no emulator).
#[tokio::test]
async fn the_in_memory_state_gives_every_expected_answer_of_the_conformance_script() {
    let memory = script(&MemoryState::new()).await;
    for line in EXPECTED_LINES {
        assert!(
            memory.iter().any(|l| l == line),
            "missing {line:?} in {memory:#?}"
        );
    }
}

#[tokio::test]
async fn dynamodb_state_answers_every_operation_as_the_in_memory_state_does() {
    let Some(endpoint) = endpoint() else { return };
    let sdk = sdk(&endpoint).await;
    let dynamo = script(&table(&sdk, None).await).await;
    let memory = script(&MemoryState::new()).await;
    assert_eq!(dynamo, memory);
}

#[tokio::test]
async fn a_pending_claim_is_in_flight_until_its_lease_runs_out() {
    let Some(endpoint) = endpoint() else { return };
    let sdk = sdk(&endpoint).await;
    let state = table(&sdk, None).await;
    assert_eq!(
        state.claim_signal("s", 0, 100).await.ok(),
        Some(Claim::Fresh)
    );
    assert_eq!(
        state.claim_signal("s", 0, 100).await.ok(),
        Some(Claim::InFlight),
        "live lease"
    );
    let after_lease = state.with_lease(std::time::Duration::ZERO);
    assert_eq!(
        after_lease.claim_signal("s", 0, 100).await.ok(),
        Some(Claim::Unfinished),
        "claimer gone"
    );
    after_lease.mark_published("s").await.expect("mark");
    assert_eq!(
        after_lease.claim_signal("s", 0, 100).await.ok(),
        Some(Claim::Done)
    );
}

#[tokio::test]
async fn a_late_r4_event_never_shortens_the_life_of_the_identity_item() {
    let Some(endpoint) = endpoint() else { return };
    let sdk = sdk(&endpoint).await;
    let state = table(&sdk, None).await;
    let admin = aws_sdk_dynamodb::Client::new(&sdk);
    let expires_at = || async {
        let item = admin
            .get_item()
            .table_name(state.table())
            .key(KEY_ATTRIBUTE, AttributeValue::S(item_key("pair", "id")))
            .send()
            .await
            .expect("get_item")
            .item
            .expect("the pair item");
        item[TTL_ATTRIBUTE]
            .as_n()
            .expect("numeric expires_at")
            .parse::<i64>()
            .expect("integer")
    };
    let window = 3600;
    let day = 86_400;
    // Event times ahead of the wall clock, so the event-time expiry is the TTL (not now plus the
    // wall-clock margin, which a_late_replay_is_written_to_outlive_the_wall_clock_margin checks).
    let wall = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let add_time = wall + 30 * day;
    let found = state
        .pair("id", Side::Add, &mark("add", add_time), window)
        .await
        .expect("add");
    assert!(found.is_empty());
    let kept = expires_at().await;
    assert_eq!(kept, add_time + window + day);
    // A delete of the same identity arriving five days late (an archive backfill, a delayed
    // delivery): its own expiry is days earlier than the add's.
    let found = state
        .pair(
            "id",
            Side::Delete,
            &mark("late-delete", add_time - 5 * day),
            window,
        )
        .await
        .expect("late delete");
    assert!(found.is_empty(), "{found:?}");
    assert_eq!(
        expires_at().await,
        kept,
        "the add must outlive the late delete"
    );
    // And the add still pairs with its delete.
    let found = state
        .pair("id", Side::Delete, &mark("delete", add_time + 60), window)
        .await
        .expect("delete");
    assert_eq!(
        found
            .iter()
            .map(|m| m.event_id.as_str())
            .collect::<Vec<_>>(),
        ["add"]
    );
}

#[tokio::test]
async fn an_expired_item_not_yet_deleted_by_ttl_counts_as_absent() {
    let Some(endpoint) = endpoint() else { return };
    let sdk = sdk(&endpoint).await;
    let state = table(&sdk, None).await;
    // moto, like DynamoDB within its two-day lag, never deletes the expired item.
    assert_eq!(
        state.sight("p", "a", 0, 100).await.ok(),
        Some(Sighting::New)
    );
    assert_eq!(
        state.sight("p", "b", 99, 100).await.ok(),
        Some(Sighting::Known)
    );
    assert_eq!(
        state.sight("p", "c", 198, 100).await.ok(),
        Some(Sighting::Known),
        "refreshed at 99"
    );
    assert_eq!(
        state.sight("p", "d", 298, 100).await.ok(),
        Some(Sighting::New),
        "not seen for 100 s"
    );
    assert_eq!(
        state.claim_signal("s", 0, 10).await.ok(),
        Some(Claim::Fresh)
    );
    assert_eq!(
        state.claim_signal("s", 11, 20).await.ok(),
        Some(Claim::Fresh),
        "expired claim"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_first_sightings_of_one_principal_have_exactly_one_winner() {
    let Some(endpoint) = endpoint() else { return };
    let sdk = sdk(&endpoint).await;
    let state = Arc::new(table(&sdk, None).await);
    for round in 0..5 {
        let key = format!("principal-{round}");
        let tasks: Vec<_> = (0..32)
            .map(|i| {
                let state = Arc::clone(&state);
                let key = key.clone();
                tokio::spawn(async move {
                    state
                        .sight(&key, &format!("event-{i}"), 1_000, 86_400)
                        .await
                })
            })
            .collect();
        let mut new = 0;
        for task in tasks {
            if task.await.expect("task").expect("sight") == Sighting::New {
                new += 1;
            }
        }
        assert_eq!(new, 1, "round {round}");
        let claims: Vec<_> = (0..32)
            .map(|_| {
                let state = Arc::clone(&state);
                let id = format!("signal-{round}");
                tokio::spawn(async move { state.claim_signal(&id, 0, 100).await })
            })
            .collect();
        let mut fresh = 0;
        for claim in claims {
            if claim.await.expect("task").expect("claim") == Claim::Fresh {
                fresh += 1;
            }
        }
        assert_eq!(fresh, 1, "round {round}");
    }
}

/// `sesguard scan` over `text` with the config `toml` (on a blocking thread: it runs its own
/// runtime).
async fn cli(
    toml: String,
    text: String,
) -> (sesguard::deliver::Collected, sesguard::deliver::Counts) {
    tokio::task::spawn_blocking(move || {
        let config =
            Config::parse(&toml, Path::new("t.toml"), &Overrides::default()).expect("config");
        scan_text(&Engine::new(config), "input", text.as_bytes())
    })
    .await
    .expect("scan")
}

fn sample(file: &str) -> String {
    std::fs::read_to_string(Path::new(EVENTS).join(file)).expect("sample")
}

/// The sample with another eventID and time, so it is a new event for the same principal.
fn again(file: &str, id: &str, time: &str) -> String {
    let mut value: Value = serde_json::from_str(&sample(file)).expect("json");
    value["detail"]["eventID"] = Value::from(id);
    value["detail"]["eventTime"] = Value::from(time);
    value.to_string()
}

struct NoPublisher;

impl sesguard::deliver::Sink for NoPublisher {
    async fn emit(&self, _signal: &Signal) -> Result<(), sesguard::deliver::SinkError> {
        Ok(())
    }
}

#[tokio::test]
async fn dynamodb_calls_per_event_stay_within_the_budget() {
    let Some(endpoint) = endpoint() else { return };
    let sdk = sdk(&endpoint).await;
    let counter = CallCounter::new();
    let state = table(&sdk, Some(counter.clone())).await;
    // A sequence window shorter than the dedup window, so the steady-state delete below is a
    // duplicate for R3/R5 and pairs with no add.
    let config = Config::parse(
        "sequence_window_minutes = 10",
        Path::new("t.toml"),
        &Overrides::default(),
    )
    .expect("config");
    let handler = Handler::new(Engine::new(config), state, NoPublisher);
    let mut report = Counts::default();
    // Warm up: learning start cached, principals known, windows open.
    for file in [
        "ses-GetAccount.json",
        "ses-ListIdentities.json",
        "ses-VerifyEmailIdentity.json",
        "ses-DeleteIdentity.json",
        "filtered-apigateway-GetAccount.json",
        // The abuse chain's calls: the chain fires here, so its gate is held below.
        "ses-PutAccountDetails-us-east-1.json",
        "ses-UpdateAccountSendingEnabled.json",
        "iam-AttachUserPolicy-AmazonSESFullAccess.json",
        "iam-CreateUser-ses-smtp-user.json",
        "ses-SetIdentityFeedbackForwardingEnabled.json",
    ] {
        handler
            .handle(&sample(file), "warm-up", &mut report)
            .await
            .expect("warm up");
    }
    let mut budget = BTreeMap::new();
    for (file, time) in [
        (
            "filtered-apigateway-GetAccount.json",
            "2026-03-02T09:41:00Z",
        ),
        (
            "filtered-cognito-ListIdentities.json",
            "2026-03-02T09:41:00Z",
        ),
        (
            "filtered-servicequotas-ListServiceQuotas-ec2.json",
            "2026-03-02T09:41:00Z",
        ),
        ("ses-GetAccount.json", "2026-03-02T09:41:00Z"),
        ("ses-ListIdentities.json", "2026-03-02T09:41:00Z"),
        ("ses-VerifyEmailIdentity.json", "2026-03-02T09:41:00Z"),
        ("ses-DeleteIdentity.json", "2026-03-02T10:30:00Z"),
        (
            "ses-PutAccountDetails-us-east-1.json",
            "2026-03-02T09:41:00Z",
        ),
        (
            "ses-UpdateAccountSendingEnabled.json",
            "2026-03-02T09:41:00Z",
        ),
        (
            "iam-AttachUserPolicy-AmazonSESFullAccess.json",
            "2026-03-02T09:41:00Z",
        ),
        ("iam-CreateUser-ses-smtp-user.json", "2026-03-02T09:41:00Z"),
        // After the delete above (its chain stage, evasion, is written in time order).
        (
            "ses-SetIdentityFeedbackForwardingEnabled.json",
            "2026-03-02T10:31:00Z",
        ),
    ] {
        counter.reset();
        let mut report = Counts::default();
        let event = again(file, &format!("steady-{file}"), time);
        handler
            .handle(&event, "steady", &mut report)
            .await
            .expect("steady");
        assert_eq!(
            report.signal_count(),
            0,
            "{file}: steady state gives no signal"
        );
        budget.insert(file, counter.total());
    }
    let expected = BTreeMap::from([
        ("filtered-apigateway-GetAccount.json", 0),
        ("filtered-cognito-ListIdentities.json", 0),
        ("filtered-servicequotas-ListServiceQuotas-ec2.json", 0),
        // R1's window, R2's sighting, the chain's stage.
        ("ses-GetAccount.json", 3),
        ("ses-ListIdentities.json", 2),
        ("ses-VerifyEmailIdentity.json", 3),
        // R3's window, one write for R4 and R5 on the identity (crates/lambda/src/aws/
        // dynamodb.rs), the chain's stage.
        ("ses-DeleteIdentity.json", 3),
        // The production-access window, the burst's region, the chain's stage (its gate is
        // seen held in the set's answer: no call).
        ("ses-PutAccountDetails-us-east-1.json", 3),
        // The rule's window and the chain's stage.
        ("ses-UpdateAccountSendingEnabled.json", 2),
        ("iam-AttachUserPolicy-AmazonSESFullAccess.json", 2),
        ("iam-CreateUser-ses-smtp-user.json", 2),
        ("ses-SetIdentityFeedbackForwardingEnabled.json", 2),
    ]);
    assert_eq!(budget, expected);
}

/// One call of the SES abuse chain as an EventBridge event, built on the `GetAccount` sample
/// (same leaked principal): `seconds` after 10:00:00Z.
fn chain_event(source: &str, name: &str, region: &str, params: Value, seconds: i64) -> String {
    let mut value: Value = serde_json::from_str(&sample("ses-GetAccount.json")).expect("json");
    let service = source.strip_suffix(".amazonaws.com").unwrap_or(source);
    value["source"] = Value::from(format!("aws.{service}"));
    value["region"] = Value::from(region);
    let detail = &mut value["detail"];
    detail["eventSource"] = Value::from(source);
    detail["eventName"] = Value::from(name);
    detail["awsRegion"] = Value::from(region);
    detail["requestParameters"] = params;
    detail["eventID"] = Value::from(format!("chain-{seconds}-{name}-{region}"));
    detail["eventTime"] = Value::from(sesguard::time::format(1_772_445_600 + seconds));
    value.to_string()
}

#[tokio::test]
async fn the_whole_abuse_chain_costs_at_most_four_dynamodb_calls_per_event_on_average() {
    use serde_json::json;
    let Some(endpoint) = endpoint() else { return };
    let sdk = sdk(&endpoint).await;
    let counter = CallCounter::new();
    let state = table(&sdk, Some(counter.clone())).await;
    let handler = Handler::new(Engine::default(), state, Collect::default());
    let (ses, iam) = ("ses.amazonaws.com", "iam.amazonaws.com");
    let mut events = vec![
        chain_event(ses, "GetAccount", "us-east-1", Value::Null, 0),
        chain_event(ses, "ListIdentities", "us-east-1", Value::Null, 5),
        chain_event(ses, "GetSendQuota", "us-east-1", Value::Null, 8),
    ];
    // The sandbox exit in 17 regions within 10 seconds.
    let regions = [
        "us-east-1",
        "us-east-2",
        "us-west-1",
        "us-west-2",
        "ca-central-1",
        "eu-west-1",
        "eu-west-2",
        "eu-west-3",
        "eu-central-1",
        "eu-north-1",
        "eu-south-1",
        "ap-south-1",
        "ap-northeast-1",
        "ap-northeast-2",
        "ap-southeast-1",
        "ap-southeast-2",
        "sa-east-1",
    ];
    for (i, region) in regions.iter().enumerate() {
        let params = json!({"productionAccessEnabled": true, "mailType": "MARKETING",
            "websiteURL": "https://example.com", "contactLanguage": "EN"});
        events.push(chain_event(
            ses,
            "PutAccountDetails",
            region,
            params,
            60 + i as i64 / 2,
        ));
    }
    events.extend([
        chain_event(
            ses,
            "UpdateAccountSendingEnabled",
            "us-east-1",
            json!({"enabled": true}),
            120,
        ),
        chain_event(
            ses,
            "VerifyDomainIdentity",
            "us-east-1",
            json!({"domain": "example.net"}),
            180,
        ),
        chain_event(
            iam,
            "CreateUser",
            "us-east-1",
            json!({"userName": "ses-smtp-user.20260302-101500"}),
            240,
        ),
        chain_event(
            iam,
            "CreateAccessKey",
            "us-east-1",
            json!({"userName": "ses-smtp-user.20260302-101500"}),
            241,
        ),
        chain_event(
            iam,
            "AttachUserPolicy",
            "us-east-1",
            json!({"userName": "ses-smtp-user.20260302-101500",
            "policyArn": "arn:aws:iam::aws:policy/AmazonSESFullAccess"}),
            242,
        ),
        chain_event(
            ses,
            "SetIdentityFeedbackForwardingEnabled",
            "us-east-1",
            json!({"identity": "example.net", "forwardingEnabled": false}),
            300,
        ),
        chain_event(
            ses,
            "DeleteIdentity",
            "us-east-1",
            json!({"identity": "example.net"}),
            900,
        ),
    ]);
    let mut report = Counts::default();
    for event in &events {
        handler
            .handle(event, "chain", &mut report)
            .await
            .expect("chain event");
    }
    let calls = counter.total();
    let per_event = calls as f64 / events.len() as f64;
    println!(
        "the whole chain: {calls} DynamoDB calls for {} events ({per_event:.2} per event)",
        events.len()
    );
    assert!(
        per_event <= 4.0,
        "{calls} DynamoDB calls for {} events ({per_event:.2} per event)",
        events.len()
    );
    // The scenario is the chain: one signal of it, one burst, one production access request.
    let signals = handler.sink().collected().signals;
    let count = |rule: &str| signals.iter().filter(|s| s.rule_id == rule).count();
    assert_eq!(count("ses-abuse-chain"), 1, "{signals:#?}");
    assert_eq!(count("ses-sandbox-exit-burst"), 1);
    assert_eq!(count("ses-production-access-requested"), 1);
    assert_eq!(report.signal_count(), signals.len() as u64);
}

#[tokio::test]
async fn the_sns_message_is_the_signal_json_with_attributes_and_a_safe_subject() {
    let Some(endpoint) = endpoint() else { return };
    let sdk = sdk(&endpoint).await;
    let (publisher, queue) = topic_with_queue(&sdk).await;
    let hostile = serde_json::json!({
        "eventSource": "ses.amazonaws.com", "eventName": "VerifyEmailIdentity",
        "eventTime": "2026-03-02T09:00:00Z", "eventID": "hostile", "awsRegion": "us-east-1",
        "recipientAccountId": "111122223333", "sourceIPAddress": "198.51.100.23",
        "userIdentity": {"type": "IAMUser", "arn": "arn:aws:iam::111122223333:user/\u{202e}x\r\nBcc: y"},
        "requestParameters": {"emailAddress": format!("é{}@example.com\u{0}", "a".repeat(1_000_000))}
    });
    let (out, _) = cli(String::new(), hostile.to_string()).await;
    let signal = out
        .signals
        .iter()
        .find(|s| s.rule_id == "ses-modification")
        .expect("signal");
    sesguard::deliver::Sink::emit(&publisher, signal)
        .await
        .expect("publish");
    let messages = drain(&sdk, &queue).await;
    assert_eq!(messages.len(), 1);
    let envelope = &messages[0];
    assert_eq!(
        envelope["Message"].as_str(),
        Some(signal.to_json().as_str())
    );
    let subject = envelope["Subject"].as_str().expect("subject");
    assert!(
        subject.len() <= 100 && subject.chars().all(|c| c.is_ascii_graphic() || c == ' '),
        "{subject:?}"
    );
    let attributes = &envelope["MessageAttributes"];
    assert_eq!(attributes["rule_id"]["Value"], "ses-modification");
    assert_eq!(attributes["severity"]["Value"], "low");
    assert_eq!(attributes["account_id"]["Value"], "111122223333");
    assert_eq!(attributes["region"]["Value"], "us-east-1");
}

#[tokio::test]
async fn with_signal_format_ocsf_the_sqs_subscriber_gets_the_ocsf_finding_and_the_attributes() {
    let Some(endpoint) = endpoint() else { return };
    let sdk = sdk(&endpoint).await;
    let (publisher, queue) = topic_with_queue(&sdk).await;
    let publisher = publisher.with_format(sesguard::output::SignalFormat::Ocsf);
    let (out, _) = cli(String::new(), sample("ses-DeleteIdentity.json")).await;
    assert!(!out.signals.is_empty());
    for signal in &out.signals {
        sesguard::deliver::Sink::emit(&publisher, signal)
            .await
            .expect("publish");
    }
    let messages = drain(&sdk, &queue).await;
    let mut got: Vec<&str> = messages
        .iter()
        .map(|m| m["Message"].as_str().unwrap_or_default())
        .collect();
    let mut expected: Vec<String> = out
        .signals
        .iter()
        .map(sesguard::output::ocsf::to_json)
        .collect();
    got.sort_unstable();
    expected.sort();
    assert_eq!(got, expected);
    for message in &messages {
        assert_eq!(
            message["MessageAttributes"]["account_id"]["Value"],
            "111122223333"
        );
        assert!(message["MessageAttributes"]["rule_id"]["Value"].is_string());
    }
}

async fn topic_with_queue(sdk: &aws_config::SdkConfig) -> (SnsPublisher, String) {
    let sns = aws_sdk_sns::Client::new(sdk);
    let sqs = aws_sdk_sqs::Client::new(sdk);
    let topic = sns
        .create_topic()
        .name(unique("sesguard-signals"))
        .send()
        .await
        .expect("topic")
        .topic_arn
        .expect("arn");
    let queue_url = sqs
        .create_queue()
        .queue_name(unique("sesguard-signals-queue"))
        .send()
        .await
        .expect("queue")
        .queue_url
        .expect("url");
    let queue_arn = sqs
        .get_queue_attributes()
        .queue_url(&queue_url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .expect("queue attributes")
        .attributes
        .and_then(|a| {
            a.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn)
                .cloned()
        })
        .expect("queue arn");
    sns.subscribe()
        .topic_arn(&topic)
        .protocol("sqs")
        .endpoint(queue_arn)
        .send()
        .await
        .expect("subscribe");
    (SnsPublisher::new(sns, topic), queue_url)
}

/// Every SNS envelope waiting in the queue.
async fn drain(sdk: &aws_config::SdkConfig, queue_url: &str) -> Vec<Value> {
    let sqs = aws_sdk_sqs::Client::new(sdk);
    let mut messages = Vec::new();
    for _ in 0..100 {
        let received = sqs
            .receive_message()
            .queue_url(queue_url)
            .max_number_of_messages(10)
            .send()
            .await
            .expect("receive");
        let batch = received.messages.unwrap_or_default();
        if batch.is_empty() {
            break;
        }
        for message in batch {
            let body = message.body.unwrap_or_default();
            messages.push(serde_json::from_str(&body).expect("sns envelope"));
            if let Some(handle) = message.receipt_handle {
                sqs.delete_message()
                    .queue_url(queue_url)
                    .receipt_handle(handle)
                    .send()
                    .await
                    .expect("delete");
            }
        }
    }
    messages
}

#[tokio::test]
async fn the_handler_over_the_samples_publishes_exactly_the_signals_of_the_cli() {
    let Some(endpoint) = endpoint() else { return };
    let sdk = sdk(&endpoint).await;
    let (publisher, queue) = topic_with_queue(&sdk).await;
    let config = || Config::load(None, &Overrides::default()).expect("config");
    let handler = Handler::new(Engine::new(config()), table(&sdk, None).await, publisher);
    let mut files: Vec<_> = std::fs::read_dir(EVENTS)
        .expect("events")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    let mut cli_input = String::new();
    for file in &files {
        let text = std::fs::read_to_string(file).expect("read");
        let mut report = Counts::default();
        handler
            .handle(&text, "samples", &mut report)
            .await
            .expect("handle");
        // Delivered twice (EventBridge is at least once): nothing more is published.
        handler
            .handle(&text, "samples-again", &mut report)
            .await
            .expect("handle again");
        let compact: Value = serde_json::from_str(&text).expect("json");
        cli_input.push_str(&format!("{compact}\n"));
    }
    let (cli, _) = cli(String::new(), cli_input).await;
    let mut expected: Vec<String> = cli.signals.iter().map(Signal::to_json).collect();
    let mut published: Vec<String> = drain(&sdk, &queue)
        .await
        .iter()
        .map(|m| m["Message"].as_str().unwrap_or_default().to_owned())
        .collect();
    expected.sort();
    published.sort();
    // Every rule, the whole abuse chain once (tests/cli.rs pins each sample's signals).
    let rules: Vec<String> = published
        .iter()
        .map(|m| {
            let signal: Value = serde_json::from_str(m).expect("signal JSON");
            signal["rule_id"].as_str().unwrap_or_default().to_owned()
        })
        .collect();
    for rule in sesguard::rules::ALL {
        assert!(
            rules.iter().any(|r| r == rule.id),
            "no {} published",
            rule.id
        );
    }
    assert_eq!(rules.iter().filter(|r| *r == "ses-abuse-chain").count(), 1);
    assert_eq!(published.len(), 33);
    assert_eq!(published, expected);
}

#[tokio::test]
async fn a_malformed_event_fails_the_invocation_after_evaluating_what_it_can() {
    let Some(endpoint) = endpoint() else { return };
    let sdk = sdk(&endpoint).await;
    let handler = Handler::new(Engine::default(), table(&sdk, None).await, NoPublisher);
    let mut report = Counts::default();
    let null_detail = r#"{"version":"0","detail-type":"AWS API Call via CloudTrail","source":"aws.ses","detail":null}"#;
    let err = handler
        .handle(null_detail, "bad", &mut report)
        .await
        .expect_err("malformed");
    assert!(err.to_string().contains("invocation bad"), "{err}");
    assert!(err.to_string().contains("null"), "{err}");
    let mixed = format!("[{}, 42]", sample("ses-GetAccount.json"));
    let err = handler
        .handle(&mixed, "mixed", &mut report)
        .await
        .expect_err("malformed");
    assert!(err.to_string().contains("record 2"), "{err}");
    assert_eq!(
        report.signal_count(),
        2,
        "the valid record was still evaluated"
    );
    assert_eq!(report.malformed, 2);
}

// ---------------------------------------------------------------- faults

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeDeserializationInterceptorContextMut, BeforeTransmitInterceptorContextRef,
};
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::config_bag::ConfigBag;
use std::sync::Mutex;

/// Fails the `nth` call (1-based) a client makes: before it is sent (the request never reaches
/// moto: a network failure) or after moto applied it (the response is replaced by a 500: the
/// write happened but the caller cannot know).
#[derive(Debug, Clone, Default)]
struct Faults {
    state: Arc<Mutex<FaultState>>,
}

#[derive(Debug, Default)]
struct FaultState {
    calls: u32,
    fail_call: Option<u32>,
    after_commit: bool,
    injected: u32,
}

impl Faults {
    fn arm(&self, nth: u32, after_commit: bool) {
        if let Ok(mut s) = self.state.lock() {
            *s = FaultState {
                calls: 0,
                fail_call: Some(nth),
                after_commit,
                injected: 0,
            };
        }
    }

    fn disarm(&self) -> u32 {
        self.state
            .lock()
            .map(|mut s| {
                s.fail_call = None;
                s.injected
            })
            .unwrap_or(0)
    }

    fn calls(&self) -> u32 {
        self.state.lock().map(|s| s.calls).unwrap_or(0)
    }

    /// Whether this call is the one to fail (at this stage).
    fn take(&self, after_commit: bool) -> bool {
        let Ok(mut s) = self.state.lock() else {
            return false;
        };
        if !after_commit {
            s.calls += 1;
        }
        if s.fail_call == Some(s.calls) && s.after_commit == after_commit {
            s.fail_call = None;
            s.injected += 1;
            return true;
        }
        false
    }
}

impl Intercept for Faults {
    fn name(&self) -> &'static str {
        "FaultInjector"
    }

    fn read_before_transmit(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if self.take(false) {
            return Err("injected: connection reset before the request was sent".into());
        }
        Ok(())
    }

    fn modify_before_deserialization(
        &self,
        context: &mut BeforeDeserializationInterceptorContextMut<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if self.take(true) {
            let service = cfg
                .load::<Metadata>()
                .map(|m| m.service().to_owned())
                .unwrap_or_default();
            let body = if service.to_lowercase().contains("dynamo") {
                r#"{"__type":"com.amazonaws.dynamodb.v20120810#InternalServerError","message":"injected after commit"}"#
            } else {
                r#"<ErrorResponse><Error><Type>Receiver</Type><Code>InternalError</Code><Message>injected after commit</Message></Error></ErrorResponse>"#
            };
            let response = context.response_mut();
            *response.status_mut() = 500u16.try_into()?;
            // The JSON protocol reads the error type from this header before the body.
            response.headers_mut().remove("x-amzn-ErrorType");
            *response.body_mut() = SdkBody::from(body);
        }
        Ok(())
    }
}

/// A handler whose DynamoDB and SNS clients carry fault injectors (SDK retries off, so one
/// injected fault reaches the handler as the Lambda would see a persistent one).
async fn faulty_handler(
    sdk: &aws_config::SdkConfig,
    table_name: &str,
    topic: &str,
    dynamo_faults: &Faults,
    sns_faults: &Faults,
    lease: std::time::Duration,
) -> Handler<DynamoState, SnsPublisher> {
    let dynamodb = aws_sdk_dynamodb::config::Builder::from(sdk)
        .retry_config(aws_config::retry::RetryConfig::disabled())
        .interceptor(dynamo_faults.clone())
        .build();
    let sns = aws_sdk_sns::config::Builder::from(sdk)
        .retry_config(aws_config::retry::RetryConfig::disabled())
        .interceptor(sns_faults.clone())
        .build();
    Handler::new(
        Engine::default(),
        DynamoState::new(aws_sdk_dynamodb::Client::from_conf(dynamodb), table_name)
            .with_lease(lease),
        SnsPublisher::new(aws_sdk_sns::Client::from_conf(sns), topic),
    )
}

fn signal_ids(messages: &[Value]) -> Vec<String> {
    let mut ids: Vec<String> = messages
        .iter()
        .filter_map(|m| m["Message"].as_str())
        .filter_map(|m| serde_json::from_str::<Value>(m).ok())
        .filter_map(|s| s["signal_id"].as_str().map(str::to_owned))
        .collect();
    ids.sort();
    ids
}

#[tokio::test]
async fn every_aws_fault_fails_the_invocation_and_the_retry_publishes_each_signal_once() {
    let Some(endpoint) = endpoint() else { return };
    let sdk = sdk(&endpoint).await;
    let event = sample("ses-GetAccount.json");
    let later = again(
        "ses-GetAccount.json",
        "two-hours-later",
        "2026-03-02T11:00:00Z",
    );

    // A clean run tells how many calls there are and what must be published.
    let (publisher, queue) = topic_with_queue(&sdk).await;
    let topic = publisher_topic(&publisher);
    let clean_table = table(&sdk, None).await;
    let (dynamo, sns) = (Faults::default(), Faults::default());
    let handler = faulty_handler(&sdk, clean_table.table(), &topic, &dynamo, &sns, LEASE).await;
    handler
        .handle(&event, "clean", &mut Counts::default())
        .await
        .expect("clean run");
    let expected = signal_ids(&drain(&sdk, &queue).await);
    assert_eq!(expected.len(), 2, "R1 and R2");
    let (dynamo_calls, sns_calls) = (dynamo.calls(), sns.calls());
    assert!(
        dynamo_calls >= 6 && sns_calls == 2,
        "{dynamo_calls} DynamoDB, {sns_calls} SNS calls"
    );

    let mut scenarios = Vec::new();
    for nth in 1..=dynamo_calls {
        for after_commit in [false, true] {
            scenarios.push(("DynamoDB", nth, after_commit));
        }
    }
    for nth in 1..=sns_calls {
        for after_commit in [false, true] {
            scenarios.push(("SNS", nth, after_commit));
        }
    }
    for (service, nth, after_commit) in scenarios {
        let what = format!(
            "{service} call {nth} failing {}",
            if after_commit {
                "after commit"
            } else {
                "before sending"
            }
        );
        let (publisher, queue) = topic_with_queue(&sdk).await;
        let topic = publisher_topic(&publisher);
        let state_table = table(&sdk, None).await;
        let (dynamo, sns) = (Faults::default(), Faults::default());
        let handler = faulty_handler(&sdk, state_table.table(), &topic, &dynamo, &sns, LEASE).await;
        let faults = if service == "SNS" { &sns } else { &dynamo };
        faults.arm(nth, after_commit);
        let mut report = Counts::default();
        let first = handler.handle(&event, "attempt-1", &mut report).await;
        assert_eq!(faults.disarm(), 1, "{what}: the fault was injected");
        // A restarted container (cold cache) retries once the claim lease ran out, as Lambda
        // does after an error (its retries come minutes later; a zero lease plays that here).
        let restarted = faulty_handler(
            &sdk,
            state_table.table(),
            &topic,
            &Faults::default(),
            &Faults::default(),
            std::time::Duration::ZERO,
        )
        .await;
        if first.is_err() {
            restarted
                .handle(&event, "attempt-2", &mut Counts::default())
                .await
                .unwrap_or_else(|e| panic!("{what}: retry failed: {e}"));
        }
        let published = signal_ids(&drain(&sdk, &queue).await);
        let mut unique_ids = published.clone();
        unique_ids.dedup();
        assert_eq!(
            unique_ids, expected,
            "{what}: every signal published, none lost"
        );
        if service == "SNS" && after_commit {
            // SNS accepted the message but the answer was lost: the retry sends it again, with the
            // same signal_id (the documented at-least-once window).
            assert!(
                published.len() <= expected.len() + 1,
                "{what}: {published:?}"
            );
        } else {
            assert_eq!(published, expected, "{what}: nothing published twice");
        }
        if !(first.is_err() || (service == "DynamoDB" && nth as usize > dynamo_calls as usize - 2))
        {
            // Only a failed mark (the last DynamoDB calls) may let the invocation succeed.
            panic!("{what}: the invocation should have failed");
        }
        // No state was left that hides a future true signal.
        restarted
            .handle(&later, "later", &mut Counts::default())
            .await
            .expect("later event");
        let later_ids = signal_ids(&drain(&sdk, &queue).await);
        assert_eq!(
            later_ids.len(),
            1,
            "{what}: the discovery two hours later still fires"
        );
    }
}

const LEASE: std::time::Duration = sesguard_lambda::aws::dynamodb::CLAIM_LEASE;

fn publisher_topic(publisher: &SnsPublisher) -> String {
    publisher.topic_arn().to_owned()
}

// ---------------------------------------------------------------- races

/// Runs every payload as its own concurrent invocation on one shared handler; returns the
/// (rule_id, event_id) of everything published.
async fn concurrently(sdk: &aws_config::SdkConfig, payloads: Vec<String>) -> Vec<(String, String)> {
    let handler = Arc::new(Handler::new(
        Engine::default(),
        table(sdk, None).await,
        Collect::default(),
    ));
    let tasks: Vec<_> = payloads
        .into_iter()
        .enumerate()
        .map(|(i, payload)| {
            let handler = Arc::clone(&handler);
            tokio::spawn(async move {
                let result = handler
                    .handle(&payload, &format!("race-{i}"), &mut Counts::default())
                    .await;
                (payload, result)
            })
        })
        .collect();
    let mut retry = Vec::new();
    for task in tasks {
        match task.await.expect("task") {
            (_, Ok(())) => {}
            // A concurrent duplicate found a claim held by a live invocation: Lambda retries it.
            (payload, Err(sesguard::lambda::HandlerError::InFlight(_))) => retry.push(payload),
            (_, Err(err)) => panic!("invocation failed: {err}"),
        }
    }
    // The retries come after the claimers finished: they find everything published.
    for payload in retry {
        handler
            .handle(&payload, "retry", &mut Counts::default())
            .await
            .expect("retry");
    }
    let signals = handler.sink().collected().signals;
    let mut fired: Vec<(String, String)> = signals
        .iter()
        .map(|s| (s.rule_id.clone(), s.subject.event_id.clone()))
        .collect();
    fired.sort();
    fired
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixteen_concurrent_invocations_publish_exactly_one_signal_each_time() {
    let Some(endpoint) = endpoint() else { return };
    let sdk = sdk(&endpoint).await;
    for round in 0..5 {
        // The same new principal in 16 different events at the same moment: one R2 signal.
        let payloads = (0..16)
            .map(|i| {
                again(
                    "ses-ListIdentities.json",
                    &format!("list-{i}"),
                    "2026-03-02T09:01:10Z",
                )
            })
            .collect();
        let fired = concurrently(&sdk, payloads).await;
        assert_eq!(fired.len(), 1, "round {round}: {fired:?}");
        assert_eq!(fired[0].0, "ses-enumeration-unseen-user");

        // One event delivered 16 times at once: one signal per rule it fires.
        let payloads = (0..16).map(|_| sample("ses-GetAccount.json")).collect();
        let fired = concurrently(&sdk, payloads).await;
        let rules: Vec<&str> = fired.iter().map(|(rule, _)| rule.as_str()).collect();
        assert_eq!(
            rules,
            ["ses-discovery-long-term-key", "ses-enumeration-unseen-user"],
            "round {round}"
        );

        // An add and its delete, each delivered 8 times, all at once: one verify-then-delete.
        let mut payloads = Vec::new();
        for _ in 0..8 {
            payloads.push(sample("ses-VerifyEmailIdentity.json"));
            payloads.push(sample("ses-DeleteIdentity.json"));
        }
        let fired = concurrently(&sdk, payloads).await;
        let pairs: Vec<&(String, String)> = fired
            .iter()
            .filter(|(rule, _)| rule == "ses-verify-then-delete")
            .collect();
        assert_eq!(pairs.len(), 1, "round {round}: {fired:?}");
        assert_eq!(
            fired.len(),
            4,
            "R3 for each call, R4 and R5 once: {fired:?}"
        );
    }
}

#[tokio::test]
async fn an_identity_deleted_hundreds_of_times_never_blocks_its_events() {
    let Some(endpoint) = endpoint() else { return };
    let sdk = sdk(&endpoint).await;
    let state = table(&sdk, None).await;
    let padded = |id: &str, time: i64| Mark {
        event_id: id.to_owned(),
        time,
        subject: Subject {
            event_id: id.to_owned(),
            user_agent: Some("x".repeat(4096)),
            user_arn: Some("y".repeat(4096)),
            identity: Some("z".repeat(4096)),
            principal: Some("p".repeat(4096)),
            ..Subject::default()
        },
    };
    for i in 0..300 {
        state
            .pair(
                "i",
                Side::Delete,
                &padded(&format!("del-{i}"), 1_000 + i),
                3_600,
            )
            .await
            .unwrap_or_else(|e| panic!("delete {i}: {e}"));
    }
    // Still answers, and still pairs what comes next.
    let found = state
        .pair("i", Side::Delete, &padded("last-del", 2_000), 3_600)
        .await
        .expect("delete");
    assert!(found.is_empty());
    let found = state
        .pair("i", Side::Add, &mark("add", 1_990), 3_600)
        .await
        .expect("add");
    assert!(found.iter().any(|m| m.event_id == "last-del"), "{found:?}");
}

#[tokio::test]
async fn an_identity_verified_700_times_then_touched_a_day_later_still_answers() {
    let Some(endpoint) = endpoint() else { return };
    let sdk = sdk(&endpoint).await;
    let state = table(&sdk, None).await;
    for i in 0..700 {
        let add = mark(&format!("verify-{i:03}"), 1_000 + i);
        state
            .pair("i", Side::Add, &add, 3_600)
            .await
            .unwrap_or_else(|e| panic!("verify {i}: {e}"));
    }
    // A day later: every mark is stale. Housekeeping removes a bounded number a call (the
    // expression stays within 4 KB, checked by DynamoLimits), and the events still answer.
    let day = 86_400;
    let delete = mark("delete", 1_700 + day);
    let found = state
        .pair("i", Side::Delete, &delete, 3_600)
        .await
        .expect("delete a day later");
    assert!(found.is_empty(), "{found:?}");
    let again = mark("verify-again", 1_800 + day);
    state
        .pair("i", Side::Add, &again, 3_600)
        .await
        .expect("verify a day later");
    let late_delete = mark("delete-2", 1_900 + day);
    let found = state
        .pair("i", Side::Delete, &late_delete, 3_600)
        .await
        .expect("delete after it");
    let ids: Vec<&str> = found.iter().map(|m| m.event_id.as_str()).collect();
    assert_eq!(ids, ["verify-again"]);
}

#[tokio::test]
async fn five_thousand_adds_then_a_delete_give_the_one_verify_then_delete_signal() {
    let Some(endpoint) = endpoint() else { return };
    let sdk = sdk(&endpoint).await;
    let handler = Handler::new(
        Engine::default(),
        table(&sdk, None).await,
        Collect::default(),
    );
    let base: Value = serde_json::from_str(&sample("ses-VerifyEmailIdentity.json")).expect("json");
    let start = 1_772_442_000;
    for i in 0..5_000 {
        let mut add = base.clone();
        add["detail"]["eventID"] = Value::from(format!("flood-{i}"));
        add["detail"]["eventTime"] = Value::from(sesguard::time::format(start + i));
        handler
            .handle(&add.to_string(), "flood", &mut Counts::default())
            .await
            .unwrap_or_else(|e| panic!("add {i}: {e}"));
    }
    let mut delete: Value = serde_json::from_str(&sample("ses-DeleteIdentity.json")).expect("json");
    delete["detail"]["eventID"] = Value::from("the-delete");
    delete["detail"]["eventTime"] = Value::from(sesguard::time::format(start + 5_010));
    handler
        .handle(&delete.to_string(), "delete", &mut Counts::default())
        .await
        .expect("delete");
    let signals = handler.sink().collected().signals;
    let r4: Vec<&Signal> = signals
        .iter()
        .filter(|s| s.rule_id == "ses-verify-then-delete")
        .collect();
    assert_eq!(
        r4.len(),
        1,
        "{:?}",
        signals.iter().map(|s| &s.rule_id).collect::<Vec<_>>()
    );
    assert_eq!(r4[0].subject.event_id, "the-delete");
    assert_eq!(r4[0].related_event_ids.len(), 20);
    assert_eq!(r4[0].related_event_ids[0], "flood-4999");
}

// ---------------------------------------------------------------- logs at TRACE

#[path = "../../../tests/support/log_buffer.rs"]
mod log_buffer;
use log_buffer::LogBuffer;

/// What one invocation on `ses-GetAccount.json` (two signals) logs through `filter`, with
/// DynamoDB and SNS over HTTP (moto): the SDK runs its whole request path.
async fn logs_with(filter: tracing_subscriber::EnvFilter) -> Option<String> {
    let endpoint = endpoint()?;
    let sdk = sdk(&endpoint).await;
    let (publisher, _queue) = topic_with_queue(&sdk).await;
    let handler = Handler::new(Engine::default(), table(&sdk, None).await, publisher);
    let buffer = LogBuffer::default();
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(buffer.clone())
        .finish();
    // The test's runtime runs on this thread: the subscriber sees every line of the call.
    let guard = tracing::subscriber::set_default(subscriber);
    let mut counts = Counts::default();
    handler
        .handle(&sample("ses-GetAccount.json"), "trace", &mut counts)
        .await
        .expect("handle");
    drop(guard);
    assert_eq!(counts.signal_count(), 2);
    Some(buffer.text())
}

/// Values of the sample that must never be logged (they are in the event and the SNS message
/// body). What lambda_runtime itself logs at TRACE (the raw event) is checked in the crate's
/// unit tests (`log_filter`); this is the whole path of an invocation at TRACE.
const PRIVATE: [&str; 3] = ["AKIAIOSFODNN7EXAMPLE", "ses-ops-leaked", "198.51.100.23"];

#[tokio::test]
async fn trace_logs_carry_sesguard_detail_but_no_credentials_or_personal_data() {
    let filter = sesguard_lambda::log_filter(tracing_subscriber::filter::LevelFilter::TRACE);
    let Some(logs) = logs_with(filter).await else {
        return;
    };
    // (That sesguard's DEBUG lines are on at TRACE is checked by the crate's unit test: here,
    // other tests' threads register the same callsites, and tracing's interest cache may race.)
    assert!(logs.contains("signal published"), "{logs}");
    for value in PRIVATE {
        assert!(!logs.contains(value), "{value} logged:\n{logs}");
    }
}

#[tokio::test]
async fn a_late_replay_is_written_to_outlive_the_wall_clock_margin() {
    // An event redriven 30 days late: its event-time expiries are long past, but its items
    // (its sighting, its pairing, its claim) must survive DynamoDB's sweeper until used, while
    // every decision stays in event time.
    let Some(endpoint) = endpoint() else { return };
    let sdk = sdk(&endpoint).await;
    let state = table(&sdk, None).await;
    let admin = aws_sdk_dynamodb::Client::new(&sdk);
    let wall = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64)
    };
    let day = 86_400;
    let then = wall() - 30 * day;
    let before = wall();
    assert_eq!(
        state.sight("p", "old", then, 28 * day).await.ok(),
        Some(Sighting::New)
    );
    state
        .pair("i", Side::Add, &mark("old-add", then), 3_600)
        .await
        .expect("pair");
    assert_eq!(
        state.claim_signal("s", then, then + 2 * day).await.ok(),
        Some(Claim::Fresh)
    );
    let margin = sesguard_lambda::aws::dynamodb::WALL_CLOCK_MARGIN.as_secs() as i64;
    for (kind, key) in [("seen", "p"), ("pair", "i"), ("signal", "s")] {
        let item = admin
            .get_item()
            .table_name(state.table())
            .key(KEY_ATTRIBUTE, AttributeValue::S(item_key(kind, key)))
            .send()
            .await
            .expect("get_item")
            .item
            .unwrap_or_else(|| panic!("{kind} item"));
        let ttl: i64 = item[TTL_ATTRIBUTE]
            .as_n()
            .ok()
            .and_then(|n| n.parse().ok())
            .expect("numeric expires_at");
        assert!(
            ttl >= before + margin,
            "{kind}: expires_at {ttl} < now + margin"
        );
    }
    // Decisions are still in event time: seen 28 days ago in event time → new again at 29.
    assert_eq!(
        state
            .sight("p", "later", then + 29 * day, 28 * day)
            .await
            .ok(),
        Some(Sighting::New)
    );
    assert_eq!(
        state
            .sight("p", "same-day", then + 29 * day + 60, 28 * day)
            .await
            .ok(),
        Some(Sighting::Known)
    );
    // A claim expired in event time is free again, however long its item is kept.
    assert_eq!(
        state
            .claim_signal("s", then + 3 * day, then + 5 * day)
            .await
            .ok(),
        Some(Claim::Fresh)
    );
}
