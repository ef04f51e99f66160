//! Deformation channels (landslide stations, rain gauges).
//!
//! A report is a small set of unit-suffixed channels rather than one struct per instrument,
//! because a station mixes instruments (GNSS + inclinometer + rain gauge) and Modbus maps decide
//! which channels exist. On the wire the channels are a map `{"disp_mm": 12.5, "temp_c": 18.0}`:
//! readable in JSON and compact in postcard (kind index + f64).

use crate::error::{FieldError, Reason};
use core::fmt;
use serde::{de, ser::SerializeMap, Deserialize, Deserializer, Serialize, Serializer};

/// Most channels one deformation report carries (one per kind).
pub const CHANNELS_MAX: usize = 9;

/// A deformation channel kind; the unit is part of the name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ChannelKind {
    /// Displacement along the instrument's axis (wire extensometer), mm.
    #[serde(rename = "disp_mm")]
    DisplacementMm,
    /// GNSS displacement east, mm.
    #[serde(rename = "disp_e_mm")]
    DisplacementEastMm,
    /// GNSS displacement north, mm.
    #[serde(rename = "disp_n_mm")]
    DisplacementNorthMm,
    /// GNSS displacement up, mm.
    #[serde(rename = "disp_u_mm")]
    DisplacementUpMm,
    /// Tilt about X, degrees.
    #[serde(rename = "tilt_x_deg")]
    TiltXDeg,
    /// Tilt about Y, degrees.
    #[serde(rename = "tilt_y_deg")]
    TiltYDeg,
    /// Crack width, mm.
    #[serde(rename = "crack_mm")]
    CrackMm,
    /// Cumulative rainfall, mm.
    #[serde(rename = "rain_cum_mm")]
    RainCumulativeMm,
    /// Temperature, °C.
    #[serde(rename = "temp_c")]
    TemperatureC,
}

impl ChannelKind {
    /// Every kind.
    pub const ALL: [ChannelKind; 9] = [
        ChannelKind::DisplacementMm,
        ChannelKind::DisplacementEastMm,
        ChannelKind::DisplacementNorthMm,
        ChannelKind::DisplacementUpMm,
        ChannelKind::TiltXDeg,
        ChannelKind::TiltYDeg,
        ChannelKind::CrackMm,
        ChannelKind::RainCumulativeMm,
        ChannelKind::TemperatureC,
    ];

    /// The wire / field name (unit-suffixed).
    pub const fn as_str(self) -> &'static str {
        match self {
            ChannelKind::DisplacementMm => "disp_mm",
            ChannelKind::DisplacementEastMm => "disp_e_mm",
            ChannelKind::DisplacementNorthMm => "disp_n_mm",
            ChannelKind::DisplacementUpMm => "disp_u_mm",
            ChannelKind::TiltXDeg => "tilt_x_deg",
            ChannelKind::TiltYDeg => "tilt_y_deg",
            ChannelKind::CrackMm => "crack_mm",
            ChannelKind::RainCumulativeMm => "rain_cum_mm",
            ChannelKind::TemperatureC => "temp_c",
        }
    }
}

/// One measured channel.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Channel {
    /// What it is (and its unit).
    pub kind: ChannelKind,
    /// The value in the kind's unit.
    pub value: f64,
}

/// Channels of a landslide station (or a rain gauge).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DeformReport {
    /// One entry per kind, at most once each.
    pub channels: heapless::Vec<Channel, CHANNELS_MAX>,
}

impl DeformReport {
    /// The value of channel `kind`, if present.
    pub fn get(&self, kind: ChannelKind) -> Option<f64> {
        self.channels.iter().find(|c| c.kind == kind).map(|c| c.value)
    }

    /// Adds a channel; `Err` if the kind is already present or the report is full.
    pub fn push(&mut self, kind: ChannelKind, value: f64) -> Result<(), FieldError> {
        if self.get(kind).is_some() {
            return Err(FieldError::new(kind.as_str(), Reason::Duplicate));
        }
        self.channels
            .push(Channel { kind, value })
            .map_err(|_| FieldError::new(kind.as_str(), Reason::TooMany))
    }

    /// Non-empty, finite, each kind at most once.
    pub fn validate(&self, field: &'static str) -> Result<(), FieldError> {
        if self.channels.is_empty() {
            return Err(FieldError::new(field, Reason::Missing));
        }
        for (i, c) in self.channels.iter().enumerate() {
            if !c.value.is_finite() {
                return Err(FieldError::new(c.kind.as_str(), Reason::NotFinite));
            }
            if self.channels[..i].iter().any(|p| p.kind == c.kind) {
                return Err(FieldError::new(c.kind.as_str(), Reason::Duplicate));
            }
        }
        Ok(())
    }
}

impl Serialize for DeformReport {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let text = s.is_human_readable();
        let mut m = s.serialize_map(Some(self.channels.len()))?;
        // Text formats get the name as a string key (serde-json-core cannot write enum keys);
        // binary formats get the variant index.
        for c in &self.channels {
            if text {
                m.serialize_entry(c.kind.as_str(), &c.value)?;
            } else {
                m.serialize_entry(&c.kind, &c.value)?;
            }
        }
        m.end()
    }
}

impl<'de> Deserialize<'de> for DeformReport {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V {
            text: bool,
        }
        impl<'de> de::Visitor<'de> for V {
            type Value = DeformReport;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map of channel name to number")
            }
            fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<DeformReport, A::Error> {
                let mut out = DeformReport::default();
                loop {
                    // serde-json-core can only read map keys as strings: text formats get the
                    // name, binary formats the variant index.
                    let kind = match self.text {
                        true => map.next_key::<ChannelName>()?.map(|n| n.0),
                        false => map.next_key::<ChannelKind>()?,
                    };
                    let Some(kind) = kind else { return Ok(out) };
                    let value: f64 = map.next_value()?;
                    if out.get(kind).is_some() {
                        return Err(de::Error::custom("duplicate channel"));
                    }
                    if out.channels.push(Channel { kind, value }).is_err() {
                        return Err(de::Error::invalid_length(CHANNELS_MAX + 1, &self));
                    }
                }
            }
        }
        let text = d.is_human_readable();
        d.deserialize_map(V { text })
    }
}

/// A channel kind read from its name (JSON map keys).
struct ChannelName(ChannelKind);

impl<'de> Deserialize<'de> for ChannelName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl de::Visitor<'_> for V {
            type Value = ChannelName;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a channel name such as disp_mm or temp_c")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ChannelName, E> {
                ChannelKind::ALL
                    .into_iter()
                    .find(|k| k.as_str() == v)
                    .map(ChannelName)
                    .ok_or_else(|| E::custom("unknown variant: not a channel name"))
            }
        }
        d.deserialize_str(V)
    }
}
