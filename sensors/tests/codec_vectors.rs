//! Byte-annotated vectors for both payload codecs, valid and malformed.

mod common;

use common::*;
use gridsentry_sensors::codec::{self, decode_binary, decode_json, decode_json_core, Format};
use gridsentry_sensors::*;

fn json(r: &Reading) -> String {
    String::from_utf8(codec::encode_vec(Format::Json, r).unwrap()).unwrap()
}

#[test]
fn json_noise_layout() {
    assert_eq!(
        json(&noise()),
        concat!(
            r#"{"v":1,"site":"plaza-3","dev":"nb-01","boot":7,"seq":42,"ts":1764040000123,"#,
            r#""noise":{"interval_ms":1000,"laeq_db":71.5,"lafmax_db":78.25,"lcpeak_db":null,"#,
            r#""l10_db":73.0,"l90_db":null,"overload":false,"under_range":false,"cal_offset_db":-1.5}}"#
        )
    );
}

#[test]
fn json_heart_rate_unsynced_historical() {
    assert_eq!(
        json(&heart_rate()),
        concat!(
            r#"{"v":1,"site":"home-12","dev":"gw-1","boot":1,"seq":3,"mono":5000,"hist":true,"#,
            r#""hr":{"band":"c83a35a1b2c3","bpm":72,"contact":"detected","rr_1024":[922],"#,
            r#""energy_kj":null,"battery_pct":80}}"#
        )
    );
}

