//! A signal as the plain text an on-call person reads in an e-mail: what happened, who, from
//! where, in which account and region, the triage steps and the event ids, in a fixed layout.
//! The Lambda sends it as the `email` entry of the SNS message (the other subscribers get the
//! machine JSON, unchanged).
//!
//! Every value comes from the event, so from whoever made the call: each is put on one line of
//! its own, with line breaks and other control characters, bidirectional and zero-width
//! characters replaced by `?` (a value can neither start a fake section nor reorder the text a
//! mail client shows), `://` defanged to `[://]` (no link a client would make clickable), and
//! cut at [`MAX_VALUE_CHARS`] with an ellipsis. The whole text is at most [`MAX_EMAIL_BYTES`].

use std::fmt::Write as _;

use crate::signal::Signal;
use crate::text::truncate;

/// The most characters of one value (an identity, a user agent, an ARN).
pub const MAX_VALUE_CHARS: usize = 300;
/// The most characters of one triage step (steps quote values, already capped by the signal).
const MAX_STEP_CHARS: usize = 1500;
/// The most characters of the rule's details, as JSON on one line.
const MAX_DETAILS_CHARS: usize = 1000;
/// The most related event ids listed (verify-then-delete keeps at most 20).
const MAX_RELATED: usize = 20;
/// The whole text: with the machine JSON beside it, the SNS message stays within 256 KB.
pub const MAX_EMAIL_BYTES: usize = 16 * 1024;

/// Whether `c` may change how the text around it is shown: controls (line breaks included),
/// the Unicode line and paragraph separators, bidirectional marks, embeddings, overrides and
/// isolates, zero-width characters and the byte-order mark.
fn unsafe_char(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061C}'
                | '\u{200B}'..='\u{200F}'
                | '\u{2028}'..='\u{202E}'
                | '\u{2060}'..='\u{2069}'
                | '\u{FEFF}'
        )
}

/// `value` made safe for one line of the text, at most `max` characters.
pub fn neutralise(value: &str, max: usize) -> String {
    // Cut first: a 5 MB value is not copied whole.
    let cut = truncate(value, max);
    let clean: String = cut
        .chars()
        .map(|c| if unsafe_char(c) { '?' } else { c })
        .collect();
    clean.replace("://", "[://]")
}

fn value(text: &str) -> String {
    neutralise(text, MAX_VALUE_CHARS)
}

fn optional(text: Option<&str>) -> String {
    text.map_or_else(|| "unknown".to_owned(), value)
}

/// The e-mail body of `signal`.
pub fn render(signal: &Signal) -> String {
    let s = &signal.subject;
    let mut out = String::new();
    // Writing to a String cannot fail.
    let _ = writeln!(
        out,
        "sesguard: {} signal from rule {}",
        signal.severity.as_str().to_uppercase(),
        value(&signal.rule_id)
    );
    let _ = writeln!(out, "{}", value(&signal.title));
    let _ = writeln!(out);
    let _ = writeln!(out, "WHAT HAPPENED");
    let _ = writeln!(
        out,
        "  Call:         {} ({})",
        value(&s.event_name),
        value(&s.event_source)
    );
    let _ = writeln!(out, "  Time:         {}", value(&s.event_time));
    let outcome = match &s.error_code {
        None => "succeeded".to_owned(),
        Some(code) => format!("failed: {}", value(code)),
    };
    let _ = writeln!(out, "  Outcome:      {outcome}");
    if let Some(identity) = &s.identity {
        let _ = writeln!(out, "  SES identity: {}", value(identity));
    }
    let _ = writeln!(
        out,
        "  ATT&CK:       {} {} / {} {}",
        value(&signal.tactic),
        value(&signal.tactic_name),
        value(&signal.technique),
        value(&signal.technique_name)
    );
    let _ = writeln!(out);
    let _ = writeln!(out, "WHO");
    let _ = writeln!(
        out,
        "  Caller:       {}",
        optional(s.user_arn.as_deref().or(s.principal.as_deref()))
    );
    if s.principal.is_some() && s.principal != s.user_arn {
        let _ = writeln!(out, "  Principal:    {}", optional(s.principal.as_deref()));
    }
    let _ = writeln!(out, "  Type:         {}", optional(s.user_type.as_deref()));
    let _ = writeln!(
        out,
        "  Access key:   {}",
        optional(s.access_key_id.as_deref())
    );
    let _ = writeln!(out);
    let _ = writeln!(out, "FROM WHERE");
    let tor = if s.tor { " (a Tor exit)" } else { "" };
    let _ = writeln!(
        out,
        "  Source:       {}{tor}",
        optional(s.source_ip.as_deref())
    );
    let _ = writeln!(out, "  User agent:   {}", optional(s.user_agent.as_deref()));
    let _ = writeln!(out);
    let _ = writeln!(out, "WHERE");
    let _ = writeln!(out, "  Account:      {}", value(&s.account_id));
    let _ = writeln!(out, "  Region:       {}", value(&s.region));
    if let Some(details) = &signal.details {
        let _ = writeln!(out);
        let _ = writeln!(out, "DETAILS");
        let json = serde_json::to_string(details).unwrap_or_default();
        let _ = writeln!(out, "  {}", neutralise(&json, MAX_DETAILS_CHARS));
    }
    let _ = writeln!(out);
    let _ = writeln!(out, "TRIAGE");
    for (i, step) in signal.triage.iter().enumerate() {
        let _ = writeln!(out, "  {}. {}", i + 1, neutralise(step, MAX_STEP_CHARS));
    }
    let _ = writeln!(out);
    let _ = writeln!(out, "EVENTS");
    let _ = writeln!(
        out,
        "  {} ({}, {})",
        value(&s.event_id),
        value(&s.event_name),
        value(&s.event_time)
    );
    for id in signal.related_event_ids.iter().take(MAX_RELATED) {
        let _ = writeln!(out, "  {} (related)", value(id));
    }
    if signal.related_event_ids.len() > MAX_RELATED {
        let _ = writeln!(
            out,
            "  … and {} more related events",
            signal.related_event_ids.len() - MAX_RELATED
        );
    }
    let _ = writeln!(out);
    let _ = writeln!(out, "Signal id: {}", value(&signal.signal_id));
    let _ = writeln!(
        out,
        "The machine-readable signal goes to the topic's other subscribers (SQS, Lambda, HTTPS)."
    );
    capped(out)
}

/// `text` within [`MAX_EMAIL_BYTES`], cut at a line and marked when longer (a signal with
/// every value at its cap stays under it; this is the backstop).
fn capped(text: String) -> String {
    const MARK: &str = "… [the rest of this message was cut]\n";
    if text.len() <= MAX_EMAIL_BYTES {
        return text;
    }
    let mut end = MAX_EMAIL_BYTES - MARK.len();
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let end = text[..end].rfind('\n').map_or(end, |at| at + 1);
    format!("{}{MARK}", &text[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsafe_characters_become_question_marks_and_links_are_defanged() {
        assert_eq!(
            neutralise("a\r\nb\u{202e}c\u{200b}d\te http://x", 100),
            "a??b?c?d?e http[://]x"
        );
        let long = neutralise(&"é".repeat(1000), 10);
        assert_eq!(long, format!("{}…", "é".repeat(10)));
    }

    #[test]
    fn the_text_is_cut_at_a_line_with_a_mark() {
        let text = "line\n".repeat(10_000);
        let cut = capped(text);
        assert!(cut.len() <= MAX_EMAIL_BYTES);
        assert!(cut.ends_with("line\n… [the rest of this message was cut]\n"));
    }
}
