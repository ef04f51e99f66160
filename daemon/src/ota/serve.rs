//! The roll-out server: one MQTT session of its own to the devices' broker, one thread that owns
//! a store connection.
//!
//! Why a thread: the store is blocking (SQLite, the PostgreSQL client), and nothing here is
//! latency-critical for people — a chunk a few milliseconds late only slows one download. The
//! MQTT task hands every message over a channel; the thread answers chunk requests from images
//! held in memory, records what moved (one transaction per batch of messages), and once a second
//! decides each live roll-out's next step ([`super::waves`]).

use super::waves::{self, Decision};
use crate::orders::ota::{FleetDevice, Move, Rollout, Target};
use crate::orders::{Batch, Store};
use crate::rules::{Colour, Event, EventKind, Said, Subject};
use gridsentry_sensors::ota::{Chunk, Offer, OtaTopic, Report, VERSION};
use gridsentry_sensors::{codec, Body, DeviceState, Id, Topic};
use rumqttc::{AsyncClient, QoS};
use std::collections::HashMap;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Largest `ota/state` report read (a report is ~200 bytes).
pub const REPORT_MAX: usize = 1024;
/// Chunks one device is sent per second at most. A device writing flash takes a few dozen a
/// second (an ESP32-C3 erases 4 KB in ~45 ms); one that asks faster is broken or hostile, and
/// must not turn the daemon into a firehose on the street's broker.
pub const CHUNKS_PER_S: u32 = 64;
/// Who the daemon's own actions are recorded as.
const DAEMON: &str = "daemon:ota";

/// A message from the broker.
pub struct Incoming {
    pub topic: String,
    pub payload: bytes::Bytes,
    pub retained: bool,
}

/// Settings, resolved.
#[derive(Debug, Clone)]
pub struct Tuning {
    pub chunk: u32,
    pub reoffer_ms: i64,
    pub grace_ms: i64,
}

/// The live roll-outs and their devices, refreshed every tick.
struct Live {
    rollout: Rollout,
    targets: Vec<Target>,
    image: Arc<[u8]>,
}

pub(super) struct Server {
    pub store: Store,
    pub client: AsyncClient,
    pub tuning: Tuning,
    pub metrics: Arc<crate::metrics::Metrics>,
    pub outbox: Option<tokio::sync::watch::Sender<u64>>,
    live: Vec<Live>,
    images: HashMap<i64, Arc<[u8]>>,
    /// Online per device, from status messages (a report alone does not say it).
    online: HashMap<String, bool>,
    fleet: HashMap<String, FleetDevice>,
    /// Devices that moved, to record with the next batch.
    moves: Vec<Move>,
    seen: Vec<FleetDevice>,
    /// Chunks sent per device in the current second.
    sent: HashMap<String, (Instant, u32)>,
}

impl Server {
    pub fn new(
        store: Store,
        client: AsyncClient,
        tuning: Tuning,
        metrics: Arc<crate::metrics::Metrics>,
        outbox: Option<tokio::sync::watch::Sender<u64>>,
    ) -> Server {
        Server {
            store,
            client,
            tuning,
            metrics,
            outbox,
            live: Vec::new(),
            images: HashMap::new(),
            online: HashMap::new(),
            fleet: HashMap::new(),
            moves: Vec::new(),
            seen: Vec::new(),
            sent: HashMap::new(),
        }
    }

