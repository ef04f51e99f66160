//! Compact noise records: what is stored comes back as the reading that was measured (to the
//! centi-dB), and a noise box's core state with a one-hour outbox fits the RAM budget.

use gridsentry_firmware_core::mqtt::Session;
use gridsentry_firmware_core::noise::{FixedChain, Meter, NoiseRecord};
use gridsentry_firmware_core::outbox::Outbox;
use gridsentry_sensors::{Body, Header, Id, NoiseReport, Timestamp};
use proptest::prelude::*;

fn header(time: Timestamp) -> Header {
    Header {
        site: Id::new("plaza-3").unwrap(),
        device: Id::new("nb-01").unwrap(),
        boot_id: 1,
        seq: 9,
        time,
        historical: true,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]
    #[test]
    fn a_record_gives_back_the_report_to_the_centi_db(
        s in 946_684_800u64..4_000_000_000, utc in any::<bool>(),
        laeq in 0f32..140.0, lafmax in 0f32..140.0, l10 in proptest::option::of(0f32..140.0),
        l90 in proptest::option::of(0f32..140.0), overload in any::<bool>(), under in any::<bool>(),
        interval_ds in 1u32..6000,
    ) {
        let time = if utc { Timestamp::Utc(s * 1000) } else { Timestamp::Unsynced(s % 4_000_000 * 1000) };
        let r = NoiseReport { interval_ms: interval_ds * 100, laeq_db: laeq, lafmax_db: lafmax, lcpeak_db: None,
            l10_db: l10, l90_db: l90, overload, under_range: under, cal_offset_db: 1.5 };
        let back = NoiseRecord::new(time, &r).reading(header(Timestamp::Unsynced(0)));
        prop_assert_eq!(back.header.time, time);
        prop_assert_eq!(back.header.seq, 9);
        let Body::Noise(b) = back.body else { panic!("noise") };
        let close = |a: f32, b: f32| (a - b).abs() <= 0.0051;
        prop_assert!(close(b.laeq_db, laeq) && close(b.lafmax_db, lafmax));
        prop_assert_eq!(b.l10_db.is_some(), l10.is_some());
        prop_assert!(b.l10_db.zip(l10).is_none_or(|(x, y)| close(x, y)));
        prop_assert!(b.l90_db.zip(l90).is_none_or(|(x, y)| close(x, y)));
        prop_assert_eq!((b.overload, b.under_range, b.interval_ms, b.cal_offset_db), (overload, under, interval_ds * 100, 1.5));
    }
}

#[test]
fn the_noise_box_core_with_a_one_hour_outbox_fits_in_96_kib() {
    // RP2040 and ESP32-C3 boards get 128 KB of static RAM for the noise box: the core (meter,
    // one hour of 1 s reports, MQTT session) must leave ≥ 32 KB for the network stack.
    let core = size_of::<NoiseRecord>()
        + size_of::<Meter<FixedChain>>()
        + size_of::<Outbox<NoiseRecord, 3600>>()
        + size_of::<Session<8>>();
    eprintln!(
        "record {} B, outbox entry {} B, one-hour outbox {} B, meter {} B, core total {} B",
        size_of::<NoiseRecord>(),
        (size_of::<Outbox<NoiseRecord, 3600>>() - size_of::<Outbox<NoiseRecord, 1>>()) / 3599,
        size_of::<Outbox<NoiseRecord, 3600>>(),
        size_of::<Meter<FixedChain>>(),
        core
    );
    assert!(core <= 96 * 1024, "{core} bytes");
}
