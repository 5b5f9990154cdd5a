//! The pinned semantics of the five detections, one test per sentence of the issue, each
//! written so it fails without the behaviour it names. Records go through the same reader and
//! engine as `sesguard scan`, with the in-memory state.

mod support;

use serde_json::{Value, json};
use sesguard::config::TorList;
use sesguard::scan::scan_text;
use sesguard::{Engine, Signal};
use support::*;

/// The rule ids are a contract (signals' `rule_id`, suppressions' `rule`): the registry's ids,
/// which the tests use, must be exactly these.
#[test]
fn the_rule_ids_are_the_pinned_ones() {
    assert_eq!(
        all_rules(),
        [
            "ses-discovery-long-term-key",
            "ses-enumeration-unseen-user",
            "ses-modification",
            "ses-verify-then-delete",
            "ses-identity-deleted",
            "ses-production-access-requested",
            "ses-sandbox-exit-burst",
            "ses-sending-enabled",
            "ses-full-access-granted",
            "ses-smtp-user-created",
            "ses-feedback-tampering",
            "ses-abuse-chain",
        ]
    );
}

// ---------------------------------------------------------------- R1

#[test]
fn r1_fires_on_get_account_and_get_account_sending_enabled_by_an_akia_key() {
    for name in ["GetAccount", "GetAccountSendingEnabled"] {
        let signals = run(&[ses(name)]);
        let r1 = of_rule(&signals, R1);
        assert_eq!(r1.len(), 1, "{name}");
        assert_eq!(r1[0].severity.as_str(), "medium");
        assert_eq!(r1[0].subject.access_key_id.as_deref(), Some(AKIA));
    }
}

#[test]
fn r1_ignores_temporary_asia_keys() {
    assert_eq!(count(&run(&[ses("GetAccount").key("ASIAEXAMPLE")]), R1), 0);
}

#[test]
fn r1_ignores_other_ses_calls() {
    assert_eq!(
        count(&run(&[ses("GetSendQuota"), ses("ListIdentities")]), R1),
        0
    );
}

#[test]
fn r1_requires_the_ses_event_source_api_gateway_get_account_is_not_ses() {
    let signals = run(&[ses("GetAccount").source("apigateway.amazonaws.com")]);
    assert!(signals.is_empty(), "{:?}", fired(&signals));
}

#[test]
fn r1_counts_failed_calls_as_attempts() {
    let signals = run(&[ses("GetAccount").error("AccessDeniedException")]);
    let r1 = of_rule(&signals, R1);
    assert_eq!(r1.len(), 1);
    assert_eq!(
        r1[0].subject.error_code.as_deref(),
        Some("AccessDeniedException")
    );
}

#[test]
fn r1_and_r2_ignore_aws_service_callers_invoked_by_and_service_linked_roles() {
    let aws_service =
        ses("GetAccount").user(json!({"type": "AWSService", "invokedBy": "config.amazonaws.com"}));
    let invoked_by = ses("GetAccount").id("b").set(
        &["userIdentity", "invokedBy"],
        json!("cloudformation.amazonaws.com"),
    );
    let linked_path = ses("GetAccount")
        .id("c")
        .user_arn("arn:aws:iam::111122223333:role/aws-service-role/x.amazonaws.com/SomeRole");
    let trusted_advisor = ses("GetAccount")
        .id("d")
        .session(
            "AWSServiceRoleForTrustedAdvisor",
            "TrustedAdvisor_111122223333",
        )
        .key(AKIA);
    let signals = run(&[aws_service, invoked_by, linked_path, trusted_advisor]);
    assert_eq!(count(&signals, R1), 0, "{:?}", fired(&signals));
    assert_eq!(count(&signals, R2), 0, "{:?}", fired(&signals));
}

#[test]
fn a_user_whose_arn_merely_contains_a_service_role_path_is_a_principal() {
    // The exclusion reads the ARN's parts: this is an IAM user with an AKIA key, whatever its
    // name says.
    for arn in [
        "arn:aws:iam::111122223333:user/x:role/aws-service-role/backdoor",
        "arn:aws:iam::111122223333:user/AWSServiceRoleForBackdoor",
    ] {
        let signals = run(&[ses("GetAccount").user_arn(arn)]);
        assert_eq!(count(&signals, R1), 1, "{arn}: {:?}", fired(&signals));
        assert_eq!(count(&signals, R2), 1, "{arn}: {:?}", fired(&signals));
    }
}

#[test]
fn r1_dedups_the_same_account_principal_and_key_within_dedup_minutes_after_the_one_that_fired() {
    let signals = run(&[
        ses("GetAccount").id("a").at(0),
        ses("GetAccountSendingEnabled").id("b").at(59),
        ses("GetAccount").id("c").at(60),
        ses("GetAccount").id("d").at(61),
    ]);
    let ids: Vec<&str> = of_rule(&signals, R1)
        .iter()
        .map(|s| s.subject.event_id.as_str())
        .collect();
    // b is within 60 min of a; c opens a new window exactly 60 min after a; d is within c's.
    assert_eq!(ids, ["a", "c"]);
}

