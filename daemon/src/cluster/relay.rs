//! `gridsentry relay`: the street's broker into JetStream, nothing lost, nothing doubled.
//!
//! The MQTT side is the daemon's own ingest (persistent session, QoS 1, manual acks, payloads
//! checked against the wire contract, malformed ones counted and dropped). Each batch it hands
//! over is published to JetStream; a device's PUBACK goes back only after JetStream's PubAck
//! for its reading, so a reading the relay acknowledged is on the stream's replicas. A publish
//! that fails is retried with the same message id until it succeeds: if the first attempt did
//! land, the server drops the repeat. A relay killed between the PubAck and the MQTT ack leaves
//! the reading unacknowledged at the broker, which sends it again; the repeat is dropped by id.
//!
//! Field devices (`[[modbus]]`, `[[serial]]`) polled by the relay go the same way: the relay
//! is the gateway next to them (a landslide station's RS-485 bus), and its readings carry the
//! poller's random boot id and its own sequence numbers. Poll each field device from one relay
//! only: two pollers make two readings of one measurement.
//!
//! Why not nats-server's own MQTT listener: it acknowledges a device's QoS 1 publish before
//! the message is in a stream (its README), which is not "nothing lost".

use super::stream::{self, in_subject, msg_id};
use super::ClusterError;
use crate::flow::{Ack, Inbound, Receiver};
use crate::metrics::Metrics;
use crate::watchdog::{self, Health};
use async_nats::jetstream::message::PublishMessage;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// What the relay counts and knows (its `/metrics` and `/readyz`, and its log at exit).
#[derive(Debug, Default)]
pub struct RelayStats {
    /// Readings taken from the broker and the field devices.
    pub received: std::sync::atomic::AtomicU64,
    /// Readings JetStream stored.
    pub published: std::sync::atomic::AtomicU64,
    /// Readings JetStream already had (same message id within the duplicate window).
    pub duplicates: std::sync::atomic::AtomicU64,
    /// Publish attempts that failed and were retried.
    pub retries: std::sync::atomic::AtomicU64,
    /// The last publish attempt failed (cleared by the next success).
    pub failing: std::sync::atomic::AtomicBool,
    /// The reading stream was found.
    pub stream_found: std::sync::atomic::AtomicBool,
    /// The NATS connection (set once made).
    pub nats: std::sync::OnceLock<async_nats::Client>,
}

impl RelayStats {
    /// Readings received and not yet in the stream (their MQTT acks held).
    pub fn in_flight(&self) -> u64 {
        let done = self.published.load(Relaxed) + self.duplicates.load(Relaxed);
        self.received.load(Relaxed).saturating_sub(done)
    }

    /// Whether the NATS connection is up.
    pub fn nats_connected(&self) -> bool {
        self.nats.get().is_some_and(|c| c.connection_state() == async_nats::connection::State::Connected)
    }
}

/// Readings published and not yet acknowledged by JetStream, at most, across batches (under
/// async-nats's own limit of 5,000 outstanding PubAcks; MQTT ingest holds at most 2,048 unacked
/// readings per connection anyway).
const WINDOW: usize = 4_000;

