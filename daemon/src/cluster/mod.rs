//! Cluster mode: the same rules, orders, API and console, past one machine, on two existing
//! engines. Devices still speak MQTT to their street's broker; `gridsentry relay` moves each
//! reading into NATS JetStream (a file-backed stream replicated three ways) and acknowledges the
//! device only after JetStream did; `gridsentry run` with `[cluster]` is a worker: it owns some
//! of the stream's partitions (a site's readings always land in one partition), applies their
//! readings with the rules and commits orders, rule state and its stream position to PostgreSQL
//! in one transaction per batch.
//!
//! ```text
//! devices ─MQTT─▶ broker ─▶ relay ─▶ JetStream gs.in.SITE.DEV.STREAM ─(mapping)─▶ gs.p.P.SITE.DEV.STREAM
//!                                                 │ one ordered consumer per owned partition
//!                             PostgreSQL ◀── workers (advisory-lock ownership, epoch fencing) ─▶ webhooks, API
//! ```
//!
//! Why these engines: both are maintained, installable from Debian, and keep what they
//! acknowledge across the loss of a node (JetStream R3 with file storage; PostgreSQL with
//! synchronous replication under Patroni). See `deploy/README.md` for sizing and HA.

pub mod checks;
pub mod connect;
pub mod consume;
pub mod fanout;
pub mod owner;
pub mod relay;
pub mod relay_http;
pub mod stall;
pub mod status;
pub mod stream;
pub mod worker;

/// `[cluster]` (read with the rest of the config file; the config knows no mechanism).
pub use crate::config::Cluster as Config;

/// Why cluster mode failed.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// NATS could not be reached or refused.
    #[error("nats: {0}")]
    Nats(String),
    /// The order store failed.
    #[error(transparent)]
    Store(#[from] crate::orders::StoreError),
    /// A secret could not be read.
    #[error("{0}")]
    Secret(String),
    /// A partition's pipeline could not be built (its rules or store).
    #[error("partition pipeline: {0}")]
    Pipeline(String),
    /// This worker's commit was refused: another worker took the partition (fenced).
    #[error("partition {0}: fenced (another worker owns it now)")]
    Fenced(u32),
}
