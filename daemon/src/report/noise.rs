//! Minute and hour noise levels of each reporting box, from every 1-s report.
//!
//! Why exact: the bureau's hour L10/L50/L90 are the levels exceeded 10, 50 and 90 % of the hour.
//! An average of minute percentiles is not that, so each window keeps a histogram of the reports'
//! LAeq in 0.1 dB steps (weighted by each report's interval): its percentiles are those of the
//! full series to 0.05 dB. Leq is the energetic mean (10·log10 of the mean of 10^(L/10)), LMx the
//! highest LAFmax, LMn the lowest LAeq. Windows are in event time (a backfilled hour is reported
//! as that hour); a window closes when its box's first report of a later window arrives, or when
//! nothing has arrived for it for [`QUIET_MS`].

use gridsentry_sensors::NoiseReport;

/// Histogram bins: 0.0 to 150.0 dB in 0.1 dB.
const BINS: usize = 1501;
/// A window with no report received for this long (wall clock) is closed.
pub const QUIET_MS: u64 = 120_000;

/// The levels of one window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Levels {
    pub leq: f64,
    pub l10: f64,
    pub l50: f64,
    pub l90: f64,
    pub lmax: f64,
    pub lmin: f64,
    /// Seconds of reports in it.
    pub seconds: f64,
    /// Some report in it clipped (its levels are lower bounds).
    pub overload: bool,
}

/// One window being filled.
#[derive(Debug, Clone)]
pub struct Window {
    /// Its start, UTC ms.
    pub start_ms: u64,
    energy: f64,
    weight: f64,
    max: f32,
    min: f32,
    overload: bool,
    hist: Vec<f64>,
}

impl Window {
    fn new(start_ms: u64) -> Window {
        Window {
            start_ms,
            energy: 0.0,
            weight: 0.0,
            max: f32::MIN,
            min: f32::MAX,
            overload: false,
            hist: vec![0.0; BINS],
        }
    }

    fn add(&mut self, n: &NoiseReport) {
        let w = f64::from(n.interval_ms.max(1)) / 1000.0;
        let l = f64::from(n.laeq_db);
        self.energy += w * 10f64.powf(l / 10.0);
        self.weight += w;
        self.max = self.max.max(n.lafmax_db.max(n.laeq_db));
        self.min = self.min.min(n.laeq_db);
        self.overload |= n.overload;
        let bin = (l * 10.0).round().clamp(0.0, (BINS - 1) as f64) as usize;
        self.hist[bin] += w;
    }

    /// Its levels (`None` when empty).
    pub fn levels(&self) -> Option<Levels> {
        (self.weight > 0.0).then(|| Levels {
            leq: 10.0 * (self.energy / self.weight).log10(),
            l10: self.exceeded(0.10),
            l50: self.exceeded(0.50),
            l90: self.exceeded(0.90),
            lmax: f64::from(self.max),
            lmin: f64::from(self.min),
            seconds: self.weight,
            overload: self.overload,
        })
    }

    /// The level exceeded for `share` of the time: going down from the loudest, the first level
    /// at which that much time is reached.
    fn exceeded(&self, share: f64) -> f64 {
        let need = share * self.weight - 1e-9;
        let mut acc = 0.0;
        for (i, w) in self.hist.iter().enumerate().rev() {
            acc += w;
            if acc >= need && *w > 0.0 {
                return i as f64 / 10.0;
            }
        }
        0.0
    }
}

/// Which window a reading falls in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Span {
    /// CN=2051.
    Minute,
    /// CN=2061.
    Hour,
}

impl Span {
    /// Its length, ms (hours are UTC-aligned: local hours wherever the offset is whole hours).
    pub fn ms(self) -> u64 {
        match self {
            Span::Minute => 60_000,
            Span::Hour => 3_600_000,
        }
    }

    /// The command number of its data upload.
    pub fn cn(self) -> &'static str {
        match self {
            Span::Minute => "2051",
            Span::Hour => "2061",
        }
    }
}

