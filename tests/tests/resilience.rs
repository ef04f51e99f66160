//! Faults around the spine: failing and hanging receivers, a broker restart, a config reload,
//! and a broker that wants a password.

use gridsentry::runtime::{self, Overrides};
use gridsentry_sensors::*;
use gridsentry_tests::daemon::*;
use gridsentry_tests::{config, noise, Hooks, Mode, Mosquitto, TOKEN};
use rumqttc::MqttOptions;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};
use tokio::sync::watch;

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
    hooks.wait_until(|h| h.status == 204, WAIT).await;
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
    let cfg =
        gridsentry::config::parse("reload.toml", &config(d.dir.path(), broker.port, 0, &hooks.url, &text))
            .unwrap();
    d.running().control.send(runtime::reload_of(&cfg)).unwrap();
    for seq in 6..12 {
        b.send(seq, noise(75.0)).await;
    }
    let c = d.next_change().await;
    assert_eq!(
        (c.colour.as_str(), c.at.as_str()),
        ("orange", "2025-11-25T20:00:10+08:00"),
        "the 10 s timer started before the reload"
    );
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn username_and_password_from_a_secret_file() {
    let broker = Mosquitto::start_with_password("gridsentry", "s3cret-pw");
    let hooks = Hooks::start().await;
    let dir = tempfile::tempdir().unwrap();
    gridsentry_tests::write_secret(&dir.path().join("mqtt-password"), "s3cret-pw\n");
    let text = config(dir.path(), broker.port, 0, &hooks.url, NOISE_RULE).replace(
        "client_id = \"gridsentry-test\"",
        &format!(
            "client_id = \"gridsentry-test\"\nusername = \"gridsentry\"\npassword = {{ file = \"{}\" }}",
            dir.path().join("mqtt-password").display()
        ),
    );
    let cfg = gridsentry::config::parse("auth.toml", &text).unwrap();
    let (stop, rx) = watch::channel(false);
    let running = runtime::start(cfg, Overrides::default(), rx).await.unwrap();
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
