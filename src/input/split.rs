//! Splits a CloudTrail log file `{"Records":[...]}` into its records in one validating pass over
//! the bytes, without building anything.
//!
//! [`records`] answers only when it is sure: it accepts exactly one JSON object (JSON whitespace
//! around it) with one `Records` member, written without escapes, whose value is an array, and
//! it checks every byte of the document against the grammar serde_json reads (strings with valid
//! escapes and no control characters, numbers, `true`/`false`/`null`, any nesting depth). On
//! anything else, valid or not, it declines, and the caller parses with serde_json, which gives
//! the same records or the error message users see. So an accepted document is one that
//! `serde_json::from_str::<struct { Records: Option<Vec<&RawValue>> }>` reads with
//! `Some(records)`, and the spans are those of the `RawValue`s (property-tested against
//! serde_json in `tests/fast_path.rs`).
//!
//! UTF-8 is not checked here: the caller has already validated the text.

use std::ops::Range;

/// JSON whitespace (serde_json's `parse_whitespace`).
#[inline(always)]
fn ws(b: &[u8], mut i: usize) -> usize {
    while let Some(b' ' | b'\n' | b'\t' | b'\r') = b.get(i) {
        i += 1;
    }
    i
}

/// Fills `spans` with the byte ranges of the elements of the `Records` array and returns true
/// when `bytes` is a CloudTrail log file document as described in the module documentation;
/// otherwise returns false (and leaves `spans` empty).
pub fn records(bytes: &[u8], spans: &mut Vec<Range<usize>>) -> bool {
    records_at_most(bytes, spans, usize::MAX) == Split::Spans
}

/// What [`records_at_most`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    /// Not a log file this splitter reads (see the module documentation).
    No,
    /// A log file: `spans` holds all its records.
    Spans,
    /// A log file with more records than the spans asked for: `spans` is left empty, and
    /// [`for_each_record`] gives them one at a time.
    Many,
}

/// [`records`], keeping at most `most` spans: a line of a few megabytes can hold millions of
/// tiny "records" (`{"Records":[0,0,…]}`), whose spans would take many times its size.
pub fn records_at_most(bytes: &[u8], spans: &mut Vec<Range<usize>>, most: usize) -> Split {
    spans.clear();
    let mut stack = Vec::new();
    let mut many = false;
    let ok = log_file(
        bytes,
        &mut |span| {
            if spans.len() < most {
                spans.push(span);
            } else {
                many = true;
            }
        },
        &mut stack,
    )
    .is_some();
    if many {
        // Up to `most` spans: given back rather than kept for the next line.
        *spans = Vec::new();
    } else if !ok {
        spans.clear();
    }
    match (ok, many) {
        (false, _) => Split::No,
        (true, false) => Split::Spans,
        (true, true) => Split::Many,
    }
}

/// Calls `each` with the span of every record, in order, and returns true when `bytes` is a log
/// file. The document is checked as it goes: on a false answer, `each` may already have been
/// called (callers check the document first, with [`records_at_most`]).
pub fn for_each_record(bytes: &[u8], mut each: impl FnMut(Range<usize>)) -> bool {
    log_file(bytes, &mut each, &mut Vec::new()).is_some()
}

/// Whether `bytes` is exactly one JSON value (no whitespace around it) as serde_json reads it.
/// `stack` is scratch space for the nesting.
pub fn is_value(bytes: &[u8], stack: &mut Vec<u8>) -> bool {
    !bytes.is_empty() && value(bytes, 0, stack) == Some(bytes.len())
}

