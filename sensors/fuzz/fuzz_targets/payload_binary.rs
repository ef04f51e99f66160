//! Binary payloads: no panic; whatever decodes re-encodes to the same bytes.
#![no_main]
use gridsentry_sensors::codec::{self, decode_binary, Format};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(r) = decode_binary(data) {
        let again = codec::encode_vec(Format::Binary, &r).expect("a decoded reading encodes");
        assert_eq!(decode_binary(&again).expect("re-encoded binary decodes"), r);
    }
});