#[test]
fn r1_dedup_is_per_account_principal_and_access_key() {
    let signals = run(&[
        ses("GetAccount").id("a"),
        ses("GetAccount").id("b").key("AKIAOTHERKEY"),
        ses("GetAccount")
            .id("c")
            .user_arn("arn:aws:iam::111122223333:user/other"),
        ses("GetAccount").id("d").account("444455556666"),
    ]);
    assert_eq!(count(&signals, R1), 4);
}

#[test]
fn r1_dedup_window_follows_the_dedup_minutes_setting() {
    let records = [
        ses("GetAccount").id("a").at(0),
        ses("GetAccount").id("b").at(10),
    ];
    assert_eq!(
        count(&run_with(&engine("dedup_minutes = 5"), &records), R1),
        2
    );
    assert_eq!(
        count(&run_with(&engine("dedup_minutes = 15"), &records), R1),
        1
    );
}

// ---------------------------------------------------------------- R2

#[test]
fn r2_fires_on_the_first_sighting_of_a_principal_for_each_enumeration_call() {
    for name in [
        "GetAccount",
        "GetAccountSendingEnabled",
        "ListIdentities",
        "ListEmailIdentities",
        "GetSendQuota",
        "GetIdentityVerificationAttributes",
        "ListVerifiedEmailAddresses",
        "GetEmailIdentity",
        "GetSendStatistics",
    ] {
        let signals = run(&[ses(name)]);
        assert_eq!(count(&signals, R2), 1, "{name}");
    }
    for name in [
        "ListServiceQuotas",
        "GetServiceQuota",
        "ListAWSDefaultServiceQuotas",
    ] {
        // The service code compares case-insensitively (as the EventBridge pattern does).
        for code in ["ses", "SES", "Ses"] {
            let quotas = ses(name)
                .source("servicequotas.amazonaws.com")
                .params(json!({"serviceCode": code, "quotaCode": "L-804C8AE8"}));
            assert_eq!(count(&run(&[quotas]), R2), 1, "{name} {code}");
        }
    }
}

#[test]
fn r2_ignores_list_service_quotas_for_another_service_code() {
    let quotas = |code: Value| {
        ses("ListServiceQuotas")
            .source("servicequotas.amazonaws.com")
            .params(json!({"serviceCode": code}))
    };
    assert!(run(&[quotas(json!("ec2"))]).is_empty());
    assert!(run(&[ses("ListServiceQuotas").source("servicequotas.amazonaws.com")]).is_empty());
}

#[test]
fn r2_requires_the_ses_event_source_cognito_list_identities_is_not_ses() {
    let cognito = ses("ListIdentities")
        .source("cognito-identity.amazonaws.com")
        .params(json!({"identityPoolId": "us-east-1:x", "maxResults": 60}));
    assert!(run(&[cognito]).is_empty());
}

#[test]
fn r2_counts_failed_calls() {
    assert_eq!(
        count(&run(&[ses("ListIdentities").error("AccessDenied")]), R2),
        1
    );
}

#[test]
fn r2_fires_once_per_principal_and_a_second_sighting_is_known() {
    let signals = run(&[
        ses("ListIdentities").id("a").at(0),
        ses("GetSendQuota").id("b").at(1),
        ses("ListIdentities").id("c").at(2),
    ]);
    assert_eq!(
        fired(&of_rule_owned(&signals, R2)),
        [(R2.to_owned(), "a".to_owned())]
    );
}

fn of_rule_owned(signals: &[Signal], rule: &str) -> Vec<Signal> {
    signals
        .iter()
        .filter(|s| s.rule_id == rule)
        .cloned()
        .collect()
}

#[test]
fn r2_two_sessions_of_one_role_are_one_principal_the_session_issuer() {
    let signals = run(&[
        ses("ListEmailIdentities")
            .id("a")
            .session("MailAdmin", "alice"),
        ses("ListEmailIdentities")
            .id("b")
            .session("MailAdmin", "bob"),
        ses("ListEmailIdentities")
            .id("c")
            .session("OtherRole", "alice"),
    ]);
    let r2 = of_rule(&signals, R2);
    assert_eq!(r2.len(), 2, "{:?}", fired(&signals));
    assert_eq!(
        r2[0].subject.principal.as_deref(),
        Some("arn:aws:iam::111122223333:role/MailAdmin")
    );
    assert_eq!(
        r2[0].subject.user_arn.as_deref(),
        Some("arn:aws:sts::111122223333:assumed-role/MailAdmin/alice")
    );
    assert_eq!(
        r2[1].subject.principal.as_deref(),
        Some("arn:aws:iam::111122223333:role/OtherRole")
    );
}

#[test]
fn r2_principal_falls_back_to_user_arn_then_principal_id() {
    let no_arn = ses("ListIdentities")
        .user(json!({"type": "IAMUser", "principalId": "AIDANOARN", "accountId": "111122223333"}));
    let signals = run(&[no_arn]);
    assert_eq!(
        of_rule(&signals, R2)[0].subject.principal.as_deref(),
        Some("AIDANOARN")
    );
    // An assumed role with an empty sessionIssuer falls back to its own ARN.
    let empty_issuer = ses("ListIdentities").user(json!({
        "type": "AssumedRole",
        "arn": "arn:aws:sts::111122223333:assumed-role/R/s",
        "accountId": "111122223333",
        "sessionContext": {"sessionIssuer": {}}
    }));
    let signals = run(&[empty_issuer]);
    assert_eq!(
        of_rule(&signals, R2)[0].subject.principal.as_deref(),
        Some("arn:aws:sts::111122223333:assumed-role/R/s")
    );
}

