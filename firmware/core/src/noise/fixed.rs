//! The fixed-point chain for chips without an FPU (RP2040's Cortex-M0+, ESP32-C3): Q31
//! coefficients with a post-shift of 1 (Q2.30, as CMSIS-DSP's `arm_biquad_cascade_df1_q31`),
//! 32-bit state, 64-bit accumulators, direct form I.
//!
//! Why it is built this way (instructions per sample are the budget, see `scripts/firmware-bench`):
//! - Samples are scaled by 2⁴ on entry: 4 fraction bits below the 24-bit LSB, 24 dB of headroom.
//! - Numerator terms with integer coefficients (the zeros at DC of the DC blocker and of
//!   sections 1 and 2, section 3's 1 + 2z⁻¹) are added after the shift, in 32 bits: adding
//!   them as x·2³⁰ into the 64-bit sum would cost a 64-bit shift and carries per section.
//! - Sections 1 and 2 keep the 30 bits their shift drops and add them back next sample
//!   (first-order error feedback): their 20 Hz and 107 Hz poles would otherwise amplify the
//!   rounding noise into the band that counts. The front section's rounding lies below 20 Hz
//!   (removed by sections 1 and 2) and section 3's poles (radius 0.34) hardly amplify it.
//! - The DC blocker and the microphone shelf are one section; the shelf's and section 3's
//!   numerators are divided by their b0 (applied to the energy instead).
//! - Cortex-M0 has no long multiply: products are four 16×16 multiplies on coefficients split
//!   once at start-up (a plain i64 product calls the generic 64×64 `__aeabi_lmul`).
//! - Energies are accumulated per block as u64 (y/8)²; everything slower runs per block.

use super::coeffs::{self, q30, Q};
use super::mic::Mic;
use super::{Block, Chain, BLOCK};

/// A Q30 coefficient, also kept split in 16-bit halves for Cortex-M0's multiplies.
#[derive(Debug, Clone, Copy, Default)]
struct Coef {
    v: i32,
    h: i32,
    l: u32,
}

impl Coef {
    fn new(x: f64) -> Self {
        let v = q30(x);
        Coef { v, h: v >> 16, l: (v & 0xffff) as u32 }
    }
}

/// Coefficient × sample, the exact 64-bit product.
#[inline(always)]
fn mul(a: Coef, b: i32) -> i64 {
    #[cfg(target_arch = "arm")]
    {
        let _ = a.v;
        let (bh, bl) = (b >> 16, (b & 0xffff) as u32);
        let hh = (a.h * bh) as i64;
        let mid = (a.h * bl as i32) as i64 + (a.l as i32 * bh) as i64;
        let ll = (a.l * bl) as i64;
        (hh << 32) + (mid << 16) + ll
    }
    #[cfg(not(target_arch = "arm"))]
    {
        let _ = (a.h, a.l);
        a.v as i64 * b as i64
    }
}

/// v² (three 16×16 multiplies on Cortex-M0, one long multiply elsewhere).
#[inline(always)]
fn square(v: i32) -> u64 {
    #[cfg(target_arch = "arm")]
    {
        let m = v.unsigned_abs();
        let (h, l) = (m >> 16, m & 0xffff);
        ((((h * h) as u64) << 32) | (l * l) as u64) + (((2 * h * l) as u64) << 16)
    }
    #[cfg(not(target_arch = "arm"))]
    {
        (v as i64 * v as i64) as u64
    }
}

/// `num + (p >> 30)` saturated to i32, and the 30 bits the shift dropped.
#[inline(always)]
fn out(num: i32, p: i64) -> (i32, u32) {
    let rem = p as u32 & ((1 << Q) - 1);
    let y = (p >> Q) + num as i64;
    if y as i32 as i64 != y {
        return (saturate(y), rem);
    }
    (y as i32, rem)
}

#[cold]
#[inline(never)]
fn saturate(y: i64) -> i32 {
    if y < 0 {
        i32::MIN
    } else {
        i32::MAX
    }
}

