//! The daemon spine end to end against real mosquitto, a real HTTP receiver and real SQLite:
//! MQTT in → rules → durable orders → signed webhooks out.

use gridsentry_sensors::*;
use gridsentry_tests::daemon::*;
use gridsentry_tests::{noise, Hooks, Mosquitto, TOKEN};
use rumqttc::QoS;

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
    assert_eq!(
        raised.at, "2025-11-25T20:00:10+08:00",
        "raised in event time, after for_s = 10 s (the daemon's zone)"
    );
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
    let mut hooks = Hooks::start().await;
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
    // Health data: the receiver gets the rate, not the beat-by-beat RR intervals (default redact).
    let got = hooks.wait_for(1, WAIT).await;
    let heart = &got[0].body["evidence"]["hr"];
    assert!(heart["bpm"] == 50 && heart.get("rr_1024").is_none(), "{:#}", got[0].body);
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
