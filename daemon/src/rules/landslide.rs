//! Landslide rules: tangent-angle levels with a failure forecast, and windowed rainfall.
//!
//! Why the tangent-angle rule does its own bookkeeping instead of the shared debounce: it has
//! four levels, not an on/off condition. Each reading is one evaluation (a level from the
//! angle); the level that holds is the highest one seen (or exceeded) in `hold[0]` of the last
//! `hold[1]` evaluations, so one noisy GNSS epoch neither raises nor clears. Rising levels open
//! or escalate the order; falling back to nothing clears it (red stays latched in the store).
//!
//! Corroboration: red needs `corroborate` stations of the same site at orange or above. Until
//! then the order stays orange with the reason in its summary, and it goes red the moment a
//! second station confirms — a red is delayed by corroboration, never dropped.

use super::bookkeeping::Ctx;
use super::condition::{field_value, Signal};
use super::config::{Colour, Rainfall, TangentAngle};
use super::say;
use super::slope::{self, Forecast, DAY_MS};
use super::state::{Subject, SubjectState};
use super::{Event, EventKind, MS};
use gridsentry_sensors::{Body, ChannelKind, Reading};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, VecDeque};

/// What a tangent-angle rule remembers about one station.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SlopeState {
    /// `(event ms, displacement)` within the velocity window.
    pub points: VecDeque<(u64, f64)>,
    /// Running least-squares sums while v_c is being learnt.
    pub baseline: Option<Baseline>,
    /// v_c learnt from the baseline window, mm/day.
    pub creep: Option<f64>,
    /// Levels of the last evaluations (0 none, 1 blue .. 4 red), newest last.
    pub recent: VecDeque<u8>,
    /// The level that holds (before corroboration).
    pub held: u8,
    /// Held red, shown as orange until other stations corroborate.
    pub capped: bool,
    /// `(event ms, 1/v in day/mm)` since acceleration began.
    pub inverse: VecDeque<(u64, f64)>,
    /// The forecast last put on the order.
    pub forecast: Option<Forecast>,
    /// Last angle, degrees, and smoothed velocity, mm/day (for summaries and the console).
    pub angle: f64,
    /// Last smoothed velocity, mm/day.
    pub velocity: f64,
}

/// Points kept for learning v_c at most; beyond, every other one is dropped and only every
/// `stride`-th new one kept (the baseline stays evenly sampled over its whole span).
pub const BASELINE_MAX: usize = 256;

/// The displacement seen while v_c is learnt: `(days since t_first, mm)`, evenly thinned.
///
/// Why Theil–Sen: v_c is the slope's long-term creep rate. A least-squares line through a
/// baseline with a seasonal burst (or one bad epoch) is pulled by it; the median of the slopes
/// between every pair of points is not (it tolerates up to 29 % of outlying points), so a short
/// quiet window does not teach a v_c so low that the first autumn reads as failure.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Baseline {
    t_first: u64,
    #[serde(default)]
    points: Vec<(f64, f64)>,
    /// Readings seen (every `stride`-th is kept).
    #[serde(default)]
    seen: u32,
    #[serde(default)]
    stride: u32,
}

impl Baseline {
    fn add(&mut self, t: u64, y: f64) {
        let stride = self.stride.max(1);
        if self.seen.is_multiple_of(stride) {
            if self.points.len() == BASELINE_MAX {
                let kept: Vec<(f64, f64)> = self.points.iter().copied().step_by(2).collect();
                self.points = kept;
                self.stride = stride * 2;
            }
            if self.seen.is_multiple_of(self.stride.max(1)) {
                self.points.push((t.saturating_sub(self.t_first) as f64 / DAY_MS, y));
            }
        }
        self.seen = self.seen.saturating_add(1);
    }

    /// Readings seen.
    pub fn seen(&self) -> u32 {
        self.seen
    }

