//! The chips' network code end to end: the tap board runs the link crate (MQTT uplink and SNTP
//! on embassy-net/smoltcp, exactly what the RP2040 and ESP32-C3 run) over a Linux TAP device
//! against a real mosquitto and a time server of the test's own. It must come up with its birth
//! message, switch its readings to UTC once the time server answered, and lose nothing when the
//! broker goes away for a while: every sequence number arrives, the ones that waited flagged
//! historical.
//!
//! Creating the TAP device needs CAP_NET_ADMIN (root, as scripts/test and CI run): without it the
//! test fails and says so.

use gridsentry_sensors::codec::decode;
use gridsentry_sensors::ota::{Report, UpdateState};
use gridsentry_sensors::{Body, DeviceState, Reading, Timestamp};
use gridsentry_tests::{binary, Mosquitto};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio::net::UdpSocket;

/// The time the test's SNTP server tells: 2026-11-25T12:00:00Z, then running on.
const SERVER_EPOCH_MS: u64 = 1_795_608_000_000;

/// A TAP device with the host end at `.1` of a /24; removed on drop.
struct Tap {
    name: String,
    net: String,
}

impl Tap {
    fn create() -> Tap {
        let pid = std::process::id();
        let (name, net) = (format!("gst{}", pid % 100_000), format!("10.211.{}", pid % 250));
        let ip = |args: &[&str]| {
            let out = Command::new("ip").args(args).output().expect("iproute2's ip must be installed");
            assert!(
                out.status.success(),
                "ip {}: {} (creating a TAP device needs CAP_NET_ADMIN: run the tests as root, as \
                 scripts/test and CI do)",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        };
        let _ = Command::new("ip").args(["link", "del", &name]).output();
        ip(&["tuntap", "add", "name", &name, "mode", "tap"]);
        let tap = Tap { name, net };
        ip(&["addr", "add", &format!("{}.1/24", tap.net), "dev", &tap.name]);
        ip(&["link", "set", &tap.name, "up"]);
        tap
    }
}

impl Drop for Tap {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["link", "del", &self.name]).output();
    }
}

struct Board(Child);

