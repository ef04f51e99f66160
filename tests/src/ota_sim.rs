//! Simulated devices that speak the real OTA topics (`gridsentry_sensors::ota`) to a real
//! broker: many of them at once, each with its own MQTT session, last will, retained report and
//! in-memory "flash". They check the image as a device does (SHA-256 and the Ed25519 signature
//! over SHA-512), and can be told to fail: refuse the image, never confirm it (back on the old
//! version after the restart), or lose power partway through the download and resume.

use crate::daemon::status_payload;
use gridsentry_sensors::ota::{Chunk, Offer, OtaTopic, Report, UpdateState};
use gridsentry_sensors::{heapless, DeviceState, Id, Stream, Topic};
use rumqttc::{AsyncClient, Event, LastWill, MqttOptions, Packet, QoS};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How a simulated device misbehaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Updates as it should.
    None,
    /// Reports the image failed its check (as a bad flash write would make it).
    Refuse,
    /// Restarts into the image, which never confirms: back on the old version.
    NeverConfirms,
    /// Loses power (connection dropped, no DISCONNECT) once it holds this many bytes, comes back
    /// after a moment and resumes.
    PowerCutAt(u32),
}

/// What a simulated device saw and did.
#[derive(Debug, Default, Clone)]
pub struct Seen {
    pub offers: u32,
    pub chunks: u32,
    /// Offsets it asked for after each power cut (resume points).
    pub resumed_at: Vec<u32>,
    pub version: String,
    pub finished: Option<UpdateState>,
}

/// A running simulated device.
pub struct SimDevice {
    pub name: String,
    pub seen: Arc<Mutex<Seen>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for SimDevice {
    fn drop(&mut self) {
        self.task.abort();
    }
}

struct State {
    site: Id,
    device: Id,
    board: String,
    version: String,
    public_key: String,
    fault: Fault,
    /// The image being downloaded: offer and bytes so far (kept across power cuts: flash).
    download: Option<(Offer, Vec<u8>)>,
    cut_done: bool,
    /// Restarted into a new image: confirm it (roll-out id) once connected.
    confirm: Option<u32>,
}

impl State {
    fn topic(&self, kind: OtaTopic) -> String {
        format!("gs/v1/{}/{}/{}", self.site, self.device, kind.suffix())
    }