#[test]
fn r2_state_keys_include_the_account_recipient_else_user_identity_account() {
    let in_other = ses("ListIdentities").id("b").account("444455556666");
    let no_recipient = ses("ListIdentities")
        .id("c")
        .set(&["recipientAccountId"], Value::Null)
        .set(&["userIdentity", "accountId"], json!("777788889999"));
    let signals = run(&[ses("ListIdentities").id("a"), in_other, no_recipient]);
    let accounts: Vec<&str> = of_rule(&signals, R2)
        .iter()
        .map(|s| s.subject.account_id.as_str())
        .collect();
    assert_eq!(accounts, ["111122223333", "444455556666", "777788889999"]);
}

#[test]
fn r2_gives_no_signal_while_an_event_is_less_than_learning_days_after_the_first_event() {
    let day = 24 * 60;
    let signals = run_with(
        &engine("learning_days = 7"),
        &[
            // The first event the state sees starts the learning period.
            ses("GetSendQuota")
                .id("first")
                .user_arn("arn:aws:iam::111122223333:user/app")
                .at(0),
            ses("ListIdentities")
                .id("in-learning")
                .user_arn("arn:aws:iam::111122223333:user/early")
                .at(7 * day - 1),
            ses("ListIdentities")
                .id("at-boundary")
                .user_arn("arn:aws:iam::111122223333:user/late")
                .at(7 * day),
        ],
    );
    assert_eq!(fired(&signals), [(R2.to_owned(), "at-boundary".to_owned())]);
}

#[test]
fn r2_principals_seen_during_learning_are_remembered() {
    let day = 24 * 60;
    let signals = run_with(
        &engine("learning_days = 1"),
        &[
            ses("ListIdentities").id("learned").at(0),
            ses("ListIdentities").id("after").at(2 * day),
        ],
    );
    assert_eq!(count(&signals, R2), 0, "{:?}", fired(&signals));
}

#[test]
fn r2_learning_defaults_to_zero_days() {
    assert_eq!(count(&run(&[ses("ListIdentities")]), R2), 1);
}

#[test]
fn r2_forgets_a_principal_not_seen_for_forget_days_and_fires_again() {
    let day = 24 * 60;
    let signals = run(&[
        ses("ListIdentities").id("a").at(0),
        ses("ListIdentities").id("just-before").at(28 * day - 1),
        ses("ListIdentities").id("gap-of-28-days").at(56 * day - 1),
    ]);
    let ids: Vec<&str> = of_rule(&signals, R2)
        .iter()
        .map(|s| s.subject.event_id.as_str())
        .collect();
    assert_eq!(ids, ["a", "gap-of-28-days"]);
}

#[test]
fn r2_every_sighting_refreshes_the_principal() {
    let day = 24 * 60;
    let signals = run_with(
        &engine("forget_days = 10"),
        &[
            ses("ListIdentities").id("a").at(0),
            ses("GetSendQuota").id("b").at(9 * day),
            ses("ListIdentities").id("c").at(18 * day),
            ses("ListIdentities").id("d").at(28 * day),
        ],
    );
    let ids: Vec<&str> = of_rule(&signals, R2)
        .iter()
        .map(|s| s.subject.event_id.as_str())
        .collect();
    // b and c each come 9 days after the previous sighting; d 10 days after c: forgotten.
    assert_eq!(ids, ["a", "d"]);
}

// ---------------------------------------------------------------- R3

#[test]
fn r3_fires_low_on_every_identity_modification_call_v2_and_v1() {
    for (name, params) in [
        (
            "VerifyEmailIdentity",
            json!({"emailAddress": "a@example.com"}),
        ),
        (
            "CreateEmailIdentity",
            json!({"emailIdentity": "a@example.com"}),
        ),
        ("DeleteIdentity", json!({"identity": "a@example.com"})),
        (
            "DeleteEmailIdentity",
            json!({"emailIdentity": "a@example.com"}),
        ),
        (
            "VerifyEmailAddress",
            json!({"emailAddress": "a@example.com"}),
        ),
        ("VerifyDomainIdentity", json!({"domain": "example.com"})),
        (
            "DeleteVerifiedEmailAddress",
            json!({"emailAddress": "a@example.com"}),
        ),
        // Sending authorisation for another account.
        (
            "PutIdentityPolicy",
            json!({"identity": "example.com", "policyName": "p", "policy": "{}"}),
        ),
        (
            "CreateEmailIdentityPolicy",
            json!({"emailIdentity": "example.com", "policyName": "p", "policy": "{}"}),
        ),
    ] {
        let signals = run(&[ses(name).params(params)]);
        let r3 = of_rule(&signals, R3);
        assert_eq!(r3.len(), 1, "{name}");
        assert_eq!(r3[0].severity.as_str(), "low");
        assert!(!r3[0].subject.tor);
        assert!(
            r3[0].subject.identity.is_some(),
            "{name} names its identity"
        );
    }
}