/// Publishes every batch from `inbound` and hands the MQTT acks back through `acks`.
///
/// Pipelined: a batch is published as soon as it arrives, while earlier batches still wait for
/// their PubAcks (up to `WINDOW`, 4,000, readings outstanding), and each batch's acks go back, in
/// arrival order, once all of its readings are in the stream. One PubAck round trip of an R3
/// stream (a few ms) no longer paces the relay: it waits for them together.
pub async fn run(
    js: async_nats::jetstream::Context,
    mut inbound: Receiver<Inbound>,
    acks: crate::flow::AckSender,
    stats: Arc<RelayStats>,
    metrics: Arc<Metrics>,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), ClusterError> {
    let mut pending = futures_util::stream::FuturesOrdered::new();
    let mut outstanding = 0usize;
    let stop = shutdown.clone();
    loop {
        let next = tokio::select! {
            biased;
            _ = shutdown.wait_for(|s| *s) => return Ok(()),
            Some(settled) = futures_util::StreamExt::next(&mut pending), if !pending.is_empty() => {
                Next::Settled(settled)
            }
            b = inbound.recv(), if outstanding < WINDOW => Next::Arrived(b),
        };
        match next {
            // Shutting down while it retried, or the source is gone.
            Next::Settled(None) | Next::Arrived(None) => return Ok(()),
            Next::Settled(Some(batch)) => {
                let n = batch.len();
                outstanding -= n;
                for item in &batch {
                    metrics.readings[item.topic.stream.index()].fetch_add(1, Relaxed);
                }
                inbound.done(n);
                if acks.send(batch.into_iter().map(|item| item.ack).collect()).is_err() {
                    return Ok(());
                }
            }
            Next::Arrived(Some(batch)) => {
                outstanding += batch.len();
                stats.received.fetch_add(batch.len() as u64, Relaxed);
                let mut sent = Vec::with_capacity(batch.len());
                for item in &batch {
                    sent.push(publish(&js, item).await);
                }
                pending.push_back(settle(js.clone(), batch, sent, stats.clone(), stop.clone()));
            }
        }
    }
}

/// What the relay's loop woke up for.
enum Next {
    /// A batch whose readings are all in the stream (`None`: shutdown came first).
    Settled(Option<Vec<Inbound>>),
    /// A batch from the sources (`None`: they are gone).
    Arrived(Option<Vec<Inbound>>),
}

/// Awaits a batch's PubAcks together; whatever failed is published again (same message ids),
/// together, until everything is in the stream. The acks are awaited concurrently: after a
/// leader loss every outstanding one times out at once, not one timeout after another (1,000
/// lost publishes waited 5 s each). `None` if shutdown came first.
async fn settle(
    js: async_nats::jetstream::Context,
    batch: Vec<Inbound>,
    sent: Vec<Result<async_nats::jetstream::context::PublishAckFuture, String>>,
    stats: Arc<RelayStats>,
    mut shutdown: watch::Receiver<bool>,
) -> Option<Vec<Inbound>> {
    let items: Vec<&Inbound> = batch.iter().collect();
    let mut failed = await_acks(&items, sent, &stats).await;
    let mut delay = Duration::from_millis(50);
    while !failed.is_empty() {
        stats.retries.fetch_add(failed.len() as u64, Relaxed);
        stats.failing.store(true, Relaxed);
        let (item, e) = &failed[0];
        tracing::warn!(subject = %in_subject(&item.topic), error = %e, failed = failed.len(), of = batch.len(), "jetstream publish failed; retrying");
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = shutdown.wait_for(|s| *s) => return None,
        }
        delay = (delay * 2).min(Duration::from_millis(250));
        let remaining: Vec<&Inbound> = failed.into_iter().map(|(item, _)| item).collect();
        failed = publish_all(&js, &remaining, &stats).await;
    }
    stats.failing.store(false, Relaxed);
    Some(batch)
}

/// Publishes `items` and awaits their PubAcks concurrently; the ones that failed, with why.
async fn publish_all<'a>(
    js: &async_nats::jetstream::Context,
    items: &[&'a Inbound],
    stats: &RelayStats,
) -> Vec<(&'a Inbound, String)> {
    let mut sent = Vec::with_capacity(items.len());
    for item in items {
        sent.push(publish(js, item).await);
    }
    await_acks(items, sent, stats).await
}

/// Awaits the PubAcks of `items` (`sent`, one each) concurrently; the ones that failed, with why.
async fn await_acks<'a>(
    items: &[&'a Inbound],
    sent: Vec<Result<async_nats::jetstream::context::PublishAckFuture, String>>,
    stats: &RelayStats,
) -> Vec<(&'a Inbound, String)> {
    let acks = futures_util::future::join_all(sent.into_iter().map(|s| async move {
        match s {
            Ok(fut) => fut.await.map_err(|e| e.to_string()),
            Err(e) => Err(e),
        }
    }))
    .await;
    let mut failed = Vec::new();
    for (item, ack) in items.iter().zip(acks) {
        match ack {
            Ok(a) if a.duplicate => drop(stats.duplicates.fetch_add(1, Relaxed)),
            Ok(_) => drop(stats.published.fetch_add(1, Relaxed)),
            Err(e) => failed.push((*item, e)),
        }
    }
    failed
}

