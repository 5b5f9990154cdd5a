//! The benchmark corpus generator: deterministic, realistic CloudTrail log files, for
//! `scripts/bench.sh` (through the `sesguard-corpus` binary), the scan benchmarks and the
//! fast-path equivalence test. A tool of the workspace, not part of the product: not published,
//! not installed by `cargo install --path .`.
//!
//! [`generate`] writes `{"Records":[...]}` files of a few hundred records each (one line, as
//! CloudTrail delivers them), five minutes apart, named like CloudTrail
//! (`<account>_CloudTrail_<region>_<yyyymmddThhmmZ>_<random>.json[.gz]`) so that name order is
//! time order. Records come from many services with CloudTrail's field variety (identity types,
//! session contexts, request parameters, response elements, TLS details, data events, errors,
//! escaped policy documents, non-ASCII names); a small share are SES and Service Quotas calls,
//! including ones that fire each of the five rules. The same seed and size give the same bytes,
//! whatever the thread count.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;

use flate2::Compression;
use flate2::write::GzEncoder;

const ACCOUNT: &str = "111122223333";
const REGION: &str = "us-east-1";
/// 2026-03-01T00:00:00Z: the first file's window starts here.
const START: i64 = 1_772_323_200;
const FILE_SECONDS: i64 = 300;

/// Which files [`generate`] writes: raw ones to `OUT/raw/`, compressed ones to `OUT/gz/`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Form {
    /// `OUT/raw/*.json` only.
    Raw,
    /// `OUT/gz/*.json.gz` only.
    Gz,
    /// Both, the same files raw and compressed.
    #[default]
    Both,
}

impl Form {
    fn raw(self) -> bool {
        matches!(self, Form::Raw | Form::Both)
    }

    fn gz(self) -> bool {
        matches!(self, Form::Gz | Form::Both)
    }
}

/// What to generate. The default is the `sesguard-corpus` binary's: 1 GiB, seed 1, both forms,
/// 1% SES records, one file per available CPU at a time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    /// Raw JSON size to reach, in bytes, whatever the form: files are added while their raw size
    /// is below it, so the last one passes it (1 gives one file).
    pub size: u64,
    /// The seed: the same seed and size give the same files, byte for byte.
    pub seed: u64,
    /// Raw files, compressed files, or both.
    pub form: Form,
    /// SES and Service Quotas events per thousand draws (10: 1%).
    pub ses_per_mille: u64,
    /// Files generated at a time (0 counts as 1); the output does not depend on it.
    pub threads: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            size: 1 << 30,
            seed: 1,
            form: Form::Both,
            ses_per_mille: 10,
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
        }
    }
}

/// What [`generate`] wrote.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Log files (each both raw and compressed with [`Form::Both`]).
    pub files: u64,
    /// Their raw JSON size, whether or not the raw files were written.
    pub raw_bytes: u64,
    /// The size of the `.json.gz` files; 0 when none were written.
    pub gz_bytes: u64,
}

/// Writes the corpus under `out` (`out/raw/`, `out/gz/`, created if missing) and returns what it
/// wrote. Files are generated in index order until the raw size is reached; files are made
/// `threads` at a time, each from its own seed, so the output does not depend on the thread
/// count.
pub fn generate(out: &Path, options: &Options) -> std::io::Result<Counts> {
    let raw_dir = out.join("raw");
    let gz_dir = out.join("gz");
    if options.form.raw() {
        std::fs::create_dir_all(&raw_dir)?;
    }
    if options.form.gz() {
        std::fs::create_dir_all(&gz_dir)?;
    }
    let threads = options.threads.max(1) as u64;
    let (mut files, mut raw_total, mut gz_total) = (0u64, 0u64, 0u64);
    while raw_total < options.size {
        let batch: Vec<u64> = (files..files + threads).collect();
        let results: Vec<std::io::Result<(u64, u64)>> = std::thread::scope(|scope| {
            let handles: Vec<_> = batch
                .iter()
                .map(|&index| {
                    let (raw_dir, gz_dir) = (&raw_dir, &gz_dir);
                    scope.spawn(move || write_file(options, index, raw_dir, gz_dir))
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("generator thread"))
                .collect()
        });
        for result in results {
            if raw_total >= options.size {
                break;
            }
            let (raw, gz) = result?;
            files += 1;
            raw_total += raw;
            gz_total += gz;
        }
    }
    // Files made past the size in the last batch are removed, so the corpus is the same for
    // any thread count.
    let mut index = files;
    loop {
        let name = file_name(options.seed, index);
        let mut found = false;
        for path in [raw_dir.join(&name), gz_dir.join(format!("{name}.gz"))] {
            if path.exists() {
                std::fs::remove_file(path)?;
                found = true;
            }
        }
        if !found {
            break;
        }
        index += 1;
    }
    Ok(Counts {
        files,
        raw_bytes: raw_total,
        gz_bytes: gz_total,
    })
}

fn write_file(
    options: &Options,
    index: u64,
    raw_dir: &Path,
    gz_dir: &Path,
) -> std::io::Result<(u64, u64)> {
    let text = log_file(options.seed, index, options.ses_per_mille);
    let name = file_name(options.seed, index);
    if options.form.raw() {
        std::fs::write(raw_dir.join(&name), &text)?;
    }
    let mut gz = 0;
    if options.form.gz() {
        let mut encoder = GzEncoder::new(Vec::with_capacity(text.len() / 8), Compression::new(6));
        encoder.write_all(text.as_bytes())?;
        let bytes = encoder.finish()?;
        gz = bytes.len() as u64;
        std::fs::write(gz_dir.join(format!("{name}.gz")), bytes)?;
    }
    Ok((text.len() as u64, gz))
}

/// `111122223333_CloudTrail_us-east-1_20260301T0005Z_3kq9T0bXc1Lm8ZpQ.json`: the delivery time
/// (the end of the file's window), then 16 random characters.
fn file_name(seed: u64, index: u64) -> String {
    let end = START + (index as i64 + 1) * FILE_SECONDS;
    let (y, mo, d, h, mi, _) = civil(end);
    let mut rng = Rng::new(seed ^ 0x6e61_6d65, index);
    let alphabet = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let random: String = (0..16)
        .map(|_| alphabet[rng.below(alphabet.len() as u64) as usize] as char)
        .collect();
    format!("{ACCOUNT}_CloudTrail_{REGION}_{y:04}{mo:02}{d:02}T{h:02}{mi:02}Z_{random}.json")
}

/// Year, month, day, hour, minute, second of a Unix time (UTC).
fn civil(t: i64) -> (i64, u32, u32, u32, u32, u32) {
    let days = t.div_euclid(86_400);
    let secs = t.rem_euclid(86_400);
    // Howard Hinnant's days_from_civil, inverted.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (
        y,
        m,
        d,
        (secs / 3600) as u32,
        (secs / 60 % 60) as u32,
        (secs % 60) as u32,
    )
}

