//! `sesguard-lambda`: one EventBridge event per invocation, or one SQS batch of S3
//! notifications naming CloudTrail log files → engine → DynamoDB state → (Security Hub, when
//! enabled) → SNS. Builds
//! configuration and AWS clients once per container; the work is in `sesguard::lambda` and the
//! adapters in `sesguard_lambda::aws`.
//!
//! One binary for both paths, told apart by the payload's shape ([`sqs_batch`]): one build, one
//! configuration and one set of adapters, and the EventBridge path is unchanged. The template
//! deploys it as two functions, so the S3 path has its own role (S3 and SQS rights), timeout and
//! reserved concurrency, and a backlog of log files cannot take the EventBridge path's.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::value::RawValue;
use sesguard::Engine;
use sesguard::deliver::Counts;
use sesguard::heartbeat::Heartbeat;
use sesguard::lambda::{
    ConfigEvents, Handler, HandlerError, LambdaConfig, LiveConfig, Refresh, config_emf_line,
    emf_lines, heartbeat_emf_line,
};
use sesguard_lambda::Failure;
use sesguard_lambda::aws::calls::CallCounter;
use sesguard_lambda::aws::dynamodb::DynamoState;
use sesguard_lambda::aws::s3::S3Objects;
use sesguard_lambda::aws::security_hub::{ImportThen, SecurityHub};
use sesguard_lambda::aws::ses::CanaryCaller;
use sesguard_lambda::aws::sns::SnsPublisher;
use sesguard_lambda::sqs::{handle_batch, sqs_batch};

struct App {
    handler: Handler<DynamoState, ImportThen<SnsPublisher>>,
    objects: S3Objects,
    dynamodb_calls: CallCounter,
    /// The configuration in S3 (`SESGUARD_CONFIG` or `SESGUARD_TOR_EXIT_LIST` an s3:// URL),
    /// checked at the start of invocations; `None`: loaded once at the cold start, as before.
    live: Option<LiveConfig<S3Objects>>,
    /// The heartbeat's settings and canary caller (`SESGUARD_HEARTBEAT_ROLE_ARN` set).
    heartbeat: Option<(Heartbeat, CanaryCaller)>,
}

/// What an invocation answers: nothing for an EventBridge event (`null`), the failed messages
/// for an SQS batch.
#[derive(serde::Serialize)]
#[serde(untagged)]
enum Response {
    Event(()),
    Batch(aws_lambda_events::event::sqs::SqsBatchResponse),
}

async fn start() -> Result<App, Error> {
    let config = LambdaConfig::from_env(|name| std::env::var(name).ok())?;
    let task_root = std::env::var_os("LAMBDA_TASK_ROOT").map(std::path::PathBuf::from);
    // Honours AWS_ENDPOINT_URL / AWS_ENDPOINT_URL_DYNAMODB / _SNS, so the same binary runs
    // against a local emulator.
    let sdk = sesguard_lambda::aws::sdk_config().await;
    let s3 = aws_sdk_s3::Client::new(&sdk);
    // A configuration in S3 is read below, after the clients are built: a file that cannot be
    // used then fails the invocations (retried, then the failure queue) instead of the start.
    let live = LiveConfig::<S3Objects>::is_live(&config).then(|| {
        LiveConfig::new(
            S3Objects::new(s3.clone()),
            config.clone(),
            task_root.clone(),
        )
    });
    let engine = match live {
        Some(_) => Engine::default(),
        None => Engine::new(config.engine_config(task_root.as_deref())?),
    };
    let dynamodb_calls = CallCounter::new();
    let dynamodb = aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::config::Builder::from(&sdk)
            .interceptor(dynamodb_calls.clone())
            .build(),
    );
    let sns = aws_sdk_sns::Client::new(&sdk);
    let objects = S3Objects::new(s3)
        .only_bucket(config.trail_bucket.clone())
        .expected_owner(config.trail_bucket_owner.clone());
    // Security Hub (SESGUARD_SECURITY_HUB_PRODUCT_ARN, set by the template's EnableSecurityHub):
    // each signal is imported before it is published.
    let security_hub = match config.security_hub.clone() {
        None => None,
        Some(product) => Some(SecurityHub::new(&sdk, product)?),
    };
    if live.is_none() {
        tracing::info!(
            table = %config.table_name,
            security_hub = security_hub.is_some(),
            topic = %config.topic_arn,
            suppressions = engine.config().suppressions.len(),
            tor_exits = engine.config().tor.len(),
            signal_format = config.signal_format.as_str(),
            "sesguard-lambda ready"
        );
    }
    let heartbeat = config.heartbeat();
    let mut state = DynamoState::new(dynamodb, config.table_name);
    if let Some(lease) = config.claim_lease {
        state = state.with_lease(lease);
    }
    let mut handler = Handler::new(
        engine,
        state,
        ImportThen::new(
            security_hub,
            SnsPublisher::new(sns, config.topic_arn).with_format(config.signal_format),
        ),
    );
    let heartbeat = match heartbeat {
        None => None,
        Some(heartbeat) => {
            // The function's own GetSendQuota canaries are recorded, never evaluated by a rule.
            handler = handler.with_canary(sesguard::heartbeat::Canary::new(&heartbeat.role_arn));
            Some((heartbeat, CanaryCaller::new(&sdk)?))
        }
    };
    let app = App {
        handler,
        objects,
        dynamodb_calls,
        live,
        heartbeat,
    };
    // The cold start's read; if it fails, each invocation tries again (and fails until then).
    if let Err(err) = app.refresh_config().await {
        tracing::error!(error = %err, "no usable configuration yet: invocations fail until there is one");
    }
    Ok(app)
}

