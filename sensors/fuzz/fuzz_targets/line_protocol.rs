//! Line protocol read back for backtests: no panic; a point that reads as a reading writes back
//! as line protocol that reads as the same reading.
#![no_main]
use gridsentry_sensors::line_protocol::write_reading;
use gridsentry_sensors::line_protocol_read::{parse, Precision};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    for (_, r) in parse(s, Precision::Ms) {
        let Ok((ts, reading)) = r else { continue };
        let mut line = String::new();
        write_reading(&mut line, &reading, &[], ts).unwrap();
        let again: Vec<_> = parse(&line, Precision::Ms).collect();
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].1.as_ref().ok(), Some(&(ts, reading)), "{line}");
    }
});
