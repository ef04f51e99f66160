//! The plaza noise meter: 24-bit I2S samples at 48 kHz in, calibrated A-weighted levels out.
//!
//! Per sample (the hot path, counted in instructions by `scripts/firmware-bench`): DC blocker →
//! microphone shelf → A-weighting (three biquads, within 0.02 dB of IEC 61672-1 from 20 Hz to
//! 16 kHz) → squared into a 4 ms block. Per block ([`levels`]): Fast and Slow time weighting,
//! LAeq, LAFmax, L10/L90, the 1 s LAeq for the local alarm. Two chains implement the per-sample
//! part: [`FixedChain`] (Q31, for the RP2040 and ESP32-C3) and [`FloatChain`] (f32, for chips
//! with an FPU); the tests hold them to each other.

pub mod coeffs;
mod fixed;
mod float;
pub mod levels;
pub mod mic;
pub mod record;

use crate::alarm::{Alarm, AlarmSettings};
pub use fixed::FixedChain;
pub use float::FloatChain;
use gridsentry_sensors::NoiseReport;
pub use levels::Levels;
pub use mic::Mic;
pub use record::NoiseRecord;

/// Samples per block (4 ms at 48 kHz): the per-block work (time weighting, soft float on chips
/// without an FPU) is spread over this many samples.
pub const BLOCK: usize = 192;

/// One block's result from a chain.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Block {
    /// Mean square of the A-weighted signal, relative to full scale (before the cascade gain).
    pub mean_square: f32,
    /// An input sample reached full scale (±(2²³ − 1)).
    pub clipped: bool,
}

/// The per-sample part of the meter.
pub trait Chain {
    /// A chain at rest for this microphone.
    fn new(mic: &Mic) -> Self;
    /// Filters one block of 24-bit samples (right-aligned in i32).
    fn block(&mut self, samples: &[i32; BLOCK]) -> Block;
}

/// A noise meter.
#[derive(Debug, Clone)]
pub struct Meter<C> {
    chain: C,
    levels: Levels,
    alarm: Alarm,
    buf: [i32; BLOCK],
    fill: usize,
}

impl<C: Chain> Meter<C> {
    /// A meter for `mic`, with a calibration offset in dB and the local alarm's settings.
    pub fn new(mic: &Mic, cal_offset_db: f32, alarm: AlarmSettings) -> Self {
        Meter {
            chain: C::new(mic),
            levels: Levels::new(mic, cal_offset_db),
            alarm: Alarm::new(alarm),
            buf: [0; BLOCK],
            fill: 0,
        }
    }

    /// Takes samples (any number; blocks complete across calls).
    pub fn push(&mut self, mut samples: &[i32]) {
        while !samples.is_empty() {
            if self.fill == 0 {
                if let Some((block, rest)) = samples.split_first_chunk::<BLOCK>() {
                    self.run(block);
                    samples = rest;
                    continue;
                }
            }
            let n = (BLOCK - self.fill).min(samples.len());
            self.buf[self.fill..self.fill + n].copy_from_slice(&samples[..n]);
            self.fill += n;
            samples = &samples[n..];
            if self.fill == BLOCK {
                let buf = self.buf;
                self.run(&buf);
                self.fill = 0;
            }
        }
    }

    fn run(&mut self, block: &[i32; BLOCK]) {
        let b = self.chain.block(block);
        if let Some(laeq_1s) = self.levels.add(b) {
            self.alarm.second(laeq_1s);
        }
    }

    /// Whether the local alarm sounds.
    pub fn alarm(&self) -> bool {
        self.alarm.on()
    }

    /// The levels so far (time-weighted levels, statistics).
    pub fn levels(&self) -> &Levels {
        &self.levels
    }

    /// The report for the interval since the last one.
    pub fn report(&mut self) -> NoiseReport {
        self.levels.report()
    }
}
