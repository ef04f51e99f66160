//! Payload codecs: JSON (the default, readable with `mosquitto_sub`) and compact binary
//! (postcard). Both carry format version [`VERSION`]; both check [`Reading::validate`] on encode
//! and decode, so a payload that decodes is a reading the rules may trust.
//!
//! Why two JSON decoders: firmware has no allocator and uses serde-json-core; the daemon (feature
//! `std`) uses serde_json, which understands every JSON string escape and reports the path of a
//! bad field. Encoding always uses serde-json-core, so device and daemon write identical bytes.

mod binary;
#[cfg(feature = "std")]
mod classify;
mod json;

pub use binary::{decode_binary, encode_binary};
pub use json::{decode_json, decode_json_core, encode_json};

use crate::error::{DecodeError, EncodeError};
use crate::reading::Reading;

/// The payload format version this build writes and reads.
pub const VERSION: u32 = 1;
/// A buffer this large holds any reading as JSON.
pub const JSON_MAX: usize = 1024;
/// A buffer this large holds any reading as binary.
pub const BINARY_MAX: usize = 320;

/// Payload encodings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// Versioned JSON object.
    Json,
    /// Version byte followed by postcard.
    Binary,
}

impl Format {
    /// Tells the formats apart by the first byte: JSON starts with `{` (after optional
    /// whitespace); binary starts with its version byte, which is never `{`.
    pub fn sniff(payload: &[u8]) -> Format {
        match payload.iter().find(|b| !b.is_ascii_whitespace()) {
            Some(b'{') => Format::Json,
            _ => Format::Binary,
        }
    }
}

/// Encodes `reading` into `buf`, returning the number of bytes written.
pub fn encode(format: Format, reading: &Reading, buf: &mut [u8]) -> Result<usize, EncodeError> {
    match format {
        Format::Json => encode_json(reading, buf),
        Format::Binary => encode_binary(reading, buf),
    }
}

/// Decodes a payload in either format (sniffed).
pub fn decode(payload: &[u8]) -> Result<Reading, DecodeError> {
    match Format::sniff(payload) {
        Format::Json => decode_json(payload),
        Format::Binary => decode_binary(payload),
    }
}

/// Decodes a payload received on `topic` and checks that it belongs there
/// ([`Reading::check_topic`]): what the daemon calls for every MQTT message.
pub fn decode_on(topic: &crate::topic::Topic, payload: &[u8]) -> Result<Reading, DecodeError> {
    let reading = decode(payload)?;
    reading.check_topic(topic)?;
    Ok(reading)
}

/// Encodes into a new vector.
#[cfg(feature = "std")]
pub fn encode_vec(format: Format, reading: &Reading) -> Result<std::vec::Vec<u8>, EncodeError> {
    let mut buf = [0u8; JSON_MAX];
    let n = encode(format, reading, &mut buf)?;
    Ok(buf[..n].to_vec())
}
