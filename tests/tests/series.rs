//! Readings into a real time-series server (VictoriaMetrics speaking the InfluxDB v2 write API):
//! stored with tags and device time; an outage spills to disk and replays exactly once, in
//! order; a SIGKILL during the replay loses nothing.

use gridsentry_tests::daemon::{Daemon, Device, NOISE_RULE, T0};
use gridsentry_tests::victoria::{Series, Victoria};
use gridsentry_tests::{binary, config, free_port, noise, spawn_daemon, wait_ready, Hooks, Mosquitto};
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

fn influx(url: &str, extra: &str) -> String {
    format!(
        "{NOISE_RULE}\n[influx]\nurl = \"{url}\"\norg = \"city\"\nbucket = \"street\"\n\
         linger_ms = 5\nretry_initial_ms = 50\nretry_max_ms = 200\n{extra}\n\
         tags = {{ grid = \"g12\", street = \"xinhua-rd\" }}\n"
    )
}

/// The `seq` field of one device's noise series: the readings stored, in time order.
fn seqs(series: &[Series], device: &str) -> Vec<(i64, u32)> {
    series
        .iter()
        .filter(|s| s.labels["__name__"] == "noise_seq" && s.labels["device"] == device)
        .flat_map(|s| s.samples.iter().map(|(t, v)| (*t, *v as u32)))
        .collect()
}

