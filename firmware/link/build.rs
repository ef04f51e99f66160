//! The device's settings: the build's defaults come from the build environment; each device's
//! own come from its settings sector (written by `scripts/firmware-image` into the installer
//! image, read at start: `gridsentry_firmware_core::settings`), over these defaults.
//!
//! | variable                   | meaning                                   | default              |
//! |----------------------------|-------------------------------------------|----------------------|
//! | `GRIDSENTRY_WIFI_SSID`     | Wi-Fi network                             | `gridsentry`         |
//! | `GRIDSENTRY_WIFI_PASSWORD` | WPA2 passphrase (empty: open network)     | empty                |
//! | `GRIDSENTRY_BROKER`        | MQTT broker, `host:port` (IPv4 or a name) | `192.168.4.1:1883`   |
//! | `GRIDSENTRY_MQTT_USER`     | broker user (empty: anonymous)            | empty                |
//! | `GRIDSENTRY_MQTT_PASSWORD` | broker password                           | empty                |
//! | `GRIDSENTRY_NTP`           | SNTP server (IPv4 or a name)              | `pool.ntp.org`       |
//! | `GRIDSENTRY_SITE`          | site id in the topics                     | `plaza-1`            |
//! | `GRIDSENTRY_DEVICE`        | device id in the topics                   | `box-1`              |
//! | `GRIDSENTRY_BANDS`         | wristbands a home gateway listens to,     | empty: any band      |
//! |                            | `aa:bb:cc:dd:ee:ff,...`                   | (for installation)   |
//! | `GRIDSENTRY_OTA_PUBLIC_KEY`| the fleet signing key's public half (64   | empty: takes no      |
//! |                            | hex), `gridsentry firmware keygen`        | updates              |
//! | `GRIDSENTRY_VERSION`       | firmware version the device reports       | the crate's version  |
//! | `GRIDSENTRY_OTA_TRIAL_S`   | seconds a new image has to prove itself   | `120`                |
//! |                            | before the board restarts into the old one|                     |
//!
//!
//! And for the noise boxes:
//!
//! | variable                   | meaning                                   | default              |
//! |----------------------------|-------------------------------------------|----------------------|
//! | `GRIDSENTRY_MIC`           | `inmp441`, `ics43434` or `sph0645`        | `inmp441`            |
//! | `GRIDSENTRY_CAL_DB`        | calibration offset, −12.7 to 12.7 dB      | `0`                  |
//! | `GRIDSENTRY_ALARM_ON_DB`   | buzzer on above this LAeq,1s, dB(A)       | `70`                 |
//! | `GRIDSENTRY_ALARM_OFF_DB`  | buzzer off below this (under the on level)| `67`                 |
//! | `GRIDSENTRY_ALARM_HOLD_S`  | seconds a condition must hold, 1–3600     | `5`                  |
//! | `GRIDSENTRY_REPORT_S`      | seconds per noise report, 1–600           | `1`                  |
//!
//! `GRIDSENTRY_VERSION`, `GRIDSENTRY_OTA_PUBLIC_KEY` and `GRIDSENTRY_OTA_TRIAL_S` are the
//! fleet's, fixed in the build (a settings sector cannot change them). All are checked here with
//! the core's rules (the same the device applies to its sector), so a wrong one fails the build
//! naming the variable instead of producing a box that never connects.

use gridsentry_firmware_core::settings::Settings;
use std::fmt::Write;

const DEVICE_VARS: [&str; 15] = [
    "GRIDSENTRY_WIFI_SSID",
    "GRIDSENTRY_WIFI_PASSWORD",
    "GRIDSENTRY_BROKER",
    "GRIDSENTRY_MQTT_USER",
    "GRIDSENTRY_MQTT_PASSWORD",
    "GRIDSENTRY_NTP",
    "GRIDSENTRY_SITE",
    "GRIDSENTRY_DEVICE",
    "GRIDSENTRY_BANDS",
    "GRIDSENTRY_MIC",
    "GRIDSENTRY_CAL_DB",
    "GRIDSENTRY_ALARM_ON_DB",
    "GRIDSENTRY_ALARM_OFF_DB",
    "GRIDSENTRY_ALARM_HOLD_S",
    "GRIDSENTRY_REPORT_S",
];

