//! Test signals.
#![allow(dead_code)]

pub mod design;

use gridsentry_firmware_core::noise::{Chain, BLOCK};

pub const FS: f64 = 48_000.0;

/// A sine of `f` Hz whose peak is `dbfs` re 24-bit full scale, `seconds` long, from phase `t0`.
pub fn sine(f: f64, dbfs: f64, seconds: f64) -> Vec<i32> {
    let amp = 10f64.powf(dbfs / 20.0) * ((1 << 23) - 1) as f64;
    let n = (seconds * FS) as usize;
    (0..n).map(|i| (amp * (2.0 * std::f64::consts::PI * f * i as f64 / FS).sin()).round() as i32).collect()
}

/// Peak dBFS of a 1 kHz sine that reads `spl` dB with a −26 dBFS microphone (DESIGN.md formula).
pub fn dbfs_for(spl: f64) -> f64 {
    spl - 94.0 - 26.0
}

/// Mean square (re full scale, before the cascade gain) of `samples` after `settle` seconds.
pub fn energy<C: Chain>(chain: &mut C, samples: &[i32], settle: f64) -> f64 {
    let skip = (settle * FS) as usize / BLOCK;
    let mut sum = 0.0;
    let mut n = 0;
    for (i, block) in samples.chunks_exact(BLOCK).enumerate() {
        let b = chain.block(block.try_into().unwrap());
        if i >= skip {
            sum += b.mean_square as f64;
            n += 1;
        }
    }
    sum / n as f64
}

/// Deterministic white noise with peak `amp`.
pub fn noise(amp: i32, n: usize, mut seed: u64) -> Vec<i32> {
    (0..n)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            ((seed >> 33) as i64 % (2 * amp as i64 + 1) - amp as i64) as i32
        })
        .collect()
}
