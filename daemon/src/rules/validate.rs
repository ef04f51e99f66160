//! Checks that a rule definition can work, before it runs.

use super::condition;
use super::config::{Condition, RuleConfig};
use super::engine::RuleError;
use gridsentry_sensors::Stream;

pub(crate) fn validate(c: &RuleConfig) -> Result<(), RuleError> {
    let err = |m: &str| Err(RuleError { rule: c.id.clone(), message: m.into() });
    if c.id.is_empty() || c.id.contains(['|', '/']) {
        return err("id must be non-empty and hold no `|` or `/`");
    }
    if c.flap.is_some_and(|f| f.transitions < 2 || f.window_s == 0) {
        return err("flap needs transitions >= 2 and window_s > 0");
    }
    match &c.condition {
        Condition::Threshold(t) => {
            if t.above.is_some() == t.below.is_some() {
                return err("threshold needs exactly one of `above` and `below`");
            }
            if !condition::known_field(t.stream, &t.field) {
                return err(&format!("stream {} has no field `{}`", t.stream, t.field));
            }
            let limit = t.above.or(t.below).unwrap_or_default();
            let wrong_side = |lim: f64, clear: f64| if t.above.is_some() { clear > lim } else { clear < lim };
            if wrong_side(limit, t.clear) {
                return err("`clear` must be on the safe side of the limit (hysteresis)");
            }
            if let Some(n) = &t.night {
                if condition::parse_hhmm(&n.from).is_none() || condition::parse_hhmm(&n.to).is_none() {
                    return err("night `from`/`to` must be HH:MM");
                }
                if wrong_side(n.limit, n.clear) {
                    return err("night `clear` must be on the safe side of the night limit");
                }
            }
        }
        Condition::HrDrop(d) => {
            if d.drop_pct.is_none() && d.drop_bpm.is_none() {
                return err("hr_drop needs `drop_pct` or `drop_bpm`");
            }
            if d.window_s == 0 {
                return err("hr_drop needs window_s > 0");
            }
        }
        Condition::HrLow(l) if l.clear_bpm.is_some_and(|c| c < l.below_bpm) => {
            return err("`clear_bpm` must be at least `below_bpm`");
        }
        Condition::NoData(n) if n.silent_s == 0 || n.stream == Stream::Status => {
            return err("no_data needs silent_s > 0 and a data stream");
        }
        Condition::TangentAngle(t) => {
            if !condition::known_field(Stream::Deform, &t.field)
                || ["rain_cum_mm", "temp_c"].contains(&t.field.as_str())
            {
                return err(&format!("deform stream has no displacement field `{}`", t.field));
            }
            let positive = |v: f64| v.is_finite() && v > 0.0;
            if !t.creep_mm_per_day.is_none_or(positive) || !positive(t.min_creep_mm_per_day) {
                return err("creep_mm_per_day and min_creep_mm_per_day must be > 0");
            }
            if t.velocity_window_s == 0 || (t.creep_mm_per_day.is_none() && t.baseline_s == 0) {
                return err("velocity_window_s (and baseline_s without creep_mm_per_day) must be > 0");
            }
            if !t.levels_deg.windows(2).all(|w| w[0] < w[1])
                || t.levels_deg[0] <= 0.0
                || t.levels_deg[3] >= 90.0
            {
                return err("levels_deg must rise strictly within (0, 90)");
            }
            if t.hold[0] == 0 || t.hold[0] > t.hold[1] {
                return err("hold = [k, n] needs 1 <= k <= n");
            }
            if t.forecast_min_points < 3 {
                return err("forecast_min_points must be at least 3");
            }
        }
        Condition::Rainfall(r) if r.window_s == 0 || !(0.0..=r.above_mm).contains(&r.clear_mm) => {
            return err("rainfall needs window_s > 0 and 0 <= clear_mm <= above_mm");
        }
        _ => {}
    }
    Ok(())
}
