//! The firmware's MQTT session on arbitrary broker bytes: never panics; an accepted packet was
//! taken from the input; the session either stays consistent or asks to drop the connection.
#![no_main]

use gridsentry_firmware_core::mqtt::packet;
use gridsentry_firmware_core::mqtt::Session;
use gridsentry_firmware_core::outbox::Outbox;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(Some((_, used))) = packet::decode(data) {
        assert!(used <= data.len());
    }
    let mut s: Session<4> = Session::new(30);
    let mut outbox: Outbox<u8, 8> = Outbox::new();
    outbox.push(0);
    for chunk in data.chunks(3) {
        // Fleet updates arrive as PUBLISH: whatever is handed over came from the input.
        let mut on = |topic: &str, payload: &[u8]| assert!(topic.len() + payload.len() <= data.len());
        if s.received_with(chunk, &mut outbox, &mut on).is_err() {
            s.disconnected(&mut outbox);
        }
    }
    assert!(outbox.len() <= 1);
});
