//! Text helpers for attacker-controlled strings: cut them for messages and signals, and
//! describe JSON errors without pointing into a fragment. Depends on nothing else in the crate.

/// The most bytes of one input string a signal carries: attacker-chosen values (identity
/// names, user agents) cannot make a signal exceed SNS's 256 KB message limit.
pub const MAX_FIELD_BYTES: usize = 4096;

/// At most `max` characters of `text`, for quoting attacker-controlled input in messages.
pub fn truncate(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_owned(),
    }
}

/// `text`, cut to [`MAX_FIELD_BYTES`] with a visible marker when longer.
pub fn capped(text: &str) -> String {
    capped_to(text, MAX_FIELD_BYTES)
}

/// `text` cut at a character boundary to at most `max` bytes, with a visible marker saying how
/// much was cut.
pub fn capped_to(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…[truncated {} bytes]", &text[..end], text.len() - end)
}

/// A serde_json error without its " at line L column C" suffix, which would point into a
/// fragment rather than the file; callers give the position themselves.
pub fn describe(err: &serde_json::Error) -> String {
    let text = err.to_string();
    match text.rfind(" at line ") {
        Some(at) => text[..at].to_owned(),
        None => text,
    }
}

/// A short name for the kind of JSON value `json` holds, for error messages.
pub fn json_kind(json: &str) -> &'static str {
    match json.trim_start().as_bytes().first() {
        Some(b'{') => "an object",
        Some(b'[') => "an array",
        Some(b'"') => "a string",
        Some(b't' | b'f') => "a boolean",
        Some(b'n') => "null",
        Some(_) => "a number",
        None => "nothing",
    }
}

/// `n` with thousands separators (`39,999,990`), for counts and sizes in messages.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn thousands_are_separated() {
        for (n, text) in [
            (0, "0"),
            (999, "999"),
            (1_000, "1,000"),
            (16_777_216, "16,777,216"),
            (3_221_225_472, "3,221,225,472"),
        ] {
            assert_eq!(super::thousands(n), text);
        }
    }
}
