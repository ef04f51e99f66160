//! The f32 chain for chips with an FPU: the same structure and constants as the fixed-point
//! chain (so the two can be checked against each other, numerators over b0 included), with the
//! input scaled to ±1.0.

use super::coeffs;
use super::mic::Mic;
use super::{Block, Chain, BLOCK};

/// DF1 biquad state and coefficients (a stored negated: y = Σ b·x + Σ a·y).
#[derive(Debug, Clone, Default)]
struct Biquad {
    b: [f32; 3],
    a: [f32; 2],
    x: [f32; 2],
    y: [f32; 2],
}

impl Biquad {
    fn new(b: [f64; 3], a: [f64; 2]) -> Self {
        Biquad { b: b.map(|v| v as f32), a: [-a[0] as f32, -a[1] as f32], ..Default::default() }
    }

    #[inline(always)]
    fn run(&mut self, x: f32) -> f32 {
        let y = self.b[0] * x
            + self.b[1] * self.x[0]
            + self.b[2] * self.x[1]
            + self.a[0] * self.y[0]
            + self.a[1] * self.y[1];
        self.x = [x, self.x[0]];
        self.y = [y, self.y[0]];
        y
    }
}

/// The float chain: DC blocker and microphone shelf (one section) → A-weighting (three).
#[derive(Debug, Clone)]
pub struct FloatChain {
    sections: [Biquad; 4],
}

impl Chain for FloatChain {
    fn new(mic: &Mic) -> Self {
        let f = coeffs::front(mic);
        let dc_zero = [1.0, -2.0, 1.0];
        FloatChain {
            sections: [
                Biquad::new([1.0, f.c - 1.0, -f.c], f.a),
                Biquad::new(dc_zero, coeffs::A1),
                Biquad::new(dc_zero, coeffs::A2),
                Biquad::new(coeffs::b3_over_b0(), coeffs::A3),
            ],
        }
    }

    fn block(&mut self, samples: &[i32; BLOCK]) -> Block {
        const SCALE: f32 = 1.0 / (1u32 << 23) as f32;
        let mut sum = 0.0f32;
        let mut clipped = false;
        for &s in samples {
            clipped |= s.unsigned_abs() >= (1 << 23) - 1;
            let mut v = s as f32 * SCALE;
            for sec in &mut self.sections {
                v = sec.run(v);
            }
            sum += v * v;
        }
        Block { mean_square: sum / BLOCK as f32, clipped }
    }
}
