//! Device identity against real mosquitto: `gridsentry provision` gives each device its own
//! login and topic; the broker refuses a device publishing as another. The daemon hears only
//! registered devices (`allow = "known"`) and tracks a bounded number (`max_tracked`).

use gridsentry_sensors::{codec, Format, Header, Id, Reading, Stream, Timestamp, Topic};
use gridsentry_tests::daemon::{Daemon, Device, NOISE_RULE, T0, WAIT};
use gridsentry_tests::{binary, noise, Hooks, Mosquitto};
use rumqttc::{AsyncClient, ConnectReturnCode, Event, MqttOptions, Packet, QoS};
use std::collections::HashMap;
use std::sync::atomic::Ordering::Relaxed;

/// Runs `gridsentry provision` as an installer would.
fn provision(dir: &std::path::Path, site: &str, device: &str) -> HashMap<String, String> {
    let out = std::process::Command::new(binary())
        .args(["provision", "--site", site, "--device", device, "--broker", "127.0.0.1:1883", "--dir"])
        .arg(dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // The broker's files are readable by Debian's mosquitto user (its group), by no one else.
    if let Some(gid) = gridsentry::provision::group_id("mosquitto") {
        use std::os::unix::fs::MetadataExt;
        for f in ["broker/passwd", "broker/acl"] {
            let m = std::fs::metadata(dir.join(f)).unwrap();
            assert_eq!((m.gid(), m.mode() & 0o777), (gid, 0o640), "{f}");
        }
    }
    let env = std::fs::read_to_string(dir.join(format!("firmware/{site}/{device}.env"))).unwrap();
    env.lines().filter_map(|l| l.split_once('=')).map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn login(client_id: &str, port: u16, user: &str, password: &str) -> (AsyncClient, rumqttc::EventLoop) {
    let mut o = MqttOptions::new(client_id, "127.0.0.1", port);
    o.set_credentials(user, password);
    AsyncClient::new(o, 100)
}

/// The CONNACK code a login gets.
async fn connack(events: &mut rumqttc::EventLoop) -> ConnectReturnCode {
    loop {
        match tokio::time::timeout(WAIT, events.poll()).await.expect("an answer") {
            Ok(Event::Incoming(Packet::ConnAck(c))) => return c.code,
            Err(rumqttc::ConnectionError::ConnectionRefused(code)) => return code,
            Ok(_) => {}
            Err(e) => panic!("{e}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_is_refused_on_another_devices_topic() {
    let dir = tempfile::tempdir().unwrap();
    let daemon_pw = "daemon-pw-1";
    let line = gridsentry::provision::passwd_line("gridsentry", daemon_pw);
    std::fs::create_dir_all(dir.path().join("broker")).unwrap();
    std::fs::write(dir.path().join("broker/passwd"), line + "\n").unwrap();
    let a = provision(dir.path(), "plaza-3", "nb-01");
    provision(dir.path(), "plaza-3", "nb-02");
    let broker = Mosquitto::start_provisioned(dir.path());

    let (reader, mut reader_events) = login("reader", broker.port, "gridsentry", daemon_pw);
    assert_eq!(connack(&mut reader_events).await, ConnectReturnCode::Success);
    reader.subscribe("gs/v1/#", QoS::AtLeastOnce).await.unwrap();
    loop {
        if let Event::Incoming(Packet::SubAck(_)) = reader_events.poll().await.unwrap() {
            break;
        }
    }
    let (_, mut wrong) = login("nb-01-bad", broker.port, "plaza-3/nb-01", "not-its-password");
    assert_eq!(connack(&mut wrong).await, ConnectReturnCode::NotAuthorized);

    // Box A, with its own login, publishes as box B first, then as itself.
    let user = a["GRIDSENTRY_MQTT_USER"].clone();
    let mut o = MqttOptions::new("nb-01", "127.0.0.1", broker.port);
    o.set_credentials(user, a["GRIDSENTRY_MQTT_PASSWORD"].clone());
    // One connection for both (two with the same client id would end each other, and their
    // publishes with them; two ids would not keep the order the check below relies on).
    let box_a = Device::with_options(o, Id::new("plaza-3").unwrap(), Id::new("nb-02").unwrap());
    box_a.send(0, noise(99.0)).await;
    let header = Header {
        site: Id::new("plaza-3").unwrap(),
        device: Id::new("nb-01").unwrap(),
        boot_id: 7,
        seq: 1,
        time: Timestamp::Utc(T0 + 1000),
        historical: false,
    };
    let payload = codec::encode_vec(Format::Json, &Reading { header, body: noise(50.0) }).unwrap();
    box_a.client.publish("gs/v1/plaza-3/nb-01/noise", QoS::AtLeastOnce, false, payload).await.unwrap();
    // Publishes of one client arrive in order: had the forged one passed, it would come first.
    let first = loop {
        match tokio::time::timeout(WAIT, reader_events.poll()).await.unwrap().unwrap() {
            Event::Incoming(Packet::Publish(p)) => break p.topic,
            _ => continue,
        }
    };
    let a_topic = Topic::new(Id::new("plaza-3").unwrap(), Id::new("nb-01").unwrap(), Stream::Noise);
    assert_eq!(first, a_topic.to_string(), "the broker dropped A's publish on B's topic");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_registered_devices_are_heard() {
    let dir = tempfile::tempdir().unwrap();
    provision(dir.path(), "plaza-3", "nb-01");
    let broker = Mosquitto::start();
    let hooks = Hooks::start().await;
    let rules = format!(
        "{NOISE_RULE}\n[devices]\nallow = \"known\"\nregistry = \"{}\"\n",
        dir.path().join("registry/devices").display()
    );
    let d = Daemon::start_at(broker.port, &hooks.url, &rules).await;
    let stranger = Device::connect(broker.port, "plaza-3", "nb-66", false).await;
    let known = Device::connect(broker.port, "plaza-3", "nb-01", false).await;
    stranger.send(0, noise(50.0)).await;
    d.wait(|r| r.metrics.devices_refused[0].load(Relaxed) == 1).await;
    known.send(0, noise(50.0)).await;
    d.wait(|r| r.metrics.readings[Stream::Noise.index()].load(Relaxed) == 1).await;
    // Provisioned while running: heard from the next tick on, without a restart.
    provision(dir.path(), "plaza-3", "nb-66");
    let noise_applied =
        |r: &gridsentry::runtime::Running| r.metrics.readings[Stream::Noise.index()].load(Relaxed);
    let mut seq = 1;
    while noise_applied(d.running()) < 2 {
        stranger.send(seq, noise(50.0)).await;
        // Each reading is either refused or applied before the next goes out.
        let handled = 2 + u64::from(seq);
        d.wait(move |r| r.metrics.devices_refused[0].load(Relaxed) + noise_applied(r) == handled).await;
        seq += 1;
    }
    let (_, body) = d.get("/api/v1/devices", Some(gridsentry_tests::TOKEN)).await;
    let devices = body["devices"].as_array().unwrap();
    let names: Vec<&str> = devices.iter().map(|v| v["device"].as_str().unwrap()).collect();
    assert!(names.contains(&"nb-01") && names.contains(&"nb-66"), "{names:?}");
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invented_ids_stop_at_the_tracking_bound() {
    let broker = Mosquitto::start();
    let hooks = Hooks::start().await;
    let rules = format!("{NOISE_RULE}\n[devices]\nmax_tracked = 3\n");
    let d = Daemon::start_at(broker.port, &hooks.url, &rules).await;
    let flood = Device::connect(broker.port, "plaza-3", "nb-01", false).await;
    // One connection sending as many devices (the embedded checks pass: ids are well formed).
    for i in 0..10u32 {
        let (site, device) = (Id::new("plaza-3").unwrap(), Id::new(&format!("fake-{i}")).unwrap());
        let topic = Topic::new(site.clone(), device.clone(), Stream::Noise).to_string();
        let time = Timestamp::Utc(T0);
        let header = Header { site, device, boot_id: 1, seq: 0, time, historical: false };
        let payload = codec::encode_vec(Format::Json, &Reading { header, body: noise(50.0) }).unwrap();
        flood.client.publish(topic, QoS::AtLeastOnce, false, payload).await.unwrap();
    }
    d.wait(|r| r.metrics.devices_refused[1].load(Relaxed) + r.metrics.readings[0].load(Relaxed) == 10).await;
    let m = &d.running().metrics;
    assert_eq!(m.readings[0].load(Relaxed), 3, "three devices tracked");
    assert_eq!(m.devices_refused[1].load(Relaxed), 7, "the rest counted and dropped");
    assert_eq!(gridsentry_tests::daemon::count(&d.db(), "SELECT COUNT(*) FROM device_seq"), 3);
    d.stop().await;
}
