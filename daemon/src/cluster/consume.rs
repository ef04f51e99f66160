//! Reading one owned partition from the stream into its pipeline.
//!
//! Through a named pull consumer per partition (`gs-pP`: one replica, in memory, cheap), made
//! afresh from the committed position when a worker takes the partition (which also cuts off a
//! former owner still pulling from it). When the node holding it is lost, or a new one cannot be
//! made while NATS elects its JetStream meta leader ("JetStream system temporarily unavailable":
//! ordered consumers, used before, waited 10–36 s for it after a stream leader SIGKILL), the
//! worker does not wait: as soon as the partition's stream holds more than was delivered and
//! nothing came for [`REDELIVER_AFTER`], it reads the next messages straight from the stream's
//! leader (`STREAM.MSG.GET` with `next_by_subj`, up to 1,000 a round), pulls again, and the next
//! time makes the consumer again. A replicated (R3) consumer was tried: no faster to recover
//! (the stream's leader election dominates) and it cost the workers about twice the CPU per
//! reading (its delivered state is replicated with every pull).
//!
//! No acknowledgements (`AckPolicy::None`): the position lives in PostgreSQL with the orders it
//! caused. Deliveries are checked instead: the consumer numbers them 1, 2, 3…; a jump means
//! deliveries were lost, and the consumer is made again from the last message received. A
//! message at or below it (read by catching up, or delivered again) is skipped. Four times a
//! second the worker asks the stream for the partition's head (its last sequence), which is how it
//! knows that something is waiting.

use super::stream::{parse_partitioned, partition_filter, rightly_placed, STREAM};
use super::worker::{Lag, Position};
use super::ClusterError;
use crate::flow::{self, Ack, Inbound};
use async_nats::jetstream::{self, consumer};
use bytes::Bytes;
use futures_util::{FutureExt, StreamExt};
use gridsentry_sensors::{codec, Topic};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// How long a pull may bring nothing while the stream holds more of the partition before it is
/// issued again (and, the next time, the consumer made again).
pub const REDELIVER_AFTER: Duration = Duration::from_secs(1);

type Consumer = consumer::Consumer<consumer::pull::Config>;
type Messages = consumer::pull::Stream;

/// The durable consumer's name of partition `p`.
fn name(p: u32) -> String {
    format!("gs-p{p}")
}

