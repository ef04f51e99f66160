//! Wiring: builds the daemon's stages from a config, once, for both modes, and stops them on a
//! shutdown signal. A mode file only chooses the ends:
//!
//! ```text
//!              ends in                         middle (build.rs, sink.rs)                ends out
//! edge.rs      MQTT broker + field devices ─▶  pipeline(s): rules → orders  ─▶ notify ─▶ webhooks
//!              SQLite orders.db                store stage (InfluxDB) or acks,  API + console,
//! worker.rs    JetStream partitions (owner) ─▶ watchdog, data-dir lock          /readyz, /metrics
//!              PostgreSQL
//! ```
//!
//! `cluster/` holds the mechanisms a worker uses (stream, ownership, partition runners,
//! fan-out, relay) and never calls back into this module; the API learns a mode's readiness
//! through [`crate::watchdog::Readiness`].

mod build;
mod edge;
mod sink;
mod worker;

pub use build::{load_tls, private_dir, reload_of};

use crate::config::Config;
use crate::metrics::Metrics;
use crate::notify::deliver::Backoff;
use crate::orders::{Change, StoreError};
use crate::pipeline::{Control, PipelineError};
use crate::rules::RuleError;
use crate::watchdog::Health;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{broadcast, mpsc, watch};

/// Why the daemon could not start or had to stop.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The order store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A rule is impossible (normally caught by the config check).
    #[error(transparent)]
    Rule(#[from] RuleError),
    /// MQTT could not be set up.
    #[error(transparent)]
    Ingest(#[from] crate::ingest::mqtt::IngestError),
    /// A secret could not be read.
    #[error("{0}")]
    Secret(String),
    /// Files, sockets, threads.
    #[error("{0}: {1}")]
    Io(&'static str, std::io::Error),
    /// The pipeline thread died.
    #[error("pipeline stopped: {0}")]
    Pipeline(String),
    /// The store stage could not start.
    #[error(transparent)]
    Series(#[from] crate::series::SeriesError),
    /// Cluster mode could not start.
    #[error(transparent)]
    Cluster(#[from] crate::cluster::ClusterError),
}

/// Settings that the command line (or the demo) overrides.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// API address instead of `daemon.http`.
    pub http: Option<String>,
    /// Data directory instead of `daemon.data_dir`.
    pub data_dir: Option<PathBuf>,
    /// Receiver URLs by name.
    pub receiver_urls: HashMap<String, String>,
    /// Wall-clock check interval (default 1 s).
    pub tick: Option<Duration>,
    /// Webhook retry timing.
    pub backoff: Option<Backoff>,
    /// Time-series server instead of `[influx]` (the demo's `--influx-url`).
    pub influx: Option<crate::config::Influx>,
    /// Where order transitions are announced, for a caller that must see them from the very
    /// first (subscribe before starting: the stages start working before `start` returns).
    pub changes: Option<broadcast::Sender<Change>>,
}

/// A running daemon.
pub struct Running {
    /// Where the API listens.
    pub http: SocketAddr,
    /// The broker's port (the embedded one, or the configured one; 0 for a cluster worker).
    pub mqtt_port: u16,
    /// Every order transition.
    pub changes: broadcast::Sender<Change>,
    /// Counters.
    pub metrics: Arc<Metrics>,
    /// Config reloads go here.
    pub control: mpsc::UnboundedSender<Control>,
    /// The watchdog's verdict: `fatal()` fires when a stage stalled or ended.
    pub health: Arc<Health>,
    /// The API's TLS configuration (replace it to reload the certificate).
    pub tls: Option<crate::api::serve::Tls>,
    /// The pipeline thread (edge mode) or the ownership loop (a worker).
    pipeline: std::thread::JoinHandle<Result<(), PipelineError>>,
    series: Option<std::thread::JoinHandle<()>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    /// The data directory's lock ([`build::lock_data_dir`]), held until the daemon has stopped.
    _lock: Option<std::fs::File>,
}

/// Starts the daemon; it stops when `shutdown` turns true. With `[cluster]` it is a cluster
/// worker.
pub async fn start(cfg: Config, o: Overrides, shutdown: watch::Receiver<bool>) -> Result<Running, AppError> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    match cfg.cluster.is_some() {
        true => worker::start(cfg, o, shutdown).await,
        false => edge::start(cfg, o, shutdown).await,
    }
}

impl Running {
    /// Waits until every stage has stopped (after shutdown), or the pipeline failed.
    pub async fn wait(self) -> Result<(), AppError> {
        let pipeline = self.pipeline;
        let result = tokio::task::spawn_blocking(move || pipeline.join())
            .await
            .map_err(|e| AppError::Pipeline(e.to_string()))?
            .map_err(|_| AppError::Pipeline("panicked".into()))?;
        if let Some(s) = self.series {
            // The pipeline dropped its sender: the stage spills what is pending and ends.
            let _ = tokio::task::spawn_blocking(move || s.join()).await;
        }
        for t in self.tasks {
            t.abort();
            let _ = t.await;
        }
        result.map_err(|e| AppError::Pipeline(e.to_string()))
    }
}