    /// Days from the first reading to the last kept one.
    pub fn days(&self) -> f64 {
        self.points.last().map_or(0.0, |p| p.0)
    }

    /// The Theil–Sen slope, mm/day: the median of the pairwise slopes.
    fn velocity(&self) -> Option<f64> {
        let p = &self.points;
        let mut slopes = Vec::with_capacity(p.len() * p.len().saturating_sub(1) / 2);
        for (i, a) in p.iter().enumerate() {
            for b in &p[i + 1..] {
                if b.0 > a.0 {
                    slopes.push((b.1 - a.1) / (b.0 - a.0));
                }
            }
        }
        if slopes.len() < 3 {
            return None;
        }
        let mid = slopes.len() / 2;
        let (_, m, _) = slopes.select_nth_unstable_by(mid, f64::total_cmp);
        let m = *m;
        Some(match slopes.len() % 2 {
            1 => m,
            _ => (m + slopes[..mid].iter().copied().fold(f64::MIN, f64::max)) / 2.0,
        })
    }
}

/// What a rainfall rule remembers: the gauge's last total and recent increments.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RainState {
    /// Last cumulative total, mm.
    pub total: Option<f64>,
    /// `(event ms, mm)` increments inside the window.
    pub increments: VecDeque<(u64, f64)>,
}

const POINTS_MAX: usize = 2048;
const INVERSE_MAX: usize = 256;

/// Rain in the window ending at `at`, from a cumulative gauge. A total lower than the last one
/// is a counter reset (gauge restarted or emptied): the new total counts as rain since then.
pub(crate) fn rainfall(c: &Rainfall, st: &mut SubjectState, r: &Reading, at: u64) -> Option<Signal> {
    let Body::Rain(d) = &r.body else { return None };
    let total = d.get(ChannelKind::RainCumulativeMm)?;
    let rs = st.kind.rain_or_default();
    let step = match rs.total {
        Some(last) if total >= last => total - last,
        Some(_) => total.max(0.0),
        None => 0.0,
    };
    rs.total = Some(total);
    if step > 0.0 {
        if rs.increments.len() == POINTS_MAX {
            rs.increments.pop_front();
        }
        rs.increments.push_back((at, step));
    }
    let horizon = at.saturating_sub(c.window_s * MS);
    while rs.increments.front().is_some_and(|&(t, _)| t <= horizon) {
        rs.increments.pop_front();
    }
    let sum: f64 = rs.increments.iter().map(|&(_, mm)| mm).sum();
    st.dirty = true;
    Some(Signal { trigger: sum > c.above_mm, release: sum < c.clear_mm, value: Some(sum) })
}

/// One evaluation of a station: the level it gives and what goes on the order.
struct Verdict {
    held: u8,
    angle: f64,
    velocity: f64,
    creep: f64,
}

/// Applies one reading of `subj` to a tangent-angle rule (the caller checked ordering).
pub(crate) fn tangent(
    ctx: &Ctx<'_>,
    t: &TangentAngle,
    states: &mut HashMap<Subject, SubjectState>,
    r: &Reading,
    at: u64,
    out: &mut Vec<Event>,
) {
    let Some(value) = field_value(&r.body, &t.field) else { return };
    let subj = ctx.subj;
    let Some(st) = states.get_mut(subj) else { return };
    let Some(v) = evaluate(t, st, at, value) else { return };
    let stations = Stations::at(states, subj);
    let Some(st) = states.get_mut(subj) else { return };
    let slope = st.kind.slope_or_default();
    let needed = usize::from(t.corroborate.max(1)).min(stations.total);
    let was_capped = slope.capped;
    slope.capped = v.held == 4 && stations.orange_or_above_besides + 1 < needed;
    let (capped, level) = (slope.capped, if slope.capped { 3 } else { v.held });
    let forecast = slope::inverse_velocity(slope.inverse.iter().copied(), t.forecast_min_points as usize);
    let summary =
        say::slope(v.angle, v.velocity, v.creep, forecast.as_ref(), capped.then_some(needed), ctx.tz);
    ctx.confirm_if_live(st, at, Some(v.angle), out);
    let target = colour(level).filter(|&c| c >= ctx.cfg.colour);
    let before = out.len();
    ctx.level(st, at, target, summary.clone(), Some(v.angle), forecast, out);
    if capped && !was_capped && out.len() == before {
        // The open order is already orange: people must still hear that a red level was
        // reached and what it waits for (re-sent as an escalation that restates the summary).
        if let Some(open) = st.open {
            let kind = EventKind::Escalate { colour: open.colour, restate: true };
            let mut e = ctx.event(at, kind, ctx.late || open.late, summary, Some(v.angle));
            e.forecast = forecast;
            out.push(e);
        }
    }
    if v.held >= 3 {
        promote_peers(ctx, t, states, at, out);
    }
}