#[test]
fn json_deform_channels_are_a_map() {
    let mut d = DeformReport::default();
    d.push(ChannelKind::TiltXDeg, -2.0).unwrap();
    d.push(ChannelKind::TemperatureC, 22.5).unwrap();
    let r = Reading { header: header(Timestamp::Utc(1)), body: Body::Deform(d) };
    let text = json(&r);
    assert!(text.ends_with(r#""deform":{"tilt_x_deg":-2.0,"temp_c":22.5}}"#), "{text}");
    assert_eq!(decode_json(text.as_bytes()).unwrap(), r);
    assert_eq!(decode_json_core(text.as_bytes()).unwrap(), r);
}

#[test]
fn binary_heart_rate_bytes() {
    let bytes = codec::encode_vec(Format::Binary, &heart_rate()).unwrap();
    #[rustfmt::skip]
    let want: &[u8] = &[
        0x01,                                   // format version 1
        0x07, b'h', b'o', b'm', b'e', b'-', b'1', b'2', // site: len 7 + "home-12"
        0x04, b'g', b'w', b'-', b'1',           // device: len 4 + "gw-1"
        0x01,                                   // boot_id 1 (varint)
        0x03,                                   // seq 3
        0x01, 0x88, 0x27,                       // time: Unsynced (variant 1), 5000 = 0x1388 varint 88 27
        0x01,                                   // historical true
        0x01,                                   // body: HeartRate (variant 1)
        0x0C, b'c', b'8', b'3', b'a', b'3', b'5', b'a', b'1', b'b', b'2', b'c', b'3', // band
        0x48,                                   // bpm 72
        0x00,                                   // contact Detected (variant 0)
        0x01, 0x9A, 0x07,                       // rr: 1 entry, 922 = 0x39A varint 9A 07
        0x00,                                   // energy: None
        0x01, 0x50,                             // battery: Some(80)
    ];
    assert_eq!(bytes, want);
    assert_eq!(decode_binary(want).unwrap(), heart_rate());
}

/// Decodes with both JSON decoders, which must agree.
fn both(payload: &str) -> Result<Reading, DecodeError> {
    let full = decode_json(payload.as_bytes());
    let core = decode_json_core(payload.as_bytes());
    match (&full, &core) {
        (Ok(a), Ok(b)) => assert_eq!(a, b, "{payload}"),
        // serde-json-core keeps no message text, so it can only say *that* a field was wrong.
        (Err(DecodeError::Field(_)), Err(DecodeError::Field(_))) => {}
        (Err(a), Err(b)) => assert_eq!(a, b, "{payload}"),
        _ => panic!("decoders disagree on {payload}: {full:?} vs {core:?}"),
    }
    full
}

const HEAD: &str = r#""v":1,"site":"s","dev":"d","boot":1,"seq":1,"ts":5"#;

fn field_err(payload: &str) -> (String, Reason) {
    match both(payload) {
        Err(DecodeError::Field(f)) => (f.field.to_string(), f.reason),
        other => panic!("{payload}: expected a field error, got {other:?}"),
    }
}

#[test]
fn json_accepts_minimal_and_ignores_unknown_keys() {
    let p = format!(
        r#"{{{HEAD},"future":{{"x":[1,2]}},"status":{{"state":"online","firmware":"0.1.0","dropped":0}}}}"#
    );
    let r = both(&p).unwrap();
    assert_eq!(r.body.stream(), Stream::Status);
    // Optional report fields may be left out entirely.
    let p = format!(r#"{{{HEAD},"hr":{{"band":"b","bpm":60,"contact":"not_detected","rr_1024":[]}}}}"#);
    let Body::HeartRate(hr) = both(&p).unwrap().body else { panic!() };
    assert_eq!((hr.bpm, hr.contact, hr.battery_pct), (60, Contact::NotDetected, None));
}

#[test]
fn json_version_errors() {
    assert_eq!(both(r#"{"site":"s"}"#), Err(DecodeError::MissingVersion));
    assert_eq!(both(r#"{"v":2,"anything":true}"#), Err(DecodeError::UnsupportedVersion { found: 2 }));
    let msg = both(r#"{"v":2}"#).unwrap_err().to_string();
    assert_eq!(msg, "payload format version 2 is not supported (this build reads version 1)");
}

#[test]
fn json_field_errors_name_the_field() {
    let hr = |body: &str| format!(r#"{{{HEAD},"hr":{body}}}"#);
    assert_eq!(field_err(&hr(r#"{"band":"b","contact":"detected","rr_1024":[]}"#)).1, Reason::Missing);
    assert_eq!(
        decode_json(hr(r#"{"band":"b","contact":"detected","rr_1024":[]}"#).as_bytes())
            .unwrap_err()
            .to_string(),
        "field `hr.bpm`: missing (missing field `bpm`)"
    );
    assert_eq!(
        field_err(&hr(r#"{"band":"b","bpm":"72","contact":"detected","rr_1024":[]}"#)).1,
        Reason::WrongType
    );
    assert_eq!(
        field_err(&hr(r#"{"band":"b","bpm":400,"contact":"detected","rr_1024":[]}"#)),
        ("hr.bpm".into(), Reason::OutOfRange)
    );
    assert_eq!(field_err(&hr(r#"{"band":"b","bpm":70,"contact":"worn","rr_1024":[]}"#)).1, Reason::Invalid);
    assert_eq!(
        field_err(&hr(r#"{"band":"b+","bpm":70,"contact":"detected","rr_1024":[]}"#)).1,
        Reason::Invalid
    );
    let many = format!(r#"{{"band":"b","bpm":70,"contact":"detected","rr_1024":[{}1]}}"#, "1,".repeat(16));
    assert_eq!(field_err(&hr(&many)).1, Reason::TooMany);
    assert_eq!(
        field_err(&format!(
            r#"{{{HEAD},"hr":{{"band":"b","bpm":70,"contact":"detected","rr_1024":[],"battery_pct":101}}}}"#
        ))
        .1,
        Reason::OutOfRange
    );
}

#[test]
fn json_header_and_body_shape_errors() {
    let status = r#""status":{"state":"online","firmware":"x","dropped":0}"#;
    let no_time = format!(r#"{{"v":1,"site":"s","dev":"d","boot":1,"seq":1,{status}}}"#);
    assert_eq!(field_err(&no_time), ("ts".into(), Reason::Missing));
    let both_times = format!(r#"{{{HEAD},"mono":3,{status}}}"#);
    assert_eq!(field_err(&both_times), ("ts".into(), Reason::Conflict));
    assert_eq!(field_err(&format!("{{{HEAD}}}")), ("body".into(), Reason::Missing));
    let two = format!(r#"{{{HEAD},{status},"rain":{{"rain_cum_mm":1.0}}}}"#);
    assert_eq!(field_err(&two), ("body".into(), Reason::Conflict));
    assert_eq!(
        field_err(&format!(r#"{{{HEAD},"rain":{{"temp_c":1.0}}}}"#)),
        ("rain.rain_cum_mm".into(), Reason::Missing)
    );
    assert_eq!(field_err(&format!(r#"{{{HEAD},"deform":{{}}}}"#)), ("deform".into(), Reason::Missing));
    assert_eq!(field_err(&format!(r#"{{{HEAD},"deform":{{"temp_c":1,"temp_c":2}}}}"#)).1, Reason::Duplicate);
    assert_eq!(field_err(&format!(r#"{{{HEAD},"deform":{{"speed":1}}}}"#)).1, Reason::Invalid);
    let seq = r#"{"v":1,"site":"s","dev":"d","boot":1,"ts":5,"status":{"state":"online","firmware":"x","dropped":0}}"#;
    assert_eq!(field_err(seq), ("seq".into(), Reason::Missing));
}

#[test]
fn json_syntax_errors() {
    assert_eq!(both(""), Err(DecodeError::Empty));
    assert_eq!(both("{").unwrap_err().reason(), "syntax");
    assert_eq!(both(r#"{"v":1,"site":"s""#).unwrap_err().reason(), "syntax");
    let ok = json(&noise());
    assert_eq!(both(&format!("{ok} x")).unwrap_err().reason(), "syntax");
    assert_eq!(both(&ok[..ok.len() - 1]).unwrap_err().reason(), "syntax");
}

#[test]
fn binary_malformed() {
    let good = codec::encode_vec(Format::Binary, &heart_rate()).unwrap();
    assert_eq!(decode_binary(&[]), Err(DecodeError::Empty));
    assert_eq!(decode_binary(&[0x02, 0x00]), Err(DecodeError::UnsupportedVersion { found: 2 }));
    for cut in 1..good.len() {
        assert_eq!(decode_binary(&good[..cut]).unwrap_err().reason(), "syntax", "cut at {cut}");
    }
    let mut long = good.clone();
    long.push(0);
    assert_eq!(decode_binary(&long), Err(DecodeError::Syntax("trailing bytes after the reading")));
    let mut bad_contact = good.clone();
    bad_contact[good.len() - 7] = 0x07; // contact variant 7 does not exist
    assert_eq!(decode_binary(&bad_contact).unwrap_err().reason(), "invalid");
    let mut bad_id = good.clone();
    bad_id[2] = b'+'; // site "+ome-12"
    assert_eq!(decode_binary(&bad_id).unwrap_err().reason(), "invalid");
    let mut bpm = good.clone();
    let at = good.len() - 8; // the bpm byte 0x48
    bpm.splice(at..at + 1, [0x90, 0x03]); // varint 400
    assert_eq!(decode_binary(&bpm), Err(DecodeError::Field(FieldError::new("hr.bpm", Reason::OutOfRange))));
}

#[test]
fn encode_rejects_invalid_readings_and_small_buffers() {
    let mut r = noise();
    if let Body::Noise(n) = &mut r.body {
        n.laeq_db = f32::NAN;
    }
    let err = codec::encode(Format::Json, &r, &mut [0; 1024]).unwrap_err();
    assert_eq!(err, EncodeError::Invalid(FieldError::new("noise.laeq_db", Reason::NotFinite)));
    assert_eq!(codec::encode(Format::Json, &noise(), &mut [0; 20]), Err(EncodeError::BufferFull));
    assert_eq!(codec::encode(Format::Binary, &noise(), &mut [0; 5]), Err(EncodeError::BufferFull));
    assert_eq!(codec::encode(Format::Binary, &noise(), &mut []), Err(EncodeError::BufferFull));
}

#[test]
fn sniffing_tells_the_formats_apart() {
    assert_eq!(Format::sniff(b"  {\"v\":1}"), Format::Json);
    assert_eq!(Format::sniff(&[1, 2]), Format::Binary);
    let bin = codec::encode_vec(Format::Binary, &noise()).unwrap();
    assert_eq!(codec::decode(&bin).unwrap(), noise());
    assert_eq!(codec::decode(json(&noise()).as_bytes()).unwrap(), noise());
}

#[test]
fn long_error_messages_do_not_panic_without_std() {
    // serde's "unknown variant `…`, expected one of …" quotes the payload; serde-json-core's
    // `custom-error-messages` feature would unwrap a 64-byte overflow formatting it.
    let long = "x".repeat(200);
    let p = format!(r#"{{{HEAD},"hr":{{"band":"b","bpm":70,"contact":"{long}","rr_1024":[]}}}}"#);
    assert_eq!(decode_json_core(p.as_bytes()).unwrap_err().reason(), "invalid");
    assert_eq!(decode_json(p.as_bytes()).unwrap_err().reason(), "invalid");
}

#[test]
fn a_payload_must_belong_to_its_topic() {
    let payload = json(&noise());
    let topic = |s: &str| Topic::parse(s).unwrap();
    assert_eq!(codec::decode_on(&topic("gs/v1/plaza-3/nb-01/noise"), payload.as_bytes()).unwrap(), noise());
    for (t, field) in [
        ("gs/v1/plaza-4/nb-01/noise", "site"),
        ("gs/v1/plaza-3/nb-02/noise", "dev"),
        ("gs/v1/plaza-3/nb-01/hr", "body"),
    ] {
        match codec::decode_on(&topic(t), payload.as_bytes()) {
            Err(DecodeError::Field(f)) => {
                assert_eq!((f.field.as_str(), f.reason), (field, Reason::Conflict), "{t}")
            }
            other => panic!("{t}: {other:?}"),
        }
    }
}

#[test]
fn the_optional_body_fields_of_the_readme_may_be_left_out() {
    let noise = r#"{"v":1,"site":"p","dev":"d","boot":1,"seq":1,"ts":1764072000000,"noise":{"interval_ms":1000,"laeq_db":60,"lafmax_db":61}}"#;
    let hr = r#"{"v":1,"site":"p","dev":"d","boot":1,"seq":2,"ts":1764072000000,"hr":{"band":"a1","bpm":60,"contact":"detected"}}"#;
    for text in [noise, hr] {
        let host = decode_json(text.as_bytes()).unwrap();
        assert_eq!(decode_json_core(text.as_bytes()).unwrap(), host, "both decoders agree");
        match host.body {
            Body::Noise(n) => assert_eq!((n.overload, n.under_range, n.cal_offset_db), (false, false, 0.0)),
            Body::HeartRate(h) => assert!(h.rr_1024.is_empty() && h.energy_kj.is_none()),
            other => panic!("{other:?}"),
        }
    }
}