    fn report(
        &self,
        state: UpdateState,
        rollout: Option<u32>,
        offset: Option<u32>,
        error: Option<&str>,
    ) -> Vec<u8> {
        let r = Report {
            v: 1,
            board: heapless::String::try_from(self.board.as_str()).unwrap(),
            version: heapless::String::try_from(self.version.as_str()).unwrap(),
            slot: heapless::String::try_from("a").unwrap(),
            state,
            rollout,
            offset,
            error: error.map(|e| heapless::String::try_from(e).unwrap()),
        };
        serde_json::to_vec(&r).unwrap()
    }
}

impl SimDevice {
    /// Starts `site/device` running `version` of `board` on the broker at `port`.
    pub fn start(
        port: u16,
        site: &str,
        device: &str,
        board: &str,
        version: &str,
        public_key: &str,
        fault: Fault,
    ) -> SimDevice {
        let state = State {
            site: Id::new(site).unwrap(),
            device: Id::new(device).unwrap(),
            board: board.into(),
            version: version.into(),
            public_key: public_key.into(),
            fault,
            download: None,
            cut_done: false,
            confirm: None,
        };
        let seen = Arc::new(Mutex::new(Seen { version: version.into(), ..Seen::default() }));
        let task = tokio::spawn(run(port, state, seen.clone()));
        SimDevice { name: format!("{site}/{device}"), seen, task }
    }
}

/// One session: connect, say who it is, follow offers; returns when the device "restarts"
/// (power cut or reboot into a new image).
async fn session(port: u16, st: &mut State, seen: &Arc<Mutex<Seen>>) {
    let status = Topic::new(st.site.clone(), st.device.clone(), Stream::Status).to_string();
    let mut o = MqttOptions::new(format!("sim-{}-{}", st.site, st.device), "127.0.0.1", port);
    o.set_last_will(LastWill::new(
        &status,
        status_payload(&st.site, &st.device, DeviceState::Offline),
        QoS::AtLeastOnce,
        true,
    ));
    o.set_keep_alive(Duration::from_secs(5));
    o.set_max_packet_size(64 * 1024, 64 * 1024);
    let (client, mut events) = AsyncClient::new(o, 100);
    let sub = |c: &AsyncClient, t: String| {
        let c = c.clone();
        async move { c.subscribe(t, QoS::AtLeastOnce).await.unwrap() }
    };
    sub(&client, st.topic(OtaTopic::Offer)).await;
    sub(&client, st.topic(OtaTopic::Chunk)).await;
    let publish = |c: &AsyncClient, t: String, retain: bool, p: Vec<u8>| {
        let c = c.clone();
        async move {
            let _ = c.publish(t, QoS::AtLeastOnce, retain, p).await;
        }
    };
    publish(&client, status.clone(), true, status_payload(&st.site, &st.device, DeviceState::Online)).await;
    // Restarted into a new image: it proved itself (connected, birth sent), so it confirms.
    // Back with a download in flash: resume where it stands. Otherwise idle.
    let first = match (st.confirm.take(), &st.download) {
        (Some(rollout), _) => st.report(UpdateState::Confirmed, Some(rollout), None, None),
        (None, Some((offer, bytes))) => {
            seen.lock().unwrap().resumed_at.push(bytes.len() as u32);
            st.report(UpdateState::Downloading, Some(offer.rollout), Some(bytes.len() as u32), None)
        }
        (None, None) => st.report(UpdateState::Idle, None, None, None),
    };
    publish(&client, st.topic(OtaTopic::State), true, first).await;
    loop {
        // A chunk that does not come within 2 s is asked for again.
        let ev = match tokio::time::timeout(Duration::from_secs(2), events.poll()).await {
            Ok(Ok(ev)) => ev,
            Ok(Err(_)) => {
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
            Err(_) => {
                if let Some((offer, bytes)) = &st.download {
                    let r = st.report(
                        UpdateState::Downloading,
                        Some(offer.rollout),
                        Some(bytes.len() as u32),
                        None,
                    );
                    publish(&client, st.topic(OtaTopic::State), true, r).await;
                }
                continue;
            }
        };
        let Event::Incoming(Packet::Publish(p)) = ev else { continue };
        if p.topic == st.topic(OtaTopic::Offer) {
            let Ok(offer) = serde_json::from_slice::<Offer>(&p.payload) else { continue };
            seen.lock().unwrap().offers += 1;
            if offer.check().is_err()
                || offer.board.as_str() != st.board
                || offer.version.as_str() == st.version
            {
                continue;
            }
            let resume = match &st.download {
                Some((o, b)) if o.sha256 == offer.sha256 && o.rollout == offer.rollout => b.len() as u32,
                _ => {
                    st.download = Some((offer.clone(), Vec::new()));
                    0
                }
            };
            let r = st.report(UpdateState::Downloading, Some(offer.rollout), Some(resume), None);
            publish(&client, st.topic(OtaTopic::State), true, r).await;
        } else if p.topic == st.topic(OtaTopic::Chunk) {
            let Ok(c) = Chunk::parse(&p.payload) else { continue };
            let Some((offer, bytes)) = &mut st.download else { continue };
            if c.rollout != offer.rollout || c.offset as usize != bytes.len() {
                continue; // a duplicate or a stale one
            }
            seen.lock().unwrap().chunks += 1;
            bytes.extend_from_slice(c.data);
            let (rollout, have, size) = (offer.rollout, bytes.len() as u32, offer.size);
            if let Fault::PowerCutAt(at) = st.fault {
                if have >= at && have < size && !st.cut_done {
                    st.cut_done = true;
                    return; // the client is dropped without DISCONNECT: the broker sends the will
                }
            }
            if have < size {
                let r = st.report(UpdateState::Downloading, Some(rollout), Some(have), None);
                publish(&client, st.topic(OtaTopic::State), true, r).await;
                continue;
            }
            let (offer, image) = st.download.take().unwrap_or_else(|| unreachable!());
            let r = st.report(UpdateState::Verifying, Some(rollout), Some(have), None);
            publish(&client, st.topic(OtaTopic::State), true, r).await;
            let good = gridsentry::ota::sign::sha256_hex(&image) == offer.sha256.as_str()
                && gridsentry::ota::sign::verify(&st.public_key, &image, &offer.sig).is_ok();
            if !good || st.fault == Fault::Refuse {
                let r = st.report(UpdateState::Failed, Some(rollout), None, Some("image check failed"));
                publish(&client, st.topic(OtaTopic::State), true, r).await;
                seen.lock().unwrap().finished = Some(UpdateState::Failed);
                continue;
            }
            let r = st.report(UpdateState::Rebooting, Some(rollout), None, None);
            publish(&client, st.topic(OtaTopic::State), true, r).await;
            if st.fault != Fault::NeverConfirms {
                st.version = offer.version.to_string();
                seen.lock().unwrap().version = st.version.clone();
            }
            seen.lock().unwrap().finished = Some(if st.fault == Fault::NeverConfirms {
                UpdateState::RolledBack
            } else {
                UpdateState::Confirmed
            });
            let _ = client.disconnect().await;
            let _ = tokio::time::timeout(Duration::from_millis(500), async {
                while events.poll().await.is_ok() {}
            })
            .await;
            if st.fault != Fault::NeverConfirms {
                st.confirm = Some(rollout);
            }
            return;
        }
    }
}

async fn run(port: u16, mut st: State, seen: Arc<Mutex<Seen>>) {
    loop {
        session(port, &mut st, &seen).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}
