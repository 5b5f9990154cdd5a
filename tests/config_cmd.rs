//! `sesguard config check` and `sesguard config push`: every problem of a file named with its
//! entry (exit 2), suppressions listed with their expiry, and a push that uploads only a valid
//! file (against moto's S3; those cases are skipped without `SESGUARD_TEST_ENDPOINT`, failing
//! instead under `SESGUARD_REQUIRE_EMULATORS`).

use std::fs;
use std::sync::atomic::{AtomicU64, Ordering};

use assert_cmd::Command;
use aws_smithy_http_client::tls;

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn run(args: &[&str], endpoint: Option<&str>) -> Run {
    let mut command = Command::new(env!("CARGO_BIN_EXE_sesguard"));
    command.args(args);
    if let Some(endpoint) = endpoint {
        command
            .env("AWS_ENDPOINT_URL", endpoint)
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_REGION", "us-east-1")
            .env_remove("AWS_PROFILE");
    }
    let output = command.output().expect("runs");
    Run {
        code: output.status.code().expect("exit code"),
        stdout: String::from_utf8(output.stdout).expect("UTF-8"),
        stderr: String::from_utf8(output.stderr).expect("UTF-8"),
    }
}

const GOOD: &str = r#"dedup_minutes = 30

[[suppressions]]
rule = "ses-identity-deleted"
principal = "arn:aws:iam::111122223333:role/cleanup"
expires = "2001-01-01"
reason = "old clean-up job"

[[suppressions]]
rule = "ses-modification"
principal = "arn:aws:iam::111122223333:role/deploy"
reason = "deploy pipeline"
"#;

const BAD: &str = r#"sandbox_exit_regions = 1

[[suppressions]]
rule = "ses-identity-deleted"

[[suppressions]]
rule = "ses-no-such-rule"

[[suppressions]]
source_ip = "0.0.0.0/0"
"#;

#[test]
fn check_names_every_problem_with_its_entry_and_exits_2() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bad = dir.path().join("bad.toml");
    fs::write(&bad, BAD).expect("write");
    let out = run(&["config", "check", bad.to_str().expect("path")], None);
    assert_eq!(out.code, 2, "{}", out.stderr);
    for expected in [
        "sandbox_exit_regions: must be at least 2",
        "suppression 2: unknown rule \"ses-no-such-rule\"",
        "suppression 3: source_ip would match any value",
        "3 problem(s)",
    ] {
        assert!(
            out.stderr.contains(expected),
            "{expected:?} in {}",
            out.stderr
        );
    }
    // The valid entry is still listed.
    assert!(
        out.stdout
            .contains("suppression 1: rule ses-identity-deleted"),
        "{}",
        out.stdout
    );
}

#[test]
fn check_lists_the_suppressions_and_flags_the_expired_ones() {
    let dir = tempfile::tempdir().expect("tempdir");
    let good = dir.path().join("sesguard.toml");
    fs::write(&good, GOOD).expect("write");
    let out = run(&["config", "check", good.to_str().expect("path")], None);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{}", out.stdout);
    assert!(lines[0].contains("EXPIRED 2001-01-01"), "{}", lines[0]);
    assert!(
        lines[1].contains("never expires") && lines[1].contains("deploy pipeline"),
        "{}",
        lines[1]
    );
    assert!(
        out.stderr.contains("valid, 2 suppression(s)"),
        "{}",
        out.stderr
    );
}

static UNIQUE: AtomicU64 = AtomicU64::new(0);

fn moto() -> Option<String> {
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

fn s3(endpoint: &str) -> (tokio::runtime::Runtime, aws_sdk_s3::Client) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let config = runtime.block_on(
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
            .load(),
    );
    let client = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&config)
            .force_path_style(true)
            .build(),
    );
    (runtime, client)
}

#[test]
fn push_uploads_only_a_valid_file_and_check_reads_it_back_from_s3() {
    let Some(endpoint) = moto() else { return };
    let (runtime, client) = s3(&endpoint);
    let bucket = format!(
        "sesguard-push-{}-{}",
        std::process::id(),
        UNIQUE.fetch_add(1, Ordering::Relaxed)
    );
    runtime
        .block_on(client.create_bucket().bucket(&bucket).send())
        .expect("bucket");
    let dir = tempfile::tempdir().expect("tempdir");
    let (good, bad) = (dir.path().join("good.toml"), dir.path().join("bad.toml"));
    fs::write(&good, GOOD).expect("write");
    fs::write(&bad, BAD).expect("write");
    let url = format!("s3://{bucket}/sesguard.toml");

    let out = run(
        &["config", "push", bad.to_str().expect("path"), &url],
        Some(&endpoint),
    );
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("not uploaded"), "{}", out.stderr);
    let absent = runtime.block_on(
        client
            .head_object()
            .bucket(&bucket)
            .key("sesguard.toml")
            .send(),
    );
    assert!(absent.is_err(), "a bad file never reaches the bucket");

    let out = run(
        &["config", "push", good.to_str().expect("path"), &url],
        Some(&endpoint),
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let stored = runtime
        .block_on(
            client
                .get_object()
                .bucket(&bucket)
                .key("sesguard.toml")
                .send(),
        )
        .expect("uploaded");
    let body = runtime
        .block_on(stored.body.collect())
        .expect("body")
        .into_bytes();
    assert_eq!(String::from_utf8_lossy(&body), GOOD);

    let out = run(&["config", "check", &url], Some(&endpoint));
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout.lines().count(), 2, "{}", out.stdout);

    // A file that names a Tor list on disk cannot work from S3: refused.
    let tor = dir.path().join("tor.toml");
    fs::write(&tor, "tor_exit_list = \"tor.txt\"\n").expect("write");
    fs::write(dir.path().join("tor.txt"), "192.0.2.1\n").expect("write");
    let out = run(
        &["config", "push", tor.to_str().expect("path"), &url],
        Some(&endpoint),
    );
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr.contains("SESGUARD_TOR_EXIT_LIST"),
        "{}",
        out.stderr
    );
}
