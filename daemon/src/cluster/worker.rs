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

use super::stream::{parse_partitioned, partition_filter, rightly_placed, STREAM};
use super::ClusterError;
use crate::flow::{self, Ack, Inbound};
use crate::orders::{Scope, Store};
use crate::pipeline::{Control, Outputs, PipelineError, Sink, Tuning};
use async_nats::jetstream::{self, consumer};
use bytes::Bytes;
use futures_util::{FutureExt, StreamExt};
use gridsentry_sensors::{codec, Topic};
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// How a partition's pipeline is built (the same for every partition of a worker).
#[derive(Clone)]
pub struct Recipe {
    /// PostgreSQL connection string.
    pub postgres: String,
    /// The rules and deadlines, as the config says.
    pub config: Arc<crate::config::Config>,
    /// Receivers for routing.
    pub routing: Vec<crate::orders::Receiver>,
    /// Where pipelines report.
    pub outputs: Outputs,
    /// Batching.
    pub tuning: Tuning,
    /// Partitions of the stream (K of nats-server's mapping).
    pub partitions: u32,
    /// Where committed readings go: the worker's acks, or its store stage (`[influx]`).
    pub sink: Sink,
    /// The last reload (SIGHUP), if any: running partitions apply each new one, a partition
    /// taken later applies it before its first batch (its pipeline is built from the config the
    /// worker started with).
    pub reloads: watch::Sender<Option<Control>>,
}

impl Recipe {
    /// Whether committed readings go on to a time-series server (then a new owner starts
    /// from the lower of the committed and the stored position).
    pub fn stores_series(&self) -> bool {
        matches!(self.sink, Sink::Series(_))
    }
}

