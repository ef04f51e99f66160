//! Ingest: field messages in, decoded readings out, acknowledged only after commit.
//!
//! Each inbound message carries an [`Ack`]: the pipeline hands it back once the reading's rule
//! state and order transitions are committed, and only then is the MQTT PUBACK sent. Malformed
//! messages are counted by reason, logged with their topic and acked at once (a broker must not
//! redeliver them forever).

pub mod modbus;
pub mod mqtt;
pub mod serial;

use gridsentry_sensors::{
    codec, heapless, Body, DeviceState, Format, Header, Id, Reading, StatusReport, Timestamp, Topic,
};

/// A decoded reading on its way to the rules.
#[derive(Debug)]
pub struct Inbound {
    /// The topic it came on (already checked against the payload).
    pub topic: Topic,
    /// The reading.
    pub reading: Reading,
    /// The payload as received (kept as order evidence).
    pub raw: Vec<u8>,
    /// When it arrived, UTC ms.
    pub received_ms: u64,
    /// What to hand back after commit.
    pub ack: Ack,
}

/// Proof of receipt to acknowledge after commit.
#[derive(Debug)]
pub enum Ack {
    /// An MQTT QoS 1 publish, from connection `generation` (acks of older connections are
    /// dropped: the broker redelivers those, and re-application is detected by sequence).
    Mqtt {
        /// The publish to acknowledge.
        publish: rumqttc::Publish,
        /// Connection generation it arrived on.
        generation: u64,
    },
    /// Nothing to acknowledge (tests, polled devices).
    None,
}

/// Milliseconds since the Unix epoch, from the system clock.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// A reading of a polled or serial field device (stamped now; nothing to acknowledge).
pub(crate) fn field_reading(site: &Id, device: &Id, boot: u32, seq: u32, body: Body) -> Inbound {
    let header = Header {
        site: site.clone(),
        device: device.clone(),
        boot_id: boot,
        seq,
        time: Timestamp::Utc(now_ms()),
        historical: false,
    };
    let reading = Reading { header, body };
    let topic = Topic::new(site.clone(), device.clone(), reading.body.stream());
    let raw = codec::encode_vec(Format::Json, &reading).unwrap_or_default();
    Inbound { topic, reading, raw, received_ms: now_ms(), ack: Ack::None }
}

/// A status reading (online/offline) of a polled or serial field device; `via` names the link.
pub(crate) fn field_status(site: &Id, device: &Id, boot: u32, state: DeviceState, via: &str) -> Inbound {
    let firmware = heapless::String::try_from(via).unwrap_or_default();
    field_reading(site, device, boot, 0, Body::Status(StatusReport { state, firmware, dropped: 0 }))
}
