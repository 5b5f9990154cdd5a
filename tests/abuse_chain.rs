//! The pinned semantics of the seven detections of the SES abuse chain (issue 13), one test per
//! sentence of the issue, each written so it fails without the behaviour it names. Records go
//! through the same reader and engine as `sesguard scan`, with the in-memory state; a few tests
//! run the binary for its flags.

mod support;

use std::collections::BTreeSet;

use assert_cmd::Command;
use serde_json::{Value, json};
use sesguard::Signal;
use sesguard::lambda::{
    CHAIN_WINDOW_HOURS, LambdaConfig, SANDBOX_EXIT_REGIONS, SANDBOX_EXIT_WINDOW_MINUTES,
    TABLE_NAME, TOPIC_ARN,
};
use support::*;

// ---------------------------------------------------------------- builders

/// Seventeen regions (a victim's public account tells of 16–17 regions hit in a day).
const REGIONS: [&str; 17] = [
    "us-east-1",
    "us-east-2",
    "us-west-1",
    "us-west-2",
    "ca-central-1",
    "eu-west-1",
    "eu-west-2",
    "eu-west-3",
    "eu-central-1",
    "eu-north-1",
    "ap-south-1",
    "ap-northeast-1",
    "ap-northeast-2",
    "ap-northeast-3",
    "ap-southeast-1",
    "ap-southeast-2",
    "sa-east-1",
];

const SES_FULL_ACCESS: &str = "arn:aws:iam::aws:policy/AmazonSESFullAccess";
const SMTP_USER_NAME: &str = "ses-smtp-user.20260302-101500";
const OPS_ROLE: &str = "arn:aws:iam::111122223333:role/ops";

/// `PutAccountDetails` asking for production access in `region`, named `pad-<region>`.
fn production_access(region: &str) -> R {
    ses("PutAccountDetails")
        .params(json!({
            "productionAccessEnabled": true,
            "mailType": "MARKETING",
            "websiteURL": "https://shop.example",
        }))
        .region(region)
        .id(&format!("pad-{region}"))
}

/// `PutAccountDetails` in each region, one second apart from `at_seconds`.
fn burst(regions: &[&str], at_seconds: i64, tag: &str) -> Vec<R> {
    regions
        .iter()
        .zip(0..)
        .map(|(region, i)| {
            production_access(region)
                .id(&format!("{tag}-{region}"))
                .at_seconds(at_seconds + i)
        })
        .collect()
}

fn sending_v1(enabled: Value) -> R {
    ses("UpdateAccountSendingEnabled").params(json!({ "enabled": enabled }))
}

fn sending_v2(enabled: Value) -> R {
    ses("PutAccountSendingAttributes").params(json!({ "sendingEnabled": enabled }))
}

/// The request parameter naming the target of an IAM policy call.
fn target_param(event_name: &str) -> &'static str {
    if event_name.contains("User") {
        "userName"
    } else if event_name.contains("Role") {
        "roleName"
    } else {
        "groupName"
    }
}

/// `Attach{User,Role,Group}Policy` of `arn` to `mailer`.
fn attach(event_name: &str, arn: &str) -> R {
    iam(event_name).params(json!({ "policyArn": arn })).set(
        &["requestParameters", target_param(event_name)],
        json!("mailer"),
    )
}

/// A policy document of one statement, as the JSON text IAM records.
fn document(effect: &str, action: Value) -> String {
    json!({
        "Version": "2012-10-17",
        "Statement": [{"Effect": effect, "Action": action, "Resource": "*"}]
    })
    .to_string()
}

/// `Put{User,Role,Group}Policy` of the inline policy `send-mail` on `mailer`.
fn put_policy(event_name: &str, policy_document: &str) -> R {
    iam(event_name)
        .params(json!({"policyName": "send-mail", "policyDocument": policy_document}))
        .set(
            &["requestParameters", target_param(event_name)],
            json!("mailer"),
        )
}

/// Percent-encodes every byte but the unreserved ones.
fn url_encoded(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn create_user(name: &str) -> R {
    iam("CreateUser").params(json!({ "userName": name }))
}

fn create_access_key(name: &str) -> R {
    iam("CreateAccessKey").params(json!({ "userName": name }))
}

fn forwarding(enabled: Value) -> R {
    ses("SetIdentityFeedbackForwardingEnabled")
        .params(json!({"identity": "example.com", "forwardingEnabled": enabled}))
}

fn forwarding_v2(enabled: Value) -> R {
    ses("PutEmailIdentityFeedbackAttributes")
        .params(json!({"emailIdentity": "example.com", "emailForwardingEnabled": enabled}))
}

fn notification_topic(topic: Option<&str>) -> R {
    let mut params = json!({"identity": "example.com", "notificationType": "Bounce"});
    if let Some(topic) = topic {
        params["snsTopic"] = json!(topic);
    }
    ses("SetIdentityNotificationTopic").params(params)
}

fn delete_event_destination(configuration_set: &str) -> R {
    ses("DeleteConfigurationSetEventDestination").params(json!({
        "configurationSetName": configuration_set,
        "eventDestinationName": "bounces-to-sns"
    }))
}

/// The same call by callers that are never principals: an AWS service, a call made on the
/// user's behalf by a service (`invokedBy`, same user ARN), and a service-linked role.
fn service_callers(record: &R, tag: &str) -> Vec<R> {
    vec![
        record
            .clone()
            .id(&format!("{tag}-aws-service"))
            .user(json!({"type": "AWSService", "invokedBy": "ses.amazonaws.com"})),
        record.clone().id(&format!("{tag}-invoked-by")).set(
            &["userIdentity", "invokedBy"],
            json!("cloudformation.amazonaws.com"),
        ),
        record
            .clone()
            .id(&format!("{tag}-service-linked"))
            .session("AWSServiceRoleForAmazonSES", "ses"),
    ]
}

/// A detail of a signal (`null` when absent).
fn detail<'a>(signal: &'a Signal, name: &str) -> &'a Value {
    signal
        .details
        .as_ref()
        .and_then(|d| d.get(name))
        .unwrap_or(&Value::Null)
}

fn the_one<'a>(signals: &'a [Signal], rule: &str) -> &'a Signal {
    let of = of_rule(signals, rule);
    assert_eq!(
        of.len(),
        1,
        "one {rule} signal expected: {:?}",
        fired(signals)
    );
    of[0]
}