/// How long a partition's consumer may go without a delivery while the stream holds more of
/// the partition before it is re-created. After the stream's leader is lost the client's own
/// recovery waits for two missed 15 s heartbeats (23–35 s stalls were seen); the stream's head
/// tells sooner.
pub const REDELIVER_AFTER: Duration = Duration::from_secs(2);

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
    fn handed(&self, seqs: impl Iterator<Item = u64>, highest: u64) {
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
    let cfg = &recipe.config;
    let store = Store::connect_as(&recipe.postgres, session, cfg.sla, recipe.routing.clone())?
        .scoped(Scope { partition: p, epoch });
    let pipeline = crate::app::pipeline(cfg, store, recipe.outputs.clone())
        .map_err(|e| ClusterError::Pipeline(e.to_string()))?;
    let progress = crate::watchdog::Progress::new("partition");
    let (inlet, inbound) = flow::channel(progress.clone());
    let (stop, stopped) = watch::channel(false);
    let at = Position { p, k: recipe.partitions, epoch };
    let consumer = rt.spawn(consume(js, at, inlet, lag.clone(), stopped));
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
struct Position {
    p: u32,
    /// Partitions of the stream (K of the mapping).
    k: u32,
    epoch: i64,
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

/// Reads the partition from the message after `at.from`, in batches, into the pipeline. Every
/// second it asks the stream for the partition's head; a consumer that delivers nothing for
/// [`REDELIVER_AFTER`] while the head is ahead (or that the owner found stalled) is re-created
/// from the last delivered message.
async fn consume(
    js: jetstream::Context,
    at: Position,
    inlet: flow::Inlet,
    lag: Arc<Lag>,
    mut stop: watch::Receiver<bool>,
) -> Result<(), ClusterError> {
    let p = at.p;
    let nats = |e: &dyn std::fmt::Display| ClusterError::Nats(format!("partition {p}: {e}"));
    let stream = js.get_stream(STREAM).await.map_err(|e| nats(&e))?;
    let mut messages = Some(open(&stream, p, lag.delivered()).await.map_err(|e| nats(&e))?);
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut last_delivery = tokio::time::Instant::now();
    loop {
        let first = tokio::select! {
            m = next(&mut messages) => Some(m),
            _ = tick.tick() => None,
            _ = stop.wait_for(|s| *s) => return Ok(()),
        };
        let Some(first) = first else {
            if let Ok(Ok(h)) =
                tokio::time::timeout(Duration::from_secs(1), super::stream::head(&stream, p)).await
            {
                lag.head.store(h, Relaxed);
            }
            let starved =
                lag.head.load(Relaxed) > lag.delivered() && last_delivery.elapsed() >= REDELIVER_AFTER;
            if starved || lag.recreate.swap(false, Relaxed) {
                last_delivery = tokio::time::Instant::now();
                messages = None;
                match open(&stream, p, lag.delivered()).await {
                    Ok(m) => {
                        lag.recreated.fetch_add(1, Relaxed);
                        tracing::warn!(
                            partition = p,
                            after = lag.delivered(),
                            head = lag.head.load(Relaxed),
                            "cluster: nothing delivered while the stream holds more; consumer re-created"
                        );
                        messages = Some(m);
                    }
                    Err(e) => {
                        tracing::warn!(partition = p, error = %e, "cluster: consumer could not be re-created; trying again")
                    }
                }
            }
            continue;
        };
        let Some(first) = first else { return Err(nats(&"the stream ended")) };
        last_delivery = tokio::time::Instant::now();
        let mut batch = Vec::new();
        let mut highest = 0;
        let mut next_m = Some(first);
        // Everything already delivered goes in one batch (up to 1000), without waiting.
        while let Some(m) = next_m.take() {
            let m = m.map_err(|e| nats(&e))?;
            if let Ok(info) = m.info() {
                lag.pending.store(info.pending, Relaxed);
                highest = highest.max(info.stream_sequence);
            }
            if let Some(inbound) = to_inbound(at, &lag, m) {
                batch.push(inbound);
            }
            if batch.len() >= 1000 {
                break;
            }
            next_m = messages.as_mut().and_then(|m| m.next().now_or_never().flatten());
        }
        lag.handed(batch.iter().filter_map(|m| stream_seq(m.ack)), highest);
        if inlet.send(batch).is_err() {
            // The pipeline ended (fenced, or the store failed): the runner is over.
            return Ok(());
        }
    }
}

type Messages = consumer::pull::Ordered;

/// An ordered consumer of partition `p` from the message after `after`.
async fn open(stream: &jetstream::stream::Stream, p: u32, after: u64) -> Result<Messages, String> {
    let open = async {
        let consumer = stream
            .create_consumer(consumer::pull::OrderedConfig {
                filter_subject: partition_filter(p),
                deliver_policy: consumer::DeliverPolicy::ByStartSequence { start_sequence: after + 1 },
                ..Default::default()
            })
            .await
            .map_err(|e| e.to_string())?;
        consumer.messages().await.map_err(|e| e.to_string())
    };
    // While the stream's leader is being elected a request waits its whole timeout: try
    // again on the next tick instead.
    tokio::time::timeout(REDELIVER_AFTER, open).await.map_err(|_| "timed out".to_string())?
}

/// The next message, or never while there is no consumer.
async fn next(
    messages: &mut Option<Messages>,
) -> Option<Result<jetstream::Message, consumer::pull::OrderedError>> {
    match messages {
        Some(m) => m.next().await,
        None => std::future::pending().await,
    }
}

/// The stream sequence of a reading's ack (cluster mode's).
pub(crate) fn stream_seq(a: Ack) -> Option<u64> {
    match a {
        Ack::Stream { seq, .. } => Some(seq),
        _ => None,
    }
}

/// A stream message as the pipeline takes it; `None` (logged) if it is not a reading.
///
/// A message whose subject names another partition than its site's was not put there by the
/// server's mapping (someone published onto `gs.p.…` directly): refused and counted. The receive
/// time is the stream's own timestamp of the message, not anything its publisher wrote.
fn to_inbound(at: Position, lag: &Lag, m: jetstream::Message) -> Option<Inbound> {
    let p = at.p;
    let info = m.info().ok()?;
    let seq = info.stream_sequence;
    let received_ms = (info.published.unix_timestamp_nanos() / 1_000_000).max(0) as u64;
    let Some((_, topic)) = parse_partitioned(&m.subject) else {
        tracing::warn!(partition = p, subject = %m.subject, "not a reading subject; skipped");
        return None;
    };
    if !rightly_placed(&m.subject, at.k) {
        let n = lag.misrouted.fetch_add(1, Relaxed);
        if n.is_power_of_two() || n == 0 {
            tracing::warn!(partition = p, subject = %m.subject, refused_so_far = n + 1, "a message in a partition its site does not map to (published around the mapping); refused");
        }
        return None;
    }
    let topic = Topic::parse(&topic).ok()?;
    let payload: Bytes = m.payload.clone();
    match codec::decode_on(&topic, &payload) {
        Ok(reading) => Some(Inbound::new(
            topic,
            reading,
            payload,
            received_ms,
            Ack::Stream { partition: p, epoch: at.epoch, seq },
        )),
        Err(e) => {
            tracing::warn!(partition = p, %topic, seq, error = %e, "stream message does not decode; skipped");
            None
        }
    }
}
