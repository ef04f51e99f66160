//! Fleet updates end to end: an image signed with `gridsentry firmware sign`, stored with
//! `firmware add` (checked against `[ota] public_key`), rolled out with `rollout create` to
//! simulated devices speaking the real OTA topics on a real mosquitto.
//!
//! - 200 devices, 10 % of them refusing the image: the roll-out pauses itself in its first wave,
//!   raises an order (paged), and the devices of later waves are never offered anything;
//! - 20 devices through three waves to the end, one losing power mid-download (it resumes from
//!   the bytes it holds, not from zero) and one whose new image never confirms (rolled back);
//! - an image signed with another key is refused by `firmware add`.

use gridsentry_tests::daemon::{count, Daemon};
use gridsentry_tests::ota_sim::{Fault, SimDevice};
use gridsentry_tests::{binary, Hooks, Mosquitto, TOKEN};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const BOARD: &str = "host";

/// Runs `gridsentry ARGS`; its stdout (panics with its stderr when it fails).
fn cli(args: &[&str]) -> String {
    let out = Command::new(binary()).args(args).output().unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "gridsentry {args:?} failed: {stderr}");
    stdout.into_owned()
}

/// A signing key in `dir`; its public key.
fn keygen(dir: &Path, name: &str) -> String {
    cli(&["firmware", "keygen", "--out", dir.join(name).to_str().unwrap()]).trim().to_string()
}