/// Reads partition `at.p` from the message after `lag.delivered()`, in batches, into the
/// pipeline, until `stop` (or the pipeline is gone).
pub(crate) async fn run(
    js: jetstream::Context,
    at: Position,
    inlet: flow::Inlet,
    lag: Arc<Lag>,
    mut stop: watch::Receiver<bool>,
) -> Result<(), ClusterError> {
    let p = at.p;
    // A partition taken while NATS elects a leader (or while the stream is away: checks.rs
    // reports that) keeps trying here rather than failing its runner and waiting to be retaken.
    let stream = loop {
        match js.get_stream(STREAM).await {
            Ok(s) => break s,
            Err(e) => tracing::debug!(partition = p, error = %e, "cluster: stream not reachable yet"),
        }
        tokio::select! {
            _ = tokio::time::sleep(REDELIVER_AFTER) => {}
            _ = stop.wait_for(|s| *s) => return Ok(()),
        }
    };
    let mut reader = Reader { stream, p, consumer: None, messages: None, expect: 1 };
    if let Err(e) = reader.renew(lag.delivered()).await {
        tracing::warn!(partition = p, error = %e, "cluster: consumer not made yet; trying again");
    }
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    let mut last_delivery = tokio::time::Instant::now();
    let mut nudged = false;
    loop {
        let first = tokio::select! {
            m = next(&mut reader.messages) => Some(m),
            _ = tick.tick() => None,
            _ = stop.wait_for(|s| *s) => return Ok(()),
        };
        let Some(first) = first else {
            if let Ok(Ok(h)) =
                tokio::time::timeout(Duration::from_millis(500), super::stream::head(&reader.stream, p)).await
            {
                lag.head.store(h, Relaxed);
            }
            let starved =
                lag.head.load(Relaxed) > lag.delivered() && last_delivery.elapsed() >= REDELIVER_AFTER;
            if starved {
                // Meanwhile the stream's leader hands the next messages out one by one.
                match catch_up(&reader.stream, at, &lag, &inlet).await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(
                        partition = p,
                        readings = n,
                        "cluster: caught up from the stream while the consumer is away"
                    ),
                    Err(CatchUp::PipelineGone) => return Ok(()),
                    Err(CatchUp::Stream(e)) => {
                        tracing::debug!(partition = p, error = %e, "cluster: catching up failed")
                    }
                }
            }
            let told = lag.recreate.swap(false, Relaxed);
            if starved || told || reader.messages.is_none() {
                last_delivery = tokio::time::Instant::now();
                // First pull again; if that brought nothing either, make the consumer again.
                let renew = told || (starved && nudged) || reader.consumer.is_none();
                let done = match renew {
                    true => reader.renew(lag.delivered()).await,
                    false => reader.pull().await,
                };
                nudged = starved && !renew;
                match done {
                    Ok(()) if renew => {
                        lag.recreated.fetch_add(1, Relaxed);
                        tracing::warn!(
                            partition = p,
                            after = lag.delivered(),
                            head = lag.head.load(Relaxed),
                            "cluster: nothing delivered while the stream holds more; consumer made again"
                        );
                    }
                    Ok(()) => tracing::debug!(partition = p, "cluster: pulling again"),
                    Err(e) => {
                        tracing::warn!(partition = p, error = %e, "cluster: consumer not reachable; trying again")
                    }
                }
            }
            continue;
        };
        let mut batch = Vec::new();
        let mut highest = 0;
        let mut next_m = first;
        // Everything already delivered goes in one batch (up to 1000), without waiting.
        while let Some(m) = next_m.take() {
            let m = match m {
                Ok(m) => m,
                Err(e) => {
                    // A missed heartbeat or a leader change: pull again on the next tick.
                    tracing::debug!(partition = p, error = %e, "cluster: pull interrupted");
                    reader.messages = None;
                    break;
                }
            };
            let Ok(info) = m.info() else { continue };
            let (cseq, sseq) = (info.consumer_sequence, info.stream_sequence);
            if cseq > reader.expect {
                tracing::warn!(
                    partition = p,
                    expected = reader.expect,
                    got = cseq,
                    "cluster: deliveries lost (leader change); consumer made again"
                );
                reader.consumer = None;
                reader.messages = None;
                break;
            }
            reader.expect = cseq + 1;
            if sseq <= lag.delivered().max(highest) {
                continue; // delivered again after a leader change
            }
            last_delivery = tokio::time::Instant::now();
            lag.pending.store(info.pending, Relaxed);
            highest = sseq;
            if let Some(inbound) = to_inbound(at, &lag, m) {
                batch.push(inbound);
            }
            if batch.len() >= 1000 {
                break;
            }
            next_m = reader.messages.as_mut().and_then(|m| m.next().now_or_never().flatten());
        }
        if highest == 0 {
            continue;
        }
        lag.handed(batch.iter().filter_map(|m| stream_seq(m.ack)), highest);
        if inlet.send(batch).is_err() {
            // The pipeline ended (fenced, or the store failed): the runner is over.
            return Ok(());
        }
    }
}

/// Why catching up stopped.
enum CatchUp {
    /// The stream's leader did not answer (being elected).
    Stream(String),
    /// The pipeline ended: the runner is over.
    PipelineGone,
}

/// Most messages read one by one in a catch-up round, and its time budget.
const CATCH_UP_MAX: usize = 1000;
const CATCH_UP_FOR: Duration = Duration::from_millis(800);

