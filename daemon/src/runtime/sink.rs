//! Where committed readings go: with a time-series server the store stage (which acks them
//! once stored or spilled), without one straight back as acks.

use super::{AppError, Overrides};
use crate::config::Config;
use crate::flow::{AckSender, Sink};
use crate::metrics::Metrics;
use crate::watchdog::{Health, Progress};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// The time-series server readings go to: `[influx]`, or the demo's override.
pub(super) fn influx(cfg: &Config, o: &Overrides) -> Option<crate::config::Influx> {
    o.influx.clone().or_else(|| cfg.influx.as_ref().map(|i| i.get_ref().clone()))
}

/// Where the store stage keeps its files, and its watchdog progress.
pub(super) struct Stage<'a> {
    /// Its spool goes under `data_dir/spool`.
    pub data_dir: &'a std::path::Path,
    /// The SQLite file of its marks (what the server already has).
    pub marks: &'a std::path::Path,
    /// Readings taken and finished.
    pub progress: Arc<Progress>,
}

/// A sink and the store stage's thread behind it, if any.
pub(super) type Built = (Arc<dyn Sink>, Option<std::thread::JoinHandle<()>>);

/// The sink pipelines hand committed batches to, and the store stage's thread if there is one
/// (its end is reported to `health`).
pub(super) fn sink(
    cfg: &Config,
    o: &Overrides,
    stage: Stage,
    acks: AckSender,
    metrics: Arc<Metrics>,
    (health, shutdown): (&Arc<Health>, &watch::Receiver<bool>),
) -> Result<Built, AppError> {
    let Some(i) = influx(cfg, o) else { return Ok((Arc::new(acks), None)) };
    let token = match &i.token {
        Some(t) => t.resolve().map_err(|e| AppError::Secret(format!("[influx] token: {e}")))?,
        None => String::new(),
    };
    let writer =
        crate::series::Influx::new(&i.url, &i.org, &i.bucket, &token, Duration::from_millis(i.timeout_ms))
            .map_err(crate::series::SeriesError::Client)?;
    let settings = crate::series::Settings {
        batch_lines: i.batch_lines,
        linger: Duration::from_millis(i.linger_ms),
        retry_initial: Duration::from_millis(i.retry_initial_ms),
        retry_max: Duration::from_millis(i.retry_max_ms),
        spool_dir: stage.data_dir.join("spool"),
        spool_max_bytes: i.spool_max_mb << 20,
        tags: i.tags.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        db: stage.marks.to_path_buf(),
        readings_max_age: (cfg.privacy.readings_days > 0)
            .then(|| Duration::from_secs(cfg.privacy.readings_days * 86_400)),
    };
    tracing::info!(url = %i.url, bucket = %i.bucket, "storing readings in the time-series server");
    let ended = crate::watchdog::ended_hook("series", health, shutdown);
    let (tx, handle) = crate::series::spawn(writer, settings, acks, metrics, stage.progress, ended)?;
    Ok((Arc::new(tx), Some(handle)))
}