fn timestamp(t: i64) -> String {
    let (y, mo, d, h, mi, s) = civil(t);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
}

/// SplitMix64 seeding a xorshift-style generator: small, fast and the same everywhere.
struct Rng(u64);

impl Rng {
    fn new(seed: u64, stream: u64) -> Self {
        let mut rng = Rng(seed
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .wrapping_add(stream.wrapping_mul(0xD1B5_4A32_D192_ED03))
            ^ 0x5e5_6aad);
        rng.next();
        rng
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        ((self.next() >> 32) * n) >> 32
    }

    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }

    fn chance(&mut self, per_mille: u64) -> bool {
        self.below(1000) < per_mille
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }

    fn uuid(&mut self) -> String {
        let (a, b) = (self.next(), self.next());
        format!(
            "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
            a >> 32,
            (a >> 16) & 0xffff,
            a & 0xfff,
            0x8000 | ((b >> 48) & 0x3fff),
            b & 0xffff_ffff_ffff
        )
    }

    fn alnum(&mut self, n: usize, alphabet: &[u8]) -> String {
        (0..n)
            .map(|_| alphabet[self.below(alphabet.len() as u64) as usize] as char)
            .collect()
    }

    fn key_id(&mut self, prefix: &str) -> String {
        format!(
            "{prefix}{}",
            self.alnum(16, b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")
        )
    }

    fn ip(&mut self) -> String {
        let nets = [
            "198.51.100",
            "203.0.113",
            "192.0.2",
            "100.24.17",
            "54.239.28",
            "3.91.171",
        ];
        format!("{}.{}", self.pick(&nets), self.range(1, 254))
    }
}

// ---------------------------------------------------------------------------------------------
// JSON writing

/// Appends `s` as a JSON string.
fn string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// A JSON object written in field order (CloudTrail's order, unlike a sorted map).
struct Obj(String);

impl Obj {
    fn new() -> Self {
        Obj(String::from("{"))
    }

    fn key(&mut self, key: &str) {
        if self.0.len() > 1 {
            self.0.push(',');
        }
        string(&mut self.0, key);
        self.0.push(':');
    }

    fn s(mut self, key: &str, value: &str) -> Self {
        self.key(key);
        string(&mut self.0, value);
        self
    }

    fn raw(mut self, key: &str, json: &str) -> Self {
        self.key(key);
        self.0.push_str(json);
        self
    }

    fn b(self, key: &str, value: bool) -> Self {
        self.raw(key, if value { "true" } else { "false" })
    }

    fn n(self, key: &str, value: impl std::fmt::Display) -> Self {
        self.raw(key, &value.to_string())
    }

    fn end(mut self) -> String {
        self.0.push('}');
        self.0
    }
}

fn array(items: &[String]) -> String {
    format!("[{}]", items.join(","))
}

// ---------------------------------------------------------------------------------------------
// Who calls

