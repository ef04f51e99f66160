//! # gridsentry-sensors
//!
//! The shared device model of gridsentry: what a field device says and how it is said. Firmware
//! (no_std, no allocator) and the edge daemon (std) build on the same types, so the wire contract
//! lives in one place:
//!
//! - [`id`], [`topic`]: validated ids and the topic scheme `gs/v1/{site}/{device}/{stream}`;
//! - [`reading`], [`channels`]: reading types of the three device families and device status;
//! - [`codec`]: versioned JSON and binary (postcard) payloads;
//! - [`hrs`]: the BLE Heart Rate Measurement characteristic (0x2A37);
//! - [`modbus`]: register maps of real landslide instruments, as data, and their decoding;
//! - [`line_protocol`]: InfluxDB line protocol for readings;
//! - [`seq`]: the per-device window of sequence numbers seen (repeats vs late arrivals);
//! - [`ota`]: the over-the-air update contract (offers, chunks, device reports);
//! - [`nmea`] (std): GNSS receivers' GGA sentences into displacement readings.
//!
//! Nothing here does I/O, reads a clock or allocates in the core path. Every parser is fuzzed
//! (`sensors/fuzz`) and property-tested (`sensors/tests`).
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

#[cfg(any(test, feature = "std"))]
extern crate std;

pub mod channels;
pub mod codec;
pub mod error;
pub mod hrs;
pub mod id;
pub mod line_protocol;
#[cfg(feature = "std")]
pub mod line_protocol_read;
pub mod modbus;
#[cfg(feature = "std")]
pub mod nmea;
pub mod ota;
pub mod reading;
pub mod seq;
pub mod topic;

/// The fixed-capacity collections the reading types are made of.
pub use heapless;

pub use channels::{Channel, ChannelKind, DeformReport};
pub use codec::Format;
pub use error::{DecodeError, EncodeError, FieldError, Reason};
pub use id::Id;
pub use reading::{
    Body, Contact, DeviceState, Header, HeartRateReport, NoiseReport, Reading, StatusReport, Timestamp,
};
pub use topic::{Stream, Topic};
