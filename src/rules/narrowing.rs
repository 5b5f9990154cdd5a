//! A trigger's EventBridge narrowing: a condition on one request parameter that the event
//! patterns add, so the forwarders and rules leave out calls the rule would read and dismiss
//! (every inline-policy write of an organisation, for the SES grant rule).
//!
//! A narrowing is a cut in what is forwarded, never in what is detected: it must let through
//! every call the rule's own condition accepts. EventBridge compares strings case-sensitively
//! and without decoding, where the rules read IAM action names ignoring case, through JSON
//! escapes and URL-encoding; so a narrowing over-approximates (each case of `ses:`, any `\u`
//! escape, any `%`) and each rule that declares one holds a test that its condition implies
//! the narrowing. The engine never evaluates it: the rule's condition is the test.

use serde_json::{Value, json};

/// One EventBridge string comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Match {
    /// `{"suffix": …}`: the value ends with this text.
    Suffix(&'static str),
    /// `{"wildcard": …}`: `*` stands for any run of characters; `\*` and `\\` for a literal
    /// asterisk and backslash, as in EventBridge.
    Wildcard(&'static str),
}

impl Match {
    /// This comparison in an event pattern.
    pub fn pattern(&self) -> Value {
        match self {
            Match::Suffix(text) => json!({ "suffix": text }),
            Match::Wildcard(text) => json!({ "wildcard": text }),
        }
    }

    /// Whether `value` passes, as EventBridge decides it.
    pub fn matches(&self, value: &str) -> bool {
        match self {
            Match::Suffix(text) => value.ends_with(text),
            Match::Wildcard(pattern) => wildcard_matches(pattern, value),
        }
    }
}

/// `requestParameters.<field>` must pass one of `any`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Narrowing {
    pub field: &'static str,
    pub any: &'static [Match],
}

impl Narrowing {
    /// The `requestParameters` member of an event pattern.
    pub fn pattern(&self) -> Value {
        let values: Vec<Value> = self.any.iter().map(Match::pattern).collect();
        json!({ self.field: values })
    }

    /// Whether a parameter value passes (a value that is no string never does, as in
    /// EventBridge).
    pub fn passes(&self, value: Option<&Value>) -> bool {
        value
            .and_then(Value::as_str)
            .is_some_and(|text| self.any.iter().any(|m| m.matches(text)))
    }
}

/// EventBridge's wildcard: the pattern split at its unescaped `*` into literal pieces, the
/// first anchored at the start, the last at the end, the others found in order between.
fn wildcard_matches(pattern: &str, value: &str) -> bool {
    let mut pieces: Vec<String> = vec![String::new()];
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(next) = chars.next()
                    && let Some(last) = pieces.last_mut()
                {
                    last.push(next);
                }
            }
            '*' => pieces.push(String::new()),
            c => {
                if let Some(last) = pieces.last_mut() {
                    last.push(c);
                }
            }
        }
    }
    let (first, rest) = pieces
        .split_first()
        .map_or(("", &[][..]), |(f, r)| (f.as_str(), r));
    let Some(mut tail) = value.strip_prefix(first) else {
        return false;
    };
    let Some((last, middle)) = rest.split_last() else {
        return tail.is_empty();
    };
    for piece in middle {
        match tail.find(piece.as_str()) {
            Some(at) => tail = &tail[at + piece.len()..],
            None => return false,
        }
    }
    tail.ends_with(last.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_read_as_eventbridge_reads_them() {
        let cases = [
            ("*ses:*", "Action: ses:SendEmail", true),
            ("*ses:*", "Action: SES:SendEmail", false),
            ("*ses:*", "ses:", true),
            ("*ses:*", "se s:", false),
            ("ab*cd", "abXXcd", true),
            ("ab*cd", "abcd", true),
            ("ab*cd", "abc", false),
            ("ab*cd", "xabcd", false),
            ("a*b*c", "aXbYc", true),
            ("a*b*c", "acb", false),
            (r"*\\u*", r"s\u0065s", true),
            (r"*\\u*", "su", false),
            (r"a\*b", "a*b", true),
            (r"a\*b", "aXb", false),
            ("*%*", "%7B", true),
            ("*", "", true),
        ];
        for (pattern, value, want) in cases {
            assert_eq!(
                Match::Wildcard(pattern).matches(value),
                want,
                "{pattern} on {value}"
            );
        }
        assert!(
            Match::Suffix("/AmazonSESFullAccess")
                .matches("arn:aws:iam::aws:policy/AmazonSESFullAccess")
        );
        assert!(
            !Match::Suffix("/AmazonSESFullAccess")
                .matches("arn:aws:iam::aws:policy/AmazonSESFullAccessX")
        );
    }

    #[test]
    fn only_strings_pass() {
        const N: Narrowing = Narrowing {
            field: "f",
            any: &[Match::Wildcard("*x*")],
        };
        assert!(N.passes(Some(&json!("axb"))));
        assert!(!N.passes(Some(&json!({"x": "x"}))));
        assert!(!N.passes(None));
        assert_eq!(N.pattern(), json!({"f": [{"wildcard": "*x*"}]}));
    }
}
