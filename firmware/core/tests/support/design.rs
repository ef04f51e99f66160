//! The A-weighting filter design (host only, f64): where the constants in
//! `src/noise/coeffs.rs` come from. `cargo run --example a_weighting_design` prints them; the
//! `a_weighting` test checks that the committed constants are this design's output.
//!
//! IEC 61672-1 Annex E: A(f) = 20·log10(f4²f⁴ / ((f²+f1²)·√(f²+f2²)·√(f²+f3²)·(f²+f4²))) + 2.00 dB.
//! The analog filter is s⁴ / ((s+ω1)²(s+ω2)(s+ω3)(s+ω4)²). The four low poles (20.6, 20.6, 107.7,
//! 737.9 Hz) are far below Nyquist, where the bilinear transform is accurate: sections 1 and 2
//! are its output, with their double zero at DC kept exact (numerator 1, −2, 1). The double pole
//! at 12.2 kHz is where the bilinear transform fails (6.4 dB low at 16 kHz at 48 kHz): section 3 is
//! a free biquad fitted by least squares (Nelder–Mead on the dB error, 10 Hz–20 kHz, log-spaced)
//! to what sections 1 and 2 leave of the analytic curve.
#![allow(dead_code)]

use std::f64::consts::PI;

pub const F1: f64 = 20.598997;
pub const F2: f64 = 107.65265;
pub const F3: f64 = 737.86223;
pub const F4: f64 = 12194.217;

/// The analytic A-weighting in dB at `f` Hz.
pub fn analytic_db(f: f64) -> f64 {
    let f2 = f * f;
    let num = F4 * F4 * f2 * f2;
    let den = (f2 + F1 * F1) * (f2 + F2 * F2).sqrt() * (f2 + F3 * F3).sqrt() * (f2 + F4 * F4);
    20.0 * (num / den).log10() + 2.00
}

/// A biquad b0 + b1 z⁻¹ + b2 z⁻² over 1 + a1 z⁻¹ + a2 z⁻².
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Biquad {
    pub b: [f64; 3],
    pub a: [f64; 2],
}

impl Biquad {
    /// |H(e^{jω})| at `f` Hz for sample rate `fs`.
    pub fn magnitude(&self, f: f64, fs: f64) -> f64 {
        let w = 2.0 * PI * f / fs;
        let (c1, s1, c2, s2) = (w.cos(), w.sin(), (2.0 * w).cos(), (2.0 * w).sin());
        let nr = self.b[0] + self.b[1] * c1 + self.b[2] * c2;
        let ni = -(self.b[1] * s1 + self.b[2] * s2);
        let dr = 1.0 + self.a[0] * c1 + self.a[1] * c2;
        let di = -(self.a[0] * s1 + self.a[1] * s2);
        ((nr * nr + ni * ni) / (dr * dr + di * di)).sqrt()
    }
}

/// The three sections and the gain that makes the cascade 0 dB at 1 kHz.
#[derive(Debug, Clone, Copy)]
pub struct Design {
    pub sections: [Biquad; 3],
    pub gain: f64,
}

impl Design {
    pub fn response_db(&self, f: f64, fs: f64) -> f64 {
        let m: f64 = self.sections.iter().map(|s| s.magnitude(f, fs)).product();
        20.0 * (m * self.gain).log10()
    }
}

/// Pole of the bilinear transform of s + ω.
fn bilinear_pole(f: f64, fs: f64) -> f64 {
    let (k, w) = (2.0 * fs, 2.0 * PI * f);
    (k - w) / (k + w)
}

