//! The daemon in-process on a test config, and simulated devices (used by `tests/tests/`).

use crate::{config, Hooks, TOKEN};
use gridsentry::notify::deliver::Backoff;
use gridsentry::orders::Change;
use gridsentry::runtime::{self, Overrides, Running};
use gridsentry_sensors::heapless;
use gridsentry_sensors::*;
use rumqttc::{AsyncClient, LastWill, MqttOptions, QoS};
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};
use tokio::sync::{broadcast, watch};

/// Event time of the first test reading (2025-11-25 12:00:00 UTC).
pub const T0: u64 = 1_764_072_000_000;
/// How long a test waits for anything.
pub const WAIT: Duration = Duration::from_secs(20);

/// The daemon running in-process on a test config.
pub struct Daemon {
    running: Option<Running>,
    stop: watch::Sender<bool>,
    changes: broadcast::Receiver<Change>,
    /// API base URL.
    pub api: String,
    /// Its directory (config, secrets, data).
    pub dir: tempfile::TempDir,
}

impl Daemon {
    pub async fn start(broker: u16, hooks: &Hooks, rules: &str) -> Daemon {
        Daemon::start_at(broker, &hooks.url, rules).await
    }

    /// [`Daemon::start`] with receivers under `hooks_url` (`/grid` at tier 0, `/duty` at 1).
    pub async fn start_at(broker: u16, hooks_url: &str, rules: &str) -> Daemon {
        Daemon::start_edited(broker, hooks_url, rules, |text| text, None).await
    }

    /// [`Daemon::start_at`] with the config text changed by `edit`, and receivers' rate limits
    /// counted per `rate_window` instead of a minute.
    pub async fn start_edited(
        broker: u16,
        hooks_url: &str,
        rules: &str,
        edit: impl FnOnce(String) -> String,
        rate_window: Option<Duration>,
    ) -> Daemon {
        let dir = tempfile::tempdir().unwrap();
        let text = edit(config(dir.path(), broker, 0, hooks_url, rules));
        // For the CLI's commands on the same database (`gridsentry … --config DIR/test.toml`).
        std::fs::write(dir.path().join("test.toml"), &text).unwrap();
        let cfg = gridsentry::config::parse("test.toml", &text).unwrap();
        let (stop, rx) = watch::channel(false);
        let backoff = Backoff {
            base: Duration::from_millis(50),
            cap: Duration::from_millis(200),
            breaker_failures: 50,
            breaker_cooldown: Duration::from_millis(300),
            rate_window: rate_window.unwrap_or(Backoff::default().rate_window),
        };
        // Subscribed before the start: field-bus pollers may raise an order before it returns.
        let (tx, changes) = broadcast::channel(4096);
        let o = Overrides {
            tick: Some(Duration::from_millis(100)),
            backoff: Some(backoff),
            changes: Some(tx),
            ..Overrides::default()
        };
        let running = runtime::start(cfg, o, rx).await.unwrap();
        let api = format!("http://{}", running.http);
        let d = Daemon { running: Some(running), stop, changes, api, dir };
        d.wait(|r| r.metrics.mqtt_connected.load(Relaxed) == 1).await;
        d
    }

    pub fn running(&self) -> &Running {
        self.running.as_ref().unwrap()
    }

