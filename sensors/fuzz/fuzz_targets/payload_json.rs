//! JSON payloads: both decoders must not panic, and whatever serde_json accepts must re-encode
//! and decode to the same reading, with serde-json-core agreeing.
#![no_main]
use gridsentry_sensors::codec::{self, decode_json, decode_json_core, Format};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let core = decode_json_core(data);
    if let Ok(r) = decode_json(data) {
        assert_eq!(core.as_ref().ok(), Some(&r), "serde-json-core rejects what serde_json accepts");
        let again = codec::encode_vec(Format::Json, &r).expect("a decoded reading encodes");
        assert_eq!(decode_json(&again).expect("re-encoded JSON decodes"), r);
    }
});