fn log_file(b: &[u8], spans: &mut impl FnMut(Range<usize>), stack: &mut Vec<u8>) -> Option<()> {
    let mut i = ws(b, 0);
    if *b.get(i)? != b'{' {
        return None;
    }
    i = ws(b, i + 1);
    let mut found = false;
    loop {
        // A member: "key" ws : ws value.
        if *b.get(i)? != b'"' {
            return None;
        }
        let key_start = i + 1;
        i = string(b, key_start)?;
        let key = &b[key_start..i - 1];
        if key.contains(&b'\\') {
            // An escaped key might spell "Records": leave it to serde_json.
            return None;
        }
        i = ws(b, i);
        if *b.get(i)? != b':' {
            return None;
        }
        i = ws(b, i + 1);
        if key == b"Records" {
            if found {
                // serde_json reports the duplicate field.
                return None;
            }
            found = true;
            if *b.get(i)? != b'[' {
                return None;
            }
            i = ws(b, i + 1);
            if *b.get(i)? == b']' {
                i += 1;
            } else {
                loop {
                    let start = i;
                    i = value(b, i, stack)?;
                    spans(start..i);
                    let more;
                    (i, more) = separator(b, i, b']')?;
                    if !more {
                        break;
                    }
                }
            }
        } else {
            i = value(b, i, stack)?;
        }
        let more;
        (i, more) = separator(b, i, b'}')?;
        if !more {
            break;
        }
    }
    (found && ws(b, i) == b.len()).then_some(())
}

/// What follows a member or an element at `i`: a `,` (true, with the index of the next one) or
/// `close` (false, with the index after it).
#[inline(always)]
fn separator(b: &[u8], i: usize, close: u8) -> Option<(usize, bool)> {
    let i = ws(b, i);
    match *b.get(i)? {
        b',' => Some((ws(b, i + 1), true)),
        c if c == close => Some((i + 1, false)),
        _ => None,
    }
}

/// The end of the JSON value starting at `i` (no leading whitespace), checked as serde_json's
/// `ignore_value` checks it. Nesting is tracked on `stack`, so depth costs no recursion.
fn value(b: &[u8], mut i: usize, stack: &mut Vec<u8>) -> Option<usize> {
    stack.clear();
    'value: loop {
        match *b.get(i)? {
            b'"' => i = string(b, i + 1)?,
            b'{' => {
                i = ws(b, i + 1);
                if *b.get(i)? == b'}' {
                    i += 1;
                } else {
                    stack.push(b'}');
                    i = key(b, i)?;
                    continue 'value;
                }
            }
            b'[' => {
                i = ws(b, i + 1);
                if *b.get(i)? == b']' {
                    i += 1;
                } else {
                    stack.push(b']');
                    continue 'value;
                }
            }
            b't' => i = literal(b, i, b"true")?,
            b'f' => i = literal(b, i, b"false")?,
            b'n' => i = literal(b, i, b"null")?,
            b'-' | b'0'..=b'9' => i = number(b, i)?,
            _ => return None,
        }
        // A value ended: a comma goes on in the innermost container, a closer ends it.
        loop {
            let Some(&close) = stack.last() else {
                return Some(i);
            };
            i = ws(b, i);
            let c = *b.get(i)?;
            if c == b',' {
                i = ws(b, i + 1);
                if close == b'}' {
                    i = key(b, i)?;
                }
                continue 'value;
            }
            if c != close {
                return None;
            }
            i += 1;
            stack.pop();
        }
    }
}

/// `"key"` ws `:` ws, starting at the opening quote; returns where the value starts.
#[inline(always)]
fn key(b: &[u8], i: usize) -> Option<usize> {
    if *b.get(i)? != b'"' {
        return None;
    }
    let i = ws(b, string(b, i + 1)?);
    if *b.get(i)? != b':' {
        return None;
    }
    Some(ws(b, i + 1))
}

#[inline(always)]
fn literal(b: &[u8], i: usize, word: &[u8]) -> Option<usize> {
    b[i..].starts_with(word).then_some(i + word.len())
}

/// `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`
fn number(b: &[u8], mut i: usize) -> Option<usize> {
    let digits = |mut i: usize| {
        while let Some(b'0'..=b'9') = b.get(i) {
            i += 1;
        }
        i
    };
    if b[i] == b'-' {
        i += 1;
    }
    match *b.get(i)? {
        b'0' => {
            i += 1;
            if let Some(b'0'..=b'9') = b.get(i) {
                return None;
            }
        }
        b'1'..=b'9' => i = digits(i + 1),
        _ => return None,
    }
    if b.get(i) == Some(&b'.') {
        let end = digits(i + 1);
        if end == i + 1 {
            return None;
        }
        i = end;
    }
    if let Some(b'e' | b'E') = b.get(i) {
        i += 1;
        if let Some(b'+' | b'-') = b.get(i) {
            i += 1;
        }
        let end = digits(i);
        if end == i {
            return None;
        }
        i = end;
    }
    Some(i)
}

