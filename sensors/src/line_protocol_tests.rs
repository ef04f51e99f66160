use super::*;
use crate::channels::{ChannelKind, DeformReport};
use crate::id::Id;
use crate::reading::{Header, HeartRateReport, NoiseReport, Timestamp};
use std::string::String;

fn point(m: &str, tags: &[(&str, &str)], fields: &[(&str, FieldValue<'_>)], ts: i64) -> String {
    let mut s = String::new();
    write_point(&mut s, m, tags, fields, ts).unwrap();
    s
}

/// Cases from influxdata/line-protocol-corpus `corpus-encode-generated.cue` (implementation
/// influxdbv2models); the hash names the case there.
#[test]
fn conformance_corpus_escaping() {
    use FieldValue::*;
    // 0105abe9…: comma in measurement, tag key and field key
    assert_eq!(
        point("cpu,main", &[("tag,bar", "value")], &[("name,bar", F64(1.0))], 0),
        r"cpu\,main,tag\,bar=value name\,bar=1 0"
    );
    // c9095b12…: spaces
    assert_eq!(
        point("cpu main", &[("tag bar", "value")], &[("name bar", F64(1.0))], 0),
        r"cpu\ main,tag\ bar=value name\ bar=1 0"
    );
    // 2f5430b2…: '=' is plain in a measurement, escaped in tag keys and values
    assert_eq!(
        point("cpu=load", &[("equals=foo", "tag=value")], &[("value", Int(1))], 0),
        r"cpu=load,equals\=foo=tag\=value value=1i 0"
    );
    // 20f288a9…: a backslash in a tag value is written as is, the comma and '=' after it escaped
    assert_eq!(
        point("cpu", &[("regions", r"\,,=east")], &[("value", F64(1.0))], 0),
        r"cpu,regions=\\,\,\=east value=1 0"
    );
    // f84fa178…: same in a tag key
    assert_eq!(
        point("cpu", &[(r"reg\=ion", "east")], &[("value", F64(1.0))], 0),
        r"cpu,reg\\=ion=east value=1 0"
    );
    // cd1dfb5d…: a tag key that is one space
    assert_eq!(point("cpu", &[(" ", "east")], &[("value", F64(1.0))], 0), r"cpu,\ =east value=1 0");
    // 1b092ebf…: double quotes in tags are not escaped
    assert_eq!(
        point(
            "cpu",
            &[("\"host\"", "\"serverA\""), ("region", "us-east")],
            &[("value", F64(1.0))],
            1_000_000_000
        ),
        r#"cpu,"host"="serverA",region=us-east value=1 1000000000"#
    );
    // 3c573f65…: quotes and backslashes in a string field are escaped
    assert_eq!(
        point(
            "cpu",
            &[("host", "serverA"), ("region", "us-east")],
            &[("value", Str(r#"{Hello"{\,}" World}"#))],
            1_000_000_000
        ),
        r#"cpu,host=serverA,region=us-east value="{Hello\"{\\,}\" World}" 1000000000"#
    );
    // 0f296ff7…: trailing backslash in a string field
    assert_eq!(
        point("cpu", &[], &[("value", Str("test\\"))], 1_000_000_000),
        r#"cpu value="test\\" 1000000000"#
    );
    // c85e6a9c…: UTF-8 passes through
    assert_eq!(point("cpu", &[], &[("value", Str("wè"))], 1), "cpu value=\"wè\" 1");
    // e6b65d5c…: negative timestamp
    assert_eq!(point("cpu", &[], &[("value", F64(1.0))], -1), "cpu value=1 -1");
}

#[test]
fn conformance_corpus_numbers() {
    use FieldValue::*;
    // 34f17db4…: Go's %g switches to exponent form at 1e6
    assert_eq!(
        point("cpu", &[], &[("value", F64(6632243.0))], 1_000_000_000),
        "cpu value=6.632243e+06 1000000000"
    );
    // 13f176ba…: extremes, integers, booleans
    let fields = [
        ("boolean", Bool(false)),
        ("float64-large", F64(1.797_693_134_862_315_7e308)),
        ("float64-tiny", F64(5e-324)),
        ("int64", Int(i64::MAX)),
        ("uint32", Int(4_294_967_295)),
    ];
    assert_eq!(
        point("test", &[], &fields, 1_603_976_386_427_072_239),
        "test boolean=false,float64-large=1.7976931348623157e+308,float64-tiny=5e-324,\
         int64=9223372036854775807i,uint32=4294967295i 1603976386427072239"
    );
    // 3cd7ada4…: small floats stay plain
    assert_eq!(
        point("cpu", &[], &[("float", F64(11.0)), ("float2", F64(12.123))], 0),
        "cpu float=11,float2=12.123 0"
    );
    assert_eq!(point("m", &[], &[("x", F64(0.0001)), ("y", F64(0.00001))], 0), "m x=0.0001,y=1e-05 0");
}

#[test]
fn what_line_protocol_cannot_carry_is_an_error() {
    use FieldValue::*;
    let mut s = String::new();
    assert_eq!(write_point(&mut s, "m", &[("k", "a\nb")], &[("v", Int(1))], 0), Err(LineError::LineBreak));
    assert_eq!(write_point(&mut s, "m", &[], &[("v", F64(f64::NAN))], 0), Err(LineError::NotFinite));
    assert_eq!(write_point(&mut s, "m", &[], &[], 0), Err(LineError::NoFields));
    assert_eq!(write_point(&mut s, "", &[], &[("v", Int(1))], 0), Err(LineError::EmptyMeasurement));
    // empty tag values are left out
    assert_eq!(point("m", &[("a", ""), ("b", "x")], &[("v", Int(1))], 0), "m,b=x v=1i 0");
}

fn header() -> Header {
    Header {
        site: Id::new("plaza-3").unwrap(),
        device: Id::new("nb-01").unwrap(),
        boot_id: 7,
        seq: 42,
        time: Timestamp::Utc(1_764_040_000_123),
        historical: false,
    }
}

#[test]
fn noise_reading_as_a_point() {
    let n = NoiseReport {
        interval_ms: 1000,
        laeq_db: 71.2,
        lafmax_db: 78.9,
        lcpeak_db: None,
        l10_db: Some(73.1),
        l90_db: None,
        overload: false,
        under_range: false,
        cal_offset_db: 0.0,
    };
    let r = Reading { header: header(), body: Body::Noise(n) };
    let mut s = String::new();
    write_reading(&mut s, &r, &[("grid", "g 7"), ("street", "东街")], 1_764_040_000_123).unwrap();
    assert_eq!(
        s,
        "noise,device=nb-01,site=plaza-3,grid=g\\ 7,street=东街 laeq_db=71.2,lafmax_db=78.9,l10_db=73.1,\
         overload=false,under_range=false,interval_ms=1000i,boot_id=7i,seq=42i,historical=false 1764040000123"
    );
}

#[test]
fn heart_rate_and_deform_points() {
    let mut rr = heapless::Vec::new();
    rr.push(922).unwrap();
    let hr = HeartRateReport {
        band: Id::new("c83a35a1b2c3").unwrap(),
        bpm: 72,
        contact: Contact::Detected,
        rr_1024: rr,
        energy_kj: None,
        battery_pct: Some(80),
    };
    let mut s = String::new();
    write_reading(&mut s, &Reading { header: header(), body: Body::HeartRate(hr) }, &[], 5).unwrap();
    assert_eq!(
        s,
        "hr,band=c83a35a1b2c3,device=nb-01,site=plaza-3 bpm=72i,contact=\"detected\",worn=true,\
         rr_last_ms=900.3906,battery_pct=80i,boot_id=7i,seq=42i,historical=false 5"
    );
    let mut d = DeformReport::default();
    d.push(ChannelKind::TiltXDeg, -2.0).unwrap();
    d.push(ChannelKind::TemperatureC, 22.5).unwrap();
    let mut s = String::new();
    write_reading(&mut s, &Reading { header: header(), body: Body::Deform(d) }, &[], 5).unwrap();
    assert_eq!(
        s,
        "deform,device=nb-01,site=plaza-3 tilt_x_deg=-2,temp_c=22.5,boot_id=7i,seq=42i,historical=false 5"
    );
}
