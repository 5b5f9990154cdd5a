//! `sesguard timeline`: every CloudTrail call (any service) by a principal, an access key or a
//! source address, in event-time order — the triage step every rule asks for ("see what else
//! the user did", "see what else came from that address"), done by the tool.
//!
//! Reading is the scan's: any input `sesguard scan` reads, through [`crate::input`]. A record is
//! parsed only when its text contains one of the values asked for (a substring search), so a
//! timeline over a large archive costs about what a scan does. The matching calls are held and
//! sorted in memory: memory grows with the number of calls that match (a few hundred bytes
//! each), not with the input.

use std::collections::BTreeMap;
use std::net::IpAddr;

use ipnet::IpNet;
use memchr::memmem::Finder;
use serde::Serialize;

use crate::input::{InputError, Position, Visitor};
use crate::model::Seconds;
use crate::record::Record;
use crate::rules::event::principal;
use crate::time::{self, parse_event_time};

/// What to look for: calls matching any of the principal, key or address, within the times.
#[derive(Debug, Clone, Default)]
pub struct Query {
    /// Matches the principal as sesguard names it (the role ARN for an assumed role) or the
    /// caller's ARN as CloudTrail writes it (the session ARN).
    pub principal: Option<String>,
    pub access_key: Option<String>,
    pub source: Option<Address>,
    /// Event time, inclusive.
    pub since: Option<Seconds>,
    /// Event time, exclusive.
    pub until: Option<Seconds>,
}

/// A `--source-ip`: one address, a network, or (CloudTrail also writes service names such as
/// `ses.amazonaws.com` there) a name compared as text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Address {
    Net(IpNet),
    Name(String),
}

impl Address {
    pub fn parse(text: &str) -> Address {
        if let Ok(ip) = text.parse::<IpAddr>() {
            return Address::Net(IpNet::from(ip));
        }
        match text.parse::<IpNet>() {
            Ok(net) => Address::Net(net.trunc()),
            Err(_) => Address::Name(text.to_owned()),
        }
    }

    fn matches(&self, value: &str) -> bool {
        match self {
            Address::Net(net) => value.parse::<IpAddr>().is_ok_and(|ip| net.contains(&ip)),
            Address::Name(name) => name == value,
        }
    }

    /// The text every matching record holds, if there is one (not for a network).
    fn needle(&self) -> Option<String> {
        match self {
            Address::Net(net) if net.prefix_len() == net.max_prefix_len() => {
                Some(net.addr().to_string())
            }
            Address::Net(_) => None,
            Address::Name(name) => Some(name.clone()),
        }
    }
}

/// One call of the timeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Call {
    pub event_time: String,
    pub event_id: Option<String>,
    pub account_id: Option<String>,
    pub region: Option<String>,
    pub event_source: Option<String>,
    pub event_name: Option<String>,
    pub error_code: Option<String>,
    pub principal: Option<String>,
    pub user_arn: Option<String>,
    pub access_key_id: Option<String>,
    pub source_ip: Option<String>,
    /// Where it was read (file, line, record).
    pub at: String,
    #[serde(skip)]
    time: Option<Seconds>,
}

impl Call {
    /// The service, as the first label of the event source (`ses`, `iam`, `sts`).
    pub fn service(&self) -> &str {
        let source = self.event_source.as_deref().unwrap_or("unknown");
        source.split('.').next().unwrap_or(source)
    }
}

/// Collects the calls of a [`Query`] from what the readers find.
pub struct Timeline {
    query: Query,
    /// Substrings one of which every matching record's text holds; empty when some part of the
    /// query has none (a network), and then every record is parsed.
    needles: Vec<Finder<'static>>,
    calls: Vec<Call>,
    errors: Vec<InputError>,
    records: u64,
}

impl Timeline {
    pub fn new(query: Query) -> Self {
        let mut texts: Vec<Option<String>> = vec![
            query.principal.clone(),
            query.access_key.clone(),
            query.source.as_ref().map(|a| a.needle()).unwrap_or(None),
        ];
        if query.source.as_ref().is_some_and(|a| a.needle().is_none()) {
            texts.clear();
        }
        let mut needles = Vec::new();
        for text in texts.into_iter().flatten() {
            // JSON may escape `/` as `\/`; CloudTrail does not, but a re-serialised export may.
            if text.contains('/') {
                needles.push(Finder::new(text.replace('/', "\\/").as_bytes()).into_owned());
            }
            needles.push(Finder::new(text.as_bytes()).into_owned());
        }
        Timeline {
            query,
            needles,
            calls: Vec::new(),
            errors: Vec::new(),
            records: 0,
        }
    }