fn stages(signal: &Signal) -> Vec<&str> {
    detail(signal, "stages")
        .as_array()
        .map(|list| list.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

fn related(signal: &Signal) -> BTreeSet<&str> {
    signal
        .related_event_ids
        .iter()
        .map(String::as_str)
        .collect()
}

// The chain: one stage per builder, by a session of the role `ops`.

fn recon(id: &str) -> R {
    ses("GetSendQuota").id(id).session("ops", "s1")
}

fn sandbox_exit(id: &str) -> R {
    production_access("eu-west-1").id(id).session("ops", "s2")
}

fn verify_domain(id: &str) -> R {
    ses("VerifyDomainIdentity")
        .params(json!({"domain": "phish.example"}))
        .id(id)
        .session("ops", "s1")
        .region("ap-southeast-2")
}

fn enable_sending(id: &str) -> R {
    sending_v1(json!(true))
        .id(id)
        .session("ops", "s2")
        .region("eu-west-1")
}

/// The attack of the issue, in event-time order, by two sessions of one role across three
/// regions: reconnaissance, sandbox exit, a new sender identity, sending on, an SMTP user, the
/// identity deleted.
fn attack() -> Vec<R> {
    vec![
        recon("recon").at(0),
        sandbox_exit("exit").at(1),
        verify_domain("verify").at(2),
        enable_sending("send").at(3),
        create_user(SMTP_USER_NAME)
            .id("smtp")
            .session("ops", "s1")
            .at(4),
        ses("DeleteIdentity")
            .params(json!({"identity": "phish.example"}))
            .id("delete")
            .session("ops", "s2")
            .region("ap-southeast-2")
            .at(5),
    ]
}

/// Recon and a new identity by the leaked user, then `third`: a chain exactly when `third`
/// reaches a decisive stage.
fn chain_with(third: R) -> Vec<Signal> {
    run(&[
        ses("GetSendQuota").id("c-recon").at(0),
        ses("VerifyEmailIdentity")
            .params(json!({"emailAddress": "x@phish.example"}))
            .id("c-identity")
            .at(1),
        third.id("c-third").at(2),
    ])
}

/// `scan --format jsonl ARGS -` with `records` on stdin: the (rule_id, event_id) of its
/// signals.
fn scan_cli(args: &[&str], records: &[R]) -> Vec<(String, String)> {
    let text: String = records.iter().map(|r| format!("{}\n", r.0)).collect();
    let output = Command::new(env!("CARGO_BIN_EXE_sesguard"))
        .arg("scan")
        .args(["--format", "jsonl", "--quiet"])
        .args(args)
        .arg("-")
        .write_stdin(text)
        .output()
        .expect("run sesguard");
    let stdout = String::from_utf8(output.stdout).expect("utf-8");
    assert!(
        output.status.success(),
        "exit {:?}: {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
        .lines()
        .map(|line| {
            let signal: Value = serde_json::from_str(line).expect("a JSON signal");
            let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
            (text(&signal["rule_id"]), text(&signal["event_id"]))
        })
        .collect()
}

fn cli_count(pairs: &[(String, String)], rule: &str) -> usize {
    pairs.iter().filter(|(r, _)| r == rule).count()
}

// ---------------------------------------------------------------- metadata

#[test]
fn each_new_rule_has_the_severity_of_the_table() {
    let signals = run(&attack());
    let signals = [
        signals,
        run(&burst(&REGIONS[..3], 0, "b")),
        run(&[attach("AttachUserPolicy", SES_FULL_ACCESS)]),
        run(&[forwarding(json!(false))]),
    ]
    .concat();
    for (rule, severity) in [
        (PRODUCTION_ACCESS, "medium"),
        (BURST, "high"),
        (SENDING, "medium"),
        (FULL_ACCESS, "high"),
        (SMTP_USER, "medium"),
        (FEEDBACK, "medium"),
        (CHAIN, "critical"),
    ] {
        let of = of_rule(&signals, rule);
        assert!(!of.is_empty(), "no {rule} signal: {:?}", fired(&signals));
        for signal in of {
            assert_eq!(signal.severity.as_str(), severity, "{rule}");
        }
    }
}

/// Signals of every new rule, for the tests of what every signal carries.
fn one_signal_of_each_new_rule() -> Vec<Signal> {
    let signals = [
        run(&attack()),
        run(&burst(&REGIONS[..3], 0, "b")),
        run(&[
            attach("AttachUserPolicy", SES_FULL_ACCESS).ip("198.51.100.66"),
            forwarding(json!(false)).ip("198.51.100.66"),
        ]),
    ]
    .concat();
    for rule in CHAIN_RULES {
        assert!(
            count(&signals, rule) > 0,
            "no {rule} signal: {:?}",
            fired(&signals)
        );
    }
    signals
        .into_iter()
        .filter(|s| CHAIN_RULES.contains(&s.rule_id.as_str()))
        .collect()
}

#[test]
fn every_new_signal_keeps_all_the_fields_of_todays_signals() {
    for signal in one_signal_of_each_new_rule() {
        let value: Value = serde_json::from_str(&signal.to_json()).expect("json");
        for field in SIGNAL_FIELDS {
            assert!(
                value.get(field).is_some(),
                "{} has no {field}: {value}",
                signal.rule_id
            );
        }
        assert_eq!(value["rule_id"], signal.rule_id);
        let triage = value["triage"].as_array().expect("triage is a list");
        assert!(!triage.is_empty(), "{}: no triage", signal.rule_id);
        for step in triage {
            let step = step.as_str().expect("a triage step is text");
            assert!(!step.contains("{{@"), "{}: {step}", signal.rule_id);
        }
    }
}

#[test]
fn every_new_signal_adds_details_an_object() {
    let mut signals = one_signal_of_each_new_rule();
    // A request that holds none of the fields production access reports.
    signals.extend(run(&[
        ses("PutAccountDetails").params(json!({"productionAccessEnabled": true}))
    ]));
    let mut without = BTreeSet::new();
    for signal in signals {
        let value: Value = serde_json::from_str(&signal.to_json()).expect("json");
        if !value.get("details").is_some_and(Value::is_object) {
            without.insert(signal.rule_id.clone());
        }
    }
    assert!(
        without.is_empty(),
        "signals without a details object: {without:?}"
    );
}

#[test]
fn detail_strings_are_capped_like_the_other_fields() {
    let long = format!("https://{}.example", "a".repeat(10_000));
    let signals = run(&[
        ses("PutAccountDetails").params(json!({
            "productionAccessEnabled": true,
            "websiteURL": long,
            "useCaseDescription": long,
            "additionalContactEmailAddresses": [long],
        })),
        create_user(&format!("ses-smtp-user.{long}")),
        iam("PutUserPolicy").params(json!({
            "userName": long,
            "policyName": long,
            "policyDocument": document("Allow", json!("ses:*")),
        })),
    ]);
    let mut strings = 0;
    for signal in &signals {
        for value in signal.details.iter().flat_map(|d| d.values()) {
            let texts: Vec<&str> = match value {
                Value::String(text) => vec![text],
                Value::Array(list) => list.iter().filter_map(Value::as_str).collect(),
                _ => Vec::new(),
            };
            for text in texts.into_iter().filter(|t| t.len() > 100) {
                strings += 1;
                assert!(
                    text.len() <= sesguard::text::MAX_FIELD_BYTES + 64,
                    "{}: a detail of {} bytes",
                    signal.rule_id,
                    text.len()
                );
            }
        }
    }
    // website_url, use_case_description, the contact, the SMTP user, the target and the policy.
    assert_eq!(strings, 6, "{:?}", fired(&signals));
}

#[test]
fn the_tor_flag_is_set_on_new_signals_from_a_tor_exit() {
    let list = sesguard::config::TorList::parse("198.51.100.66\n").expect("list");
    let mut config = config("");
    config.tor = list;
    let engine = sesguard::Engine::new(config);
    let from_tor = |r: R| r.ip("198.51.100.66");
    let signals = run_with(
        &engine,
        &[
            from_tor(production_access("us-east-1")).at_seconds(0),
            from_tor(production_access("us-east-2")).at_seconds(1),
            from_tor(production_access("us-west-1")).at_seconds(2),
            from_tor(sending_v1(json!(true))).at(1),
            from_tor(attach("AttachUserPolicy", SES_FULL_ACCESS)).at(2),
            from_tor(create_user(SMTP_USER_NAME)).at(3),
            from_tor(forwarding(json!(false))).at(4),
        ],
    );
    for rule in CHAIN_RULES {
        let of = of_rule(&signals, rule);
        assert!(!of.is_empty(), "no {rule}: {:?}", fired(&signals));
        assert!(of.iter().all(|s| s.subject.tor), "{rule}");
    }
    // The flag changes no severity of these rules.
    assert_eq!(
        the_one(&signals, PRODUCTION_ACCESS).severity.as_str(),
        "medium"
    );
}

// ---------------------------------------------------------------- ses-production-access-requested

#[test]
fn production_access_fires_on_put_account_details_with_production_access_enabled_true() {
    let signals = run(&[production_access("us-east-1")]);
    let signal = the_one(&signals, PRODUCTION_ACCESS);
    assert_eq!(signal.severity.as_str(), "medium");
    assert_eq!(signal.subject.event_id, "pad-us-east-1");
    assert_eq!(signal.subject.event_name, "PutAccountDetails");
    assert_eq!(signal.subject.principal.as_deref(), Some(LEAKED));
}

#[test]
fn production_access_reads_the_strings_true_in_any_case_and_the_upper_camel_key() {
    for (i, params) in [
        json!({"productionAccessEnabled": "true"}),
        json!({"productionAccessEnabled": "TRUE"}),
        json!({"productionAccessEnabled": "True"}),
        json!({"ProductionAccessEnabled": true}),
        json!({"ProductionAccessEnabled": "true"}),
    ]
    .into_iter()
    .enumerate()
    {
        let signals = run(&[ses("PutAccountDetails").params(params.clone()).at(i as i64)]);
        assert_eq!(count(&signals, PRODUCTION_ACCESS), 1, "{params}");
    }
}

#[test]
fn production_access_gives_no_signal_when_production_access_enabled_is_false_or_absent() {
    for params in [
        json!({"productionAccessEnabled": false}),
        json!({"productionAccessEnabled": "false"}),
        json!({"ProductionAccessEnabled": "FALSE"}),
        json!({"mailType": "MARKETING", "websiteURL": "https://shop.example"}),
        Value::Null,
    ] {
        let signals = run(&[ses("PutAccountDetails").params(params.clone())]);
        assert_eq!(count(&signals, PRODUCTION_ACCESS), 0, "{params}");
    }
}

#[test]
fn production_access_requires_the_ses_event_source() {
    let other = production_access("us-east-1").source("sesv2.amazonaws.com");
    assert!(run(&[other]).is_empty());
}

#[test]
fn production_access_details_hold_whatever_of_the_request_fields_the_request_holds() {
    let signals = run(&[ses("PutAccountDetails").params(json!({
        "productionAccessEnabled": true,
        "mailType": "TRANSACTIONAL",
        "websiteURL": "https://shop.example",
        "useCaseDescription": "order confirmations",
        "contactLanguage": "EN",
        "additionalContactEmailAddresses": ["ops@shop.example", "owner@mail.example"],
    }))]);
    let signal = the_one(&signals, PRODUCTION_ACCESS);
    assert_eq!(detail(signal, "mail_type"), "TRANSACTIONAL");
    assert_eq!(detail(signal, "website_url"), "https://shop.example");
    assert_eq!(
        detail(signal, "use_case_description"),
        "order confirmations"
    );
    assert_eq!(detail(signal, "contact_language"), "EN");
    assert_eq!(
        detail(signal, "additional_contact_email_addresses"),
        &json!(["ops@shop.example", "owner@mail.example"])
    );

    // Only the website given: only website_url.
    let signals = run(&[ses("PutAccountDetails").params(json!({
        "productionAccessEnabled": true,
        "websiteURL": "https://shop.example",
    }))]);
    let signal = the_one(&signals, PRODUCTION_ACCESS);
    assert_eq!(detail(signal, "website_url"), "https://shop.example");
    for absent in [
        "mail_type",
        "use_case_description",
        "contact_language",
        "additional_contact_email_addresses",
    ] {
        assert!(detail(signal, absent).is_null(), "{absent}");
    }
}

#[test]
fn production_access_details_read_the_upper_camel_spelling_of_the_request_fields() {
    let signals = run(&[ses("PutAccountDetails").params(json!({
        "ProductionAccessEnabled": true,
        "MailType": "MARKETING",
        "WebsiteURL": "https://shop.example",
        "UseCaseDescription": "newsletters",
        "ContactLanguage": "JA",
    }))]);
    let signal = the_one(&signals, PRODUCTION_ACCESS);
    assert_eq!(detail(signal, "mail_type"), "MARKETING");
    assert_eq!(detail(signal, "website_url"), "https://shop.example");
    assert_eq!(detail(signal, "use_case_description"), "newsletters");
    assert_eq!(detail(signal, "contact_language"), "JA");
}

#[test]
fn production_access_fires_on_a_failed_call_with_its_error_code() {
    let signals = run(&[production_access("us-east-1").error("AccessDeniedException")]);
    let signal = the_one(&signals, PRODUCTION_ACCESS);
    assert_eq!(
        signal.subject.error_code.as_deref(),
        Some("AccessDeniedException")
    );
}

#[test]
fn production_access_sent_to_17_regions_gives_one_signal() {
    let signals = run(&burst(&REGIONS, 0, "pad"));
    assert_eq!(event_ids(&signals, PRODUCTION_ACCESS), ["pad-us-east-1"]);
}

#[test]
fn production_access_dedups_per_account_and_principal_within_dedup_minutes() {
    let signals = run(&[
        production_access("us-east-1").id("first").at(0),
        production_access("eu-west-1").id("other-region").at(1),
        production_access("us-east-1")
            .id("other-principal")
            .user_arn("arn:aws:iam::111122223333:user/other")
            .at(2),
        production_access("us-east-1")
            .id("other-account")
            .account("444455556666")
            .at(3),
        production_access("us-east-1").id("within").at(59),
        production_access("us-east-1").id("after-window").at(60),
    ]);
    assert_eq!(
        event_ids(&signals, PRODUCTION_ACCESS),
        ["first", "other-principal", "other-account", "after-window"]
    );
}

#[test]
fn production_access_dedup_follows_the_dedup_minutes_setting() {
    let records = [
        production_access("us-east-1").id("a").at(0),
        production_access("us-east-1").id("b").at(20),
    ];
    let short = run_with(&engine("dedup_minutes = 15"), &records);
    assert_eq!(event_ids(&short, PRODUCTION_ACCESS), ["a", "b"]);
    assert_eq!(event_ids(&run(&records), PRODUCTION_ACCESS), ["a"]);
}

#[test]
fn production_access_never_fires_for_aws_service_callers() {
    let signals = run(&service_callers(&production_access("us-east-1"), "pa"));
    assert!(signals.is_empty(), "{:?}", fired(&signals));
}

#[test]
fn production_access_suppressed_for_itself_leaves_the_burst() {
    let engine = engine(
        "[[suppressions]]\nrule = \"ses-production-access-requested\"\nprincipal = \"*:user/ses-ops-leaked\"\n",
    );
    let signals = run_with(&engine, &burst(&REGIONS[..3], 0, "b"));
    assert_eq!(count(&signals, PRODUCTION_ACCESS), 0);
    assert_eq!(count(&signals, BURST), 1);
}

#[test]
fn a_suppressed_production_access_request_leaves_no_state_that_hides_a_later_one() {
    let engine = engine("[[suppressions]]\nsource_ip = \"203.0.113.0/24\"\n");
    let signals = run_with(
        &engine,
        &[
            production_access("us-east-1")
                .id("from-office")
                .ip("203.0.113.7")
                .at(0),
            production_access("us-east-1")
                .id("from-attacker")
                .ip("198.51.100.23")
                .at(5),
        ],
    );
    assert_eq!(event_ids(&signals, PRODUCTION_ACCESS), ["from-attacker"]);
}

// ---------------------------------------------------------------- ses-sandbox-exit-burst

#[test]
fn a_burst_in_17_regions_within_10_seconds_gives_one_burst_signal_and_one_production_access_signal()
{
    let records: Vec<R> = REGIONS
        .iter()
        .zip(0..)
        .map(|(region, i)| production_access(region).at_seconds(i * 10 / 16))
        .collect();
    let signals = run(&records);
    assert_eq!(count(&signals, BURST), 1, "{:?}", fired(&signals));
    assert_eq!(count(&signals, PRODUCTION_ACCESS), 1);
    assert_eq!(signals.len(), 2, "{:?}", fired(&signals));
    // It fires on the third region, the event whose evaluation first makes it true.
    let signal = the_one(&signals, BURST);
    assert_eq!(signal.severity.as_str(), "high");
    assert_eq!(signal.subject.event_id, "pad-us-west-1");
    assert_eq!(
        detail(signal, "regions"),
        &json!(["us-east-1", "us-east-2", "us-west-1"])
    );
    assert_eq!(
        related(signal),
        BTreeSet::from(["pad-us-east-1", "pad-us-east-2"])
    );
}

#[test]
fn burst_details_list_the_regions_sorted() {
    let signals = run(&[
        production_access("us-west-2").at_seconds(0),
        production_access("eu-west-1").at_seconds(1),
        production_access("ap-south-1").at_seconds(2),
    ]);
    let signal = the_one(&signals, BURST);
    assert_eq!(
        detail(signal, "regions"),
        &json!(["ap-south-1", "eu-west-1", "us-west-2"])
    );
}

#[test]
fn burst_related_event_ids_hold_one_event_of_each_other_region_in_the_span() {
    let signals = run(&[
        production_access("us-east-1").id("a1").at_seconds(0),
        production_access("us-east-1").id("a2").at_seconds(10),
        production_access("eu-west-1").id("b").at_seconds(20),
        production_access("ap-south-1").id("c").at_seconds(30),
    ]);
    let signal = the_one(&signals, BURST);
    assert_eq!(signal.subject.event_id, "c");
    let ids = related(signal);
    assert_eq!(ids.len(), 2, "{ids:?}");
    assert!(ids.contains("b"), "{ids:?}");
    assert!(ids.contains("a1") ^ ids.contains("a2"), "{ids:?}");
}

#[test]
fn two_regions_give_no_burst() {
    let signals = run(&[
        production_access("us-east-1").at_seconds(0),
        production_access("eu-west-1").at_seconds(1),
        production_access("us-east-1").id("again").at_seconds(2),
    ]);
    assert_eq!(count(&signals, BURST), 0, "{:?}", fired(&signals));
}

#[test]
fn three_regions_over_7_minutes_give_no_burst_in_either_order() {
    let records = [
        production_access("us-east-1").at_seconds(0),
        production_access("eu-west-1").at_seconds(210),
        production_access("ap-south-1").at_seconds(420),
    ];
    assert_eq!(count(&run(&records), BURST), 0);
    let mut reversed = records.to_vec();
    reversed.reverse();
    assert_eq!(count(&run(&reversed), BURST), 0);
}

#[test]
fn burst_events_arriving_in_reverse_order_give_exactly_one_burst() {
    let mut records = burst(&REGIONS[..3], 0, "r");
    records.reverse();
    let signals = run(&records);
    let signal = the_one(&signals, BURST);
    assert_eq!(
        detail(signal, "regions"),
        &json!(["us-east-1", "us-east-2", "us-west-1"])
    );
    // It fires on the event whose evaluation first makes it true: the last delivered.
    assert_eq!(signal.subject.event_id, "r-us-east-1");
    assert_eq!(
        related(signal),
        BTreeSet::from(["r-us-east-2", "r-us-west-1"])
    );

    let mut all = burst(&REGIONS, 0, "all");
    all.reverse();
    let signals = run(&all);
    assert_eq!(count(&signals, BURST), 1, "{:?}", fired(&signals));
    assert_eq!(count(&signals, PRODUCTION_ACCESS), 1);
}

#[test]
fn three_principals_in_one_region_each_give_no_burst() {
    let signals = run(&[
        production_access("us-east-1")
            .user_arn("arn:aws:iam::111122223333:user/a")
            .at_seconds(0),
        production_access("eu-west-1")
            .user_arn("arn:aws:iam::111122223333:user/b")
            .at_seconds(1),
        production_access("ap-south-1")
            .user_arn("arn:aws:iam::111122223333:user/c")
            .at_seconds(2),
    ]);
    assert_eq!(count(&signals, BURST), 0, "{:?}", fired(&signals));
    assert_eq!(count(&signals, PRODUCTION_ACCESS), 3);
}

#[test]
fn a_burst_is_one_principal_of_one_account() {
    let across_accounts = run(&[
        production_access("us-east-1").at_seconds(0),
        production_access("eu-west-1").at_seconds(1),
        production_access("ap-south-1")
            .account("444455556666")
            .at_seconds(2),
    ]);
    assert_eq!(count(&across_accounts, BURST), 0);
    // Two sessions of one role are one principal.
    let sessions = run(&[
        production_access("us-east-1")
            .session("ops", "s1")
            .at_seconds(0),
        production_access("eu-west-1")
            .session("ops", "s2")
            .at_seconds(1),
        production_access("ap-south-1")
            .session("ops", "s3")
            .at_seconds(2),
    ]);
    let signal = the_one(&sessions, BURST);
    assert_eq!(signal.subject.principal.as_deref(), Some(OPS_ROLE));
}

#[test]
fn a_failed_put_account_details_counts_toward_a_burst() {
    let signals = run(&[
        production_access("us-east-1").at_seconds(0),
        production_access("eu-west-1").at_seconds(1),
        production_access("ap-south-1")
            .error("AccessDeniedException")
            .at_seconds(2),
    ]);
    let signal = the_one(&signals, BURST);
    assert_eq!(
        signal.subject.error_code.as_deref(),
        Some("AccessDeniedException")
    );
}

#[test]
fn put_account_details_with_any_parameters_counts_toward_a_burst() {
    let signals = run(&[
        ses("PutAccountDetails")
            .params(json!({"productionAccessEnabled": false}))
            .id("a")
            .region("us-east-1")
            .at_seconds(0),
        ses("PutAccountDetails")
            .params(json!({"mailType": "MARKETING"}))
            .id("b")
            .region("eu-west-1")
            .at_seconds(1),
        ses("PutAccountDetails")
            .id("c")
            .region("ap-south-1")
            .at_seconds(2),
    ]);
    assert_eq!(event_ids(&signals, BURST), ["c"]);
    assert_eq!(count(&signals, PRODUCTION_ACCESS), 0);
}

#[test]
fn no_second_burst_within_dedup_minutes_but_a_new_burst_after_it_fires_again() {
    let mut records = burst(&REGIONS[..3], 0, "first");
    records.extend(burst(&REGIONS[3..6], 30 * 60, "second"));
    records.extend(burst(&REGIONS[6..9], 62 * 60, "third"));
    let signals = run(&records);
    assert_eq!(
        event_ids(&signals, BURST),
        ["first-us-west-1", "third-eu-central-1"]
    );
}

#[test]
fn burst_dedup_is_per_account_and_principal() {
    let mut records = burst(&REGIONS[..3], 0, "leaked");
    records.extend(
        burst(&REGIONS[..3], 10, "other")
            .into_iter()
            .map(|r| r.user_arn("arn:aws:iam::111122223333:user/other")),
    );
    records.extend(
        burst(&REGIONS[..3], 20, "account")
            .into_iter()
            .map(|r| r.account("444455556666")),
    );
    assert_eq!(count(&run(&records), BURST), 3);
}

#[test]
fn burst_dedup_follows_the_dedup_minutes_setting() {
    let mut records = burst(&REGIONS[..3], 0, "first");
    records.extend(burst(&REGIONS[3..6], 30 * 60, "second"));
    let signals = run_with(&engine("dedup_minutes = 15"), &records);
    assert_eq!(count(&signals, BURST), 2, "{:?}", fired(&signals));
}

#[test]
fn the_sandbox_exit_regions_setting_sets_how_many_regions_make_a_burst() {
    let four = engine("sandbox_exit_regions = 4");
    assert_eq!(
        count(&run_with(&four, &burst(&REGIONS[..3], 0, "b")), BURST),
        0
    );
    let signals = run_with(&four, &burst(&REGIONS[..4], 0, "b"));
    let signal = the_one(&signals, BURST);
    assert_eq!(signal.subject.event_id, "b-us-west-2");
    assert_eq!(detail(signal, "regions").as_array().map(Vec::len), Some(4));
    let two = engine("sandbox_exit_regions = 2");
    assert_eq!(
        count(&run_with(&two, &burst(&REGIONS[..2], 0, "b")), BURST),
        1
    );
}

#[test]
fn the_sandbox_exit_window_setting_sets_the_span_of_a_burst() {
    let over_7_minutes = [
        production_access("us-east-1").at_seconds(0),
        production_access("eu-west-1").at_seconds(210),
        production_access("ap-south-1").at_seconds(420),
    ];
    let ten = engine("sandbox_exit_window_minutes = 10");
    assert_eq!(count(&run_with(&ten, &over_7_minutes), BURST), 1);
    let over_2_minutes = [
        production_access("us-east-1").at_seconds(0),
        production_access("eu-west-1").at_seconds(60),
        production_access("ap-south-1").at_seconds(120),
    ];
    assert_eq!(count(&run(&over_2_minutes), BURST), 1);
    let one = engine("sandbox_exit_window_minutes = 1");
    assert_eq!(count(&run_with(&one, &over_2_minutes), BURST), 0);
}

#[test]
fn scan_flags_set_the_burst_regions_and_window() {
    let three = burst(&REGIONS[..3], 0, "b");
    assert_eq!(cli_count(&scan_cli(&[], &three), BURST), 1);
    assert_eq!(
        cli_count(&scan_cli(&["--sandbox-exit-regions", "4"], &three), BURST),
        0
    );
    let over_7_minutes = [
        production_access("us-east-1").at_seconds(0),
        production_access("eu-west-1").at_seconds(210),
        production_access("ap-south-1").at_seconds(420),
    ];
    assert_eq!(cli_count(&scan_cli(&[], &over_7_minutes), BURST), 0);
    assert_eq!(
        cli_count(
            &scan_cli(&["--sandbox-exit-window-minutes", "10"], &over_7_minutes),
            BURST
        ),
        1
    );
}

#[test]
fn aws_service_callers_never_fire_or_count_toward_a_burst() {
    let mut records = Vec::new();
    for (i, region) in REGIONS[..3].iter().enumerate() {
        records.extend(service_callers(
            &production_access(region).at_seconds(i as i64),
            region,
        ));
    }
    let signals = run(&records);
    assert!(signals.is_empty(), "{:?}", fired(&signals));
    // The leaked user in two regions, and a call made on its behalf by a service in a third.
    let signals = run(&[
        production_access("us-east-1").at_seconds(0),
        production_access("eu-west-1").at_seconds(1),
        production_access("ap-south-1")
            .set(
                &["userIdentity", "invokedBy"],
                json!("cloudformation.amazonaws.com"),
            )
            .at_seconds(2),
    ]);
    assert_eq!(count(&signals, BURST), 0, "{:?}", fired(&signals));
}

// ---------------------------------------------------------------- ses-sending-enabled

#[test]
fn sending_enabled_fires_on_update_account_sending_enabled_with_enabled_true() {
    let signals = run(&[sending_v1(json!(true))]);
    let signal = the_one(&signals, SENDING);
    assert_eq!(signal.severity.as_str(), "medium");
    assert_eq!(signal.subject.event_name, "UpdateAccountSendingEnabled");
}

#[test]
fn sending_enabled_fires_on_put_account_sending_attributes_with_sending_enabled_true() {
    let signals = run(&[sending_v2(json!(true))]);
    let signal = the_one(&signals, SENDING);
    assert_eq!(signal.subject.event_name, "PutAccountSendingAttributes");
}

#[test]
fn sending_enabled_reads_string_booleans_and_upper_camel_keys() {
    for record in [
        sending_v1(json!("true")),
        sending_v1(json!("TRUE")),
        ses("UpdateAccountSendingEnabled").params(json!({"Enabled": true})),
        sending_v2(json!("True")),
        ses("PutAccountSendingAttributes").params(json!({"SendingEnabled": "true"})),
    ] {
        let params = record.0["requestParameters"].clone();
        assert_eq!(count(&run(&[record]), SENDING), 1, "{params}");
    }
}

#[test]
fn sending_enabled_gives_no_signal_when_enabled_is_false_or_absent() {
    for record in [
        sending_v1(json!(false)),
        sending_v1(json!("false")),
        sending_v2(json!(false)),
        sending_v2(json!("FALSE")),
        ses("UpdateAccountSendingEnabled"),
        ses("PutAccountSendingAttributes"),
        // The v1 flag on the v2 call, and the other way round.
        ses("PutAccountSendingAttributes").params(json!({"enabled": true})),
        ses("UpdateAccountSendingEnabled").params(json!({"sendingEnabled": true})),
    ] {
        let params = record.0["requestParameters"].clone();
        assert_eq!(count(&run(&[record]), SENDING), 0, "{params}");
    }
}

#[test]
fn sending_enabled_fires_on_a_failed_call_with_its_error_code() {
    let signals = run(&[sending_v1(json!(true)).error("AccessDenied")]);
    let signal = the_one(&signals, SENDING);
    assert_eq!(signal.subject.error_code.as_deref(), Some("AccessDenied"));
}

#[test]
fn sending_enabled_does_not_exempt_infrastructure_as_code_user_agents() {
    for agent in [
        "Terraform/1.7",
        "APN/1.0 HashiCorp/1.0 Terraform/1.7.0 (+https://www.terraform.io) terraform-provider-aws/5.40.0",
        "aws-sdk-go-v2/1.25.0 Pulumi/3.100.0",
        "aws-cdk/2.130.0",
        "cloudformation.amazonaws.com",
    ] {
        let signals = run(&[sending_v1(json!(true)).agent(agent)]);
        assert_eq!(count(&signals, SENDING), 1, "{agent}");
    }
}

#[test]
fn sending_enabled_dedups_per_account_region_and_principal() {
    let signals = run(&[
        sending_v1(json!(true)).id("first").at(0),
        sending_v2(json!(true)).id("v2-same-key").at(1),
        sending_v1(json!(true))
            .id("other-region")
            .region("eu-west-1")
            .at(2),
        sending_v1(json!(true))
            .id("other-principal")
            .user_arn("arn:aws:iam::111122223333:user/other")
            .at(3),
        sending_v1(json!(true))
            .id("other-account")
            .account("444455556666")
            .at(4),
        sending_v1(json!(true)).id("within").at(59),
        sending_v1(json!(true)).id("after-window").at(60),
    ]);
    assert_eq!(
        event_ids(&signals, SENDING),
        [
            "first",
            "other-region",
            "other-principal",
            "other-account",
            "after-window"
        ]
    );
}

#[test]
fn sending_enabled_never_fires_for_aws_service_callers() {
    let signals = run(&service_callers(&sending_v1(json!(true)), "se"));
    assert!(signals.is_empty(), "{:?}", fired(&signals));
}

// ---------------------------------------------------------------- ses-full-access-granted

#[test]
fn full_access_fires_high_on_amazon_ses_full_access_attached_to_a_user_role_or_group() {
    for (event_name, target_type) in [
        ("AttachUserPolicy", "user"),
        ("AttachRolePolicy", "role"),
        ("AttachGroupPolicy", "group"),
    ] {
        let signals = run(&[attach(event_name, SES_FULL_ACCESS)]);
        let signal = the_one(&signals, FULL_ACCESS);
        assert_eq!(signal.severity.as_str(), "high", "{event_name}");
        assert_eq!(detail(signal, "target_type"), target_type, "{event_name}");
        assert_eq!(detail(signal, "target"), "mailer", "{event_name}");
        assert_eq!(detail(signal, "policy"), SES_FULL_ACCESS, "{event_name}");
        assert_eq!(signal.subject.event_source, "iam.amazonaws.com");
        assert_eq!(signal.subject.region, "us-east-1");
    }
}

#[test]
fn full_access_recognises_the_managed_policy_in_any_partition() {
    for arn in [
        "arn:aws-cn:iam::aws:policy/AmazonSESFullAccess",
        "arn:aws-us-gov:iam::aws:policy/AmazonSESFullAccess",
    ] {
        let signals = run(&[attach("AttachUserPolicy", arn)]);
        let signal = the_one(&signals, FULL_ACCESS);
        assert_eq!(detail(signal, "policy"), arn);
    }
}

#[test]
fn full_access_is_medium_when_the_call_failed() {
    let signals = run(&[attach("AttachRolePolicy", SES_FULL_ACCESS).error("AccessDenied")]);
    let signal = the_one(&signals, FULL_ACCESS);
    assert_eq!(signal.severity.as_str(), "medium");
    assert_eq!(signal.subject.error_code.as_deref(), Some("AccessDenied"));
}

#[test]
fn full_access_gives_no_signal_for_other_managed_policies() {
    for arn in [
        "arn:aws:iam::aws:policy/AmazonSESReadOnlyAccess",
        "arn:aws:iam::aws:policy/AdministratorAccess",
        // A customer policy of the same name is not the managed policy.
        "arn:aws:iam::111122223333:policy/AmazonSESFullAccess",
    ] {
        let signals = run(&[attach("AttachUserPolicy", arn)]);
        assert!(signals.is_empty(), "{arn}: {:?}", fired(&signals));
    }
}

#[test]
fn full_access_reads_the_upper_camel_spelling_of_policy_arn_and_target() {
    let signals =
        run(&[iam("AttachUserPolicy")
            .params(json!({"PolicyArn": SES_FULL_ACCESS, "UserName": "mailer"}))]);
    let signal = the_one(&signals, FULL_ACCESS);
    assert_eq!(detail(signal, "target"), "mailer");
}

#[test]
fn full_access_fires_on_an_inline_policy_given_as_a_url_encoded_string_with_send_raw_email_in_a_list()
 {
    let doc = url_encoded(&document(
        "Allow",
        json!(["s3:GetObject", "ses:SendRawEmail"]),
    ));
    assert!(doc.starts_with("%7B"), "{doc}");
    for (event_name, target_type) in [
        ("PutUserPolicy", "user"),
        ("PutRolePolicy", "role"),
        ("PutGroupPolicy", "group"),
    ] {
        let signals = run(&[put_policy(event_name, &doc)]);
        let signal = the_one(&signals, FULL_ACCESS);
        assert_eq!(signal.severity.as_str(), "high");
        assert_eq!(detail(signal, "target_type"), target_type, "{event_name}");
        assert_eq!(detail(signal, "target"), "mailer");
        assert_eq!(
            detail(signal, "policy"),
            "send-mail",
            "the inline policy's name"
        );
    }
}

#[test]
fn full_access_fires_on_an_inline_policy_given_as_plain_json_text() {
    let doc = document("Allow", json!("ses:SendEmail"));
    assert_eq!(
        count(&run(&[put_policy("PutUserPolicy", &doc)]), FULL_ACCESS),
        1
    );
}

#[test]
fn full_access_reads_inline_actions_as_case_insensitive_iam_wildcards_of_ses_sending() {
    for (action, fires) in [
        (json!("ses:*"), true),
        (json!("*"), false),
        (json!("ses:Send*"), true),
        (json!("ses:SendRawEmail"), true),
        (json!("SES:SENDRAWEMAIL"), true),
        (json!("ses:send?mail"), true),
        (json!("ses:Get*"), false),
        (json!("s3:*"), false),
        (json!("ses:SendBounce"), false),
        (json!(["ses:Get*", "ses:List*"]), false),
        (json!(["s3:*", "ses:*"]), true),
        (json!(["*"]), false),
    ] {
        let doc = document("Allow", action.clone());
        let signals = run(&[put_policy("PutRolePolicy", &doc)]);
        assert_eq!(count(&signals, FULL_ACCESS), usize::from(fires), "{action}");
    }
}

#[test]
fn full_access_ignores_deny_statements() {
    let deny = document("Deny", json!(["ses:*"]));
    assert!(run(&[put_policy("PutUserPolicy", &deny)]).is_empty());
    // One statement denies sending, another allows it: the Allow fires.
    let mixed = json!({
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Deny", "Action": "ses:SendEmail", "Resource": "*"},
            {"Effect": "Allow", "Action": ["ses:SendRawEmail"], "Resource": "*"}
        ]
    })
    .to_string();
    assert_eq!(
        count(&run(&[put_policy("PutUserPolicy", &mixed)]), FULL_ACCESS),
        1
    );
}

#[test]
fn full_access_dedups_per_account_principal_target_and_policy() {
    let other_target = |r: R| r.set(&["requestParameters", "userName"], json!("someone-else"));
    let doc = document("Allow", json!("ses:*"));
    let signals = run(&[
        attach("AttachUserPolicy", SES_FULL_ACCESS)
            .id("first")
            .at(0),
        attach("AttachUserPolicy", SES_FULL_ACCESS)
            .id("again")
            .at(1),
        other_target(attach("AttachUserPolicy", SES_FULL_ACCESS))
            .id("other-target")
            .at(2),
        put_policy("PutUserPolicy", &doc).id("other-policy").at(3),
        attach("AttachUserPolicy", SES_FULL_ACCESS)
            .id("other-principal")
            .user_arn("arn:aws:iam::111122223333:user/other")
            .at(4),
        attach("AttachUserPolicy", SES_FULL_ACCESS)
            .id("other-account")
            .account("444455556666")
            .at(5),
        attach("AttachUserPolicy", SES_FULL_ACCESS)
            .id("after-window")
            .at(60),
    ]);
    assert_eq!(
        event_ids(&signals, FULL_ACCESS),
        [
            "first",
            "other-target",
            "other-policy",
            "other-principal",
            "other-account",
            "after-window"
        ]
    );
}

#[test]
fn full_access_never_fires_for_aws_service_callers() {
    let signals = run(&service_callers(
        &attach("AttachRolePolicy", SES_FULL_ACCESS),
        "fa",
    ));
    assert!(signals.is_empty(), "{:?}", fired(&signals));
}

// ---------------------------------------------------------------- ses-smtp-user-created

#[test]
fn smtp_user_fires_on_create_user_of_a_console_smtp_user() {
    let signals = run(&[create_user(SMTP_USER_NAME)]);
    let signal = the_one(&signals, SMTP_USER);
    assert_eq!(signal.severity.as_str(), "medium");
    assert_eq!(detail(signal, "target"), SMTP_USER_NAME);
    assert_eq!(signal.subject.region, "us-east-1");
}

#[test]
fn smtp_user_compares_the_prefix_in_any_case() {
    for name in ["SES-SMTP-USER.x", "Ses-Smtp-User.20260302-101500"] {
        let signals = run(&[create_user(name)]);
        assert_eq!(detail(the_one(&signals, SMTP_USER), "target"), name);
    }
}

#[test]
fn smtp_user_gives_no_signal_for_other_user_names() {
    for name in [
        "deploy-bot",
        "my-ses-smtp-user",
        "ses-smtp",
        "ses_smtp_user.x",
    ] {
        let signals = run(&[create_user(name)]);
        assert!(signals.is_empty(), "{name}: {:?}", fired(&signals));
    }
    assert!(run(&[iam("CreateUser")]).is_empty());
}

#[test]
fn smtp_user_fires_on_create_access_key_for_an_smtp_user() {
    let signals = run(&[create_access_key("ses-smtp-user.20250101-000000")]);
    let signal = the_one(&signals, SMTP_USER);
    assert_eq!(signal.subject.event_name, "CreateAccessKey");
    assert_eq!(detail(signal, "target"), "ses-smtp-user.20250101-000000");
    // A key for another user, or for the caller itself (no userName): no signal.
    assert!(run(&[create_access_key("deploy-bot")]).is_empty());
    assert!(run(&[iam("CreateAccessKey")]).is_empty());
}

#[test]
fn smtp_user_reads_the_upper_camel_user_name() {
    let signals = run(&[iam("CreateUser").params(json!({"UserName": SMTP_USER_NAME}))]);
    assert_eq!(count(&signals, SMTP_USER), 1);
}

#[test]
fn smtp_user_fires_on_a_failed_call_with_its_error_code() {
    let signals = run(&[create_user(SMTP_USER_NAME).error("EntityAlreadyExists")]);
    let signal = the_one(&signals, SMTP_USER);
    assert_eq!(
        signal.subject.error_code.as_deref(),
        Some("EntityAlreadyExists")
    );
}

#[test]
fn smtp_user_dedups_per_account_event_name_and_target() {
    let signals = run(&[
        create_user(SMTP_USER_NAME).id("first").at(0),
        create_user(SMTP_USER_NAME)
            .id("same-by-another-principal")
            .user_arn("arn:aws:iam::111122223333:user/other")
            .at(1),
        create_access_key(SMTP_USER_NAME).id("other-call").at(2),
        create_user("ses-smtp-user.other").id("other-target").at(3),
        create_user(SMTP_USER_NAME)
            .id("other-account")
            .account("444455556666")
            .at(4),
        create_user(SMTP_USER_NAME).id("after-window").at(60),
    ]);
    assert_eq!(
        event_ids(&signals, SMTP_USER),
        [
            "first",
            "other-call",
            "other-target",
            "other-account",
            "after-window"
        ]
    );
}

#[test]
fn smtp_user_never_fires_for_aws_service_callers() {
    let signals = run(&service_callers(&create_user(SMTP_USER_NAME), "smtp"));
    assert!(signals.is_empty(), "{:?}", fired(&signals));
}

// ---------------------------------------------------------------- ses-feedback-tampering

#[test]
fn feedback_forwarding_false_fires_and_true_does_not_v1_and_v2() {
    for (record, name) in [
        (
            forwarding(json!(false)),
            "SetIdentityFeedbackForwardingEnabled",
        ),
        (
            forwarding_v2(json!(false)),
            "PutEmailIdentityFeedbackAttributes",
        ),
    ] {
        let signals = run(&[record]);
        let signal = the_one(&signals, FEEDBACK);
        assert_eq!(signal.severity.as_str(), "medium");
        assert_eq!(signal.subject.event_name, name);
        assert_eq!(signal.subject.identity.as_deref(), Some("example.com"));
    }
    for record in [forwarding(json!(true)), forwarding_v2(json!(true))] {
        let name = record.0["eventName"].clone();
        assert!(run(&[record]).is_empty(), "{name}");
    }
}

#[test]
fn feedback_forwarding_reads_string_booleans_and_upper_camel_keys() {
    for record in [
        forwarding(json!("false")),
        forwarding(json!("FALSE")),
        forwarding_v2(json!("False")),
        ses("SetIdentityFeedbackForwardingEnabled")
            .params(json!({"Identity": "example.com", "ForwardingEnabled": false})),
        ses("PutEmailIdentityFeedbackAttributes")
            .params(json!({"emailIdentity": "example.com", "EmailForwardingEnabled": "false"})),
    ] {
        let params = record.0["requestParameters"].clone();
        assert_eq!(count(&run(&[record]), FEEDBACK), 1, "{params}");
    }
    for record in [
        forwarding(json!("TRUE")),
        ses("SetIdentityFeedbackForwardingEnabled").params(json!({"identity": "example.com"})),
    ] {
        let params = record.0["requestParameters"].clone();
        assert_eq!(count(&run(&[record]), FEEDBACK), 0, "{params}");
    }
}

#[test]
fn removing_a_notification_topic_fires_and_setting_one_does_not() {
    let signals = run(&[notification_topic(None)]);
    let signal = the_one(&signals, FEEDBACK);
    assert_eq!(signal.subject.identity.as_deref(), Some("example.com"));
    let set = notification_topic(Some("arn:aws:sns:us-east-1:111122223333:bounces"));
    assert!(run(&[set]).is_empty());
}

#[test]
fn deleting_a_configuration_set_event_destination_fires_naming_the_configuration_set() {
    let signals = run(&[delete_event_destination("prod-mail")]);
    let signal = the_one(&signals, FEEDBACK);
    assert_eq!(signal.subject.identity.as_deref(), Some("prod-mail"));
    assert_eq!(
        signal.subject.event_name,
        "DeleteConfigurationSetEventDestination"
    );
}

#[test]
fn feedback_tampering_fires_on_a_failed_call_with_its_error_code() {
    let signals = run(&[forwarding(json!(false)).error("AccessDenied")]);
    let signal = the_one(&signals, FEEDBACK);
    assert_eq!(signal.subject.error_code.as_deref(), Some("AccessDenied"));
}

#[test]
fn feedback_tampering_dedups_per_account_region_principal_event_name_and_identity() {
    let other_identity = |r: R| r.set(&["requestParameters", "identity"], json!("other.example"));
    let signals = run(&[
        forwarding(json!(false)).id("first").at(0),
        forwarding(json!(false)).id("again").at(1),
        notification_topic(None).id("other-call").at(2),
        other_identity(forwarding(json!(false)))
            .id("other-identity")
            .at(3),
        forwarding(json!(false))
            .id("other-region")
            .region("eu-west-1")
            .at(4),
        forwarding(json!(false))
            .id("other-principal")
            .user_arn("arn:aws:iam::111122223333:user/other")
            .at(5),
        forwarding(json!(false))
            .id("other-account")
            .account("444455556666")
            .at(6),
        delete_event_destination("prod-mail").id("set-a").at(7),
        delete_event_destination("prod-mail")
            .id("set-a-again")
            .at(8),
        delete_event_destination("bulk-mail").id("set-b").at(9),
        forwarding(json!(false)).id("after-window").at(60),
    ]);
    assert_eq!(
        event_ids(&signals, FEEDBACK),
        [
            "first",
            "other-call",
            "other-identity",
            "other-region",
            "other-principal",
            "other-account",
            "set-a",
            "set-b",
            "after-window"
        ]
    );
}

#[test]
fn feedback_tampering_never_fires_for_aws_service_callers() {
    let signals = run(&service_callers(&forwarding(json!(false)), "fb"));
    assert!(signals.is_empty(), "{:?}", fired(&signals));
}

// ---------------------------------------------------------------- ses-abuse-chain

#[test]
fn the_chain_across_three_regions_and_two_sessions_of_one_role_fires_once_critical() {
    let signals = run(&attack());
    let signal = the_one(&signals, CHAIN);
    assert_eq!(signal.severity.as_str(), "critical");
    // The third stage completes it.
    assert_eq!(signal.subject.event_id, "verify");
    assert_eq!(signal.subject.principal.as_deref(), Some(OPS_ROLE));
    assert_eq!(stages(signal), ["recon", "sandbox-exit", "identity"]);
    assert_eq!(related(signal), BTreeSet::from(["recon", "exit"]));
    // The other rules of the attack fired too.
    for rule in [PRODUCTION_ACCESS, SENDING, SMTP_USER] {
        assert_eq!(count(&signals, rule), 1, "{rule}: {:?}", fired(&signals));
    }
}

#[test]
fn chain_stages_are_listed_in_order_of_their_first_event_time() {
    // Delivered identity first, then the sandbox exit, then recon (twice: the earlier one last).
    let signals = run(&[
        verify_domain("verify").at(20),
        sandbox_exit("exit").at(10),
        recon("recon-late").at(5),
        recon("recon-early").at(0),
    ]);
    let signal = the_one(&signals, CHAIN);
    assert_eq!(signal.subject.event_id, "recon-late");
    assert_eq!(stages(signal), ["recon", "sandbox-exit", "identity"]);
    assert_eq!(related(signal), BTreeSet::from(["exit", "verify"]));

    let signals = run(&[
        recon("recon-early").at(0),
        recon("recon-late").at(5),
        enable_sending("send").at(7),
        sandbox_exit("exit").at(10),
    ]);
    let signal = the_one(&signals, CHAIN);
    assert_eq!(stages(signal), ["recon", "sending", "sandbox-exit"]);
}

#[test]
fn chain_related_event_ids_hold_the_first_event_of_each_other_stage() {
    let signals = run(&[
        recon("recon-2").at(5),
        recon("recon-1").at(0),
        sandbox_exit("exit-1").at(6),
        sandbox_exit("exit-2").at(7),
        verify_domain("verify").at(8),
    ]);
    let signal = the_one(&signals, CHAIN);
    assert_eq!(signal.subject.event_id, "verify");
    assert_eq!(related(signal), BTreeSet::from(["recon-1", "exit-1"]));
}

#[test]
fn the_mail_administrator_who_lists_verifies_and_deletes_identities_reaches_no_chain() {
    let admin = |r: R| r.session("MailAdmin", "alice");
    let signals = run(&[
        admin(ses("ListIdentities")).at(0),
        admin(ses("GetIdentityVerificationAttributes")).at(1),
        admin(ses("ListVerifiedEmailAddresses")).at(2),
        admin(verify("news@example.com")).at(3),
        admin(ses("VerifyDomainIdentity").params(json!({"domain": "example.com"}))).at(4),
        admin(ses("GetEmailIdentity").params(json!({"emailIdentity": "example.com"}))).at(5),
        admin(delete("old@example.com")).at(6),
        admin(ses("DeleteVerifiedEmailAddress").params(json!({"emailAddress": "a@example.com"})))
            .at(7),
        admin(forwarding(json!(false))).at(8),
    ]);
    assert_eq!(count(&signals, CHAIN), 0, "{:?}", fired(&signals));
}

#[test]
fn a_chain_needs_three_distinct_stages() {
    let signals = run(&[
        recon("recon-1").at(0),
        ses("ListIdentities")
            .id("recon-2")
            .session("ops", "s1")
            .at(1),
        sandbox_exit("exit-1").at(2),
        production_access("us-east-1")
            .id("exit-2")
            .session("ops", "s1")
            .at(3),
    ]);
    assert_eq!(count(&signals, CHAIN), 0, "{:?}", fired(&signals));
}

#[test]
fn a_chain_is_one_principal_of_one_account() {
    let across_principals = run(&[
        recon("recon").at(0),
        sandbox_exit("exit").at(1),
        verify_domain("verify").session("other-role", "s1").at(2),
    ]);
    assert_eq!(count(&across_principals, CHAIN), 0);
    let across_accounts = run(&[
        recon("recon").at(0),
        sandbox_exit("exit").at(1),
        verify_domain("verify").account("444455556666").at(2),
    ]);
    assert_eq!(count(&across_accounts, CHAIN), 0);
}

#[test]
fn each_decisive_stage_completes_a_chain_with_recon_and_identity() {
    let doc = url_encoded(&document("Allow", json!(["ses:SendRawEmail"])));
    for (third, stage) in [
        (production_access("eu-west-1"), "sandbox-exit"),
        (ses("PutAccountDetails").region("eu-west-1"), "sandbox-exit"),
        (sending_v1(json!(true)), "sending"),
        (sending_v2(json!("true")), "sending"),
        (attach("AttachUserPolicy", SES_FULL_ACCESS), "privilege"),
        (attach("AttachGroupPolicy", SES_FULL_ACCESS), "privilege"),
        (put_policy("PutRolePolicy", &doc), "privilege"),
        (create_user(SMTP_USER_NAME), "privilege"),
        (create_access_key(SMTP_USER_NAME), "privilege"),
    ] {
        let name = third.0["eventName"].clone();
        let signals = chain_with(third);
        let signal = the_one(&signals, CHAIN);
        assert_eq!(stages(signal), ["recon", "identity", stage], "{name}");
        assert_eq!(signal.subject.event_id, "c-third", "{name}");
        assert_eq!(
            related(signal),
            BTreeSet::from(["c-recon", "c-identity"]),
            "{name}"
        );
    }
}

#[test]
fn attaching_administrator_access_is_no_privilege_stage() {
    let signals = chain_with(attach(
        "AttachUserPolicy",
        "arn:aws:iam::aws:policy/AdministratorAccess",
    ));
    assert_eq!(count(&signals, CHAIN), 0, "{:?}", fired(&signals));
    let bare_star = put_policy("PutUserPolicy", &document("Allow", json!("*")));
    assert_eq!(count(&chain_with(bare_star), CHAIN), 0);
    let read_only = attach(
        "AttachUserPolicy",
        "arn:aws:iam::aws:policy/AmazonSESReadOnlyAccess",
    );
    assert_eq!(count(&chain_with(read_only), CHAIN), 0);
    assert_eq!(count(&chain_with(create_user("deploy-bot")), CHAIN), 0);
}

#[test]
fn enabled_false_is_no_sending_stage() {
    assert_eq!(count(&chain_with(sending_v1(json!(false))), CHAIN), 0);
    assert_eq!(count(&chain_with(sending_v2(json!("false"))), CHAIN), 0);
}

#[test]
fn every_recon_call_is_a_recon_stage() {
    let mut calls: Vec<R> = [
        "GetAccount",
        "GetAccountSendingEnabled",
        "ListIdentities",
        "ListEmailIdentities",
        "GetSendQuota",
        "GetIdentityVerificationAttributes",
        "ListVerifiedEmailAddresses",
        "GetEmailIdentity",
        "GetSendStatistics",
        "ListReceiptRuleSets",
        "DescribeActiveReceiptRuleSet",
    ]
    .iter()
    .map(|name| ses(name))
    .collect();
    for name in [
        "ListServiceQuotas",
        "GetServiceQuota",
        "ListAWSDefaultServiceQuotas",
    ] {
        calls.push(
            ses(name)
                .source("servicequotas.amazonaws.com")
                .params(json!({"serviceCode": "SES"})),
        );
    }
    for call in calls {
        let name = call.0["eventName"].clone();
        let signals = run(&[
            call.id("r").at(0),
            production_access("eu-west-1").id("x").at(1),
            verify("a@phish.example").id("v").at(2),
        ]);
        let signal = the_one(&signals, CHAIN);
        assert_eq!(
            stages(signal),
            ["recon", "sandbox-exit", "identity"],
            "{name}"
        );
    }
}

#[test]
fn a_service_quotas_call_about_another_service_is_no_recon_stage() {
    let signals = run(&[
        ses("ListServiceQuotas")
            .source("servicequotas.amazonaws.com")
            .params(json!({"serviceCode": "ec2"}))
            .at(0),
        production_access("eu-west-1").at(1),
        verify("a@phish.example").at(2),
    ]);
    assert_eq!(count(&signals, CHAIN), 0, "{:?}", fired(&signals));
}

#[test]
fn every_identity_call_is_an_identity_stage() {
    for call in [
        ses("VerifyEmailIdentity").params(json!({"emailAddress": "a@phish.example"})),
        ses("VerifyEmailAddress").params(json!({"emailAddress": "a@phish.example"})),
        ses("VerifyDomainIdentity").params(json!({"domain": "phish.example"})),
        ses("CreateEmailIdentity").params(json!({"emailIdentity": "phish.example"})),
    ] {
        let name = call.0["eventName"].clone();
        let signals = run(&[
            ses("GetAccount").id("r").at(0),
            sending_v1(json!(true)).id("s").at(1),
            call.id("i").at(2),
        ]);
        let signal = the_one(&signals, CHAIN);
        assert_eq!(stages(signal), ["recon", "sending", "identity"], "{name}");
    }
}

#[test]
fn deletions_and_feedback_tampering_are_the_evasion_stage() {
    for (call, stage) in [
        (delete("a@phish.example"), true),
        (
            ses("DeleteEmailIdentity").params(json!({"emailIdentity": "phish.example"})),
            true,
        ),
        (
            ses("DeleteVerifiedEmailAddress").params(json!({"emailAddress": "a@phish.example"})),
            true,
        ),
        (forwarding(json!(false)), true),
        (forwarding_v2(json!(false)), true),
        (notification_topic(None), true),
        (delete_event_destination("prod-mail"), true),
        (forwarding(json!(true)), false),
        (
            notification_topic(Some("arn:aws:sns:us-east-1:111122223333:b")),
            false,
        ),
    ] {
        let name = call.0["eventName"].clone();
        let signals = run(&[
            ses("GetAccount").id("r").at(0),
            production_access("eu-west-1").id("x").at(1),
            call.id("e").at(2),
        ]);
        if stage {
            let signal = the_one(&signals, CHAIN);
            assert_eq!(
                stages(signal),
                ["recon", "sandbox-exit", "evasion"],
                "{name}"
            );
        } else {
            assert_eq!(count(&signals, CHAIN), 0, "{name}");
        }
    }
}

#[test]
fn three_decisive_stages_alone_make_a_chain() {
    let signals = run(&[
        sandbox_exit("exit").at(0),
        enable_sending("send").at(1),
        create_user(SMTP_USER_NAME)
            .id("smtp")
            .session("ops", "s1")
            .at(2),
    ]);
    let signal = the_one(&signals, CHAIN);
    assert_eq!(stages(signal), ["sandbox-exit", "sending", "privilege"]);
}

#[test]
fn failed_calls_count_as_stages() {
    let signals = run(&[
        recon("recon").error("AccessDenied").at(0),
        sandbox_exit("exit").error("AccessDenied").at(1),
        verify_domain("verify").error("AccessDenied").at(2),
    ]);
    assert_eq!(event_ids(&signals, CHAIN), ["verify"]);
}

#[test]
fn a_chain_whose_stages_span_25_hours_gives_no_signal() {
    let records = [
        recon("recon").at(0),
        sandbox_exit("exit").at(12 * 60),
        verify_domain("verify").at(25 * 60),
    ];
    assert_eq!(count(&run(&records), CHAIN), 0);
    let mut reversed = records.to_vec();
    reversed.reverse();
    assert_eq!(count(&run(&reversed), CHAIN), 0);
    // The same stages within 23 hours: a chain.
    let within = [
        recon("recon").at(0),
        sandbox_exit("exit").at(12 * 60),
        verify_domain("verify").at(23 * 60),
    ];
    assert_eq!(event_ids(&run(&within), CHAIN), ["verify"]);
}

#[test]
fn the_chain_window_hours_setting_sets_the_span_of_a_chain() {
    let over_3_hours = [
        recon("recon").at(0),
        sandbox_exit("exit").at(60),
        verify_domain("verify").at(180),
    ];
    assert_eq!(count(&run(&over_3_hours), CHAIN), 1);
    let two = engine("chain_window_hours = 2");
    assert_eq!(count(&run_with(&two, &over_3_hours), CHAIN), 0);
    let over_25_hours = [
        recon("recon").at(0),
        sandbox_exit("exit").at(12 * 60),
        verify_domain("verify").at(25 * 60),
    ];
    let thirty = engine("chain_window_hours = 30");
    assert_eq!(count(&run_with(&thirty, &over_25_hours), CHAIN), 1);
}

#[test]
fn scan_flag_sets_the_chain_window() {
    let over_25_hours = [
        recon("recon").at(0),
        sandbox_exit("exit").at(12 * 60),
        verify_domain("verify").at(25 * 60),
    ];
    assert_eq!(cli_count(&scan_cli(&[], &over_25_hours), CHAIN), 0);
    assert_eq!(
        cli_count(
            &scan_cli(&["--chain-window-hours", "30"], &over_25_hours),
            CHAIN
        ),
        1
    );
}

#[test]
fn the_lambda_reads_the_three_settings_from_its_environment() {
    let env = |name: &str| {
        match name {
            TABLE_NAME => Some("table"),
            TOPIC_ARN => Some("arn:aws:sns:us-east-1:111122223333:t"),
            SANDBOX_EXIT_REGIONS => Some("4"),
            SANDBOX_EXIT_WINDOW_MINUTES => Some("10"),
            CHAIN_WINDOW_HOURS => Some("30"),
            _ => None,
        }
        .map(str::to_owned)
    };
    let lambda = LambdaConfig::from_env(env).expect("config");
    let config = lambda.engine_config(None).expect("engine config");
    assert_eq!(config.settings.sandbox_exit_regions, 4);
    assert_eq!(config.settings.sandbox_exit_window, 10 * 60);
    assert_eq!(config.settings.chain_window, 30 * 3600);
    let defaults = sesguard::Settings::default();
    assert_eq!(defaults.sandbox_exit_regions, 3);
    assert_eq!(defaults.sandbox_exit_window, 5 * 60);
    assert_eq!(defaults.chain_window, 24 * 3600);
}

#[test]
fn a_chain_delivered_out_of_order_gives_exactly_one_signal() {
    let mut reversed = attack();
    reversed.reverse();
    let signals = run(&reversed);
    assert_eq!(count(&signals, CHAIN), 1, "{:?}", fired(&signals));

    // Interleaved: every other event first.
    let attack = attack();
    let shuffled: Vec<R> = [1, 3, 5, 0, 2, 4]
        .iter()
        .map(|&i| attack[i].clone())
        .collect();
    let signals = run(&shuffled);
    let signal = the_one(&signals, CHAIN);
    // exit (sandbox-exit), send (sending), delete (evasion): three stages, two decisive.
    assert_eq!(signal.subject.event_id, "delete");
    assert_eq!(stages(signal), ["sandbox-exit", "sending", "evasion"]);
}

#[test]
fn no_second_chain_within_chain_window_hours_but_one_after_it() {
    let hour = 60;
    let mut records = attack();
    records.extend([
        recon("recon-2").at(10 * hour),
        sandbox_exit("exit-2").at(10 * hour + 1),
        verify_domain("verify-2").at(10 * hour + 2),
        recon("recon-3").at(26 * hour),
        sandbox_exit("exit-3").at(26 * hour + 1),
        verify_domain("verify-3").at(26 * hour + 2),
    ]);
    let signals = run(&records);
    // The third run of stages: its recon, 26 hours on, completes a chain with the second's
    // stages (within 24 hours of it), more than 24 hours after the first signal.
    assert_eq!(event_ids(&signals, CHAIN), ["verify", "recon-3"]);
}

#[test]
fn chain_dedup_is_per_account_and_principal() {
    let mut records = attack();
    records.extend(attack().into_iter().map(|r| {
        let id = format!("other-{}", r.0["eventID"].as_str().unwrap_or(""));
        r.session("other-role", "x").id(&id)
    }));
    assert_eq!(count(&run(&records), CHAIN), 2);
}

#[test]
fn an_event_suppressed_for_the_chain_does_not_count_toward_it() {
    let engine =
        engine("[[suppressions]]\nrule = \"ses-abuse-chain\"\nsource_ip = \"203.0.113.0/24\"\n");
    let records = [
        recon("recon").at(0),
        sandbox_exit("exit").ip("203.0.113.7").at(1),
        verify_domain("verify").at(2),
        enable_sending("send").at(3),
    ];
    let signals = run_with(&engine, &records);
    // Without the sandbox exit, the chain is complete only when sending is turned on.
    let signal = the_one(&signals, CHAIN);
    assert_eq!(signal.subject.event_id, "send");
    assert_eq!(stages(signal), ["recon", "identity", "sending"]);
    assert!(!related(signal).contains("exit"));
    // The suppression names the chain only.
    assert_eq!(event_ids(&signals, PRODUCTION_ACCESS), ["exit"]);
    // Without the suppression, the sandbox exit completes it earlier.
    assert_eq!(event_ids(&run(&records), CHAIN), ["verify"]);
}

#[test]
fn an_event_suppressed_by_a_suppression_naming_no_rule_does_not_count_toward_a_chain() {
    let engine = engine("[[suppressions]]\nsource_ip = \"203.0.113.0/24\"\n");
    let signals = run_with(
        &engine,
        &[
            recon("recon").at(0),
            sandbox_exit("exit").ip("203.0.113.7").at(1),
            verify_domain("verify").at(2),
            enable_sending("send").at(3),
        ],
    );
    let signal = the_one(&signals, CHAIN);
    assert_eq!(signal.subject.event_id, "send");
    assert_eq!(stages(signal), ["recon", "identity", "sending"]);
    assert_eq!(count(&signals, PRODUCTION_ACCESS), 0);
}

#[test]
fn a_suppressed_chain_event_leaves_no_state_that_hides_a_later_chain() {
    // The role's events are suppressed for the chain until 10:00 (event time): those before
    // leave no stage behind, so the chain after 10:00 is made of the later events alone.
    let engine = engine(
        "[[suppressions]]\nrule = \"ses-abuse-chain\"\nprincipal = \"*:role/ops\"\nexpires = \"2026-03-02T10:00:00Z\"\n",
    );
    let signals = run_with(
        &engine,
        &[
            recon("recon").at(0),
            sandbox_exit("exit").at(1),
            verify_domain("verify").at(2),
            recon("recon-later").at(61),
            sandbox_exit("exit-later").at(62),
            verify_domain("verify-later").at(63),
        ],
    );
    assert_eq!(event_ids(&signals, CHAIN), ["verify-later"]);
    let signal = the_one(&signals, CHAIN);
    assert_eq!(
        related(signal),
        BTreeSet::from(["recon-later", "exit-later"])
    );
}

#[test]
fn a_stage_counts_even_when_its_own_rule_was_suppressed_for_itself() {
    let engine =
        engine("[[suppressions]]\nrule = \"ses-sending-enabled\"\nprincipal = \"*:role/ops\"\n");
    let signals = run_with(
        &engine,
        &[
            recon("recon").at(0),
            enable_sending("send").at(1),
            verify_domain("verify").at(2),
        ],
    );
    assert_eq!(count(&signals, SENDING), 0, "{:?}", fired(&signals));
    let signal = the_one(&signals, CHAIN);
    assert_eq!(stages(signal), ["recon", "sending", "identity"]);
}

#[test]
fn a_stage_counts_even_when_its_own_rule_deduplicated_it() {
    // With a one-hour chain window, only the second (deduplicated) sending call is within the
    // hour of the recon and the identity.
    let engine = engine("chain_window_hours = 1");
    let signals = run_with(
        &engine,
        &[
            enable_sending("send-1").at(0),
            enable_sending("send-2").at(50),
            recon("recon").at(100),
            verify_domain("verify").at(105),
        ],
    );
    assert_eq!(event_ids(&signals, SENDING), ["send-1"]);
    let signal = the_one(&signals, CHAIN);
    assert_eq!(signal.subject.event_id, "verify");
    assert_eq!(stages(signal), ["sending", "recon", "identity"]);
    assert_eq!(related(signal), BTreeSet::from(["send-2", "recon"]));
}

#[test]
fn aws_service_callers_never_count_toward_a_chain() {
    let mut records = Vec::new();
    for (i, record) in [
        ses("GetSendQuota"),
        production_access("eu-west-1"),
        verify("a@phish.example"),
        sending_v1(json!(true)),
    ]
    .iter()
    .enumerate()
    {
        records.extend(service_callers(
            &record.clone().at(i as i64),
            &format!("s{i}"),
        ));
    }
    let signals = run(&records);
    for rule in CHAIN_RULES {
        assert_eq!(count(&signals, rule), 0, "{rule}: {:?}", fired(&signals));
    }
    // The leaked user's recon and identity, and a sandbox exit a service made on its behalf.
    let signals = run(&[
        ses("GetSendQuota").at(0),
        verify("a@phish.example").at(1),
        production_access("eu-west-1")
            .set(
                &["userIdentity", "invokedBy"],
                json!("cloudformation.amazonaws.com"),
            )
            .at(2),
    ]);
    assert_eq!(count(&signals, CHAIN), 0, "{:?}", fired(&signals));
}

// ---------------------------------------------------------------- duplicates

/// Every new call, by the leaked user, a minute apart: signals of every new rule.
fn every_new_call() -> Vec<R> {
    let doc = url_encoded(&document("Allow", json!(["ses:SendRawEmail"])));
    let mut calls = vec![
        ses("GetEmailIdentity").params(json!({"emailIdentity": "phish.example"})),
        ses("GetSendStatistics"),
        ses("ListVerifiedEmailAddresses"),
        ses("ListReceiptRuleSets"),
        ses("DescribeActiveReceiptRuleSet"),
        production_access("us-east-1"),
        production_access("eu-west-1"),
        production_access("ap-south-1"),
        sending_v1(json!(true)),
        sending_v2(json!(true)).region("eu-west-1"),
        attach("AttachUserPolicy", SES_FULL_ACCESS),
        attach("AttachRolePolicy", SES_FULL_ACCESS),
        attach("AttachGroupPolicy", SES_FULL_ACCESS),
        put_policy("PutUserPolicy", &doc),
        put_policy("PutRolePolicy", &doc),
        put_policy("PutGroupPolicy", &doc),
        create_user(SMTP_USER_NAME),
        create_access_key(SMTP_USER_NAME),
        forwarding(json!(false)),
        forwarding_v2(json!(false)),
        notification_topic(None),
        delete_event_destination("prod-mail"),
    ];
    for (i, call) in calls.iter_mut().enumerate() {
        let id = format!("call-{i:02}");
        // The three PutAccountDetails within seconds: a burst.
        *call = call.clone().id(&id).at_seconds(i as i64 * 60);
        if (5..8).contains(&i) {
            *call = call.clone().at_seconds(300 + i as i64);
        }
    }
    calls
}

#[test]
fn duplicates_of_every_new_call_give_no_second_signal() {
    let calls = every_new_call();
    let once = run(&calls);
    for rule in CHAIN_RULES {
        assert!(
            count(&once, rule) > 0,
            "no {rule} signal: {:?}",
            fired(&once)
        );
    }
    // Each delivered twice in a row, then all of them again, then all in reverse.
    let mut twice = Vec::new();
    for call in &calls {
        twice.push(call.clone());
        twice.push(call.clone());
    }
    twice.extend(calls.iter().cloned());
    twice.extend(calls.iter().rev().cloned());
    let signals = run(&twice);
    assert_eq!(fired(&once), fired(&signals));
}

#[test]
fn a_duplicate_of_a_burst_event_delivered_after_a_later_burst_gives_no_second_signal() {
    let first = burst(&REGIONS[..3], 0, "first");
    let mut records = first.clone();
    records.extend(burst(&REGIONS[..3], 2 * 3600, "second"));
    records.extend(first);
    let signals = run(&records);
    assert_eq!(
        event_ids(&signals, BURST),
        ["first-us-west-1", "second-us-west-1"]
    );
}

#[test]
fn a_duplicate_of_a_chain_event_delivered_after_a_later_chain_gives_no_second_signal() {
    let mut records = attack();
    records.extend([
        recon("recon-2").at(30 * 60),
        sandbox_exit("exit-2").at(30 * 60 + 1),
        verify_domain("verify-2").at(30 * 60 + 2),
    ]);
    records.extend(attack());
    let signals = run(&records);
    assert_eq!(event_ids(&signals, CHAIN), ["verify", "verify-2"]);
}

#[test]
fn a_late_duplicate_of_a_deduplicated_call_stays_deduplicated() {
    // a fires, b falls in its dedup window, c opens the next; b delivered again afterwards
    // is still within a's window.
    let mut wrong = Vec::new();
    for (rule, call) in [
        (PRODUCTION_ACCESS, production_access("us-east-1")),
        (SENDING, sending_v1(json!(true))),
        (FULL_ACCESS, attach("AttachUserPolicy", SES_FULL_ACCESS)),
        (SMTP_USER, create_user(SMTP_USER_NAME)),
        (FEEDBACK, forwarding(json!(false))),
    ] {
        let a = call.clone().id("a").at(0);
        let b = call.clone().id("b").at(30);
        let c = call.clone().id("c").at(100);
        let signals = run(&[a, b.clone(), c, b]);
        let ids = event_ids(&signals, rule);
        if ids != ["a", "c"] {
            wrong.push(format!("{rule}: {ids:?}"));
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}

#[test]
fn windows_are_measured_in_event_time_so_an_old_archive_gives_the_same_new_signals() {
    let story = |shift_minutes: i64| {
        let mut records: Vec<R> = attack();
        records.extend(burst(&REGIONS[..3], 3600, "b"));
        let shifted: Vec<R> = records
            .into_iter()
            .map(|r| {
                let text = r.0["eventTime"].as_str().unwrap_or_default().to_owned();
                let seconds = sesguard::time::parse_event_time(&text).expect("event time");
                r.at_seconds(seconds - 1_772_442_000 + shift_minutes * 60)
            })
            .collect();
        fired(&run(&shifted))
    };
    let now = story(0);
    assert_eq!(now, story(-7 * 365 * 24 * 60));
    for rule in [PRODUCTION_ACCESS, BURST, SENDING, SMTP_USER, CHAIN] {
        assert!(now.iter().any(|(r, _)| r == rule), "{rule}: {now:?}");
    }
}
