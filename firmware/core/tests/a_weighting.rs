//! The A-weighting: the committed constants are the design's output, and both chains follow
//! IEC 61672-1's analytic curve within ±0.3 dB at every one-third-octave centre 20 Hz – 16 kHz.

mod support;

use gridsentry_firmware_core::noise::{coeffs, Chain, FixedChain, FloatChain, Mic};
use support::{design, energy, sine, FS};

#[test]
fn committed_constants_are_the_designs_output() {
    let d = design::design(FS);
    let close = |a: f64, b: f64| (a - b).abs() <= 1e-9 * a.abs().max(1e-3);
    let [s1, s2, s3] = d.sections;
    for (got, want) in [
        (coeffs::A1.to_vec(), s1.a.to_vec()),
        (coeffs::A2.to_vec(), s2.a.to_vec()),
        (coeffs::B3.to_vec(), s3.b.to_vec()),
        (coeffs::A3.to_vec(), s3.a.to_vec()),
        (vec![coeffs::GAIN], vec![d.gain]),
    ] {
        assert!(got.iter().zip(&want).all(|(a, b)| close(*a, *b)), "{got:?} != design {want:?}");
    }
    let worst = (0..=2000)
        .map(|i| 20.0 * 800f64.powf(i as f64 / 2000.0))
        .map(|f| (d.response_db(f, FS) - design::analytic_db(f)).abs())
        .fold(0.0, f64::max);
    assert!(worst < 0.05, "design deviates {worst:.3} dB from IEC 61672-1 between 20 Hz and 16 kHz");
}

/// Deviation from the analytic curve of a chain measured with sines, dB, per frequency.
fn measured<C: Chain>() -> Vec<(f64, f64)> {
    let level = |f: f64| {
        let mut c = C::new(&Mic::FLAT);
        10.0 * (energy(&mut c, &sine(f, -20.0, 1.5), 0.5) * coeffs::GAIN * coeffs::GAIN).log10()
    };
    let at_1k = level(1000.0);
    design::third_octaves().into_iter().map(|f| (f, level(f) - at_1k - design::analytic_db(f))).collect()
}

#[test]
fn both_chains_follow_the_analytic_curve_within_0_3_db() {
    for (name, deviations) in [("fixed", measured::<FixedChain>()), ("float", measured::<FloatChain>())] {
        let worst =
            deviations
                .iter()
                .copied()
                .fold((0.0f64, 0.0f64), |w, d| if d.1.abs() > w.1.abs() { d } else { w });
        eprintln!("{name}: worst deviation {:+.3} dB at {:.0} Hz", worst.1, worst.0);
        for (f, e) in deviations {
            assert!(e.abs() <= 0.3, "{name} chain: {e:+.3} dB at {f:.0} Hz");
        }
    }
}
