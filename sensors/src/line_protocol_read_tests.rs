use super::*;
use std::vec::Vec;

fn one(line: &str) -> Result<(i64, Reading), PointError> {
    let all: Vec<_> = parse(line, Precision::Auto).collect();
    assert_eq!(all.len(), 1, "{line}");
    all.into_iter().next().unwrap().1
}

#[test]
fn precision_by_magnitude() {
    let ms = 1_764_072_000_123;
    for (ts, unit) in [(ms * 1_000_000, "ns"), (ms * 1000, "us"), (ms, "ms"), (ms / 1000, "s")] {
        let want = if unit == "s" { ms / 1000 * 1000 } else { ms };
        assert_eq!(Precision::Auto.to_ms(ts), want, "{unit}");
        assert_eq!(unit.parse::<Precision>().unwrap().to_ms(ts), want, "{unit}");
    }
    assert!("minutes".parse::<Precision>().is_err());
}

#[test]
fn exports_without_strings_and_with_numeric_booleans_are_read() {
    // What VictoriaMetrics gives back: no string fields, booleans and integers as floats.
    let (ts, r) =
        one("hr,site=home-12,device=gw-1,band=wb-1 bpm=48,worn=0,seq=5,historical=1 1764072000000").unwrap();
    assert_eq!(ts, 1_764_072_000_000);
    let Body::HeartRate(h) = &r.body else { panic!("{r:?}") };
    assert_eq!((h.bpm, h.contact, r.header.seq, r.header.historical), (48, Contact::NotDetected, 5, true));
    let (_, r) = one("noise,site=p,device=d laeq_db=71.5 1764072000").unwrap();
    let Body::Noise(n) = &r.body else { panic!() };
    assert_eq!(
        (n.laeq_db, n.lafmax_db, n.interval_ms, r.utc_ms()),
        (71.5, 71.5, 1000, Some(1_764_072_000_000))
    );
}

#[test]
fn bad_points_say_what_is_wrong() {
    let cases = [
        ("cpu,host=a usage=1 1", "measurement `cpu`"),
        ("noise,site=p laeq_db=1 1764072000000", "tag `device` is missing"),
        ("noise,site=p,device=d lafmax_db=1 1764072000000", "field `laeq_db` is missing"),
        ("noise,site=p,device=d laeq_db=\"loud\" 1764072000000", "`laeq_db` is not a finite number"),
        ("hr,site=p,device=d,band=b bpm=70000 1764072000000", "`bpm` is not an integer in range"),
        ("hr,site=p,device=d,band=b bpm=60,contact=\"maybe\" 1764072000000", "`contact` is not"),
        ("status,site=p,device=d online=2 1764072000000", "`online` is not a boolean"),
        ("deform,site=p,device=d speed=1 1764072000000", "none of the known channels"),
        ("noise,site=p,device=d laeq_db=1", "without a timestamp"),
        ("noise,site=p,device=d", "not line protocol"),
        ("noise,site=a/b,device=d laeq_db=1 1", "`site` is not a valid id"),
    ];
    for (line, want) in cases {
        let e = one(line).unwrap_err().to_string();
        assert!(e.contains(want), "{line}: {e}");
    }
}

#[test]
fn comments_and_blank_lines_are_not_points() {
    let text = "# exported\n\nnoise,site=p,device=d laeq_db=60 1764072000000\n";
    let all: Vec<_> = parse(text, Precision::Ms).collect();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].0, 3, "line numbers count every line");
}
