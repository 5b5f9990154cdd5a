//! Log redaction: error messages quote the offending values, which come from the event.

/// `text` with every `"…"` and `` `…` `` span emptied: error messages quote the offending values,
/// which come from the event (keys, ARNs, addresses) and do not belong in logs.
pub fn redact_quoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut open: Option<char> = None;
    let mut escaped = false;
    for c in text.chars() {
        match open {
            None => {
                out.push(c);
                if c == '"' || c == '`' {
                    open = Some(c);
                    out.push('…');
                }
            }
            Some(quote) => {
                if escaped {
                    escaped = false;
                } else if c == '\\' {
                    escaped = true;
                } else if c == quote {
                    out.push(c);
                    open = None;
                }
            }
        }
    }
    if let Some(quote) = open {
        out.push(quote);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_values_are_redacted() {
        assert_eq!(
            redact_quoted(
                r#"line 1: userIdentity: invalid type: string "AKIA\"X", expected struct UserIdentity"#
            ),
            r#"line 1: userIdentity: invalid type: string "…", expected struct UserIdentity"#
        );
        assert_eq!(
            redact_quoted("eventTime: invalid type: integer `5`, expected"),
            "eventTime: invalid type: integer `…`, expected"
        );
        assert_eq!(redact_quoted("unterminated \"abc"), "unterminated \"…\"");
    }
}
