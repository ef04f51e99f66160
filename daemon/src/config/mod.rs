//! The config file: one TOML file, unknown keys rejected, unit-suffixed names.
//!
//! Every error is reported as `FILE:LINE:COL: message` (see [`load`]), semantic ones included
//! (an impossible rule points at its `[[rule]]` table). Secrets never sit in the file: tokens
//! and webhook secrets name an environment variable or a file.

mod cluster;
mod field;
mod fleet;
mod load;
mod ota;
mod report;
mod secret;
mod storm;
mod warning;

pub use cluster::Cluster;
pub use field::{ModbusDevice, SerialDevice};
pub use fleet::{Allow, Devices, DutyConfig, Privacy, SiteConfig};
pub use load::{load, load_rules, parse, ConfigError};
pub use ota::OtaConfig;
pub use report::Hj212Config;
pub use secret::Secret;
pub use storm::{GroupBy, GroupConfig};
pub use warning::{residents, BroadcastConfig, SmsConfig, WarningConfig};

use crate::orders::SlaTable;
use crate::rules::RuleConfig;
use serde::Deserialize;
use std::path::PathBuf;
use toml::Spanned;

/// The whole file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Process-wide settings.
    #[serde(default)]
    pub daemon: Daemon,
    /// External broker; absent: an embedded broker is started.
    #[serde(default)]
    pub mqtt: Option<Mqtt>,
    /// Time-series server; absent: readings are not stored (rules and orders still run).
    #[serde(default)]
    pub influx: Option<Spanned<Influx>>,
    /// Service-level deadlines per colour.
    #[serde(default)]
    pub sla: SlaTable,
    /// Polled Modbus devices.
    #[serde(default, rename = "modbus")]
    pub modbus: Vec<Spanned<ModbusDevice>>,
    /// Line-oriented serial devices (GNSS receivers).
    #[serde(default, rename = "serial")]
    pub serial: Vec<Spanned<SerialDevice>>,
    /// Webhook retry timing, shared by all receivers.
    #[serde(default)]
    pub delivery: Option<Spanned<Delivery>>,
    /// Which devices are heard, and how many are tracked.
    #[serde(default)]
    pub devices: Option<Spanned<Devices>>,
    /// How long personal data is kept.
    #[serde(default)]
    pub privacy: Privacy,
    /// Webhook receivers.
    #[serde(default, rename = "receiver")]
    pub receivers: Vec<Spanned<ReceiverConfig>>,
    /// Rules.
    #[serde(default, rename = "rule")]
    pub rules: Vec<Spanned<RuleConfig>>,
    /// Where the sites are (the console's map and its street grouping).
    #[serde(default, rename = "site")]
    pub sites: Vec<Spanned<SiteConfig>>,
    /// Who is on duty for which street, when (the console's dispatch picker).
    #[serde(default, rename = "duty")]
    pub duty: Vec<Spanned<DutyConfig>>,
    /// Incidents: which orders share a cause (a street's power cut), paged once and digested.
    #[serde(default, rename = "group")]
    pub groups: Vec<Spanned<GroupConfig>>,
    /// Public warnings: residents of a hazard site warned by SMS and broadcast.
    #[serde(default, rename = "warning")]
    pub warnings: Vec<Spanned<WarningConfig>>,
    /// Noise boxes reported to the environmental bureau over HJ 212 (edge mode).
    #[serde(default, rename = "hj212")]
    pub hj212: Vec<Spanned<Hj212Config>>,
    /// Cluster mode: orders in PostgreSQL, readings from NATS JetStream (absent: edge mode).
    /// `[ota]`: fleet updates over the air.
    #[serde(default)]
    pub ota: Option<Spanned<OtaConfig>>,
    #[serde(default)]
    pub cluster: Option<Spanned<Cluster>>,
    /// `gridsentry relay`'s own settings.
    #[serde(default)]
    pub relay: Option<Spanned<RelaySettings>>,
}

/// `[relay]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RelaySettings {
    /// Where the relay serves `/healthz`, `/readyz` and `/metrics` (default: `[daemon] http`).
    pub http: Spanned<String>,
}

