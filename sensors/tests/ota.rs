//! The OTA contract: offers and reports round-trip through both JSON codecs (the daemon's
//! serde_json, the device's serde-json-core), chunk headers round-trip, and nothing panics on
//! arbitrary bytes.

use gridsentry_sensors::ota::{unhex, Chunk, Offer, OtaTopic, Report, UpdateState, CHUNK_HEADER};
use proptest::prelude::*;

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn state() -> impl Strategy<Value = UpdateState> {
    prop_oneof![
        Just(UpdateState::Idle),
        Just(UpdateState::Downloading),
        Just(UpdateState::Verifying),
        Just(UpdateState::Rebooting),
        Just(UpdateState::Trial),
        Just(UpdateState::Confirmed),
        Just(UpdateState::RolledBack),
        Just(UpdateState::Failed),
    ]
}

proptest! {
    #[test]
    fn offers_round_trip(rollout: u32, size in 1u32.., chunk in 1u32..=4096, sha in any::<[u8; 32]>(),
                         sig in proptest::collection::vec(any::<u8>(), 64), version in "[0-9a-z.+-]{1,24}") {
        let o = Offer {
            v: 1, rollout, board: "rp2040".try_into().unwrap(), version: version.as_str().try_into().unwrap(), size,
            sha256: hex(&sha).as_str().try_into().unwrap(), sig: hex(&sig).as_str().try_into().unwrap(), chunk,
        };
        prop_assert_eq!(o.check(), Ok(()));
        prop_assert_eq!(o.sha256_bytes().unwrap(), sha);
        let text = serde_json::to_vec(&o).unwrap();
        prop_assert_eq!(&serde_json::from_slice::<Offer>(&text).unwrap(), &o);
        let mut unescape = [0u8; 128];
        let (core, used) = serde_json_core::from_slice_escaped::<Offer>(&text, &mut unescape).unwrap();
        prop_assert_eq!(used, text.len());
        prop_assert_eq!(core, o);
    }

    #[test]
    fn reports_round_trip(s in state(), rollout: Option<u32>, offset: Option<u32>, err in proptest::option::of("[ -~]{0,64}")) {
        let r = Report {
            v: 1, board: "esp32c3".try_into().unwrap(), version: "0.1.0".try_into().unwrap(),
            slot: "ota_1".try_into().unwrap(), state: s, rollout, offset,
            error: err.map(|e| e.as_str().try_into().unwrap()),
        };
        let mut buf = [0u8; 512];
        let n = serde_json_core::to_slice(&r, &mut buf).unwrap();
        prop_assert_eq!(&serde_json::from_slice::<Report>(&buf[..n]).unwrap(), &r);
        // serde-json-core unescapes strings only with a buffer (without one an error text with
        // a `\\` would read back doubled): devices read with `from_slice_escaped`.
        let mut unescape = [0u8; 128];
        prop_assert_eq!(serde_json_core::from_slice_escaped::<Report>(&buf[..n], &mut unescape).unwrap().0, r);
    }

    #[test]
    fn chunks_round_trip(rollout: u32, offset: u32, data in proptest::collection::vec(any::<u8>(), 0..64)) {
        let mut msg = Chunk::header(rollout, offset).to_vec();
        msg.extend_from_slice(&data);
        prop_assert_eq!(Chunk::parse(&msg).unwrap(), Chunk { rollout, offset, data: &data });
    }

    #[test]
    fn arbitrary_bytes_never_panic(b in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = serde_json::from_slice::<Offer>(&b).map(|o| o.check());
        let _ = serde_json_core::from_slice_escaped::<Report>(&b, &mut [0u8; 128]);
        prop_assert_eq!(Chunk::parse(&b).is_ok(), b.len() >= CHUNK_HEADER);
        let _ = OtaTopic::parse(&String::from_utf8_lossy(&b));
    }

    #[test]
    fn unhex_takes_only_lowercase_of_the_exact_length(s in "[0-9a-fA-F]{0,10}") {
        let ok = s.len() == 8 && !s.chars().any(|c| c.is_ascii_uppercase());
        prop_assert_eq!(unhex::<4>(&s).is_some(), ok);
    }
}

#[test]
fn a_report_reads_as_documented() {
    let text = br#"{"v":1,"board":"rp2040","version":"0.1.0","slot":"a","state":"downloading","rollout":3,"offset":8192}"#;
    let r: Report = serde_json::from_slice(text).unwrap();
    assert_eq!(
        (r.state, r.rollout, r.offset, r.error),
        (UpdateState::Downloading, Some(3), Some(8192), None)
    );
    // Unknown fields are refused (a typo must not read as "no offset").
    assert!(serde_json::from_slice::<Report>(
        br#"{"v":1,"board":"b","version":"1","state":"idle","ofset":1}"#
    )
    .is_err());
}
