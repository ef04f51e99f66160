//! The fixed-point chain for chips without an FPU (RP2040's Cortex-M0+, ESP32-C3): Q31
//! coefficients with a post-shift of 1, 32-bit state, 64-bit accumulators, direct form I.
//!
//! Why it is built this way (instructions per sample are the budget, see `scripts/firmware-bench`):
//! - Samples are scaled by 2⁴ on entry: 4 fraction bits below the 24-bit LSB keep the rounding
//!   noise ~ 24 dB under the microphone's own, with 24 dB of headroom left in 32 bits.
//! - Every section keeps the remainder its shift threw away and adds it back next sample (first
//!   order error feedback): without it the 20 Hz double pole amplifies rounding noise ~ 60 dB.
//! - Sections 1 and 2 have their zeros at DC: the numerator is x − 2x₁ + x₂, no multiplies.
//!   The shelf's and section 3's numerators are divided by their b0 (applied to the energy
//!   instead), and section 3's b1/b0 ≈ 2.4 is split as 2 (a shift) + 0.4.
//! - Energies are accumulated per 1 ms block as u64 (y/4)²; everything slower runs per block.

use super::coeffs::{self, q30, Q};
use super::mic::Mic;
use super::{Block, Chain, BLOCK};

/// 32×32 → 64-bit signed product. Cortex-M0 has no long multiply: a plain i64 product calls the
/// generic 64×64 `__aeabi_lmul`; four 16×16 multiplies do it in about half the instructions.
#[inline(always)]
fn mul(a: i32, b: i32) -> i64 {
    #[cfg(target_arch = "arm")]
    {
        let (ah, al) = (a >> 16, (a & 0xffff) as u32);
        let (bh, bl) = (b >> 16, (b & 0xffff) as u32);
        let hh = (ah * bh) as i64;
        let mid = (ah * bl as i32) as i64 + (al as i32 * bh) as i64;
        let ll = (al * bl) as i64;
        (hh << 32) + (mid << 16) + ll
    }
    #[cfg(not(target_arch = "arm"))]
    {
        a as i64 * b as i64
    }
}

/// m², m < 2³⁰ (three 16×16 multiplies on Cortex-M0, one long multiply elsewhere).
#[inline(always)]
fn square(m: u32) -> u64 {
    #[cfg(target_arch = "arm")]
    {
        let (h, l) = (m >> 16, m & 0xffff);
        ((((h * h) as u64) << 32) | (l * l) as u64) + (((2 * h * l) as u64) << 16)
    }
    #[cfg(not(target_arch = "arm"))]
    {
        m as u64 * m as u64
    }
}

/// `acc >> 30` saturated to i32, and the 30 bits the shift dropped (for the next sample).
#[inline(always)]
fn shift(acc: i64) -> (i32, u32) {
    let rem = acc as u32 & ((1 << Q) - 1);
    // Fits in i32 iff bits 61..63 agree: one test on the common path.
    if (((acc >> 61) as i32).wrapping_add(1) as u32) > 1 {
        return (saturate(acc), rem);
    }
    ((acc >> Q) as i32, rem)
}

#[cold]
#[inline(never)]
fn saturate(acc: i64) -> i32 {
    if acc < 0 {
        i32::MIN
    } else {
        i32::MAX
    }
}

/// A DF1 section whose numerator is (1 − z⁻¹)²: x − 2x₁ + x₂, then poles a1, a2.
#[derive(Debug, Clone, Default)]
struct DcZeros {
    a: [i32; 2],
    x: [i32; 2],
    y: [i32; 2],
    rem: u32,
}

impl DcZeros {
    fn new(a: [f64; 2]) -> Self {
        DcZeros { a: [q30(-a[0]), q30(-a[1])], ..Default::default() }
    }

