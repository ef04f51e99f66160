//! Faults on the data path, against real mosquitto (persistence on) and the daemon binary as a
//! child process: a stalled stage turns `/readyz` red and ends the process, so does an ingest
//! task that ends, a crash between
//! commit and ack is recognised on redelivery, and a broker SIGKILLed mid-stream loses nothing
//! it had saved.

use gridsentry_tests::daemon::journal_keys;
use gridsentry_tests::flips::*;
use gridsentry_tests::loadgen;
use gridsentry_tests::{binary, metric, spawn_daemon, spawn_daemon_with, wait_ready, Hooks, Mosquitto};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

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
async fn an_ingest_task_that_ends_is_not_taken_for_a_healthy_daemon() {
    let broker = Mosquitto::start();
    let hooks = Hooks::start().await;
    let s = setup(&broker, &hooks, "");
    let mut daemon = spawn_daemon_with(&binary(), &s.cfg, &s.log, &[("GRIDSENTRY_TEST_END", "ingest")]);
    let started = Instant::now();
    let status = loop {
        if let Some(status) = daemon.try_wait().unwrap() {
            break status;
        }
        if let Ok(r) = reqwest::get(format!("http://127.0.0.1:{}/readyz", s.http)).await {
            assert_ne!(r.status(), 200, "ready without ingest");
        }
        assert!(started.elapsed() < Duration::from_secs(20), "still running without its ingest task");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(status.code(), Some(70));
    let log = std::fs::read_to_string(&s.log).unwrap();
    assert!(log.contains("stage `ingest` ended unexpectedly"), "{log}");
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
    // ... and are recorded as delivered (a kill between a POST and that record sends it again
    // under the same idempotency key: at least once, which this test does not look at).
    until("the first commit's notifications recorded", &s.log, 30, async || {
        count(&db, "SELECT COUNT(*) FROM outbox WHERE status = 'delivered'") >= committed
    })
    .await;
    daemon.kill().unwrap(); // SIGKILL inside the window between commit and ack
    daemon.wait().unwrap();

    let _daemon = spawn_daemon(&binary(), &s.cfg, &s.log);
    wait_ready(s.http).await;
    let want = transitions(N);
    until("every transition recorded", &s.log, 60, async || {
        count(&db, "SELECT COUNT(*) FROM order_events") >= want
    })
    .await;
    // Every reading of the first commit flipped the rule once, so as many redelivered readings
    // must be recognised as already applied. (Waited for, not read once: when the first commit
    // held all N readings, every transition is recorded before the redelivery is even read.)
    let duplicates = async || metric(s.http, "gridsentry_duplicates_total").await.unwrap_or(0);
    until("the redelivered readings recognised as already applied", &s.log, 60, async || {
        duplicates().await >= committed
    })
    .await;
    until("every notification delivered", &s.log, 60, async || keys().len() as u64 >= want).await;
    let duplicates = duplicates().await;
    eprintln!("commit/ack crash: {committed} transitions in the first commit, {duplicates} redelivered readings recognised");
    assert_eq!(count(&db, "SELECT COUNT(*) FROM order_events"), want, "nothing applied twice");
    assert_eq!(duplicates, committed, "each reading of the first commit recognised once");
    let delivered = keys();
    assert_eq!(delivered.len() as u64, want, "one delivery per key");
    assert_eq!(delivered.into_iter().collect::<HashSet<_>>(), journal_keys(&db));
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
