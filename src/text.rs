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

/// An Amazon Resource Name split into its parts, structurally: a user name or path an attacker
/// chose may hold any text (`:role/aws-service-role/` included), so ARNs are never matched as
/// substrings. `arn:<partition>:<service>:<region>:<account>:<resource>`; the resource keeps any
/// further `:`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Arn<'a> {
    pub partition: &'a str,
    pub service: &'a str,
    pub region: &'a str,
    pub account: &'a str,
    pub resource: &'a str,
}

impl<'a> Arn<'a> {
    /// The parts of `text`, if it is an ARN with a partition.
    pub fn parse(text: &'a str) -> Option<Self> {
        let mut parts = text.splitn(6, ':');
        if parts.next()? != "arn" {
            return None;
        }
        let arn = Arn {
            partition: parts.next()?,
            service: parts.next()?,
            region: parts.next()?,
            account: parts.next()?,
            resource: parts.next()?,
        };
        (!arn.partition.is_empty()).then_some(arn)
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
        Some(b'-' | b'0'..=b'9') => "a number",
        Some(_) => "text that is not JSON",
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

    #[test]
    fn arns_are_split_structurally() {
        let arn = super::Arn::parse("arn:aws:iam::111122223333:user/x:role/aws-service-role/y");
        assert_eq!(
            arn.map(|a| (a.service, a.account, a.resource)),
            Some(("iam", "111122223333", "user/x:role/aws-service-role/y"))
        );
        assert!(super::Arn::parse("arn::iam::1:role/x").is_none());
        assert!(super::Arn::parse("AIDAEXAMPLE").is_none());
        assert!(super::Arn::parse("arn:aws:iam").is_none());
    }
}
