//! Spans of event time over a windowed set (the answer to an [`Op::Distinct`](super::Op) ask):
//! the values a principal reached within one span of a window that holds the event evaluated.
//! Used by the threshold rules (`ses-sandbox-exit-burst`, `ses-abuse-chain`), so the answer does
//! not depend on the order the events arrive in.

use crate::model::Seconds;
use crate::state::{Occurrence, Seen};

/// A value in a span, with its earliest occurrence there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InSpan<'a> {
    pub value: &'a str,
    pub occurrence: &'a Occurrence,
}

/// The earliest span `[start, start + window]` holding `now` whose values satisfy `holds`
/// (values sorted by their earliest occurrence in the span, then by value), if there is one.
/// `current` is the event's own value and occurrence, which every such span holds.
pub fn find<'a>(
    seen: &'a [Seen],
    current: (&'a str, &'a Occurrence),
    window: Seconds,
    holds: impl Fn(&[InSpan<'a>]) -> bool,
) -> Option<Vec<InSpan<'a>>> {
    let now = current.1.time;
    let lowest = now.saturating_sub(window);
    // A span that holds the values can be moved later until it starts at one of them, so the
    // occurrences (and the event) are the only starts to try.
    let mut starts: Vec<Seconds> = seen
        .iter()
        .flat_map(Seen::occurrences)
        .map(|o| o.time)
        .chain([now])
        .filter(|t| (lowest..=now).contains(t))
        .collect();
    starts.sort_unstable();
    starts.dedup();
    starts.into_iter().find_map(|start| {
        let end = start.saturating_add(window);
        let mut values: Vec<InSpan<'a>> = seen
            .iter()
            .filter(|s| s.value != current.0)
            .filter_map(|s| {
                let occurrence = s
                    .occurrences()
                    .filter(|o| (start..=end).contains(&o.time))
                    .min()?;
                Some(InSpan {
                    value: &s.value,
                    occurrence,
                })
            })
            .collect();
        let own = seen
            .iter()
            .filter(|s| s.value == current.0)
            .flat_map(Seen::occurrences)
            .filter(|o| (start..=end).contains(&o.time))
            .chain([current.1])
            .min()
            .unwrap_or(current.1);
        values.push(InSpan {
            value: current.0,
            occurrence: own,
        });
        values.sort_by(|a, b| {
            a.occurrence
                .cmp(b.occurrence)
                .then_with(|| a.value.cmp(b.value))
        });
        holds(&values).then_some(values)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(value: &str, times: &[(Seconds, &str)]) -> Seen {
        let mut s = Seen::once(value, Occurrence::new(times[0].0, times[0].1));
        for (t, id) in &times[1..] {
            s.merge(&Occurrence::new(*t, id));
        }
        s
    }

    fn names(found: Option<Vec<InSpan<'_>>>) -> Option<Vec<String>> {
        found.map(|v| v.iter().map(|s| s.value.to_owned()).collect())
    }

    #[test]
    fn a_span_holding_the_event_and_enough_values_is_found_in_either_order() {
        let set = [
            seen("a", &[(0, "a0")]),
            seen("b", &[(100, "b0")]),
            seen("c", &[(250, "c0")]),
        ];
        let now = Occurrence::new(0, "a0");
        let three = |v: &[InSpan]| v.len() >= 3;
        assert_eq!(
            names(find(&set, ("a", &now), 300, three)),
            Some(vec!["a".into(), "b".into(), "c".into()])
        );
        assert_eq!(names(find(&set, ("a", &now), 200, three)), None);
        let later = Occurrence::new(250, "c0");
        assert_eq!(
            names(find(&set, ("c", &later), 300, three)),
            Some(vec!["a".into(), "b".into(), "c".into()])
        );
    }

    #[test]
    fn a_value_counts_by_whichever_occurrence_falls_in_the_span() {
        // "a" first at 0, last at 1000: the span around 990 holds its last occurrence.
        let set = [
            seen("a", &[(0, "a0"), (1000, "a1")]),
            seen("b", &[(990, "b0")]),
        ];
        let now = Occurrence::new(995, "c0");
        let found = find(&set, ("c", &now), 60, |v| v.len() >= 3).expect("a span");
        let ids: Vec<&str> = found
            .iter()
            .map(|s| s.occurrence.event_id.as_str())
            .collect();
        assert_eq!(ids, ["b0", "c0", "a1"]);
    }
}
