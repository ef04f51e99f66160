//! Each condition kind in one place: which readings it looks at, whom it is keyed by, its
//! timing, how it is described and checked, and what it makes of a reading.
//!
//! Why one home: a new kind (or a change to one) is one `match` arm per method here, and the
//! compiler lists every method that lacks it (no `_ =>` arms over [`Condition`]). The engine
//! and the shared bookkeeping only call these methods.

use super::condition::{self, Signal};
use super::config::Condition;
use super::landslide;
use super::state::SubjectState;
use gridsentry_sensors::{Body, Contact, Reading, Stream};
use jiff::tz::TimeZone;

impl Condition {
    /// Whether readings of `stream` concern this condition.
    pub fn applies_to(&self, stream: Stream) -> bool {
        match self {
            Condition::Threshold(t) => t.stream == stream,
            Condition::HrDrop(_) | Condition::HrLow(_) | Condition::BandRemoved(_) => stream == Stream::Hr,
            Condition::NoData(n) => n.stream == stream || stream == Stream::Status,
            Condition::TangentAngle(_) => stream == Stream::Deform,
            Condition::Rainfall(_) => stream == Stream::Rain,
        }
    }

    /// Keyed by wristband (one subject per band behind a gateway) rather than by device.
    pub fn keyed_by_band(&self) -> bool {
        match self {
            // A threshold on `bpm` is about a person; on other streams there is no band.
            Condition::Threshold(_)
            | Condition::HrDrop(_)
            | Condition::HrLow(_)
            | Condition::BandRemoved(_) => true,
            Condition::NoData(_) | Condition::TangentAngle(_) | Condition::Rainfall(_) => false,
        }
    }

    /// `(for_s, clear_for_s)`: how long the raise and the clear condition must hold.
    pub fn timing(&self) -> (u64, u64) {
        match self {
            Condition::Threshold(t) => (t.for_s, t.clear_for_s),
            Condition::HrDrop(d) => (0, d.clear_for_s),
            Condition::HrLow(l) => (l.for_s, l.clear_for_s),
            Condition::BandRemoved(b) => (b.for_s, 0),
            Condition::NoData(_) | Condition::TangentAngle(_) => (0, 0),
            Condition::Rainfall(r) => (0, r.clear_for_s),
        }
    }

    /// A raise, for people.
    pub fn describe(&self, value: Option<f64>, flapping: bool) -> super::Said {
        super::say::describe(self, value, flapping)
    }

    /// Whether the definition can work (the rule-wide checks are in `validate`).
    pub fn check(&self) -> Result<(), String> {
        let fail = |m: &str| Err(m.to_string());
        match self {
            Condition::Threshold(t) => {
                if t.above.is_some() == t.below.is_some() {
                    return fail("threshold needs exactly one of `above` and `below`");
                }
                if !condition::known_field(t.stream, &t.field) {
                    return fail(&format!("stream {} has no field `{}`", t.stream, t.field));
                }
                let limit = t.above.or(t.below).unwrap_or_default();
                let wrong_side =
                    |lim: f64, clear: f64| if t.above.is_some() { clear > lim } else { clear < lim };
                if wrong_side(limit, t.clear) {
                    return fail("`clear` must be on the safe side of the limit (hysteresis)");
                }
                if let Some(n) = &t.night {
                    if condition::parse_hhmm(&n.from).is_none() || condition::parse_hhmm(&n.to).is_none() {
                        return fail("night `from`/`to` must be HH:MM");
                    }
                    if wrong_side(n.limit, n.clear) {
                        return fail("night `clear` must be on the safe side of the night limit");
                    }
                }
                Ok(())
            }
            Condition::HrDrop(d) => {
                if d.drop_pct.is_none() && d.drop_bpm.is_none() {
                    return fail("hr_drop needs `drop_pct` or `drop_bpm`");
                }
                if d.window_s == 0 {
                    return fail("hr_drop needs window_s > 0");
                }
                Ok(())
            }
            Condition::HrLow(l) if l.clear_bpm.is_some_and(|c| c < l.below_bpm) => {
                fail("`clear_bpm` must be at least `below_bpm`")
            }
            Condition::HrLow(_) | Condition::BandRemoved(_) => Ok(()),
            Condition::NoData(n) if n.silent_s == 0 || n.stream == Stream::Status => {
                fail("no_data needs silent_s > 0 and a data stream")
            }
            Condition::NoData(_) => Ok(()),
            Condition::TangentAngle(t) => landslide::check_tangent(t),
            Condition::Rainfall(r) if r.window_s == 0 || !(0.0..=r.above_mm).contains(&r.clear_mm) => {
                fail("rainfall needs window_s > 0 and 0 <= clear_mm <= above_mm")
            }
            Condition::Rainfall(_) => Ok(()),
        }
    }

    /// What the condition makes of reading `r` at event time `at`; `None` when the reading
    /// carries nothing for it. No-data and tangent-angle rules are driven elsewhere (receive
    /// times, and the whole site's slope state).
    pub(crate) fn signal(
        &self,
        st: &mut SubjectState,
        r: &Reading,
        at: u64,
        tz: &TimeZone,
    ) -> Option<Signal> {
        let hr = match &r.body {
            Body::HeartRate(h) => Some(h),
            Body::Noise(_) | Body::Deform(_) | Body::Rain(_) | Body::Status(_) => None,
        };
        match self {
            Condition::Threshold(t) => condition::threshold(t, r, at, tz),
            Condition::HrDrop(d) => Some(condition::hr_drop(d, st, hr?, at)),
            Condition::HrLow(l) => {
                let h = hr?;
                let worn = condition::worn(h);
                let clear = l.clear_bpm.unwrap_or(l.below_bpm.saturating_add(5));
                Some(Signal {
                    trigger: worn && h.bpm < l.below_bpm,
                    release: worn && h.bpm >= clear,
                    value: Some(h.bpm.into()),
                })
            }
            Condition::BandRemoved(_) => {
                let off = hr?.contact == Contact::NotDetected;
                Some(Signal { trigger: off, release: !off, value: None })
            }
            Condition::Rainfall(c) => landslide::rainfall(c, st, r, at),
            Condition::NoData(_) | Condition::TangentAngle(_) => None,
        }
    }
}
