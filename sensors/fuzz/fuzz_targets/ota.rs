//! OTA messages: no panic on any offer, report or chunk; a checked offer's hex fields decode and
//! a chunk's data is the message after its header.
#![no_main]
use gridsentry_sensors::ota::{Chunk, Offer, Report, CHUNK_HEADER};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(o) = serde_json::from_slice::<Offer>(data) {
        if o.check().is_ok() {
            assert!(o.sha256_bytes().is_ok() && o.sig_bytes().is_ok());
        }
    }
    if let Ok((r, _)) = serde_json_core::from_slice_escaped::<Report>(data, &mut [0u8; 128]) {
        assert!(r.error.as_ref().is_none_or(|e| e.len() <= 64));
    }
    match Chunk::parse(data) {
        Ok(c) => assert_eq!(c.data.len() + CHUNK_HEADER, data.len()),
        Err(_) => assert!(data.len() < CHUNK_HEADER),
    }
});
