//! Line-protocol points back into readings: the inverse of [`crate::line_protocol`] (std only;
//! `gridsentry backtest` reads recorded data with it).
//!
//! Parsing is the influxdb-line-protocol crate's (the parser of InfluxDB IOx); this file only
//! maps a parsed point of the documented schema to a [`Reading`]. It is lenient where exports
//! differ from what the daemon wrote: numbers may come back as floats or integers, booleans as
//! 0/1, and fields a server does not keep (strings, in VictoriaMetrics) may be missing —
//! `contact` falls back to `worn`. Anything else is a clear [`PointError`], never a panic.

use crate::reading::{
    Body, Contact, DeviceState, Header, HeartRateReport, NoiseReport, Reading, StatusReport, Timestamp,
};
use crate::{ChannelKind, DeformReport, Id, Stream};
use influxdb_line_protocol::{FieldValue, ParsedLine};
use std::format;
use std::string::{String, ToString};

/// Why a point is not a reading.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PointError {
    /// Not line protocol.
    #[error("not line protocol: {0}")]
    Syntax(String),
    /// A measurement this schema does not have (skipped, counted).
    #[error("measurement `{0}` is not one of noise, hr, deform, rain, status")]
    Measurement(String),
    /// A tag or field is missing or of the wrong kind.
    #[error("{measurement}: {what} `{name}` {problem}")]
    Field {
        /// Measurement.
        measurement: String,
        /// `tag` or `field`.
        what: &'static str,
        /// Its name.
        name: String,
        /// What is wrong.
        problem: &'static str,
    },
    /// No timestamp.
    #[error("point without a timestamp")]
    NoTime,
}

/// Timestamp unit of the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precision {
    /// Guess from the magnitude (ns, µs, ms or s since 1970, for dates 2001–2286).
    Auto,
    /// Nanoseconds (what `influx` exports).
    Ns,
    /// Microseconds.
    Us,
    /// Milliseconds (what gridsentry writes).
    Ms,
    /// Seconds.
    S,
}

impl core::str::FromStr for Precision {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "auto" => Precision::Auto,
            "ns" => Precision::Ns,
            "us" => Precision::Us,
            "ms" => Precision::Ms,
            "s" => Precision::S,
            _ => return Err(format!("`{s}`: use auto, ns, us, ms or s")),
        })
    }
}

impl Precision {
    /// `ts` in ms.
    pub fn to_ms(self, ts: i64) -> i64 {
        let p = match self {
            Precision::Auto => match ts.unsigned_abs() {
                n if n >= 1_000_000_000_000_000_000 => Precision::Ns,
                n if n >= 1_000_000_000_000_000 => Precision::Us,
                n if n >= 1_000_000_000_000 => Precision::Ms,
                _ => Precision::S,
            },
            p => p,
        };
        match p {
            Precision::Ns => ts / 1_000_000,
            Precision::Us => ts / 1_000,
            Precision::S => ts.saturating_mul(1000),
            _ => ts,
        }
    }
}

/// Parses every line of `text`: `(line number, result)` for each non-empty line.
pub fn parse(
    text: &str,
    precision: Precision,
) -> impl Iterator<Item = (usize, Result<(i64, Reading), PointError>)> + '_ {
    text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty() && !l.trim_start().starts_with('#')).map(
        move |(i, l)| {
            let r = match influxdb_line_protocol::parse_lines(l).next() {
                Some(Ok(p)) => reading(&p, precision),
                Some(Err(e)) => Err(PointError::Syntax(e.to_string())),
                None => Err(PointError::Syntax("empty".into())),
            };
            (i + 1, r)
        },
    )
}

