//! InfluxDB line protocol for readings: one measurement per stream, tags `site`, `device` (and
//! `band` for heart rate) plus the caller's extra tags (e.g. `grid`, `street`), fields per body,
//! timestamp in **milliseconds** (write with `precision=ms`).
//!
//! Escaping and number formatting follow the format owners' encoder as recorded in
//! influxdata/line-protocol-corpus: measurement escapes `,` and space; tag keys, tag values and
//! field keys escape `,`, `=` and space; string fields escape `"` and `\`; a backslash elsewhere
//! is written as is; floats use Go's shortest `%g` form (`6.632243e+06`). Line breaks cannot be
//! escaped in names, so they are an error; empty tag values are left out, as InfluxDB drops them.

use crate::reading::{Body, Contact, DeviceState, Reading};
use core::fmt::{self, Display, LowerExp, Write};

/// A field value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FieldValue<'a> {
    /// Float written with f64 precision.
    F64(f64),
    /// Float written with f32 precision (so 71.2f32 is `71.2`, not `71.19999694824219`).
    F32(f32),
    /// Signed integer (`i` suffix).
    Int(i64),
    /// Boolean.
    Bool(bool),
    /// String (quoted, escaped).
    Str(&'a str),
}

/// Why a point could not be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LineError {
    /// The output sink refused (e.g. a full fixed buffer).
    #[error("output full")]
    Fmt,
    /// A name or tag value holds a line break, which line protocol cannot carry.
    #[error("line break in a name or tag value")]
    LineBreak,
    /// A float is NaN or infinite.
    #[error("non-finite float field")]
    NotFinite,
    /// A point needs at least one field.
    #[error("no fields")]
    NoFields,
    /// More tags or fields than a reading can carry.
    #[error("too many tags or fields")]
    TooMany,
    /// The measurement name is empty.
    #[error("empty measurement name")]
    EmptyMeasurement,
}

impl From<fmt::Error> for LineError {
    fn from(_: fmt::Error) -> Self {
        LineError::Fmt
    }
}