/// A 40 KB "image" signed with `key`: its path.
fn signed_image(dir: &Path, key: &str, version: &str) -> String {
    let image = dir.join(format!("app-{version}.bin"));
    let bytes: Vec<u8> = (0..40_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    std::fs::write(&image, bytes).unwrap();
    cli(&["firmware", "sign", image.to_str().unwrap(), "--key", dir.join(key).to_str().unwrap()]);
    image.to_str().unwrap().to_string()
}

fn ota_section(public_key: &str) -> String {
    format!(
        "[ota]\npublic_key = \"{public_key}\"\nchunk_bytes = 2048\nreoffer_s = 2\noffline_grace_s = 600\n\n\
         [[site]]\nid = \"plaza-1\"\nstreet = \"解放碑街道\"\nlat = 29.55\nlon = 106.57\n\n\
         [[site]]\nid = \"plaza-2\"\nstreet = \"朝天门街道\"\nlat = 29.56\nlon = 106.58\n"
    )
}

/// Polls the daemon's database until `sql` counts `n` (20 s at most, then the last count fails).
async fn until(d: &Daemon, sql: &str, n: i64, within: Duration) {
    let db = d.db();
    let deadline = Instant::now() + within;
    loop {
        let got = count(&db, sql);
        if got == n {
            return;
        }
        assert!(Instant::now() < deadline, "`{sql}` counted {got}, not {n}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_first_wave_pauses_the_roll_out_and_leaves_the_rest_untouched() {
    let broker = Mosquitto::start();
    let mut hooks = Hooks::start().await;
    let keys = tempfile::tempdir().unwrap();
    let public = keygen(keys.path(), "fleet.pem");
    let d = Daemon::start(broker.port, &hooks, &ota_section(&public)).await;
    let config = d.dir.path().join("test.toml");
    let config = config.to_str().unwrap();

    // 200 boxes in one street; every tenth refuses the image.
    let devices: Vec<SimDevice> = (0..200)
        .map(|i| {
            let fault = if i % 10 == 0 { Fault::Refuse } else { Fault::None };
            SimDevice::start(broker.port, "plaza-1", &format!("nb-{i:03}"), BOARD, "1.0.0", &public, fault)
        })
        .collect();
    // A box in another street is never part of it.
    let other = SimDevice::start(broker.port, "plaza-2", "nb-x", BOARD, "1.0.0", &public, Fault::None);
    until(&d, "SELECT COUNT(*) FROM ota_fleet WHERE state = 'idle'", 201, Duration::from_secs(30)).await;

    // A broken or hostile device's reports: garbage, 2 KB, a state that does not exist, an
    // offset past any image. Counted and dropped; the fleet as it was.
    let (hostile, mut hostile_loop) =
        rumqttc::AsyncClient::new(rumqttc::MqttOptions::new("hostile", "127.0.0.1", broker.port), 16);
    tokio::spawn(async move { while hostile_loop.poll().await.is_ok() {} });
    let bad: [Vec<u8>; 4] = [
        b"\xff\x00not json".to_vec(),
        format!(r#"{{"v":1,"board":"host","version":"{}","state":"idle"}}"#, "9".repeat(2000)).into_bytes(),
        br#"{"v":1,"board":"host","version":"1.0.0","state":"exploded"}"#.to_vec(),
        br#"{"v":1,"board":"host","version":"1.0.0","state":"downloading","offset":-1}"#.to_vec(),
    ];
    for payload in bad {
        hostile
            .publish("gs/v1/plaza-1/nb-001/ota/state", rumqttc::QoS::AtLeastOnce, false, payload)
            .await
            .unwrap();
    }
    let malformed = |text: &str| -> u64 {
        text.lines()
            .find_map(|l| l.strip_prefix("gridsentry_malformed_total{reason=\"ota_report\"} "))
            .map_or(0, |v| v.trim().parse().unwrap())
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let text = reqwest::get(format!("{}/metrics", d.api)).await.unwrap().text().await.unwrap();
        if malformed(&text) == 4 {
            break;
        }
        assert!(Instant::now() < deadline, "malformed ota reports counted {}, not 4", malformed(&text));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    until(
        &d,
        "SELECT COUNT(*) FROM ota_fleet WHERE state = 'idle' AND version = '1.0.0'",
        201,
        Duration::from_secs(5),
    )
    .await;

    let image = signed_image(keys.path(), "fleet.pem", "2.0.0");
    let added = cli(&["firmware", "add", &image, "--config", config, "--board", BOARD, "--version", "2.0.0"]);
    assert!(added.contains("signature checked"), "{added}");
    let created = cli(&[
        "rollout",
        "--config",
        config,
        "create",
        "--firmware",
        "2.0.0",
        "--match",
        "street=解放碑街道",
        "--waves",
        "10,50,100",
        "--abort-at-failed-pct",
        "5",
    ]);
    assert!(created.contains("to 200 devices"), "{created}");

    // The first failure in wave 1 (20 devices, 2 refusing) reaches 5 %: paused, order raised.
    until(&d, "SELECT COUNT(*) FROM rollouts WHERE status = 'paused'", 1, Duration::from_secs(60)).await;
    let order = hooks.wait_until(|h| h.body["rule"] == "ota_rollout", Duration::from_secs(20)).await;
    assert!(order.body["summary"].as_str().unwrap_or_default().contains("paused itself"), "{}", order.body);
    // Wave 1's devices finish what they started; nobody else hears of it.
    until(
        &d,
        "SELECT COUNT(*) FROM ota_devices WHERE wave = 1 AND state IN ('confirmed', 'failed')",
        20,
        Duration::from_secs(60),
    )
    .await;
    let db = d.db();
    assert_eq!(count(&db, "SELECT COUNT(*) FROM ota_devices WHERE wave = 1 AND state = 'failed'"), 2);
    assert_eq!(count(&db, "SELECT COUNT(*) FROM ota_devices WHERE wave > 1 AND state = 'pending'"), 180);
    assert_eq!(count(&db, "SELECT COUNT(*) FROM rollouts WHERE wave = 1 AND order_id IS NOT NULL"), 1);
    assert_eq!(count(&db, "SELECT COUNT(*) FROM orders WHERE rule = 'ota_rollout' AND colour = 'yellow'"), 1);
    for (i, dev) in devices.iter().enumerate() {
        let seen = dev.seen.lock().unwrap().clone();
        if i < 20 {
            assert!(seen.offers >= 1, "{} in wave 1 was offered the image", dev.name);
            let want = if i % 10 == 0 { "1.0.0" } else { "2.0.0" };
            assert_eq!(seen.version, want, "{}", dev.name);
        } else {
            assert_eq!((seen.offers, seen.chunks), (0, 0), "{} is in a later wave: untouched", dev.name);
        }
    }
    assert_eq!(other.seen.lock().unwrap().offers, 0);
    // Every state a device passed through is in its history, with the refusal's reason.
    let failed =
        count(&db, "SELECT COUNT(*) FROM ota_log WHERE state = 'failed' AND error = 'image check failed'");
    assert_eq!(failed, 2);
    for state in ["offered", "downloading", "verifying", "rebooting", "confirmed"] {
        let n = count(&db, &format!("SELECT COUNT(DISTINCT device) FROM ota_log WHERE state = '{state}'"));
        assert!(n >= 18, "{n} devices passed through {state}");
    }
    // The daemon's metrics count the devices by state.
    let text = reqwest::get(format!("{}/metrics", d.api)).await.unwrap().text().await.unwrap();
    assert!(text.contains("gridsentry_ota_devices{state=\"pending\"} 180"), "{text}");
    assert!(text.contains("gridsentry_ota_devices{state=\"failed\"} 2"), "{text}");

    // The API lists it with its counts; a person who has seen the two failures resumes it: wave
    // 2 (80 devices, 8 refusing) opens and the roll-out pauses again at 5 new failures of 100.
    let (status, list) = d.get("/api/v1/rollouts", Some(TOKEN)).await;
    assert_eq!(status, 200);
    let r = &list["rollouts"][0];
    assert_eq!(
        (r["rollout"]["status"].as_str(), r["by_state"]["confirmed"].as_u64()),
        (Some("paused"), Some(18)),
        "{r:#}"
    );
    assert_eq!(d.post("/api/v1/rollouts/1/resume").await, 200);
    assert_eq!(d.post("/api/v1/rollouts/1/resume").await, 409, "not paused any more");
    until(
        &d,
        "SELECT COUNT(*) FROM rollouts WHERE status = 'paused' AND wave = 2 AND failed_base = 2",
        1,
        Duration::from_secs(60),
    )
    .await;
    let failed = count(&db, "SELECT COUNT(*) FROM ota_devices WHERE wave = 2 AND state = 'failed'");
    assert!((5..=8).contains(&failed), "{failed} of wave 2 failed when it paused");
    assert_eq!(count(&db, "SELECT COUNT(*) FROM ota_devices WHERE wave = 3 AND state = 'pending'"), 100);
    assert_eq!(
        count(&db, "SELECT COUNT(*) FROM audit WHERE action = 'rollout.active' AND who = 'legacy-token'"),
        1
    );

    // A device that asks for chunks as fast as it can (1000 requests at once) is answered at
    // most 64 times a second, and counted.
    let (flood, mut flood_loop) =
        rumqttc::AsyncClient::new(rumqttc::MqttOptions::new("flood", "127.0.0.1", broker.port), 2000);
    flood.subscribe("gs/v1/plaza-1/nb-005/ota/chunk", rumqttc::QoS::AtMostOnce).await.unwrap();
    let chunks = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
    let seen = chunks.clone();
    let (subscribed, is_subscribed) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let mut subscribed = Some(subscribed);
        while let Ok(e) = flood_loop.poll().await {
            match e {
                rumqttc::Event::Incoming(rumqttc::Packet::Publish(_)) => {
                    seen.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                rumqttc::Event::Incoming(rumqttc::Packet::SubAck(_)) => {
                    subscribed.take().map(|s| s.send(()));
                }
                _ => {}
            }
        }
    });
    is_subscribed.await.unwrap(); // the broker has the subscription: no chunk is missed
    let ask = br#"{"v":1,"board":"host","version":"1.0.0","state":"downloading","rollout":1,"offset":0}"#;
    let state = "gs/v1/plaza-1/nb-005/ota/state";
    for _ in 0..1000 {
        flood.publish(state, rumqttc::QoS::AtLeastOnce, false, ask.to_vec()).await.unwrap();
    }
    // Then a malformed report: once it is counted, the daemon has handled all 1000 before it.
    flood.publish(state, rumqttc::QoS::AtLeastOnce, false, b"end".to_vec()).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let text = loop {
        let text = reqwest::get(format!("{}/metrics", d.api)).await.unwrap().text().await.unwrap();
        if malformed(&text) == 5 {
            break text;
        }
        assert!(Instant::now() < deadline, "the flood's end not seen ({} malformed)", malformed(&text));
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let n = chunks.load(std::sync::atomic::Ordering::Relaxed);
    assert!(text.contains("gridsentry_malformed_total{reason=\"ota_chunk_flood\"}"), "the flood is counted");
    assert!((1..=128).contains(&n), "{n} chunks answered to 1000 requests (two seconds' worth at most)");
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waves_run_to_the_end_through_a_power_cut_and_a_rollback() {
    let broker = Mosquitto::start();
    let hooks = Hooks::start().await;
    let keys = tempfile::tempdir().unwrap();
    let public = keygen(keys.path(), "fleet.pem");
    let d = Daemon::start(broker.port, &hooks, &ota_section(&public)).await;
    let config = d.dir.path().join("test.toml");
    let config = config.to_str().unwrap();
    let devices: Vec<SimDevice> = (0..20)
        .map(|i| {
            let fault = match i {
                3 => Fault::PowerCutAt(20_000),
                7 => Fault::NeverConfirms,
                _ => Fault::None,
            };
            SimDevice::start(broker.port, "plaza-2", &format!("b{i:02}"), BOARD, "1.0.0", &public, fault)
        })
        .collect();
    until(&d, "SELECT COUNT(*) FROM ota_fleet", 20, Duration::from_secs(30)).await;

    // Signed with another key: refused before it is stored.
    let stranger = keygen(keys.path(), "stranger.pem");
    assert_ne!(stranger, public);
    let bad = signed_image(keys.path(), "stranger.pem", "2.0.0");
    let out = Command::new(binary())
        .args(["firmware", "add", &bad, "--config", config, "--board", BOARD, "--version", "2.0.0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("does not match"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(count(&d.db(), "SELECT COUNT(*) FROM firmware"), 0);

    let image = signed_image(keys.path(), "fleet.pem", "2.0.0");
    cli(&["firmware", "add", &image, "--config", config, "--board", BOARD, "--version", "2.0.0"]);
    cli(&[
        "rollout",
        "--config",
        config,
        "create",
        "--firmware",
        "2.0.0",
        "--match",
        "site=plaza-2",
        "--waves",
        "10,50,100",
        "--abort-at-failed-pct",
        "50",
    ]);
    until(&d, "SELECT COUNT(*) FROM rollouts WHERE status = 'done' AND wave = 3", 1, Duration::from_secs(90))
        .await;
    let db = d.db();
    assert_eq!(count(&db, "SELECT COUNT(*) FROM ota_devices WHERE state = 'confirmed'"), 19);
    assert_eq!(
        count(&db, "SELECT COUNT(*) FROM ota_devices WHERE state = 'rolled_back' AND device = 'plaza-2/b07'"),
        1
    );
    assert_eq!(
        count(&db, "SELECT COUNT(*) FROM orders WHERE rule = 'ota_rollout'"),
        0,
        "1 of 20 is under 50 %"
    );
    // The device that lost power resumed from what it held (20 KB in 2 KB chunks), and got
    // every chunk once: 20 chunks for 40,000 bytes.
    let cut = devices[3].seen.lock().unwrap().clone();
    assert_eq!(cut.resumed_at, [20_480], "{cut:?}");
    assert_eq!(cut.chunks, 20, "{cut:?}");
    assert_eq!(cut.version, "2.0.0");
    assert_eq!(devices[7].seen.lock().unwrap().version, "1.0.0");
    // Waves opened one after the other: no device of wave 2 was offered before wave 1 finished.
    let wave1_done = count(&db, "SELECT MAX(at_ms) FROM ota_log l JOIN ota_devices d ON d.device = l.device AND d.rollout = l.rollout WHERE d.wave = 1 AND l.state = 'confirmed'");
    let wave2_first = count(&db, "SELECT MIN(at_ms) FROM ota_log l JOIN ota_devices d ON d.device = l.device AND d.rollout = l.rollout WHERE d.wave = 2 AND l.state = 'offered'");
    assert!(wave1_done <= wave2_first, "wave 2 offered at {wave2_first}, wave 1 done at {wave1_done}");
    let shown = cli(&["rollout", "--config", config, "show", "1"]);
    assert!(shown.contains("rolled_back") && shown.contains("done"), "{shown}");
    d.stop().await;
}
