//! The scan's progress bar on stderr: bytes of the known total, rate and ETA. The scan calls it
//! now and then (at most every 250 ms), so short scans never show it; the CLI makes one only
//! when stderr is a terminal.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

pub struct Progress {
    bar: ProgressBar,
    /// Bytes of the files before each one, in scan order.
    before: Vec<u64>,
}

impl Progress {
    /// A bar over files of these sizes, in the order they are scanned (a size that cannot be
    /// known, as standard input's, counts 0).
    pub fn new(sizes: &[u64]) -> Self {
        let mut before = Vec::with_capacity(sizes.len() + 1);
        let mut sum = 0u64;
        for size in sizes {
            before.push(sum);
            sum = sum.saturating_add(*size);
        }
        before.push(sum);
        let bar = ProgressBar::with_draw_target(Some(sum), ProgressDrawTarget::stderr());
        let template = if sum > 0 {
            "{wide_bar} {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta} {msg}"
        } else {
            "{spinner} {elapsed} {msg}"
        };
        if let Ok(style) = ProgressStyle::with_template(template) {
            bar.set_style(style.progress_chars("=> "));
        }
        Progress { bar, before }
    }

    /// `files` begun (the files before the last one are done), `records` read, `signals` given.
    pub fn update(&self, files: u64, records: u64, signals: u64) {
        let done = usize::try_from(files.saturating_sub(1)).unwrap_or(usize::MAX);
        if let Some(bytes) = self.before.get(done.min(self.before.len() - 1)) {
            self.bar.set_position(*bytes);
        }
        self.bar.set_message(format!(
            "{} files, {records} records, {signals} signals",
            files
        ));
    }

    /// Runs `f` (which writes to stderr) with the bar out of the way.
    pub fn suspend<R>(&self, f: impl FnOnce() -> R) -> R {
        self.bar.suspend(f)
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }

    /// Bytes counted done so far (for tests).
    pub fn position(&self) -> u64 {
        self.bar.position()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_position_is_the_bytes_of_the_files_done() {
        let progress = Progress::new(&[100, 0, 50, 25]);
        progress.update(1, 10, 0);
        assert_eq!(progress.position(), 0, "the first file is being read");
        progress.update(3, 20, 1);
        assert_eq!(progress.position(), 100);
        progress.update(4, 30, 1);
        assert_eq!(progress.position(), 150);
        progress.update(9, 30, 1);
        assert_eq!(progress.position(), 175, "never past the total");
        progress.finish();
    }
}
