//! What each condition kind makes of one reading: a trigger / release signal and the value.

use super::config::{HrDrop, Night, Threshold};
use super::state::SubjectState;
use super::MS;
use gridsentry_sensors::{Body, Contact, HeartRateReport, Reading};
use jiff::tz::TimeZone;

/// A condition's verdict on one reading.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Signal {
    /// The raise condition holds.
    pub trigger: bool,
    /// The clear condition holds.
    pub release: bool,
    /// The value looked at.
    pub value: Option<f64>,
}

/// The noise report's levels a rule may name.
const NOISE_FIELDS: [&str; 5] = ["laeq_db", "lafmax_db", "l10_db", "l90_db", "lcpeak_db"];

/// A value of `field` in `body`, if the body has it (a heart rate only while the band is worn).
pub(crate) fn field_value(body: &Body, field: &str) -> Option<f64> {
    match body {
        Body::Noise(n) => {
            let levels = [Some(n.laeq_db), Some(n.lafmax_db), n.l10_db, n.l90_db, n.lcpeak_db];
            NOISE_FIELDS.iter().position(|&f| f == field).and_then(|i| levels[i]).map(f64::from)
        }
        Body::HeartRate(h) => (field == "bpm" && worn(h)).then(|| h.bpm.into()),
        Body::Deform(d) | Body::Rain(d) => {
            d.channels.iter().find(|c| c.kind.as_str() == field).map(|c| c.value)
        }
        Body::Status(_) => None,
    }
}

/// Fields a threshold may name, per stream.
pub(crate) fn known_field(stream: gridsentry_sensors::Stream, field: &str) -> bool {
    use gridsentry_sensors::{ChannelKind, Stream};
    match stream {
        Stream::Noise => NOISE_FIELDS.contains(&field),
        Stream::Hr => field == "bpm",
        Stream::Deform | Stream::Rain => ChannelKind::ALL.iter().any(|k| k.as_str() == field),
        Stream::Status => false,
    }
}

/// On the wrist: contact detected, or a band without contact sensing that reports a rate.
/// A band that says "not detected" is off the wrist whatever rate it sends.
pub(crate) fn worn(h: &HeartRateReport) -> bool {
    match h.contact {
        Contact::Detected => true,
        Contact::Unsupported => h.bpm > 0,
        Contact::NotDetected => false,
    }
}

/// Evaluates a threshold (with its night schedule) at event time `at`.
pub(crate) fn threshold(t: &Threshold, r: &Reading, at: u64, tz: &TimeZone) -> Option<Signal> {
    let value = field_value(&r.body, &t.field)?;
    let (limit, clear) = match &t.night {
        Some(n) if is_night(n, at, tz) => (n.limit, n.clear),
        _ => (t.above.or(t.below).unwrap_or(f64::NAN), t.clear),
    };
    let signal = match t.above.is_some() {
        true => Signal { trigger: value > limit, release: value < clear, value: Some(value) },
        false => Signal { trigger: value < limit, release: value > clear, value: Some(value) },
    };
    Some(signal)
}

/// Minutes after local midnight for `HH:MM`.
pub(crate) fn parse_hhmm(s: &str) -> Option<u32> {
    let (h, m) = s.split_once(':')?;
    let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    (h < 24 && m < 60 && s.len() == 5).then_some(h * 60 + m)
}

/// Minutes after local midnight in `tz` at `at` (UTC ms).
pub(crate) fn minute_of_day(at: u64, tz: &TimeZone) -> Option<u32> {
    let local = tz.to_datetime(jiff::Timestamp::from_millisecond(at as i64).ok()?);
    Some(local.hour() as u32 * 60 + local.minute() as u32)
}

fn is_night(n: &Night, at: u64, tz: &TimeZone) -> bool {
    let (Some(from), Some(to)) = (parse_hhmm(&n.from), parse_hhmm(&n.to)) else { return false };
    let Some(minute) = minute_of_day(at, tz) else { return false };
    match from <= to {
        true => (from..to).contains(&minute),
        false => minute >= from || minute < to,
    }
}

/// Heart-rate drop: fall from the window's highest rate, only while worn.
pub(crate) fn hr_drop(d: &HrDrop, st: &mut SubjectState, h: &HeartRateReport, at: u64) -> Signal {
    let horizon = at.saturating_sub(d.window_s * MS);
    let window = st.kind.hr_window();
    while window.front().is_some_and(|&(t, _)| t < horizon) {
        window.pop_front();
    }
    if !worn(h) {
        // Off the wrist: neither raise nor clear, and forget the window (a rate from before
        // the band came off is no baseline for one after).
        window.clear();
        return Signal { trigger: false, release: false, value: None };
    }
    let peak = window.iter().map(|&(_, b)| b).max().unwrap_or(h.bpm);
    const WINDOW_MAX: usize = 512;
    if window.len() == WINDOW_MAX {
        window.pop_front();
    }
    window.push_back((at, h.bpm));
    let fall = f64::from(peak.saturating_sub(h.bpm));
    let pct_hit = d.drop_pct.is_some_and(|p| peak > 0 && fall * 100.0 / f64::from(peak) >= p);
    let bpm_hit = d.drop_bpm.is_some_and(|b| fall >= f64::from(b) && b > 0);
    let trigger = pct_hit || bpm_hit;
    Signal { trigger, release: !trigger, value: Some(h.bpm.into()) }
}
