//! One owned partition at work: an ordered JetStream consumer from the partition's committed
//! position feeds the daemon's own pipeline (rules → orders, group commits), whose store is
//! scoped to the partition: every commit carries the stream position and is refused if another
//! worker has taken the partition since (fencing). A crash replays from the committed position;
//! per-device sequence windows (committed in the same transaction) make a re-applied reading
//! a detected duplicate, as in edge mode.
//!
//! No JetStream acknowledgements: the position lives in PostgreSQL with the orders it caused,
//! so "applied" and "acknowledged" cannot disagree; the stream's retention is by age.
//!
//! With `[influx]` the committed readings go on to the worker's store stage (as in edge mode)
//! and a second position, `stored`, follows what that stage has finished (written or spilled):
//! every reading at or below it is done ([`Lag::done`]). The ownership loop records it with its
//! heartbeats, and a new owner starts from the lower of the two positions: readings between
//! them are re-applied as detected duplicates (no rule sees them twice) and written to the time
//! series again, so a worker killed between a commit and the write loses no point.

use super::ClusterError;
use crate::flow::{self, Ack};
use crate::orders::{Scope, Store};
use crate::pipeline::{Control, Pipeline, PipelineError, Tuning};
use async_nats::jetstream;
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, watch};

/// How a partition's pipeline is built (the same for every partition of a worker).
#[derive(Clone)]
pub struct Recipe {
    /// PostgreSQL connection string.
    pub postgres: String,
    /// Deadlines per colour.
    pub sla: crate::orders::SlaTable,
    /// Receivers for routing.
    pub routing: Vec<crate::orders::Receiver>,
    /// Builds a partition's pipeline (rules, devices, clock, privacy, where it reports) on its
    /// store: the wiring's, handed in, so that this module never calls back into it.
    pub build: Arc<dyn Fn(Store) -> Result<Pipeline, String> + Send + Sync>,
    /// Batching.
    pub tuning: Tuning,
    /// Partitions of the stream (K of nats-server's mapping).
    pub partitions: u32,
    /// Where committed readings go: the worker's acks, or its store stage (`[influx]`).
    pub sink: Arc<dyn flow::Sink>,
    /// Whether `sink` stores readings in a time series (then a new owner starts from the lower
    /// of the committed and the stored position).
    pub stores_series: bool,
    /// The last reload (SIGHUP), if any: running partitions apply each new one, a partition
    /// taken later applies it before its first batch (its pipeline is built from the config the
    /// worker started with).
    pub reloads: watch::Sender<Option<Control>>,
}

/// How far a partition is behind, in readings, and up to where it is done.
#[derive(Debug, Default)]
pub struct Lag {
    /// Messages the stream holds for the partition beyond the last one delivered here.
    pub pending: AtomicU64,
    /// The stream's last sequence among the partition's subjects, as last asked.
    pub head: AtomicU64,
    /// Consumers re-created because nothing came while the stream held more.
    pub recreated: AtomicU64,
    /// Messages refused because their subject's partition is not their site's.
    pub misrouted: AtomicU64,
    /// Set by the owner when the partition stalls: the consumer is re-created at once.
    pub recreate: std::sync::atomic::AtomicBool,
    positions: Mutex<Positions>,
}

#[derive(Debug, Default)]
struct Positions {
    /// Stream sequences handed to the pipeline and not finished (acked) yet.
    outstanding: BTreeSet<u64>,
    /// The highest sequence delivered here (or the start position).
    highest: u64,
}

impl Lag {
    /// A partition read from the message after `from`.
    pub fn new(from: u64) -> Lag {
        Lag {
            positions: Mutex::new(Positions { outstanding: BTreeSet::new(), highest: from }),
            ..Lag::default()
        }
    }

