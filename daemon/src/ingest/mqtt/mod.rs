//! MQTT ingest with rumqttc: QoS 1, persistent session, manual acks, and a loop that never
//! waits on anything it must drain itself.
//!
//! rumqttc's `AsyncClient::ack` awaits room in a bounded request queue that only
//! `EventLoop::poll` empties; awaiting it from the task that polls deadlocks once ~10,000 acks
//! wait (seen: the daemon stopped reading, acking and pinging, silently, for good). So this task
//! is the only one touching the connection and it never awaits anything but the socket:
//! - readings go to the pipeline as one batch per socket read ("what the socket had"), through
//!   an unbounded channel; the bound is the broker's in-flight window (`max_inflight_messages`)
//!   and, because a broker may not keep to it, this task's own: with `PENDING_MAX` readings
//!   awaiting their commit it stops reading the socket until acks free room. It still writes
//!   acks meanwhile (which the broker counts as activity); a pipeline that makes no progress at
//!   all is the watchdog's to end;
//! - committed batches come back as one batch of acks, written straight into the connection's
//!   write buffer and flushed once (one write per batch, no request-queue slot per ack).
//!
//! rumqttc keeps neither subscriptions nor a usable state across every failure, so this loop
//! subscribes again on every ConnAck (rumqtt issue 250) and rebuilds the client and event loop
//! when the session state is unusable (`CollisionTimeout` loops, issues 1014/1056). rumqttc turns
//! a packet over its size limit into a disconnect (and the broker redelivers it forever), so the
//! client's limit is MQTT's own maximum and `max_message_kb` is applied after reading: a larger
//! message is counted as `too_large`, logged, acked and dropped.

mod settings;

pub use settings::{IngestError, Settings};

use crate::clock::now_ms;
use crate::flow::{self, Ack, AckSender, Inbound, Inlet};
use crate::metrics::Metrics;
use crate::watchdog::Progress;
use futures_util::FutureExt;
use gridsentry_sensors::{codec, topic::FILTER_ALL, Topic};
use rumqttc::{
    AsyncClient, ConnectionError, Event, EventLoop, Packet, PubAck, QoS, StateError, SubscribeReasonCode,
};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// Readings of this connection handed over and not yet acknowledged at which reading pauses
/// (acks go on); also the largest batch. mosquitto 2.0.11's `max_inflight_messages` (1,000) did
/// not bound what it sent to a resumed session with a backlog: 70,000 unacknowledged were seen
/// and 57 MB of RSS; with this bound 21 MB, and a 200k backlog still drains in under 0.5 s.
const PENDING_MAX: usize = 2048;
/// Longest wait for the broker to take a batch of acks.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs ingest until `shutdown` turns true: decoded readings go to `out` in batches; acks come
/// back on the returned sender (counted in `acks`, the watchdog's view of this task).
pub fn spawn(
    settings: Settings,
    out: Inlet,
    metrics: Arc<Metrics>,
    acks: Arc<Progress>,
    shutdown: watch::Receiver<bool>,
) -> (AckSender, tokio::task::JoinHandle<()>) {
    let (ack_tx, ack_rx) = flow::channel(acks);
    let reader = Reader {
        settings,
        out,
        metrics,
        generation: 0,
        batch: Vec::new(),
        now: Vec::new(),
        pending: 0,
        quiet: Default::default(),
    };
    (ack_tx, tokio::spawn(reader.run(ack_rx, shutdown)))
}

struct Reader {
    settings: Settings,
    out: Inlet,
    metrics: Arc<Metrics>,
    /// Bumped on every connection: acks of an older one are never sent.
    generation: u64,
    /// Readings of the current read, for the pipeline.
    batch: Vec<Inbound>,
    /// Packet ids to ack at once (malformed, too large).
    now: Vec<u16>,
    /// Readings of this connection handed over and not yet acked.
    pending: usize,
    /// Malformed-message warnings per topic and reason.
    quiet: crate::logsafe::Throttle,
}

