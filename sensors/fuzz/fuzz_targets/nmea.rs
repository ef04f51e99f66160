//! Serial GNSS lines: no panic on any bytes; a fix is a finite position whose report is valid.
#![no_main]
use gridsentry_sensors::nmea::{parse_line, Origin};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    if let Ok(Some(fix)) = parse_line(s) {
        assert!(fix.lat_deg.abs() <= 90.0 && fix.lon_deg.abs() <= 180.0 && fix.alt_m.is_finite());
        let origin = Origin { lat_deg: 30.5, lon_deg: 104.0, alt_m: 800.0 };
        let r = origin.report(origin.enu_mm(&fix)).unwrap();
        r.validate("deform").unwrap();
    }
});