async fn publish(
    js: &async_nats::jetstream::Context,
    item: &Inbound,
) -> Result<async_nats::jetstream::context::PublishAckFuture, String> {
    let id = msg_id(item);
    // No receive-time header: a worker takes the stream's own timestamp (a header is whatever
    // the publisher wrote).
    let message = PublishMessage::build().payload(item.raw.clone()).message_id(id);
    js.send_publish(in_subject(&item.topic), message).await.map_err(|e| e.to_string())
}

/// What a relay reads from: the street's broker and/or field devices it polls.
pub struct Sources {
    /// The broker (`[mqtt]`).
    pub mqtt: Option<crate::ingest::mqtt::Settings>,
    /// Modbus devices (`[[modbus]]`).
    pub modbus: Vec<crate::config::ModbusDevice>,
    /// Serial GNSS receivers (`[[serial]]`).
    pub serial: Vec<crate::config::SerialDevice>,
}

/// Connects, waits for the stream, and relays until `shutdown`. Every stage is watched as in
/// edge mode: a hand-off with work and no progress for `stall` (or a stage that ends) is fatal
/// through `health`.
pub async fn start(
    cluster: &super::Config,
    sources: Sources,
    metrics: Arc<Metrics>,
    stats: Arc<RelayStats>,
    (health, stall): (&Arc<Health>, Duration),
    shutdown: watch::Receiver<bool>,
) -> Result<Vec<tokio::task::JoinHandle<()>>, ClusterError> {
    let mut js = super::connect::connect(cluster).await?;
    // A PubAck comes in milliseconds; one that has not come in 2 s was lost with a leader.
    js.set_timeout(Duration::from_secs(2));
    let _ = stats.nats.set(js.client());
    stream::wait_for(&js, Duration::from_secs(120)).await?;
    stats.stream_found.store(true, Relaxed);
    let progress = [crate::watchdog::Progress::new("ingest"), crate::watchdog::Progress::new("relay")];
    let (inlet, inbound) = crate::flow::channel(progress[1].clone());
    let watch = |stage: &'static str, t| watchdog::supervise(stage, t, health, &shutdown);
    let mut tasks = vec![watchdog::spawn(progress.to_vec(), stall, health.clone(), shutdown.clone())];
    let field =
        crate::ingest::modbus::spawn(&sources.modbus, inlet.clone(), metrics.clone(), shutdown.clone())
            .into_iter()
            .chain(crate::ingest::serial::spawn(
                &sources.serial,
                inlet.clone(),
                metrics.clone(),
                shutdown.clone(),
            ));
    tasks.extend(field.map(|t| watch("field bus", t)));
    let acks = match sources.mqtt {
        Some(mqtt) => {
            let (acks, ingest) = crate::ingest::mqtt::spawn(
                mqtt,
                inlet,
                metrics.clone(),
                progress[0].clone(),
                shutdown.clone(),
            );
            tasks.push(watch("ingest", ingest));
            acks
        }
        None => {
            // Polled readings need no acknowledgement: nobody redelivers them.
            let (acks, mut acked) = crate::flow::channel::<Ack>(progress[0].clone());
            tasks.push(tokio::spawn(async move {
                while let Some(b) = acked.recv().await {
                    acked.done(b.len());
                }
            }));
            acks
        }
    };
    let stop = shutdown.clone();
    tasks.push(watch(
        "relay",
        tokio::spawn(async move {
            if let Err(e) = run(js, inbound, acks, stats, metrics, stop).await {
                tracing::error!(error = %e, "relay stopped");
            }
        }),
    ));
    Ok(tasks)
}