#[test]
fn r3_ignores_other_ses_calls_and_other_event_sources() {
    assert_eq!(
        count(
            &run(&[ses("VerifyDomainDkim").params(json!({"domain": "example.com"}))]),
            R3
        ),
        0
    );
    assert!(run(&[verify("a@example.com").source("sesv2.amazonaws.com")]).is_empty());
}

#[test]
fn r3_counts_failed_calls_as_attempts() {
    let signals = run(&[verify("a@example.com").error("AccessDenied")]);
    assert_eq!(count(&signals, R3), 1);
}

#[test]
fn r3_is_high_when_the_source_ip_is_on_the_tor_exit_list() {
    let list = TorList::parse("# Tor exits\n198.51.100.66\n2001:db8::66 # v6\nExitAddress 192.0.2.9 2026-03-01 10:00:00\n")
        .expect("list");
    let mut config = config("");
    config.tor = list;
    let engine = Engine::new(config);
    let signals = run_with(
        &engine,
        &[
            verify("a@example.com").id("v4").ip("198.51.100.66"),
            verify("b@example.com").id("v6").ip("2001:db8::66"),
            verify("c@example.com").id("exit-addresses").ip("192.0.2.9"),
            verify("d@example.com").id("clean").ip("198.51.100.67"),
        ],
    );
    let r3: Vec<(&str, &str, bool)> = of_rule(&signals, R3)
        .iter()
        .map(|s| {
            (
                s.subject.event_id.as_str(),
                s.severity.as_str(),
                s.subject.tor,
            )
        })
        .collect();
    assert_eq!(
        r3,
        [
            ("v4", "high", true),
            ("v6", "high", true),
            ("exit-addresses", "high", true),
            ("clean", "low", false)
        ]
    );
}

#[test]
fn r3_dedups_on_account_region_principal_event_name_and_identity() {
    let signals = run(&[
        verify("a@example.com").id("first").at(0),
        verify("A@example.com").id("same-identity-other-case").at(1),
        verify("b@example.com").id("other-identity").at(2),
        ses("VerifyEmailAddress")
            .params(json!({"emailAddress": "a@example.com"}))
            .id("other-call")
            .at(3),
        verify("a@example.com")
            .id("other-region")
            .region("eu-west-1")
            .at(4),
        verify("a@example.com")
            .id("other-principal")
            .user_arn("arn:aws:iam::111122223333:user/x")
            .at(5),
        verify("a@example.com")
            .id("other-account")
            .account("444455556666")
            .at(6),
        verify("a@example.com").id("after-window").at(61),
    ]);
    let ids: Vec<&str> = of_rule(&signals, R3)
        .iter()
        .map(|s| s.subject.event_id.as_str())
        .collect();
    assert_eq!(
        ids,
        [
            "first",
            "other-identity",
            "other-call",
            "other-region",
            "other-principal",
            "other-account",
            "after-window"
        ]
    );
}

// ---------------------------------------------------------------- R4

#[test]
fn r4_fires_high_on_a_successful_delete_of_an_identity_added_within_the_window() {
    let signals = run(&[
        verify("phish@example.net").id("add").at(0),
        delete("phish@example.net").id("del").at(35),
    ]);
    let r4 = of_rule(&signals, R4);
    assert_eq!(r4.len(), 1);
    assert_eq!(r4[0].severity.as_str(), "high");
    assert_eq!(r4[0].subject.event_id, "del", "event_id is the delete's");
    assert_eq!(r4[0].related_event_ids, ["add"]);
    assert_eq!(r4[0].subject.event_name, "DeleteIdentity");
}

#[test]
fn r4_pairs_every_add_call_with_every_delete_call() {
    let adds = [
        ses("VerifyEmailIdentity").params(json!({"emailAddress": "x@example.com"})),
        ses("VerifyEmailAddress").params(json!({"emailAddress": "x@example.com"})),
        ses("VerifyDomainIdentity").params(json!({"domain": "x@example.com"})),
        ses("CreateEmailIdentity").params(json!({"emailIdentity": "x@example.com"})),
    ];
    let deletes = [
        ses("DeleteIdentity").params(json!({"identity": "x@example.com"})),
        ses("DeleteEmailIdentity").params(json!({"emailIdentity": "x@example.com"})),
        ses("DeleteVerifiedEmailAddress").params(json!({"emailAddress": "x@example.com"})),
    ];
    for add in &adds {
        for del in &deletes {
            let signals = run(&[add.clone().id("add").at(0), del.clone().id("del").at(5)]);
            assert_eq!(
                count(&signals, R4),
                1,
                "{} then {}",
                add.0["eventName"],
                del.0["eventName"]
            );
        }
    }
}

#[test]
fn r4_requires_the_delete_after_the_add_and_within_the_window_inclusive() {
    let pair = |add_s: i64, del_s: i64| {
        count(
            &run(&[
                verify("a@example.com").id("add").at_seconds(add_s),
                delete("a@example.com").id("del").at_seconds(del_s),
            ]),
            R4,
        )
    };
    assert_eq!(pair(0, 3600), 1, "exactly 60 minutes later");
    assert_eq!(pair(0, 3601), 0, "one second past the window");
    assert_eq!(pair(0, 0), 0, "same second is not after");
    assert_eq!(pair(100, 50), 0, "delete before add");
}