impl Drop for Board {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Answers SNTP requests with the test's clock; counts the answers.
async fn time_server(socket: UdpSocket, answered: tokio::sync::watch::Sender<u32>) {
    let started = Instant::now();
    let mut buf = [0u8; 64];
    loop {
        let Ok((n, from)) = socket.recv_from(&mut buf).await else { continue };
        if n < 48 || buf[0] & 7 != 3 {
            continue;
        }
        let ms = SERVER_EPOCH_MS + started.elapsed().as_millis() as u64;
        let secs = ms / 1000 + 2_208_988_800;
        let frac = ((ms % 1000) << 32) / 1000;
        let mut reply = [0u8; 48];
        reply[0] = 0b00_100_100; // version 4, server
        reply[1] = 2; // stratum
        reply[24..32].copy_from_slice(&buf[40..48]); // originate = the request's transmit
        reply[40..48].copy_from_slice(&((secs << 32) | frac).to_be_bytes());
        if socket.send_to(&reply, from).await.is_ok() {
            answered.send_modify(|a| *a += 1);
        }
    }
}

/// What the subscriber saw: readings by sequence number (duplicates compared), the last status,
/// the last update report (the link's session takes fleet updates).
#[derive(Default)]
struct Seen {
    readings: BTreeMap<u32, Reading>,
    duplicates: u32,
    status: Option<Reading>,
    ota: Option<Report>,
}

async fn collect_until(
    events: &mut rumqttc::EventLoop,
    seen: &mut Seen,
    what: &str,
    mut done: impl FnMut(&Seen) -> bool,
) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done(seen) {
        assert!(Instant::now() < deadline, "no {what} within 60 s ({} readings seen)", seen.readings.len());
        let Ok(Ok(event)) = tokio::time::timeout(Duration::from_secs(1), events.poll()).await else {
            continue;
        };
        let Event::Incoming(Packet::Publish(p)) = event else { continue };
        if p.topic.ends_with("/ota/state") {
            seen.ota =
                Some(serde_json::from_slice(&p.payload).unwrap_or_else(|e| panic!("{}: {e}", p.topic)));
            continue;
        }
        let r = decode(&p.payload).unwrap_or_else(|e| panic!("{}: {e}", p.topic));
        if p.topic.ends_with("/status") {
            seen.status = Some(r);
        } else if let Some(before) = seen.readings.get(&r.header.seq) {
            // At least once: a resend must be the same reading (only the flag may change).
            assert_eq!((&before.body, before.header.time), (&r.body, r.header.time));
            seen.duplicates += 1;
        } else {
            seen.readings.insert(r.header.seq, r);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_chips_network_code_publishes_in_utc_and_loses_nothing_across_a_broker_outage() {
    let tap = Tap::create();
    let host = format!("{}.1", tap.net);
    let mut broker = Mosquitto::start_also_on(&host);
    let ntp = UdpSocket::bind((host.as_str(), 0)).await.unwrap();
    let ntp_port = ntp.local_addr().unwrap().port();
    let (answered, mut answers) = tokio::sync::watch::channel(0u32);
    tokio::spawn(time_server(ntp, answered));

    let mut o = MqttOptions::new("link-test", "127.0.0.1", broker.port);
    o.set_clean_session(false);
    o.set_keep_alive(Duration::from_secs(5));
    let (client, mut events) = AsyncClient::new(o, 1000);
    client.subscribe("gs/v1/plaza-9/tap-1/#", QoS::AtLeastOnce).await.unwrap();

    let board = binary().with_file_name("gridsentry-board-tap");
    assert!(board.exists(), "{} not built (cargo test --workspace builds it)", board.display());
    let _board = Board(
        Command::new(board)
            .args(["--tap", &tap.name, "--ip", &format!("{}.2", tap.net)])
            .args(["--broker", &format!("{host}:{}", broker.port), "--ntp", &format!("{host}:{ntp_port}")])
            .args(["--site", "plaza-9", "--device", "tap-1", "--boot-id", "77", "--reports-per-second", "20"])
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );

    let mut seen = Seen::default();
    collect_until(&mut events, &mut seen, "birth and UTC readings", |s| {
        s.status.is_some()
            && s.ota.is_some()
            && s.readings.values().filter(|r| matches!(r.header.time, Timestamp::Utc(_))).count() >= 10
    })
    .await;
    let birth = seen.status.clone().unwrap();
    let Body::Status(status) = &birth.body else { panic!("{birth:?}") };
    assert_eq!(
        (status.state, status.firmware.as_str(), birth.header.boot_id),
        (DeviceState::Online, env!("CARGO_PKG_VERSION"), 77)
    );
    assert_eq!(status.slot.as_str(), "ota_0", "the birth names the slot");
    let ota = seen.ota.clone().unwrap();
    assert_eq!(
        (ota.board.as_str(), ota.version.as_str(), ota.slot.as_str(), ota.state),
        ("host", env!("CARGO_PKG_VERSION"), "ota_0", UpdateState::Idle),
        "the update report at connection"
    );
    assert!(*answers.borrow_and_update() >= 1, "the time server was asked");
    let start = SERVER_EPOCH_MS;
    // Historical only what waited past its report interval (here 50 ms, 20 reports a second):
    // at most the first readings, measured while the box joined the network and the broker.
    let waited = seen.readings.values().take_while(|r| r.header.historical).count();
    assert!(waited < 20, "{waited} readings waited more than a second for the first connection");
    for r in seen.readings.values().skip(waited) {
        assert_eq!((r.header.boot_id, r.header.historical), (77, false), "{r:?}");
    }
    for r in seen.readings.values() {
        if let Timestamp::Utc(ms) = r.header.time {
            assert!((start..start + 120_000).contains(&ms), "UTC from the time server: {ms}");
        }
        // A 1 kHz tone at −30 dBFS on an INMP441 (−26 dBFS at 94 dB SPL): 90 dB(A).
        let Body::Noise(n) = &r.body else { panic!("{r:?}") };
        assert!((n.laeq_db - 90.0).abs() < 0.3, "{n:?}");
    }
    let utc: Vec<u64> = seen
        .readings
        .values()
        .filter_map(|r| if let Timestamp::Utc(ms) = r.header.time { Some(ms) } else { None })
        .collect();
    assert!(utc.windows(2).all(|w| w[0] <= w[1]), "device time runs forward: {utc:?}");

    // The broker goes away for two seconds (~40 readings); the box keeps measuring.
    let before = *seen.readings.keys().last().unwrap();
    broker.stop();
    tokio::time::sleep(Duration::from_secs(2)).await; // the outage itself, not a wait for state
    broker.resume();
    collect_until(&mut events, &mut seen, "readings after the outage", |s| {
        s.readings.keys().last().is_some_and(|&last| last > before + 80)
    })
    .await;
    let last = *seen.readings.keys().last().unwrap();
    let missing: Vec<u32> = (0..=last).filter(|s| !seen.readings.contains_key(s)).collect();
    assert!(missing.is_empty(), "lost across the outage: {missing:?}");
    let historical = seen.readings.values().filter(|r| r.header.historical).count();
    assert!(historical >= 20, "what waited is flagged historical: {historical} readings");
    eprintln!(
        "link over TAP: {} readings (seq 0..={last}), {} UTC, {historical} historical, {} duplicates, {} SNTP answers",
        seen.readings.len(),
        seen.readings.values().filter(|r| matches!(r.header.time, Timestamp::Utc(_))).count(),
        seen.duplicates,
        *answers.borrow()
    );
}