/// Updates the station's history and returns the held level, or `None` while there is not yet
/// enough data (v_c still being learnt, velocity window not yet half full).
fn evaluate(t: &TangentAngle, st: &mut SubjectState, at: u64, value: f64) -> Option<Verdict> {
    st.dirty = true;
    let s = st.kind.slope_or_default();
    if s.points.len() == POINTS_MAX {
        s.points.pop_front();
    }
    s.points.push_back((at, value));
    let horizon = at.saturating_sub(t.velocity_window_s * MS);
    while s.points.front().is_some_and(|&(p, _)| p < horizon) {
        s.points.pop_front();
    }
    let creep = match (t.creep_mm_per_day, s.creep) {
        (Some(c), _) | (None, Some(c)) => c,
        (None, None) => {
            let b = s.baseline.get_or_insert(Baseline { t_first: at, ..Baseline::default() });
            b.add(at, value);
            // Both long enough and enough readings: a week of 11-day InSAR points is not a
            // baseline (it waits for `baseline_min_points`, and the backtest summary says so).
            if at.saturating_sub(b.t_first) < t.baseline_s * MS || b.seen() < t.baseline_min_points {
                return None;
            }
            let learnt = b.velocity().unwrap_or(0.0).max(t.min_creep_mm_per_day);
            (s.creep, s.baseline) = (Some(learnt), None);
            learnt
        }
    }
    .max(t.min_creep_mm_per_day);
    let span = s.points.back()?.0 - s.points.front()?.0;
    if span * 2 < t.velocity_window_s * MS {
        return None;
    }
    let line = slope::fit(s.points.iter().copied())?;
    let angle = slope::tangent_angle(line.per_day, creep);
    let level = t.levels_deg.iter().filter(|&&l| angle >= l).count() as u8;
    if s.recent.len() >= usize::from(t.hold[1].max(1)) {
        s.recent.pop_front();
    }
    s.recent.push_back(level);
    let held =
        (1..=4).rev().find(|&l| s.recent.iter().filter(|&&e| e >= l).count() >= usize::from(t.hold[0]));
    s.held = held.unwrap_or(0);
    // Accelerating (beyond steady creep): collect inverse velocities for the forecast.
    if angle >= t.levels_deg[1] && line.per_day > 0.0 {
        if s.inverse.len() == INVERSE_MAX {
            s.inverse.pop_front();
        }
        s.inverse.push_back((line.t0 as u64, 1.0 / line.per_day));
    } else if angle < t.levels_deg[0] {
        s.inverse.clear();
    }
    (s.angle, s.velocity) = (angle, line.per_day);
    Some(Verdict { held: s.held, angle, velocity: line.per_day, creep })
}

/// Stations of one site under one rule.
struct Stations {
    total: usize,
    orange_or_above_besides: usize,
}