/// Designs the cascade for sample rate `fs`.
pub fn design(fs: f64) -> Design {
    let (p1, p2, p3, p4) =
        (bilinear_pole(F1, fs), bilinear_pole(F2, fs), bilinear_pole(F3, fs), bilinear_pole(F4, fs));
    let s1 = Biquad { b: [1.0, -2.0, 1.0], a: [-2.0 * p1, p1 * p1] };
    let s2 = Biquad { b: [1.0, -2.0, 1.0], a: [-(p2 + p3), p2 * p3] };
    let low = |f: f64| s1.magnitude(f, fs) * s2.magnitude(f, fs);
    // Fit grid: log-spaced 10 Hz .. 20 kHz.
    let grid: Vec<(f64, f64)> = (0..=300)
        .map(|i| {
            let f = 10.0 * (2000.0f64).powf(i as f64 / 300.0);
            (f, analytic_db(f) - 20.0 * low(f).log10())
        })
        .collect();
    let cost = |x: &[f64; 5]| -> f64 {
        let s = Biquad { b: [x[0], x[1], x[2]], a: [x[3], x[4]] };
        // Stable poles only (the stability triangle, with a margin).
        if x[4].abs() >= 0.999 || x[3].abs() >= 1.0 + x[4] - 1e-3 {
            return 1e12;
        }
        let db_1k =
            20.0 * s.magnitude(1000.0, fs).log10() - (analytic_db(1000.0) - 20.0 * low(1000.0).log10());
        grid.iter()
            .map(|(f, want)| {
                let e = 20.0 * s.magnitude(*f, fs).log10() - db_1k - want;
                e * e
            })
            .sum()
    };
    // Start: the bilinear transform of ω4²/(s+ω4)², scaled to unit gain at DC.
    let g = (1.0 - p4) * (1.0 - p4) / 4.0;
    let mut x = [g, 2.0 * g, g, -2.0 * p4, p4 * p4];
    let mut best = cost(&x);
    for _ in 0..8 {
        x = nelder_mead(&cost, x, 0.05);
        let now = cost(&x);
        if now > best * (1.0 - 1e-9) {
            break;
        }
        best = now;
    }
    // The fit is blind to gain: give section 3 unit gain at DC (the cascade's gain is `gain`).
    let dc = (x[0] + x[1] + x[2]) / (1.0 + x[3] + x[4]);
    let s3 = Biquad { b: [x[0] / dc, x[1] / dc, x[2] / dc], a: [x[3], x[4]] };
    let mut d = Design { sections: [s1, s2, s3], gain: 1.0 };
    d.gain = 10f64.powf(-d.response_db(1000.0, fs) / 20.0);
    d
}

/// Minimises `f` from `x0` (simplex of relative size `step`); deterministic.
fn nelder_mead(f: &dyn Fn(&[f64; 5]) -> f64, x0: [f64; 5], step: f64) -> [f64; 5] {
    let mut simplex: Vec<([f64; 5], f64)> = vec![(x0, f(&x0))];
    for i in 0..5 {
        let mut x = x0;
        x[i] += if x[i] == 0.0 { step } else { step * x[i] };
        simplex.push((x, f(&x)));
    }
    for _ in 0..20_000 {
        simplex.sort_by(|a, b| a.1.total_cmp(&b.1));
        let worst = simplex[5];
        if worst.1 - simplex[0].1 <= 1e-13 * simplex[0].1.abs().max(1e-300) {
            break;
        }
        let mut c = [0.0; 5];
        for (x, _) in &simplex[..5] {
            for k in 0..5 {
                c[k] += x[k] / 5.0;
            }
        }
        let along = |t: f64| -> [f64; 5] { core::array::from_fn(|k| c[k] + t * (worst.0[k] - c[k])) };
        let r = along(-1.0);
        let fr = f(&r);
        if fr < simplex[0].1 {
            let e = along(-2.0);
            let fe = f(&e);
            simplex[5] = if fe < fr { (e, fe) } else { (r, fr) };
        } else if fr < simplex[4].1 {
            simplex[5] = (r, fr);
        } else {
            let k = if fr < worst.1 { along(-0.5) } else { along(0.5) };
            let fk = f(&k);
            if fk < worst.1.min(fr) {
                simplex[5] = (k, fk);
            } else {
                let best = simplex[0].0;
                for s in simplex.iter_mut().skip(1) {
                    s.0 = core::array::from_fn(|k| best[k] + 0.5 * (s.0[k] - best[k]));
                    s.1 = f(&s.0);
                }
            }
        }
    }
    simplex.sort_by(|a, b| a.1.total_cmp(&b.1));
    simplex[0].0
}

/// IEC 61260 one-third-octave centre frequencies 20 Hz .. 16 kHz (exact base-10 values).
pub fn third_octaves() -> Vec<f64> {
    (13..=42).map(|n| 10f64.powf(n as f64 / 10.0)).collect()
}