/// A box's open windows.
#[derive(Debug, Clone)]
pub struct BoxWindows {
    windows: [(Span, Option<Window>); 2],
    /// When a report for them last arrived, wall ms.
    last_received_ms: u64,
}

impl Default for BoxWindows {
    fn default() -> Self {
        BoxWindows { windows: [(Span::Minute, None), (Span::Hour, None)], last_received_ms: 0 }
    }
}

impl BoxWindows {
    /// Adds a report at event time `at_ms`, received at `received_ms`; the windows it closed.
    /// A report older than the open window is not counted (`false`).
    pub fn add(
        &mut self,
        n: &NoiseReport,
        at_ms: u64,
        received_ms: u64,
        closed: &mut Vec<(Span, Window)>,
    ) -> bool {
        self.last_received_ms = received_ms;
        let mut counted = true;
        for (span, slot) in &mut self.windows {
            let start = at_ms - at_ms % span.ms();
            match slot {
                Some(w) if w.start_ms == start => w.add(n),
                Some(w) if w.start_ms > start => counted = false,
                _ => {
                    if let Some(old) = slot.take() {
                        closed.push((*span, old));
                    }
                    let mut w = Window::new(start);
                    w.add(n);
                    *slot = Some(w);
                }
            }
        }
        counted
    }

    /// Closes the windows when nothing arrived for [`QUIET_MS`] before `now_ms`.
    pub fn flush_quiet(&mut self, now_ms: u64, closed: &mut Vec<(Span, Window)>) {
        if now_ms.saturating_sub(self.last_received_ms) >= QUIET_MS {
            for (span, slot) in &mut self.windows {
                closed.extend(slot.take().map(|w| (*span, w)));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(db: f32) -> NoiseReport {
        NoiseReport { interval_ms: 1000, ..NoiseReport::levels(db, db + 3.0) }
    }

    /// L_N from the full series: sorted loudest first, the value at rank ceil(N % · n).
    fn exact(values: &[f64], share: f64) -> f64 {
        let mut v = values.to_vec();
        v.sort_by(|a, b| b.partial_cmp(a).unwrap());
        v[((share * v.len() as f64).ceil() as usize).max(1) - 1]
    }

    #[test]
    fn an_hours_levels_are_those_of_its_full_series() {
        let mut b = BoxWindows::default();
        let mut closed = Vec::new();
        let t0 = 1_764_072_000_000u64;
        let mut values = Vec::new();
        for s in 0..3600u64 {
            // A square dance from minute 20 to 35 over a street's hum.
            let db = if (1200..2100).contains(&s) {
                72.0 + (s % 7) as f64 * 0.73
            } else {
                55.0 + (s % 13) as f64 * 0.41
            };
            let db = (db * 100.0).round() / 100.0;
            values.push(db);
            b.add(&report(db as f32), t0 + s * 1000, t0, &mut closed);
        }
        assert_eq!(closed.len(), 59, "the minutes before the last");
        b.add(&report(50.0), t0 + 3_600_000, t0, &mut closed);
        let (span, hour) = closed.iter().find(|(s, _)| *s == Span::Hour).unwrap();
        assert_eq!((*span, hour.start_ms), (Span::Hour, t0));
        let l = hour.levels().unwrap();
        for (got, share) in [(l.l10, 0.10), (l.l50, 0.50), (l.l90, 0.90)] {
            assert!(
                (got - exact(&values, share)).abs() <= 0.051,
                "L{}: {got} vs {}",
                share * 100.0,
                exact(&values, share)
            );
        }
        let leq = 10.0 * (values.iter().map(|v| 10f64.powf(v / 10.0)).sum::<f64>() / 3600.0).log10();
        assert!((l.leq - leq).abs() < 0.01 && l.seconds == 3600.0);
        assert!(l.lmax >= 78.0 && (l.lmin - 55.0).abs() < 0.01);
        // A late report of a closed window is not counted in the next one.
        assert!(!b.add(&report(90.0), t0 + 10, t0, &mut closed));
    }
}