    fn positions(&self) -> std::sync::MutexGuard<'_, Positions> {
        self.positions.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `seqs` went to the pipeline; every message up to `highest` was delivered (those not
    /// among `seqs` were skipped: not readings).
    pub(crate) fn handed(&self, seqs: impl Iterator<Item = u64>, highest: u64) {
        let mut p = self.positions();
        p.outstanding.extend(seqs);
        p.highest = p.highest.max(highest);
    }

    /// `seq` is finished: committed, and stored when the worker writes a time series.
    pub fn finished(&self, seq: u64) {
        self.positions().outstanding.remove(&seq);
    }

    /// Every message of the partition up to this sequence is finished.
    pub fn done(&self) -> u64 {
        let p = self.positions();
        p.outstanding.first().map_or(p.highest, |s| s.saturating_sub(1))
    }

    /// The highest stream sequence delivered here.
    pub fn delivered(&self) -> u64 {
        self.positions().highest
    }

    /// How far the partition is behind the stream: its head minus what is done, in stream
    /// sequences (0 when every message of the partition is applied). Unlike a count of
    /// messages beyond the last delivery, it grows when deliveries stop.
    pub fn behind(&self) -> u64 {
        self.head.load(Relaxed).saturating_sub(self.done())
    }
}

/// A running partition.
pub struct Runner {
    /// Partition number.
    pub partition: u32,
    /// Its epoch.
    pub epoch: i64,
    stop: watch::Sender<bool>,
    consumer: tokio::task::JoinHandle<Result<(), ClusterError>>,
    pipeline: std::thread::JoinHandle<Result<(), PipelineError>>,
    /// How far behind it is.
    pub lag: Arc<Lag>,
}

impl Runner {
    /// Whether it stopped by itself (fenced, store or stream failure).
    pub fn ended(&self) -> bool {
        self.pipeline.is_finished() || self.consumer.is_finished()
    }

    /// Stops it (the pipeline finishes its batch) and says why it ended, if it failed.
    pub fn stop(self, rt: &tokio::runtime::Handle) -> Option<String> {
        let _ = self.stop.send(true);
        let consumer = rt.block_on(self.consumer);
        let pipeline = self.pipeline.join();
        match (pipeline, consumer) {
            (Ok(Err(e)), _) => Some(e.to_string()),
            (Err(_), _) => Some("pipeline panicked".into()),
            (_, Ok(Err(e))) => Some(e.to_string()),
            _ => None,
        }
    }
}

/// Starts partition `p` at `epoch` from the stream position `lag` starts at, recording its
/// progress there (made with `Lag::new(from)`; the worker's ack router finds it by partition
/// and epoch, so register it before calling). Call it on a blocking thread (it connects to
/// PostgreSQL).
#[allow(clippy::too_many_arguments)]
pub fn start(
    recipe: &Recipe,
    session: &str,
    js: jetstream::Context,
    rt: tokio::runtime::Handle,
    p: u32,
    epoch: i64,
    lag: Arc<Lag>,
) -> Result<Runner, ClusterError> {
    let store = Store::connect_as(&recipe.postgres, session, recipe.sla, recipe.routing.clone())?
        .scoped(Scope { partition: p, epoch });
    let pipeline = (recipe.build)(store).map_err(ClusterError::Pipeline)?;
    let progress = crate::watchdog::Progress::new("partition");
    let (inlet, inbound) = flow::channel(progress.clone());
    let (stop, stopped) = watch::channel(false);
    let at = Position { p, k: recipe.partitions, epoch };
    let consumer = rt.spawn(super::consume::run(js, at, inlet, lag.clone(), stopped));
    // Reloads: the last one first (applied before the first batch), then every new one.
    let (control, control_rx) = mpsc::unbounded_channel::<Control>();
    let mut reloads = recipe.reloads.subscribe();
    rt.spawn(async move {
        loop {
            if let Some(c) = reloads.borrow_and_update().clone() {
                if control.send(c).is_err() {
                    return;
                }
            }
            if reloads.changed().await.is_err() {
                return;
            }
        }
    });
    let tuning = recipe.tuning;
    let rt2 = rt.clone();
    let sink = recipe.sink.clone();
    let pipeline = std::thread::Builder::new()
        .name(format!("partition-{p}"))
        .spawn(move || pipeline.run(rt2, inbound, control_rx, sink, tuning))
        .map_err(|e| ClusterError::Nats(format!("starting partition {p}: {e}")))?;
    Ok(Runner { partition: p, epoch, stop, consumer, pipeline, lag })
}

/// Where a runner reads: partition (of K) and epoch.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Position {
    pub(crate) p: u32,
    /// Partitions of the stream (K of the mapping).
    pub(crate) k: u32,
    pub(crate) epoch: i64,
}

/// Hands each finished reading (acked by the pipelines, or by the store stage once stored) to
/// its partition's progress, until every ack sender is gone.
pub async fn route_acks(mut acked: flow::Receiver<Ack>, status: Arc<super::owner::Status>) {
    while let Some(batch) = acked.recv().await {
        let n = batch.len();
        {
            let owned = status.owned.lock().unwrap_or_else(|p| p.into_inner());
            for a in batch {
                if let Ack::Stream { partition, epoch, seq } = a {
                    // An ack of a runner since stopped is dropped: its successor reads the
                    // reading again.
                    if let Some((_, lag)) = owned.get(&partition).filter(|(e, _)| *e == epoch) {
                        lag.finished(seq);
                    }
                }
            }
        }
        acked.done(n);
    }
}