/// `[daemon]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Daemon {
    /// Where the order database lives.
    pub data_dir: PathBuf,
    /// API and console address.
    pub http: Spanned<String>,
    /// IANA time zone for time-of-day limits.
    pub timezone: Spanned<String>,
    /// A shared bearer token for machines (healthchecks, scripts): acts as `legacy-token` with
    /// an operator's rights. Off by default; people log in with their own names. Older configs'
    /// `api_token` is read as this.
    #[serde(alias = "api_token")]
    pub legacy_token: Option<Secret>,
    /// TLS for the API and console (rustls); the certificate is re-read on SIGHUP.
    pub tls: Option<Spanned<ApiTls>>,
    /// Serve the API in plain HTTP on an address other machines reach (behind a proxy that
    /// terminates TLS). Without it such an address needs `tls`.
    pub allow_plain_http: bool,
    /// A request's headers must arrive within this, seconds (an idle keep-alive connection is
    /// closed after it too).
    pub header_timeout_s: std::num::NonZeroU64,
    /// A connection moving no byte for this long is dropped, seconds.
    pub idle_timeout_s: std::num::NonZeroU64,
    /// API connections at once (default: half the process's file limit, 32 to 4,096).
    pub max_connections: Option<std::num::NonZeroUsize>,
    /// Most readings per group commit.
    pub batch_max: usize,
    /// How long a group commit waits for more readings, ms. 0 (the default): commit what has
    /// arrived at once; readings that come in during a commit form the next group. Raising it
    /// trades latency for CPU (measured at 5k readings/s: 0 ms → 45 µs per reading and a p99 of
    /// 2 ms publish → webhook; 5 ms → 26 µs and 7 ms).
    pub batch_linger_ms: u64,
    /// Listen address of the embedded broker (used when `[mqtt]` is absent). Loopback by
    /// default: it has no authentication, so open it to the devices' network deliberately.
    pub embedded_broker: Spanned<String>,
    /// Work pending and no progress for this long, seconds: the stage is stalled, `/readyz`
    /// turns red (from half of it) and the process exits non-zero for its supervisor to
    /// restart it (see `watchdog`).
    pub stall_s: std::num::NonZeroU64,
    /// How far ahead of its receive time a device may stamp a reading, seconds. A reading
    /// stamped further ahead, or before 2020, is evaluated and stored at its receive time,
    /// flagged and counted (`gridsentry_clock_skew_total`); see `devtime`.
    pub max_clock_skew_s: u64,
}

impl Default for Daemon {
    fn default() -> Self {
        Daemon {
            data_dir: PathBuf::from("gridsentry-data"),
            http: Spanned::new(0..0, "127.0.0.1:8080".into()),
            timezone: Spanned::new(0..0, "Asia/Shanghai".into()),
            legacy_token: None,
            tls: None,
            allow_plain_http: false,
            header_timeout_s: const { std::num::NonZeroU64::new(10).unwrap() },
            idle_timeout_s: const { std::num::NonZeroU64::new(30).unwrap() },
            max_connections: None,
            batch_max: 512,
            batch_linger_ms: 0,
            embedded_broker: Spanned::new(0..0, "127.0.0.1:1883".into()),
            stall_s: const { std::num::NonZeroU64::new(30).unwrap() },
            max_clock_skew_s: crate::devtime::DEFAULT_MAX_SKEW_S,
        }
    }
}

/// `[daemon] tls`: PEM files.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiTls {
    /// The certificate chain, `{ file = "…" }`.
    pub cert: PemFile,
    /// The private key, `{ file = "…" }` (refused when readable by every user).
    pub key: PemFile,
}

/// A PEM file named in the config.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PemFile {
    /// Its path.
    pub file: PathBuf,
}

impl ApiTls {
    /// Reads both files: (certificate, key).
    pub fn read(&self) -> Result<(Vec<u8>, Vec<u8>), String> {
        secret::refuse_world_readable(&self.key.file)?;
        let read =
            |p: &std::path::Path| std::fs::read(p).map_err(|e| format!("cannot read {}: {e}", p.display()));
        Ok((read(&self.cert.file)?, read(&self.key.file)?))
    }
}

