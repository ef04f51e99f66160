//! SIGKILL the daemon process mid-stream and start it again: every published reading is
//! applied exactly once, no order is lost or duplicated, and notifications that were not
//! delivered are sent after the restart with the same idempotency key.

use gridsentry_sensors::*;
use gridsentry_tests::{binary, config, free_port, spawn_daemon, wait_ready, Hooks, Mosquitto};
use rumqttc::{AsyncClient, MqttOptions, QoS};
use std::collections::HashSet;
use std::time::{Duration, Instant};

const N: u32 = 600;
const T0: u64 = 1_764_072_000_000;

fn payload(seq: u32) -> Vec<u8> {
    let body = gridsentry_tests::noise(if seq.is_multiple_of(2) { 75.0 } else { 60.0 });
    let header = Header {
        site: Id::new("plaza-3").unwrap(),
        device: Id::new("nb-01").unwrap(),
        boot_id: 9,
        seq,
        time: Timestamp::Utc(T0 + u64::from(seq) * 1000),
        historical: false,
    };
    codec::encode_vec(Format::Json, &Reading { header, body }).unwrap()
}

fn count(db: &rusqlite::Connection, sql: &str) -> i64 {
    db.query_row(sql, [], |r| r.get(0)).unwrap_or(-1)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_stream_loses_nothing_and_duplicates_nothing() {
    let broker = Mosquitto::start();
    let hooks = Hooks::start().await;
    let dir = tempfile::tempdir().unwrap();
    // Every reading flips the condition: N readings must give exactly N order transitions.
    let rules = r#"
[[rule]]
id = "plaza-noise"
colour = "yellow"
condition = { type = "threshold", stream = "noise", field = "laeq_db", above = 70.0, clear = 65.0 }
"#;
    let http = free_port();
    let text = config(dir.path(), broker.port, http, &hooks.url, rules);
    let cfg = dir.path().join("gridsentry.toml");
    std::fs::write(&cfg, text).unwrap();
    let log = dir.path().join("daemon.log");
    let mut daemon = spawn_daemon(&binary(), &cfg, &log);
    wait_ready(http).await;
    // A second daemon on the same data directory is refused (it would share the SQLite file's
    // writers, the time-series spool and the broker session); after a SIGKILL the lock is free.
    let again = std::process::Command::new(binary()).args(["run", "--config"]).arg(&cfg).output().unwrap();
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(!again.status.success() && stderr.contains("in use by another gridsentry process"), "{stderr}");

    let (client, mut events) =
        AsyncClient::new(MqttOptions::new("crash-publisher", "127.0.0.1", broker.port), 2000);
    let driver = tokio::spawn(async move { while events.poll().await.is_ok() {} });
    let topic = "gs/v1/plaza-3/nb-01/noise";
    for seq in 0..N {
        client.publish(topic, QoS::AtLeastOnce, false, payload(seq)).await.unwrap();
        if seq == N / 3 {
            daemon.kill().unwrap(); // SIGKILL
            daemon.wait().unwrap();
            daemon = spawn_daemon(&binary(), &cfg, &log);
        }
    }

    let db = rusqlite::Connection::open(dir.path().join("data/orders.db")).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while count(&db, "SELECT COUNT(*) FROM order_events") < i64::from(N) {
        assert!(
            Instant::now() < deadline,
            "only {} transitions; log:\n{}",
            count(&db, "SELECT COUNT(*) FROM order_events"),
            std::fs::read_to_string(&log).unwrap()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let keys = || hooks.all().into_iter().filter(|h| h.status == 204).map(|h| h.key).collect::<HashSet<_>>();
    while keys().len() < N as usize {
        assert!(Instant::now() < deadline, "{} of {N} notifications delivered", keys().len());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let transitions = count(&db, "SELECT COUNT(*) FROM order_events");
    let orders = count(&db, "SELECT COUNT(*) FROM orders");
    let last_seq = count(&db, "SELECT seq FROM device_seq WHERE device = 'plaza-3/nb-01'");
    let requests = hooks.all().len();
    eprintln!("crash: published {N}, transitions {transitions}, orders {orders}, last seq {last_seq}, webhook requests {requests}, distinct keys {}", keys().len());
    assert_eq!(transitions, i64::from(N), "every reading applied exactly once");
    assert_eq!(orders, i64::from(N / 2), "each raise opened one order, each clear resolved it");
    assert_eq!(last_seq, i64::from(N - 1));
    assert!(count(&db, "SELECT COUNT(*) FROM orders WHERE state NOT IN ('resolved', 'closed')") <= 1);
    let in_db = gridsentry_tests::daemon::journal_keys(&db);
    assert_eq!(keys(), in_db, "every transition delivered under its own idempotency key");
    daemon.kill().unwrap();
    daemon.wait().unwrap();
    driver.abort();
}
