//! What flows between the stages: readings in batches one way, their acknowledgements in
//! batches the other way.
//!
//! ```text
//! ingest ──Inlet (Vec<Inbound>)──▶ pipeline ──(Vec<Inbound>)──▶ series
//!    ▲                                 │                           │
//!    └──────────AckSender (Vec<Ack>)───┴───────────────────────────┘
//! ```
//!
//! Every hand-off carries a whole batch: one channel send and one wake-up per batch, never per
//! reading (per-message sends cost more than decoding and rules together). Both channels are
//! unbounded on purpose: the MQTT reader must never await anything (its own loop serves the
//! keep-alive and the acks), so the bound is the broker's in-flight window
//! (`max_inflight_messages`): no more readings can be outstanding than the broker lets go
//! unacknowledged. Each channel counts what entered and left it in a [`Progress`], which the
//! [`crate::watchdog`] reads.

use crate::watchdog::Progress;
use bytes::Bytes;
use gridsentry_sensors::{Reading, Topic};
use std::sync::Arc;
use tokio::sync::mpsc;

/// A decoded reading on its way to the rules.
#[derive(Debug)]
pub struct Inbound {
    /// The topic it came on (already checked against the payload).
    pub topic: Topic,
    /// The reading.
    pub reading: Reading,
    /// The payload as received (shares the network buffer).
    pub raw: Bytes,
    /// When it arrived, UTC ms.
    pub received_ms: u64,
    /// What to hand back after commit.
    pub ack: Ack,
    /// Set by the pipeline: this (boot, sequence number) had been applied before (a
    /// redelivery); the store stage then writes it only if it is not stored yet.
    pub applied_before: bool,
    /// Set by the pipeline: the instant it counts at ([`crate::devtime`]), UTC ms.
    pub event_ms: u64,
    /// Set by the pipeline: the device's stamp was refused (flagged in the time series).
    pub skew: Option<crate::devtime::Skew>,
    /// Set by the pipeline: the device is not heard ([`crate::gate`]); only acknowledged.
    pub refused: bool,
}

impl Inbound {
    /// A reading just received.
    pub fn new(topic: Topic, reading: Reading, raw: Bytes, received_ms: u64, ack: Ack) -> Inbound {
        Inbound {
            topic,
            reading,
            raw,
            received_ms,
            ack,
            applied_before: false,
            event_ms: received_ms,
            skew: None,
            refused: false,
        }
    }
}

/// Proof of receipt to acknowledge after commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ack {
    /// An MQTT QoS 1 publish (packet id), from connection `generation`: acks of older
    /// connections are dropped (the broker redelivers those, and re-application is detected by
    /// sequence number).
    Mqtt {
        /// Packet id to acknowledge.
        pkid: u16,
        /// Connection generation it arrived on.
        generation: u64,
    },
    /// A JetStream message (cluster mode): its partition, the epoch of the partition's runner
    /// that read it (an ack of an earlier runner must not count for a later one) and its stream
    /// sequence number (the partition's position once the batch is committed).
    Stream {
        /// Partition.
        partition: u32,
        /// Epoch of the runner that read it.
        epoch: i64,
        /// Stream sequence number.
        seq: u64,
    },
    /// Nothing to acknowledge (QoS 0, polled devices, tests).
    None,
}

impl Ack {
    /// The reading's position in a replayable log (a JetStream sequence number), which the
    /// pipeline commits with what the reading caused; `None` for a broker's or a poll's.
    pub fn position(&self) -> Option<u64> {
        match self {
            Ack::Stream { seq, .. } => Some(*seq),
            Ack::Mqtt { .. } | Ack::None => None,
        }
    }
}

/// The sending end of a batch channel, counting what it hands over.
#[derive(Debug)]
pub struct Sender<T> {
    tx: mpsc::UnboundedSender<Vec<T>>,
    progress: Arc<Progress>,
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        Sender { tx: self.tx.clone(), progress: self.progress.clone() }
    }
}

/// The receiving end; [`Receiver::done`] reports items finished.
#[derive(Debug)]
pub struct Receiver<T> {
    rx: mpsc::UnboundedReceiver<Vec<T>>,
    progress: Arc<Progress>,
}

/// A batch channel whose traffic is counted in `progress`.
pub fn channel<T>(progress: Arc<Progress>) -> (Sender<T>, Receiver<T>) {
    let (tx, rx) = mpsc::unbounded_channel();
    (Sender { tx, progress: progress.clone() }, Receiver { rx, progress })
}

/// The receiving stage has stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the receiving stage has stopped")]
pub struct Closed;

impl<T> Sender<T> {
    /// Hands a batch over (never waits). An empty batch is not sent.
    pub fn send(&self, batch: Vec<T>) -> Result<(), Closed> {
        if batch.is_empty() {
            return Ok(());
        }
        let n = batch.len() as u64;
        self.progress.enter(n);
        self.tx.send(batch).map_err(|_| {
            self.progress.leave(n);
            Closed
        })
    }
}

impl<T> Receiver<T> {
    /// The next batch; `None` once every sender is gone.
    pub async fn recv(&mut self) -> Option<Vec<T>> {
        self.rx.recv().await
    }

    /// A batch if one is waiting.
    pub fn try_recv(&mut self) -> Option<Vec<T>> {
        self.rx.try_recv().ok()
    }

    /// `n` items taken from this channel are finished (committed, written, acked).
    pub fn done(&self, n: usize) {
        self.progress.leave(n as u64);
    }

    /// The counter this channel reports to.
    pub fn progress(&self) -> &Arc<Progress> {
        &self.progress
    }
}

/// Where a pipeline hands its committed readings: straight back to their source as acks, or on
/// to the store stage, which acks them once stored. The pipeline knows neither.
pub trait Sink: Send + Sync {
    /// Takes a committed batch; `Err` when the stage that must have it is gone.
    fn committed(&self, batch: Vec<Inbound>) -> Result<(), Closed>;
}

/// A source gone (shutting down) is fine: the broker redelivers what was not acked.
impl Sink for Sender<Ack> {
    fn committed(&self, batch: Vec<Inbound>) -> Result<(), Closed> {
        let _ = self.send(batch.into_iter().map(|m| m.ack).collect());
        Ok(())
    }
}

/// The store stage takes the readings themselves.
impl Sink for Sender<Inbound> {
    fn committed(&self, batch: Vec<Inbound>) -> Result<(), Closed> {
        self.send(batch)
    }
}

/// Readings into the pipeline (MQTT, Modbus and serial ingest all send here).
pub type Inlet = Sender<Inbound>;
/// Acknowledgements back to MQTT ingest.
pub type AckSender = Sender<Ack>;
