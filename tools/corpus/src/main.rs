//! `sesguard-corpus`: writes the benchmark corpus ([`sesguard_corpus::generate`]) to a directory.
//!
//! Usage: `sesguard-corpus --out DIR [--size 1G] [--seed 1] [--form raw|gz|both]
//! [--ses-percent 1] [--threads N]`; raw files go to `DIR/raw/`, compressed ones to `DIR/gz/`.

use std::path::PathBuf;
use std::process::ExitCode;

use sesguard_corpus::{Form, Options, generate};

fn main() -> ExitCode {
    let (out, options) = match parse_args(std::env::args().skip(1)) {
        Ok(parsed) => parsed,
        Err(message) => {
            eprintln!("sesguard-corpus: {message}");
            eprintln!(
                "usage: sesguard-corpus --out DIR [--size 1G] [--seed 1] [--form raw|gz|both] \
                 [--ses-percent 1] [--threads N]"
            );
            return ExitCode::from(2);
        }
    };
    match generate(&out, &options) {
        Ok(counts) => {
            eprintln!(
                "sesguard-corpus: {} files, {} bytes raw, {} bytes gzip, in {}",
                counts.files,
                counts.raw_bytes,
                counts.gz_bytes,
                out.display()
            );
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("sesguard-corpus: error: {err}");
            ExitCode::FAILURE
        }
    }
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<(PathBuf, Options), String> {
    let mut options = Options::default();
    let mut out = None;
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--out" => out = Some(PathBuf::from(value()?)),
            "--size" => options.size = parse_size(&value()?)?,
            "--seed" => options.seed = value()?.parse().map_err(|e| format!("--seed: {e}"))?,
            "--form" => {
                options.form = match value()?.as_str() {
                    "raw" => Form::Raw,
                    "gz" => Form::Gz,
                    "both" => Form::Both,
                    other => return Err(format!("--form: {other:?} is not raw, gz or both")),
                }
            }
            "--ses-percent" => {
                let percent: f64 = value()?
                    .parse()
                    .map_err(|e| format!("--ses-percent: {e}"))?;
                if !(0.0..=100.0).contains(&percent) {
                    return Err("--ses-percent must be between 0 and 100".into());
                }
                options.ses_per_mille = (percent * 10.0).round() as u64;
            }
            "--threads" => {
                let threads: usize = value()?.parse().map_err(|e| format!("--threads: {e}"))?;
                options.threads = threads.max(1);
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    let out = out.ok_or("--out DIR is required")?;
    Ok((out, options))
}

/// `123`, `64K`, `200M`, `1G`, `1.5G` (binary units).
fn parse_size(text: &str) -> Result<u64, String> {
    let (number, unit) = match text.char_indices().find(|(_, c)| c.is_ascii_alphabetic()) {
        Some((at, _)) => text.split_at(at),
        None => (text, ""),
    };
    let scale: u64 = match unit.to_ascii_uppercase().trim_end_matches(['B', 'I']) {
        "" => 1,
        "K" => 1 << 10,
        "M" => 1 << 20,
        "G" => 1 << 30,
        "T" => 1 << 40,
        _ => return Err(format!("--size: unknown unit in {text:?}")),
    };
    let number: f64 = number
        .parse()
        .map_err(|_| format!("--size: {text:?} is not a size"))?;
    Ok((number * scale as f64) as u64)
}