#[test]
fn r4_window_follows_the_sequence_window_setting() {
    let records = [
        verify("a@example.com").id("add").at(0),
        delete("a@example.com").id("del").at(20),
    ];
    assert_eq!(
        count(
            &run_with(&engine("sequence_window_minutes = 30"), &records),
            R4
        ),
        1
    );
    assert_eq!(
        count(
            &run_with(&engine("sequence_window_minutes = 10"), &records),
            R4
        ),
        0
    );
}

#[test]
fn r4_needs_both_calls_to_succeed() {
    let failed_add = run(&[
        verify("a@example.com").id("add").error("AccessDenied"),
        delete("a@example.com").id("del").at(5),
    ]);
    assert_eq!(count(&failed_add, R4), 0);
    let failed_delete = run(&[
        verify("a@example.com").id("add"),
        delete("a@example.com")
            .id("del")
            .at(5)
            .error("AccessDenied"),
    ]);
    assert_eq!(count(&failed_delete, R4), 0);
}

#[test]
fn r4_requires_the_same_identity_account_and_region() {
    let signals = run(&[
        verify("a@example.com").id("add").at(0),
        delete("b@example.com").id("other-identity").at(5),
        delete("a@example.com")
            .id("other-region")
            .region("eu-west-1")
            .at(6),
        delete("a@example.com")
            .id("other-account")
            .account("444455556666")
            .at(7),
    ]);
    assert_eq!(count(&signals, R4), 0, "{:?}", fired(&signals));
}

#[test]
fn r4_compares_identities_lowercased_and_accepts_a_delete_by_arn() {
    let signals = run(&[
        ses("VerifyEmailAddress")
            .params(json!({"emailAddress": "Billing@Example.ORG"}))
            .id("add")
            .at(0),
        delete("arn:aws:ses:us-east-1:111122223333:identity/billing@example.org")
            .id("del")
            .at(40),
    ]);
    let r4 = of_rule(&signals, R4);
    assert_eq!(r4.len(), 1);
    assert_eq!(
        r4[0].subject.identity.as_deref(),
        Some("arn:aws:ses:us-east-1:111122223333:identity/billing@example.org"),
        "the signal shows the identity as the call named it"
    );
}

#[test]
fn r4_a_delete_that_arrives_before_its_add_still_fires_when_the_add_arrives() {
    let signals = run(&[
        delete("a@example.com").id("del").at(30),
        verify("a@example.com").id("add").at(0),
    ]);
    let r4 = of_rule(&signals, R4);
    assert_eq!(r4.len(), 1);
    assert_eq!(r4[0].subject.event_id, "del");
    assert_eq!(
        r4[0].subject.event_name, "DeleteIdentity",
        "the signal describes the delete"
    );
    assert_eq!(r4[0].related_event_ids, ["add"]);
    // Same signal, whatever the arrival order.
    let in_order = run(&[
        verify("a@example.com").id("add").at(0),
        delete("a@example.com").id("del").at(30),
    ]);
    assert_eq!(of_rule(&in_order, R4)[0].signal_id, r4[0].signal_id);
}

#[test]
fn r4_fires_at_most_once_per_delete_event() {
    // A replayed delete and add, and a second add arriving after the delete's signal: one
    // signal, about the delete, naming the add it paired with when it fired.
    let signals = run(&[
        verify("a@example.com").id("add").at(0),
        delete("a@example.com").id("del").at(10),
        delete("a@example.com").id("del").at(10),
        verify("a@example.com").id("add").at(0),
        verify("a@example.com").id("add2").at(5),
    ]);
    let pairs: Vec<(String, Vec<String>)> = of_rule(&signals, R4)
        .iter()
        .map(|s| (s.subject.event_id.clone(), s.related_event_ids.clone()))
        .collect();
    assert_eq!(pairs, [("del".to_owned(), vec!["add".to_owned()])]);
}

#[test]
fn r4_names_the_newest_twenty_adds_a_delete_pairs_with_and_counts_them_all() {
    let mut records: Vec<R> = (0..25)
        .map(|i| verify("a@example.com").id(&format!("add-{i:02}")).at(i))
        .collect();
    records.push(delete("a@example.com").id("del").at(30));
    let signals = run(&records);
    let r4 = of_rule(&signals, R4);
    assert_eq!(r4.len(), 1, "{:?}", fired(&signals));
    let expected: Vec<String> = (5..25).rev().map(|i| format!("add-{i:02}")).collect();
    assert_eq!(
        r4[0].related_event_ids, expected,
        "newest first, 20 of them"
    );
    assert_eq!(
        r4[0].details.as_ref().and_then(|d| d.get("paired_adds")),
        Some(&json!(25))
    );
    // The signal is named by the delete alone: the same id whichever adds it lists.
    let one_add = run(&[
        verify("a@example.com").id("add-24").at(24),
        delete("a@example.com").id("del").at(30),
    ]);
    assert_eq!(of_rule(&one_add, R4)[0].signal_id, r4[0].signal_id);
}

