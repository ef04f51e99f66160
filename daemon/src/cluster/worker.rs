//! One owned partition at work: an ordered JetStream consumer from the partition's committed
//! position feeds the daemon's own pipeline (rules → orders, group commits), whose store is
//! scoped to the partition: every commit carries the stream position and is refused if another
//! worker has taken the partition since (fencing). A crash replays from the committed position;
//! per-device sequence windows (committed in the same transaction) make a re-applied reading
//! a detected duplicate, as in edge mode.
//!
//! No JetStream acknowledgements: the position lives in PostgreSQL with the orders it caused,
//! so "applied" and "acknowledged" cannot disagree; the stream's retention is by age.

use super::stream::{parse_partitioned, partition_filter, RECEIVED_HEADER, STREAM};
use super::ClusterError;
use crate::flow::{self, Ack, Inbound};
use crate::orders::{Scope, Store};
use crate::pipeline::{Control, Outputs, PipelineError, Sink, Tuning};
use async_nats::jetstream::{self, consumer};
use bytes::Bytes;
use futures_util::{FutureExt, StreamExt};
use gridsentry_sensors::{codec, Topic};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
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
}

/// How far a partition is behind, in readings.
#[derive(Debug, Default)]
pub struct Lag {
    /// Messages the stream holds for the partition beyond the last one delivered here.
    pub pending: AtomicU64,
    /// Readings handed to the pipeline and not yet committed.
    pub inflight: AtomicU64,
    /// The last stream sequence committed.
    pub committed: AtomicU64,
}

impl Lag {
    /// Readings of the partition in the stream and not yet committed.
    pub fn behind(&self) -> u64 {
        self.pending.load(Relaxed) + self.inflight.load(Relaxed)
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

/// Starts partition `p` at `epoch` from the stream position after `checkpoint`. Call it on a
/// blocking thread (it connects to PostgreSQL).
pub fn start(
    recipe: &Recipe,
    session: &str,
    js: jetstream::Context,
    rt: tokio::runtime::Handle,
    p: u32,
    epoch: i64,
    checkpoint: u64,
) -> Result<Runner, ClusterError> {
    let cfg = &recipe.config;
    let store = Store::connect_as(&recipe.postgres, session, cfg.sla, recipe.routing.clone())?
        .scoped(Scope { partition: p, epoch });
    let pipeline = crate::app::pipeline(cfg, store, recipe.outputs.clone())
        .map_err(|e| ClusterError::Pipeline(e.to_string()))?;
    let progress = crate::watchdog::Progress::new("partition");
    let (inlet, inbound) = flow::channel(progress.clone());
    let (acks, mut acked) = flow::channel::<Ack>(crate::watchdog::Progress::new("partition acks"));
    let lag = Arc::new(Lag::default());
    lag.committed.store(checkpoint, Relaxed);
    let last = lag.clone();
    let (stop, stopped) = watch::channel(false);
    let consumer = rt.spawn(consume(js, p, checkpoint, inlet, lag.clone(), stopped));
    // The acks say what is committed (for the lag metric); nothing to send anywhere.
    rt.spawn(async move {
        while let Some(batch) = acked.recv().await {
            let n = batch.len();
            if let Some(seq) =
                batch.iter().filter_map(|a| if let Ack::Stream { seq } = a { Some(*seq) } else { None }).max()
            {
                last.committed.fetch_max(seq, Relaxed);
            }
            last.inflight.fetch_sub(n as u64, Relaxed);
            acked.done(n);
        }
    });
    // No reloads in cluster mode yet: the sender is dropped, the pipeline sees none.
    let (_, control_rx) = mpsc::unbounded_channel::<Control>();
    let tuning = recipe.tuning;
    let rt2 = rt.clone();
    let pipeline = std::thread::Builder::new()
        .name(format!("partition-{p}"))
        .spawn(move || pipeline.run(rt2, inbound, control_rx, Sink::Ack(acks), tuning))
        .map_err(|e| ClusterError::Nats(format!("starting partition {p}: {e}")))?;
    Ok(Runner { partition: p, epoch, stop, consumer, pipeline, lag })
}

/// Reads partition `p` from the message after `checkpoint`, in batches, into the pipeline.
async fn consume(
    js: jetstream::Context,
    p: u32,
    checkpoint: u64,
    inlet: flow::Inlet,
    lag: Arc<Lag>,
    mut stop: watch::Receiver<bool>,
) -> Result<(), ClusterError> {
    let nats = |e: &dyn std::fmt::Display| ClusterError::Nats(format!("partition {p}: {e}"));
    let stream = js.get_stream(STREAM).await.map_err(|e| nats(&e))?;
    let consumer = stream
        .create_consumer(consumer::pull::OrderedConfig {
            filter_subject: partition_filter(p),
            deliver_policy: consumer::DeliverPolicy::ByStartSequence { start_sequence: checkpoint + 1 },
            ..Default::default()
        })
        .await
        .map_err(|e| nats(&e))?;
    let mut messages = consumer.messages().await.map_err(|e| nats(&e))?;
    loop {
        let first = tokio::select! {
            m = messages.next() => m,
            _ = stop.wait_for(|s| *s) => return Ok(()),
        };
        let Some(first) = first else { return Err(nats(&"the stream ended")) };
        let mut batch = Vec::new();
        let mut next = Some(first);
        // Everything already delivered goes in one batch (up to 1000), without waiting.
        while let Some(m) = next.take() {
            let m = m.map_err(|e| nats(&e))?;
            if let Ok(info) = m.info() {
                lag.pending.store(info.pending, Relaxed);
            }
            if let Some(inbound) = to_inbound(p, m) {
                batch.push(inbound);
            }
            if batch.len() >= 1000 {
                break;
            }
            next = messages.next().now_or_never().flatten();
        }
        lag.inflight.fetch_add(batch.len() as u64, Relaxed);
        if inlet.send(batch).is_err() {
            // The pipeline ended (fenced, or the store failed): the runner is over.
            return Ok(());
        }
    }
}

/// A stream message as the pipeline takes it; `None` (logged) if it is not a reading.
fn to_inbound(p: u32, m: jetstream::Message) -> Option<Inbound> {
    let seq = m.info().ok()?.stream_sequence;
    let Some((_, topic)) = parse_partitioned(&m.subject) else {
        tracing::warn!(partition = p, subject = %m.subject, "not a reading subject; skipped");
        return None;
    };
    let topic = Topic::parse(&topic).ok()?;
    let received_ms = m
        .headers
        .as_ref()
        .and_then(|h| h.get(RECEIVED_HEADER))
        .and_then(|v| v.as_str().parse().ok())
        .unwrap_or_else(crate::clock::now_ms);
    let payload: Bytes = m.payload.clone();
    match codec::decode_on(&topic, &payload) {
        Ok(reading) => Some(Inbound::new(topic, reading, payload, received_ms, Ack::Stream { seq })),
        Err(e) => {
            tracing::warn!(partition = p, %topic, seq, error = %e, "stream message does not decode; skipped");
            None
        }
    }
}
