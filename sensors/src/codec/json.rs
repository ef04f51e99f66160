//! The JSON payload: a flat, versioned object with exactly one body key.
//!
//! ```json
//! {"v":1,"site":"plaza-3","dev":"nb-01","boot":3735928559,"seq":42,"ts":1764040000123,
//!  "noise":{"interval_ms":1000,"laeq_db":71.2,"lafmax_db":78.9,...}}
//! ```
//! `ts` (UTC ms) or `mono` (ms since boot, clock unsynced) — exactly one; `hist` only when true;
//! body key `noise` | `hr` | `deform` | `rain` | `status`. Unknown keys are ignored so that a
//! version-1 device may add fields; a change of meaning bumps `v`.
//!
//! serde-json-core is used without its `custom-error-messages` feature: that feature formats
//! serde's message into a 64-byte string with `unwrap()`, so a long message (e.g. one quoting a
//! long string from the payload) panics (found by review; the fuzz target covers it). Without
//! the text, the no_std decoder reports *that* a field was wrong but not which; the daemon uses
//! serde_json, which names the field.

use super::VERSION;
use crate::channels::DeformReport;
use crate::error::{DecodeError, EncodeError, FieldError, Reason};
use crate::id::Id;
use crate::reading::{Body, Header, HeartRateReport, NoiseReport, Reading, StatusReport, Timestamp};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
struct Wire {
    v: u32,
    site: Id,
    dev: Id,
    boot: u32,
    seq: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ts: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    mono: Option<u64>,
    #[serde(default, skip_serializing_if = "is_false")]
    hist: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    noise: Option<NoiseReport>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    hr: Option<HeartRateReport>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    deform: Option<DeformReport>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    rain: Option<DeformReport>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    status: Option<StatusReport>,
}

