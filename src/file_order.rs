//! Files in the order of their first event: `sesguard scan` reads files by the `eventTime` of
//! their first record, so the reorder buffer ([`crate::reorder`]) needs to span only how far
//! records stray within and between neighbouring files, not how far apart name order puts them
//! (the samples in `events/` are named by call; a trail's folders are per region, each a whole
//! archive of time).

use std::fs::File;
use std::io::Read;

use flate2::read::MultiGzDecoder;

use crate::input::Source;
use crate::model::Seconds;
use crate::reorder::string_member;
use crate::time::parse_event_time;

/// How much of a file (decompressed) is searched for its first `eventTime`: a CloudTrail record
/// is a few kilobytes. It is read a [`STEP`] at a time, as the time is usually in the first.
const HEAD: usize = 64 * 1024;
const STEP: usize = 4 * 1024;

/// Sorts `sources` by the event time of their first record, keeping the given order between
/// equal times. Sources whose first time cannot be read (standard input, a file that cannot be
/// opened or holds no `eventTime` near its start) come first, in their order.
pub fn by_first_event(sources: &mut [Source]) {
    sources.sort_by_cached_key(|source| match source {
        Source::Stdin => None,
        Source::File(path) => first_event_time(path),
        // Not opened twice: the time in a log file's name, else its folder's day (CloudTrail's
        // key layout).
        Source::Remote(remote) => {
            crate::s3url::name_time(&remote.name).or_else(|| crate::s3url::key_day(&remote.name))
        }
    });
}

/// The `eventTime` of the first record of a file, gzip-compressed or not.
fn first_event_time(path: &std::path::Path) -> Option<Seconds> {
    let mut file = File::open(path).ok()?;
    let mut magic = [0u8; 2];
    let read = file.read(&mut magic).ok()?;
    if magic[..read] == [0x1f, 0x8b] {
        search_head(MultiGzDecoder::new(File::open(path).ok()?), Vec::new())
    } else {
        search_head(file, magic[..read].to_vec())
    }
}

/// Reads `reader` (after the bytes already in `head`) until the first `eventTime` is found, the
/// end, or [`HEAD`] bytes.
fn search_head(mut reader: impl Read, mut head: Vec<u8>) -> Option<Seconds> {
    loop {
        if let Some(time) = event_time_in(&head) {
            return Some(time);
        }
        let start = head.len();
        if start >= HEAD {
            return None;
        }
        head.resize(start + STEP, 0);
        let read = reader.read(&mut head[start..]).ok()?;
        head.truncate(start + read);
        if read == 0 {
            return None;
        }
    }
}

/// The first `"eventTime": "…"` in `text` (JSON text need not be complete).
fn event_time_in(text: &[u8]) -> Option<Seconds> {
    let key = memchr::memmem::Finder::new(b"\"eventTime\"");
    let time = string_member(text, &key)?;
    parse_event_time(std::str::from_utf8(time).ok()?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn the_first_event_time_is_found_in_compact_pretty_and_athena_text() {
        let compact = br#"{"Records":[{"eventTime":"2026-03-02T09:00:00Z","eventName":"x"}"#;
        assert_eq!(event_time_in(compact), Some(1_772_442_000));
        let pretty = b"{\n  \"detail\": {\n    \"eventTime\" :\n  \"2026-03-02 09:00:00.000\"";
        assert_eq!(event_time_in(pretty), Some(1_772_442_000));
        assert_eq!(event_time_in(br#"{"eventTime":"soon"}"#), None);
        assert_eq!(event_time_in(br#"{"eventTime":"2026-03-02T09:0"#), None);
        assert_eq!(event_time_in(b"no time here"), None);
    }

    #[test]
    fn the_head_is_read_step_by_step_up_to_its_limit() {
        let record = br#"{"eventTime":"2026-03-02T09:00:00Z"}"#;
        let mut late = vec![b' '; STEP - 10];
        late.extend_from_slice(record);
        assert_eq!(search_head(&late[..], Vec::new()), Some(1_772_442_000));
        let mut too_far = vec![b' '; HEAD];
        too_far.extend_from_slice(record);
        assert_eq!(search_head(&too_far[..], Vec::new()), None);
    }

    #[test]
    fn files_sort_by_their_first_event_and_unknown_ones_come_first() {
        let dir = tempfile::tempdir().expect("temp dir");
        let write = |name: &str, bytes: &[u8]| {
            let path = dir.path().join(name);
            std::fs::write(&path, bytes).expect("write");
            Source::File(path)
        };
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(br#"{"eventTime":"2026-03-02T09:05:00Z"}"#)
            .expect("gzip");
        let later = write("a.json.gz", &gz.finish().expect("gzip"));
        let earlier = write("b.json", br#"{"eventTime":"2026-03-02T09:00:00Z"}"#);
        let unknown = write("c.json", b"{}");
        let missing = Source::File(dir.path().join("missing.json"));
        let mut sources = vec![
            later.clone(),
            earlier.clone(),
            unknown.clone(),
            Source::Stdin,
            missing.clone(),
        ];
        by_first_event(&mut sources);
        assert_eq!(
            sources,
            [unknown, Source::Stdin, missing, earlier, later],
            "unknown times first, in their order; then by time"
        );
    }
}
