//! The firmware's SNTP reply check on arbitrary datagrams: never panics, and a reply it takes
//! echoed the request's nonce.
#![no_main]

use gridsentry_firmware_core::sntp::utc_at_receive;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The first 16 bytes pick the nonce and the clock readings; the rest is the datagram.
    let Some((head, reply)) = data.split_first_chunk::<16>() else { return };
    let nonce = u64::from_be_bytes(head[..8].try_into().unwrap());
    let sent = u64::from(u32::from_be_bytes(head[8..12].try_into().unwrap()));
    let received = sent + u64::from(u32::from_be_bytes(head[12..16].try_into().unwrap()));
    if utc_at_receive(reply, nonce, sent, received).is_ok() {
        assert_eq!(&reply[24..32], &nonce.to_be_bytes());
    }
});
