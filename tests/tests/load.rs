//! The data path under load and faults, against real mosquitto (persistence on) and the daemon
//! binary as a child process: a backlog after a SIGKILL drains exactly once, a message far over
//! the size limit is counted and passed over, a stalled stage turns `/readyz` red and ends the
//! process, a crash between commit and ack is recognised on redelivery, twice the load it
//! sustains makes it fall behind but never stop, and a broker SIGKILLed mid-stream loses
//! nothing it had saved.

use gridsentry_sensors::*;
use gridsentry_tests::daemon::journal_keys;
use gridsentry_tests::loadgen::{self, Messages};
use gridsentry_tests::{
    binary, config, free_port, metric, spawn_daemon, spawn_daemon_with, wait_ready, Hooks, Mosquitto,
};

/// Readings applied (all streams), from the daemon's `/metrics`.
async fn applied(http: u16) -> u64 {
    let Ok(r) = reqwest::get(format!("http://127.0.0.1:{http}/metrics")).await else { return 0 };
    let text = r.text().await.unwrap_or_default();
    text.lines()
        .filter(|l| l.starts_with("gridsentry_readings_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

const T0: u64 = 1_764_072_000_000;
const DEVICES: u64 = 100;
/// Reading s of a device is 75 dB(A) when s % FLIP == 0 (raise) and 60 otherwise (the next one
/// clears): two transitions per FLIP readings of a device.
const FLIP: u64 = 50;

const RULE: &str = r#"
[[rule]]
id = "plaza-noise"
colour = "yellow"
condition = { type = "threshold", stream = "noise", field = "laeq_db", above = 70.0, clear = 65.0 }
"#;

/// Message i: device i % DEVICES, its reading number i / DEVICES.
fn messages() -> Messages {
    Arc::new(|i| {
        let (dev, seq) = (i % DEVICES, i / DEVICES);
        let db = if seq % FLIP == 0 { 75.0 } else { 60.0 };
        let header = Header {
            site: Id::new("plaza-9").unwrap(),
            device: Id::new(&format!("nb-{dev}")).unwrap(),
            boot_id: 3,
            seq: seq as u32,
            time: Timestamp::Utc(T0 + seq * 1000),
            historical: false,
        };
        let reading = Reading { header, body: gridsentry_tests::noise(db) };
        (format!("gs/v1/plaza-9/nb-{dev}/noise"), codec::encode_vec(Format::Json, &reading).unwrap())
    })
}

/// Transitions that `n` messages cause (each device's raises and the clears that follow them).
fn transitions(n: u64) -> u64 {
    (0..DEVICES)
        .map(|d| {
            let readings = n / DEVICES + u64::from(d < n % DEVICES);
            let raises = readings.div_ceil(FLIP);
            let clears = readings / FLIP + u64::from(readings % FLIP > 1);
            raises + clears.min(raises)
        })
        .sum()
}

struct Setup {
    dir: tempfile::TempDir,
    cfg: PathBuf,
    log: PathBuf,
    http: u16,
}

fn setup(broker: &Mosquitto, hooks: &Hooks, extra_daemon: &str) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let http = free_port();
    let text = config(dir.path(), broker.port, http, &hooks.url, RULE)
        .replace("[daemon]\n", &format!("[daemon]\n{extra_daemon}\n"));
    let cfg = dir.path().join("gridsentry.toml");
    std::fs::write(&cfg, text).unwrap();
    let log = dir.path().join("daemon.log");
    Setup { dir, cfg, log, http }
}

fn db(dir: &Path) -> rusqlite::Connection {
    rusqlite::Connection::open(dir.join("data/orders.db")).unwrap()
}

fn count(db: &rusqlite::Connection, sql: &str) -> u64 {
    db.query_row(sql, [], |r| r.get::<_, i64>(0)).unwrap_or(-1) as u64
}

async fn until(what: &str, log: &Path, secs: u64, mut cond: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !cond().await {
        assert!(
            Instant::now() < deadline,
            "{what}: not reached in {secs} s; daemon log:\n{}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backlog_left_by_a_sigkill_is_applied_exactly_once() {
    const N: u64 = 50_000;
    let broker = Mosquitto::start();
    let hooks = Hooks::start().await;
    let s = setup(&broker, &hooks, "");
    let mut daemon = spawn_daemon(&binary(), &s.cfg, &s.log);
    wait_ready(s.http).await; // subscribed: the broker keeps its session from now on
    daemon.kill().unwrap(); // SIGKILL
    daemon.wait().unwrap();

    let took = loadgen::publish(broker.port, 4, messages(), 0, N, None).await;
    eprintln!("backlog: {N} readings queued in the daemon's session in {took:?}");
    let started = Instant::now();
    let _daemon = spawn_daemon(&binary(), &s.cfg, &s.log);
    wait_ready(s.http).await;
    eprintln!("backlog: ready {:?} after the restart", started.elapsed());
    until("backlog applied", &s.log, 240, async || applied(s.http).await >= N).await;
    eprintln!("backlog: {N} applied {:?} after the restart", started.elapsed());
    let db = db(s.dir.path());
    let want = transitions(N);
    until("transitions recorded", &s.log, 30, async || {
        count(&db, "SELECT COUNT(*) FROM order_events") >= want
    })
    .await;
    assert_eq!(applied(s.http).await, N, "each reading applied once");
    assert_eq!(metric(s.http, "gridsentry_duplicates_total").await, Some(0));
    assert_eq!(count(&db, "SELECT COUNT(*) FROM order_events"), want, "the order journal");
    let last: u64 = count(&db, "SELECT MIN(seq) FROM device_seq");
    assert_eq!(last, N / DEVICES - 1, "every device's last reading applied");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_of_one_mib_is_counted_and_ingestion_goes_on() {
    let broker = Mosquitto::start();
    let hooks = Hooks::start().await;
    let s = setup(&broker, &hooks, "");
    let _daemon = spawn_daemon(&binary(), &s.cfg, &s.log);
    wait_ready(s.http).await;
    let big: Messages = Arc::new(|_| ("gs/v1/plaza-9/nb-0/noise".into(), vec![b'{'; 1 << 20]));
    loadgen::publish(broker.port, 1, big, 0, 1, None).await;
    loadgen::publish(broker.port, 1, messages(), 0, 100, None).await;
    until("100 readings after the big one", &s.log, 30, async || applied(s.http).await >= 100).await;
    let text =
        reqwest::get(format!("http://127.0.0.1:{}/metrics", s.http)).await.unwrap().text().await.unwrap();
    assert!(text.contains("gridsentry_malformed_total{reason=\"too_large\"} 1"), "{text}");
    assert_eq!(metric(s.http, "gridsentry_mqtt_connects_total").await, Some(1), "never disconnected");
    let log = std::fs::read_to_string(&s.log).unwrap();
    assert!(
        log.contains("too_large") && log.contains("gs/v1/plaza-9/nb-0/noise"),
        "logged with its topic:\n{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_stage_turns_readyz_red_and_exits_non_zero() {
    let broker = Mosquitto::start();
    let hooks = Hooks::start().await;
    let s = setup(&broker, &hooks, "stall_s = 2");
    let mut daemon = spawn_daemon_with(&binary(), &s.cfg, &s.log, &[("GRIDSENTRY_TEST_STALL", "pipeline")]);
    wait_ready(s.http).await;
    let stalled_at = Instant::now();
    loadgen::publish(broker.port, 1, messages(), 0, 10, None).await;
    let url = format!("http://127.0.0.1:{}/readyz", s.http);
    let mut red = None;
    let status = loop {
        if let Some(status) = daemon.try_wait().unwrap() {
            break status;
        }
        if red.is_none() {
            if let Ok(r) = reqwest::get(&url).await {
                if r.status() == 503 {
                    red = Some((stalled_at.elapsed(), r.text().await.unwrap()));
                }
            }
        }
        assert!(stalled_at.elapsed() < Duration::from_secs(30), "still running 30 s after a 2 s stall");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let (after, why) = red.expect("/readyz went red before the exit");
    eprintln!(
        "stall: /readyz 503 after {after:?} ({}), exit {status} after {:?}",
        why.trim(),
        stalled_at.elapsed()
    );
    assert!(why.contains("`pipeline`"), "names the stage: {why}");
    assert!(after <= Duration::from_secs(2), "red within stall_s");
    assert_eq!(status.code(), Some(70), "exit status says so");
    let log = std::fs::read_to_string(&s.log).unwrap();
    assert!(log.contains("ERROR") && log.contains("stage `pipeline` has made no progress"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_between_commit_and_ack_is_recognised_on_redelivery() {
    const N: u64 = 200;
    let broker = Mosquitto::start();
    let hooks = Hooks::start().await;
    let s = setup(&broker, &hooks, "");
    let mut daemon =
        spawn_daemon_with(&binary(), &s.cfg, &s.log, &[("GRIDSENTRY_TEST_PAUSE_AFTER_COMMIT", "1")]);
    wait_ready(s.http).await;
    loadgen::publish(broker.port, 1, messages(), 0, N, None).await;
    let paused = "test hook: paused after commit 1";
    until("paused after the first commit", &s.log, 30, async || {
        std::fs::read_to_string(&s.log).unwrap_or_default().contains(paused)
    })
    .await;
    let db = db(s.dir.path());
    let committed = count(&db, "SELECT COUNT(*) FROM order_events");
    assert!(committed > 0, "the first commit recorded transitions");
    // Its notifications go out while the pipeline is held (delivery is not in the window).
    let keys = || hooks.all().into_iter().filter(|h| h.status == 204).map(|h| h.key).collect::<Vec<_>>();
    until("the first commit's notifications", &s.log, 30, async || keys().len() as u64 >= committed).await;
    daemon.kill().unwrap(); // SIGKILL inside the window between commit and ack
    daemon.wait().unwrap();

    let _daemon = spawn_daemon(&binary(), &s.cfg, &s.log);
    wait_ready(s.http).await;
    let want = transitions(N);
    until("every transition recorded", &s.log, 60, async || {
        count(&db, "SELECT COUNT(*) FROM order_events") >= want
    })
    .await;
    let duplicates = metric(s.http, "gridsentry_duplicates_total").await.unwrap_or(0);
    assert!(duplicates > 0, "the redelivered readings were recognised as already applied");
    until("every notification delivered", &s.log, 60, async || keys().len() as u64 >= want).await;
    eprintln!("commit/ack crash: {committed} transitions in the first commit, {duplicates} redelivered readings recognised");
    assert_eq!(count(&db, "SELECT COUNT(*) FROM order_events"), want, "nothing applied twice");
    let delivered = keys();
    assert_eq!(delivered.len() as u64, want, "one delivery per key");
    assert_eq!(delivered.into_iter().collect::<HashSet<_>>(), journal_keys(&db));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offered_twice_what_it_sustains_it_falls_behind_and_never_stops() {
    // Commits take 500 µs per reading (a slow disk, test hook): at most 2,000 readings/s.
    const SECS: u64 = 20;
    const OFFERED: u64 = 4_000;
    let broker = Mosquitto::start();
    let hooks = Hooks::start().await;
    let s = setup(&broker, &hooks, "");
    let _daemon =
        spawn_daemon_with(&binary(), &s.cfg, &s.log, &[("GRIDSENTRY_TEST_COMMIT_US_PER_READING", "500")]);
    wait_ready(s.http).await;
    let n = OFFERED * SECS;
    let port = broker.port;
    let publisher = tokio::spawn(loadgen::publish(port, 1, messages(), 0, n, Some(OFFERED as f64)));
    // Every second while it is offered: still ready, still connected, still applying.
    let mut seen = Vec::new();
    while !publisher.is_finished() {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let ready = reqwest::get(format!("http://127.0.0.1:{}/readyz", s.http)).await.unwrap().status();
        assert_eq!(ready, 200, "ready throughout; log:\n{}", std::fs::read_to_string(&s.log).unwrap());
        seen.push(applied(s.http).await);
    }
    publisher.await.unwrap();
    let behind = n - applied(s.http).await;
    eprintln!(
        "overload: {n} offered at {OFFERED}/s, applied per second {seen:?}, {behind} behind at the end"
    );
    assert!(seen.windows(2).all(|w| w[1] > w[0]), "applying every second: {seen:?}");
    assert!(behind > n / 4, "it fell behind (the offer was twice what it sustains)");
    until("everything applied afterwards", &s.log, 120, async || applied(s.http).await >= n).await;
    assert_eq!(applied(s.http).await, n);
    assert_eq!(metric(s.http, "gridsentry_duplicates_total").await, Some(0));
    assert_eq!(metric(s.http, "gridsentry_mqtt_connects_total").await, Some(1), "never disconnected");
    assert_eq!(count(&db(s.dir.path()), "SELECT COUNT(*) FROM order_events"), transitions(n));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_killed_mid_stream_loses_nothing_it_had_saved() {
    // Devices with persistent sessions keep publishing (each reading flips the rule, so the
    // order journal counts what was applied) while mosquitto is SIGKILLed and started again.
    const DEVICES: u32 = 3;
    const PER_DEVICE: u32 = 150;
    let mut broker = Mosquitto::start_saving_every_change();
    let hooks = Hooks::start().await;
    let s = setup(&broker, &hooks, "");
    let _daemon = spawn_daemon(&binary(), &s.cfg, &s.log);
    wait_ready(s.http).await;
    let port = broker.port;
    let published = Arc::new(std::sync::atomic::AtomicU32::new(0));
    let devices: Vec<_> = (0..DEVICES)
        .map(|d| {
            let published = published.clone();
            tokio::spawn(async move {
                let mut o = rumqttc::MqttOptions::new(format!("kill-dev-{d}"), "127.0.0.1", port);
                o.set_clean_session(false);
                o.set_keep_alive(Duration::from_secs(5));
                let (client, mut events) = rumqttc::AsyncClient::new(o, 1000);
                // A device that keeps trying: reconnects and resends what the broker did not ack.
                let driver = tokio::spawn(async move {
                    loop {
                        if events.poll().await.is_err() {
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                    }
                });
                for seq in 0..PER_DEVICE {
                    let (topic, payload) = flip(d, seq);
                    client.publish(topic, rumqttc::QoS::AtLeastOnce, false, payload).await.unwrap();
                    published.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                (client, driver)
            })
        })
        .collect();
    let total = u64::from(DEVICES * PER_DEVICE);
    until("a third published", &s.log, 30, async || {
        u64::from(published.load(std::sync::atomic::Ordering::Relaxed)) >= total / 3
    })
    .await;
    broker.kill(); // SIGKILL mid-stream
    broker.resume();
    let mut clients = Vec::new();
    for d in devices {
        clients.push(d.await.unwrap());
    }
    let db = db(s.dir.path());
    until("every reading applied", &s.log, 60, async || {
        count(&db, "SELECT COUNT(*) FROM order_events") >= total
    })
    .await;
    assert_eq!(count(&db, "SELECT COUNT(*) FROM order_events"), total, "each reading applied once");
    assert!(metric(s.http, "gridsentry_mqtt_connects_total").await >= Some(2), "reconnected");
    for (_, driver) in clients {
        driver.abort();
    }
}

/// Reading `seq` of device `d` of site `plaza-8`: 75 dB(A) on even, 60 on odd numbers.
fn flip(d: u32, seq: u32) -> (String, Vec<u8>) {
    let header = Header {
        site: Id::new("plaza-8").unwrap(),
        device: Id::new(&format!("nb-{d}")).unwrap(),
        boot_id: 5,
        seq,
        time: Timestamp::Utc(T0 + u64::from(seq) * 1000),
        historical: false,
    };
    let db = if seq.is_multiple_of(2) { 75.0 } else { 60.0 };
    let reading = Reading { header, body: gridsentry_tests::noise(db) };
    (format!("gs/v1/plaza-8/nb-{d}/noise"), codec::encode_vec(Format::Json, &reading).unwrap())
}
