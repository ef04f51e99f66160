//! Property tests: every reading round-trips through both codecs; topics round-trip; arbitrary
//! bytes never panic any decoder or parser.

mod common;

use gridsentry_sensors::codec::{self, decode_binary, decode_json, decode_json_core, Format};
use gridsentry_sensors::modbus::MAPS;
use gridsentry_sensors::reading::{FIRMWARE_MAX, RR_MAX};
use gridsentry_sensors::*;
use proptest::prelude::*;

fn id() -> impl Strategy<Value = Id> {
    "[A-Za-z0-9_.-]{1,32}".prop_map(|s| Id::new(&s).unwrap())
}

fn db() -> impl Strategy<Value = f32> {
    -50.0f32..=200.0
}

fn header() -> impl Strategy<Value = Header> {
    let time = prop_oneof![any::<u64>().prop_map(Timestamp::Utc), any::<u64>().prop_map(Timestamp::Unsynced)];
    (id(), id(), any::<u32>(), any::<u32>(), time, any::<bool>()).prop_map(
        |(site, device, boot_id, seq, time, historical)| Header {
            site,
            device,
            boot_id,
            seq,
            time,
            historical,
        },
    )
}

fn noise() -> impl Strategy<Value = NoiseReport> {
    (
        1u32..,
        db(),
        db(),
        proptest::option::of(db()),
        proptest::option::of(db()),
        proptest::option::of(db()),
        any::<(bool, bool)>(),
        -60.0f32..=60.0,
    )
        .prop_map(
            |(
                interval_ms,
                laeq_db,
                lafmax_db,
                lcpeak_db,
                l10_db,
                l90_db,
                (overload, under_range),
                cal_offset_db,
            )| {
                NoiseReport {
                    interval_ms,
                    laeq_db,
                    lafmax_db,
                    lcpeak_db,
                    l10_db,
                    l90_db,
                    overload,
                    under_range,
                    cal_offset_db,
                }
            },
        )
}

fn heart_rate() -> impl Strategy<Value = HeartRateReport> {
    let contact =
        prop_oneof![Just(Contact::Detected), Just(Contact::NotDetected), Just(Contact::Unsupported)];
    let rr = proptest::collection::vec(any::<u16>(), 0..=RR_MAX);
    (id(), 0u16..=300, contact, rr, any::<Option<u16>>(), proptest::option::of(0u8..=100)).prop_map(
        |(band, bpm, contact, rr, energy_kj, battery_pct)| HeartRateReport {
            band,
            bpm,
            contact,
            rr_1024: heapless::Vec::from_slice(&rr).unwrap(),
            energy_kj,
            battery_pct,
        },
    )
}

fn channels(rain: bool) -> impl Strategy<Value = DeformReport> {
    let finite = any::<f64>().prop_filter("finite", |v| v.is_finite());
    proptest::collection::btree_map(proptest::sample::select(ChannelKind::ALL.to_vec()), finite, 1..=9)
        .prop_map(move |m| {
            let mut d = DeformReport::default();
            for (k, v) in m {
                d.push(k, v).unwrap();
            }
            if rain && d.get(ChannelKind::RainCumulativeMm).is_none() {
                d.channels[0].kind = ChannelKind::RainCumulativeMm;
            }
            d
        })
}

fn status() -> impl Strategy<Value = StatusReport> {
    let state = prop_oneof![Just(DeviceState::Online), Just(DeviceState::Offline)];
    let slot = prop_oneof![Just(""), Just("active"), Just("ota_0"), Just("ota_1")];
    (state, "[ -~]{0,24}", any::<u32>(), slot).prop_map(|(state, fw, dropped, slot)| {
        let mut firmware = heapless::String::<FIRMWARE_MAX>::new();
        firmware.push_str(&fw).unwrap();
        StatusReport { state, firmware, dropped, slot: slot.try_into().unwrap() }
    })
}