impl Stations {
    fn at(states: &HashMap<Subject, SubjectState>, subj: &Subject) -> Stations {
        let site = states.iter().filter(|(s, st)| s.site == subj.site && st.kind.slope().is_some());
        let (mut total, mut orange) = (0, 0);
        for (s, st) in site {
            total += 1;
            orange += usize::from(s != subj && st.kind.slope().is_some_and(|sl| sl.held >= 3));
        }
        Stations { total: total.max(1), orange_or_above_besides: orange }
    }
}

/// A station at orange or above may be the corroboration a capped red elsewhere waits for.
fn promote_peers(
    ctx: &Ctx<'_>,
    t: &TangentAngle,
    states: &mut HashMap<Subject, SubjectState>,
    at: u64,
    out: &mut Vec<Event>,
) {
    let capped: Vec<Subject> = states
        .iter()
        .filter(|(s, _)| *s != ctx.subj && s.site == ctx.subj.site)
        .filter(|(_, st)| st.kind.slope().is_some_and(|sl| sl.capped))
        .map(|(s, _)| s.clone())
        .collect();
    for peer in capped {
        let stations = Stations::at(states, &peer);
        let needed = usize::from(t.corroborate.max(1)).min(stations.total);
        if stations.orange_or_above_besides + 1 < needed {
            continue;
        }
        let Some(st) = states.get_mut(&peer) else { continue };
        let Some(slope) = st.kind.slope_mut() else { continue };
        slope.capped = false;
        let forecast = slope::inverse_velocity(slope.inverse.iter().copied(), t.forecast_min_points as usize);
        let why = say::corroborated(stations.orange_or_above_besides + 1);
        let peer_ctx = Ctx { subj: &peer, ..*ctx };
        peer_ctx.level(st, at, Some(Colour::Red), why, None, forecast, out);
        st.dirty = true;
    }
}

fn colour(level: u8) -> Option<Colour> {
    match level {
        1 => Some(Colour::Blue),
        2 => Some(Colour::Yellow),
        3 => Some(Colour::Orange),
        4 => Some(Colour::Red),
        _ => None,
    }
}

/// Whether a new forecast differs enough from the last one put on the order to record it:
/// first one, or moved by more than 5 % of the remaining lead time (at least a minute).
pub(crate) fn forecast_moved(old: Option<Forecast>, new: Forecast, at: u64) -> bool {
    let Some(old) = old else { return true };
    let lead = new.failure_ms.saturating_sub(at) as f64;
    (new.failure_ms as f64 - old.failure_ms as f64).abs() >= (0.05 * lead).max(60_000.0)
}

/// Checks a tangent-angle definition ([`Condition::check`](super::config::Condition)).
pub(crate) fn check_tangent(t: &super::config::TangentAngle) -> Result<(), String> {
    let fail = |m: &str| Err(m.to_string());
    if !super::condition::known_field(gridsentry_sensors::Stream::Deform, &t.field)
        || ["rain_cum_mm", "temp_c"].contains(&t.field.as_str())
    {
        return fail(&format!("deform stream has no displacement field `{}`", t.field));
    }
    let positive = |v: f64| v.is_finite() && v > 0.0;
    if !t.creep_mm_per_day.is_none_or(positive) || !positive(t.min_creep_mm_per_day) {
        return fail("creep_mm_per_day and min_creep_mm_per_day must be > 0");
    }
    if t.velocity_window_s == 0 || (t.creep_mm_per_day.is_none() && t.baseline_s == 0) {
        return fail("velocity_window_s (and baseline_s without creep_mm_per_day) must be > 0");
    }
    if !t.levels_deg.windows(2).all(|w| w[0] < w[1]) || t.levels_deg[0] <= 0.0 || t.levels_deg[3] >= 90.0 {
        return fail("levels_deg must rise strictly within (0, 90)");
    }
    if t.hold[0] == 0 || t.hold[0] > t.hold[1] {
        return fail("hold = [k, n] needs 1 <= k <= n");
    }
    if t.forecast_min_points < 3 {
        return fail("forecast_min_points must be at least 3");
    }
    Ok(())
}