impl Reader {
    async fn run(mut self, mut acks: flow::Receiver<Ack>, mut shutdown: watch::Receiver<bool>) {
        if crate::testhook::end("ingest") {
            return;
        }
        'rebuild: loop {
            self.generation += 1;
            // Requests are only SUBSCRIBE and DISCONNECT: a small queue, never awaited.
            let (client, mut events) = AsyncClient::new(self.settings.options.clone(), 16);
            loop {
                tokio::select! {
                    biased;
                    _ = async { drop(shutdown.wait_for(|s| *s).await) } => {
                        let _ = client.try_disconnect();
                        let _ = tokio::time::timeout(Duration::from_millis(200), events.poll()).await;
                        self.metrics.mqtt_connected.store(0, Relaxed);
                        return;
                    }
                    Some(first) = acks.recv() => {
                        let mut pkids = Vec::with_capacity(first.len());
                        let mut n = self.keep(&first, &mut pkids);
                        while let Some(more) = acks.try_recv() {
                            n += self.keep(&more, &mut pkids);
                        }
                        let written = write_acks(&mut events, &pkids).await;
                        self.pending = self.pending.saturating_sub(pkids.len());
                        acks.done(n);
                        if let Err(e) = written {
                            self.lost(&mut events, &e);
                        }
                    }
                    polled = events.poll(), if self.pending < PENDING_MAX => {
                        if let Err(rebuild) = self.read(polled, &client, &mut events).await {
                            if rebuild {
                                continue 'rebuild;
                            }
                            tokio::time::sleep(Duration::from_millis(500)).await;
                        }
                    }
                }
            }
        }
    }

    /// Takes this connection's packet ids out of a batch of acks; returns the batch's size.
    fn keep(&self, batch: &[Ack], pkids: &mut Vec<u16>) -> usize {
        pkids.extend(batch.iter().filter_map(|a| match a {
            Ack::Mqtt { pkid, generation } if *generation == self.generation => Some(*pkid),
            _ => None,
        }));
        batch.len()
    }

    /// Handles one polled event and everything else the socket already had, then hands the
    /// readings over as one batch and acks the malformed at once. `Err(true)`: rebuild the
    /// client; `Err(false)`: connection lost, wait and reconnect.
    async fn read(
        &mut self,
        mut polled: Result<Event, ConnectionError>,
        client: &AsyncClient,
        events: &mut EventLoop,
    ) -> Result<(), bool> {
        loop {
            match polled {
                Ok(event) => self.on_event(event, client),
                Err(e) => {
                    self.hand_over();
                    return Err(self.lost(events, &e));
                }
            }
            if self.pending + self.batch.len() >= PENDING_MAX || events.network.is_none() {
                break;
            }
            match events.poll().now_or_never() {
                Some(p) => polled = p,
                None => break,
            }
        }
        self.hand_over();
        if !self.now.is_empty() {
            let pkids = std::mem::take(&mut self.now);
            if let Err(e) = write_acks(events, &pkids).await {
                return Err(self.lost(events, &e));
            }
        }
        Ok(())
    }

    fn hand_over(&mut self) {
        let batch = std::mem::take(&mut self.batch);
        let generation = self.generation;
        self.pending += batch
            .iter()
            .filter(|m| matches!(m.ack, Ack::Mqtt { generation: g, .. } if g == generation))
            .count();
        if self.out.send(batch).is_err() {
            tracing::error!("the pipeline is gone; readings stay unacknowledged for the next run");
        }
    }

    /// The connection is gone: what this connection did not ack, the broker redelivers.
    /// Returns whether the client must be rebuilt.
    fn lost(&mut self, events: &mut EventLoop, e: &ConnectionError) -> bool {
        self.metrics.mqtt_connected.store(0, Relaxed);
        self.generation += 1;
        self.pending = 0;
        if events.network.is_some() {
            events.clean();
        }
        if matches!(e, ConnectionError::MqttState(StateError::CollisionTimeout)) {
            tracing::warn!(error = %e, "mqtt session state unusable; rebuilding the client");
            return true;
        }
        tracing::warn!(error = %e, "mqtt connection lost; reconnecting");
        false
    }

    fn on_event(&mut self, event: Event, client: &AsyncClient) {
        match event {
            Event::Incoming(Packet::ConnAck(ack)) => {
                // Not "connected" yet: readings published before the SUBACK would find no
                // subscription (a new session) and the broker would drop them. Ready at SUBACK.
                self.metrics.mqtt_connects.fetch_add(1, Relaxed);
                tracing::info!(session_present = ack.session_present, "mqtt connected");
                // Subscribe on every ConnAck: rumqttc does not restore subscriptions.
                if let Err(e) = client.try_subscribe(FILTER_ALL, QoS::AtLeastOnce) {
                    tracing::error!(error = %e, "mqtt subscribe failed");
                }
            }
            Event::Incoming(Packet::SubAck(ack)) => {
                if ack.return_codes.iter().all(|c| matches!(c, SubscribeReasonCode::Success(_))) {
                    self.metrics.mqtt_connected.store(1, Relaxed);
                } else {
                    tracing::error!(codes = ?ack.return_codes, "mqtt subscription refused by the broker (ACL?)");
                }
            }
            Event::Incoming(Packet::Publish(p)) => self.on_publish(p),
            _ => {}
        }
    }

    fn on_publish(&mut self, p: rumqttc::Publish) {
        let received_ms = now_ms();
        let ack = match p.qos {
            QoS::AtMostOnce => Ack::None,
            _ => Ack::Mqtt { pkid: p.pkid, generation: self.generation },
        };
        // The daemon's own offers to devices (`…/ota`, [`crate::ota`]) match the readings'
        // filter: not readings, not malformed.
        if let Some((_, _, gridsentry_sensors::ota::OtaTopic::Offer)) =
            gridsentry_sensors::ota::OtaTopic::parse(&p.topic)
        {
            if let Ack::Mqtt { pkid, .. } = ack {
                self.now.push(pkid);
            }
            return;
        }
        let decoded = if p.payload.len() > self.settings.max_message {
            Err(("too_large".to_string(), format!("{} bytes, over max_message_kb", p.payload.len())))
        } else {
            decode(&p)
        };
        match decoded {
            Ok((topic, reading)) => {
                self.batch.push(Inbound::new(topic, reading, p.payload, received_ms, ack))
            }
            Err((reason, detail)) => {
                self.metrics.malformed(&reason);
                // Counted always; logged the first few times a minute per topic and reason.
                let topic = crate::logsafe::escape(&p.topic, 160);
                if let Some(unlogged) = self.quiet.allow(&topic, &reason, std::time::Instant::now()) {
                    let detail = crate::logsafe::escape(&detail, 300);
                    tracing::warn!(%topic, %reason, %detail, unlogged_before = unlogged, "malformed message dropped (logged 3 times a minute per topic and reason; all counted)");
                }
                if let Ack::Mqtt { pkid, .. } = ack {
                    self.now.push(pkid);
                }
            }
        }
    }
}

/// PUBACKs into the connection's write buffer, then one flush.
async fn write_acks(events: &mut EventLoop, pkids: &[u16]) -> Result<(), ConnectionError> {
    let Some(network) = events.network.as_mut() else { return Ok(()) };
    if pkids.is_empty() {
        return Ok(());
    }
    for &pkid in pkids {
        network.write(Packet::PubAck(PubAck::new(pkid))).await?;
    }
    match tokio::time::timeout(FLUSH_TIMEOUT, network.flush()).await {
        Ok(r) => Ok(r?),
        Err(_) => Err(ConnectionError::FlushTimeout),
    }
}

/// Topic and payload checks; `Err` is (counter label, detail for the log).
fn decode(p: &rumqttc::Publish) -> Result<(Topic, gridsentry_sensors::Reading), (String, String)> {
    let topic = Topic::parse(&p.topic).map_err(|e| ("topic".to_string(), e.to_string()))?;
    let reading = codec::decode_on(&topic, &p.payload)
        .map_err(|e| (format!("payload_{}", e.reason()), e.to_string()))?;
    Ok((topic, reading))
}
