//! Topics: no panic; whatever parses prints back to the same string.
#![no_main]
use gridsentry_sensors::Topic;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    if let Ok(t) = Topic::parse(s) {
        assert_eq!(t.to_heapless().as_str(), s);
    }
});