fn var(name: &str, default: &str) -> String {
    println!("cargo:rerun-if-env-changed={name}");
    std::env::var(name).unwrap_or_else(|_| default.to_string())
}

fn fail(name: &str, value: &str, why: &str) -> ! {
    let value = if name.ends_with("PASSWORD") { "(hidden)" } else { value };
    eprintln!("error: {name}={value:?}: {why}");
    std::process::exit(1)
}

fn main() {
    // The device settings given: the defaults' text, checked as a device checks its sector.
    let mut defaults = String::new();
    for name in DEVICE_VARS {
        println!("cargo:rerun-if-env-changed={name}");
        if let Ok(value) = std::env::var(name) {
            // Alone first, so the error names this variable; together below (password needs user…).
            if let Err(e) = Settings::default().set(name, &value) {
                fail(name, &value, e.why);
            }
            writeln!(defaults, "{name}={value}").unwrap();
        }
    }
    if let Err(e) = Settings::default().with_text(&defaults) {
        let value = defaults.lines().find_map(|l| l.strip_prefix(&format!("{}=", e.name))).unwrap_or("");
        fail(&e.name, value, e.why);
    }
    let key = var("GRIDSENTRY_OTA_PUBLIC_KEY", "");
    let key_bytes: Vec<u8> = match key.as_str() {
        "" => Vec::new(),
        k if k.len() == 64 && k.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) => {
            (0..32).map(|i| u8::from_str_radix(&k[2 * i..2 * i + 2], 16).unwrap_or(0)).collect()
        }
        _ => fail(
            "GRIDSENTRY_OTA_PUBLIC_KEY",
            &key,
            "64 lowercase hex characters (gridsentry firmware keygen prints them)",
        ),
    };
    let trial = var("GRIDSENTRY_OTA_TRIAL_S", "120");
    let trial = match trial.parse::<u64>() {
        Ok(t) if (5..=3600).contains(&t) => t,
        _ => fail("GRIDSENTRY_OTA_TRIAL_S", &trial, "a whole number from 5 to 3600"),
    };
    let version = var("GRIDSENTRY_VERSION", env!("CARGO_PKG_VERSION"));
    let ok = |c: char| c.is_ascii_alphanumeric() || ".+-_".contains(c);
    if version.is_empty() || version.len() > 24 || !version.chars().all(ok) {
        fail("GRIDSENTRY_VERSION", &version, "1 to 24 characters of A-Z a-z 0-9 . + - _");
    }
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR").unwrap());
    let settings = format!(
        "/// The device settings given to the build (`NAME=value` lines): the defaults a settings\n\
         /// sector's text is laid over.\npub const DEFAULTS: &str = {defaults:?};\n\
         /// `GRIDSENTRY_VERSION`: the firmware version in status messages and update reports.\n\
         pub const VERSION: &str = {version:?};\n\
         /// `GRIDSENTRY_OTA_PUBLIC_KEY`: images must be signed with its private half (none: no updates).\n\
         pub const OTA_PUBLIC_KEY: Option<[u8; 32]> = {key};\n\
         /// `GRIDSENTRY_OTA_TRIAL_S`: a new image that has not proved itself by then is left.\n\
         pub const OTA_TRIAL_S: u64 = {trial};\n",
        key = if key_bytes.is_empty() { "None".to_string() } else { format!("Some({key_bytes:?})") }
    );
    std::fs::write(out.join("settings.rs"), settings).unwrap();
    println!("cargo:rerun-if-changed=build.rs");
}
