//! The signal table for a terminal: one row per signal that fits the given width, wrapping
//! (never truncating) the long cells, principal, identity and region among them; coloured by
//! severity when asked. Below [`COLUMNS_FROM`] columns a signal is a block of lines instead.
//!
//! Every cell is attacker-controlled text (principal, identity, event name…): control
//! characters, ANSI escapes and bidirectional overrides in it are shown escaped, so a cell can
//! neither move the cursor nor restyle or reorder the screen.

use std::fmt::Write as _;

use anstyle::{AnsiColor, Style};
use textwrap::core::display_width;

use crate::model::Severity;
use crate::signal::Signal;

/// Narrower terminals get a block per signal.
pub const COLUMNS_FROM: usize = 160;
/// Narrowest width laid out: below it, lines run over rather than wrapping a character a line.
const NARROWEST: usize = 40;
const GAP: &str = "  ";
/// The narrowest of the four shared columns.
const NARROWEST_CELL: usize = 14;
/// TIME, SEVERITY and RULE: as wide as their longest values (a timestamp, `critical`, the
/// longest rule id); the four other columns share the rest.
const FIXED: [usize; 3] = [20, 8, 31];
const HEADER: [&str; 7] = [
    "TIME",
    "SEVERITY",
    "RULE",
    "EVENT",
    "ACCOUNT/REGION",
    "PRINCIPAL",
    "IDENTITY / IP",
];

/// Renders signals as rows of a table `width` columns wide.
#[derive(Debug)]
pub struct Table {
    layout: Layout,
    color: bool,
    header_written: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Layout {
    /// Column widths, in the order of [`HEADER`].
    Columns([usize; 7]),
    /// One block of lines per signal, this wide.
    Blocks(usize),
}

impl Table {
    pub fn new(width: usize, color: bool) -> Self {
        let width = width.max(NARROWEST);
        let layout = if width < COLUMNS_FROM {
            Layout::Blocks(width)
        } else {
            Layout::Columns(column_widths(width))
        };
        Table {
            layout,
            color,
            header_written: false,
        }
    }

    /// The lines for one signal, each ending in a newline (the header comes before the first
    /// row of a column layout).
    pub fn signal(&mut self, signal: &Signal) -> String {
        let cells = Cells::of(signal);
        let mut out = String::new();
        match &self.layout {
            Layout::Columns(widths) => {
                if !self.header_written {
                    self.header_written = true;
                    let header = HEADER.map(str::to_owned);
                    out.push_str(&row(&header, widths, |_, text| text.to_owned()));
                }
                let style = severity_style(signal.severity, self.color);
                out.push_str(&row(&cells.columns(), widths, |column, text| {
                    if column == 1 {
                        paint(text, style)
                    } else {
                        text.to_owned()
                    }
                }));
            }
            Layout::Blocks(width) => {
                let style = severity_style(signal.severity, self.color);
                let first = format!(
                    "{}{GAP}{}{GAP}{}{GAP}{}",
                    cells.time, cells.severity, cells.rule, cells.event
                );
                for (i, line) in wrap(&first, *width).iter().enumerate() {
                    // The severity is the second word of the first line.
                    let line = if i == 0 {
                        line.replacen(&cells.severity, &paint(&cells.severity, style), 1)
                    } else {
                        format!("    {line}")
                    };
                    let _ = writeln!(out, "{line}");
                }
                for (label, value) in [
                    ("principal  ", &cells.principal),
                    ("identity/ip", &cells.target),
                    ("account    ", &cells.place),
                ] {
                    if value.is_empty() {
                        continue;
                    }
                    let indent = 4 + label.len() + 1;
                    for (i, line) in wrap(value, width.saturating_sub(indent).max(10))
                        .iter()
                        .enumerate()
                    {
                        let head = if i == 0 { label } else { "" };
                        let _ = writeln!(out, "    {head:<w$} {line}", w = label.len());
                    }
                }
            }
        }
        out
    }
}

/// The text of a signal's cells, escaped.
struct Cells {
    time: String,
    severity: String,
    rule: String,
    event: String,
    place: String,
    principal: String,
    target: String,
}

impl Cells {
    fn of(signal: &Signal) -> Self {
        let s = &signal.subject;
        let target = match (&s.identity, &s.source_ip) {
            (Some(identity), Some(ip)) => format!("{identity} / {ip}"),
            (Some(identity), None) => identity.clone(),
            (None, Some(ip)) => ip.clone(),
            (None, None) => String::new(),
        };
        let event = match &s.error_code {
            Some(code) => format!("{} ({code})", s.event_name),
            None => s.event_name.clone(),
        };
        let mut severity = signal.severity.as_str().to_owned();
        if s.tor {
            severity.push_str(" tor");
        }
        if signal.shadow {
            // A shadow rule's signal, printed but not published by the function.
            severity.push_str(" shadow");
        }
        Cells {
            time: escape(&s.event_time),
            severity,
            rule: escape(&signal.rule_id),
            event: escape(&event),
            place: escape(&format!("{}/{}", s.account_id, s.region)),
            principal: escape(s.principal.as_deref().unwrap_or_default()),
            target: escape(&target),
        }
    }

