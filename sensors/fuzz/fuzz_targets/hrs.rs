//! BLE Heart Rate Measurement notifications: no panic; accepted ones are self-consistent.
#![no_main]
use gridsentry_sensors::hrs;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = hrs::parse(data) {
        let hr_len = if data[0] & 1 != 0 { 2 } else { 1 };
        let energy_len = if m.energy_kj.is_some() { 2 } else { 0 };
        assert_eq!(data.len(), 1 + hr_len + energy_len + 2 * m.rr_1024.len());
    }
});
