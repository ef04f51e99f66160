//! NMEA GGA decoding: real receiver sentences, checksum and quality gating, displacement from
//! the origin, and properties over generated sentences.

use gridsentry_sensors::nmea::*;
use gridsentry_sensors::ChannelKind;
use proptest::prelude::*;

#[test]
fn decodes_real_receiver_sentences() {
    // gpsd's documentation example (plain GPS fix).
    let f =
        parse_line("$GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,*47\r\n").unwrap().unwrap();
    assert!((f.lat_deg - (48.0 + 7.038 / 60.0)).abs() < 1e-12);
    assert!((f.lon_deg - (11.0 + 31.0 / 60.0)).abs() < 1e-12);
    assert_eq!((f.quality, f.satellites), (Quality::Gps, 8));
    assert!((f.alt_m - 545.4).abs() < 1e-4);
    // Southern/western hemispheres are negative.
    let f = parse_line(&with_checksum("$GPGGA,092750.000,5321.6802,S,00630.3372,W,4,8,1.03,61.7,M,55.2,M,,"))
        .unwrap()
        .unwrap();
    assert!(f.lat_deg < 0.0 && f.lon_deg < 0.0);
    assert_eq!(f.quality, Quality::Rtk);
}

#[test]
fn other_sentences_are_skipped_and_noise_is_an_error() {
    let gsv = "$GPGSV,3,1,11,03,03,111,00,04,15,270,00,06,01,010,00,13,06,292,00*74";
    assert_eq!(parse_line(gsv), Ok(None));
    assert_eq!(
        parse_line("$GPGSV,3,1,11,03,03,111,00,04,15,270,00,06,01,010,00,13,06,292,00*75"),
        Err(NmeaError::Checksum)
    );
    assert_eq!(
        parse_line("$GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,*48"),
        Err(NmeaError::Checksum)
    );
    assert_eq!(parse_line("garbage \u{0} bytes"), Err(NmeaError::Malformed));
    assert_eq!(parse_line(""), Err(NmeaError::Malformed));
    // No fix (quality 0): a sentence, but no position.
    assert_eq!(parse_line(&with_checksum("$GPGGA,123519,,,,,0,00,99.9,,M,,M,,")), Err(NmeaError::NoFix));
}

#[test]
fn displacement_from_the_origin_in_millimetres() {
    let origin = Origin { lat_deg: 30.5, lon_deg: 104.08, alt_m: 812.0 };
    // One arc-second of latitude at 30.5° N is 30.8 m; 1e-6° of longitude is ~96 mm there.
    let moved = Fix {
        lat_deg: 30.5 + 1.0 / 3600.0,
        lon_deg: 104.08 + 1e-6,
        alt_m: 811.99,
        quality: Quality::Rtk,
        satellites: 20,
    };
    let [e, n, u] = origin.enu_mm(&moved);
    assert!((n - 30_796.0).abs() < 5.0, "north {n}");
    assert!((e - 95.99).abs() < 0.1, "east {e}");
    assert!((u + 10.0).abs() < 1e-6, "up {u}");
    let r = origin.report([3.0, 4.0, -1.0]).unwrap();
    assert_eq!(r.get(ChannelKind::DisplacementMm), Some(5.0));
    assert_eq!(r.get(ChannelKind::DisplacementUpMm), Some(-1.0));
}

fn fix() -> impl Strategy<Value = Fix> {
    (-89.9f64..89.9, -179.9f64..179.9, -400f64..8000.0, 0usize..4, 4u32..40).prop_map(
        |(la, lo, alt, q, sats)| Fix {
            lat_deg: la,
            lon_deg: lo,
            alt_m: (alt * 10_000.0).round() / 10_000.0,
            quality: [Quality::Gps, Quality::Dgps, Quality::FloatRtk, Quality::Rtk][q],
            satellites: sats,
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// What a receiver writes reads back to the same position (to 0.1 mm horizontally; the
    /// altitude goes through f32 in the parser: 0.1 mm below 8 km).
    #[test]
    fn written_sentences_read_back(f in fix(), t in 0f64..86_399.0) {
        let line = gga_line(t, &f);
        let got = parse_line(&line).unwrap().unwrap();
        let [e, n, u] = Origin { lat_deg: f.lat_deg, lon_deg: f.lon_deg, alt_m: f.alt_m }.enu_mm(&got);
        prop_assert!(e.abs() < 0.1 && n.abs() < 0.1, "{line} -> {got:?}");
        prop_assert!(u.abs() < 1.0, "{line} -> {got:?}");
        prop_assert_eq!((got.quality, got.satellites), (f.quality, f.satellites));
    }

    /// One changed character is caught (checksum, or the sentence no longer parses).
    #[test]
    fn a_changed_character_never_passes_as_the_same_fix(f in fix(), at in any::<prop::sample::Index>(), c in 0x20u8..0x7f) {
        let line = gga_line(0.0, &f);
        let body = line.trim_end();
        let i = 1 + at.index(body.len() - 4);
        prop_assume!(body.as_bytes()[i] != c);
        let mut bytes = body.as_bytes().to_vec();
        bytes[i] = c;
        let changed = String::from_utf8(bytes).unwrap();
        prop_assert!(parse_line(&changed).is_err(), "{changed}");
    }

    /// Any input: no panic, and a fix is always a finite position.
    #[test]
    fn never_panics(s in ".{0,120}") {
        if let Ok(Some(f)) = parse_line(&s) {
            prop_assert!(f.lat_deg.is_finite() && f.lon_deg.is_finite() && f.alt_m.is_finite());
        }
    }
}
