//! Filter constants at 48 kHz. The A-weighting sections are the output of the design in
//! `tests/support/design.rs` (print them with `cargo run --example a_weighting_design`; the
//! `a_weighting` test fails if these differ from the design). Fixed-point forms are derived here
//! at compile time, so the float and fixed pipelines share one source of truth.

/// Sample rate the constants are for.
pub const FS: u32 = 48_000;

/// Section 1: double zero at DC, double pole at 20.6 Hz (bilinear). Numerator 1, −2, 1.
pub const A1: [f64; 2] = [-1.9946144559930215, 0.9946217070140843];
/// Section 2: double zero at DC, poles at 107.7 and 737.9 Hz (bilinear). Numerator 1, −2, 1.
pub const A2: [f64; 2] = [-1.8938704947230707, 0.8951597690946617];
/// Section 3 numerator: least-squares fit of the 12.2 kHz double pole (unit gain at DC).
pub const B3: [f64; 3] = [0.1832006595040261, 0.43978907288257135, -0.16538046185027538];
/// Section 3 denominator.
pub const A3: [f64; 2] = [-0.6557755925190408, 0.11338486305536287];
/// Section 3's numerator divided by its b0 (the chains run it so; b0 goes into the gain).
pub const fn b3_over_b0() -> [f64; 3] {
    [1.0, B3[1] / B3[0], B3[2] / B3[0]]
}

/// Gain of the cascade that makes it 0 dB at 1 kHz (applied to the energy, not per sample).
pub const GAIN: f64 = 1.1886040078189242;

/// DC blocker y = x − x₁ + R·y₁ with R = 1 − 2⁻¹² (corner 1.9 Hz, −0.04 dB at 20 Hz): a
/// power of two, so the fixed-point chain needs no multiply for it.
pub const DC_SHIFT: u32 = 12;
/// R of the DC blocker.
pub const DC_R: f64 = 1.0 - 1.0 / (1u32 << DC_SHIFT) as f64;

/// The first section: DC blocker × microphone shelf, (1 − z⁻¹)(1 + c·z⁻¹) over
/// (1 − R·z⁻¹)(1 + a·z⁻¹), the shelf divided by its b0 (which [`Front::gain`] carries).
#[derive(Debug, Clone, Copy)]
pub struct Front {
    /// Shelf zero: b1/b0.
    pub c: f64,
    /// Denominator a1, a2 of the product.
    pub a: [f64; 2],
    /// The shelf's b0.
    pub gain: f64,
}

/// The first section for `mic`.
pub fn front(mic: &super::Mic) -> Front {
    let (b0, b1, a1) = mic.shelf(FS as f32);
    let (c, a) = ((b1 / b0) as f64, a1 as f64);
    Front { c, a: [a - DC_R, -a * DC_R], gain: b0 as f64 }
}

/// Fixed-point coefficient format: Q31 with a post-shift of 1 (as CMSIS-DSP's
/// `arm_biquad_cascade_df1_q31`), i.e. value · 2³⁰, range [−2, 2).
pub const Q: u32 = 30;

/// `x` (|x| < 1) in Q1.31, rounded to nearest.
pub const fn q31(x: f64) -> i32 {
    let scaled = x * (1u64 << 31) as f64;
    (if scaled < 0.0 { scaled - 0.5 } else { scaled + 0.5 }) as i32
}

/// `x` in Q2.30, rounded to nearest.
pub const fn q30(x: f64) -> i32 {
    let scaled = x * (1u32 << Q) as f64;
    (if scaled < 0.0 { scaled - 0.5 } else { scaled + 0.5 }) as i32
}