    #[inline(always)]
    fn run(&mut self, x: i32) -> i32 {
        let num = x.wrapping_sub(self.x[0].wrapping_mul(2)).wrapping_add(self.x[1]);
        let acc =
            ((num as i64) << Q) + mul(self.a[0], self.y[0]) + mul(self.a[1], self.y[1]) + self.rem as i64;
        let (y, rem) = shift(acc);
        self.rem = rem;
        self.x = [x, self.x[0]];
        self.y = [y, self.y[0]];
        y
    }
}

/// The fixed-point chain: DC blocker → microphone shelf → A-weighting (3 sections).
#[derive(Debug, Clone)]
pub struct FixedChain {
    /// DC blocker: last input, and the output in Q30 (64 bits: its pole needs them).
    dc: (i32, i64),
    shelf_c: [i32; 2],
    shelf: (i32, i32, u32),
    s1: DcZeros,
    s2: DcZeros,
    b3: [i32; 2],
    a3: [i32; 2],
    x3: [i32; 2],
    y3: [i32; 2],
    rem3: u32,
}

impl Chain for FixedChain {
    fn new(mic: &Mic) -> Self {
        let (b0, b1, a1) = mic.shelf(coeffs::FS as f32);
        let n3 = coeffs::b3_over_b0();
        FixedChain {
            dc: (0, 0),
            shelf_c: [q30((b1 / b0) as f64), q30(-a1 as f64)],
            shelf: (0, 0, 0),
            s1: DcZeros::new(coeffs::A1),
            s2: DcZeros::new(coeffs::A2),
            b3: [q30(n3[1] - 2.0), q30(n3[2])],
            a3: [q30(-coeffs::A3[0]), q30(-coeffs::A3[1])],
            x3: [0; 2],
            y3: [0; 2],
            rem3: 0,
        }
    }

    fn block(&mut self, samples: &[i32; BLOCK]) -> Block {
        let mut sum: u64 = 0;
        let mut peak: u32 = 0;
        for &s in samples {
            peak = peak.max(s.unsigned_abs());
            let y = self.sample(s << 4);
            sum += square((y >> 2).unsigned_abs());
        }
        // Full scale (2²³ at the input) is 2²⁵ after the ×16 and /4: mean square re full scale.
        Block { mean_square: sum as f32 / (BLOCK as f32 * (1u64 << 50) as f32), peak }
    }
}

impl FixedChain {
    /// One sample (input already scaled by 2⁴) through the chain.
    #[inline(always)]
    fn sample(&mut self, x: i32) -> i32 {
        // DC blocker: y = x − x₁ + R·y₁ with R = 1 − 2⁻¹², i.e. y₁ − y₁/4096: no multiply.
        let (x1, y1) = self.dc;
        let acc = ((x.wrapping_sub(x1) as i64) << Q) + y1 - (y1 >> coeffs::DC_SHIFT);
        self.dc = (x, acc);
        let d = shift(acc).0;
        // Microphone shelf over b0 (b0 is in the level stage's gain): y = x + b1·x₁ − a1·y₁.
        let (x1, y1, rem) = self.shelf;
        let c = &self.shelf_c;
        let acc = ((d as i64) << Q) + mul(c[0], x1) + mul(c[1], y1) + rem as i64;
        let (e, rem) = shift(acc);
        self.shelf = (d, e, rem);
        let a = self.s2.run(self.s1.run(e));
        // Section 3 over b0 (b0 is in the level stage's gain): x + (2 + c1)·x₁ + c2·x₂ + poles.
        let (b, p) = (&self.b3, &self.a3);
        let acc = (((a as i64) + ((self.x3[0] as i64) << 1)) << Q)
            + mul(b[0], self.x3[0])
            + mul(b[1], self.x3[1])
            + mul(p[0], self.y3[0])
            + mul(p[1], self.y3[1])
            + self.rem3 as i64;
        let (y, rem) = shift(acc);
        self.rem3 = rem;
        self.x3 = [a, self.x3[0]];
        self.y3 = [y, self.y3[0]];
        y
    }
}