fn reading() -> impl Strategy<Value = Reading> {
    let body = prop_oneof![
        noise().prop_map(Body::Noise),
        heart_rate().prop_map(Body::HeartRate),
        channels(false).prop_map(Body::Deform),
        channels(true).prop_map(Body::Rain),
        status().prop_map(Body::Status),
    ];
    (header(), body).prop_map(|(header, body)| Reading { header, body })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn every_reading_round_trips_through_json(r in reading()) {
        let bytes = codec::encode_vec(Format::Json, &r).unwrap();
        prop_assert_eq!(&decode_json(&bytes).unwrap(), &r);
        prop_assert_eq!(&decode_json_core(&bytes).unwrap(), &r);
        prop_assert_eq!(&codec::decode(&bytes).unwrap(), &r);
    }

    #[test]
    fn every_reading_round_trips_through_binary(r in reading()) {
        let bytes = codec::encode_vec(Format::Binary, &r).unwrap();
        prop_assert!(bytes.len() <= codec::BINARY_MAX);
        prop_assert_eq!(&decode_binary(&bytes).unwrap(), &r);
        prop_assert_eq!(&codec::decode(&bytes).unwrap(), &r);
    }

    #[test]
    fn json_fits_the_documented_buffer(r in reading()) {
        let mut buf = [0u8; codec::JSON_MAX];
        prop_assert!(codec::encode(Format::Json, &r, &mut buf).is_ok());
    }

    #[test]
    fn topics_round_trip(site in id(), device in id(), i in 0usize..5) {
        let t = Topic::new(site, device, Stream::ALL[i]);
        prop_assert_eq!(Topic::parse(&t.to_string()).unwrap(), t);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = codec::decode(&bytes);
        let _ = decode_json(&bytes);
        let _ = decode_json_core(&bytes);
        let _ = decode_binary(&bytes);
        let _ = hrs::parse(&bytes);
        let _ = Topic::parse(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn mutated_json_never_panics_and_decoders_agree(r in reading(), at in any::<prop::sample::Index>(), b in any::<u8>()) {
        let mut bytes = codec::encode_vec(Format::Json, &r).unwrap();
        let i = at.index(bytes.len());
        bytes[i] = b;
        let full = decode_json(&bytes);
        let core = decode_json_core(&bytes);
        // serde-json-core accepts a few inputs serde_json rejects (it skips ignored scalars
        // loosely), never the other way round.
        if full.is_ok() {
            prop_assert_eq!(full.ok(), core.ok());
        }
    }

    #[test]
    fn modbus_decode_never_panics(m in 0usize..MAPS.len(), words in proptest::collection::vec(proptest::collection::vec(any::<u16>(), 0..8), 0..3)) {
        let slices: Vec<&[u16]> = words.iter().map(Vec::as_slice).collect();
        if let Ok(report) = MAPS[m].decode(&slices) {
            prop_assert_eq!(report.channels.len(), MAPS[m].fields.len());
            prop_assert!(report.channels.iter().all(|c| c.value.is_finite()));
        }
    }

    #[test]
    fn hrs_parses_what_it_is_given(flags in any::<u8>(), hr in any::<u16>(), energy in any::<u16>(), rr in proptest::collection::vec(any::<u16>(), 0..=RR_MAX)) {
        let mut bytes = vec![flags];
        if flags & 1 != 0 { bytes.extend(hr.to_le_bytes()) } else { bytes.push(hr as u8) }
        if flags & 8 != 0 { bytes.extend(energy.to_le_bytes()) }
        if flags & 16 != 0 { for v in &rr { bytes.extend(v.to_le_bytes()) } }
        let m = hrs::parse(&bytes).unwrap();
        prop_assert_eq!(m.bpm, if flags & 1 != 0 { hr } else { u16::from(hr as u8) });
        prop_assert_eq!(m.energy_kj, (flags & 8 != 0).then_some(energy));
        let want: &[u16] = if flags & 16 != 0 { &rr } else { &[] };
        prop_assert_eq!(m.rr_1024.as_slice(), want);
    }
}

/// What a line-protocol round trip keeps: the device time (ms), the last RR interval only (as
/// ms), no calibration offset; channels come back in kind order.
fn as_stored(mut r: Reading) -> Reading {
    if let Timestamp::Unsynced(t) = r.header.time {
        r.header.time = Timestamp::Utc(t);
    }
    match &mut r.body {
        Body::Noise(n) => n.cal_offset_db = 0.0,
        Body::HeartRate(h) => {
            let last = h.rr_1024.last().map(|rr| (hrs::rr_ms(*rr) * 1.024).round() as u16);
            h.rr_1024 = last.into_iter().collect();
        }
        Body::Deform(d) | Body::Rain(d) => d.channels.sort_unstable_by_key(|c| c.kind),
        _ => {}
    }
    r
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn line_protocol_reads_back_what_it_wrote(mut r in reading(), t in 0u64..4_000_000_000_000) {
        use gridsentry_sensors::line_protocol_read::{parse, Precision};
        r.header.time = match r.header.time { Timestamp::Utc(_) => Timestamp::Utc(t), Timestamp::Unsynced(_) => Timestamp::Unsynced(t) };
        let mut line = String::new();
        line_protocol::write_reading(&mut line, &r, &[("grid", "g 1")], t as i64).unwrap();
        let got: Vec<_> = parse(&line, Precision::Ms).collect();
        prop_assert_eq!(got.len(), 1);
        let (ts, back) = got[0].1.clone().unwrap();
        prop_assert_eq!(ts, t as i64);
        prop_assert_eq!(back, as_stored(r));
    }

    #[test]
    fn line_protocol_reader_never_panics(text in "[ -~\n]{0,200}") {
        use gridsentry_sensors::line_protocol_read::{parse, Precision};
        for (_, r) in parse(&text, Precision::Auto) {
            let _ = r;
        }
    }
}

/// The sequence window against the obvious model (a set of every number seen in this boot).
mod seq_window {
    use gridsentry_sensors::seq::{SeqWindow, Verdict, WINDOW};
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    fn model(state: &mut Option<(u32, u32, BTreeSet<u32>)>, boot: u32, seq: u32) -> Verdict {
        match state {
            Some((b, highest, seen)) if *b == boot && seq <= *highest => {
                if *highest - seq >= WINDOW {
                    Verdict::TooOld
                } else if seen.insert(seq) {
                    Verdict::OutOfOrder
                } else {
                    Verdict::Repeat
                }
            }
            Some((b, highest, seen)) if *b == boot => {
                *highest = seq;
                seen.insert(seq);
                Verdict::New
            }
            _ => {
                *state = Some((boot, seq, BTreeSet::from([seq])));
                Verdict::New
            }
        }
    }

    proptest! {
        #[test]
        fn agrees_with_the_model_and_survives_storage(
            ops in proptest::collection::vec((0u32..3, prop_oneof![0u32..3000, any::<u32>()]), 1..400),
        ) {
            let mut w: Option<SeqWindow> = None;
            let mut m = None;
            for (boot, seq) in ops {
                let expected = model(&mut m, boot, seq);
                let got = match &mut w {
                    Some(w) => w.accept(boot, seq),
                    None => { w = Some(SeqWindow::new(boot, seq)); Verdict::New }
                };
                prop_assert_eq!(got, expected, "boot {} seq {}", boot, seq);
                let win = w.as_ref().unwrap();
                let (b, h, bits) = win.parts();
                prop_assert_eq!(&SeqWindow::from_parts(b, h, Some(&bits)), win);
            }
        }
    }
}
