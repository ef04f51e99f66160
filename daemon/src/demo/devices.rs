//! Simulated field devices speaking the real wire contract over MQTT: birth message, retained
//! last will, QoS 1 readings once a second, per-boot sequence numbers.

use gridsentry_sensors::heapless;
use gridsentry_sensors::*;
use rumqttc::{AsyncClient, LastWill, MqttOptions, QoS};
use std::time::Duration;
use tokio::sync::watch;

/// What a device measures at second `t` of the demo; `None` = the device is gone.
pub type Script = fn(t: u64) -> Option<Body>;

/// One simulated device.
pub struct Device {
    /// Site id.
    pub site: &'static str,
    /// Device id.
    pub device: &'static str,
    /// Its behaviour.
    pub script: Script,
}

fn noise(db: f32) -> Body {
    Body::Noise(NoiseReport {
        l10_db: Some(db + 2.0),
        l90_db: Some(db - 6.0),
        ..NoiseReport::levels(db, db + 6.0)
    })
}

fn hr(band: &str, bpm: u16, contact: Contact) -> Body {
    let rr = if bpm > 0 {
        heapless::Vec::from_slice(&[(60_000 * 1024 / 1000 / u32::from(bpm)) as u16]).unwrap_or_default()
    } else {
        heapless::Vec::new()
    };
    Body::HeartRate(HeartRateReport {
        band: Id::new(band).expect("demo band ids are valid"),
        bpm,
        contact,
        rr_1024: rr,
        energy_kj: None,
        battery_pct: Some(70),
    })
}

/// The demo's cast.
pub fn cast() -> Vec<Device> {
    vec![
        // Evening square dance: 76 dB(A) from second 5 to 40.
        Device {
            site: "plaza-3",
            device: "nb-01",
            script: |t| Some(noise(if (5..40).contains(&t) { 76.0 } else { 58.0 })),
        },
        // A quiet plaza whose box loses power at second 20 (its last will says offline).
        Device { site: "plaza-4", device: "nb-02", script: |t| (t < 20).then(|| noise(52.0)) },
        // Heart rate falls sharply from 78 to 48 bpm at second 12 while worn: red.
        Device {
            site: "home-12",
            device: "gw-1",
            script: |t| Some(hr("a1", if t < 12 { 78 + (t % 3) as u16 } else { 48 }, Contact::Detected)),
        },
        // The band is taken off at second 10: its own (orange) order, not a heart alarm.
        Device {
            site: "home-15",
            device: "gw-2",
            script: |t| {
                Some(if t < 10 { hr("b2", 70, Contact::Detected) } else { hr("b2", 0, Contact::NotDetected) })
            },
        },
        // All well.
        Device {
            site: "home-18",
            device: "gw-3",
            script: |t| Some(hr("c3", 64 + (t % 2) as u16, Contact::Detected)),
        },
    ]
}

fn status(id: &Identity, state: DeviceState) -> Vec<u8> {
    let body = Body::Status(StatusReport {
        state,
        firmware: heapless::String::try_from("demo-1.0").unwrap_or_default(),
        dropped: 0,
        slot: Default::default(),
    });
    let header = Header {
        site: id.site.clone(),
        device: id.device.clone(),
        boot_id: id.boot,
        seq: 0,
        time: Timestamp::Unsynced(0),
        historical: false,
    };
    codec::encode_vec(Format::Json, &Reading { header, body }).expect("status encodes")
}

struct Identity {
    site: Id,
    device: Id,
    boot: u32,
}

/// Runs one device until its script ends or `stop` turns true.
pub async fn run(dev: Device, port: u16, mut stop: watch::Receiver<bool>) {
    let id = Identity {
        site: Id::new(dev.site).expect("valid"),
        device: Id::new(dev.device).expect("valid"),
        boot: rand::random(),
    };
    let status_topic = Topic::new(id.site.clone(), id.device.clone(), Stream::Status).to_string();
    let mut o = MqttOptions::new(format!("demo-{}-{}", dev.site, dev.device), "127.0.0.1", port);
    o.set_keep_alive(Duration::from_secs(5));
    o.set_last_will(LastWill::new(&status_topic, status(&id, DeviceState::Offline), QoS::AtLeastOnce, true));
    let (client, mut events) = AsyncClient::new(o, 64);
    let driver = tokio::spawn(async move { while events.poll().await.is_ok() {} });
    let _ = client.publish(&status_topic, QoS::AtLeastOnce, true, status(&id, DeviceState::Online)).await;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    for t in 0u64.. {
        tokio::select! {
            _ = stop.changed() => break,
            _ = tick.tick() => {}
        }
        let Some(body) = (dev.script)(t) else {
            // Power lost: the connection drops without a DISCONNECT, the broker sends the will.
            driver.abort();
            return;
        };
        let header = Header {
            site: id.site.clone(),
            device: id.device.clone(),
            boot_id: id.boot,
            seq: t as u32,
            time: Timestamp::Utc(crate::clock::now_ms()),
            historical: false,
        };
        let topic = Topic::new(id.site.clone(), id.device.clone(), body.stream()).to_string();
        let payload =
            codec::encode_vec(Format::Json, &Reading { header, body }).expect("demo readings encode");
        let _ = client.publish(topic, QoS::AtLeastOnce, false, payload).await;
    }
    let _ = client.disconnect().await;
    let _ = tokio::time::timeout(Duration::from_secs(1), driver).await;
}
