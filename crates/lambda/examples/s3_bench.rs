//! The S3 path's memory and throughput (scripts/bench-s3.sh runs it; BENCHMARKS.md has the
//! figures): every object under `s3://BUCKET/PREFIX` read in key order through
//! `Handler::handle_object` with the function's S3 store (GetObject, SyncIoBridge, inflate,
//! split, prefilter, evaluate), as one invocation would. The state is the in-memory one and the
//! signals are collected: the figure is the reading path's, without DynamoDB's and SNS's round
//! trips (a few per matched record).
//!
//! Usage: s3_bench BUCKET PREFIX (AWS_ENDPOINT_URL and credentials from the environment).
//! Prints one JSON line: objects, bytes as stored, records, matched, signals, seconds and the
//! process's peak resident memory (VmHWM, KiB).

use std::time::Instant;

use sesguard::config::{Config, Overrides};
use sesguard::deliver::{Collect, Counts};
use sesguard::lambda::Handler;
use sesguard::notification::ObjectRef;
use sesguard::{Engine, MemoryState};
use sesguard_lambda::aws::s3::S3Objects;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, bucket, prefix] = args.as_slice() else {
        return Err("usage: s3_bench BUCKET PREFIX".into());
    };
    let sdk = sesguard_lambda::aws::sdk_config().await;
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&sdk)
            .force_path_style(true)
            .build(),
    );
    let mut objects = Vec::new();
    let mut pages = s3
        .list_objects_v2()
        .bucket(bucket)
        .prefix(prefix)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        for object in page?.contents.unwrap_or_default() {
            if let Some(key) = object.key {
                objects.push((key, object.size.unwrap_or(0)));
            }
        }
    }
    objects.sort();
    let bytes: i64 = objects.iter().map(|(_, size)| size).sum();
    let handler = Handler::new(
        Engine::new(Config::load(None, &Overrides::default())?),
        MemoryState::new(),
        Collect::default(),
    );
    let store = S3Objects::new(s3);
    let mut counts = Counts::default();
    let started = Instant::now();
    for (key, size) in &objects {
        let object = ObjectRef {
            bucket: bucket.clone(),
            key: key.clone(),
            size: u64::try_from(*size).ok(),
        };
        handler.handle_object(&store, &object, &mut counts).await?;
    }
    let seconds = started.elapsed().as_secs_f64();
    let status = std::fs::read_to_string("/proc/self/status")?;
    let peak_kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0);
    println!(
        "{}",
        serde_json::json!({
            "objects": objects.len(),
            "bytes": bytes,
            "records": counts.records,
            "matched": counts.matched,
            "signals": counts.signal_count(),
            "seconds": seconds,
            "peak_rss_kib": peak_kib,
        })
    );
    Ok(())
}