#[test]
fn r4_an_identity_verified_and_deleted_all_hour_gives_one_signal_per_delete() {
    // 300 verifies and 300 deletes of one identity in an hour: at most one signal per delete
    // (the pinned semantics used to give one per pair: 45,150 here).
    let mut records = Vec::new();
    for i in 0..300 {
        records.push(
            verify("a@example.com")
                .id(&format!("add-{i}"))
                .at_seconds(i * 12),
        );
        records.push(
            delete("a@example.com")
                .id(&format!("del-{i}"))
                .at_seconds(i * 12 + 6),
        );
    }
    let signals = run(&records);
    let r4 = of_rule(&signals, R4);
    assert_eq!(r4.len(), 300);
    // All 300 adds are within the hour before del-299; the state keeps the newest 32 of them
    // (bounded whatever the input), of which the signal names 20.
    let last = r4.iter().find(|s| s.subject.event_id == "del-299");
    let last = last.expect("del-299 fired");
    assert_eq!(last.related_event_ids.len(), 20);
    assert_eq!(last.related_event_ids[0], "add-299");
    assert_eq!(
        last.details.as_ref().and_then(|d| d.get("paired_adds")),
        Some(&json!(32))
    );
}

#[test]
fn a_bad_escape_in_the_user_agent_hides_the_record_from_no_rule() {
    // The caller writes its user agent; one it cannot encode must not drop the delete.
    let add = verify("a@example.com").id("add").at(0);
    let delete = delete("a@example.com").id("del").at(10).agent("USER-AGENT");
    let text =
        format!("{}\n{}\n", add.0, delete.0).replace("\"USER-AGENT\"", r#""aws-cli/2 \ud800""#);
    let (out, counts) = scan_text(&engine(""), "bad-escape.jsonl", text.as_bytes());
    assert!(out.problems.is_empty(), "{:?}", out.problems);
    assert_eq!(counts.malformed, 0);
    let of_delete: Vec<&str> = out
        .signals
        .iter()
        .filter(|s| s.subject.event_id == "del")
        .map(|s| s.rule_id.as_str())
        .collect();
    assert_eq!(of_delete, [R3, R4, R5]);
    for signal in out.signals.iter().filter(|s| s.subject.event_id == "del") {
        assert_eq!(
            signal.subject.user_agent.as_deref(),
            Some("aws-cli/2 \u{FFFD}")
        );
        assert!(signal.subject.text_replaced);
        assert!(signal.to_json().contains(r#""text_replaced":true"#));
    }
    let add_signal = out.signals.iter().find(|s| s.subject.event_id == "add");
    assert!(add_signal.is_some_and(|s| !s.to_json().contains("text_replaced")));
}

// ---------------------------------------------------------------- R5

#[test]
fn r5_fires_on_delete_identity_and_its_v2_twin_with_any_outcome() {
    let signals = run(&[
        delete("a@example.com").id("v1"),
        ses("DeleteEmailIdentity")
            .params(json!({"emailIdentity": "b@example.com"}))
            .id("v2"),
        delete("c@example.com").id("failed").error("AccessDenied"),
    ]);
    let r5: Vec<(&str, &str)> = of_rule(&signals, R5)
        .iter()
        .map(|s| (s.subject.event_id.as_str(), s.severity.as_str()))
        .collect();
    assert_eq!(
        r5,
        [("v1", "medium"), ("v2", "medium"), ("failed", "medium")]
    );
    assert_eq!(of_rule(&signals, R5)[0].technique, "T1070");
}

#[test]
fn r5_ignores_other_deletes_and_other_event_sources() {
    let v1_address =
        ses("DeleteVerifiedEmailAddress").params(json!({"emailAddress": "a@example.com"}));
    assert_eq!(count(&run(&[v1_address]), R5), 0);
    assert!(run(&[delete("a@example.com").source("cognito-identity.amazonaws.com")]).is_empty());
}

#[test]
fn r5_dedups_on_account_region_and_identity() {
    let signals = run(&[
        delete("a@example.com").id("first").at(0),
        ses("DeleteEmailIdentity")
            .params(json!({"emailIdentity": "A@example.com"}))
            .id("same")
            .at(1),
        delete("a@example.com")
            .id("other-principal")
            .user_arn("arn:aws:iam::111122223333:user/x")
            .at(2),
        delete("a@example.com")
            .id("other-region")
            .region("eu-west-1")
            .at(3),
        delete("b@example.com").id("other-identity").at(4),
        delete("a@example.com")
            .id("other-account")
            .account("444455556666")
            .at(5),
    ]);
    let ids: Vec<&str> = of_rule(&signals, R5)
        .iter()
        .map(|s| s.subject.event_id.as_str())
        .collect();
    assert_eq!(
        ids,
        ["first", "other-region", "other-identity", "other-account"]
    );
}

// ---------------------------------------------------------------- idempotency, time

#[test]
fn a_record_already_evaluated_gives_no_new_signal_for_any_rule() {
    let records = [
        ses("GetAccount").id("discovery"),
        verify("a@example.com").id("add").at(1),
        delete("a@example.com").id("del").at(2),
    ];
    let once = run(&records);
    let mut twice_input = records.to_vec();
    twice_input.extend(records.iter().cloned());
    // Duplicates far apart in the stream, and long after in event-time terms of other records.
    twice_input.push(ses("GetAccount").id("discovery"));
    let twice = run(&twice_input);
    assert_eq!(fired(&once), fired(&twice));
    for (rule, n) in [(R1, 1), (R2, 1), (R3, 2), (R4, 1), (R5, 1)] {
        assert_eq!(count(&once, rule), n, "{rule}");
    }
}

#[test]
fn the_same_event_id_with_another_event_name_is_another_record() {
    let signals = run(&[
        ses("GetAccount").id("same"),
        ses("GetAccountSendingEnabled")
            .id("same")
            .key("AKIAOTHERKEY"),
    ]);
    assert_eq!(count(&signals, R1), 2);
}

#[test]
fn windows_are_measured_in_event_time_so_an_old_archive_gives_the_same_signals() {
    // The same story in 2019 and in 2026: identical decisions.
    let story = |year_shift: i64| {
        let shift = year_shift * 365 * 24 * 60;
        fired(&run(&[
            ses("GetAccount").id("a").at(shift),
            ses("GetAccount").id("b").at(shift + 30),
            verify("a@example.com").id("add").at(shift + 31),
            delete("a@example.com").id("del").at(shift + 50),
        ]))
    };
    assert_eq!(story(0), story(-7));
    assert_eq!(story(0).len(), 6, "{:?}", story(0));
}

#[test]
fn a_record_a_rule_reads_without_event_time_or_event_id_is_reported_not_evaluated() {
    let no_time = ses("GetAccount").set(&["eventTime"], Value::Null);
    let bad_time = ses("GetAccount")
        .id("b")
        .set(&["eventTime"], json!("yesterday"));
    let no_id = ses("GetAccount").set(&["eventID"], Value::Null);
    let text = format!(
        "{}\n{}\n{}\n{}\n",
        no_time.0,
        bad_time.0,
        no_id.0,
        ses("ListIdentities").id("ok").0
    );
    let (out, stats) = scan_text(&engine(""), "t.jsonl", text.as_bytes());
    assert_eq!(stats.malformed, 3);
    let messages: Vec<String> = out.problems.iter().map(|p| p.to_string()).collect();
    assert!(
        messages[0].contains("line 1") && messages[0].contains("eventTime"),
        "{messages:?}"
    );
    assert!(
        messages[1].contains("line 2") && messages[1].contains("yesterday"),
        "{messages:?}"
    );
    assert!(
        messages[2].contains("line 3") && messages[2].contains("eventID"),
        "{messages:?}"
    );
    assert_eq!(fired(&out.signals), [(R2.to_owned(), "ok".to_owned())]);
}

#[test]
fn records_of_old_event_versions_and_sparse_identities_are_evaluated() {
    let v102 = R(json!({
        "eventVersion": "1.02",
        "userIdentity": {"type": "IAMUser", "principalId": "AIDA", "arn": LEAKED, "accountId": "111122223333", "accessKeyId": AKIA},
        "eventTime": "2016-03-02T09:00:00Z",
        "eventSource": "ses.amazonaws.com",
        "eventName": "GetSendQuota",
        "awsRegion": "us-east-1",
        "sourceIPAddress": "198.51.100.23",
        "requestParameters": null,
        "eventID": "v102"
    }));
    let no_type = ses("GetAccount")
        .id("no-type")
        .user(json!({"arn": "arn:aws:iam::111122223333:user/y", "accessKeyId": "AKIAY"}));
    let signals = run(&[v102, no_type]);
    assert_eq!(
        fired(&signals),
        [
            (R2.to_owned(), "v102".to_owned()),
            (R1.to_owned(), "no-type".to_owned()),
            (R2.to_owned(), "no-type".to_owned())
        ]
    );
    assert_eq!(
        signals[0].subject.account_id, "111122223333",
        "account from userIdentity"
    );
}

// ---------------------------------------------------------------- suppressions

#[test]
fn a_suppression_matches_only_when_every_given_field_matches() {
    let toml = r#"
        [[suppressions]]
        rule = "ses-discovery-long-term-key"
        principal = "arn:aws:iam::111122223333:user/ci-*"
        source_ip = "203.0.113.0/24"
        user_agent = "*Terraform*"
        reason = "pipeline health check"
    "#;
    let ci = |id: &str| {
        ses("GetAccount")
            .id(id)
            .user_arn("arn:aws:iam::111122223333:user/ci-deployer")
            .ip("203.0.113.7")
            .agent("APN/1.0 HashiCorp/1.0 Terraform/1.7.0")
    };
    let engine = engine(toml);
    let suppressed = run_with(&engine, &[ci("all-match")]);
    assert_eq!(count(&suppressed, R1), 0);
    assert_eq!(count(&suppressed, R2), 1, "the entry names one rule only");
    for (id, record) in [
        (
            "other-principal",
            ci("x").user_arn("arn:aws:iam::111122223333:user/alice"),
        ),
        ("other-ip", ci("x").ip("198.51.100.1")),
        ("other-agent", ci("x").agent("aws-cli/2.15.30")),
    ] {
        let signals = run_with(&engine, &[record.id(id)]);
        assert_eq!(count(&signals, R1), 1, "{id}");
    }
}

#[test]
fn a_suppression_without_rule_applies_to_every_rule() {
    let engine = engine("[[suppressions]]\nprincipal = \"*ses-ops-leaked\"\n");
    let signals = run_with(
        &engine,
        &[
            ses("GetAccount"),
            verify("a@example.com").at(1),
            delete("a@example.com").at(2),
        ],
    );
    assert!(signals.is_empty(), "{:?}", fired(&signals));
}

#[test]
fn a_suppression_expires_at_its_date_in_event_time() {
    let engine = engine(
        "[[suppressions]]\nrule = \"ses-discovery-long-term-key\"\nexpires = \"2026-03-03\"\n",
    );
    let day = 24 * 60;
    let signals = run_with(
        &engine,
        &[
            ses("GetAccount").id("before").at(0),
            ses("GetAccount").id("at-expiry").at(15 * 60),
            ses("GetAccount").id("after").at(2 * day),
        ],
    );
    let ids: Vec<&str> = of_rule(&signals, R1)
        .iter()
        .map(|s| s.subject.event_id.as_str())
        .collect();
    assert_eq!(ids, ["at-expiry", "after"]);
}

#[test]
fn a_suppressed_match_leaves_no_state_that_hides_a_later_true_signal() {
    let engine = engine("[[suppressions]]\nsource_ip = \"203.0.113.0/24\"\n");
    let signals = run_with(
        &engine,
        &[
            ses("GetAccount").id("from-office").ip("203.0.113.7").at(0),
            ses("GetAccount")
                .id("from-attacker")
                .ip("198.51.100.23")
                .at(5),
        ],
    );
    assert_eq!(
        fired(&signals),
        [
            (R1.to_owned(), "from-attacker".to_owned()),
            (R2.to_owned(), "from-attacker".to_owned())
        ]
    );
}

#[test]
fn r4_suppressions_are_judged_on_the_delete_the_signal_describes() {
    let engine = engine(
        "[[suppressions]]\nrule = \"ses-verify-then-delete\"\nprincipal = \"*:user/ses-ops-leaked\"\nuser_agent = \"*cleanup-job*\"\n",
    );
    let signals = run_with(
        &engine,
        &[
            delete("a@example.com")
                .id("del")
                .agent("cleanup-job/1.0")
                .at(10),
            verify("a@example.com").id("add").at(0),
            delete("b@example.com").id("del-b").at(10),
            verify("b@example.com")
                .id("add-b")
                .agent("cleanup-job/1.0")
                .at(0),
        ],
    );
    let r4: Vec<&str> = of_rule(&signals, R4)
        .iter()
        .map(|s| s.subject.event_id.as_str())
        .collect();
    assert_eq!(r4, ["del-b"]);
}

// ---------------------------------------------------------------- the signal

#[test]
fn a_signal_carries_every_documented_field() {
    let signals = run(&[verify("a@example.com").id("add").error("AccessDenied")]);
    let value: Value = serde_json::from_str(&signals[0].to_json()).expect("json");
    for field in SIGNAL_FIELDS {
        assert!(value.get(field).is_some(), "missing {field}");
    }
    assert_eq!(value["tactic"], "TA0040");
    assert_eq!(value["technique"], "T1496");
    assert_eq!(value["identity"], "a@example.com");
    assert_eq!(value["error_code"], "AccessDenied");
    assert_eq!(value["event_time"], "2026-03-02T09:00:00Z");
}

#[test]
fn signal_ids_are_deterministic_from_rule_and_event() {
    let a = run(&[ses("GetAccount").id("e1")]);
    let b = run(&[ses("GetAccount").id("e1")]);
    let c = run(&[ses("GetAccount").id("e2")]);
    assert_eq!(a[0].signal_id, b[0].signal_id);
    assert_ne!(a[0].signal_id, a[1].signal_id, "two rules, two ids");
    assert_ne!(a[0].signal_id, c[0].signal_id);
}

#[test]
fn triage_fills_the_seed_placeholders_and_cannot_be_broken_out_of() {
    let signals = run(&[ses("GetAccount").ip("198.51.100.23")]);
    let triage = signals[0].triage.join("\n");
    assert!(triage.contains("`GetAccount`"), "{triage}");
    assert!(triage.contains(&format!("`{LEAKED}`")), "{triage}");
    assert!(triage.contains("`198.51.100.23`"), "{triage}");
    assert!(!triage.contains("{{@"), "{triage}");

    let hostile = run(&[ses("GetAccount").ip("evil`\n# [click](https://evil.example)")]);
    let triage = hostile[0].triage.join("\n");
    assert!(
        !triage.contains("evil`"),
        "a backtick would end the code span: {triage}"
    );
    assert!(
        !triage.contains("\n# [click]"),
        "a newline would start a heading: {triage}"
    );
}

#[test]
fn a_user_arn_suppression_silences_one_role_session_not_the_role() {
    let engine = engine(
        "[[suppressions]]\nrule = \"ses-modification\"\nuser_arn = \"arn:aws:sts::111122223333:assumed-role/ops/alice\"\nreason = \"alice's clean-up runs\"\n",
    );
    let signals = run_with(
        &engine,
        &[
            verify("a@example.com").session("ops", "alice").id("alice"),
            verify("b@example.com").session("ops", "bob").id("bob"),
        ],
    );
    let r3: Vec<&str> = of_rule(&signals, R3)
        .iter()
        .map(|s| s.subject.event_id.as_str())
        .collect();
    assert_eq!(r3, ["bob"]);
}