    /// Runs until the channel closes.
    pub fn run(mut self, rx: Receiver<Incoming>) {
        let mut next_tick = Instant::now();
        loop {
            let wait = next_tick.saturating_duration_since(Instant::now());
            match rx.recv_timeout(wait) {
                Ok(m) => {
                    self.on_message(m);
                    // Whatever else is waiting, in the same transaction.
                    for m in rx.try_iter().take(1000) {
                        self.on_message(m);
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return,
            }
            self.flush();
            if Instant::now() >= next_tick {
                if let Err(e) = self.tick() {
                    tracing::error!(error = %e, "ota: roll-out step failed; retrying");
                }
                next_tick = Instant::now() + Duration::from_secs(1);
            }
        }
    }

    fn flush(&mut self) {
        let now = crate::clock::now_ms() as i64;
        let seen = std::mem::take(&mut self.seen);
        if let Err(e) = self.store.fleet_update(&seen) {
            tracing::error!(error = %e, "ota: recording device reports failed");
        }
        let moves = std::mem::take(&mut self.moves);
        if let Err(e) = self.store.ota_progress(&moves, now) {
            tracing::error!(error = %e, "ota: recording progress failed");
        }
    }

    fn on_message(&mut self, m: Incoming) {
        if let Some((site, device, OtaTopic::State)) = OtaTopic::parse(&m.topic) {
            return self.on_report(&site, &device, &m);
        }
        // A status message: online or offline.
        let Ok(topic) = Topic::parse(&m.topic) else { return };
        let Ok(reading) = codec::decode_on(&topic, &m.payload) else { return };
        if let Body::Status(s) = reading.body {
            let key = format!("{}/{}", topic.site, topic.device);
            let online = s.state == DeviceState::Online;
            self.online.insert(key.clone(), online);
            if let Some(f) = self.fleet.get_mut(&key) {
                f.online = online;
                f.seen_ms = crate::clock::now_ms() as i64;
                self.seen.push(f.clone());
            }
        }
    }

    fn malformed(&self, topic: &str, why: &str) {
        self.metrics.malformed("ota_report");
        let topic = crate::logsafe::escape(topic, 160);
        tracing::warn!(%topic, detail = %crate::logsafe::escape(why, 200), "ota: malformed device report dropped");
    }

    fn on_report(&mut self, site: &Id, device: &Id, m: &Incoming) {
        if m.payload.is_empty() {
            return; // a retained report being cleared
        }
        if m.payload.len() > REPORT_MAX {
            return self.malformed(&m.topic, "over 1 KB");
        }
        let rep: Report = match serde_json::from_slice(&m.payload) {
            Ok(r) => r,
            Err(e) => return self.malformed(&m.topic, &e.to_string()),
        };
        if rep.v != VERSION {
            return self.malformed(&m.topic, &format!("contract version {}", rep.v));
        }
        let key = format!("{site}/{device}");
        let now = crate::clock::now_ms() as i64;
        let online = *self.online.entry(key.clone()).or_insert(!m.retained);
        let f = FleetDevice {
            device: key.clone(),
            site: site.to_string(),
            board: rep.board.to_string(),
            version: rep.version.to_string(),
            slot: rep.slot.to_string(),
            state: rep.state.as_str().to_string(),
            online,
            seen_ms: now,
        };
        self.fleet.insert(key.clone(), f.clone());
        self.seen.push(f);
        for live in &mut self.live {
            let Some(t) = live.targets.iter_mut().find(|t| t.device == key) else { continue };
            if let Some((state, bytes, error)) = waves::on_report(&live.rollout, t, &rep) {
                if state != t.state || bytes.is_some() {
                    t.state.clone_from(&state);
                    let m = Move {
                        rollout: live.rollout.id,
                        device: key.clone(),
                        state,
                        bytes_done: bytes,
                        error,
                    };
                    self.moves.push(m);
                }
            }
            let asks = rep.state == gridsentry_sensors::ota::UpdateState::Downloading
                && rep.rollout.map(i64::from) == Some(live.rollout.id)
                && live.rollout.status != "cancelled";
            if let (true, Some(offset)) = (asks, rep.offset) {
                let (since, n) = self.sent.entry(key.clone()).or_insert((Instant::now(), 0));
                if since.elapsed() >= Duration::from_secs(1) {
                    (*since, *n) = (Instant::now(), 0);
                }
                *n += 1;
                if *n <= CHUNKS_PER_S {
                    send_chunk(&self.client, site, device, live, offset, self.tuning.chunk);
                } else if *n == CHUNKS_PER_S + 1 {
                    self.metrics.malformed("ota_chunk_flood");
                    tracing::warn!(%site, %device, "ota: device asks for chunks faster than {CHUNKS_PER_S}/s; ignored this second");
                }
            }
        }
    }

    /// One step of every live roll-out.
    fn tick(&mut self) -> Result<(), crate::orders::StoreError> {
        let now = crate::clock::now_ms() as i64;
        if self.fleet.is_empty() {
            self.fleet = self.store.fleet()?.into_iter().map(|f| (f.device.clone(), f)).collect();
        }
        let mut live = Vec::new();
        for r in self.store.rollouts(true)? {
            let image = match self.images.get(&r.firmware.id) {
                Some(i) => i.clone(),
                None => {
                    let Some(bytes) = self.store.firmware_image(r.firmware.id)? else { continue };
                    let image: Arc<[u8]> = bytes.into();
                    self.images.insert(r.firmware.id, image.clone());
                    image
                }
            };
            let targets = self.store.rollout_targets(r.id)?;
            live.push(Live { rollout: r, targets, image });
        }
        let fleet: HashMap<&str, &FleetDevice> = self.fleet.iter().map(|(k, v)| (k.as_str(), v)).collect();
        let mut offered = Vec::new();
        for l in &mut live {
            if l.rollout.status == "active" {
                match waves::decide(&l.rollout, &l.targets, &fleet, now, self.tuning.grace_ms) {
                    Decision::Wait => {}
                    Decision::Advance => {
                        if self.store.rollout_advance(l.rollout.id, l.rollout.wave, now)? {
                            l.rollout.wave += 1;
                            tracing::info!(rollout = l.rollout.id, wave = l.rollout.wave, "ota: next wave");
                        }
                    }
                    Decision::Done => {
                        let why = "every device finished";
                        if self.store.rollout_status(l.rollout.id, &["active"], "done", why, DAEMON, now)? {
                            l.rollout.status = "done".into();
                            tracing::info!(rollout = l.rollout.id, "ota: roll-out done");
                        }
                    }
                    Decision::Pause(why) => {
                        if self.store.rollout_status(
                            l.rollout.id,
                            &["active"],
                            "paused",
                            &why,
                            DAEMON,
                            now,
                        )? {
                            l.rollout.status = "paused".into();
                            tracing::warn!(rollout = l.rollout.id, reason = %why, "ota: roll-out paused itself");
                            raise(&mut self.store, &l.rollout, &why, now)?;
                            if let Some(o) = &self.outbox {
                                o.send_modify(|n| *n += 1);
                            }
                        }
                    }
                }
            }
            for t in waves::offers(&l.rollout, &l.targets, &fleet, now, self.tuning.reoffer_ms) {
                offered.push((l.rollout.id, t.device.clone()));
                send_offer(&self.client, &l.rollout, &t.device, self.tuning.chunk);
            }
        }
        for (rollout, device) in offered {
            let m = Move { rollout, device, state: "offered".into(), bytes_done: None, error: None };
            self.moves.push(m);
        }
        // What was just decided, in the view the next messages are matched against.
        for l in &mut live {
            for t in &mut l.targets {
                if let Some(m) =
                    self.moves.iter().rev().find(|m| m.rollout == l.rollout.id && m.device == t.device)
                {
                    t.state.clone_from(&m.state);
                }
            }
        }
        self.live = live;
        Ok(())
    }
}

fn topic(device: &str, kind: OtaTopic) -> String {
    format!("gs/v1/{device}/{}", kind.suffix())
}

fn send_offer(client: &AsyncClient, r: &Rollout, device: &str, chunk: u32) {
    fn text<const N: usize>(s: &str) -> gridsentry_sensors::heapless::String<N> {
        gridsentry_sensors::heapless::String::try_from(s).unwrap_or_default()
    }
    let offer = Offer {
        v: VERSION,
        rollout: r.id as u32,
        board: text(&r.firmware.board),
        version: text(&r.firmware.version),
        size: r.firmware.size as u32,
        sha256: text(&r.firmware.sha256),
        sig: text(&r.firmware.signature),
        chunk,
    };
    let Ok(payload) = serde_json::to_vec(&offer) else { return };
    if let Err(e) = client.try_publish(topic(device, OtaTopic::Offer), QoS::AtLeastOnce, false, payload) {
        tracing::warn!(device, error = %e, "ota: offer not sent (sent again later)");
    }
}

fn send_chunk(client: &AsyncClient, site: &Id, device: &Id, l: &Live, offset: u32, chunk: u32) {
    let start = offset as usize;
    if start >= l.image.len() {
        return;
    }
    let end = (start + chunk as usize).min(l.image.len());
    let mut payload = Vec::with_capacity(8 + end - start);
    payload.extend_from_slice(&Chunk::header(l.rollout.id as u32, offset));
    payload.extend_from_slice(&l.image[start..end]);
    let t = topic(&format!("{site}/{device}"), OtaTopic::Chunk);
    if let Err(e) = client.try_publish(t, QoS::AtLeastOnce, false, payload) {
        // The device asks again when no chunk comes.
        tracing::warn!(%site, %device, error = %e, "ota: chunk not sent");
    }
}

/// Raises the order that tells people a roll-out paused itself.
fn raise(store: &mut Store, r: &Rollout, why: &str, now: i64) -> Result<(), crate::orders::StoreError> {
    let (Ok(site), Ok(device)) = (Id::new("fleet"), Id::new(&format!("rollout-{}", r.id))) else {
        return Ok(());
    };
    let event = Event {
        rule: "ota_rollout".into(),
        subject: Subject { site, device, band: None },
        at_ms: now as u64,
        kind: EventKind::Raise { colour: Colour::Yellow, flapping: false },
        late: false,
        summary: Said {
            en: format!(
                "Firmware roll-out {} ({} {}) paused itself: {why}",
                r.id, r.firmware.board, r.firmware.version
            ),
            zh: format!("固件升级 {}（{} {}）已自动暂停：{why}", r.id, r.firmware.board, r.firmware.version),
        },
        value: None,
        forecast: None,
    };
    let changes = store.commit(&Batch { events: vec![(event, None)], ..Batch::default() }, now)?;
    if let Some(c) = changes.first() {
        store.rollout_order(r.id, c.order_id)?;
    }
    Ok(())
}
