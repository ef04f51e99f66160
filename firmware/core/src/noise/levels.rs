//! From 4 ms blocks of A-weighted energy to sound levels: Fast and Slow time weighting,
//! LAeq,T, LAFmax, the statistical levels L10/L90, the 1 s LAeq that drives the local alarm, and
//! the overload/under-range flags. Runs once per block, so it may use (soft) floating point:
//! `libm`, not the platform's maths, so that every target computes the same bits.

use super::coeffs::{B3, FS, GAIN};
use super::mic::Mic;
use super::{Block, BLOCK};
use gridsentry_sensors::NoiseReport;

/// Blocks per second.
pub const BLOCKS_PER_S: u32 = FS / BLOCK as u32;
/// The Fast level is sampled for the statistical levels every this many blocks (100 ms).
const STAT_EVERY: u32 = BLOCKS_PER_S / 10;
/// Histogram of Fast levels: 0.1 dB bins from 0 to 140 dB.
const BINS: usize = 1400;

/// Level bookkeeping for one meter.
#[derive(Debug, Clone)]
pub struct Levels {
    to_spl_db: f32,
    cal_offset_db: f32,
    noise_floor_db: f32,
    fast_keep: f32,
    slow_keep: f32,
    fast_take: f32,
    slow_take: f32,
    fast: f32,
    slow: f32,
    /// Energy of the interval: whole seconds in f64, the current second in f32 (cheaper per block).
    sum: f64,
    part: f32,
    blocks: u32,
    fast_max: f32,
    overload: bool,
    hist: [u16; BINS],
    stat_n: u32,
    second: f32,
    second_blocks: u32,
}

/// Per-sample α = exp(−1/(Fs·τ)) applied once per block of `BLOCK` samples.
fn keep(tau_s: f32) -> f32 {
    libm::expf(-(BLOCK as f32) / (FS as f32 * tau_s))
}

impl Levels {
    /// Levels for `mic`, with `cal_offset_db` added to every level.
    pub fn new(mic: &Mic, cal_offset_db: f32) -> Self {
        // SPL = 94 + 3.0103 + 20·log10(RMS/REF), REF = 10^(S/20) in full-scale units.
        // The chains leave out the cascade's gain and the b0 of the shelf and of section 3.
        let gain = GAIN as f32 * B3[0] as f32 * super::coeffs::front(mic).gain as f32;
        let to_spl_db = 94.0 + 3.0103 - mic.sensitivity_dbfs + 20.0 * libm::log10f(gain);
        Levels {
            to_spl_db,
            cal_offset_db,
            noise_floor_db: mic.noise_floor_db,
            fast_keep: keep(0.125),
            slow_keep: keep(1.0),
            fast_take: 1.0 - keep(0.125),
            slow_take: 1.0 - keep(1.0),
            fast: 0.0,
            slow: 0.0,
            sum: 0.0,
            part: 0.0,
            blocks: 0,
            fast_max: 0.0,
            overload: false,
            hist: [0; BINS],
            stat_n: 0,
            second: 0.0,
            second_blocks: 0,
        }
    }

    /// dB of a mean square (re full scale) on the calibrated SPL scale.
    pub fn db(&self, mean_square: f32) -> f32 {
        10.0 * libm::log10f(mean_square.max(1e-30)) + self.to_spl_db + self.cal_offset_db
    }

    /// Takes one block; returns the LAeq of the second it completes, if it completes one.
    pub fn add(&mut self, b: Block) -> Option<f32> {
        let e = b.mean_square;
        self.fast = self.fast * self.fast_keep + e * self.fast_take;
        self.slow = self.slow * self.slow_keep + e * self.slow_take;
        self.fast_max = self.fast_max.max(self.fast);
        self.overload |= b.clipped;
        self.part += e;
        self.blocks += 1;
        if self.blocks.is_multiple_of(BLOCKS_PER_S) {
            self.sum += self.part as f64;
            self.part = 0.0;
        }
        if self.blocks.is_multiple_of(STAT_EVERY) {
            let bin = (self.fast_db() * 10.0 + 0.5).clamp(0.0, (BINS - 1) as f32) as usize;
            self.hist[bin] = self.hist[bin].saturating_add(1);
            self.stat_n += 1;
        }
        self.second += e;
        self.second_blocks += 1;
        if self.second_blocks < BLOCKS_PER_S {
            return None;
        }
        let laeq_1s = self.db(self.second / BLOCKS_PER_S as f32);
        (self.second, self.second_blocks) = (0.0, 0);
        Some(laeq_1s)
    }

    /// The current Fast-weighted level, dB(A).
    pub fn fast_db(&self) -> f32 {
        self.db(self.fast)
    }

    /// The current Slow-weighted level, dB(A).
    pub fn slow_db(&self) -> f32 {
        self.db(self.slow)
    }

    /// The level exceeded during `percent` of the Fast samples so far (L10: 10), if any.
    pub fn exceeded(&self, percent: u32) -> Option<f32> {
        if self.stat_n == 0 {
            return None;
        }
        // The first bin from the top where more than `percent` % of samples lie at or above.
        let limit = self.stat_n * percent / 100;
        let mut above = 0u32;
        for (bin, &n) in self.hist.iter().enumerate().rev() {
            above += u32::from(n);
            if above > limit {
                return Some(bin as f32 / 10.0);
            }
        }
        Some(0.0)
    }

    /// The interval's report; starts the next interval (time weighting runs on).
    pub fn report(&mut self) -> NoiseReport {
        let total = self.sum + self.part as f64;
        let mean = if self.blocks == 0 { 0.0 } else { (total / self.blocks as f64) as f32 };
        let laeq_db = self.db(mean);
        let r = NoiseReport {
            interval_ms: (u64::from(self.blocks) * BLOCK as u64 * 1000 / u64::from(FS)) as u32,
            laeq_db,
            lafmax_db: self.db(self.fast_max),
            lcpeak_db: None,
            l10_db: self.exceeded(10),
            l90_db: self.exceeded(90),
            overload: self.overload,
            under_range: laeq_db < self.noise_floor_db + 3.0,
            cal_offset_db: self.cal_offset_db,
        };
        (self.sum, self.part, self.blocks, self.fast_max, self.overload, self.stat_n) =
            (0.0, 0.0, 0, 0.0, false, 0);
        self.hist = [0; BINS];
        r
    }
}
