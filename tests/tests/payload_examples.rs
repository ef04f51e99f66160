//! The example payloads in `tests/payloads/` are the wire contract's documentation (docs/wire-contract.md
//! points at them) and the fuzzers' seed corpus: every file in `valid/` must decode and survive
//! a re-encode; every file in `invalid/` must be rejected with the reason its name says.

use gridsentry_sensors::codec::{self, Format};
use std::path::Path;

fn files(dir: &str) -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("payloads").join(dir);
    let mut out: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .map(|p| (p.file_stem().unwrap().to_string_lossy().into_owned(), std::fs::read(&p).unwrap()))
        .collect();
    out.sort();
    assert!(!out.is_empty(), "no example payloads in {}", dir.display());
    out
}

#[test]
fn valid_examples_decode_and_round_trip() {
    for (name, bytes) in files("valid") {
        let r = codec::decode(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        for format in [Format::Json, Format::Binary] {
            let again = codec::encode_vec(format, &r).unwrap();
            assert_eq!(codec::decode(&again).unwrap(), r, "{name} via {format:?}");
        }
    }
}

#[test]
fn invalid_examples_are_rejected_for_the_named_reason() {
    for (name, bytes) in files("invalid") {
        let err = codec::decode(&bytes).expect_err(&name);
        assert_eq!(err.reason(), name, "{name}: {err}");
    }
}
