//! Microphone presets: sensitivity, noise floor and a first-order shelf that undoes the
//! capsule's low-frequency roll-off (a MEMS microphone's vent acts as a first-order high-pass).
//! The shelf boosts below the corner by at most 12 dB, so it cannot blow up rumble or DC.

/// A microphone's constants.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Mic {
    /// Name, for status messages.
    pub name: &'static str,
    /// Output at 94 dB SPL (1 kHz), dBFS of a full-scale sine's peak.
    pub sensitivity_dbfs: f32,
    /// Equivalent input noise, dB(A): below it a level is reported as under range.
    pub noise_floor_db: f32,
    /// Low-frequency −3 dB corner to undo, Hz (0: none).
    pub corner_hz: f32,
}

impl Mic {
    /// InvenSense INMP441: −26 dBFS, EIN 33 dB(A), LF −3 dB at 60 Hz (DS-INMP441-00 rev 1.1, table 1).
    pub const INMP441: Mic =
        Mic { name: "INMP441", sensitivity_dbfs: -26.0, noise_floor_db: 33.0, corner_hz: 60.0 };
    /// TDK ICS-43434: −26 dBFS, SNR 65 dB(A) (EIN 29 dB(A)). The 60 Hz corner is assumed
    /// like the INMP441's: check it against a calibrator.
    pub const ICS43434: Mic =
        Mic { name: "ICS-43434", sensitivity_dbfs: -26.0, noise_floor_db: 29.0, corner_hz: 60.0 };
    /// Knowles SPH0645LM4H: −26 dBFS, SNR 65 dB(A) (EIN 29 dB(A)). The 60 Hz corner is
    /// assumed: check it against a calibrator.
    pub const SPH0645: Mic =
        Mic { name: "SPH0645", sensitivity_dbfs: -26.0, noise_floor_db: 29.0, corner_hz: 60.0 };
    /// An ideal flat microphone (tests, line input).
    pub const FLAT: Mic = Mic { name: "flat", sensitivity_dbfs: -26.0, noise_floor_db: 0.0, corner_hz: 0.0 };

    /// The shelf (s + ωc)/(s + ωc/4) through the bilinear transform: (b0, b1, a1) of
    /// y = b0·x + b1·x₁ − a1·y₁. Unity at high frequencies. Flat mic: (1, 0, 0).
    pub fn shelf(&self, fs: f32) -> (f32, f32, f32) {
        if self.corner_hz <= 0.0 {
            return (1.0, 0.0, 0.0);
        }
        let k = 2.0 * fs;
        let wc = 2.0 * core::f32::consts::PI * self.corner_hz;
        let (wz, wp) = (wc, wc / 4.0);
        // (s + wz)/(s + wp), s = k(1 − z⁻¹)/(1 + z⁻¹).
        let d = k + wp;
        ((k + wz) / d, (wz - k) / d, (wp - k) / d)
    }
}