impl App {
    /// Reads the configuration in S3 if it is due (or not read yet), and swaps the engine if it
    /// changed. Fails only without a good configuration since the cold start.
    async fn refresh_config(&self) -> Result<(), HandlerError> {
        let Some(live) = &self.live else {
            return Ok(());
        };
        let mut events = ConfigEvents::default();
        let result = match live.refresh(Instant::now(), &mut events).await {
            Refresh::Unchanged => Ok(()),
            Refresh::Changed(config) => {
                self.handler.replace_engine(Engine::new(config));
                Ok(())
            }
            Refresh::Unusable(message) => Err(HandlerError::Config(message)),
        };
        if let Some(line) = config_emf_line(&events, now_ms()) {
            println!("{line}");
        }
        result
    }

    async fn invoke(&self, event: LambdaEvent<Box<RawValue>>) -> Result<Response, Failure> {
        if let Err(err) = self.refresh_config().await {
            tracing::error!(
                error = %err,
                error_type = err.error_type(),
                request_id = %event.context.request_id,
                "invocation failed: no usable configuration; Lambda will retry it"
            );
            return Err(Failure(err));
        }
        self.dynamodb_calls.reset();
        if sesguard::heartbeat::is_request(event.payload.get()) {
            return self.heartbeat().await.map(Response::Event).map_err(Failure);
        }
        let mut counts = Counts::default();
        if let Some(batch) = sqs_batch(event.payload.get()) {
            let response = handle_batch(&self.handler, &self.objects, &batch, &mut counts).await;
            self.metrics(&counts);
            return Ok(Response::Batch(response));
        }
        let result = self
            .handler
            .handle(event.payload.get(), &event.context.request_id, &mut counts)
            .await;
        self.metrics(&counts);
        if let Err(err) = &result {
            tracing::error!(
                error = %err,
                error_type = err.error_type(),
                transient = err.is_transient(),
                request_id = %event.context.request_id,
                "invocation failed; Lambda will retry it"
            );
        }
        result.map(Response::Event).map_err(Failure)
    }

    /// One heartbeat run (the schedule's [`sesguard::heartbeat::REQUEST`]): the canary call in
    /// every region, at once (each comes back through CloudTrail and EventBridge for the next
    /// runs to find), then the regions' last canaries against the wall clock. A failed call is
    /// logged and counted, not fatal: CloudTrail records a refused call too, and a region whose
    /// canary stops coming is what the run reports. A state or publish failure fails the run
    /// (the schedule retries it; claims keep a signal from going out twice).
    async fn heartbeat(&self) -> Result<(), HandlerError> {
        let Some((settings, caller)) = &self.heartbeat else {
            let err = HandlerError::Config(
                "a heartbeat request, but the heartbeat is off (SESGUARD_HEARTBEAT_ROLE_ARN is not set)"
                    .to_owned(),
            );
            tracing::error!(error = %err, error_type = err.error_type(), "heartbeat not run");
            return Err(err);
        };
        let mut calls = tokio::task::JoinSet::new();
        for region in &settings.regions {
            let (caller, region) = (caller.clone(), region.clone());
            calls.spawn(async move { caller.call(&region).await });
        }
        let mut failed = 0;
        while let Some(result) = calls.join_next().await {
            let outcome = result
                .map_err(|err| err.to_string())
                .and_then(|r| r.map_err(|e| e.to_string()));
            if let Err(error) = outcome {
                failed += 1;
                tracing::warn!(error = %error, "heartbeat canary call failed");
            }
        }
        let now = i64::try_from(now_ms() / 1000).unwrap_or(i64::MAX);
        let result = self.handler.heartbeat(settings, now).await;
        let published = result.as_ref().map_or(0, Vec::len);
        println!("{}", heartbeat_emf_line(failed, published as u64, now_ms()));
        match result {
            Ok(signals) => {
                tracing::info!(
                    regions = settings.regions.len(),
                    canary_failed = failed,
                    pipeline_signals = signals.len(),
                    "heartbeat run"
                );
                Ok(())
            }
            Err(err) => {
                tracing::error!(
                    error = %err,
                    error_type = err.error_type(),
                    transient = err.is_transient(),
                    "heartbeat run failed; the schedule will retry it"
                );
                Err(err)
            }
        }
    }

    fn metrics(&self, counts: &Counts) {
        for line in emf_lines(counts, now_ms(), self.dynamodb_calls.total()) {
            println!("{line}");
        }
    }
}

fn now_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis())
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    sesguard_lambda::init_logging();
    let app = match start().await {
        Ok(app) => app,
        Err(err) => {
            tracing::error!(error = %err, "sesguard-lambda cannot start");
            return Err(err);
        }
    };
    // One App per container for the life of the process.
    let app: &'static App = Box::leak(Box::new(app));
    lambda_runtime::run(service_fn(move |event| app.invoke(event))).await
}
