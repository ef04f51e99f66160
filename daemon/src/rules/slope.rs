//! The arithmetic of slope failure warnings, kept apart from rule state so it can be checked
//! against closed-form creep curves.
//!
//! - **Smoothed velocity**: the least-squares slope of displacement over a trailing window. A
//!   difference of two readings would turn GNSS noise (a few mm) into velocity spikes; the
//!   regression slope averages it out, and is assigned to the window's mean time (for an
//!   accelerating slope the slope of a window is close to the velocity at its middle, not at its
//!   end — which matters for the forecast).
//! - **Improved tangent angle** (Xu Qiang 2009): with T = S / v_c, ΔT/Δt = v / v_c, so
//!   α = arctan(v / v_c). Steady creep gives 45°, acceleration pushes α towards 90°.
//! - **Inverse velocity** (Fukuzono 1985, Voight 1988): during tertiary creep 1/v falls linearly
//!   in time and reaches zero at failure; a least-squares line through (t, 1/v) gives
//!   t_f = −intercept / slope.

/// Milliseconds in a day (velocities are mm/day, as slope reports give them).
pub const DAY_MS: f64 = 86_400_000.0;

/// A straight line fitted by least squares around a centre time (for precision: epoch
/// milliseconds squared lose digits in f64).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Line {
    /// Centre time, ms (the mean of the x values).
    pub t0: f64,
    /// Value at `t0`.
    pub at_t0: f64,
    /// Change per day.
    pub per_day: f64,
    /// Coefficient of determination (1 for a perfect line; 0 when x explains nothing).
    pub r2: f64,
}

/// Least-squares line through `(t_ms, y)`; `None` for fewer than 3 points or no time spread.
pub fn fit(points: impl Iterator<Item = (u64, f64)> + Clone) -> Option<Line> {
    let n = points.clone().count();
    if n < 3 {
        return None;
    }
    let nf = n as f64;
    let t0 = points.clone().map(|(t, _)| t as f64).sum::<f64>() / nf;
    let y0 = points.clone().map(|(_, y)| y).sum::<f64>() / nf;
    let (mut sxx, mut sxy, mut syy) = (0.0, 0.0, 0.0);
    for (t, y) in points {
        let (dx, dy) = ((t as f64 - t0) / DAY_MS, y - y0);
        sxx += dx * dx;
        sxy += dx * dy;
        syy += dy * dy;
    }
    if sxx <= 0.0 {
        return None;
    }
    let per_day = sxy / sxx;
    let r2 = if syy > 0.0 { (sxy * sxy) / (sxx * syy) } else { 1.0 };
    Some(Line { t0, at_t0: y0, per_day, r2 })
}

/// Improved tangent angle in degrees for velocity `v` and steady-creep velocity `v_c` (both
/// mm/day, `v_c > 0`). Negative for a slope moving back (rebound, noise).
pub fn tangent_angle(v: f64, v_c: f64) -> f64 {
    (v / v_c).atan().to_degrees()
}

/// A failure-time forecast.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Forecast {
    /// Forecast failure time, UTC ms.
    pub failure_ms: u64,
    /// R² of the inverse-velocity line.
    pub r2: f64,
    /// Points the line was fitted to.
    pub points: u32,
}

/// Below this R² the inverse-velocity line explains too little to put a date on an order: a slope
/// moving at a steady (if high) speed gives a flat, noisy 1/v whose "failure time" is anywhere
/// from next week to the year 70,000,000 and jumps with every reading.
pub const FORECAST_MIN_R2: f64 = 0.5;
/// A failure time further than this after the last point is no forecast: the method describes
/// tertiary creep, days to weeks before failure.
pub const FORECAST_HORIZON_MS: f64 = 365.0 * DAY_MS;

