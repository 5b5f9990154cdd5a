//! `scan s3://…`, `timeline s3://…` and `backfill` against moto's S3 and SQS (needs
//! `SESGUARD_TEST_ENDPOINT`, which `scripts/emulators.sh` exports; without it these tests skip,
//! unless `SESGUARD_REQUIRE_EMULATORS` is set, as in CI, where they fail).
//!
//! The samples of `events/` are written as an organisation trail's gzip'd log files, once to a
//! bucket and once to a local folder with the same layout: scanning either gives the same bytes.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use assert_cmd::Command;
use aws_sdk_s3::primitives::ByteStream;
use flate2::Compression;
use flate2::write::GzEncoder;
use serde_json::Value;
use tempfile::TempDir;

const PREFIX: &str = "AWSLogs/o-abc123/111122223333/CloudTrail/us-east-1/2026/03/02/";
const LATER: &str = "AWSLogs/o-abc123/111122223333/CloudTrail/us-east-1/2026/03/09/";
const DIGEST: &str = "AWSLogs/o-abc123/111122223333/CloudTrail-Digest/us-east-1/2026/03/02/";

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

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

async fn sdk(endpoint: &str) -> aws_config::SdkConfig {
    use aws_smithy_http_client::tls;
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(
            aws_smithy_http_client::Builder::new()
                .tls_provider(tls::Provider::Rustls(
                    tls::rustls_provider::CryptoMode::Ring,
                ))
                .build_https(),
        )
        .endpoint_url(endpoint)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_s3::config::Credentials::new(
            "testing", "testing", None, None, "test",
        ))
        .load()
        .await
}

fn s3_client(config: &aws_config::SdkConfig) -> aws_sdk_s3::Client {
    aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(config)
            .force_path_style(true)
            .build(),
    )
}

fn gzip(text: &str) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
    encoder.write_all(text.as_bytes()).expect("gzip");
    encoder.finish().expect("gzip")
}

/// The log files: (key, gzip'd `{"Records":[…]}`), one per sample, named in CloudTrail's way.
fn log_files() -> Vec<(String, Vec<u8>)> {
    let events = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/events"));
    let mut names: Vec<PathBuf> = fs::read_dir(events)
        .expect("events/")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    names.sort();
    names
        .iter()
        .enumerate()
        .map(|(i, path)| {
            let event: Value =
                serde_json::from_str(&fs::read_to_string(path).expect("read")).expect("JSON");
            let record = &event["detail"];
            let text = serde_json::json!({ "Records": [record] }).to_string();
            // Named as CloudTrail names them: the time (to the minute) in the name.
            let time = record["eventTime"].as_str().expect("eventTime");
            let stamp: String = time[..16]
                .chars()
                .filter(|c| *c != '-' && *c != ':')
                .collect();
            let key = format!("{PREFIX}111122223333_CloudTrail_us-east-1_{stamp}Z_{i:03}.json.gz");
            (key, gzip(&text))
        })
        .collect()
}

