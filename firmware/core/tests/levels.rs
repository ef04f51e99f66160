//! Levels: SPL calibration (DESIGN.md formula), Fast and Slow time constants, LAeq over two
//! halves, percentiles, flags, the fixed and float chains against each other, the local alarm.

mod support;

use gridsentry_firmware_core::alarm::{Alarm, AlarmSettings};
use gridsentry_firmware_core::noise::{Block, Chain, FixedChain, FloatChain, Levels, Meter, Mic};
use proptest::prelude::*;
use support::{dbfs_for, noise, sine};

fn meter<C: Chain>() -> Meter<C> {
    Meter::new(&Mic::FLAT, 0.0, AlarmSettings::default())
}

fn laeq<C: Chain>(samples: &[i32]) -> f32 {
    let mut m = meter::<C>();
    m.push(&sine(1000.0, -60.0, 0.2)); // settle the filters, then start the interval
    m.report();
    m.push(samples);
    m.report().laeq_db
}

#[test]
fn a_1khz_sine_reads_the_spl_of_the_formula_within_0_1_db() {
    for spl in [40.0, 60.0, 74.0, 94.0, 110.0] {
        let s = sine(1000.0, dbfs_for(spl), 1.0);
        for (name, got) in [("fixed", laeq::<FixedChain>(&s)), ("float", laeq::<FloatChain>(&s))] {
            assert!((got as f64 - spl).abs() <= 0.1, "{name}: {spl} dB SPL read as {got}");
        }
    }
}

#[test]
fn calibration_offset_shifts_every_level_and_is_reported() {
    let mut m = Meter::<FixedChain>::new(&Mic::FLAT, 1.5, AlarmSettings::default());
    m.push(&sine(1000.0, dbfs_for(94.0), 1.2));
    let r = m.report();
    assert!((r.laeq_db - 95.5).abs() < 0.1, "{r:?}");
    assert_eq!(r.cal_offset_db, 1.5);
}

/// Fast (125 ms) and Slow (1 s): after one time constant a step up has covered 1 − 1/e of the
/// energy (−1.99 dB from the final level); a step down falls 4.34 dB per time constant.
#[test]
fn fast_and_slow_follow_their_time_constants() {
    for (name, tau, read) in [
        ("fast", 0.125, Levels::fast_db as fn(&Levels) -> f32),
        ("slow", 1.0, Levels::slow_db as fn(&Levels) -> f32),
    ] {
        let mut m = meter::<FixedChain>();
        m.push(&sine(1000.0, dbfs_for(30.0), 8.0 * tau + 0.5));
        m.push(&sine(1000.0, dbfs_for(80.0), tau));
        let up = read(m.levels());
        assert!((up - (80.0 - 1.99)).abs() < 0.15, "{name}: {up} dB one τ after a step to 80 dB");
        m.push(&sine(1000.0, dbfs_for(80.0), 8.0 * tau));
        m.push(&sine(1000.0, dbfs_for(20.0), tau));
        let down = read(m.levels());
        assert!((down - (80.0 - 4.34)).abs() < 0.15, "{name}: {down} dB one τ after a step down");
    }
}

#[test]
fn two_halves_at_60_and_80_db_give_laeq_77() {
    let mut s = sine(1000.0, dbfs_for(60.0), 30.0);
    s.extend(sine(1000.0, dbfs_for(80.0), 30.0));
    let want = 10.0 * ((1e6 + 1e8) / 2.0f64).log10(); // 76.99
    for (name, got) in [("fixed", laeq::<FixedChain>(&s)), ("float", laeq::<FloatChain>(&s))] {
        assert!((got as f64 - want).abs() < 0.1, "{name}: LAeq {got}, want {want:.2}");
    }
}

/// Blocks of a given level straight into the level stage (mean square for `db` on the FLAT mic).
fn blocks(l: &mut Levels, db: f32, seconds: u32) {
    let ms = 10f32.powf((db - l.db(1.0)) / 10.0);
    for _ in 0..seconds * gridsentry_firmware_core::noise::levels::BLOCKS_PER_S {
        l.add(Block { mean_square: ms, clipped: false });
    }
}