    /// Waits (polling the daemon's own counters) until `cond` holds.
    pub async fn wait(&self, cond: impl Fn(&Running) -> bool) {
        let deadline = Instant::now() + WAIT;
        while !cond(self.running()) {
            if Instant::now() >= deadline {
                let m = &self.running().metrics;
                let text = gridsentry::metrics::render(m, &Default::default());
                let interesting: Vec<&str> = text
                    .lines()
                    .filter(|l| !l.starts_with('#') && !l.ends_with(" 0") && !l.ends_with(" 0.0"))
                    .collect();
                panic!("condition not reached in {WAIT:?}; metrics:\n{}", interesting.join("\n"));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    pub async fn applied(&self, n: u64) {
        self.wait(|r| r.metrics.readings.iter().map(|c| c.load(Relaxed)).sum::<u64>() >= n).await;
    }

    /// The next order transition (announced by the daemon).
    pub async fn next_change(&mut self) -> Change {
        tokio::time::timeout(WAIT, self.changes.recv()).await.expect("an order transition").unwrap()
    }

    /// Every order transition announced so far and not yet taken.
    pub fn drain_changes(&mut self) -> Vec<Change> {
        std::iter::from_fn(|| self.changes.try_recv().ok()).collect()
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> (u16, serde_json::Value) {
        let mut req = reqwest::Client::new().get(format!("{}{path}", self.api));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(serde_json::Value::Null))
    }

    pub async fn post(&self, path: &str) -> u16 {
        let r = reqwest::Client::new()
            .post(format!("{}{path}", self.api))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        r.status().as_u16()
    }

    pub fn db(&self) -> rusqlite::Connection {
        rusqlite::Connection::open(self.dir.path().join("data/orders.db")).unwrap()
    }

    pub async fn stop(mut self) {
        let _ = self.stop.send(true);
        self.running.take().unwrap().wait().await.unwrap();
    }
}

/// The single integer a query returns.
pub fn count(db: &rusqlite::Connection, sql: &str) -> i64 {
    db.query_row(sql, [], |r| r.get(0)).unwrap()
}

/// The idempotency key of every order transition in the journal (`order_id-seq`): what the
/// receivers must have been given.
pub fn journal_keys(db: &rusqlite::Connection) -> std::collections::HashSet<String> {
    let mut st = db.prepare("SELECT order_id || '-' || seq FROM order_events").unwrap();
    st.query_map([], |r| r.get(0)).unwrap().map(Result::unwrap).collect()
}

/// A simulated device on its own MQTT connection.
pub struct Device {
    /// Its client.
    pub client: AsyncClient,
    site: Id,
    device: Id,
    driver: tokio::task::JoinHandle<()>,
}

impl Device {
    pub async fn connect(port: u16, site: &str, device: &str, will: bool) -> Device {
        let (site, device) = (Id::new(site).unwrap(), Id::new(device).unwrap());
        let mut o = MqttOptions::new(format!("dev-{site}-{device}"), "127.0.0.1", port);
        if will {
            let topic = Topic::new(site.clone(), device.clone(), Stream::Status).to_string();
            o.set_last_will(LastWill::new(
                topic,
                status_payload(&site, &device, DeviceState::Offline),
                QoS::AtLeastOnce,
                true,
            ));
        }
        Device::with_options(o, site, device)
    }

    pub fn with_options(o: MqttOptions, site: Id, device: Id) -> Device {
        let (client, mut events) = AsyncClient::new(o, 1000);
        let driver = tokio::spawn(async move { while events.poll().await.is_ok() {} });
        Device { client, site, device, driver }
    }

    /// Sends reading `seq` of boot 7, stamped `T0 + seq` seconds.
    pub async fn send(&self, seq: u32, body: Body) {
        self.send_as(7, seq, Timestamp::Utc(T0 + u64::from(seq) * 1000), body).await;
    }

    /// Sends a reading with the given boot, sequence number and device time.
    pub async fn send_as(&self, boot_id: u32, seq: u32, time: Timestamp, body: Body) {
        let header = Header {
            site: self.site.clone(),
            device: self.device.clone(),
            boot_id,
            seq,
            time,
            historical: false,
        };
        let topic = Topic::new(self.site.clone(), self.device.clone(), body.stream()).to_string();
        let payload = codec::encode_vec(Format::Json, &Reading { header, body }).unwrap();
        self.client.publish(topic, QoS::AtLeastOnce, false, payload).await.unwrap();
    }

    /// Drops the connection without DISCONNECT (power cut): the broker publishes the will.
    pub fn cut(self) {
        self.driver.abort();
    }
}

/// A status (birth / last will) payload.
pub fn status_payload(site: &Id, device: &Id, state: DeviceState) -> Vec<u8> {
    let body = Body::Status(StatusReport {
        state,
        firmware: heapless::String::try_from("t").unwrap(),
        dropped: 0,
        slot: Default::default(),
    });
    let header = Header {
        site: site.clone(),
        device: device.clone(),
        boot_id: 7,
        seq: 0,
        time: Timestamp::Unsynced(0),
        historical: false,
    };
    codec::encode_vec(Format::Json, &Reading { header, body }).unwrap()
}

/// A heart-rate report.
pub fn hr(band: &str, bpm: u16, contact: Contact) -> Body {
    Body::HeartRate(HeartRateReport {
        band: Id::new(band).unwrap(),
        bpm,
        contact,
        // One beat interval, as a band sends with each rate (health data the receivers do not get).
        rr_1024: heapless::Vec::from_slice(&[1100]).unwrap(),
        energy_kj: None,
        battery_pct: None,
    })
}

/// Noise over 70 dB(A) for 10 s raises a yellow order; below 65 for 5 s clears it.
pub const NOISE_RULE: &str = r#"
[[rule]]
id = "plaza-noise"
colour = "yellow"
condition = { type = "threshold", stream = "noise", field = "laeq_db", above = 70.0, clear = 65.0, for_s = 10, clear_for_s = 5 }
"#;