/// `[delivery]`: how failed webhook requests are retried. A receiver that fails
/// `breaker_failures` times in a row is left alone for `breaker_cooldown_ms` (one probe then),
/// so a dead chat robot does not hold up the others.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Delivery {
    /// First retry delay, ms (doubles per attempt, jittered down by up to half).
    pub retry_initial_ms: u64,
    /// Longest retry delay, ms.
    pub retry_max_ms: u64,
    /// Consecutive failures that open a receiver's circuit.
    pub breaker_failures: u32,
    /// How long an open circuit waits before probing again, ms.
    pub breaker_cooldown_ms: u64,
}

impl Default for Delivery {
    fn default() -> Self {
        let b = crate::notify::deliver::Backoff::default();
        Delivery {
            retry_initial_ms: b.base.as_millis() as u64,
            retry_max_ms: b.cap.as_millis() as u64,
            breaker_failures: b.breaker_failures,
            breaker_cooldown_ms: b.breaker_cooldown.as_millis() as u64,
        }
    }
}

impl Delivery {
    /// The retry timing it describes.
    pub fn backoff(&self) -> crate::notify::deliver::Backoff {
        crate::notify::deliver::Backoff {
            base: std::time::Duration::from_millis(self.retry_initial_ms),
            cap: std::time::Duration::from_millis(self.retry_max_ms),
            breaker_failures: self.breaker_failures,
            breaker_cooldown: std::time::Duration::from_millis(self.breaker_cooldown_ms),
            ..Default::default()
        }
    }
}

/// `[mqtt]`: an external broker.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mqtt {
    /// Broker host.
    pub host: String,
    /// Broker port.
    #[serde(default = "mqtt_port")]
    pub port: u16,
    /// Stable client id: the broker keeps the session (and unacked messages) under it.
    #[serde(default = "client_id")]
    pub client_id: String,
    /// User name.
    #[serde(default)]
    pub username: Option<String>,
    /// Password.
    #[serde(default)]
    pub password: Option<Secret>,
    /// CA certificate (PEM) for TLS; TLS is on when set.
    #[serde(default)]
    pub tls_ca_file: Option<PathBuf>,
    /// Keep-alive, seconds.
    #[serde(default = "keepalive_s")]
    pub keepalive_s: u64,
    /// Largest message accepted, KiB. A larger one is counted
    /// (`gridsentry_malformed_total{reason="too_large"}`), logged with its topic, acked and
    /// dropped; ingestion goes on. Bound what reaches the daemon with the broker's
    /// `max_packet_size` (deploy/mosquitto).
    #[serde(default = "max_message_kb")]
    pub max_message_kb: std::num::NonZeroUsize,
}

fn mqtt_port() -> u16 {
    1883
}

fn client_id() -> String {
    "gridsentry".into()
}

fn keepalive_s() -> u64 {
    30
}

fn max_message_kb() -> std::num::NonZeroUsize {
    const { std::num::NonZeroUsize::new(256).unwrap() }
}

/// `[influx]`: an InfluxDB v2 write API (InfluxDB 2/3, VictoriaMetrics, ...).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Influx {
    /// Base URL, e.g. `http://127.0.0.1:8086`.
    pub url: String,
    /// Organisation.
    #[serde(default = "influx_name")]
    pub org: String,
    /// Bucket.
    #[serde(default = "influx_name")]
    pub bucket: String,
    /// API token (absent: no Authorization header).
    #[serde(default)]
    pub token: Option<Secret>,
    /// Most points per write.
    #[serde(default = "batch_lines")]
    pub batch_lines: usize,
    /// Longest a point waits for its batch, ms (its MQTT ack waits too).
    #[serde(default = "linger_ms")]
    pub linger_ms: u64,
    /// Per-write timeout, ms.
    #[serde(default = "timeout_ms")]
    pub timeout_ms: u64,
    /// First retry delay, ms (doubles, with jitter).
    #[serde(default = "retry_initial_ms")]
    pub retry_initial_ms: u64,
    /// Longest retry delay, ms.
    #[serde(default = "retry_max_ms")]
    pub retry_max_ms: u64,
    /// Disk spool bound, MiB; beyond it the oldest spilled batches are dropped (counted).
    #[serde(default = "spool_max_mb")]
    pub spool_max_mb: u64,
    /// Tags on every point, e.g. `{ grid = "g12", street = "xinhua-rd" }`.
    #[serde(default)]
    pub tags: std::collections::BTreeMap<String, String>,
}

