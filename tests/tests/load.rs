//! The data path under load, against real mosquitto (persistence on) and the daemon binary as
//! a child process, fed by the raw-TCP load generator: a backlog after a SIGKILL drains exactly
//! once, a message far over the size limit is counted and passed over, and twice the load it
//! sustains makes it fall behind but never stop.

use gridsentry_tests::flips::*;
use gridsentry_tests::loadgen::{self, Messages};
use gridsentry_tests::{binary, metric, spawn_daemon, spawn_daemon_with, wait_ready, Hooks, Mosquitto};
use std::sync::Arc;
use std::time::{Duration, Instant};

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
