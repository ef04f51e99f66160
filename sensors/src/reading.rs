//! Reading types for the three device families plus device status.
//!
//! A [`Reading`] is what one device said at one moment: a [`Header`] (who, which boot, which
//! sequence number, when) and a [`Body`] that matches the topic's stream one to one. The types
//! are fixed-size (heapless) so firmware can build them without an allocator, and
//! [`Reading::validate`] holds the invariants that both codecs check on encode and decode.

use crate::channels::{ChannelKind, DeformReport};
use crate::error::{FieldError, Reason};
use crate::id::Id;
use crate::topic::{Stream, Topic};
use serde::{Deserialize, Serialize};

/// Most RR intervals one heart-rate report carries (a 1 s report holds 1–4 at rest).
pub const RR_MAX: usize = 16;
/// Longest firmware version string in a status report.
pub const FIRMWARE_MAX: usize = 24;

/// One report from one device.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reading {
    /// Who, which boot, which sequence number, when.
    pub header: Header,
    /// What was measured.
    pub body: Body,
}

/// What every reading carries besides its measurement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Header {
    /// Site id; must equal the topic's site level.
    pub site: Id,
    /// Device id; must equal the topic's device level.
    pub device: Id,
    /// Random per boot: a new boot id restarts the sequence.
    pub boot_id: u32,
    /// Per-boot sequence number, +1 per reading: gaps and replays are detectable.
    pub seq: u32,
    /// When it was measured.
    pub time: Timestamp,
    /// Sent late from the device's store-and-forward buffer (backfill).
    pub historical: bool,
}

/// When a reading was measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Timestamp {
    /// Device clock synchronised: UTC milliseconds since the Unix epoch.
    Utc(u64),
    /// No synchronised clock yet: milliseconds since this boot (orders only within a boot).
    Unsynced(u64),
}

/// The measurement; its variant decides the topic stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Body {
    /// Plaza noise box report.
    Noise(NoiseReport),
    /// Wristband heart-rate report.
    HeartRate(HeartRateReport),
    /// Landslide deformation channels.
    Deform(DeformReport),
    /// Rain gauge (must hold a `rain_cum_mm` channel).
    Rain(DeformReport),
    /// Birth / last-will status.
    Status(StatusReport),
}

/// A-weighted levels over one report interval, calibration offset already applied.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct NoiseReport {
    /// Report interval (the T of LAeq,T) in ms.
    pub interval_ms: u32,
    /// LAeq over the interval, dB(A).
    pub laeq_db: f32,
    /// Maximum Fast-weighted level, dB(A).
    pub lafmax_db: f32,
    /// C-weighted peak, dB(C), if the box measures it.
    #[serde(default)]
    pub lcpeak_db: Option<f32>,
    /// Level exceeded 10 % of the window, if configured.
    #[serde(default)]
    pub l10_db: Option<f32>,
    /// Level exceeded 90 % of the window, if configured.
    #[serde(default)]
    pub l90_db: Option<f32>,
    /// The input clipped during the interval: levels are a lower bound (absent: false).
    #[serde(default)]
    pub overload: bool,
    /// Below the microphone's noise floor: levels are an upper bound (absent: false).
    #[serde(default)]
    pub under_range: bool,
    /// Calibration offset that was applied, dB (absent: 0).
    #[serde(default)]
    pub cal_offset_db: f32,
}

impl NoiseReport {
    /// A 1 s report with these levels: no C peak or percentiles, no flags, no calibration offset.
    pub fn levels(laeq_db: f32, lafmax_db: f32) -> NoiseReport {
        NoiseReport {
            interval_ms: 1000,
            laeq_db,
            lafmax_db,
            lcpeak_db: None,
            l10_db: None,
            l90_db: None,
            overload: false,
            under_range: false,
            cal_offset_db: 0.0,
        }
    }
}

/// Whether the band is on the wrist (BLE HRS sensor-contact bits).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Contact {
    /// On the wrist: heart rate is meaningful.
    Detected,
    /// Off the wrist: the band was removed, the heart rate is not a measurement.
    NotDetected,
    /// The band cannot tell.
    Unsupported,
}

/// One heart-rate report from one band.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HeartRateReport {
    /// The wristband (e.g. its BLE address as 12 hex digits).
    pub band: Id,
    /// Heart rate, beats per minute.
    pub bpm: u16,
    /// Skin contact.
    pub contact: Contact,
    /// RR intervals in units of 1/1024 s, oldest first (absent: none).
    #[serde(default)]
    pub rr_1024: heapless::Vec<u16, RR_MAX>,
    /// Energy expended since the band's last reset, kJ.
    #[serde(default)]
    pub energy_kj: Option<u16>,
    /// Battery level, percent.
    #[serde(default)]
    pub battery_pct: Option<u8>,
}

