//! The daemon spine end to end against real mosquitto, a real HTTP receiver and real SQLite:
//! MQTT in → rules → durable orders → signed webhooks out.

use gridsentry::app::{self, Overrides, Running};
use gridsentry::notify::deliver::Backoff;
use gridsentry::orders::Change;
use gridsentry_sensors::heapless;
use gridsentry_sensors::*;
use gridsentry_tests::{config, noise, Hooks, Mode, Mosquitto, TOKEN};
use rumqttc::{AsyncClient, LastWill, MqttOptions, QoS};
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};
use tokio::sync::{broadcast, watch};

const T0: u64 = 1_764_072_000_000;
const WAIT: Duration = Duration::from_secs(20);

struct Daemon {
    running: Option<Running>,
    stop: watch::Sender<bool>,
    changes: broadcast::Receiver<Change>,
    api: String,
    dir: tempfile::TempDir,
}

impl Daemon {
    async fn start(broker: u16, hooks: &Hooks, rules: &str) -> Daemon {
        let dir = tempfile::tempdir().unwrap();
        let text = config(dir.path(), broker, &hooks.url, rules);
        let cfg = gridsentry::config::parse("test.toml", &text).unwrap();
        let (stop, rx) = watch::channel(false);
        let backoff = Backoff {
            base: Duration::from_millis(50),
            cap: Duration::from_millis(200),
            breaker_failures: 50,
            breaker_cooldown: Duration::from_millis(300),
        };
        let o = Overrides {
            tick: Some(Duration::from_millis(100)),
            backoff: Some(backoff),
            ..Overrides::default()
        };
        let running = app::start(cfg, o, rx).await.unwrap();
        let changes = running.changes.subscribe();
        let api = format!("http://{}", running.http);
        let d = Daemon { running: Some(running), stop, changes, api, dir };
        d.wait(|r| r.metrics.mqtt_connected.load(Relaxed) == 1).await;
        d
    }

    fn running(&self) -> &Running {
        self.running.as_ref().unwrap()
    }

