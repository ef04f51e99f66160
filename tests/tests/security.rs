//! Security checks on real peers: MQTT over TLS to mosquitto's TLS listener with a local CA and
//! a password; the API's token and body limits; secret files readable by everyone refused.

use gridsentry::runtime::{self, Overrides};
use gridsentry_sensors::Id;
use gridsentry_tests::daemon::*;
use gridsentry_tests::{config, noise, write_secret, Hooks, Mosquitto, TOKEN};
use rumqttc::MqttOptions;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};
use tokio::sync::watch;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtt_over_tls_with_a_local_ca_and_a_password() {
    let broker = Mosquitto::start_tls("gridsentry", "tls-pw-1");
    let (tls_port, ca) = broker.tls.clone().unwrap();
    let hooks = Hooks::start().await;
    let dir = tempfile::tempdir().unwrap();
    write_secret(&dir.path().join("mqtt-password"), "tls-pw-1\n");
    let text = config(dir.path(), tls_port, 0, &hooks.url, NOISE_RULE).replace(
        "client_id = \"gridsentry-test\"",
        &format!(
            "client_id = \"gridsentry-tls\"\nusername = \"gridsentry\"\npassword = {{ file = \"{}\" }}\ntls_ca_file = \"{}\"",
            dir.path().join("mqtt-password").display(),
            ca.display()
        ),
    );
    let cfg = gridsentry::config::parse("tls.toml", &text).unwrap();
    let (stop, rx) = watch::channel(false);
    let running = runtime::start(cfg, Overrides::default(), rx).await.unwrap();
    let deadline = Instant::now() + WAIT;
    while running.metrics.mqtt_connected.load(Relaxed) != 1 {
        assert!(Instant::now() < deadline, "not connected over TLS");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // A device on the broker's plain listener; the daemon reads it through the TLS one.
    let mut o = MqttOptions::new("dev-tls", "127.0.0.1", broker.port);
    o.set_credentials("gridsentry", "tls-pw-1");
    let dev = Device::with_options(o, Id::new("plaza-3").unwrap(), Id::new("nb-01").unwrap());
    dev.send(0, noise(50.0)).await;
    while running.metrics.readings[0].load(Relaxed) != 1 {
        assert!(Instant::now() < deadline, "reading not applied over TLS");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let _ = stop.send(true);
    running.wait().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_world_readable_secret_file_stops_the_start() {
    use std::os::unix::fs::PermissionsExt;
    let broker = Mosquitto::start();
    let hooks = Hooks::start().await;
    let dir = tempfile::tempdir().unwrap();
    let text = config(dir.path(), broker.port, 0, &hooks.url, NOISE_RULE);
    let token = dir.path().join("token");
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o644)).unwrap();
    let cfg = gridsentry::config::parse("open.toml", &text).unwrap();
    let (_stop, rx) = watch::channel(false);
    let err = runtime::start(cfg, Overrides::default(), rx).await.err().expect("refused");
    let msg = err.to_string();
    assert!(msg.contains("readable by every user") && msg.contains("token"), "{msg}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_wants_its_token_and_small_bodies() {
    let broker = Mosquitto::start();
    let hooks = Hooks::start().await;
    let d = Daemon::start(broker.port, &hooks, NOISE_RULE).await;
    let base = format!("http://{}", d.running().http);
    let http = reqwest::Client::new();
    for token in [None, Some("wrong"), Some(&TOKEN[..TOKEN.len() - 1])] {
        let mut r = http.get(format!("{base}/api/v1/devices"));
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        assert_eq!(r.send().await.unwrap().status(), 401, "{token:?}");
    }
    let big = serde_json::json!({ "why": "x".repeat(64 * 1024) });
    let r =
        http.post(format!("{base}/api/v1/orders/1/ack")).bearer_auth(TOKEN).json(&big).send().await.unwrap();
    assert_eq!(r.status(), 413, "bodies over 16 KiB are refused");
    // The console page itself needs no token, and sends a strict content security policy.
    let page = http.get(format!("{base}/")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.headers()["content-security-policy"].to_str().unwrap().contains("default-src 'self'"));
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chat_robots_key_never_shows_in_check_logs_or_dead_letters() {
    const KEY: &str = "k-7f3a9c2e5b8d4f1a6c0e9b2d";
    let broker = Mosquitto::start();
    let hooks = Hooks::start().await;
    let dir = tempfile::tempdir().unwrap();
    let port = gridsentry_tests::free_port();
    write_secret(&dir.path().join("robot-key"), KEY);
    // A WeCom robot whose server is down (connection refused): every attempt fails with an error
    // that, from reqwest, used to carry the whole URL, key included.
    let robot = format!(
        "[[receiver]]\nname = \"robot\"\nformat = \"wecom\"\nurl = \"http://127.0.0.1:{}/cgi-bin/webhook/send\"\nkey = {{ file = \"{}\" }}\nmax_attempts = 2\ntimeout_ms = 500\n",
        gridsentry_tests::free_port(),
        dir.path().join("robot-key").display()
    );
    let rules = NOISE_RULE.replace("colour = \"yellow\"", "colour = \"red\"");
    let text = config(dir.path(), broker.port, port, &hooks.url, &format!("{robot}\n{rules}"));
    let cfg = dir.path().join("gridsentry.toml");
    std::fs::write(&cfg, text).unwrap();
    let check =
        std::process::Command::new(gridsentry_tests::binary()).arg("check").arg(&cfg).output().unwrap();
    let shown = String::from_utf8_lossy(&check.stdout).to_string() + &String::from_utf8_lossy(&check.stderr);
    assert!(check.status.success() && shown.contains("receiver robot"), "{shown}");
    let log = dir.path().join("log");
    let _d = gridsentry_tests::spawn_daemon_with(
        &gridsentry_tests::binary(),
        &cfg,
        &log,
        &[("RUST_LOG", "debug")],
    );
    gridsentry_tests::wait_ready(port).await;
    let dev = Device::connect(broker.port, "plaza-3", "nb-01", false).await;
    for seq in 0..=11 {
        dev.send(seq, noise(85.0)).await;
    }
    let http = reqwest::Client::new();
    let deadline = Instant::now() + WAIT;
    let dead = loop {
        let r: serde_json::Value = http
            .get(format!("http://127.0.0.1:{port}/api/v1/dead-letters"))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if r["dead_letters"].as_array().is_some_and(|d| d.iter().any(|x| x["receiver"] == "robot")) {
            break r;
        }
        assert!(Instant::now() < deadline, "no dead letter for the robot: {r}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let last_error = dead.to_string();
    assert!(last_error.contains("request failed"), "{last_error}");
    let logs = std::fs::read_to_string(&log).unwrap();
    assert!(logs.contains("robot"), "the log says nothing about the robot:\n{logs}");
    for (what, text) in [("check", &shown), ("the API", &last_error), ("the log", &logs)] {
        assert!(!text.contains(KEY), "{what} shows the robot's key:\n{text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evidence_is_the_reading_re_encoded_never_what_the_device_added() {
    let broker = Mosquitto::start();
    let mut hooks = Hooks::start().await;
    let rule = "[[rule]]\nid = \"loud\"\ncolour = \"red\"\ncondition = { type = \"threshold\", stream = \"noise\", field = \"laeq_db\", above = 70.0, clear = 65.0 }\n";
    let mut d = Daemon::start(broker.port, &hooks, rule).await;
    let dev = Device::connect(broker.port, "plaza-3", "nb-01", false).await;
    let junk = "x".repeat(8000); // (the test client sends at most 10 KiB)
                                 // Stamped now: evidence older than [privacy] evidence_days (30) is emptied by the first tick's
                                 // purge, which could come after the raise (T0 is a year back; the test failed so in CI once).
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis();
    let payload = format!(
        r#"{{"v":1,"site":"plaza-3","dev":"nb-01","boot":1,"seq":1,"ts":{now},"noise":{{"interval_ms":1000,"laeq_db":85,"lafmax_db":88}},"junk":"{junk}"}}"#
    );
    dev.client.publish("gs/v1/plaza-3/nb-01/noise", rumqttc::QoS::AtLeastOnce, false, payload).await.unwrap();
    let raised = d.next_change().await;
    assert_eq!(raised.colour, gridsentry::rules::Colour::Red);
    let hook = hooks.wait_for(1, WAIT).await;
    let evidence = &hook[0].body["evidence"];
    assert_eq!(evidence["noise"]["laeq_db"], 85.0, "{evidence}");
    assert!(evidence.get("junk").is_none() && evidence.to_string().len() < 2048, "{evidence}");
    let stored: String =
        d.db().query_row("SELECT evidence FROM order_events WHERE seq = 1", [], |r| r.get(0)).unwrap();
    assert!(!stored.contains("junk") && stored.len() < 2048, "{stored}");
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_inventing_bands_cannot_grow_the_live_view() {
    let broker = Mosquitto::start();
    let hooks = Hooks::start().await;
    let d = Daemon::start(broker.port, &hooks, "[devices]\nmax_bands = 4\n").await;
    let gw = Device::connect(broker.port, "home-9", "gw-1", false).await;
    for (seq, band) in (0..300u32).enumerate() {
        gw.send(seq as u32, hr(&format!("b{band}"), 70, gridsentry_sensors::Contact::Detected)).await;
    }
    d.applied(300).await;
    let (status, view) = d.get("/api/v1/devices", Some(TOKEN)).await;
    assert_eq!(status, 200);
    let gw = view["devices"].as_array().unwrap().iter().find(|v| v["device"] == "gw-1").unwrap();
    let series = gw["series"].as_object().unwrap().len();
    assert_eq!((series, &gw["capped"]), (4 + 16, &serde_json::json!(true)), "{gw}");
    assert!(view.to_string().len() < 64 * 1024, "{} bytes", view.to_string().len());
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_log_line_stays_one_escaped_line_and_a_flood_is_three_warnings() {
    let broker = Mosquitto::start();
    let hooks = Hooks::start().await;
    let dir = tempfile::tempdir().unwrap();
    let port = gridsentry_tests::free_port();
    let cfg = dir.path().join("gridsentry.toml");
    std::fs::write(&cfg, config(dir.path(), broker.port, port, &hooks.url, NOISE_RULE)).unwrap();
    let log = dir.path().join("log");
    let _d = gridsentry_tests::spawn_daemon(&gridsentry_tests::binary(), &cfg, &log);
    gridsentry_tests::wait_ready(port).await;
    // A field the decoder quotes in its error: an ESC sequence and a newline starting a line
    // that looks like the daemon's own.
    let forger = Device::connect(broker.port, "home-1", "gw-1", false).await;
    let forged = r#"{"v":1,"site":"home-1","dev":"gw-1","boot":1,"seq":1,"ts":1764072000000,"hr":{"band":"b1","bpm":70,"contact":"\u001b[31m\n2026-12-06T00:00:00Z ERROR FORGED"}}"#;
    forger.client.publish("gs/v1/home-1/gw-1/hr", rumqttc::QoS::AtLeastOnce, false, forged).await.unwrap();
    let dev = Device::connect(broker.port, "plaza-3", "nb-01", false).await;
    for _ in 0..3000 {
        dev.client
            .publish("gs/v1/plaza-3/nb-01/noise", rumqttc::QoS::AtMostOnce, false, "{not json")
            .await
            .unwrap();
    }
    dev.send(0, noise(50.0)).await;
    let deadline = Instant::now() + WAIT;
    let metrics = loop {
        let m = reqwest::get(format!("http://127.0.0.1:{port}/metrics")).await.unwrap().text().await.unwrap();
        if m.lines().any(|l| l.starts_with("gridsentry_readings_total{stream=\"noise\"} 1")) {
            break m;
        }
        assert!(Instant::now() < deadline, "the reading after the flood was not applied");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let syntax = metrics
        .lines()
        .find(|l| l.starts_with("gridsentry_malformed_total{reason=\"payload_syntax\"}"))
        .unwrap();
    assert!(syntax.ends_with(" 3000"), "every one counted: {syntax}");
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(!text.contains('\u{1b}'), "an ESC reached the log");
    assert!(
        !text.lines().any(|l| l.starts_with("2026-12-06T00:00:00Z ERROR FORGED")),
        "a forged line:\n{text}"
    );
    assert!(
        text.contains("\\u{1b}[31m\\n2026-12-06T00:00:00Z ERROR FORGED"),
        "escaped in its own line:\n{text}"
    );
    let warnings = text.lines().filter(|l| l.contains("malformed message dropped")).count();
    assert_eq!(warnings, 1 + 3, "3,000 malformed messages in one minute:\n{text}");
}