    fn may_match(&self, json: &str) -> bool {
        self.needles.is_empty()
            || self
                .needles
                .iter()
                .any(|n| n.find(json.as_bytes()).is_some())
    }

    fn call(&self, record: &Record, at: &Position) -> Option<Call> {
        let user = record.user_identity.as_ref();
        let principal = user.and_then(principal).map(str::to_owned);
        let user_arn = user.and_then(|u| u.arn.as_deref()).map(str::to_owned);
        let key = user
            .and_then(|u| u.access_key_id.as_deref())
            .map(str::to_owned);
        let ip = record.source_ip_address.as_deref();
        let q = &self.query;
        let by_principal = q.principal.as_ref().is_some_and(|p| {
            principal.as_deref() == Some(p.as_str()) || user_arn.as_deref() == Some(p.as_str())
        });
        let by_key = q
            .access_key
            .as_ref()
            .is_some_and(|k| key.as_deref() == Some(k.as_str()));
        let by_ip = q
            .source
            .as_ref()
            .is_some_and(|a| ip.is_some_and(|ip| a.matches(ip)));
        if !(by_principal || by_key || by_ip) {
            return None;
        }
        let event_time = record.event_time.as_deref().unwrap_or("").to_owned();
        let time = parse_event_time(&event_time).ok();
        let in_range = match time {
            Some(t) => q.since.is_none_or(|s| t >= s) && q.until.is_none_or(|u| t < u),
            // Without a time it cannot be placed in a range asked for.
            None => q.since.is_none() && q.until.is_none(),
        };
        if !in_range {
            return None;
        }
        let text = |v: &Option<std::borrow::Cow<str>>| v.as_deref().map(str::to_owned);
        Some(Call {
            event_time,
            event_id: text(&record.event_id),
            account_id: text(&record.recipient_account_id),
            region: text(&record.aws_region),
            event_source: text(&record.event_source),
            event_name: text(&record.event_name),
            error_code: text(&record.error_code),
            principal,
            user_arn,
            access_key_id: key,
            source_ip: ip.map(str::to_owned),
            at: at.to_string(),
            time,
        })
    }

    /// How many records were read (matching or not).
    pub fn records(&self) -> u64 {
        self.records
    }

    /// The problems met while reading, in input order.
    pub fn errors(&self) -> &[InputError] {
        &self.errors
    }

    /// The matching calls in event-time order, calls without a readable time last; equal times
    /// by event id, so the order does not depend on how the input was split into files.
    pub fn into_calls(self) -> (Vec<Call>, Vec<InputError>) {
        let mut calls = self.calls;
        calls.sort_by(|a, b| {
            (a.time.is_none(), a.time, &a.event_id).cmp(&(b.time.is_none(), b.time, &b.event_id))
        });
        (calls, self.errors)
    }
}

impl Visitor for Timeline {
    fn record(&mut self, json: &str, position: &Position) {
        self.records += 1;
        if !self.may_match(json) {
            return;
        }
        match Record::parse(json) {
            Ok(record) => {
                if let Some(call) = self.call(&record, position) {
                    self.calls.push(call);
                }
            }
            Err(err) => self
                .errors
                .push(InputError::new(position.clone(), err.to_string())),
        }
    }

    fn error(&mut self, error: InputError) {
        self.errors.push(error);
    }
}

/// Calls per service and per region, for the end of a timeline.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Tally {
    pub services: BTreeMap<String, u64>,
    pub regions: BTreeMap<String, u64>,
}

impl Tally {
    pub fn of(calls: &[Call]) -> Self {
        let mut tally = Tally::default();
        for call in calls {
            *tally.services.entry(call.service().to_owned()).or_default() += 1;
            let region = call.region.as_deref().unwrap_or("unknown");
            *tally.regions.entry(region.to_owned()).or_default() += 1;
        }
        tally
    }

    /// `by service: iam 2, ses 10` and `by region: …`, most calls first.
    pub fn lines(&self) -> [String; 2] {
        fn line(label: &str, counts: &BTreeMap<String, u64>) -> String {
            let mut sorted: Vec<(&String, &u64)> = counts.iter().collect();
            sorted.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
            let parts: Vec<String> = sorted
                .iter()
                .map(|(name, n)| format!("{} {n}", printable(name)))
                .collect();
            format!("by {label}: {}", parts.join(", "))
        }
        [
            line("service", &self.services),
            line("region", &self.regions),
        ]
    }
}