/// One later record (another day) and a digest file, beside the log files.
fn extra_files() -> Vec<(String, Vec<u8>)> {
    let later = r#"{"Records":[{"eventVersion":"1.09","eventTime":"2026-03-09T10:00:00Z","eventSource":"ses.amazonaws.com","eventName":"DeleteIdentity","awsRegion":"us-east-1","sourceIPAddress":"203.0.113.50","eventID":"later-delete-1","recipientAccountId":"111122223333","requestParameters":{"identity":"later@example.net"},"userIdentity":{"type":"IAMUser","arn":"arn:aws:iam::111122223333:user/later","accessKeyId":"AKIALATER"}}]}"#;
    vec![
        (format!("{LATER}later.json.gz"), gzip(later)),
        (
            format!("{DIGEST}111122223333_CloudTrail-Digest_us-east-1_x.json.gz"),
            gzip(r#"{"digestStartTime":"2026-03-02T09:00:00Z","logFiles":[]}"#),
        ),
    ]
}

struct Trail {
    bucket: String,
    local: TempDir,
    endpoint: String,
    config: aws_config::SdkConfig,
}

/// A bucket and a local folder holding the same files.
fn trail(rt: &tokio::runtime::Runtime, endpoint: &str) -> Trail {
    let config = rt.block_on(sdk(endpoint));
    let s3 = s3_client(&config);
    let bucket = format!("sesguard-trail-{}", std::process::id());
    let bucket = format!("{bucket}-{}", rand_suffix());
    rt.block_on(s3.create_bucket().bucket(&bucket).send())
        .expect("create bucket");
    let local = TempDir::new().expect("temp dir");
    for (key, body) in log_files().into_iter().chain(extra_files()) {
        rt.block_on(
            s3.put_object()
                .bucket(&bucket)
                .key(&key)
                .body(ByteStream::from(body.clone()))
                .send(),
        )
        .expect("put object");
        let path = local.path().join(&key);
        fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        fs::write(path, body).expect("write");
    }
    Trail {
        bucket,
        local,
        endpoint: endpoint.to_owned(),
        config,
    }
}

fn rand_suffix() -> String {
    use std::time::{SystemTime, UNIX_EPOCH};
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{nanos:09}")
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Trail {
    fn run(&self, args: &[&str]) -> Run {
        let output = Command::new(env!("CARGO_BIN_EXE_sesguard"))
            .args(args)
            .env("AWS_ENDPOINT_URL", &self.endpoint)
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_REGION", "us-east-1")
            .env_remove("AWS_PROFILE")
            .output()
            .expect("runs");
        Run {
            code: output.status.code().expect("exit code"),
            stdout: String::from_utf8(output.stdout).expect("UTF-8"),
            stderr: String::from_utf8(output.stderr).expect("UTF-8"),
        }
    }

    fn url(&self, prefix: &str) -> String {
        format!("s3://{}/{prefix}", self.bucket)
    }

    fn local(&self, prefix: &str) -> String {
        self.local.path().join(prefix).display().to_string()
    }
}

#[test]
fn scanning_s3_gives_the_bytes_of_scanning_the_same_files_locally() {
    let Some(endpoint) = endpoint() else { return };
    let rt = runtime();
    let trail = trail(&rt, &endpoint);
    for threads in ["1", "3"] {
        let remote = trail.run(&[
            "scan",
            "--format",
            "jsonl",
            "--threads",
            threads,
            &trail.url("AWSLogs/"),
        ]);
        let local = trail.run(&[
            "scan",
            "--format",
            "jsonl",
            "--threads",
            threads,
            &trail.local("AWSLogs/"),
        ]);
        assert_eq!(remote.code, 0, "{}", remote.stderr);
        assert_eq!(local.code, 0, "{}", local.stderr);
        assert!(remote.stdout.lines().count() > 20, "{}", remote.stdout);
        assert_eq!(
            remote.stdout, local.stdout,
            "--threads {threads}: {} / {}",
            remote.stderr, local.stderr
        );
        // The listing left the digest out, and the summary counts it as the local scan does.
        assert!(
            remote.stderr.contains("1 digest file skipped"),
            "{}",
            remote.stderr
        );
        let summary = |s: &str| s.lines().last().unwrap_or("").to_owned();
        assert_eq!(summary(&remote.stderr), summary(&local.stderr));
    }
}

#[test]
fn since_and_until_skip_whole_days_of_objects_and_filter_records() {
    let Some(endpoint) = endpoint() else { return };
    let rt = runtime();
    let trail = trail(&rt, &endpoint);
    let all = trail.run(&["scan", "--format", "jsonl", &trail.url("AWSLogs/")]);
    assert!(all.stdout.contains("later-delete-1"));
    let early = trail.run(&[
        "scan",
        "--format",
        "jsonl",
        "--until",
        "2026-03-03",
        &trail.url("AWSLogs/"),
    ]);
    assert_eq!(early.code, 0, "{}", early.stderr);
    assert!(!early.stdout.contains("later-delete-1"));
    assert!(
        early.stderr.contains("1 of days outside"),
        "{}",
        early.stderr
    );
    let late = trail.run(&[
        "scan",
        "--format",
        "jsonl",
        "--since",
        "2026-03-09T09:00:00Z",
        &trail.url("AWSLogs/"),
        &trail.local("AWSLogs/"),
    ]);
    assert_eq!(late.code, 0, "{}", late.stderr);
    let ids: Vec<Value> = late
        .stdout
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).expect("JSON")["event_id"].clone())
        .collect();
    // The later delete from S3 and from the local copy (one signal each run of the engine:
    // the same event twice is one signal), nothing of the earlier day.
    assert!(!ids.is_empty());
    assert!(ids.iter().all(|id| id == "later-delete-1"), "{ids:?}");
    assert!(
        late.stderr.contains("outside --since/--until"),
        "{}",
        late.stderr
    );
}

