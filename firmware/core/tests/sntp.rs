//! SNTP replies: a server's time comes back as UTC at the moment of receipt (to the ms, across
//! the 2036 era change), and every reply that is not an answer to our request is refused.

use gridsentry_firmware_core::sntp::{request, utc_at_receive, SntpError, PACKET};
use proptest::prelude::*;

/// A server's reply to a request carrying `nonce`, sending `unix_ms` as its transmit time.
fn reply(nonce: u64, unix_ms: u64, stratum: u8) -> [u8; PACKET] {
    let mut p = [0u8; PACKET];
    p[0] = 0b00_100_100; // version 4, mode 4 (server)
    p[1] = stratum;
    p[24..32].copy_from_slice(&nonce.to_be_bytes());
    let secs = (unix_ms / 1000 + 2_208_988_800) & 0xffff_ffff; // wraps in 2036 (era 1)
    let frac = ((unix_ms % 1000) << 32).div_ceil(1000);
    p[40..48].copy_from_slice(&(secs << 32 | frac).to_be_bytes());
    p
}

#[test]
fn a_request_is_a_version_4_client_packet_carrying_the_nonce() {
    let mut p = [0xffu8; PACKET];
    request(0x0102_0304_0506_0708, &mut p);
    assert_eq!(p[0], 0x23);
    assert_eq!(&p[40..], &[1, 2, 3, 4, 5, 6, 7, 8]);
    assert!(p[1..40].iter().all(|&b| b == 0));
}

#[test]
fn half_the_round_trip_is_added() {
    // 2026-11-25T12:00:00Z, answered after 80 ms.
    let r = reply(7, 1_795_608_000_000, 2);
    assert_eq!(utc_at_receive(&r, 7, 1_000, 1_080), Ok(1_795_608_000_040));
}

#[test]
fn replies_that_are_not_answers_are_refused() {
    let good = reply(7, 1_795_608_000_000, 2);
    assert_eq!(utc_at_receive(&good[..47], 7, 0, 1), Err(SntpError::Short));
    assert_eq!(utc_at_receive(&good, 8, 0, 1), Err(SntpError::NotOurs));
    assert_eq!(utc_at_receive(&reply(7, 1_795_608_000_000, 0), 7, 0, 1), Err(SntpError::Unsynchronised));
    assert_eq!(utc_at_receive(&reply(7, 1_795_608_000_000, 16), 7, 0, 1), Err(SntpError::Unsynchronised));
    let mut client = good;
    client[0] = 0x23;
    assert_eq!(utc_at_receive(&client, 7, 0, 1), Err(SntpError::NotAReply));
    let mut zero = good;
    zero[40..].fill(0);
    assert_eq!(utc_at_receive(&zero, 7, 0, 1), Err(SntpError::NoTime));
    assert_eq!(utc_at_receive(&good, 7, 5, 4), Err(SntpError::BadRoundTrip));
}

proptest! {
    #[test]
    fn server_time_comes_back_to_the_millisecond(
        unix_ms in 946_684_800_000u64..4_102_444_800_000, // 2000 to 2100, across 2036
        nonce in any::<u64>(), sent in 0u64..1 << 40, rtt in 0u64..10_000,
    ) {
        let r = reply(nonce, unix_ms, 1);
        prop_assert_eq!(utc_at_receive(&r, nonce, sent, sent + rtt), Ok(unix_ms + rtt / 2));
    }

    #[test]
    fn any_bytes_give_an_answer_or_an_error_never_a_panic(
        bytes in proptest::collection::vec(any::<u8>(), 0..64), nonce in any::<u64>(),
        sent in any::<u64>(), received in any::<u64>(),
    ) {
        let _ = utc_at_receive(&bytes, nonce, sent, received);
    }

    #[test]
    fn replies_passing_the_header_checks_with_any_times_never_panic(
        p in proptest::array::uniform32(any::<u8>()), tail in proptest::array::uniform16(any::<u8>()),
        nonce in any::<u64>(), stratum in 1u8..16, sent in any::<u64>(), received in any::<u64>(),
    ) {
        let mut r = [0u8; PACKET];
        r[..32].copy_from_slice(&p);
        r[32..].copy_from_slice(&tail);
        r[0] = 0x24;
        r[1] = stratum;
        r[24..32].copy_from_slice(&nonce.to_be_bytes());
        let got = utc_at_receive(&r, nonce, sent, received);
        prop_assert!(got.is_ok() || received < sent || r[40..].iter().all(|&b| b == 0), "{got:?}");
    }
}