/// The end of a string whose opening quote is just before `i` (the index after the closing
/// quote), checked as serde_json's `ignore_str` checks it.
#[inline(always)]
fn string(b: &[u8], mut i: usize) -> Option<usize> {
    loop {
        // 16 bytes a step: most strings end within the first.
        while let Some(chunk) = b.get(i..i + 16).and_then(|c| <&[u8; 16]>::try_from(c).ok()) {
            let (quote, other) = first_specials(chunk);
            if quote < other {
                return Some(i + quote + 1);
            }
            if other < 16 {
                i += other;
                break;
            }
            i += 16;
        }
        match *b.get(i)? {
            b'"' => return Some(i + 1),
            b'\\' => match *b.get(i + 1)? {
                b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => i += 2,
                b'u' => {
                    if !b.get(i + 2..i + 6)?.iter().all(u8::is_ascii_hexdigit) {
                        return None;
                    }
                    i += 6;
                }
                _ => return None,
            },
            c if c < 0x20 => return None,
            _ => i += 1,
        }
    }
}

/// The index of the first `"` in `chunk`, and of the first `\\` or control character (16 when
/// there is none): what ends a run of plain string bytes.
#[inline(always)]
fn first_specials(chunk: &[u8; 16]) -> (usize, usize) {
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: SSE2 is part of the x86_64 baseline: every x86_64 CPU has it.
        unsafe { first_specials_sse2(chunk) }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        first_specials_swar(chunk)
    }
}

/// [`first_specials`] with SSE2: three compares and two masks for the 16 bytes, one branch.
/// About 25% faster than [`first_specials_swar`] on the benchmark corpus (BENCHMARKS.md).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "sse2")]
fn first_specials_sse2(chunk: &[u8; 16]) -> (usize, usize) {
    use std::arch::x86_64::{
        _mm_cmpeq_epi8, _mm_max_epu8, _mm_movemask_epi8, _mm_or_si128, _mm_set_epi64x,
        _mm_set1_epi8,
    };
    let (low, high) = words(chunk);
    let v = _mm_set_epi64x(high as i64, low as i64);
    let quote = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'"' as i8));
    let backslash = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'\\' as i8));
    // Bytes up to 0x1f are those whose unsigned maximum with 0x1f is 0x1f.
    let control = _mm_cmpeq_epi8(_mm_max_epu8(v, _mm_set1_epi8(0x1f)), _mm_set1_epi8(0x1f));
    // The masks have 16 bits; bit 16 stands for "none".
    let first = |mask: i32| ((mask as u32) | 1 << 16).trailing_zeros() as usize;
    (
        first(_mm_movemask_epi8(quote)),
        first(_mm_movemask_epi8(_mm_or_si128(backslash, control))),
    )
}

/// The 16 bytes as two little-endian words.
#[inline(always)]
fn words(chunk: &[u8; 16]) -> (u64, u64) {
    let (low, high) = chunk.split_at(8);
    let word = |half: &[u8]| half.try_into().map_or(0, u64::from_le_bytes);
    (word(low), word(high))
}

const ONES: u64 = u64::MAX / 255;
const HIGHS: u64 = ONES << 7;

