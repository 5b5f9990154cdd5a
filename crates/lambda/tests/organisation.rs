//! One sesguard deployment for a whole organisation (issue 14): the events of 3 accounts × 4
//! regions, as the forwarders deliver them to the detector's bus, through the Lambda handler
//! with its state in one DynamoDB table (moto server, `SESGUARD_TEST_ENDPOINT`). The state keys
//! keep the account (and, where a rule says so, the region), so:
//! - the sandbox-exit burst fires for the principal whose `PutAccountDetails` spans regions of
//!   one account, and not for a principal whose calls spread over two accounts;
//! - unseen-user baselines are per account: a principal known in one account is new in another;
//! - verify-then-delete pairs an add and a delete only within one account and region;
//!
//! and the handler over DynamoDB gives exactly the signals of the CLI's in-memory state.
//!
//! Without `SESGUARD_TEST_ENDPOINT` the test skips with a message, unless
//! `SESGUARD_REQUIRE_EMULATORS` is set (as in CI), where it fails.

mod support;
use support::*;

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::{Value, json};
use sesguard::config::{Config, Overrides};
use sesguard::deliver::{Collect, Counts};
use sesguard::lambda::Handler;
use sesguard::scan::scan_text;
use sesguard::{Engine, Signal};
use sesguard_lambda::aws::dynamodb::DynamoState;

/// A fresh table with the template's key schema and TTL attribute, through the Lambda's own
/// HTTP client.
async fn table(endpoint: &str) -> DynamoState {
    let sdk = sdk_in(endpoint, "eu-central-1").await;
    let (client, name) = create_table(&sdk, "sesguard-organisation").await;
    enable_ttl(&client, &name).await;
    DynamoState::new(client, name)
}

const ACCOUNTS: [&str; 3] = ["111111111111", "222222222222", "333333333333"];
const REGIONS: [&str; 4] = ["us-east-1", "eu-west-1", "ap-southeast-2", "sa-east-1"];
/// 2026-03-02T10:00:00Z.
const START: i64 = 1_772_445_600;

/// A principal: an IAM user of `home` (its ARN names that account whatever account the call
/// lands in).
fn user(home: &str, name: &str) -> Value {
    json!({
        "type": "IAMUser",
        "principalId": format!("AIDA{home}{}", name.len()),
        "arn": format!("arn:aws:iam::{home}:user/{name}"),
        "accountId": home,
        "accessKeyId": format!("ASIA{home}"),
        "userName": name,
    })
}

/// One SES call in `account` and `region`, as the detector's bus delivers it (the envelope's
/// `account` and `region` are the sending account's and region's).
fn call(
    id: &str,
    account: &str,
    region: &str,
    who: &Value,
    name: &str,
    params: Value,
    seconds: i64,
) -> String {
    let time = sesguard::time::format(START + seconds);
    json!({
        "version": "0",
        "id": format!("envelope-{id}"),
        "detail-type": "AWS API Call via CloudTrail",
        "source": "aws.ses",
        "account": account,
        "time": time,
        "region": region,
        "resources": [],
        "detail": {
            "eventVersion": "1.09",
            "userIdentity": who,
            "eventTime": time,
            "eventSource": "ses.amazonaws.com",
            "eventName": name,
            "awsRegion": region,
            "sourceIPAddress": "198.51.100.23",
            "userAgent": "aws-cli/2.15.30",
            "requestParameters": params,
            "responseElements": null,
            "eventID": id,
            "readOnly": name.starts_with("Get") || name.starts_with("List"),
            "eventType": "AwsApiCall",
            "managementEvent": true,
            "recipientAccountId": account,
            "eventCategory": "Management",
        }
    })
    .to_string()
}

