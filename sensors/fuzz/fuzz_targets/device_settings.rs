//! A device's settings sector as the device reads it at start (firmware/core/src/settings.rs):
//! any bytes, never a panic; what is taken passed every check and round-trips.
#![no_main]
use gridsentry_firmware_core::settings::{sector_bytes, sector_text, Settings};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some(text) = sector_text(data) {
        if let Ok(s) = Settings::default().with_text(text) {
            assert!(s.check().is_ok());
        }
    }
    let text = String::from_utf8_lossy(data);
    if let Ok(s) = Settings::default().with_text(&text) {
        let mut sector = vec![0xffu8; 4096];
        if let Some(n) = sector_bytes(&text, &mut sector) {
            let back = sector_text(&sector[..n]).expect("a written sector reads back");
            assert_eq!(Settings::default().with_text(back).ok(), Some(s));
        }
    }
});