    /// Waits (polling the daemon's own counters) until `cond` holds.
    async fn wait(&self, cond: impl Fn(&Running) -> bool) {
        let deadline = Instant::now() + WAIT;
        while !cond(self.running()) {
            assert!(Instant::now() < deadline, "condition not reached in {WAIT:?}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    async fn applied(&self, n: u64) {
        self.wait(|r| r.metrics.readings.iter().map(|c| c.load(Relaxed)).sum::<u64>() >= n).await;
    }

    /// The next order transition (announced by the daemon).
    async fn next_change(&mut self) -> Change {
        tokio::time::timeout(WAIT, self.changes.recv()).await.expect("an order transition").unwrap()
    }

    async fn get(&self, path: &str, token: Option<&str>) -> (u16, serde_json::Value) {
        let mut req = reqwest::Client::new().get(format!("{}{path}", self.api));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(serde_json::Value::Null))
    }

    async fn post(&self, path: &str) -> u16 {
        let r = reqwest::Client::new()
            .post(format!("{}{path}", self.api))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        r.status().as_u16()
    }

    fn db(&self) -> rusqlite::Connection {
        rusqlite::Connection::open(self.dir.path().join("data/orders.db")).unwrap()
    }

    async fn stop(mut self) {
        let _ = self.stop.send(true);
        self.running.take().unwrap().wait().await.unwrap();
    }
}

fn count(db: &rusqlite::Connection, sql: &str) -> i64 {
    db.query_row(sql, [], |r| r.get(0)).unwrap()
}

struct Device {
    client: AsyncClient,
    site: Id,
    device: Id,
    _driver: tokio::task::JoinHandle<()>,
}

impl Device {
    async fn connect(port: u16, site: &str, device: &str, will: bool) -> Device {
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

    fn with_options(o: MqttOptions, site: Id, device: Id) -> Device {
        let (client, mut events) = AsyncClient::new(o, 1000);
        let driver = tokio::spawn(async move { while events.poll().await.is_ok() {} });
        Device { client, site, device, _driver: driver }
    }

    async fn send(&self, seq: u32, body: Body) {
        let header = Header {
            site: self.site.clone(),
            device: self.device.clone(),
            boot_id: 7,
            seq,
            time: Timestamp::Utc(T0 + u64::from(seq) * 1000),
            historical: false,
        };
        let topic = Topic::new(self.site.clone(), self.device.clone(), body.stream()).to_string();
        let payload = codec::encode_vec(Format::Json, &Reading { header, body }).unwrap();
        self.client.publish(topic, QoS::AtLeastOnce, false, payload).await.unwrap();
    }

    /// Drops the connection without DISCONNECT (power cut): the broker publishes the will.
    fn cut(self) {
        self._driver.abort();
    }
}

fn status_payload(site: &Id, device: &Id, state: DeviceState) -> Vec<u8> {
    let body =
        Body::Status(StatusReport { state, firmware: heapless::String::try_from("t").unwrap(), dropped: 0 });
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

fn hr(band: &str, bpm: u16, contact: Contact) -> Body {
    Body::HeartRate(HeartRateReport {
        band: Id::new(band).unwrap(),
        bpm,
        contact,
        rr_1024: heapless::Vec::new(),
        energy_kj: None,
        battery_pct: None,
    })
}

const NOISE_RULE: &str = r#"
[[rule]]
id = "plaza-noise"
colour = "yellow"
condition = { type = "threshold", stream = "noise", field = "laeq_db", above = 70.0, clear = 65.0, for_s = 10, clear_for_s = 5 }
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn noise_over_the_limit_gives_one_order_and_one_signed_webhook() {
    let broker = Mosquitto::start();
    let mut hooks = Hooks::start().await;
    let mut d = Daemon::start(broker.port, &hooks, NOISE_RULE).await;
    let box1 = Device::connect(broker.port, "plaza-3", "nb-01", false).await;
    for seq in 0..30 {
        box1.send(seq, noise(75.0)).await;
    }
    let raised = d.next_change().await;
    assert_eq!(
        (raised.rule.as_str(), raised.state.as_str(), raised.colour.as_str()),
        ("plaza-noise", "raised", "yellow")
    );
    assert_eq!(raised.at, "2025-11-25T12:00:10Z", "raised in event time, after for_s = 10 s");
    d.applied(30).await;
    let got = hooks.wait_for(1, WAIT).await;
    assert!(got[0].signed, "HMAC signature checked by the receiver");
    assert_eq!(got[0].key, format!("{}-1", raised.order_id));
    assert_eq!(got[0].body["event"], "raised");
    assert_eq!(got[0].body["schema"], "gridsentry.order.v1");
    let db = d.db();
    assert_eq!(count(&db, "SELECT COUNT(*) FROM orders"), 1);
    assert_eq!(count(&db, "SELECT COUNT(*) FROM outbox"), 1, "exactly one notification");
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heart_rate_drop_is_red_and_a_removed_band_is_its_own_order() {
    let rules = r#"
[[rule]]
id = "heart-rate-drop"
colour = "red"
condition = { type = "hr_drop", drop_pct = 30.0, window_s = 60 }

[[rule]]
id = "heart-rate-low"
colour = "red"
condition = { type = "hr_low", below_bpm = 40, for_s = 10 }

[[rule]]
id = "band-removed"
colour = "orange"
condition = { type = "band_removed", for_s = 10 }
"#;
    let broker = Mosquitto::start();
    let hooks = Hooks::start().await;
    let mut d = Daemon::start(broker.port, &hooks, rules).await;
    let gw = Device::connect(broker.port, "home-12", "gw-1", false).await;
    for seq in 0..5 {
        gw.send(seq, hr("a1", 80, Contact::Detected)).await;
    }
    gw.send(5, hr("a1", 50, Contact::Detected)).await;
    let red = d.next_change().await;
    assert_eq!(
        (red.rule.as_str(), red.colour.as_str(), red.subject.as_str()),
        ("heart-rate-drop", "red", "home-12/gw-1/a1")
    );
    let gw2 = Device::connect(broker.port, "home-15", "gw-2", false).await;
    gw2.send(0, hr("b2", 70, Contact::Detected)).await;
    for seq in 1..30 {
        gw2.send(seq, hr("b2", 0, Contact::NotDetected)).await;
    }
    let off = d.next_change().await;
    assert_eq!(
        (off.rule.as_str(), off.colour.as_str(), off.subject.as_str()),
        ("band-removed", "orange", "home-15/gw-2/b2")
    );
    d.applied(36).await;
    let (status, body) = d.get("/api/v1/orders?open=true", Some(TOKEN)).await;
    assert_eq!(status, 200);
    let rules: Vec<&str> =
        body["orders"].as_array().unwrap().iter().map(|o| o["rule"].as_str().unwrap()).collect();
    assert_eq!(rules, vec!["band-removed", "heart-rate-drop"], "no heart alarm for the removed band");
    assert_eq!(d.get("/api/v1/orders", None).await.0, 401);
    assert_eq!(d.get("/api/v1/orders", Some("wrong")).await.0, 401);
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn last_will_offline_raises_a_no_data_order() {
    let rules = r#"
[[rule]]
id = "box-silent"
colour = "blue"
condition = { type = "no_data", stream = "noise", silent_s = 3600 }
"#;
    let broker = Mosquitto::start();
    let hooks = Hooks::start().await;
    let mut d = Daemon::start(broker.port, &hooks, rules).await;
    let b = Device::connect(broker.port, "plaza-4", "nb-02", true).await;
    b.send(0, noise(50.0)).await;
    d.applied(1).await;
    b.cut();
    let c = d.next_change().await;
    assert_eq!((c.rule.as_str(), c.colour.as_str(), c.state.as_str()), ("box-silent", "blue", "raised"));
    assert_eq!(c.summary, "gateway reported the device offline (last will)");
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flapping_input_gives_one_flapping_order() {
    let rules = r#"
[[rule]]
id = "plaza-noise"
colour = "yellow"
flap = { transitions = 4, window_s = 600 }
condition = { type = "threshold", stream = "noise", field = "laeq_db", above = 70.0, clear = 65.0 }
"#;
    let broker = Mosquitto::start();
    let hooks = Hooks::start().await;
    let d = Daemon::start(broker.port, &hooks, rules).await;
    let b = Device::connect(broker.port, "plaza-3", "nb-01", false).await;
    for seq in 0..40 {
        b.send(seq, noise(if seq % 2 == 0 { 75.0 } else { 60.0 })).await;
    }
    d.applied(40).await;
    let db = d.db();
    // 40 transitions: the first three pass (raise, resolve, raise), the fourth makes the
    // subject flap and the rest fold into that open order.
    assert_eq!(count(&db, "SELECT COUNT(*) FROM orders"), 2);
    assert_eq!(
        count(&db, "SELECT COUNT(*) FROM orders WHERE state = 'raised' AND summary LIKE 'flapping:%'"),
        1
    );
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_receiver_gets_bounded_retries_then_a_replayable_dead_letter() {
    let broker = Mosquitto::start();
    let mut hooks = Hooks::start().await;
    hooks.set_mode(Mode::Fail(500));
    let d = Daemon::start(broker.port, &hooks, NOISE_RULE).await;
    let b = Device::connect(broker.port, "plaza-3", "nb-01", false).await;
    for seq in 0..12 {
        b.send(seq, noise(75.0)).await;
    }
    d.applied(12).await;
    hooks.wait_for(4, WAIT).await;
    d.wait(|r| r.metrics.webhooks_dead.load(Relaxed) == 1).await;
    let (_, dead) = d.get("/api/v1/dead-letters", Some(TOKEN)).await;
    let dead = dead["dead_letters"].as_array().unwrap().clone();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0]["attempts"], 4);
    assert_eq!(dead[0]["last_error"], "HTTP 500");
    assert_eq!(hooks.all().len(), 4, "max_attempts = 4: no retry storm: {:#?}", hooks.all());
    hooks.set_mode(Mode::Ok);
    assert_eq!(d.post(&format!("/api/v1/dead-letters/{}/replay", dead[0]["id"])).await, 200);
    let all = hooks.wait_for(5, WAIT).await;
    assert_eq!(all[4].status, 204);
    assert!(all.iter().all(|h| h.key == all[0].key), "the same idempotency key every time");
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hanging_receiver_times_out_and_gets_it_after_recovery() {
    let broker = Mosquitto::start();
    let mut hooks = Hooks::start().await;
    hooks.set_mode(Mode::Hang);
    let d = Daemon::start(broker.port, &hooks, NOISE_RULE).await;
    let b = Device::connect(broker.port, "plaza-3", "nb-01", false).await;
    for seq in 0..12 {
        b.send(seq, noise(75.0)).await;
    }
    hooks.wait_for(2, WAIT).await;
    hooks.set_mode(Mode::Ok);
    let deadline = Instant::now() + WAIT;
    while !hooks.all().iter().any(|h| h.status == 204) {
        assert!(Instant::now() < deadline, "never delivered after recovery");
        hooks.wait_for(hooks.all().len() + 1, WAIT).await;
    }
    let all = hooks.all();
    assert!(all.len() <= 4, "bounded retries: {} requests", all.len());
    d.wait(|r| r.metrics.webhooks_delivered.load(Relaxed) == 1).await;
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_restart_reconnects_resubscribes_and_loses_nothing() {
    let mut broker = Mosquitto::start();
    let hooks = Hooks::start().await;
    let d = Daemon::start(broker.port, &hooks, NOISE_RULE).await;
    let b = Device::connect(broker.port, "plaza-3", "nb-01", false).await;
    b.send(0, noise(50.0)).await;
    d.applied(1).await;
    broker.restart();
    d.wait(|r| r.metrics.mqtt_connects.load(Relaxed) >= 2 && r.metrics.mqtt_connected.load(Relaxed) == 1)
        .await;
    let b2 = Device::connect(broker.port, "plaza-3", "nb-01b", false).await;
    for seq in 1..=20 {
        b2.send(seq, noise(50.0)).await;
    }
    d.applied(21).await;
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_swaps_rules_and_keeps_a_pending_timer() {
    let broker = Mosquitto::start();
    let hooks = Hooks::start().await;
    let mut d = Daemon::start(broker.port, &hooks, NOISE_RULE).await;
    let b = Device::connect(broker.port, "plaza-3", "nb-01", false).await;
    for seq in 0..6 {
        b.send(seq, noise(75.0)).await;
    }
    d.applied(6).await;
    // Same rule id, new colour (and a config error elsewhere would have been refused by `check`).
    let text = NOISE_RULE.replace("colour = \"yellow\"", "colour = \"orange\"");
    let cfg = gridsentry::config::parse("reload.toml", &config(d.dir.path(), broker.port, &hooks.url, &text))
        .unwrap();
    d.running().control.send(app::reload_of(&cfg)).unwrap();
    for seq in 6..12 {
        b.send(seq, noise(75.0)).await;
    }
    let c = d.next_change().await;
    assert_eq!(
        (c.colour.as_str(), c.at.as_str()),
        ("orange", "2025-11-25T12:00:10Z"),
        "the 10 s timer started before the reload"
    );
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_messages_are_counted_acked_and_dropped() {
    let broker = Mosquitto::start();
    let hooks = Hooks::start().await;
    let d = Daemon::start(broker.port, &hooks, NOISE_RULE).await;
    let b = Device::connect(broker.port, "plaza-3", "nb-01", false).await;
    let garbage: [(&str, &[u8]); 4] = [
        ("gs/v1/plaza-3/nb-01/noise", b"{\"v\":1,\"site\":"),
        ("gs/v1/plaza-3/nb-01/noise", b"\x01\xff\xff\xff"),
        ("gs/v1/plaza-3/nb-01/noise", b"{\"v\":7}"),
        ("gs/v1/plaza-3/nb-01/weather", b"{}"),
    ];
    for (topic, payload) in garbage {
        b.client.publish(topic, QoS::AtLeastOnce, false, payload.to_vec()).await.unwrap();
    }
    // A reading on another device's topic is refused too.
    let header = Header {
        site: Id::new("plaza-9").unwrap(),
        device: Id::new("nb-01").unwrap(),
        boot_id: 7,
        seq: 0,
        time: Timestamp::Utc(T0),
        historical: false,
    };
    let spoofed = codec::encode_vec(Format::Json, &Reading { header, body: noise(90.0) }).unwrap();
    b.client.publish("gs/v1/plaza-3/nb-01/noise", QoS::AtLeastOnce, false, spoofed).await.unwrap();
    b.send(1, noise(50.0)).await;
    d.applied(1).await;
    let m = reqwest::get(format!("{}/metrics", d.api)).await.unwrap().text().await.unwrap();
    for line in [
        "gridsentry_malformed_total{reason=\"payload_syntax\"} 2",
        "gridsentry_malformed_total{reason=\"payload_unsupported_version\"} 1",
        "gridsentry_malformed_total{reason=\"topic\"} 1",
        "gridsentry_malformed_total{reason=\"payload_conflict\"} 1",
        "gridsentry_readings_total{stream=\"noise\"} 1",
    ] {
        assert!(m.contains(line), "{line} missing in:\n{m}");
    }
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn username_and_password_from_a_secret_file() {
    let broker = Mosquitto::start_with_password("gridsentry", "s3cret-pw");
    let hooks = Hooks::start().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("mqtt-password"), "s3cret-pw\n").unwrap();
    let text = config(dir.path(), broker.port, &hooks.url, NOISE_RULE).replace(
        "client_id = \"gridsentry-test\"",
        &format!(
            "client_id = \"gridsentry-test\"\nusername = \"gridsentry\"\npassword = {{ file = \"{}\" }}",
            dir.path().join("mqtt-password").display()
        ),
    );
    let cfg = gridsentry::config::parse("auth.toml", &text).unwrap();
    let (stop, rx) = watch::channel(false);
    let running = app::start(cfg, Overrides::default(), rx).await.unwrap();
    let deadline = Instant::now() + WAIT;
    while running.metrics.mqtt_connected.load(Relaxed) != 1 {
        assert!(Instant::now() < deadline, "not connected with username and password");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut o = MqttOptions::new("dev-auth", "127.0.0.1", broker.port);
    o.set_credentials("gridsentry", "s3cret-pw");
    let b = Device::with_options(o, Id::new("plaza-3").unwrap(), Id::new("nb-01").unwrap());
    b.send(0, noise(50.0)).await;
    while running.metrics.readings[0].load(Relaxed) != 1 {
        assert!(Instant::now() < deadline, "reading not applied");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let _ = stop.send(true);
    running.wait().await.unwrap();
}