/// The scenario, in arrival order.
fn scenario() -> Vec<String> {
    let mut events = Vec::new();
    // Every account's mail administrator reads the send quota in every region: one first
    // sighting per account (the administrators are three principals).
    for (a, account) in ACCOUNTS.iter().enumerate() {
        let admin = user(account, "mail-admin");
        for (r, region) in REGIONS.iter().enumerate() {
            events.push(call(
                &format!("quota-{account}-{region}"),
                account,
                region,
                &admin,
                "GetSendQuota",
                Value::Null,
                (a * 10 + r) as i64,
            ));
        }
    }
    // One principal (an auditor of a fourth account) reads in every account and region: known
    // in one account, it is still new in the next.
    let auditor = user("444455556666", "auditor");
    for (a, account) in ACCOUNTS.iter().enumerate() {
        for (r, region) in REGIONS.iter().enumerate() {
            events.push(call(
                &format!("audit-{account}-{region}"),
                account,
                region,
                &auditor,
                "ListIdentities",
                Value::Null,
                100 + (a * 10 + r) as i64,
            ));
        }
    }
    // The attacker leaves the sandbox in the 4 regions of the first account within a minute.
    let leaked = user(ACCOUNTS[0], "ses-ops-leaked");
    let exit = json!({"productionAccessEnabled": true, "mailType": "MARKETING",
        "websiteURL": "https://example.com", "contactLanguage": "EN"});
    for (r, region) in REGIONS.iter().enumerate() {
        events.push(call(
            &format!("exit-{}-{region}", ACCOUNTS[0]),
            ACCOUNTS[0],
            region,
            &leaked,
            "PutAccountDetails",
            exit.clone(),
            600 + 15 * r as i64,
        ));
    }
    // The auditor's requests spread over two regions in each of two accounts (four regions in
    // all, within a minute): no account has a burst.
    for (i, (account, region)) in [
        (ACCOUNTS[1], REGIONS[0]),
        (ACCOUNTS[1], REGIONS[1]),
        (ACCOUNTS[2], REGIONS[2]),
        (ACCOUNTS[2], REGIONS[3]),
    ]
    .into_iter()
    .enumerate()
    {
        events.push(call(
            &format!("spread-{account}-{region}"),
            account,
            region,
            &auditor,
            "PutAccountDetails",
            exit.clone(),
            600 + 15 * i as i64,
        ));
    }
    // Verify in the first account's us-east-1, then deletes of the same identity elsewhere
    // (another region of that account, another account's same region), then the delete that
    // pairs: last, so pairing across accounts or regions would already have fired.
    let identity = json!({"emailAddress": "phish@example.net"});
    let deleted = json!({"identity": "phish@example.net"});
    events.push(call(
        "verify-a-us-east-1",
        ACCOUNTS[0],
        "us-east-1",
        &leaked,
        "VerifyEmailIdentity",
        identity,
        900,
    ));
    events.push(call(
        "delete-a-eu-west-1",
        ACCOUNTS[0],
        "eu-west-1",
        &leaked,
        "DeleteIdentity",
        deleted.clone(),
        1_200,
    ));
    events.push(call(
        "delete-b-us-east-1",
        ACCOUNTS[1],
        "us-east-1",
        &user(ACCOUNTS[1], "mail-admin"),
        "DeleteIdentity",
        deleted.clone(),
        1_210,
    ));
    events.push(call(
        "delete-a-us-east-1",
        ACCOUNTS[0],
        "us-east-1",
        &leaked,
        "DeleteIdentity",
        deleted,
        1_500,
    ));
    events
}

fn of<'s>(signals: &'s [Signal], rule: &str) -> Vec<&'s Signal> {
    signals.iter().filter(|s| s.rule_id == rule).collect()
}

fn where_(signal: &Signal) -> (String, String, String) {
    (
        signal.subject.account_id.clone(),
        signal.subject.region.clone(),
        signal.subject.principal.clone().unwrap_or_default(),
    )
}