/// Writes one point (without a trailing newline). `ts` is in the unit the write request names.
pub fn write_point<W: Write>(
    out: &mut W,
    measurement: &str,
    tags: &[(&str, &str)],
    fields: &[(&str, FieldValue<'_>)],
    ts: i64,
) -> Result<(), LineError> {
    if measurement.is_empty() {
        return Err(LineError::EmptyMeasurement);
    }
    if fields.is_empty() {
        return Err(LineError::NoFields);
    }
    escaped(out, measurement, &[',', ' '])?;
    for (k, v) in tags.iter().filter(|(_, v)| !v.is_empty()) {
        out.write_char(',')?;
        escaped(out, k, &[',', '=', ' '])?;
        out.write_char('=')?;
        escaped(out, v, &[',', '=', ' '])?;
    }
    for (i, (k, v)) in fields.iter().enumerate() {
        out.write_char(if i == 0 { ' ' } else { ',' })?;
        escaped(out, k, &[',', '=', ' '])?;
        out.write_char('=')?;
        write_value(out, v)?;
    }
    write!(out, " {ts}")?;
    Ok(())
}

fn escaped<W: Write>(out: &mut W, s: &str, special: &[char]) -> Result<(), LineError> {
    for c in s.chars() {
        if c == '\n' || c == '\r' {
            return Err(LineError::LineBreak);
        }
        if special.contains(&c) {
            out.write_char('\\')?;
        }
        out.write_char(c)?;
    }
    Ok(())
}

fn write_value<W: Write>(out: &mut W, v: &FieldValue<'_>) -> Result<(), LineError> {
    match *v {
        FieldValue::F64(f) if f.is_finite() => go_float(out, f),
        FieldValue::F32(f) if f.is_finite() => go_float(out, f),
        FieldValue::F64(_) | FieldValue::F32(_) => Err(LineError::NotFinite),
        FieldValue::Int(i) => Ok(write!(out, "{i}i")?),
        FieldValue::Bool(b) => Ok(write!(out, "{b}")?),
        FieldValue::Str(s) => {
            out.write_char('"')?;
            for c in s.chars() {
                if c == '"' || c == '\\' {
                    out.write_char('\\')?;
                }
                out.write_char(c)?;
            }
            Ok(out.write_char('"')?)
        }
    }
}

/// Go's `strconv.FormatFloat(f, 'g', -1, ..)`: shortest round-trip digits, exponent form when the
/// decimal exponent is < -4 or >= 6 (Go's rule for `%g` at shortest precision).
fn go_float<W: Write, F: Display + LowerExp>(out: &mut W, f: F) -> Result<(), LineError> {
    let mut sci: heapless::String<40> = heapless::String::new();
    write!(sci, "{f:e}")?;
    let (mantissa, exp) = sci.split_once('e').ok_or(LineError::Fmt)?;
    let exp: i32 = exp.parse().map_err(|_| LineError::Fmt)?;
    if (-4..6).contains(&exp) {
        Ok(write!(out, "{f}")?)
    } else {
        let sign = if exp < 0 { '-' } else { '+' };
        Ok(write!(out, "{mantissa}e{sign}{:02}", exp.unsigned_abs())?)
    }
}

/// Most fields any reading produces.
const FIELDS_MAX: usize = 20;

/// Writes `reading` as one point (no trailing newline) with timestamp `ts_ms`: the device's UTC
/// time when synchronised, otherwise the time the daemon received it.
pub fn write_reading<W: Write>(
    out: &mut W,
    reading: &Reading,
    extra_tags: &[(&str, &str)],
    ts_ms: i64,
) -> Result<(), LineError> {
    write_reading_with(out, reading, extra_tags, &[], ts_ms)
}

/// [`write_reading`] with extra fields after the reading's own (e.g. a flag set by the receiver).
pub fn write_reading_with<W: Write>(
    out: &mut W,
    reading: &Reading,
    extra_tags: &[(&str, &str)],
    extra_fields: &[(&str, FieldValue<'_>)],
    ts_ms: i64,
) -> Result<(), LineError> {
    use FieldValue::*;
    let h = &reading.header;
    let mut fields: heapless::Vec<(&str, FieldValue<'_>), FIELDS_MAX> = heapless::Vec::new();
    let mut band = "";
    {
        let mut add = |k, v| fields.push((k, v)).map_err(|_| LineError::TooMany);
        match &reading.body {
            Body::Noise(n) => {
                add("laeq_db", F32(n.laeq_db))?;
                add("lafmax_db", F32(n.lafmax_db))?;
                for (k, v) in [("lcpeak_db", n.lcpeak_db), ("l10_db", n.l10_db), ("l90_db", n.l90_db)] {
                    if let Some(v) = v {
                        add(k, F32(v))?;
                    }
                }
                add("overload", Bool(n.overload))?;
                add("under_range", Bool(n.under_range))?;
                add("interval_ms", Int(n.interval_ms.into()))?;
            }
            Body::HeartRate(b) => {
                band = b.band.as_str();
                add("bpm", Int(b.bpm.into()))?;
                add("contact", Str(contact_str(b.contact)))?;
                add("worn", Bool(b.contact != Contact::NotDetected))?;
                if let Some(rr) = b.rr_1024.last() {
                    add("rr_last_ms", F32(crate::hrs::rr_ms(*rr)))?;
                }
                if let Some(e) = b.energy_kj {
                    add("energy_kj", Int(e.into()))?;
                }
                if let Some(p) = b.battery_pct {
                    add("battery_pct", Int(p.into()))?;
                }
            }
            Body::Deform(d) | Body::Rain(d) => {
                for c in &d.channels {
                    add(c.kind.as_str(), F64(c.value))?;
                }
            }
            Body::Status(s) => {
                add("online", Bool(s.state == DeviceState::Online))?;
                add("firmware", Str(&s.firmware))?;
                add("dropped", Int(s.dropped.into()))?;
                if !s.slot.is_empty() {
                    add("slot", Str(&s.slot))?;
                }
            }
        }
        add("boot_id", Int(h.boot_id.into()))?;
        add("seq", Int(h.seq.into()))?;
        add("historical", Bool(h.historical))?;
        for (k, v) in extra_fields {
            add(k, *v)?;
        }
    }
    let mut tags: heapless::Vec<(&str, &str), 12> = heapless::Vec::new();
    for t in
        [("band", band), ("device", h.device.as_str()), ("site", h.site.as_str())].iter().chain(extra_tags)
    {
        tags.push(*t).map_err(|_| LineError::TooMany)?;
    }
    write_point(out, reading.body.stream().as_str(), &tags, &fields, ts_ms)
}

fn contact_str(c: Contact) -> &'static str {
    match c {
        Contact::Detected => "detected",
        Contact::NotDetected => "not_detected",
        Contact::Unsupported => "unsupported",
    }
}

#[cfg(test)]
#[path = "line_protocol_tests.rs"]
mod tests;
