//! Ingest: field messages in, decoded readings out, acknowledged only after commit.
//!
//! Each inbound message carries an [`Ack`]: the pipeline hands it back once the reading's rule
//! state and order transitions are committed, and only then is the MQTT PUBACK sent. Malformed
//! messages are counted by reason, logged with their topic and acked at once (a broker must not
//! redeliver them forever).

pub mod modbus;
pub mod mqtt;
pub mod serial;

use gridsentry_sensors::{Reading, Topic};

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