/// Reads only the version, ignoring everything else.
#[derive(Deserialize)]
struct Probe {
    #[serde(default)]
    v: Option<u32>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// Encodes `reading` as JSON into `buf` (serde-json-core: no allocation).
pub fn encode_json(reading: &Reading, buf: &mut [u8]) -> Result<usize, EncodeError> {
    reading.validate().map_err(EncodeError::Invalid)?;
    serde_json_core::to_slice(&to_wire(reading), buf).map_err(|_| EncodeError::BufferFull)
}

/// Decodes a JSON payload (serde_json with feature `std`, else serde-json-core).
pub fn decode_json(payload: &[u8]) -> Result<Reading, DecodeError> {
    #[cfg(feature = "std")]
    return std_json::decode(payload);
    #[cfg(not(feature = "std"))]
    return decode_json_core(payload);
}

/// Decodes a JSON payload with serde-json-core (what firmware uses; exposed for tests).
pub fn decode_json_core(payload: &[u8]) -> Result<Reading, DecodeError> {
    if payload.is_empty() {
        return Err(DecodeError::Empty);
    }
    // Strings longer than an id or a firmware version are rejected anyway.
    let mut scratch = [0u8; 64];
    let wire = match serde_json_core::from_slice_escaped::<Wire>(payload, &mut scratch) {
        Ok((wire, _)) => wire,
        Err(e) => {
            // Rejected: a wrong version explains it better than the field that failed.
            let (probe, _) =
                serde_json_core::from_slice_escaped::<Probe>(payload, &mut scratch).map_err(core_error)?;
            check_version(probe.v)?;
            return Err(core_error(e));
        }
    };
    check_version(Some(wire.v))?;
    from_wire(wire)
}

fn check_version(v: Option<u32>) -> Result<(), DecodeError> {
    match v {
        None => Err(DecodeError::MissingVersion),
        Some(VERSION) => Ok(()),
        Some(found) => Err(DecodeError::UnsupportedVersion { found }),
    }
}

fn core_error(e: serde_json_core::de::Error) -> DecodeError {
    use serde_json_core::de::Error as E;
    let syntax = match e {
        E::EofWhileParsingList
        | E::EofWhileParsingObject
        | E::EofWhileParsingString
        | E::EofWhileParsingNumber
        | E::EofWhileParsingValue => "truncated JSON",
        E::TrailingCharacters => "trailing characters after the JSON object",
        E::InvalidType => return DecodeError::Field(FieldError::new("", Reason::WrongType)),
        E::InvalidNumber => return DecodeError::Field(FieldError::new("", Reason::WrongType)),
        // Without an allocator serde's message text is not kept: see the module doc.
        E::CustomError => return DecodeError::Field(FieldError::new("", Reason::Invalid)),
        _ => "invalid JSON",
    };
    DecodeError::Syntax(syntax)
}

fn to_wire(r: &Reading) -> Wire {
    let h = &r.header;
    let (ts, mono) = match h.time {
        Timestamp::Utc(ms) => (Some(ms), None),
        Timestamp::Unsynced(ms) => (None, Some(ms)),
    };
    let mut w = Wire {
        v: VERSION,
        site: h.site.clone(),
        dev: h.device.clone(),
        boot: h.boot_id,
        seq: h.seq,
        ts,
        mono,
        hist: h.historical,
        noise: None,
        hr: None,
        deform: None,
        rain: None,
        status: None,
    };
    match &r.body {
        Body::Noise(n) => w.noise = Some(*n),
        Body::HeartRate(b) => w.hr = Some(b.clone()),
        Body::Deform(d) => w.deform = Some(d.clone()),
        Body::Rain(d) => w.rain = Some(d.clone()),
        Body::Status(s) => w.status = Some(s.clone()),
    }
    w
}

fn from_wire(w: Wire) -> Result<Reading, DecodeError> {
    let time = match (w.ts, w.mono) {
        (Some(ms), None) => Timestamp::Utc(ms),
        (None, Some(ms)) => Timestamp::Unsynced(ms),
        (None, None) => {
            return Err(FieldError::new("ts", Reason::Missing).with_detail("need ts or mono").into())
        }
        (Some(_), Some(_)) => {
            return Err(FieldError::new("ts", Reason::Conflict).with_detail("both ts and mono").into())
        }
    };
    let detail = "need exactly one of noise, hr, deform, rain, status";
    let mut bodies = [
        w.noise.map(Body::Noise),
        w.hr.map(Body::HeartRate),
        w.deform.map(Body::Deform),
        w.rain.map(Body::Rain),
        w.status.map(Body::Status),
    ]
    .into_iter()
    .flatten();
    let body = match (bodies.next(), bodies.next()) {
        (Some(body), None) => body,
        (None, _) => return Err(FieldError::new("body", Reason::Missing).with_detail(detail).into()),
        (Some(_), Some(_)) => {
            return Err(FieldError::new("body", Reason::Conflict).with_detail(detail).into())
        }
    };
    let header =
        Header { site: w.site, device: w.dev, boot_id: w.boot, seq: w.seq, time, historical: w.hist };
    let reading = Reading { header, body };
    reading.validate()?;
    Ok(reading)
}

#[cfg(feature = "std")]
mod std_json {
    use super::super::classify::field_error;
    use super::*;

    pub(super) fn decode(payload: &[u8]) -> Result<Reading, DecodeError> {
        if payload.is_empty() {
            return Err(DecodeError::Empty);
        }
        // One plain parse on the accepting path; the rejecting path parses again to say
        // whether the version or which field was wrong.
        if let Ok(wire) = serde_json::from_slice::<Wire>(payload) {
            check_version(Some(wire.v))?;
            return from_wire(wire);
        }
        let probe: Probe = parse(payload)?;
        check_version(probe.v)?;
        from_wire(parse(payload)?)
    }

    fn parse<'a, T: Deserialize<'a>>(payload: &'a [u8]) -> Result<T, DecodeError> {
        let mut de = serde_json::Deserializer::from_slice(payload);
        let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
            let path = std::string::ToString::to_string(e.path());
            classify(&path, e.inner())
        })?;
        de.end().map_err(|_| DecodeError::Syntax("trailing characters after the JSON object"))?;
        Ok(value)
    }

    fn classify(path: &str, e: &serde_json::Error) -> DecodeError {
        use serde_json::error::Category;
        match e.classify() {
            Category::Eof => DecodeError::Syntax("truncated JSON"),
            Category::Syntax | Category::Io => DecodeError::Syntax("invalid JSON"),
            Category::Data => {
                let msg = std::string::ToString::to_string(e);
                // serde_json appends " at line L column C"; keep the phrase only.
                let phrase = msg.rsplit_once(" at line ").map_or(msg.as_str(), |(p, _)| p);
                DecodeError::Field(field_error(path, phrase))
            }
        }
    }
}