#[test]
fn a_missing_bucket_is_an_error_naming_it_and_the_rest_is_scanned() {
    let Some(endpoint) = endpoint() else { return };
    let rt = runtime();
    let trail = trail(&rt, &endpoint);
    let run = trail.run(&[
        "scan",
        "--format",
        "jsonl",
        "s3://sesguard-no-such-bucket-x/AWSLogs/",
        &trail.local("AWSLogs/"),
    ]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr
            .contains("s3://sesguard-no-such-bucket-x/AWSLogs/: cannot list"),
        "{}",
        run.stderr
    );
    assert!(
        run.stdout.lines().count() > 20,
        "the local files were scanned"
    );
    // An object that lists but cannot be read (archived: GetObject answers InvalidObjectState,
    // as a denied GetObject answers AccessDenied) is named and counted; the others are read.
    let config = &trail.config;
    let s3 = s3_client(config);
    let cold = format!("{PREFIX}111122223333_CloudTrail_us-east-1_20260302T2359Z_cold.json.gz");
    rt.block_on(
        s3.put_object()
            .bucket(&trail.bucket)
            .key(&cold)
            .storage_class(aws_sdk_s3::types::StorageClass::Glacier)
            .body(ByteStream::from(gzip(r#"{"Records":[]}"#)))
            .send(),
    )
    .expect("put archived object");
    let run = trail.run(&["scan", "--format", "jsonl", &trail.url("AWSLogs/")]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr
            .contains(&format!("s3://{}/{cold}: cannot read", trail.bucket)),
        "{}",
        run.stderr
    );
    assert!(
        run.stdout.lines().count() > 20,
        "the other objects were scanned"
    );
    // A prefix with no log file is like a folder with none: named, exit 2.
    let empty = trail.run(&["scan", &trail.url("nothing-here/")]);
    assert_eq!(empty.code, 2);
    assert!(
        empty
            .stderr
            .contains("no CloudTrail log file under this prefix"),
        "{}",
        empty.stderr
    );
}

#[test]
fn timeline_reads_s3_too() {
    let Some(endpoint) = endpoint() else { return };
    let rt = runtime();
    let trail = trail(&rt, &endpoint);
    let args = [
        "timeline",
        "--source-ip",
        "198.51.100.23",
        "--format",
        "jsonl",
    ];
    let remote = trail.run(&[&args[..], &[trail.url("AWSLogs/").as_str()]].concat());
    let local = trail.run(&[&args[..], &[trail.local("AWSLogs/").as_str()]].concat());
    let strip = |text: &str| -> Vec<Value> {
        text.lines()
            .map(|l| {
                let mut v: Value = serde_json::from_str(l).expect("JSON");
                v.as_object_mut().expect("object").remove("at");
                v
            })
            .collect()
    };
    assert_eq!(remote.code, 0, "{}", remote.stderr);
    assert!(strip(&remote.stdout).len() > 10);
    assert_eq!(strip(&remote.stdout), strip(&local.stdout));
}

#[test]
fn backfill_queues_one_notification_per_log_file_and_can_run_again() {
    let Some(endpoint) = endpoint() else { return };
    let rt = runtime();
    let trail = trail(&rt, &endpoint);
    let sqs = aws_sdk_sqs::Client::new(&trail.config);
    let queue = rt
        .block_on(
            sqs.create_queue()
                .queue_name(format!("{}-ingest", trail.bucket))
                .send(),
        )
        .expect("queue")
        .queue_url()
        .expect("url")
        .to_owned();
    let run = trail.run(&["backfill", "--queue", &queue, &trail.url("AWSLogs/")]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let logs = log_files().len() + 1; // the later day's file too; not the digest
    assert!(
        run.stdout.starts_with(&format!("{logs} log files, ")),
        "{}",
        run.stdout
    );
    let drain = || -> Vec<String> {
        let mut keys = Vec::new();
        loop {
            let got = rt
                .block_on(
                    sqs.receive_message()
                        .queue_url(&queue)
                        .max_number_of_messages(10)
                        .send(),
                )
                .expect("receive");
            let messages = got.messages();
            if messages.is_empty() {
                return keys;
            }
            for message in messages {
                let body: Value =
                    serde_json::from_str(message.body().expect("body")).expect("JSON");
                let record = &body["Records"][0];
                assert_eq!(record["eventSource"], "aws:s3");
                assert_eq!(record["eventName"], "ObjectCreated:Put");
                assert_eq!(record["s3"]["bucket"]["name"], trail.bucket.as_str());
                keys.push(
                    record["s3"]["object"]["key"]
                        .as_str()
                        .expect("key")
                        .to_owned(),
                );
                rt.block_on(
                    sqs.delete_message()
                        .queue_url(&queue)
                        .receipt_handle(message.receipt_handle().expect("handle"))
                        .send(),
                )
                .expect("delete");
            }
        }
    };
    let mut first = drain();
    first.sort();
    let mut expected: Vec<String> = log_files().into_iter().map(|(k, _)| k).collect();
    expected.push(format!("{LATER}later.json.gz"));
    expected.sort();
    assert_eq!(first, expected);
    // Again, bounded by date: only the later day's file.
    let again = trail.run(&[
        "backfill",
        "--queue",
        &queue,
        "--since",
        "2026-03-05",
        &trail.url("AWSLogs/"),
    ]);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert_eq!(drain(), [format!("{LATER}later.json.gz")]);
    // A queue that does not exist: exit 1, named.
    let bad = trail.run(&[
        "backfill",
        "--queue",
        &format!("{queue}-missing"),
        &trail.url("AWSLogs/"),
    ]);
    assert_eq!(bad.code, 1);
    assert!(
        bad.stderr.contains("-missing: cannot send"),
        "{}",
        bad.stderr
    );
}
