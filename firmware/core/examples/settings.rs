//! Writes a device's settings sector from the `GRIDSENTRY_*` variables in its environment,
//! checked with the rules the device applies when it reads the sector (`scripts/firmware-image`
//! runs it for every installer image):
//!
//! ```text
//! GRIDSENTRY_SITE=plaza-3 GRIDSENTRY_DEVICE=nb-01 … cargo run -p gridsentry-firmware-core \
//!     --example settings -- OUT.bin
//! ```
//! The fleet-wide settings (version, update key, trial time) belong to the build and are left
//! out. A wrong value exits 1 with `error: NAME="value": why` (passwords not shown).

use gridsentry_firmware_core::settings::{sector_bytes, Settings, FLEET_WIDE, TEXT_MAX};

fn main() {
    let Some(out) = std::env::args().nth(1) else {
        eprintln!("usage: settings OUT.bin (settings from the GRIDSENTRY_* environment)");
        std::process::exit(2);
    };
    let mut vars: Vec<(String, String)> = std::env::vars()
        .filter(|(k, _)| k.starts_with("GRIDSENTRY_") && !FLEET_WIDE.contains(&k.as_str()))
        .collect();
    vars.sort();
    let text: String = vars.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
    if let Err(e) = Settings::default().with_text(&text) {
        let value = vars.iter().find(|(k, _)| *k == e.name.as_str()).map_or("", |(_, v)| v.as_str());
        let shown = if e.name.ends_with("PASSWORD") { "(hidden)" } else { value };
        eprintln!("error: {}={shown:?}: {}", e.name, e.why);
        std::process::exit(1);
    }
    let mut sector = vec![0xffu8; 4096];
    let Some(_) = sector_bytes(&text, &mut sector) else {
        eprintln!("error: the settings take {} bytes, a sector holds {TEXT_MAX}", text.len());
        std::process::exit(1);
    };
    if let Err(e) = std::fs::write(&out, &sector) {
        eprintln!("error: {out}: {e}");
        std::process::exit(1);
    }
}