/// [`first_specials`] in portable SWAR, eight bytes a word.
#[cfg_attr(target_arch = "x86_64", allow(dead_code))]
fn first_specials_swar(chunk: &[u8; 16]) -> (usize, usize) {
    // Masks whose lowest set bit marks the first byte of `w` (little-endian) that is `"`, and
    // the first that is `\\` or a control character; zero when there is none. Bits above the
    // lowest may be spurious, so only the lowest is read.
    let special = |w: u64| {
        let quote = w ^ (ONES * u64::from(b'"'));
        let backslash = w ^ (ONES * u64::from(b'\\'));
        let control = w.wrapping_sub(ONES * 0x20) & !w;
        let quote = quote.wrapping_sub(ONES) & !quote;
        let backslash = backslash.wrapping_sub(ONES) & !backslash;
        (quote & HIGHS, (control | backslash) & HIGHS)
    };
    let (low, high) = words(chunk);
    let (low, high) = (special(low), special(high));
    let first = |low: u64, high: u64| {
        if low != 0 {
            (low.trailing_zeros() / 8) as usize
        } else if high != 0 {
            8 + (high.trailing_zeros() / 8) as usize
        } else {
            16
        }
    };
    (first(low.0, high.0), first(low.1, high.1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(text: &str) -> Option<Vec<&str>> {
        let mut spans = Vec::new();
        records(text.as_bytes(), &mut spans)
            .then(|| spans.iter().map(|r| &text[r.clone()]).collect())
    }

    #[test]
    fn splits_a_log_file_into_its_records() {
        assert_eq!(
            split(" {\"Records\" : [ {\"a\":1} ,{\"b\":[1,2,{}]},\n 3 ] }\r\n"),
            Some(vec!["{\"a\":1}", "{\"b\":[1,2,{}]}", "3"])
        );
        assert_eq!(split(r#"{"x":{"Records":1},"Records":[]}"#), Some(vec![]));
        assert_eq!(
            split(r#"{"Records":["\"\\\/\b\f\n\r\t\u00e9é"],"z":[-0.5e+3,true,false,null]}"#),
            Some(vec![r#""\"\\\/\b\f\n\r\t\u00e9é""#])
        );
    }

    #[test]
    fn declines_what_serde_json_rejects_or_reads_otherwise() {
        for text in [
            "",
            "{}",
            r#"{"Records":null}"#,
            r#"{"Records":{}}"#,
            r#"{"Records":[],"Records":[]}"#,
            r#"{"Rec\u006frds":[]}"#,
            r#"{"Records":[1,]}"#,
            r#"{"Records":[01]}"#,
            r#"{"Records":[1.]}"#,
            r#"{"Records":[1e]}"#,
            r#"{"Records":[-]}"#,
            r#"{"Records":["\x"]}"#,
            r#"{"Records":["\u12g4"]}"#,
            "{\"Records\":[\"\t\"]}",
            r#"{"Records":[tru]}"#,
            r#"{"Records":[{"a" 1}]}"#,
            r#"{"Records":[{"a":1,}]}"#,
            r#"{"Records":[{1:1}]}"#,
            r#"{"Records":[[}]]}"#,
            r#"{"Records":[]} x"#,
            r#"{"Records":[]"#,
            r#"{"Records":["abc"#,
            "\u{a0}{\"Records\":[]}",
        ] {
            assert_eq!(split(text), None, "{text}");
        }
    }

    #[test]
    fn the_portable_and_the_sse2_finders_agree() {
        let reference = |chunk: &[u8; 16]| {
            let at = |f: &dyn Fn(u8) -> bool| chunk.iter().position(|&c| f(c)).unwrap_or(16);
            (at(&|c| c == b'"'), at(&|c| c == b'\\' || c < 0x20))
        };
        // Every byte value at every position, over backgrounds with and without specials.
        let backgrounds: [&[u8; 16]; 3] = [
            b"abcdefghijklmnop",
            b"\xff\xfe\x80\x7f\x20!#[]{}:,./~",
            b"aaaa\"aaaa\\aaa\x01aa",
        ];
        for background in backgrounds {
            for position in 0..16 {
                for byte in 0..=255u8 {
                    let mut chunk = *background;
                    chunk[position] = byte;
                    let expected = reference(&chunk);
                    assert_eq!(first_specials_swar(&chunk), expected, "{chunk:?}");
                    assert_eq!(first_specials(&chunk), expected, "{chunk:?}");
                }
            }
        }
    }
}
