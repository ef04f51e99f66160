//! The microphone of the host board: a WAV file, or a named synthetic scenario, as 24-bit
//! samples at 48 kHz (what an I2S MEMS microphone delivers), one second at a time.

use std::f64::consts::PI;

/// A source of one-second chunks of 48 kHz 24-bit samples.
pub enum Source {
    /// Samples of a WAV file (mono or the first channel; 48 kHz; 16/24/32-bit integer).
    Wav { samples: Vec<i32>, at: usize },
    /// A scenario: per second, the level it should read (dB(A)) and the texture of the sound.
    Synthetic { seconds: Vec<(f64, Kind)>, second: usize, seed: u64 },
}

/// What a synthetic scenario sounds like.
#[derive(Clone, Copy)]
pub enum Kind {
    /// Square-dance music: a 2 Hz beat on bass and melody tones over crowd noise.
    Music,
    /// Broadband noise (traffic, a quiet plaza).
    Noise,
}

const FS: usize = 48_000;
/// Peak of a sine at 94 dB SPL for a −26 dBFS microphone (DESIGN.md).
fn amplitude(spl: f64) -> f64 {
    10f64.powf((spl - 94.0 - 26.0) / 20.0) * 8_388_607.0
}

impl Source {
    /// Reads a WAV file ([`crate::wav`]).
    pub fn wav(path: &str) -> Result<Source, String> {
        let bytes = std::fs::read(path).map_err(|e| format!("{path}: {e}"))?;
        let samples = crate::wav::read(&bytes, FS as u32).map_err(|e| format!("{path}: {e}"))?;
        Ok(Source::Wav { samples, at: 0 })
    }

    /// A named scenario: `square-dance` (an evening: 20 s of a quiet plaza at 52 dB, then 60 s
    /// of music at 78 dB, then 30 s quiet) or `quiet` (a plaza at 50 dB for 60 s).
    pub fn scenario(name: &str) -> Result<Source, String> {
        let quiet = |n| std::iter::repeat_n((52.0, Kind::Noise), n);
        let seconds: Vec<(f64, Kind)> = match name {
            "square-dance" => {
                quiet(20).chain(std::iter::repeat_n((78.0, Kind::Music), 60)).chain(quiet(30)).collect()
            }
            "quiet" => std::iter::repeat_n((50.0, Kind::Noise), 60).collect(),
            other => return Err(format!("unknown scenario `{other}` (square-dance, quiet)")),
        };
        Ok(Source::Synthetic { seconds, second: 0, seed: 0x9E37_79B9_7F4A_7C15 })
    }

    /// The next second of samples, or `None` at the end.
    pub fn next_second(&mut self) -> Option<Vec<i32>> {
        match self {
            Source::Wav { samples, at } => {
                let chunk = samples.get(*at..)?.iter().take(FS).copied().collect::<Vec<_>>();
                *at += FS;
                (!chunk.is_empty()).then_some(chunk)
            }
            Source::Synthetic { seconds, second, seed } => {
                let (db, kind) = *seconds.get(*second)?;
                let t0 = *second * FS;
                *second += 1;
                Some(synthesise(kind, db, t0, seed))
            }
        }
    }
}

fn noise(seed: &mut u64) -> f64 {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    (*seed >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
}

/// One second that reads about `db` dB(A) on the INMP441 preset. The trims are what each
/// texture loses to A-weighting and its crest (measured with the meter; the e2e test checks).
fn synthesise(kind: Kind, db: f64, t0: usize, seed: &mut u64) -> Vec<i32> {
    let trim = match kind {
        Kind::Music => 10.9,
        Kind::Noise => 10.5,
    };
    let a = amplitude(db + trim);
    (t0..t0 + FS)
        .map(|i| {
            let t = i as f64 / FS as f64;
            let v = match kind {
                Kind::Noise => 0.5 * noise(seed),
                Kind::Music => {
                    let beat = 0.6 + 0.4 * (2.0 * PI * 2.0 * t).cos().max(0.0);
                    let tones = 0.35 * (2.0 * PI * 110.0 * t).sin()
                        + 0.4 * (2.0 * PI * 440.0 * t).sin()
                        + 0.25 * (2.0 * PI * 1320.0 * t).sin();
                    beat * tones + 0.1 * noise(seed)
                }
            };
            (v * a).clamp(-8_388_607.0, 8_388_607.0) as i32
        })
        .collect()
}