/// One DF1 section's coefficients and state.
#[derive(Debug, Clone, Default)]
struct Section {
    /// Numerator coefficients (meaning per section) and p1, p2 (= −a1, −a2).
    c: [Coef; 4],
    x: [i32; 2],
    y: [i32; 2],
    rem: u32,
}

impl Section {
    fn new(c0: f64, c1: f64, a: [f64; 2]) -> Self {
        Section { c: [c0, c1, -a[0], -a[1]].map(Coef::new), ..Default::default() }
    }

    #[inline(always)]
    fn poles(&self) -> i64 {
        mul(self.c[2], self.y[0]) + mul(self.c[3], self.y[1])
    }

    #[inline(always)]
    fn push(&mut self, x: i32, y: i32) -> i32 {
        self.x = [x, self.x[0]];
        self.y = [y, self.y[0]];
        y
    }

    /// Sections 1 and 2: numerator x − 2x₁ + x₂, with error feedback.
    #[inline(always)]
    fn dc_zeros(&mut self, x: i32) -> i32 {
        let num = x.wrapping_sub(self.x[0].wrapping_mul(2)).wrapping_add(self.x[1]);
        let (y, rem) = out(num, self.poles() + self.rem as i64);
        self.rem = rem;
        self.push(x, y)
    }
}

/// The fixed-point chain: DC blocker and microphone shelf (one section) → A-weighting (three).
#[derive(Debug, Clone)]
pub struct FixedChain {
    front: Section,
    s1: Section,
    s2: Section,
    s3: Section,
}

/// Clipped: at or beyond ±(2²³ − 1), tested with one unsigned compare.
#[inline(always)]
fn clipped(s: i32) -> bool {
    const CLIP: i32 = (1 << 23) - 1;
    (s.wrapping_add(CLIP - 1)) as u32 >= (2 * CLIP - 1) as u32
}

impl Chain for FixedChain {
    fn new(mic: &Mic) -> Self {
        let f = coeffs::front(mic);
        let n3 = coeffs::b3_over_b0();
        FixedChain {
            front: Section::new(f.c, 0.0, f.a),
            s1: Section::new(0.0, 0.0, coeffs::A1),
            s2: Section::new(0.0, 0.0, coeffs::A2),
            s3: Section::new(n3[1] - 2.0, n3[2], coeffs::A3),
        }
    }

    fn block(&mut self, samples: &[i32; BLOCK]) -> Block {
        let mut sum: u64 = 0;
        let mut clip = false;
        for &s in samples {
            clip |= clipped(s);
            sum += square(self.sample(s << 4) >> 3);
        }
        // Full scale (2²³ at the input) is 2²⁴ after the ×16 and /8 (≤ 2⁵⁶ per square even
        // saturated, so 192 of them fit in u64): mean square re full scale.
        Block { mean_square: sum as f32 / (BLOCK as f32 * (1u64 << 48) as f32), clipped: clip }
    }
}

impl FixedChain {
    /// One sample (input already scaled by 2⁴) through the chain.
    #[inline(always)]
    fn sample(&mut self, x: i32) -> i32 {
        // DC blocker × shelf: (1 − z⁻¹)(1 + c·z⁻¹) / ((1 − R·z⁻¹)(1 + a·z⁻¹)), numerator
        // x − x₁ + c·(x₁ − x₂); no error feedback.
        let f = &self.front;
        let p = mul(f.c[0], f.x[0].wrapping_sub(f.x[1])) + f.poles();
        let d = out(x.wrapping_sub(f.x[0]), p).0;
        let d = self.front.push(x, d);
        let e = self.s1.dc_zeros(d);
        let a = self.s2.dc_zeros(e);
        // Section 3 over b0: x + 2x₁ (integer part) + c1·x₁ + c2·x₂ (c1 = b1/b0 − 2); no
        // error feedback.
        let f = &self.s3;
        let p = mul(f.c[0], f.x[0]) + mul(f.c[1], f.x[1]) + f.poles();
        let y = out(a.wrapping_add(f.x[0].wrapping_mul(2)), p).0;
        self.s3.push(a, y)
    }
}