/// One parsed point as a reading, with its time in ms.
pub fn reading(p: &ParsedLine<'_>, precision: Precision) -> Result<(i64, Reading), PointError> {
    let m = p.series.measurement.as_str();
    let Some(stream) = Stream::parse(m) else { return Err(PointError::Measurement(m.to_string())) };
    let err = |what, name: &str, problem| PointError::Field {
        measurement: m.to_string(),
        what,
        name: name.to_string(),
        problem,
    };
    let tag = |name: &str| -> Result<Id, PointError> {
        let v = p.tag_value(name).ok_or_else(|| err("tag", name, "is missing"))?;
        Id::new(v.as_str()).map_err(|_| err("tag", name, "is not a valid id"))
    };
    let num = |name: &str| -> Result<Option<f64>, PointError> {
        match p.field_value(name) {
            None => Ok(None),
            Some(FieldValue::F64(v)) if v.is_finite() => Ok(Some(*v)),
            Some(FieldValue::I64(v)) => Ok(Some(*v as f64)),
            Some(FieldValue::U64(v)) => Ok(Some(*v as f64)),
            Some(_) => Err(err("field", name, "is not a finite number")),
        }
    };
    let int = |name: &str, max: f64| -> Result<Option<u32>, PointError> {
        match num(name)? {
            None => Ok(None),
            Some(v) if v.fract() == 0.0 && (0.0..=max).contains(&v) => Ok(Some(v as u32)),
            Some(_) => Err(err("field", name, "is not an integer in range")),
        }
    };
    let flag = |name: &str| -> Result<Option<bool>, PointError> {
        match p.field_value(name) {
            Some(FieldValue::Boolean(b)) => Ok(Some(*b)),
            Some(_) => match num(name)? {
                Some(v) if v == 0.0 || v == 1.0 => Ok(Some(v == 1.0)),
                _ => Err(err("field", name, "is not a boolean")),
            },
            None => Ok(None),
        }
    };
    let text = |name: &str| match p.field_value(name) {
        Some(FieldValue::String(s)) => Some(s.as_str().to_string()),
        _ => None,
    };
    let ts = precision.to_ms(p.timestamp.ok_or(PointError::NoTime)?);
    let header = Header {
        site: tag("site")?,
        device: tag("device")?,
        boot_id: int("boot_id", u32::MAX as f64)?.unwrap_or(0),
        seq: int("seq", u32::MAX as f64)?.unwrap_or(0),
        time: Timestamp::Utc(ts.max(0) as u64),
        historical: flag("historical")?.unwrap_or(false),
    };
    let level = |name: &str| -> Result<Option<f32>, PointError> { Ok(num(name)?.map(|v| v as f32)) };
    let body = match stream {
        Stream::Noise => {
            let laeq_db = level("laeq_db")?.ok_or_else(|| err("field", "laeq_db", "is missing"))?;
            Body::Noise(NoiseReport {
                interval_ms: int("interval_ms", u32::MAX as f64)?.unwrap_or(1000),
                laeq_db,
                lafmax_db: level("lafmax_db")?.unwrap_or(laeq_db),
                lcpeak_db: level("lcpeak_db")?,
                l10_db: level("l10_db")?,
                l90_db: level("l90_db")?,
                overload: flag("overload")?.unwrap_or(false),
                under_range: flag("under_range")?.unwrap_or(false),
                cal_offset_db: 0.0,
            })
        }
        Stream::Hr => {
            let bpm = int("bpm", u16::MAX as f64)?.ok_or_else(|| err("field", "bpm", "is missing"))?;
            let contact = match (text("contact").as_deref(), flag("worn")?) {
                (Some("detected"), _) => Contact::Detected,
                (Some("not_detected"), _) => Contact::NotDetected,
                (Some("unsupported"), _) => Contact::Unsupported,
                (Some(_), _) => {
                    return Err(err("field", "contact", "is not detected, not_detected or unsupported"))
                }
                (None, Some(false)) => Contact::NotDetected,
                (None, _) => Contact::Unsupported,
            };
            let mut rr_1024 = heapless::Vec::new();
            if let Some(ms) = num("rr_last_ms")? {
                let _ = rr_1024.push((ms * 1.024).round().clamp(0.0, u16::MAX as f64) as u16);
            }
            Body::HeartRate(HeartRateReport {
                band: tag("band")?,
                bpm: bpm as u16,
                contact,
                rr_1024,
                energy_kj: int("energy_kj", u16::MAX as f64)?.map(|v| v as u16),
                battery_pct: int("battery_pct", 100.0)?.map(|v| v as u8),
            })
        }
        Stream::Deform | Stream::Rain => {
            let mut d = DeformReport::default();
            for kind in ChannelKind::ALL {
                if let Some(v) = num(kind.as_str())? {
                    d.push(kind, v).map_err(|_| err("field", kind.as_str(), "appears twice"))?;
                }
            }
            if d.channels.is_empty() {
                return Err(err("field", "(channel)", "none of the known channels is present"));
            }
            if stream == Stream::Rain {
                Body::Rain(d)
            } else {
                Body::Deform(d)
            }
        }
        Stream::Status => {
            let online = flag("online")?.ok_or_else(|| err("field", "online", "is missing"))?;
            let mut firmware = heapless::String::new();
            for c in text("firmware").unwrap_or_default().chars() {
                if firmware.push(c).is_err() {
                    break;
                }
            }
            Body::Status(StatusReport {
                state: if online { DeviceState::Online } else { DeviceState::Offline },
                firmware,
                dropped: int("dropped", u32::MAX as f64)?.unwrap_or(0),
                slot: heapless::String::try_from(text("slot").unwrap_or_default().as_str())
                    .unwrap_or_default(),
            })
        }
    };
    Ok((ts, Reading { header, body }))
}

#[cfg(test)]
#[path = "line_protocol_read_tests.rs"]
mod tests;