#[tokio::test]
async fn three_accounts_in_four_regions_share_one_table_without_collisions() {
    let Some(endpoint) = endpoint() else { return };
    let handler = Handler::new(
        Engine::default(),
        table(&endpoint).await,
        Collect::default(),
    );
    let events = scenario();
    assert_eq!(
        events.len(),
        ACCOUNTS.len() * REGIONS.len() * 2 + REGIONS.len() + 4 + 4
    );
    let mut report = Counts::default();
    for event in &events {
        handler
            .handle(event, "organisation", &mut report)
            .await
            .expect("event");
    }
    let signals = handler.sink().collected().signals;

    // The burst: the attacker's four regions of one account, once; not the auditor's two
    // regions in each of two accounts.
    let bursts = of(&signals, "ses-sandbox-exit-burst");
    assert_eq!(bursts.len(), 1, "{bursts:#?}");
    let (account, _, principal) = where_(bursts[0]);
    assert_eq!(account, ACCOUNTS[0]);
    assert_eq!(
        principal,
        format!("arn:aws:iam::{}:user/ses-ops-leaked", ACCOUNTS[0])
    );
    let details = bursts[0].details.as_ref().expect("details");
    let regions: BTreeSet<&str> = details["regions"]
        .as_array()
        .expect("regions")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    // It fires on the third region (the default `sandbox_exit_regions`), naming those three.
    assert_eq!(
        regions,
        REGIONS[..3].iter().copied().collect::<BTreeSet<_>>()
    );
    // A production access request is per account and principal: the attacker's once, the
    // auditor's once in each of its two accounts.
    let requests: BTreeSet<(String, String)> = of(&signals, "ses-production-access-requested")
        .into_iter()
        .map(|s| (s.subject.account_id.clone(), s.subject.event_id.clone()))
        .collect();
    assert_eq!(requests.len(), 3, "{requests:?}");

    // Unseen users: each administrator once (in its first region), the auditor once per
    // account, in the first region it was seen there.
    let unseen: BTreeSet<(String, String, String)> = of(&signals, "ses-enumeration-unseen-user")
        .into_iter()
        .map(where_)
        .collect();
    let mut expected = BTreeSet::new();
    for account in ACCOUNTS {
        expected.insert((
            account.to_owned(),
            REGIONS[0].to_owned(),
            format!("arn:aws:iam::{account}:user/mail-admin"),
        ));
        expected.insert((
            account.to_owned(),
            REGIONS[0].to_owned(),
            "arn:aws:iam::444455556666:user/auditor".to_owned(),
        ));
    }
    assert_eq!(unseen, expected);

    // Verify-then-delete: the one delete in the add's account and region, paired with it.
    let pairs = of(&signals, "ses-verify-then-delete");
    assert_eq!(pairs.len(), 1, "{pairs:#?}");
    assert_eq!(pairs[0].subject.event_id, "delete-a-us-east-1");
    assert_eq!(pairs[0].related_event_ids, ["verify-a-us-east-1"]);
    // Each delete is its own identity-deleted signal: the key is (account, region, identity).
    let deletes: BTreeSet<String> = of(&signals, "ses-identity-deleted")
        .into_iter()
        .map(|s| s.subject.event_id.clone())
        .collect();
    assert_eq!(
        deletes,
        BTreeSet::from([
            "delete-a-eu-west-1".to_owned(),
            "delete-b-us-east-1".to_owned(),
            "delete-a-us-east-1".to_owned(),
        ])
    );
    // Every chain is the attacker's, in the first account (its stages span regions).
    assert!(
        of(&signals, "ses-abuse-chain")
            .iter()
            .all(|s| s.subject.account_id == ACCOUNTS[0]),
        "{signals:#?}"
    );
    assert_eq!(report.signal_count(), signals.len() as u64);

    // The CLI's in-memory state gives exactly the same signals.
    let text = events.join("\n");
    let (collected, _) = tokio::task::spawn_blocking(move || {
        let config = Config::parse("", Path::new("t.toml"), &Overrides::default()).expect("config");
        scan_text(&Engine::new(config), "input", text.as_bytes())
    })
    .await
    .expect("scan");
    let ids = |signals: &[Signal]| -> BTreeSet<String> {
        signals.iter().map(|s| s.signal_id.clone()).collect()
    };
    assert_eq!(ids(&signals), ids(&collected.signals));
}