#[test]
fn percentiles_split_the_fast_level_distribution() {
    let mut l = Levels::new(&Mic::FLAT, 0.0);
    blocks(&mut l, 50.0, 80);
    blocks(&mut l, 65.0, 5);
    blocks(&mut l, 80.0, 15);
    let r = l.report();
    assert_eq!((r.l10_db, r.l90_db), (Some(80.0), Some(50.0)), "{r:?}");
    assert_eq!(r.interval_ms, 100_000);
    // LAeq is the energy mean: 10·log10(0.8·10⁵ + 0.05·10^6.5 + 0.15·10⁸).
    let want = 10.0 * (0.8e5f64 + 0.05 * 10f64.powf(6.5) + 0.15e8).log10();
    assert!((r.laeq_db as f64 - want).abs() < 0.01, "{r:?}");
    assert!((r.lafmax_db - 80.0).abs() < 0.01);
    // A new interval starts empty.
    assert_eq!(l.report().l10_db, None);
}

#[test]
fn clipping_sets_overload_and_silence_is_under_range() {
    let mut m = Meter::<FixedChain>::new(&Mic::INMP441, 0.0, AlarmSettings::default());
    let clipped: Vec<i32> =
        sine(1000.0, 6.0, 0.1).iter().map(|s| s.clamp(&-8_388_607, &8_388_607)).copied().collect();
    m.push(&clipped);
    assert!(m.report().overload);
    m.push(&[0; 48_000]); // the filters ring down
    m.report();
    m.push(&[0; 48_000]);
    let r = m.report();
    assert!(!r.overload && r.under_range, "{r:?}");
    m.push(&sine(1000.0, dbfs_for(60.0), 1.0));
    let r = m.report();
    assert!(!r.overload && !r.under_range, "{r:?}");
}

#[test]
fn the_alarm_needs_hold_seconds_above_and_below_with_hysteresis() {
    let mut a = Alarm::new(AlarmSettings { on_db: 70.0, off_db: 67.0, hold_s: 3 });
    let seq = [71.0, 71.0, 69.0, 71.0, 71.0, 71.0, 68.0, 66.0, 66.0, 68.0, 66.0, 66.0, 66.0];
    let got: Vec<bool> = seq.iter().map(|&l| a.second(l)).collect();
    let want = [false, false, false, false, false, true, true, true, true, true, true, true, false];
    assert_eq!(got, want);
}

#[test]
fn the_meter_sounds_the_alarm_on_its_own_after_loud_seconds() {
    let mut m =
        Meter::<FixedChain>::new(&Mic::FLAT, 0.0, AlarmSettings { on_db: 70.0, off_db: 67.0, hold_s: 2 });
    m.push(&sine(1000.0, dbfs_for(75.0), 1.9));
    assert!(!m.alarm(), "one second above is not enough");
    m.push(&sine(1000.0, dbfs_for(75.0), 1.2));
    assert!(m.alarm());
    m.push(&sine(1000.0, dbfs_for(60.0), 3.0));
    assert!(!m.alarm());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]
    /// The fixed chain reads what the float chain reads, for tones and noise at any level the
    /// microphone can produce above its noise floor.
    #[test]
    fn fixed_and_float_chains_agree(f in 20.0f64..16_000.0, spl in 35.0f64..115.0, seed in 1u64..u64::MAX) {
        let s = sine(f, dbfs_for(spl), 0.5);
        let (a, b) = (laeq::<FixedChain>(&s), laeq::<FloatChain>(&s));
        prop_assert!((a - b).abs() < 0.05, "{f:.0} Hz at {spl:.0} dB: fixed {a}, float {b}");
        let amp = (10f64.powf(dbfs_for(spl) / 20.0) * 8_388_607.0) as i32;
        let n = noise(amp.max(1), 24_000, seed);
        let (a, b) = (laeq::<FixedChain>(&n), laeq::<FloatChain>(&n));
        prop_assert!((a - b).abs() < 0.05, "noise at {spl:.0} dB: fixed {a}, float {b}");
    }
}