/// Text from a record made safe for a terminal: control characters (escape sequences
/// included) become `?`.
pub fn printable(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

/// One call as a line of the readable table: time, account/region, service call, outcome,
/// address, then who (not cut: the last column may run as long as it needs).
pub fn table_row(call: &Call) -> String {
    let outcome = call.error_code.as_deref().unwrap_or("ok");
    let who = match (&call.user_arn, &call.access_key_id) {
        (Some(arn), Some(key)) => format!("{arn} ({key})"),
        (Some(arn), None) => arn.clone(),
        (None, Some(key)) => key.clone(),
        (None, None) => call.principal.clone().unwrap_or_default(),
    };
    let line = format!(
        "{:<20}  {:<12} {:<14}  {:<40}  {:<24}  {:<15}  {}",
        call.event_time,
        call.account_id.as_deref().unwrap_or("-"),
        call.region.as_deref().unwrap_or("-"),
        format!(
            "{}:{}",
            call.service(),
            call.event_name.as_deref().unwrap_or("-")
        ),
        outcome,
        call.source_ip.as_deref().unwrap_or("-"),
        who
    );
    printable(&line)
}

/// The header of [`table_row`]'s table.
pub fn table_header() -> String {
    format!(
        "{:<20}  {:<12} {:<14}  {:<40}  {:<24}  {:<15}  {}",
        "TIME", "ACCOUNT", "REGION", "CALL", "OUTCOME", "SOURCE", "WHO"
    )
}

/// The `sesguard timeline` command a signal's triage gives: the principal (or access key) and
/// the source address over the day around the event, with the input left as a placeholder so
/// the signal is the same bytes wherever it was decided. Values that are not plain ARN, key or
/// address text are left out rather than quoted: the command must be safe to paste.
pub fn triage_command(
    principal: Option<&str>,
    access_key: Option<&str>,
    source_ip: Option<&str>,
    event_time: &str,
) -> Option<String> {
    let mut command = String::from("sesguard timeline");
    let mut any = false;
    if let Some(p) = principal.filter(|p| plain(p)) {
        command.push_str(&format!(" --principal '{p}'"));
        any = true;
    } else if let Some(k) = access_key.filter(|k| plain(k)) {
        command.push_str(&format!(" --access-key '{k}'"));
        any = true;
    }
    if let Some(ip) = source_ip.filter(|ip| ip.parse::<IpAddr>().is_ok()) {
        command.push_str(&format!(" --source-ip '{ip}'"));
        any = true;
    }
    if !any {
        return None;
    }
    if let Ok(at) = parse_event_time(event_time) {
        let half_day = crate::model::DAY / 2;
        command.push_str(&format!(
            " --since {} --until {}",
            time::format(at - half_day),
            time::format(at + half_day)
        ));
    }
    command.push_str(" '<your CloudTrail archive>'");
    Some(command)
}

/// Text made only of what ARNs, access key ids and addresses hold (IAM names allow
/// `+=,.@_-`), at most 2,048 characters: safe inside single quotes and a markdown code span.
fn plain(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 2048
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b":/+=,.@_-".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn record(time: &str, name: &str, arn: &str, key: &str, ip: &str) -> String {
        format!(
            r#"{{"eventTime":"{time}","eventSource":"ses.amazonaws.com","eventName":"{name}","awsRegion":"us-east-1","sourceIPAddress":"{ip}","recipientAccountId":"111122223333","eventID":"{name}-{time}","userIdentity":{{"type":"IAMUser","arn":"{arn}","accessKeyId":"{key}"}}}}"#
        )
    }

    fn collect(query: Query, records: &[String]) -> Vec<Call> {
        let mut timeline = Timeline::new(query);
        let name: Arc<str> = Arc::from("test.jsonl");
        let text = records.join("\n");
        crate::input::read_bytes(&name, text.as_bytes(), &mut timeline);
        assert!(timeline.errors().is_empty(), "{:?}", timeline.errors());
        timeline.into_calls().0
    }

    const ALICE: &str = "arn:aws:iam::111122223333:user/alice";
    const BOB: &str = "arn:aws:iam::111122223333:user/bob";

    #[test]
    fn finds_the_calls_of_a_principal_key_or_address_in_time_order() {
        let records = [
            record(
                "2026-03-02T10:00:00Z",
                "DeleteIdentity",
                ALICE,
                "AKIAALICE",
                "192.0.2.1",
            ),
            record(
                "2026-03-02T09:00:00Z",
                "GetAccount",
                ALICE,
                "AKIAALICE",
                "192.0.2.1",
            ),
            record(
                "2026-03-02T09:30:00Z",
                "ListIdentities",
                BOB,
                "AKIABOB",
                "192.0.2.1",
            ),
            record(
                "2026-03-02T09:45:00Z",
                "GetSendQuota",
                BOB,
                "AKIABOB",
                "198.51.100.7",
            ),
        ];
        let by_alice = collect(
            Query {
                principal: Some(ALICE.into()),
                ..Query::default()
            },
            &records,
        );
        let names: Vec<_> = by_alice
            .iter()
            .map(|c| c.event_name.clone().unwrap())
            .collect();
        assert_eq!(names, ["GetAccount", "DeleteIdentity"]);
        let by_ip = collect(
            Query {
                source: Some(Address::parse("192.0.2.1")),
                ..Query::default()
            },
            &records,
        );
        assert_eq!(by_ip.len(), 3);
        let by_net = collect(
            Query {
                source: Some(Address::parse("198.51.100.0/24")),
                ..Query::default()
            },
            &records,
        );
        assert_eq!(by_net.len(), 1);
        let by_key_or_ip = collect(
            Query {
                access_key: Some("AKIABOB".into()),
                source: Some(Address::parse("192.0.2.1")),
                ..Query::default()
            },
            &records,
        );
        assert_eq!(by_key_or_ip.len(), 4);
        let within = collect(
            Query {
                source: Some(Address::parse("192.0.2.1")),
                since: Some(parse_event_time("2026-03-02T09:15:00Z").unwrap()),
                until: Some(parse_event_time("2026-03-02T10:00:00Z").unwrap()),
                ..Query::default()
            },
            &records,
        );
        let names: Vec<_> = within
            .iter()
            .map(|c| c.event_name.clone().unwrap())
            .collect();
        assert_eq!(
            names,
            ["ListIdentities"],
            "since inclusive, until exclusive"
        );
        let tally = Tally::of(&by_key_or_ip);
        assert_eq!(tally.services.get("ses"), Some(&4));
        assert_eq!(tally.lines()[1], "by region: us-east-1 4");
    }

    #[test]
    fn an_assumed_role_matches_by_role_or_by_session() {
        let session = "arn:aws:sts::111122223333:assumed-role/deploy/ci-run";
        let json = format!(
            r#"{{"eventTime":"2026-03-02T09:00:00Z","eventSource":"iam.amazonaws.com","eventName":"CreateUser","awsRegion":"us-east-1","userIdentity":{{"type":"AssumedRole","arn":"{session}","sessionContext":{{"sessionIssuer":{{"type":"Role","arn":"arn:aws:iam::111122223333:role/deploy"}}}}}}}}"#
        );
        for asked in [session, "arn:aws:iam::111122223333:role/deploy"] {
            let calls = collect(
                Query {
                    principal: Some(asked.into()),
                    ..Query::default()
                },
                std::slice::from_ref(&json),
            );
            assert_eq!(calls.len(), 1, "{asked}");
            assert_eq!(calls[0].service(), "iam");
        }
    }

    #[test]
    fn hostile_text_is_printed_safely() {
        let evil = "arn:aws:iam::1:user/x\u{1b}[2J\nrm";
        let call = Call {
            event_time: "t".into(),
            event_id: None,
            account_id: None,
            region: Some("eu\u{7}".into()),
            event_source: None,
            event_name: None,
            error_code: None,
            principal: None,
            user_arn: Some(evil.into()),
            access_key_id: None,
            source_ip: None,
            at: String::new(),
            time: None,
        };
        let row = table_row(&call);
        assert!(!row.chars().any(char::is_control), "{row:?}");
        assert!(row.contains("user/x?[2J?rm"));
    }

    #[test]
    fn the_triage_command_is_exact_and_safe() {
        assert_eq!(
            triage_command(
                Some(ALICE),
                Some("AKIAALICE"),
                Some("192.0.2.1"),
                "2026-03-02T09:00:00Z"
            )
            .unwrap(),
            "sesguard timeline --principal 'arn:aws:iam::111122223333:user/alice' --source-ip \
             '192.0.2.1' --since 2026-03-01T21:00:00Z --until 2026-03-02T21:00:00Z \
             '<your CloudTrail archive>'"
        );
        // No principal: the key; a service name as the address is left out.
        assert_eq!(
            triage_command(
                None,
                Some("AKIAALICE"),
                Some("ses.amazonaws.com"),
                "bad time"
            )
            .unwrap(),
            "sesguard timeline --access-key 'AKIAALICE' '<your CloudTrail archive>'"
        );
        // A principal that is not plain ARN text is not put in a command.
        assert_eq!(
            triage_command(Some("arn:x'; rm -rf /"), None, Some("not an ip"), "t"),
            None
        );
    }
}
