//! Criterion suite: per-event evaluation cost (parse + rules) for a matching and a non-matching
//! record, the log-file splitter against serde_json, and the reader over one CloudTrail file
//! (raw and gzip) from the corpus generator (tools/corpus, called in-process).
//! `cargo bench --bench scan`; `scripts/bench.sh` has the end-to-end numbers. Under `cargo test`
//! each benchmark runs once, as a smoke test.

use std::hint::black_box;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use serde::Deserialize;
use serde_json::value::RawValue;
use sesguard::input::{self, InputError, Position, Visitor};
use sesguard::scan::scan_text;
use sesguard::{Engine, MemoryState, Record, rules};

/// One generated CloudTrail log file (about 400 records, 1% SES), raw.
fn log_file() -> Vec<u8> {
    let dir = std::env::temp_dir().join(format!("sesguard-bench-{}", std::process::id()));
    let options = sesguard_corpus::Options {
        size: 1,
        form: sesguard_corpus::Form::Raw,
        threads: 1,
        ..sesguard_corpus::Options::default()
    };
    let counts = sesguard_corpus::generate(&dir, &options).expect("generate the corpus");
    assert_eq!(counts.files, 1);
    let file: PathBuf = std::fs::read_dir(dir.join("raw"))
        .expect("corpus")
        .map(|e| e.expect("entry").path())
        .next()
        .expect("one file");
    let bytes = std::fs::read(&file).expect("read");
    let _ = std::fs::remove_dir_all(&dir);
    bytes
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
    encoder.write_all(bytes).expect("gzip");
    encoder.finish().expect("gzip")
}

/// The `detail` of a sample EventBridge event in `events/`.
fn sample(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("events")
        .join(name);
    let envelope: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("sample")).expect("json");
    envelope["detail"].to_string()
}

/// The first record of `file` from `source`.
fn record_of(file: &[u8], source: &str) -> String {
    #[derive(Deserialize)]
    struct LogFile<'a> {
        #[serde(rename = "Records", borrow)]
        records: Vec<&'a RawValue>,
    }
    let log: LogFile = serde_json::from_slice(file).expect("log file");
    log.records
        .iter()
        .map(|r| r.get())
        .find(|r| r.contains(&format!("\"eventSource\":\"{source}\"")))
        .expect("a record of that source")
        .to_owned()
}

struct Count(u64);

impl Visitor for Count {
    fn record(&mut self, json: &str, _: &Position) {
        self.0 += json.len() as u64;
    }
    fn error(&mut self, error: InputError) {
        panic!("{error}");
    }
}

fn evaluation(c: &mut Criterion) {
    let file = log_file();
    let engine = Engine::default();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let cases = [
        ("matching (ses GetAccount)", sample("ses-GetAccount.json")),
        (
            "non-matching (s3 GetObject)",
            record_of(&file, "s3.amazonaws.com"),
        ),
    ];
    let mut group = c.benchmark_group("evaluate");
    for (name, json) in &cases {
        // What the Lambda does with every event: parse, then the rules (with a fresh state, so
        // a matching event does its state calls and gives its signals each time).
        group.bench_function(format!("parse + rules, {name}"), |b| {
            b.iter_batched(
                MemoryState::new,
                |state| {
                    let record = Record::parse(black_box(json)).expect("record");
                    runtime
                        .block_on(engine.evaluate(&record, &state))
                        .expect("evaluate")
                        .signals
                        .len()
                },
                BatchSize::SmallInput,
            );
        });
        // What `sesguard scan` does with a record inside a log file first.
        group.bench_function(format!("prefilter, {name}"), |b| {
            b.iter(|| rules::may_match(black_box(json)));
        });
    }
    group.finish();
}

fn reader(c: &mut Criterion) {
    let file = log_file();
    let gz = gzip(&file);
    let name: Arc<str> = Arc::from("bench.json");
    let engine = Engine::default();

    let mut group = c.benchmark_group("log file");
    group.throughput(Throughput::Bytes(file.len() as u64));
    group.bench_function("split, sesguard", |b| {
        let mut spans = Vec::new();
        b.iter(|| {
            assert!(input::split::records(black_box(&file), &mut spans));
            spans.len()
        });
    });
    group.bench_function("split, serde_json RawValue", |b| {
        #[derive(Deserialize)]
        struct LogFile<'a> {
            #[serde(rename = "Records", borrow)]
            records: Vec<&'a RawValue>,
        }
        b.iter(|| {
            let text = std::str::from_utf8(black_box(&file)).expect("utf-8");
            serde_json::from_str::<LogFile>(text)
                .expect("log file")
                .records
                .len()
        });
    });
    group.bench_function(
        "prefilter, whole file (two memmem passes, for comparison)",
        |b| {
            let ses = memchr::memmem::Finder::new(rules::SES);
            let quotas = memchr::memmem::Finder::new(rules::SERVICE_QUOTAS);
            b.iter(|| {
                ses.find_iter(black_box(&file)).count() + quotas.find_iter(black_box(&file)).count()
            });
        },
    );
    group.bench_function("prefilter, per record", |b| {
        let mut spans = Vec::new();
        assert!(input::split::records(&file, &mut spans));
        let text = std::str::from_utf8(&file).expect("utf-8");
        b.iter(|| {
            spans
                .iter()
                .filter(|s| rules::may_match(black_box(&text[(*s).clone()])))
                .count()
        });
    });
    group.bench_function("read raw", |b| {
        b.iter(|| {
            let mut count = Count(0);
            input::read_stream(&name, black_box(&file[..]), &mut count);
            count.0
        });
    });
    group.bench_function("read gzip", |b| {
        b.iter(|| {
            let mut count = Count(0);
            input::read_stream(&name, black_box(&gz[..]), &mut count);
            count.0
        });
    });
    group.bench_function("scan raw (read + prefilter + rules)", |b| {
        b.iter(|| scan_text(&engine, "bench.json", black_box(&file)).1.records);
    });
    group.finish();
}

criterion_group!(benches, evaluation, reader);
criterion_main!(benches);
