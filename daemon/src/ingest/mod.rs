//! Ingest: field messages in, decoded readings out, acknowledged only after commit.
//!
//! Each inbound message carries an [`Ack`]: the pipeline hands it back once the reading's rule
//! state and order transitions are committed, and only then is the MQTT PUBACK sent. Malformed
//! messages are counted by reason, logged with their topic and acked at once (a broker must not
//! redeliver them forever). What flows to the pipeline and back is defined in [`crate::flow`].

pub mod modbus;
pub mod mqtt;
pub mod serial;

use crate::clock::now_ms;
use crate::flow::{Ack, Inbound};
use gridsentry_sensors::{
    codec, heapless, Body, DeviceState, Format, Header, Id, Reading, StatusReport, Timestamp, Topic,
};

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
    let raw = codec::encode_vec(Format::Json, &reading).unwrap_or_default().into();
    Inbound::new(topic, reading, raw, now_ms(), Ack::None)
}

/// A status reading (online/offline) of a polled or serial field device; `via` names the link.
pub(crate) fn field_status(site: &Id, device: &Id, boot: u32, state: DeviceState, via: &str) -> Inbound {
    let firmware = heapless::String::try_from(via).unwrap_or_default();
    field_reading(
        site,
        device,
        boot,
        0,
        Body::Status(StatusReport { state, firmware, dropped: 0, slot: Default::default() }),
    )
}
