//! The wristband gateway: batching per band, repeats not doubled, band removal reported at once,
//! advertisements with service data, garbage and too many bands counted.

use gridsentry_firmware_core::wristband::{Gateway, Settings};
use gridsentry_sensors::{Contact, HeartRateReport, Id};
use proptest::prelude::*;

fn band(s: &str) -> Id {
    Id::new(s).unwrap()
}

/// 72 bpm, contact detected, one RR interval of `rr`/1024 s.
fn hrm(bpm: u8, rr: u16) -> Vec<u8> {
    let [lo, hi] = rr.to_le_bytes();
    vec![0x16, bpm, lo, hi]
}

#[test]
fn notifications_of_an_interval_become_one_reading() {
    let mut g: Gateway<4> = Gateway::new(Settings::default());
    let mut out = Vec::new();
    let a = band("c0ffee000001");
    for (i, bpm) in [70u8, 71, 72, 73, 74].iter().enumerate() {
        g.notification(&a, &hrm(*bpm, 900 + i as u16), i as u64 * 1000, &mut |r| out.push(r));
    }
    g.due(4_999, &mut |r| out.push(r));
    assert!(out.is_empty(), "the interval is not over");
    g.due(5_000, &mut |r| out.push(r));
    assert_eq!(out.len(), 1);
    let r = &out[0];
    assert_eq!((r.bpm, r.contact), (74, Contact::Detected));
    assert_eq!(r.rr_1024.as_slice(), &[900, 901, 902, 903, 904]);
    g.due(20_000, &mut |r| out.push(r));
    assert_eq!(out.len(), 1, "nothing new, nothing sent (a silent band is not heart rate 0)");
}

#[test]
fn repeated_advertisements_do_not_double_rr_intervals() {
    let mut g: Gateway<4> = Gateway::new(Settings::default());
    let mut out: Vec<HeartRateReport> = Vec::new();
    let a = band("c0ffee000002");
    // AD: flags structure, then service data 0x2A37 with the measurement, then battery 0x2A19.
    let mut ad = vec![0x02, 0x01, 0x06, 0x07, 0x16, 0x37, 0x2A];
    ad.extend(hrm(72, 922));
    ad.extend([0x04, 0x16, 0x19, 0x2A, 87]);
    for t in 0..10 {
        g.advertisement(&a, &ad, t * 100, &mut |r| out.push(r));
    }
    g.due(5_000, &mut |r| out.push(r));
    assert_eq!(out.len(), 1);
    assert_eq!((out[0].bpm, out[0].rr_1024.as_slice(), out[0].battery_pct), (72, &[922u16][..], Some(87)));
    assert_eq!(g.dropped().repeats, 9);
}

#[test]
fn taking_the_band_off_is_reported_at_once() {
    let mut g: Gateway<4> = Gateway::new(Settings::default());
    let mut out = Vec::new();
    let a = band("c0ffee000003");
    g.notification(&a, &hrm(65, 950), 0, &mut |r| out.push(r));
    g.notification(&a, &[0x04, 0x00], 1_200, &mut |r| out.push(r)); // contact not detected, 0 bpm
    assert_eq!(out.len(), 1, "no waiting for the interval");
    assert_eq!(out[0].contact, Contact::NotDetected);
    g.notification(&a, &hrm(66, 940), 9_000, &mut |r| out.push(r));
    assert_eq!(out.len(), 2, "back on the wrist: at once too");
    assert_eq!((out[1].contact, out[1].bpm), (Contact::Detected, 66));
}

#[test]
fn garbage_and_extra_bands_are_counted() {
    let mut g: Gateway<2> = Gateway::new(Settings::default());
    let mut out = Vec::new();
    g.notification(&band("aa0000000001"), &[], 0, &mut |r| out.push(r));
    g.notification(&band("aa0000000001"), &[0x01, 0x48], 1, &mut |r| out.push(r)); // u16 HR cut short
    g.advertisement(&band("aa0000000002"), &[0x09, 0x16, 0x37], 2, &mut |r| out.push(r)); // length past the end
    g.notification(&band("aa0000000002"), &hrm(60, 1000), 3, &mut |r| out.push(r));
    g.notification(&band("aa0000000003"), &hrm(60, 1000), 4, &mut |r| out.push(r)); // a third band
    let d = g.dropped();
    assert_eq!((d.malformed, d.unknown_band), (3, 1));
    assert!(out.is_empty());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]
    /// Any bytes from any band, in any order: no panic, every reading valid.
    #[test]
    fn never_panics_and_reports_are_bounded(
        events in proptest::collection::vec((0u8..4, any::<bool>(), proptest::collection::vec(any::<u8>(), 0..30)), 0..40)
    ) {
        let mut g: Gateway<3> = Gateway::new(Settings::default());
        let mut out = Vec::new();
        for (i, (b, advert, bytes)) in events.iter().enumerate() {
            let id = band(&format!("b{b}"));
            let now = i as u64 * 700;
            if *advert {
                g.advertisement(&id, bytes, now, &mut |r| out.push(r));
            } else {
                g.notification(&id, bytes, now, &mut |r| out.push(r));
            }
            g.due(now, &mut |r| out.push(r));
        }
        for r in out {
            prop_assert!(r.rr_1024.len() <= gridsentry_sensors::reading::RR_MAX);
            prop_assert!(r.battery_pct.is_none_or(|p| p <= 100));
        }
    }
}

#[test]
fn a_band_is_named_by_its_address_most_significant_byte_first() {
    use gridsentry_firmware_core::wristband::band_id;
    assert_eq!(band_id([0x01, 0x00, 0x00, 0xee, 0xff, 0xc0]).as_str(), "c0ffee000001");
}
