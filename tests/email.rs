//! The e-mail text of a signal (issue 18): the layout an on-call person reads, from a real
//! sample, and hostile identity strings (line breaks, markdown, bidirectional overrides, 5 MB)
//! rendered on their own line, neutralised and capped.

mod support;

use serde_json::json;
use sesguard::output::email::{MAX_EMAIL_BYTES, MAX_VALUE_CHARS, render};
use sesguard::scan::scan_text;
use support::engine;

/// The signals of one committed sample.
fn sample_signals(file: &str) -> Vec<sesguard::Signal> {
    let path = format!("{}/events/{file}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read(&path).expect("sample");
    let (out, _) = scan_text(&engine(""), file, &text);
    out.signals
}

const DELETE_IDENTITY: &str = "\
sesguard: MEDIUM signal from rule ses-identity-deleted
SES identity has been deleted

WHAT HAPPENED
  Call:         DeleteIdentity (ses.amazonaws.com)
  Time:         2026-03-02T09:40:00Z
  Outcome:      succeeded
  SES identity: phish@example.net
  ATT&CK:       TA0005 stealth / T1070 indicator-removal

WHO
  Caller:       arn:aws:iam::111122223333:user/ses-ops-leaked
  Type:         IAMUser
  Access key:   AKIAIOSFODNN7EXAMPLE

FROM WHERE
  Source:       198.51.100.23
  User agent:   aws-cli/2.15.30 Python/3.11.8 Linux/6.1 exe/x86_64.ubuntu.22 prompt/off command/ses.delete-identity

WHERE
  Account:      111122223333
  Region:       us-east-1

TRIAGE
  1. Determine if the API call: `DeleteIdentity` should have been made by the user: `arn:aws:iam::111122223333:user/ses-ops-leaked` from this IP address: `198.51.100.23` .
  2. See everything this caller did and everything that came from this address in the day around the event, in event-time order, any service: `sesguard timeline --principal 'arn:aws:iam::111122223333:user/ses-ops-leaked' --source-ip '198.51.100.23' --since 2026-03-01T21:40:00Z --until 2026-03-02T21:40:00Z '<your CloudTrail archive>'`.
  3. Correlate it with other suspicious activity of the same user and IP, such as unusual IAM role usage, unauthorized access attempts, identity verifications and e-mail sending shortly before the deletion.
  4. If the deletion is legitimate (an IaC stack or a clean-up job), consider including the user in a suppression list (a `[[suppressions]]` entry in the sesguard config).
  5. Make sure CloudTrail logs every region of the account, and that no other CloudTrail logs were deleted or modified.
  6. If the results of the triage indicate that an attacker has taken the action, initiate your company's incident response process and an investigation; enforce MFA and least-privilege IAM policies for the principals involved.

EVENTS
  5e1093f0-d395-41f9-8a75-d9acf61ade01 (DeleteIdentity, 2026-03-02T09:40:00Z)

Signal id: 31e68675-7450-58c5-a741-4d0d080e441e
The machine-readable signal goes to the topic's other subscribers (SQS, Lambda, HTTPS).
";

#[test]
fn a_real_sample_reads_as_the_fixed_layout() {
    let signals = sample_signals("ses-DeleteIdentity.json");
    let signal = signals
        .iter()
        .find(|s| s.rule_id == "ses-identity-deleted")
        .expect("ses-identity-deleted signal");
    assert_eq!(render(signal), DELETE_IDENTITY);
}

#[test]
fn details_and_related_events_are_listed() {
    let signals = sample_signals("ses-DeleteIdentity.json");
    let all: String = signals.iter().map(render).collect();
    // The sample gives no details; the chain of the whole sample directory does, below.
    assert!(!all.contains("DETAILS"));
    let dir = format!("{}/events", env!("CARGO_MANIFEST_DIR"));
    let mut text = Vec::new();
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .expect("events")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    names.sort();
    for path in names {
        let record: serde_json::Value =
            serde_json::from_slice(&std::fs::read(path).expect("read")).expect("json");
        text.extend(format!("{record}\n").into_bytes());
    }
    let (out, _) = scan_text(&engine(""), "events.jsonl", &text);
    let chain = out
        .signals
        .iter()
        .find(|s| s.rule_id == "ses-abuse-chain")
        .expect("the sample attack's chain");
    let email = render(chain);
    assert!(email.contains("\nDETAILS\n  {\"stages\":["), "{email}");
    for id in &chain.related_event_ids {
        assert!(email.contains(&format!("\n  {id} (related)\n")), "{email}");
    }
}

#[test]
fn hostile_identity_strings_stay_on_their_line_neutralised_and_capped() {
    let huge = "a".repeat(5 * 1024 * 1024);
    let record = support::ses("VerifyEmailIdentity")
        .user_arn("arn:aws:iam::111122223333:user/\u{202e}evil\r\n\r\nTRIAGE\n  1. ignore this")
        .agent("**[reset your password](http://evil.example/x)**\n# WHO\u{2028}\u{200b}")
        .params(json!({"emailAddress": format!("é\n\nEVENTS\n{huge}@example.com\u{0}")}));
    let signals = support::run(&[record]);
    assert!(!signals.is_empty());
    for signal in &signals {
        let email = render(signal);
        assert!(email.len() <= MAX_EMAIL_BYTES, "{} bytes", email.len());
        // Section headers are the fixed ones only: nothing the caller chose starts a line.
        let headers: Vec<&str> = email
            .lines()
            .filter(|l| !l.is_empty() && !l.starts_with(' '))
            .collect();
        let expected_headers = [
            "WHAT HAPPENED",
            "WHO",
            "FROM WHERE",
            "WHERE",
            "TRIAGE",
            "EVENTS",
        ];
        for header in &headers[2..headers.len() - 2] {
            assert!(expected_headers.contains(header), "{header:?} in\n{email}");
        }
        assert_eq!(
            headers
                .iter()
                .filter(|h| expected_headers.contains(h))
                .count(),
            expected_headers.len(),
            "{email}"
        );
        // No control, bidirectional or zero-width character but the line breaks of the layout.
        assert!(
            email.chars().all(|c| c == '\n'
                || !(c.is_control()
                    || ('\u{200b}'..='\u{200f}').contains(&c)
                    || ('\u{2028}'..='\u{202e}').contains(&c))),
            "{email:?}"
        );
        assert!(!email.contains("http://"), "a link stayed clickable");
        assert!(email.contains("http[://]evil.example/x"));
        let identity = email
            .lines()
            .find(|l| l.starts_with("  SES identity: "))
            .expect("identity line");
        assert!(identity.starts_with("  SES identity: é??EVENTS?aaaa"));
        assert!(identity.ends_with('…'));
        assert!(identity.chars().count() <= "  SES identity: ".len() + MAX_VALUE_CHARS + 1);
        let caller = email
            .lines()
            .find(|l| l.starts_with("  Caller:"))
            .expect("caller line");
        assert_eq!(
            caller,
            "  Caller:       arn:aws:iam::111122223333:user/?evil????TRIAGE?  1. ignore this"
        );
    }
}

/// The fenced block after `<!-- sample: NAME -->` in the README.
fn readme_sample(readme: &str, name: &str) -> String {
    let marker = format!("<!-- sample: {name} -->\n```");
    let at = readme.find(&marker).expect("README sample marker") + marker.len();
    let body = &readme[at..];
    let start = body.find('\n').expect("fence line") + 1;
    let end = body[start..].find("\n```").expect("closing fence") + start;
    body[start..end].to_owned()
}

#[test]
fn the_readme_shows_the_three_renderings_of_one_real_signal() {
    let readme = std::fs::read_to_string(format!("{}/README.md", env!("CARGO_MANIFEST_DIR")))
        .expect("README");
    let signals = sample_signals("ses-DeleteIdentity.json");
    let signal = signals
        .iter()
        .find(|s| s.rule_id == "ses-identity-deleted")
        .expect("ses-identity-deleted signal");
    let parse = |text: &str| serde_json::from_str::<serde_json::Value>(text).expect("JSON");
    assert_eq!(
        parse(&readme_sample(&readme, "sesguard")),
        parse(&signal.to_json())
    );
    assert_eq!(
        parse(&readme_sample(&readme, "ocsf")),
        parse(&sesguard::output::ocsf::to_json(signal))
    );
    assert_eq!(
        format!("{}\n", readme_sample(&readme, "email")),
        render(signal)
    );
    assert!(readme.contains(&format!("<code>{}</code>", signal.short_title())));
}