    fn columns(&self) -> [String; 7] {
        [
            self.time.clone(),
            self.severity.clone(),
            self.rule.clone(),
            self.event.clone(),
            self.place.clone(),
            self.principal.clone(),
            self.target.clone(),
        ]
    }
}

/// Widths for a terminal `width` wide (at least [`COLUMNS_FROM`]): TIME, SEVERITY and RULE as
/// [`FIXED`], the four others at least [`NARROWEST_CELL`]; what is left goes first to
/// ACCOUNT/REGION (an account and the longest region), then PRINCIPAL (a user ARN), EVENT (a
/// long call name), IDENTITY / IP (an address and an IP), and the rest half to PRINCIPAL, half
/// to IDENTITY / IP.
fn column_widths(width: usize) -> [usize; 7] {
    let gaps = GAP.len() * (HEADER.len() - 1);
    let flexible = width.saturating_sub(FIXED.iter().sum::<usize>() + gaps);
    let mut extra = flexible.saturating_sub(4 * NARROWEST_CELL);
    let mut grow = |wanted: usize| {
        let given = extra.min(wanted - NARROWEST_CELL);
        extra -= given;
        NARROWEST_CELL + given
    };
    let place = grow(27);
    let principal = grow(45);
    let event = grow(30);
    let target = grow(34);
    [
        FIXED[0],
        FIXED[1],
        FIXED[2],
        event,
        place,
        principal + extra / 2 + extra % 2,
        target + extra / 2,
    ]
}

/// One row: each cell wrapped to its column, the row as many lines as its tallest cell.
/// `style` paints a cell's text (after padding is measured on the plain text).
fn row(cells: &[String; 7], widths: &[usize; 7], style: impl Fn(usize, &str) -> String) -> String {
    let wrapped: Vec<Vec<String>> = cells
        .iter()
        .zip(widths)
        .map(|(cell, width)| wrap(cell, *width))
        .collect();
    let height = wrapped.iter().map(Vec::len).max().unwrap_or(1);
    let mut out = String::new();
    for line in 0..height {
        let mut text = String::new();
        for (column, (lines, width)) in wrapped.iter().zip(widths).enumerate() {
            let cell = lines.get(line).map_or("", String::as_str);
            let pad = width.saturating_sub(display_width(cell));
            text.push_str(&style(column, cell));
            if column + 1 < cells.len() {
                text.push_str(&" ".repeat(pad));
                text.push_str(GAP);
            }
        }
        let _ = writeln!(out, "{}", text.trim_end());
    }
    out
}

/// `text` in lines of at most `width` columns, long words (ARNs) broken where they must be.
fn wrap(text: &str, width: usize) -> Vec<String> {
    if text.is_empty() {
        return vec![String::new()];
    }
    let options = textwrap::Options::new(width.max(1)).break_words(true);
    textwrap::wrap(text, options)
        .into_iter()
        .map(|line| line.into_owned())
        .collect()
}

/// `text` with what could act on a terminal shown as an escape: control characters (ESC, CR,
/// NUL…), and the invisible marks that reorder or hide text (bidirectional overrides and
/// isolates, zero-width characters).
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        let invisible = matches!(c,
            '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2060}'..='\u{2069}'
            | '\u{061c}' | '\u{feff}');
        if c.is_control() || invisible {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

fn severity_style(severity: Severity, color: bool) -> Style {
    if !color {
        return Style::new();
    }
    let style = Style::new();
    match severity {
        Severity::Critical => style.bold().fg_color(Some(AnsiColor::BrightRed.into())),
        Severity::High => style.fg_color(Some(AnsiColor::Red.into())),
        Severity::Medium => style.fg_color(Some(AnsiColor::Yellow.into())),
        Severity::Low => style.fg_color(Some(AnsiColor::Cyan.into())),
        Severity::Info => style.dimmed(),
    }
}

fn paint(text: &str, style: Style) -> String {
    if style == Style::new() || text.is_empty() {
        text.to_owned()
    } else {
        format!("{}{text}{}", style.render(), style.render_reset())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Subject;

    fn signal(severity: Severity, principal: &str, identity: &str, region: &str) -> Signal {
        Signal {
            signal_id: "id".to_owned(),
            rule_id: "ses-verify-then-delete".to_owned(),
            title: String::new(),
            severity,
            tactic: String::new(),
            tactic_name: String::new(),
            technique: String::new(),
            technique_name: String::new(),
            subject: Subject {
                event_id: "e".to_owned(),
                event_name: "DeleteIdentity".to_owned(),
                event_time: "2026-03-02T09:40:00Z".to_owned(),
                account_id: "111122223333".to_owned(),
                region: region.to_owned(),
                principal: Some(principal.to_owned()),
                identity: Some(identity.to_owned()),
                source_ip: Some("198.51.100.23".to_owned()),
                ..Subject::default()
            },
            related_event_ids: Vec::new(),
            details: None,
            triage: Vec::new(),
            shadow: false,
        }
    }

    /// The text of a rendering with every line joined and the padding and breaks taken out.
    fn joined(text: &str) -> String {
        text.split_whitespace().collect()
    }

    #[test]
    fn rows_fit_the_width_and_wrap_long_cells_without_losing_a_character() {
        let principal = format!("arn:aws:iam::111122223333:user/{}", "p".repeat(90));
        let identity = format!("{}@example.net", "i".repeat(70));
        let region = "region-with-a-very-long-made-up-name-9";
        for width in [40, 80, 159, 160, 200, 250] {
            let mut table = Table::new(width, false);
            let text = table.signal(&signal(Severity::High, &principal, &identity, region));
            for line in text.lines() {
                assert!(display_width(line) <= width, "{width}: {line:?}");
            }
            let all = match &table.layout {
                Layout::Blocks(_) => joined(&text),
                // Each column read top to bottom, one after the other.
                Layout::Columns(widths) => (0..widths.len())
                    .map(|column| {
                        let start: usize = widths[..column].iter().map(|w| w + GAP.len()).sum();
                        let cell: String = text
                            .lines()
                            .skip(1)
                            .map(|line| line.get(start..).unwrap_or_default())
                            .map(|rest| rest.get(..widths[column]).unwrap_or(rest))
                            .collect();
                        joined(&cell)
                    })
                    .collect(),
            };
            for whole in [&principal, &identity, region, "198.51.100.23"] {
                assert!(all.contains(whole), "{width}: {whole} lost in\n{text}");
            }
        }
    }

    #[test]
    fn the_column_layout_has_one_header_and_the_block_layout_none() {
        let s = signal(
            Severity::Low,
            "arn:aws:iam::1:user/a",
            "x@example.com",
            "eu-west-1",
        );
        let mut wide = Table::new(160, false);
        let first = wide.signal(&s);
        let second = wide.signal(&s);
        assert!(first.starts_with("TIME"), "{first}");
        assert!(second.starts_with("2026-03-02T09:40:00Z  low"), "{second}");
        assert_eq!(first.lines().count(), 1 + second.lines().count());
        let mut narrow = Table::new(80, false);
        let block = narrow.signal(&s);
        assert!(block.starts_with("2026-03-02T09:40:00Z  low"), "{block}");
        assert!(
            block.contains("principal   arn:aws:iam::1:user/a"),
            "{block}"
        );
    }

    #[test]
    fn colour_marks_the_severity_only_when_asked() {
        let s = signal(Severity::Critical, "p", "i", "r");
        for width in [80, 160] {
            let plain = Table::new(width, false).signal(&s);
            assert!(!plain.contains('\u{1b}'), "{plain:?}");
            let coloured = Table::new(width, true).signal(&s);
            let red = Style::new()
                .bold()
                .fg_color(Some(AnsiColor::BrightRed.into()));
            assert!(
                coloured.contains(&format!("{}critical{}", red.render(), red.render_reset())),
                "{coloured:?}"
            );
        }
    }

    #[test]
    fn control_characters_escapes_and_bidi_overrides_are_shown_escaped() {
        let hostile = "arn:aws:iam::1:user/\u{1b}[2J\u{1b}]8;;x\u{7}\r\n\u{202e}evil\u{0}";
        for width in [80, 200] {
            let mut table = Table::new(width, true);
            let text = table.signal(&signal(Severity::Medium, hostile, hostile, hostile));
            let raw: Vec<char> = text
                .chars()
                .filter(|c| (c.is_control() && *c != '\n') || *c == '\u{202e}')
                .collect();
            // Only the severity's own colour codes (an ESC each) remain.
            assert_eq!(raw, ['\u{1b}', '\u{1b}'], "{text:?}");
            assert!(text.contains("\\u{1b}[2J"), "{text}");
            assert!(text.contains("\\u{202e}evil"), "{text}");
        }
    }
}
