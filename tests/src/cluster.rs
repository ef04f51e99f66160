//! A cluster worker's config as the cluster tests and `cluster-bench` write it, and what its
//! `/readyz` says it owns.

use crate::nats::Nats;
use crate::{write_secret, SECRET, TOKEN};
use std::path::{Path, PathBuf};

/// The environment variable a worker's `[cluster] postgres` names.
pub const PG_ENV: &str = "GS_TEST_PG";

/// How a worker's config differs from the plain one.
pub struct Opts<'a> {
    /// `[cluster] partitions` (the tests' NATS mapping says 4).
    pub k: u32,
    /// The noise rule's colour.
    pub colour: &'a str,
    /// Its limit, dB(A).
    pub above: f64,
    /// Its `for_s` and `clear_for_s`.
    pub for_s: u64,
    /// More config (`[influx]`, `[sla.red]`, more rules).
    pub extra: String,
    /// Environment of the process (the debug build's test hooks).
    pub env: Vec<(&'a str, &'a str)>,
    /// More `[daemon]` lines (`stall_s = 4`).
    pub daemon: String,
    /// `[cluster] lease_ms` (`None`: the shipped default).
    pub lease_ms: Option<u64>,
}

impl Default for Opts<'_> {
    fn default() -> Self {
        Opts {
            k: 4,
            colour: "orange",
            above: 70.0,
            for_s: 0,
            extra: String::new(),
            env: Vec::new(),
            daemon: String::new(),
            lease_ms: Some(1500),
        }
    }
}

/// Writes worker `name`'s config into `dir` (again, for a reload): API on `http`, receiver
/// `grid` at `{hooks}/grid`, data in `dir/{name}-data`. Its path.
pub fn worker_config(dir: &Path, name: &str, http: u16, nats: &Nats, hooks: &str, o: &Opts) -> PathBuf {
    let (token, secret) = (dir.join("token"), dir.join("secret"));
    write_secret(&token, TOKEN);
    write_secret(&secret, SECRET);
    let cfg = dir.join(format!("{name}.toml"));
    std::fs::write(
        &cfg,
        format!(
            r#"[daemon]
http = "127.0.0.1:{http}"
legacy_token = {{ file = "{token}" }}
data_dir = "{data}"
{daemon}
[cluster]
postgres = {{ env = "{PG_ENV}" }}
{nats}partitions = {k}
worker_id = "{name}"
{lease}

[[receiver]]
name = "grid"
url = "{hooks}/grid"
secret = {{ file = "{secret}" }}
timeout_ms = 500

[[rule]]
id = "plaza-noise"
colour = "{colour}"
condition = {{ type = "threshold", stream = "noise", field = "laeq_db", above = {above:.1}, clear = 65.0, for_s = {for_s}, clear_for_s = {for_s} }}

{extra}
"#,
            k = o.k,
            colour = o.colour,
            above = o.above,
            for_s = o.for_s,
            extra = o.extra,
            daemon = o.daemon,
            lease = o.lease_ms.map_or(String::new(), |l| format!("lease_ms = {l}")),
            data = dir.join(format!("{name}-data")).display(),
            token = token.display(),
            secret = secret.display(),
            nats = nats.toml(crate::nats::Role::Worker),
        ),
    )
    .unwrap();
    cfg
}

/// The partitions a worker's `/readyz` says it owns (empty while it does not answer).
pub async fn owned(http: u16) -> Vec<u32> {
    let Ok(r) = reqwest::get(format!("http://127.0.0.1:{http}/readyz")).await else { return Vec::new() };
    let text = r.text().await.unwrap_or_default();
    let Some(list) = text.trim().strip_prefix("ready; partitions owned:") else { return Vec::new() };
    list.split(',').filter_map(|p| p.split_whitespace().next()?.parse().ok()).collect()
}