/// Fukuzono's forecast from `(t_ms, 1/v)` points (v in mm/day, so 1/v in day/mm): needs
/// `min_points`, a falling line that explains the points (R² ≥ [`FORECAST_MIN_R2`]), and a
/// failure time after the first point and within [`FORECAST_HORIZON_MS`] of the last.
pub fn inverse_velocity(
    points: impl Iterator<Item = (u64, f64)> + Clone,
    min_points: usize,
) -> Option<Forecast> {
    let n = points.clone().count();
    if n < min_points.max(3) {
        return None;
    }
    let first = points.clone().map(|(t, _)| t).min()?;
    let last = points.clone().map(|(t, _)| t).max()?;
    let line = fit(points)?;
    if line.per_day >= 0.0 || !line.per_day.is_finite() || line.r2 < FORECAST_MIN_R2 {
        return None;
    }
    // 1/v(t) = at_t0 + per_day · (t − t0) / DAY  →  zero at t0 − at_t0 / per_day · DAY.
    let failure = line.t0 - line.at_t0 / line.per_day * DAY_MS;
    if !failure.is_finite() || failure < first as f64 || failure > last as f64 + FORECAST_HORIZON_MS {
        return None;
    }
    Some(Forecast { failure_ms: failure.round() as u64, r2: line.r2, points: n as u32 })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Tertiary creep with 1/v = A (t_f − t) (Voight's α = 2): S = −ln(t_f − t) / A.
    fn creep(t_f_days: f64, a: f64, t_days: f64) -> f64 {
        -(t_f_days - t_days).ln() / a
    }

    #[test]
    fn line_through_exact_points() {
        let pts: Vec<(u64, f64)> =
            (0..10).map(|i| (1_700_000_000_000 + i * 3_600_000, 2.0 + i as f64 / 24.0 * 3.0)).collect();
        let l = fit(pts.iter().copied()).unwrap();
        assert!((l.per_day - 3.0).abs() < 1e-9, "{l:?}");
        assert!((l.r2 - 1.0).abs() < 1e-9);
        assert!(fit(pts[..2].iter().copied()).is_none());
        assert!(fit([(5, 1.0), (5, 2.0), (5, 3.0)].into_iter()).is_none());
    }

    #[test]
    fn steady_creep_is_45_degrees() {
        assert!((tangent_angle(2.0, 2.0) - 45.0).abs() < 1e-12);
        assert!(tangent_angle(20.0, 2.0) > 80.0);
        assert!(tangent_angle(-1.0, 2.0) < 0.0);
    }

    #[test]
    fn inverse_velocity_recovers_failure_time_from_displacements() {
        // Hourly displacements from day 0 to day 8, failure at day 10: velocities by
        // least squares over a 6 h window, as the rule does.
        let start = 1_780_000_000_000u64;
        let t_f = 10.0;
        let samples: Vec<(u64, f64)> =
            (0..=8 * 24).map(|h| (start + h * 3_600_000, creep(t_f, 0.05, h as f64 / 24.0))).collect();
        let mut inv = Vec::new();
        for end in 6..samples.len() {
            let w = &samples[end - 6..=end];
            let l = fit(w.iter().copied()).unwrap();
            inv.push((l.t0 as u64, 1.0 / l.per_day));
        }
        let f = inverse_velocity(inv.iter().copied(), 10).unwrap();
        let err = (f.failure_ms as f64 - (start as f64 + t_f * DAY_MS)).abs();
        assert!(err < 0.05 * t_f * DAY_MS, "forecast off by {} h", err / 3.6e6);
        assert!(f.r2 > 0.99, "{f:?}");
    }

    #[test]
    fn no_forecast_without_acceleration_or_points() {
        let flat: Vec<(u64, f64)> = (0..20).map(|i| (i * 3_600_000, 0.5)).collect();
        assert!(inverse_velocity(flat.iter().copied(), 10).is_none());
        let rising: Vec<(u64, f64)> = (0..20).map(|i| (i * 3_600_000, 0.5 + i as f64)).collect();
        assert!(inverse_velocity(rising.iter().copied(), 10).is_none());
        let falling: Vec<(u64, f64)> = (0..9).map(|i| (i * 3_600_000, 10.0 - i as f64)).collect();
        assert!(inverse_velocity(falling.iter().copied(), 10).is_none());
    }

    #[test]
    fn no_forecast_from_a_steady_speed_or_for_a_far_future() {
        // Steady 0.25 mm/s read every ~100 ms with clock jitter: 1/v is flat with noise, and a
        // line through it falls a little by chance (seen: "failure 2215435030751750144").
        let start = 1_795_848_245_000u64;
        let jitter: Vec<(u64, f64)> = (0..60u64)
            .map(|i| (start + i * 100, 1.0 / 21_600.0 * (1.0 - 1e-4 * ((i * 7919) % 13) as f64)))
            .collect();
        assert!(inverse_velocity(jitter.iter().copied(), 10).is_none());
        // A clean falling line whose zero is ten years out.
        let slow: Vec<(u64, f64)> = (0..20u64).map(|i| (start + i * 86_400_000, 3650.0 - i as f64)).collect();
        assert!(inverse_velocity(slow.iter().copied(), 10).is_none());
        // The same line a hundred days from its zero: forecast.
        let near: Vec<(u64, f64)> = (0..20u64).map(|i| (start + i * 86_400_000, 100.0 - i as f64)).collect();
        let f = inverse_velocity(near.iter().copied(), 10).unwrap();
        assert_eq!(f.failure_ms, start + 100 * 86_400_000);
    }
}