impl Influx {
    /// A server at `url` with every other setting at its default.
    pub fn at(url: &str) -> Influx {
        Influx {
            url: url.into(),
            org: influx_name(),
            bucket: influx_name(),
            token: None,
            batch_lines: batch_lines(),
            linger_ms: linger_ms(),
            timeout_ms: timeout_ms(),
            retry_initial_ms: retry_initial_ms(),
            retry_max_ms: retry_max_ms(),
            spool_max_mb: spool_max_mb(),
            tags: Default::default(),
        }
    }
}

fn influx_name() -> String {
    "gridsentry".into()
}

fn batch_lines() -> usize {
    5000
}

fn linger_ms() -> u64 {
    20
}

fn retry_initial_ms() -> u64 {
    500
}

fn retry_max_ms() -> u64 {
    30_000
}

fn spool_max_mb() -> u64 {
    1024
}

/// `[[receiver]]`: a webhook endpoint.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReceiverConfig {
    /// Name (orders' notifications refer to it).
    pub name: String,
    /// `http://` or `https://` URL to POST to.
    pub url: String,
    /// Escalation tier: 0 first; a missed deadline moves an order to the next tier.
    #[serde(default)]
    pub tier: i64,
    /// What the receiver speaks: `generic` (default), `wecom`, `dingtalk`, `feishu`,
    /// `alertmanager`.
    #[serde(default)]
    pub format: crate::notify::Format,
    /// Signing key: the Standard Webhooks signature (`webhook-signature`; required for
    /// `generic`; a `whsec_` secret is Base64-decoded as the spec says), and the signing secret
    /// of a DingTalk or Feishu robot with signature checks on.
    #[serde(default)]
    pub secret: Option<Secret>,
    /// A chat robot's key (WeCom `key`, DingTalk `access_token`, Feishu's hook token), from a
    /// secret: added to the URL only when sending, never printed.
    pub key: Option<Secret>,
    /// Per-request timeout, ms.
    #[serde(default = "timeout_ms")]
    pub timeout_ms: u64,
    /// Attempts before a notification becomes a dead letter.
    #[serde(default = "max_attempts")]
    pub max_attempts: u32,
    /// Receiver that gets a copy of what this one could not take.
    #[serde(default)]
    pub fallback: Option<String>,
    /// A person's own receiver (their WeCom/DingTalk user or robot): it hears every change of
    /// the orders dispatched to that person, and takes no part in tier routing.
    #[serde(default)]
    pub person: Option<String>,
    /// Fields of the evidence (the reading) left out of what this receiver gets, as
    /// `stream.field` (`hr.rr_1024`, `hr.energy_kj`, `noise.l90_db`, ...). Default: the heart's
    /// RR intervals (health data: the rate stays); `[]` sends the whole reading.
    #[serde(default = "redact")]
    pub redact: Vec<String>,
    /// Messages per minute at most; beyond it notifications wait and go out as one digest, red
    /// first and never in a digest. Default: 20 for `wecom` and `dingtalk` robots (their
    /// vendors' limit), 100 for `feishu`, none otherwise; 0 means none.
    #[serde(default)]
    pub max_per_minute: Option<u32>,
}

impl ReceiverConfig {
    /// The rate limit in force (`max_per_minute`, or the format's default).
    pub fn rate_limit(&self) -> Option<u32> {
        use crate::notify::Format;
        match (self.max_per_minute, self.format) {
            (Some(0), _) => None,
            (Some(n), _) => Some(n),
            (None, Format::Wecom | Format::Dingtalk) => Some(20),
            (None, Format::Feishu) => Some(100),
            (None, _) => None,
        }
    }
}

fn redact() -> Vec<String> {
    crate::notify::redact::DEFAULT.iter().map(|s| s.to_string()).collect()
}

fn timeout_ms() -> u64 {
    5000
}

fn max_attempts() -> u32 {
    8
}