/// Every seq in 0..n exactly once, at its device time.
fn assert_exactly_once(stored: &[(i64, u32)], n: u32) {
    let expected: Vec<(i64, u32)> = (0..n).map(|s| ((T0 + u64::from(s) * 1000) as i64, s)).collect();
    assert_eq!(stored.len(), expected.len(), "stored {} of {n} readings", stored.len());
    assert_eq!(stored, expected.as_slice());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readings_are_stored_with_tags_and_device_time() {
    let broker = Mosquitto::start();
    let vm = Victoria::start();
    let hooks = Hooks::start().await;
    let d = Daemon::start(broker.port, &hooks, &influx(&vm.url(), "")).await;
    let dev = Device::connect(broker.port, "plaza-3", "nb-01", false).await;
    for seq in 0..50 {
        dev.send(seq, noise(60.0 + seq as f32 / 10.0)).await;
    }
    d.wait(|r| r.metrics.series_written.load(Relaxed) >= 50).await;
    let all = vm.export("noise_.*").await;
    assert_exactly_once(&seqs(&all, "nb-01"), 50);
    let laeq = all.iter().find(|s| s.labels["__name__"] == "noise_laeq_db").expect("laeq series");
    for (k, v) in [("site", "plaza-3"), ("device", "nb-01"), ("grid", "g12"), ("street", "xinhua-rd")] {
        assert_eq!(laeq.labels.get(k).map(String::as_str), Some(v), "tag {k}");
    }
    // Written as the shortest text of the f32 (60.7), read back as f64.
    assert_eq!(laeq.samples[7], ((T0 + 7000) as i64, 60.7));
    let historical = all.iter().find(|s| s.labels["__name__"] == "noise_historical").unwrap();
    assert!(historical.samples.iter().all(|s| s.1 == 0.0));
    assert_eq!(d.running().metrics.series_spilled.load(Relaxed), 0);
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_spills_to_disk_and_replays_exactly_once() {
    let broker = Mosquitto::start();
    let mut vm = Victoria::start();
    let hooks = Hooks::start().await;
    let d = Daemon::start(broker.port, &hooks, &influx(&vm.url(), "timeout_ms = 500")).await;
    let dev = Device::connect(broker.port, "plaza-3", "nb-01", false).await;
    let m = d.running().metrics.clone();
    for seq in 0..100 {
        dev.send(seq, noise(60.0)).await;
    }
    d.wait(|_| m.series_written.load(Relaxed) >= 100).await;

    vm.stop();
    for seq in 100..300 {
        dev.send(seq, noise(75.0)).await;
    }
    // Acked while the server is down: rules ran, the readings wait on disk.
    d.applied(300).await;
    d.wait(|_| m.series_spilled.load(Relaxed) + m.series_written.load(Relaxed) >= 300).await;
    assert!(m.series_spilled.load(Relaxed) > 0, "nothing spilled during the outage");
    assert!(m.series_queue_batches.load(Relaxed) > 0);
    let (status, _) = d.get("/metrics", None).await;
    assert_eq!(status, 200);

    vm.start_again();
    d.wait(|_| m.series_queue_points.load(Relaxed) == 0 && m.series_written.load(Relaxed) >= 300).await;
    assert!(m.series_replayed.load(Relaxed) > 0);
    assert_eq!(m.series_dropped.load(Relaxed) + m.series_rejected.load(Relaxed), 0);
    assert_exactly_once(&seqs(&vm.export("noise_seq").await, "nb-01"), 300);
    // The plaza order was raised while the time series was down.
    assert!(m.transitions.load(Relaxed) >= 1);
    d.stop().await;
}

async fn metric(http: u16, name: &str) -> u64 {
    gridsentry_tests::metric(http, name).await.unwrap_or_else(|| panic!("{name} not exported on port {http}"))
}

async fn wait_metric(http: u16, name: &str, cond: impl Fn(u64) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !cond(metric(http, name).await) {
        assert!(Instant::now() < deadline, "{name} did not reach its value");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_replay_loses_nothing() {
    const N: u32 = 2000;
    let broker = Mosquitto::start();
    let mut vm = Victoria::start();
    vm.stop();
    let hooks = Hooks::start().await;
    let dir = tempfile::tempdir().unwrap();
    let http = free_port();
    // Small batches: a replay of many files, long enough to be killed in the middle of.
    let extra = "batch_lines = 2\ntimeout_ms = 300";
    let text = config(dir.path(), broker.port, http, &hooks.url, &influx(&vm.url(), extra));
    let cfg = dir.path().join("gridsentry.toml");
    std::fs::write(&cfg, text).unwrap();
    let log = dir.path().join("daemon.log");
    let mut daemon = spawn_daemon(&binary(), &cfg, &log);
    wait_ready(http).await;

    let dev = Device::connect(broker.port, "plaza-3", "nb-01", false).await;
    for seq in 0..N {
        dev.send(seq, noise(60.0)).await;
    }
    wait_metric(http, "gridsentry_series_spilled_points_total", |n| n >= u64::from(N)).await;

    vm.start_again();
    wait_metric(http, "gridsentry_series_replayed_points_total", |n| n > 0).await;
    let left = metric(http, "gridsentry_series_queue_batches").await;
    daemon.kill().unwrap(); // SIGKILL, mid-replay
    daemon.wait().unwrap();
    assert!(left > 0, "the replay was over before the kill");

    let mut daemon = spawn_daemon(&binary(), &cfg, &log);
    wait_ready(http).await;
    wait_metric(http, "gridsentry_series_queue_points", |n| n == 0).await;
    assert_exactly_once(&seqs(&vm.export("noise_seq").await, "nb-01"), N);
    daemon.kill().unwrap();
    daemon.wait().unwrap();
}

/// The stored series as line protocol again: samples of `{measurement}_{field}` series with the
/// same tags and time become one point (VictoriaMetrics keeps numbers only, as floats).
fn to_line_protocol(series: &[Series]) -> String {
    use std::collections::BTreeMap;
    let mut points: BTreeMap<(String, String, i64), Vec<(String, f64)>> = BTreeMap::new();
    for s in series {
        let (measurement, field) = s.labels["__name__"].split_once('_').unwrap();
        let tags: Vec<String> =
            s.labels.iter().filter(|(k, _)| *k != "__name__").map(|(k, v)| format!("{k}={v}")).collect();
        for (t, v) in &s.samples {
            let key = (measurement.to_string(), tags.join(","), *t);
            points.entry(key).or_default().push((field.to_string(), *v));
        }
    }
    let mut out = String::from("# exported from the time-series server\n");
    for ((m, tags, t), fields) in points {
        let fields: Vec<String> = fields.iter().map(|(k, v)| format!("{k}={v}")).collect();
        out.push_str(&format!("{m},{tags} {} {}\n", fields.join(","), t * 1_000_000));
    }
    out
}

type Transition = (String, String, String, String, String);

fn key(subject: &str, event: &str, colour: &str, state: &str, summary: &str) -> Transition {
    (subject.into(), event.into(), colour.into(), state.into(), summary.into())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backtest_of_the_stored_series_raises_what_the_live_run_raised() {
    let broker = Mosquitto::start();
    let vm = Victoria::start();
    let hooks = Hooks::start().await;
    let mut d = Daemon::start(broker.port, &hooks, &influx(&vm.url(), "")).await;
    let a = Device::connect(broker.port, "plaza-3", "nb-01", false).await;
    let b = Device::connect(broker.port, "plaza-4", "nb-02", false).await;
    for seq in 0..60 {
        a.send(seq, noise(if (5..25).contains(&seq) { 75.0 } else { 60.0 })).await;
        b.send(seq, noise(if (30..38).contains(&seq) || (40..55).contains(&seq) { 72.5 } else { 61.0 }))
            .await;
    }
    d.wait(|r| r.metrics.series_written.load(Relaxed) >= 120).await;
    let mut live: Vec<Transition> = d
        .drain_changes()
        .iter()
        .map(|c| key(&c.subject, c.event.as_str(), c.colour.as_str(), &c.state, &c.summary))
        .collect();
    d.stop().await;
    live.sort();
    assert_eq!(live.iter().filter(|t| t.1 == "raised").count(), 2, "{live:?}");

    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("export.lp");
    std::fs::write(&input, to_line_protocol(&vm.export(".*").await)).unwrap();
    let cfg = dir.path().join("rules.toml");
    std::fs::write(&cfg, NOISE_RULE).unwrap();
    let out = std::process::Command::new(binary())
        .args(["backtest", "--config"])
        .arg(&cfg)
        .arg("--input")
        .arg(&input)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("120 readings"), "{stderr}");
    let mut replayed: Vec<Transition> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            let s = |k: &str| v[k].as_str().unwrap().to_string();
            key(&s("subject"), &s("event"), &s("colour"), &s("state"), &s("summary"))
        })
        .collect();
    replayed.sort();
    assert_eq!(replayed, live);
}
