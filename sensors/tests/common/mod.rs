//! Readings shared by the codec tests.
#![allow(dead_code)]

use gridsentry_sensors::*;

pub fn id(s: &str) -> Id {
    Id::new(s).unwrap()
}

pub fn header(time: Timestamp) -> Header {
    Header { site: id("plaza-3"), device: id("nb-01"), boot_id: 7, seq: 42, time, historical: false }
}

pub fn noise() -> Reading {
    let n = NoiseReport {
        interval_ms: 1000,
        laeq_db: 71.5,
        lafmax_db: 78.25,
        lcpeak_db: None,
        l10_db: Some(73.0),
        l90_db: None,
        overload: false,
        under_range: false,
        cal_offset_db: -1.5,
    };
    Reading { header: header(Timestamp::Utc(1_764_040_000_123)), body: Body::Noise(n) }
}

pub fn heart_rate() -> Reading {
    let hr = HeartRateReport {
        band: id("c83a35a1b2c3"),
        bpm: 72,
        contact: Contact::Detected,
        rr_1024: heapless::Vec::from_slice(&[922]).unwrap(),
        energy_kj: None,
        battery_pct: Some(80),
    };
    let mut h = header(Timestamp::Unsynced(5000));
    h.site = id("home-12");
    h.device = id("gw-1");
    h.boot_id = 1;
    h.seq = 3;
    h.historical = true;
    Reading { header: h, body: Body::HeartRate(hr) }
}
