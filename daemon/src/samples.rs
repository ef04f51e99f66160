//! `gridsentry samples`: the wire contract on sample readings of every device family.
//!
//! For installers checking a device by eye: what a device sends and what the daemon stores
//! (topic, JSON payload, binary size, InfluxDB line), plus a malformed payload rejected with its
//! reason.

use gridsentry_sensors::codec::{self, Format};
use gridsentry_sensors::line_protocol::write_reading;
use gridsentry_sensors::*;

fn id(s: &str) -> Id {
    Id::new(s).expect("demo ids are valid")
}

fn header(site: &str, device: &str, seq: u32) -> Header {
    Header {
        site: id(site),
        device: id(device),
        boot_id: 0x5EED,
        seq,
        time: Timestamp::Utc(1_764_072_000_000),
        historical: false,
    }
}

fn samples() -> Vec<Reading> {
    let noise = NoiseReport {
        interval_ms: 1000,
        laeq_db: 74.3,
        lafmax_db: 81.6,
        lcpeak_db: None,
        l10_db: Some(76.0),
        l90_db: Some(66.2),
        overload: false,
        under_range: false,
        cal_offset_db: 0.4,
    };
    // 16 48 9A 03: the Bluetooth spec's example notification (72 bpm, RR 0.900 s)
    let hrm = hrs::parse(&[0x16, 0x48, 0x9A, 0x03]).expect("spec example parses");
    let hr = HeartRateReport {
        band: id("c83a35a1b2c3"),
        bpm: hrm.bpm,
        contact: hrm.contact,
        rr_1024: hrm.rr_1024,
        energy_kj: hrm.energy_kj,
        battery_pct: Some(64),
    };
    // An inclinometer's input registers 0..2: X -2.00 deg, Y 1.50 deg, 22.5 C
    let tilt = modbus::INCLINOMETER.decode(&[&[0xFF38, 0x0096, 0x00E1]]).expect("sample registers decode");
    vec![
        Reading { header: header("plaza-3", "nb-01", 17), body: Body::Noise(noise) },
        Reading { header: header("home-12", "gw-1", 5), body: Body::HeartRate(hr) },
        Reading { header: header("slope-7", "incl-2", 301), body: Body::Deform(tilt) },
    ]
}

/// Prints the samples; returns an error text if any step fails.
pub fn run() -> Result<(), String> {
    for r in samples() {
        let topic = Topic::new(r.header.site.clone(), r.header.device.clone(), r.body.stream());
        let json = codec::encode_vec(Format::Json, &r).map_err(|e| e.to_string())?;
        let bin = codec::encode_vec(Format::Binary, &r).map_err(|e| e.to_string())?;
        let mut line = String::new();
        write_reading(&mut line, &r, &[("grid", "g7")], r.utc_ms().unwrap_or(0) as i64)
            .map_err(|e| e.to_string())?;
        println!("topic   {topic}");
        println!("json    {}", String::from_utf8_lossy(&json));
        println!("binary  {} bytes (json {} bytes)", bin.len(), json.len());
        println!("influx  {line}\n");
    }
    let bad = br#"{"v":1,"site":"home-12","dev":"gw-1","boot":1,"seq":6,"ts":1,"hr":{"band":"b","contact":"detected","rr_1024":[]}}"#;
    match codec::decode(bad) {
        Err(e) => println!("rejected {} -> {e} (counted as `{}`)", String::from_utf8_lossy(bad), e.reason()),
        Ok(_) => return Err("the malformed sample was accepted".into()),
    }
    Ok(())
}
