//! Store stage: every reading into the time-series database (InfluxDB v2 write API).
//!
//! The pipeline hands each committed batch of readings here instead of acking it; this stage
//! acks once the readings are accepted by the server or spilled to disk ([`spool`]), and replays
//! the disk oldest first when the server is back ([`stage`]). The stage runs on its own thread
//! with its own small runtime: its disk writes never hold up the daemon's other tasks, and a slow
//! server never holds up the rules.

mod marks;
mod narrow;
mod pending;
mod spool;
mod stage;
mod writer;

pub use spool::{Entry, Spool};
pub use writer::{check_url, Influx, WriteError, Writer};

use crate::flow::{self, AckSender, Inbound};
use crate::metrics::Metrics;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Why the store stage could not start.
#[derive(Debug, thiserror::Error)]
pub enum SeriesError {
    /// The spool directory is unusable.
    #[error("time-series spool {0}: {1}")]
    Spool(PathBuf, std::io::Error),
    /// The stored marks cannot be read.
    #[error("time-series marks in {0}: {1}")]
    Marks(PathBuf, rusqlite::Error),
    /// The client could not be built (bad URL).
    #[error("{0}")]
    Client(String),
    /// The thread could not start.
    #[error("starting the time-series thread: {0}")]
    Thread(std::io::Error),
}

/// Batching, retry and spool knobs (from `[influx]`).
#[derive(Debug, Clone)]
pub struct Settings {
    /// Most points per write.
    pub batch_lines: usize,
    /// Longest a point waits for its batch to fill.
    pub linger: Duration,
    /// First retry delay after a failed write; doubles up to `retry_max`.
    pub retry_initial: Duration,
    /// Longest retry delay.
    pub retry_max: Duration,
    /// Where unsent batches wait.
    pub spool_dir: PathBuf,
    /// Bound of the spool; beyond it the oldest batches are dropped (counted, logged).
    pub spool_max_bytes: u64,
    /// Tags added to every point (e.g. `grid`, `street`).
    pub tags: Vec<(String, String)>,
    /// The order database, where the stored marks live ([`marks`]).
    pub db: PathBuf,
    /// Readings waiting longer than this for the server are deleted (`[privacy]
    /// readings_days`); `None`: kept until sent (within `spool_max_bytes`).
    pub readings_max_age: Option<Duration>,
}

/// Where the pipeline sends committed readings.
pub type SeriesSender = flow::Sender<Inbound>;

/// Starts the stage on its own thread. It stops (spilling what is pending) when every sender
/// is dropped; join the handle to wait for that.
pub fn spawn<W: Writer>(
    writer: W,
    settings: Settings,
    acks: AckSender,
    metrics: Arc<Metrics>,
    progress: Arc<crate::watchdog::Progress>,
    ended: impl FnOnce(Option<String>) + Send + 'static,
) -> Result<(SeriesSender, std::thread::JoinHandle<()>), SeriesError> {
    let spool = Spool::open(&settings.spool_dir, settings.spool_max_bytes)
        .map_err(|e| SeriesError::Spool(settings.spool_dir.clone(), e))?;
    let marks = marks::Marks::open(&settings.db).map_err(|e| SeriesError::Marks(settings.db.clone(), e))?;
    let (tx, rx) = flow::channel(progress);
    let stage = stage::Stage::new(writer, spool, marks, settings, acks, metrics);
    let handle = std::thread::Builder::new()
        .name("series".into())
        .spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build();
            match rt {
                Ok(rt) => {
                    rt.block_on(stage.run(rx));
                    ended(None);
                }
                Err(e) => ended(Some(format!("time-series runtime failed to start: {e}"))),
            }
        })
        .map_err(SeriesError::Thread)?;
    Ok((tx, handle))
}
