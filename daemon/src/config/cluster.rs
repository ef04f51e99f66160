//! `[cluster]`: where a cluster worker or relay finds its engines (NATS, PostgreSQL) and how
//! it shares the partitions. What they do with it is the cluster module's.

use super::Secret;
use serde::Deserialize;

/// `[cluster]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cluster {
    /// PostgreSQL connection string (libpq `key=value` or a `postgresql://` URL); a secret, as
    /// it may carry a password: `{ env = "..." }` or `{ file = "..." }`.
    /// Workers need it; a relay's config may leave it out.
    #[serde(default)]
    pub postgres: Option<Secret>,
    /// NATS servers, `nats://host:port` (several: the client fails over between them).
    pub nats: Vec<String>,
    /// The NATS user of this process's role (`relay` or `worker` in deploy/cluster's
    /// authorization block): what it may publish and subscribe is the server's to enforce.
    #[serde(default)]
    pub nats_user: Option<String>,
    /// That user's password (a secret: `{ file = ... }` or `{ env = ... }`).
    #[serde(default)]
    pub nats_password: Option<Secret>,
    /// A CA certificate (PEM) to verify the NATS servers with: TLS is then required.
    #[serde(default)]
    pub nats_ca: Option<std::path::PathBuf>,
    /// A client certificate (PEM) for servers that verify clients (with `nats_key`).
    #[serde(default)]
    pub nats_cert: Option<std::path::PathBuf>,
    /// The client certificate's private key (PEM).
    #[serde(default)]
    pub nats_key: Option<std::path::PathBuf>,
    /// Partitions of the reading stream: must equal K of nats-server's `partition(K, 1)`
    /// mapping (deploy/nats/). More partitions than workers lets the load spread and move.
    #[serde(default = "partitions")]
    pub partitions: u32,
    /// Replicas of the stream (3 for a three-node NATS cluster).
    #[serde(default = "replicas")]
    pub replicas: usize,
    /// This worker's name, unique per worker (default: host name and process id).
    #[serde(default)]
    pub worker_id: Option<String>,
    /// A worker whose heartbeat is older than this loses its partitions to the others, ms.
    #[serde(default = "lease_ms")]
    pub lease_ms: u64,
    /// How long the stream keeps readings, days (workers keep their own position; this only
    /// bounds the disk).
    #[serde(default = "keep_days")]
    pub keep_days: u32,
}

fn partitions() -> u32 {
    8
}

fn replicas() -> usize {
    3
}

fn lease_ms() -> u64 {
    Cluster::DEFAULT_LEASE_MS
}

fn keep_days() -> u32 {
    7
}

impl Cluster {
    /// `lease_ms` when the file does not say.
    pub const DEFAULT_LEASE_MS: u64 = 3000;

    /// What `gridsentry check` says about it.
    pub fn check(&self) -> Result<(), String> {
        if self.nats.is_empty() {
            return Err("nats: list at least one server, e.g. [\"nats://127.0.0.1:4222\"]".into());
        }
        for n in &self.nats {
            let u = url::Url::parse(n).map_err(|e| format!("nats: `{n}`: {e}"))?;
            if !matches!(u.scheme(), "nats" | "tls") || u.host_str().is_none() || u.port().is_none() {
                return Err(format!("nats: `{n}`: expected nats://host:port"));
            }
        }
        if self.nats_password.is_some() != self.nats_user.is_some() {
            return Err("nats_user and nats_password: give both or neither".into());
        }
        if self.nats_cert.is_some() != self.nats_key.is_some() {
            return Err("nats_cert and nats_key: give both or neither".into());
        }
        for f in [&self.nats_ca, &self.nats_cert, &self.nats_key].into_iter().flatten() {
            if !f.is_file() {
                return Err(format!("{}: no such file", f.display()));
            }
        }
        if !(1..=1024).contains(&self.partitions) {
            return Err(format!("partitions = {}: 1 to 1024", self.partitions));
        }
        if !(1..=5).contains(&self.replicas) {
            return Err(format!("replicas = {}: 1 to 5", self.replicas));
        }
        if self.lease_ms < 500 {
            return Err(format!("lease_ms = {}: at least 500", self.lease_ms));
        }
        if let Some(w) = &self.worker_id {
            if w.is_empty() || w.len() > 64 {
                return Err("worker_id: 1 to 64 characters".into());
            }
        }
        Ok(())
    }

    /// This worker's id.
    pub fn worker(&self) -> String {
        self.worker_id.clone().unwrap_or_else(|| {
            let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
            format!("{}-{}", host.trim(), std::process::id())
        })
    }
}