/// Whether the device is up (birth) or gone (last will).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeviceState {
    /// Birth message after connecting.
    Online,
    /// Last will, published by the broker when the device vanished.
    Offline,
}

/// Birth / last-will status (retained).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusReport {
    /// Online (birth) or offline (last will).
    pub state: DeviceState,
    /// Firmware version.
    pub firmware: heapless::String<FIRMWARE_MAX>,
    /// Readings the device's outbox dropped (full) since its last status.
    pub dropped: u32,
    /// The flash slot the firmware runs from (`active` on the RP2040, `ota_0`/`ota_1` on the
    /// ESP32-C3); empty where a device does not say. JSON without it (older firmware) reads as
    /// empty; binary status messages carry it always.
    #[serde(default)]
    pub slot: heapless::String<SLOT_MAX>,
}

/// Longest slot name in a status message.
pub const SLOT_MAX: usize = 8;

impl Body {
    /// The topic stream this body belongs on.
    pub const fn stream(&self) -> Stream {
        match self {
            Body::Noise(_) => Stream::Noise,
            Body::HeartRate(_) => Stream::Hr,
            Body::Deform(_) => Stream::Deform,
            Body::Rain(_) => Stream::Rain,
            Body::Status(_) => Stream::Status,
        }
    }
}

impl Reading {
    /// The device's UTC time in ms, if its clock was synchronised.
    pub fn utc_ms(&self) -> Option<u64> {
        match self.header.time {
            Timestamp::Utc(ms) => Some(ms),
            Timestamp::Unsynced(_) => None,
        }
    }

    /// Checks that the reading belongs on `topic`: same site and device, body of the topic's
    /// stream. A payload on someone else's topic is rejected, never filed under either device.
    pub fn check_topic(&self, topic: &Topic) -> Result<(), FieldError> {
        let conflict = |field, detail| Err(FieldError::new(field, Reason::Conflict).with_detail(detail));
        if self.header.site != topic.site {
            return conflict("site", "differs from the topic's site");
        }
        if self.header.device != topic.device {
            return conflict("dev", "differs from the topic's device");
        }
        if self.body.stream() != topic.stream {
            return conflict("body", "does not match the topic's stream");
        }
        Ok(())
    }

    /// Checks the invariants both codecs rely on (finite values, plausible ranges, no
    /// duplicate channels). Called on every encode and decode.
    pub fn validate(&self) -> Result<(), FieldError> {
        match &self.body {
            Body::Noise(n) => validate_noise(n),
            Body::HeartRate(h) => validate_hr(h),
            Body::Deform(d) => d.validate("deform"),
            Body::Rain(d) => {
                d.validate("rain")?;
                match d.get(ChannelKind::RainCumulativeMm) {
                    Some(_) => Ok(()),
                    None => Err(FieldError::new("rain.rain_cum_mm", Reason::Missing)),
                }
            }
            Body::Status(_) => Ok(()),
        }
    }
}

/// Lowest and highest plausible sound level, dB.
const DB_RANGE: (f32, f32) = (-50.0, 200.0);

fn check_db(field: &'static str, v: f32) -> Result<(), FieldError> {
    if !v.is_finite() {
        return Err(FieldError::new(field, Reason::NotFinite));
    }
    if !(DB_RANGE.0..=DB_RANGE.1).contains(&v) {
        return Err(FieldError::new(field, Reason::OutOfRange));
    }
    Ok(())
}

fn validate_noise(n: &NoiseReport) -> Result<(), FieldError> {
    if n.interval_ms == 0 {
        return Err(FieldError::new("noise.interval_ms", Reason::OutOfRange));
    }
    check_db("noise.laeq_db", n.laeq_db)?;
    check_db("noise.lafmax_db", n.lafmax_db)?;
    let optional = [("noise.lcpeak_db", n.lcpeak_db), ("noise.l10_db", n.l10_db), ("noise.l90_db", n.l90_db)];
    for (field, v) in optional {
        if let Some(v) = v {
            check_db(field, v)?;
        }
    }
    if !n.cal_offset_db.is_finite() || n.cal_offset_db.abs() > 60.0 {
        return Err(FieldError::new("noise.cal_offset_db", Reason::OutOfRange));
    }
    Ok(())
}

/// Highest plausible heart rate, bpm.
pub const BPM_MAX: u16 = 300;

fn validate_hr(h: &HeartRateReport) -> Result<(), FieldError> {
    if h.bpm > BPM_MAX {
        return Err(FieldError::new("hr.bpm", Reason::OutOfRange));
    }
    if matches!(h.battery_pct, Some(b) if b > 100) {
        return Err(FieldError::new("hr.battery_pct", Reason::OutOfRange));
    }
    Ok(())
}