#[derive(Clone)]
enum Who {
    User {
        name: String,
        key: String,
    },
    Role {
        role: String,
        session: String,
        key: String,
    },
    ServiceRole {
        role: String,
        service: String,
        key: String,
    },
    Service(&'static str),
    Root {
        key: String,
    },
    Federated {
        name: String,
        key: String,
    },
}

const USERS: &[&str] = &[
    "alice",
    "bob",
    "carol",
    "deploy-bot",
    "ci-runner",
    "ses-ops",
    "marketing-mailer",
    "backup-agent",
    "terraform",
    "josé.garcía",
    "zoë",
    "grafana-reader",
    "billing-export",
    "data-eng",
    "support-tool",
    "legacy-app",
];
const ROLES: &[&str] = &[
    "OrganizationAccountAccessRole",
    "AdminRole",
    "ReadOnly",
    "eks-node-group-NodeInstanceRole",
    "lambda-orders-processor",
    "ecsTaskExecutionRole",
    "GitHubActionsDeploy",
    "AWSReservedSSO_PowerUserAccess_1a2b3c4d5e6f7a8b",
    "DatadogIntegrationRole",
    "MailSenderRole",
];
const SERVICE_ROLES: &[(&str, &str)] = &[
    (
        "AWSServiceRoleForTrustedAdvisor",
        "trustedadvisor.amazonaws.com",
    ),
    ("AWSServiceRoleForConfig", "config.amazonaws.com"),
    ("AWSServiceRoleForSecurityHub", "securityhub.amazonaws.com"),
    (
        "AWSServiceRoleForAmazonGuardDuty",
        "guardduty.amazonaws.com",
    ),
];
const SERVICES: &[&str] = &[
    "lambda.amazonaws.com",
    "ec2.amazonaws.com",
    "ecs-tasks.amazonaws.com",
    "cloudformation.amazonaws.com",
    "autoscaling.amazonaws.com",
    "s3.amazonaws.com",
    "logs.amazonaws.com",
];
const AGENTS: &[&str] = &[
    "aws-cli/2.15.30 Python/3.11.8 Linux/6.1.79-99.164.amzn2023.x86_64 exe/x86_64.amzn.2023 prompt/off command/ec2.describe-instances",
    "aws-sdk-go-v2/1.30.3 os/linux lang/go#1.22.5 md/GOOS#linux md/GOARCH#amd64 api/s3#1.58.2",
    "Boto3/1.34.144 md/Botocore#1.34.144 ua/2.0 os/linux#5.10.219-208.866.amzn2.x86_64 md/arch#x86_64 lang/python#3.12.4 md/pyimpl#CPython cfg/retry-mode#legacy Botocore/1.34.144",
    "aws-sdk-java/2.25.60 Linux/5.10.220-209.869.amzn2.x86_64 OpenJDK_64-Bit_Server_VM/17.0.11+9-LTS Java/17.0.11 vendor/Amazon.com_Inc. exec-env/AWS_ECS_FARGATE io/sync http/Apache cfg/retry-mode/legacy",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36",
    "console.amazonaws.com",
    "[Terraform/1.8.5 (+https://www.terraform.io) terraform-provider-aws/5.57.0 (+https://registry.terraform.io/providers/hashicorp/aws) aws-sdk-go-v2/1.30.1 ua/2.0 os/linux lang/go#1.22.4 md/GOOS#linux md/GOARCH#amd64 api/ec2#1.168.0]",
    "aws-sdk-js/3.600.0 ua/2.1 os/linux#5.10.219 lang/js md/nodejs#20.14.0 api/dynamodb#3.600.0",
];

fn key_letters(rng: &mut Rng) -> String {
    rng.alnum(17, b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")
}

fn pick_who(rng: &mut Rng) -> Who {
    match rng.below(100) {
        0..=29 => {
            let name = rng.pick(USERS).to_string();
            // One long-term key per user, stable across files.
            let key = format!("AKIA{}", stable_key(&name));
            Who::User { name, key }
        }
        30..=69 => Who::Role {
            role: rng.pick(ROLES).to_string(),
            session: session_name(rng),
            key: rng.key_id("ASIA"),
        },
        70..=77 => {
            let (role, service) = rng.pick(SERVICE_ROLES);
            Who::ServiceRole {
                role: role.into(),
                service: service.into(),
                key: rng.key_id("ASIA"),
            }
        }
        78..=96 => Who::Service(rng.pick(SERVICES)),
        97 => Who::Root {
            key: rng.key_id("ASIA"),
        },
        _ => Who::Federated {
            name: (rng.pick(USERS)).into(),
            key: rng.key_id("ASIA"),
        },
    }
}

fn stable_key(name: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    let mut rng = Rng::new(h, 7);
    rng.alnum(16, b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")
}

fn session_name(rng: &mut Rng) -> String {
    match rng.below(4) {
        0 => format!(
            "{}@example.com",
            rng.pick(USERS).replace(['é', 'í', 'ë'], "e")
        ),
        1 => format!(
            "botocore-session-{}",
            rng.range(1_700_000_000, 1_800_000_000)
        ),
        2 => format!("i-0{}", rng.alnum(16, b"0123456789abcdef")),
        _ => rng.alnum(32, b"0123456789abcdef"),
    }
}

/// An assumed-role `userIdentity` with its session context, left open for more fields.
fn assumed_role(
    role_id: &str,
    role: &str,
    issuer_arn: &str,
    session: &str,
    key: &str,
    attributes: &str,
) -> Obj {
    let issuer = Obj::new()
        .s("type", "Role")
        .s("principalId", role_id)
        .s("arn", issuer_arn)
        .s("accountId", ACCOUNT)
        .s("userName", role)
        .end();
    let context = Obj::new()
        .raw("sessionIssuer", &issuer)
        .raw("webIdFederationData", "{}")
        .raw("attributes", attributes)
        .end();
    Obj::new()
        .s("type", "AssumedRole")
        .s("principalId", &format!("{role_id}:{session}"))
        .s(
            "arn",
            &format!("arn:aws:sts::{ACCOUNT}:assumed-role/{role}/{session}"),
        )
        .s("accountId", ACCOUNT)
        .s("accessKeyId", key)
        .raw("sessionContext", &context)
}

/// `userIdentity`, the caller's source IP and user agent.
fn identity(rng: &mut Rng, who: &Who, time: i64) -> (String, String, String) {
    let agent = (rng.pick(AGENTS)).to_string();
    let ip = rng.ip();
    let attributes = || {
        Obj::new()
            .s("creationDate", &timestamp(time - 600))
            .s("mfaAuthenticated", "false")
            .end()
    };
    match who {
        Who::User { name, key } => (
            Obj::new()
                .s("type", "IAMUser")
                .s(
                    "principalId",
                    &format!("AIDA{}", stable_key(&format!("{name}-id"))),
                )
                .s("arn", &format!("arn:aws:iam::{ACCOUNT}:user/{name}"))
                .s("accountId", ACCOUNT)
                .s("accessKeyId", key)
                .s("userName", name)
                .end(),
            ip,
            agent,
        ),
        Who::Role { role, session, key } => {
            let role_id = format!("AROA{}", stable_key(role));
            let issuer = format!("arn:aws:iam::{ACCOUNT}:role/{role}");
            let mut user = assumed_role(&role_id, role, &issuer, session, key, &attributes());
            if role.starts_with("AWSReservedSSO") {
                user = user.s("credentialId", &rng.alnum(40, b"0123456789ABCDEF"));
            }
            (user.end(), ip, agent)
        }
        Who::ServiceRole { role, service, key } => {
            let role_id = format!("AROA{}", stable_key(role));
            let session = format!(
                "{}_{ACCOUNT}_{}",
                role.trim_start_matches("AWSServiceRoleFor"),
                rng.uuid()
            );
            let issuer = format!("arn:aws:iam::{ACCOUNT}:role/aws-service-role/{service}/{role}");
            (
                assumed_role(&role_id, role, &issuer, &session, key, &attributes())
                    .s("invokedBy", service)
                    .end(),
                service.clone(),
                service.clone(),
            )
        }
        Who::Service(service) => (
            Obj::new()
                .s("type", "AWSService")
                .s("invokedBy", service)
                .end(),
            (*service).into(),
            (*service).into(),
        ),
        Who::Root { key } => (
            Obj::new()
                .s("type", "Root")
                .s("principalId", ACCOUNT)
                .s("arn", &format!("arn:aws:iam::{ACCOUNT}:root"))
                .s("accountId", ACCOUNT)
                .s("accessKeyId", key)
                .raw(
                    "sessionContext",
                    &Obj::new()
                        .raw("sessionIssuer", "{}")
                        .raw("webIdFederationData", "{}")
                        .raw("attributes", &attributes())
                        .end(),
                )
                .end(),
            ip,
            "console.amazonaws.com".into(),
        ),
        Who::Federated { name, key } => (
            Obj::new()
                .s("type", "FederatedUser")
                .s("principalId", &format!("{ACCOUNT}:{name}"))
                .s(
                    "arn",
                    &format!("arn:aws:sts::{ACCOUNT}:federated-user/{name}"),
                )
                .s("accountId", ACCOUNT)
                .s("accessKeyId", key)
                .raw(
                    "sessionContext",
                    &Obj::new()
                        .raw(
                            "sessionIssuer",
                            &Obj::new()
                                .s("type", "IAMUser")
                                .s("principalId", &format!("AIDA{}", stable_key(name)))
                                .s("arn", &format!("arn:aws:iam::{ACCOUNT}:user/{name}"))
                                .s("accountId", ACCOUNT)
                                .s("userName", name)
                                .end(),
                        )
                        .raw("webIdFederationData", "{}")
                        .raw("attributes", &attributes())
                        .end(),
                )
                .end(),
            ip,
            agent,
        ),
    }
}

// ---------------------------------------------------------------------------------------------
// What is called

/// One API call: everything but the identity and the common fields.
struct Call {
    source: &'static str,
    name: &'static str,
    read_only: Option<bool>,
    params: String,
    response: String,
    resources: Option<String>,
    additional: Option<String>,
    error: Option<(&'static str, String)>,
    data_event: bool,
    host: Option<String>,
    event_type: &'static str,
}

impl Call {
    fn new(source: &'static str, name: &'static str) -> Self {
        let read_only = ["Get", "List", "Describe", "Head", "Lookup", "Batch"]
            .iter()
            .any(|p| name.starts_with(p));
        Call {
            source,
            name,
            read_only: Some(read_only),
            params: "null".into(),
            response: "null".into(),
            resources: None,
            additional: None,
            error: None,
            data_event: false,
            host: Some(format!(
                "{}.{REGION}.amazonaws.com",
                source.trim_end_matches(".amazonaws.com")
            )),
            event_type: "AwsApiCall",
        }
    }

    fn params(mut self, json: String) -> Self {
        self.params = json;
        self
    }
}

fn bucket(rng: &mut Rng) -> &'static str {
    rng.pick(&[
        "acme-prod-assets",
        "acme-data-lake-raw",
        "acme-logs-archive",
        "cf-templates-1x2y3z-us-east-1",
        "acme-ml-training",
        "acme-backups",
    ])
}

fn object_key(rng: &mut Rng) -> String {
    let dirs = [
        "images/2026/03",
        "exports/daily",
        "raw/events/dt=2026-03-01",
        "models/v7",
        "tmp",
    ];
    let ext = ["jpg", "parquet", "json.gz", "csv", "bin"];
    format!(
        "{}/{}.{}",
        rng.pick(&dirs),
        rng.alnum(12, b"abcdefghijklmnopqrstuvwxyz0123456789-_"),
        rng.pick(&ext)
    )
}

fn noise_call(rng: &mut Rng) -> Call {
    match rng.below(40) {
        0..=7 => {
            let b = bucket(rng);
            let key = object_key(rng);
            let name = rng.pick(&["GetObject", "GetObject", "PutObject", "HeadObject"]);
            let mut call = Call::new("s3.amazonaws.com", name).params(
                Obj::new()
                    .s("bucketName", b)
                    .s("Host", &format!("{b}.s3.{REGION}.amazonaws.com"))
                    .s("key", &key)
                    .end(),
            );
            if name == "PutObject" {
                call.response = Obj::new()
                    .s("x-amz-server-side-encryption", "aws:kms")
                    .s("x-amz-server-side-encryption-aws-kms-key-id", &format!("arn:aws:kms:{REGION}:{ACCOUNT}:key/{}", rng.uuid()))
                    .b("x-amz-server-side-encryption-bucket-key-enabled", true)
                    .end();
            }
            call.data_event = true;
            call.additional = Some(
                Obj::new()
                    .s("SignatureVersion", "SigV4")
                    .s("CipherSuite", "TLS_AES_128_GCM_SHA256")
                    .n("bytesTransferredIn", if name == "PutObject" { rng.range(100, 5_000_000) } else { 0 })
                    .s("AuthenticationMethod", "AuthHeader")
                    .s("x-amz-id-2", &rng.alnum(76, b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/="))
                    .n("bytesTransferredOut", if name == "GetObject" { rng.range(100, 50_000_000) } else { 0 })
                    .end(),
            );
            call.resources = Some(array(&[
                Obj::new()
                    .s("type", "AWS::S3::Object")
                    .s("ARN", &format!("arn:aws:s3:::{b}/{key}"))
                    .end(),
                Obj::new()
                    .s("accountId", ACCOUNT)
                    .s("type", "AWS::S3::Bucket")
                    .s("ARN", &format!("arn:aws:s3:::{b}"))
                    .end(),
            ]));
            call.host = Some(format!("{b}.s3.{REGION}.amazonaws.com"));
            call
        }
        8..=11 => {
            let name = rng.pick(&["DescribeInstances", "DescribeSecurityGroups", "DescribeVolumes", "DescribeNetworkInterfaces"]);
            let filter = Obj::new()
                .s("name", rng.pick(&["instance-state-name", "tag:Environment", "vpc-id"]))
                .raw(
                    "valueSet",
                    &Obj::new()
                        .raw("items", &array(&[Obj::new().s("value", rng.pick(&["running", "prod", "vpc-0a1b2c3d"])).end()]))
                        .end(),
                )
                .end();
            Call::new("ec2.amazonaws.com", name).params(
                Obj::new()
                    .raw("instancesSet", "{}")
                    .raw("filterSet", &Obj::new().raw("items", &array(&[filter])).end())
                    .end(),
            )
        }
        12 => {
            let id = format!("i-0{}", rng.alnum(16, b"0123456789abcdef"));
            let mut call = Call::new("ec2.amazonaws.com", "CreateTags").params(
                Obj::new()
                    .raw("resourcesSet", &Obj::new().raw("items", &array(&[Obj::new().s("resourceId", &id).end()])).end())
                    .raw(
                        "tagSet",
                        &Obj::new()
                            .raw("items", &array(&[Obj::new().s("key", "Name").s("value", "web-é-01").end()]))
                            .end(),
                    )
                    .end(),
            );
            call.response = Obj::new()
                .s("requestId", &rng.uuid())
                .b("_return", true)
                .end();
            call
        }
        13..=16 => {
            let role = rng.pick(ROLES);
            let mut call = Call::new("sts.amazonaws.com", "AssumeRole").params(
                Obj::new()
                    .s("roleArn", &format!("arn:aws:iam::{ACCOUNT}:role/{role}"))
                    .s("roleSessionName", &session_name(rng))
                    .n("durationSeconds", 3600)
                    .end(),
            );
            call.response = Obj::new()
                .raw(
                    "credentials",
                    &Obj::new()
                        .s("accessKeyId", &rng.key_id("ASIA"))
                        .s("sessionToken", &rng.alnum(300, b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"))
                        .s("expiration", "Mar 1, 2026, 1:00:00 PM")
                        .end(),
                )
                .raw(
                    "assumedRoleUser",
                    &Obj::new()
                        .s("assumedRoleId", &format!("AROA{}:{}", stable_key(role), key_letters(rng)))
                        .s("arn", &format!("arn:aws:sts::{ACCOUNT}:assumed-role/{role}/x"))
                        .end(),
                )
                .end();
            call.resources = Some(array(&[Obj::new()
                .s("accountId", ACCOUNT)
                .s("type", "AWS::IAM::Role")
                .s("ARN", &format!("arn:aws:iam::{ACCOUNT}:role/{role}"))
                .end()]));
            call.host = Some(format!("sts.{REGION}.amazonaws.com"));
            call
        }
        17 => Call::new("sts.amazonaws.com", "GetCallerIdentity"),
        18..=21 => {
            let name = rng.pick(&["Decrypt", "GenerateDataKey", "Encrypt"]);
            let key = format!("arn:aws:kms:{REGION}:{ACCOUNT}:key/{}", rng.uuid());
            let mut call = Call::new("kms.amazonaws.com", name).params(
                Obj::new()
                    .raw(
                        "encryptionContext",
                        &Obj::new()
                            .s("aws:s3:arn", &format!("arn:aws:s3:::{}/{}", bucket(rng), object_key(rng)))
                            .end(),
                    )
                    .s("encryptionAlgorithm", "SYMMETRIC_DEFAULT")
                    .s("keyId", &key)
                    .end(),
            );
            call.resources = Some(array(&[Obj::new()
                .s("accountId", ACCOUNT)
                .s("type", "AWS::KMS::Key")
                .s("ARN", &key)
                .end()]));
            call.read_only = Some(true);
            call
        }
        22..=23 => {
            let table = rng.pick(&["orders", "sessions", "sesguard-state", "feature-flags"]);
            let name = rng.pick(&["GetItem", "Query", "PutItem", "DescribeTable"]);
            let mut call = Call::new("dynamodb.amazonaws.com", name).params(
                Obj::new()
                    .s("tableName", table)
                    .raw("key", &Obj::new().s("pk", &format!("user#{}", rng.range(1, 99_999))).end())
                    .b("consistentRead", false)
                    .end(),
            );
            call.data_event = name != "DescribeTable";
            call.resources = Some(array(&[Obj::new()
                .s("accountId", ACCOUNT)
                .s("type", "AWS::DynamoDB::Table")
                .s("ARN", &format!("arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{table}"))
                .end()]));
            call
        }
        24..=25 => {
            let function = rng.pick(&["orders-processor", "thumbnailer", "sesguard", "slack-notifier"]);
            let mut call = Call::new("lambda.amazonaws.com", "Invoke").params(
                Obj::new()
                    .s("functionName", &format!("arn:aws:lambda:{REGION}:{ACCOUNT}:function:{function}"))
                    .s("sourceArn", &format!("arn:aws:events:{REGION}:{ACCOUNT}:rule/{function}-schedule"))
                    .end(),
            );
            call.name = "Invoke";
            call.data_event = true;
            call.read_only = Some(false);
            call.additional = Some(Obj::new().s("functionVersion", &format!("arn:aws:lambda:{REGION}:{ACCOUNT}:function:{function}:$LATEST")).end());
            call
        }
        26 => {
            let policy = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:GetObject","s3:ListBucket"],"Resource":["arn:aws:s3:::acme-data-lake-raw","arn:aws:s3:::acme-data-lake-raw/*"]}]}"#;
            let pretty = policy.replace(",\"", ",\n  \"");
            Call::new("iam.amazonaws.com", "PutRolePolicy").params(
                Obj::new()
                    .s("roleName", rng.pick(ROLES))
                    .s("policyName", "data-lake-read")
                    .s("policyDocument", &pretty)
                    .end(),
            )
        }
        27..=28 => Call::new("iam.amazonaws.com", rng.pick(&["ListUsers", "GetRole", "ListAttachedRolePolicies", "GetAccountSummary"])).params(
            Obj::new().s("roleName", rng.pick(ROLES)).end(),
        ),
        29 => Call::new("logs.amazonaws.com", rng.pick(&["CreateLogStream", "DescribeLogGroups"])).params(
            Obj::new()
                .s("logGroupName", &format!("/aws/lambda/{}", rng.pick(&["orders-processor", "thumbnailer"])))
                .s("logStreamName", &format!("2026/03/01/[$LATEST]{}", rng.alnum(32, b"0123456789abcdef")))
                .end(),
        ),
        30 => Call::new("monitoring.amazonaws.com", rng.pick(&["GetMetricData", "DescribeAlarms", "PutMetricAlarm"])).params(
            Obj::new()
                .s("startTime", "Mar 1, 2026, 9:00:00 AM")
                .s("endTime", "Mar 1, 2026, 10:00:00 AM")
                .n("maxDatapoints", 1440)
                .end(),
        ),
        31 => Call::new("ssm.amazonaws.com", rng.pick(&["GetParameter", "GetParameters", "UpdateInstanceInformation"])).params(
            Obj::new()
                .s("name", &format!("/prod/{}/db-password", rng.pick(&["orders", "web", "reports"])))
                .b("withDecryption", true)
                .end(),
        ),
        32 => {
            let mut call = Call::new("secretsmanager.amazonaws.com", "GetSecretValue").params(
                Obj::new().s("secretId", &format!("arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:prod/db-{}", rng.alnum(6, b"abcdefABCDEF"))).end(),
            );
            if rng.chance(200) {
                call.error = Some(("AccessDenied", "User: arn:aws:sts::111122223333:assumed-role/ReadOnly/x is not authorized to perform: secretsmanager:GetSecretValue on resource: prod/db because no identity-based policy allows the \"secretsmanager:GetSecretValue\" action".into()));
            }
            call
        }
        33 => {
            let mut call = Call::new("signin.amazonaws.com", "ConsoleLogin");
            call.response = Obj::new().s("ConsoleLogin", "Success").end();
            call.additional = Some(
                Obj::new()
                    .s("LoginTo", "https://console.aws.amazon.com/console/home?hashArgs=%23&isauthcode=true&state=hashArgsFromTB_us-east-1_1a2b3c")
                    .s("MobileVersion", "No")
                    .s("MFAUsed", "Yes")
                    .end(),
            );
            call.event_type = "AwsConsoleSignIn";
            call.read_only = Some(false);
            call.host = None;
            call
        }
        34 => Call::new("sqs.amazonaws.com", rng.pick(&["SendMessage", "DeleteMessage", "GetQueueAttributes"])).params(
            Obj::new()
                .s("queueUrl", &format!("https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/orders-{}", rng.range(1, 9)))
                .raw("attributeNames", r#"["All"]"#)
                .end(),
        ),
        35 => Call::new("ecr.amazonaws.com", rng.pick(&["GetAuthorizationToken", "BatchGetImage", "GetDownloadUrlForLayer"])).params(
            Obj::new()
                .s("registryId", ACCOUNT)
                .s("repositoryName", "orders-api")
                .raw("imageIds", &array(&[Obj::new().s("imageTag", "v1.42.0").end()]))
                .raw("acceptedMediaTypes", r#"["application/vnd.docker.distribution.manifest.v1+json","application/vnd.docker.distribution.manifest.v2+json","application/vnd.oci.image.manifest.v1+json"]"#)
                .end(),
        ),
        36 => Call::new("cloudformation.amazonaws.com", "DescribeStacks").params(
            Obj::new().s("stackName", &format!("arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/sesguard/{}", rng.uuid())).end(),
        ),
        37 => Call::new("config.amazonaws.com", rng.pick(&["DescribeConfigRules", "PutEvaluations", "DescribeComplianceByConfigRule"])),
        38 => {
            // Look-alike calls of other services that the rules must not read.
            let (source, name) = rng.pick(&[
                ("apigateway.amazonaws.com", "GetAccount"),
                ("cognito-identity.amazonaws.com", "ListIdentities"),
                ("organizations.amazonaws.com", "DescribeAccount"),
            ]);
            Call::new(source, name).params(Obj::new().s("identityPoolId", &format!("{REGION}:{}", rng.uuid())).n("maxResults", 60).end())
        }
        _ => Call::new("servicequotas.amazonaws.com", "ListServiceQuotas").params(
            Obj::new().s("serviceCode", rng.pick(&["ec2", "lambda", "vpc"])).n("maxResults", 100).end(),
        ),
    }
}

/// An SES or Service Quotas call by `who`; `identity` is the SES identity it names, if any.
fn ses_call(name: &'static str, identity: Option<(&str, &str)>) -> Call {
    let mut call = Call::new("ses.amazonaws.com", name);
    call.host = Some(format!("email.{REGION}.amazonaws.com"));
    if let Some((field, value)) = identity {
        call.params = Obj::new().s(field, value).end();
    }
    call
}

fn email(rng: &mut Rng) -> String {
    let users = ["noreply", "billing", "promo", "support", "ceo", "alerts"];
    let domains = [
        "example.com",
        "example.net",
        "mail.example.org",
        "phish-example.net",
    ];
    format!(
        "{}{}@{}",
        rng.pick(&users),
        rng.range(1, 999),
        rng.pick(&domains)
    )
}

/// One SES-related event (or a pair of them, for verify-then-delete), at `time`.
fn ses_events(rng: &mut Rng, time: i64, end: i64) -> Vec<(i64, Who, Call)> {
    let who = pick_who(rng);
    let user = {
        let name = rng.pick(USERS).to_string();
        Who::User {
            key: format!("AKIA{}", stable_key(&name)),
            name,
        }
    };
    let ta = Who::ServiceRole {
        role: "AWSServiceRoleForTrustedAdvisor".into(),
        service: "trustedadvisor.amazonaws.com".into(),
        key: rng.key_id("ASIA"),
    };
    match rng.below(100) {
        0..=29 => {
            let name = rng.pick(&["SendEmail", "SendRawEmail", "SendEmail", "SendBulkEmail"]);
            let mut call = ses_call(name, None);
            call.params = Obj::new()
                .s("source", "noreply@example.com")
                .raw(
                    "destination",
                    &Obj::new()
                        .raw("toAddresses", &format!("[\"{}\"]", email(rng)))
                        .end(),
                )
                .end();
            call.response = Obj::new()
                .s(
                    "messageId",
                    &format!("0100018e{}-000000", rng.alnum(24, b"0123456789abcdef")),
                )
                .end();
            call.data_event = true;
            vec![(time, pick_who(rng), call)]
        }
        30..=41 => vec![(time, ta, ses_call("GetSendQuota", None))],
        42..=51 => vec![(time, user, ses_call("GetAccount", None))],
        52..=55 => vec![(time, user, ses_call("GetAccountSendingEnabled", None))],
        56..=62 => vec![(
            time,
            who,
            ses_call(
                rng.pick(&[
                    "ListIdentities",
                    "ListEmailIdentities",
                    "GetIdentityVerificationAttributes",
                ]),
                None,
            ),
        )],
        63..=66 => {
            let mut call = Call::new("servicequotas.amazonaws.com", "ListServiceQuotas");
            call.params = Obj::new().s("serviceCode", "ses").end();
            vec![(time, who, call)]
        }
        67..=71 => {
            let mut call = ses_call("GetAccount", None);
            call.error = Some((
                "AccessDenied",
                "User: arn:aws:iam::111122223333:user/x is not authorized to perform: ses:GetAccount".into(),
            ));
            vec![(time, who, call)]
        }
        72..=81 => {
            // Verify then delete the same identity a few minutes later, in the same file.
            let address = email(rng);
            let later = (time + rng.range(30, 240) as i64)
                .min(end - 1)
                .max(time + 1);
            let (verify, field) = rng.pick(&[
                ("VerifyEmailIdentity", "emailAddress"),
                ("VerifyEmailAddress", "emailAddress"),
                ("CreateEmailIdentity", "emailIdentity"),
            ]);
            let delete = match verify {
                "CreateEmailIdentity" => {
                    ses_call("DeleteEmailIdentity", Some(("emailIdentity", &address)))
                }
                _ if rng.chance(500) => ses_call(
                    "DeleteIdentity",
                    Some((
                        "identity",
                        &format!("arn:aws:ses:{REGION}:{ACCOUNT}:identity/{address}"),
                    )),
                ),
                _ => ses_call("DeleteIdentity", Some(("identity", &address))),
            };
            vec![
                (
                    time,
                    user.clone(),
                    ses_call(verify, Some((field, &address))),
                ),
                (later, user, delete),
            ]
        }
        82..=87 => {
            let domain = format!("mail{}.example.com", rng.range(1, 99));
            vec![(
                time,
                who,
                ses_call("VerifyDomainIdentity", Some(("domain", &domain))),
            )]
        }
        88..=92 => vec![(
            time,
            who,
            ses_call(
                "DeleteVerifiedEmailAddress",
                Some(("emailAddress", &email(rng))),
            ),
        )],
        _ => {
            let mut call = ses_call("DeleteIdentity", Some(("identity", &email(rng))));
            if rng.chance(300) {
                call.error = Some((
                    "AccessDenied",
                    "User is not authorized to perform: ses:DeleteIdentity".into(),
                ));
            }
            vec![(time, who, call)]
        }
    }
}

fn record(rng: &mut Rng, time: i64, who: &Who, call: Call) -> String {
    let (user, ip, agent) = identity(rng, who, time);
    let mut record = Obj::new()
        .s(
            "eventVersion",
            if call.data_event { "1.10" } else { "1.09" },
        )
        .raw("userIdentity", &user)
        .s("eventTime", &timestamp(time))
        .s("eventSource", call.source)
        .s("eventName", call.name)
        .s("awsRegion", REGION)
        .s("sourceIPAddress", &ip)
        .s("userAgent", &agent);
    if let Some((code, message)) = &call.error {
        record = record.s("errorCode", code).s("errorMessage", message);
    }
    record = record
        .raw(
            "requestParameters",
            if call.error.is_some() && rng.chance(500) {
                "null"
            } else {
                &call.params
            },
        )
        .raw(
            "responseElements",
            if call.error.is_some() {
                "null"
            } else {
                &call.response
            },
        );
    if let Some(additional) = &call.additional {
        record = record.raw("additionalEventData", additional);
    }
    record = record.s("requestID", &rng.uuid()).s("eventID", &rng.uuid());
    if let Some(read_only) = call.read_only {
        record = record.b("readOnly", read_only);
    }
    if let Some(resources) = &call.resources {
        record = record.raw("resources", resources);
    }
    record = record
        .s("eventType", call.event_type)
        .b("managementEvent", !call.data_event)
        .s("recipientAccountId", ACCOUNT);
    if matches!(who, Who::Service(_) | Who::ServiceRole { .. }) && rng.chance(300) {
        record = record.s("sharedEventID", &rng.uuid());
    }
    if rng.chance(50) {
        record = record.s(
            "vpcEndpointId",
            &format!("vpce-0{}", rng.alnum(16, b"0123456789abcdef")),
        );
    }
    record = record.s(
        "eventCategory",
        if call.data_event {
            "Data"
        } else {
            "Management"
        },
    );
    if let Some(host) = &call.host
        && !matches!(who, Who::Service(_))
    {
        record = record.raw(
            "tlsDetails",
            &Obj::new()
                .s(
                    "tlsVersion",
                    if rng.chance(800) {
                        "TLSv1.3"
                    } else {
                        "TLSv1.2"
                    },
                )
                .s(
                    "cipherSuite",
                    if rng.chance(800) {
                        "TLS_AES_128_GCM_SHA256"
                    } else {
                        "ECDHE-RSA-AES128-GCM-SHA256"
                    },
                )
                .s("clientProvidedHostHeader", host)
                .end(),
        );
    }
    if agent == "console.amazonaws.com" || agent.starts_with("Mozilla") {
        record = record.s("sessionCredentialFromConsole", "true");
    }
    record.end()
}

/// The text of file `index`: one line `{"Records":[...]}`, records in time order within the file.
fn log_file(seed: u64, index: u64, ses_per_mille: u64) -> String {
    let mut rng = Rng::new(seed, index);
    let start = START + index as i64 * FILE_SECONDS;
    let end = start + FILE_SECONDS;
    let count = rng.range(200, 600);
    let mut events: Vec<(i64, Who, Call)> = Vec::with_capacity(count as usize + 8);
    while (events.len() as u64) < count {
        let time = start + rng.below(FILE_SECONDS as u64) as i64;
        if rng.chance(ses_per_mille) {
            events.extend(ses_events(&mut rng, time, end));
        } else {
            let who = pick_who(&mut rng);
            events.push((time, who, noise_call(&mut rng)));
        }
    }
    // CloudTrail files are roughly, not strictly, in time order; a stable sort keeps pairs in order.
    events.sort_by_key(|(time, _, _)| *time);
    let mut out = String::with_capacity(events.len() * 1400 + 16);
    out.push_str("{\"Records\":[");
    for (i, (time, who, call)) in events.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&record(&mut rng, time, &who, call));
    }
    out.push_str("]}");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
        let mut files: Vec<_> = std::fs::read_dir(dir)
            .expect("read_dir")
            .map(|e| {
                let path = e.expect("entry").path();
                let name = path
                    .file_name()
                    .expect("name")
                    .to_string_lossy()
                    .into_owned();
                (name, std::fs::read(&path).expect("read"))
            })
            .collect();
        files.sort();
        files
    }

    #[test]
    fn the_corpus_does_not_depend_on_the_thread_count() {
        let root =
            std::env::temp_dir().join(format!("sesguard-corpus-test-{}", std::process::id()));
        let options = |threads| Options {
            size: 600 << 10,
            seed: 5,
            threads,
            ..Options::default()
        };
        let one = generate(&root.join("one"), &options(1)).expect("generate");
        let three = generate(&root.join("three"), &options(3)).expect("generate");
        assert_eq!(one, three);
        assert!(one.files >= 2, "{one:?}");
        for form in ["raw", "gz"] {
            let (a, b) = (
                files(&root.join("one").join(form)),
                files(&root.join("three").join(form)),
            );
            assert_eq!(a.len() as u64, one.files);
            assert!(a == b, "{form} files differ");
        }
        let raw: u64 = files(&root.join("one/raw"))
            .iter()
            .map(|(_, b)| b.len() as u64)
            .sum();
        let gz: u64 = files(&root.join("one/gz"))
            .iter()
            .map(|(_, b)| b.len() as u64)
            .sum();
        assert_eq!((raw, gz), (one.raw_bytes, one.gz_bytes));
        let _ = std::fs::remove_dir_all(&root);
    }
}