/// Reads the partition's next messages straight from the stream (`STREAM.MSG.GET` with
/// `next_by_subj`, answered by the stream's leader, no consumer needed) and hands them to the
/// pipeline as one batch; how many.
async fn catch_up(
    stream: &jetstream::stream::Stream,
    at: Position,
    lag: &Lag,
    inlet: &flow::Inlet,
) -> Result<usize, CatchUp> {
    let started = tokio::time::Instant::now();
    let (mut batch, mut highest) = (Vec::new(), 0);
    let mut next = lag.delivered() + 1;
    let mut failure = None;
    while batch.len() < CATCH_UP_MAX && started.elapsed() < CATCH_UP_FOR && next <= lag.head.load(Relaxed) {
        let get = stream.raw_message_builder().sequence(next).next_by_subject(partition_filter(at.p)).send();
        let m = match tokio::time::timeout(Duration::from_millis(500), get).await {
            Ok(Ok(m)) => m,
            Ok(Err(e)) => {
                failure = Some(e.to_string());
                break;
            }
            Err(_) => {
                failure = Some("timed out".into());
                break;
            }
        };
        let received_ms = (m.time.unix_timestamp_nanos() / 1_000_000).max(0) as u64;
        (highest, next) = (m.sequence, m.sequence + 1);
        if let Some(inbound) = from_stream(at, lag, &m.subject, m.sequence, received_ms, m.payload) {
            batch.push(inbound);
        }
    }
    if highest == 0 {
        return failure.map_or(Ok(0), |e| Err(CatchUp::Stream(e)));
    }
    let n = batch.len();
    lag.handed(batch.iter().filter_map(|m| stream_seq(m.ack)), highest);
    inlet.send(batch).map_err(|_| CatchUp::PipelineGone)?;
    Ok(n)
}

/// A partition's consumer and its pull.
struct Reader {
    stream: jetstream::stream::Stream,
    p: u32,
    consumer: Option<Consumer>,
    messages: Option<Messages>,
    /// The consumer sequence the next delivery must carry.
    expect: u64,
}

impl Reader {
    /// Makes the consumer afresh from the message after `after` and pulls.
    async fn renew(&mut self, after: u64) -> Result<(), String> {
        (self.consumer, self.messages) = (None, None);
        let (stream, p) = (&self.stream, self.p);
        let make = async {
            // A consumer left by a former owner (or by this worker before) goes first: its
            // position is not ours, and a former owner still pulling from it is cut off.
            let _ = stream.delete_consumer(&name(p)).await;
            stream
                .create_consumer(consumer::pull::Config {
                    durable_name: Some(name(p)),
                    filter_subject: partition_filter(p),
                    deliver_policy: consumer::DeliverPolicy::ByStartSequence { start_sequence: after + 1 },
                    ack_policy: consumer::AckPolicy::None,
                    num_replicas: 1,
                    memory_storage: true,
                    ..Default::default()
                })
                .await
                .map_err(|e| e.to_string())
        };
        let consumer =
            tokio::time::timeout(REDELIVER_AFTER * 3, make).await.map_err(|_| "timed out".to_string())??;
        self.consumer = Some(consumer);
        self.expect = 1;
        self.pull().await
    }

    /// Issues the pull again (no meta-leader operation: the consumer's own leader answers).
    async fn pull(&mut self) -> Result<(), String> {
        self.messages = None;
        let Some(c) = &self.consumer else { return Err("no consumer".into()) };
        let pull = c
            .stream()
            .max_messages_per_batch(1000)
            .heartbeat(Duration::from_secs(1))
            .expires(Duration::from_secs(5))
            .messages();
        let messages =
            tokio::time::timeout(REDELIVER_AFTER, pull).await.map_err(|_| "timed out".to_string())?;
        self.messages = Some(messages.map_err(|e| e.to_string())?);
        Ok(())
    }
}

/// The next message, or never while there is no pull.
async fn next(
    messages: &mut Option<Messages>,
) -> Option<Result<jetstream::Message, consumer::pull::MessagesError>> {
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
    let info = m.info().ok()?;
    let received_ms = (info.published.unix_timestamp_nanos() / 1_000_000).max(0) as u64;
    from_stream(at, lag, &m.subject, info.stream_sequence, received_ms, m.payload.clone())
}

/// [`to_inbound`] for a message read straight from the stream (catching up).
fn from_stream(
    at: Position,
    lag: &Lag,
    subject: &str,
    seq: u64,
    received_ms: u64,
    payload: Bytes,
) -> Option<Inbound> {
    let p = at.p;
    let Some((_, topic)) = parse_partitioned(subject) else {
        tracing::warn!(partition = p, subject, "not a reading subject; skipped");
        return None;
    };
    if !rightly_placed(subject, at.k) {
        let n = lag.misrouted.fetch_add(1, Relaxed);
        if n.is_power_of_two() || n == 0 {
            tracing::warn!(
                partition = p,
                subject,
                refused_so_far = n + 1,
                "a message in a partition its site does not map to (published around the mapping); refused"
            );
        }
        return None;
    }
    let topic = Topic::parse(&topic).ok()?;
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
