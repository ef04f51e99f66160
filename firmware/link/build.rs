//! The device's settings come from the build environment (a box is flashed for one place):
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
//! They are checked here, so a wrong one fails the build naming the variable instead of
//! producing a box that never connects.

use gridsentry_sensors::Id;
use std::fmt::Write;

fn var(name: &str, default: &str) -> String {
    println!("cargo:rerun-if-env-changed={name}");
    std::env::var(name).unwrap_or_else(|_| default.to_string())
}

fn fail(name: &str, value: &str, why: &str) -> ! {
    eprintln!("error: {name}={value:?}: {why}");
    std::process::exit(1)
}

/// A number in `range`; `whole`: no fraction.
fn number(name: &str, default: &str, range: std::ops::RangeInclusive<f64>, whole: bool) -> f64 {
    let value = var(name, default);
    match value.parse::<f64>() {
        Ok(v) if range.contains(&v) && (!whole || v.fract() == 0.0) => v,
        _ => fail(
            name,
            &value,
            &format!(
                "a {} from {} to {}",
                if whole { "whole number" } else { "number" },
                range.start(),
                range.end()
            ),
        ),
    }
}

/// The noise box's settings as Rust constants.
fn noise_box() -> String {
    let mic = var("GRIDSENTRY_MIC", "inmp441");
    let preset = match mic.as_str() {
        "inmp441" => "INMP441",
        "ics43434" => "ICS43434",
        "sph0645" => "SPH0645",
        _ => fail("GRIDSENTRY_MIC", &mic, "one of inmp441, ics43434, sph0645"),
    };
    let cal = number("GRIDSENTRY_CAL_DB", "0", -12.7..=12.7, false);
    let on = number("GRIDSENTRY_ALARM_ON_DB", "70", 30.0..=130.0, false);
    let off = number("GRIDSENTRY_ALARM_OFF_DB", "67", 30.0..=130.0, false);
    if off >= on {
        fail(
            "GRIDSENTRY_ALARM_OFF_DB",
            &off.to_string(),
            "must be below GRIDSENTRY_ALARM_ON_DB (hysteresis)",
        );
    }
    let hold = number("GRIDSENTRY_ALARM_HOLD_S", "5", 1.0..=3600.0, true);
    let report = number("GRIDSENTRY_REPORT_S", "1", 1.0..=600.0, true);
    format!(
        "/// `GRIDSENTRY_MIC`.\npub const MIC: gridsentry_firmware_core::noise::Mic = gridsentry_firmware_core::noise::Mic::{preset};\n\
         /// `GRIDSENTRY_CAL_DB`.\npub const CAL_DB: f32 = {cal:?};\n\
         /// `GRIDSENTRY_ALARM_ON_DB`, `GRIDSENTRY_ALARM_OFF_DB`, `GRIDSENTRY_ALARM_HOLD_S`.\n\
         pub const ALARM: gridsentry_firmware_core::alarm::AlarmSettings = \
         gridsentry_firmware_core::alarm::AlarmSettings {{ on_db: {on:?}, off_db: {off:?}, hold_s: {hold} }};\n\
         /// `GRIDSENTRY_REPORT_S`.\npub const REPORT_S: u32 = {report};\n",
        hold = hold as u16,
        report = report as u32,
    )
}

fn host(name: &str, value: &str) {
    let ok = !value.is_empty()
        && value.len() <= 253
        && value.split('.').all(|l| !l.is_empty() && l.len() <= 63)
        && value.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
    if !ok {
        fail(name, value, "not an IPv4 address or host name");
    }
}

fn main() {
    // Generated constants beyond the fixed ones below.
    let mut ids = String::new();
    let ssid = var("GRIDSENTRY_WIFI_SSID", "gridsentry");
    if ssid.is_empty() || ssid.len() > 32 {
        fail("GRIDSENTRY_WIFI_SSID", &ssid, "an SSID has 1 to 32 bytes");
    }
    let password = var("GRIDSENTRY_WIFI_PASSWORD", "");
    if !password.is_empty() && !(8..=63).contains(&password.len()) {
        fail("GRIDSENTRY_WIFI_PASSWORD", "(hidden)", "a WPA2 passphrase has 8 to 63 characters");
    }
    let broker = var("GRIDSENTRY_BROKER", "192.168.4.1:1883");
    let Some((broker_host, port)) = broker.rsplit_once(':') else {
        fail("GRIDSENTRY_BROKER", &broker, "expected host:port")
    };
    host("GRIDSENTRY_BROKER", broker_host);
    let Ok(port) = port.parse::<u16>() else {
        fail("GRIDSENTRY_BROKER", &broker, "the port is not a number 1-65535")
    };
    if port == 0 {
        fail("GRIDSENTRY_BROKER", &broker, "port 0");
    }
    let user = var("GRIDSENTRY_MQTT_USER", "");
    let mqtt_password = var("GRIDSENTRY_MQTT_PASSWORD", "");
    for (name, value) in [("GRIDSENTRY_MQTT_USER", &user), ("GRIDSENTRY_MQTT_PASSWORD", &mqtt_password)] {
        if value.len() > 64 {
            // Secrets stay out of build logs.
            fail(name, if name.ends_with("PASSWORD") { "(hidden)" } else { value }, "at most 64 bytes");
        }
    }
    if user.is_empty() && !mqtt_password.is_empty() {
        fail("GRIDSENTRY_MQTT_PASSWORD", "(hidden)", "a password needs GRIDSENTRY_MQTT_USER");
    }
    writeln!(
        ids,
        "/// `GRIDSENTRY_MQTT_USER` (empty: anonymous).\npub const MQTT_USER: &str = {user:?};\n\
         /// `GRIDSENTRY_MQTT_PASSWORD`.\npub const MQTT_PASSWORD: &str = {mqtt_password:?};"
    )
    .unwrap();
    let ntp = var("GRIDSENTRY_NTP", "pool.ntp.org");
    host("GRIDSENTRY_NTP", &ntp);
    for (name, default, konst) in
        [("GRIDSENTRY_SITE", "plaza-1", "SITE"), ("GRIDSENTRY_DEVICE", "box-1", "DEVICE")]
    {
        let value = var(name, default);
        if let Err(e) = Id::new(&value) {
            fail(name, &value, &e.to_string());
        }
        writeln!(ids, "/// `{name}`.\npub const {konst}: &str = {value:?};").unwrap();
    }
    let bands_var = var("GRIDSENTRY_BANDS", "");
    let mut bands = Vec::new();
    for band in bands_var.split(',').map(str::trim).filter(|b| !b.is_empty()) {
        let bytes: Vec<u8> =
            band.split(':').filter_map(|h| u8::from_str_radix(h, 16).ok().filter(|_| h.len() == 2)).collect();
        if bytes.len() != 6 || band.len() != 17 {
            fail("GRIDSENTRY_BANDS", band, "a BLE address is six hex bytes, aa:bb:cc:dd:ee:ff");
        }
        bands.push(format!("{bytes:?}"));
    }
    writeln!(
        ids,
        "/// `GRIDSENTRY_BANDS`: wristband addresses, most significant byte first (empty: any band).\n\
         pub const BANDS: &[[u8; 6]] = &[{}];",
        bands.join(", ")
    )
    .unwrap();
    ids.push_str(&noise_box());
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
    let trial = number("GRIDSENTRY_OTA_TRIAL_S", "120", 5.0..=3600.0, true);
    let version = var("GRIDSENTRY_VERSION", env!("CARGO_PKG_VERSION"));
    let ok = |c: char| c.is_ascii_alphanumeric() || ".+-_".contains(c);
    if version.is_empty() || version.len() > 24 || !version.chars().all(ok) {
        fail("GRIDSENTRY_VERSION", &version, "1 to 24 characters of A-Z a-z 0-9 . + - _");
    }
    writeln!(ids, "/// `GRIDSENTRY_VERSION`: the firmware version in status messages and update reports.\npub const VERSION: &str = {version:?};").unwrap();
    writeln!(
        ids,
        "/// `GRIDSENTRY_OTA_PUBLIC_KEY`: images must be signed with its private half (none: no updates).\n\
         pub const OTA_PUBLIC_KEY: Option<[u8; 32]> = {};\n\
         /// `GRIDSENTRY_OTA_TRIAL_S`: a new image that has not proved itself by then is left.\n\
         pub const OTA_TRIAL_S: u64 = {trial};",
        if key_bytes.is_empty() { "None".to_string() } else { format!("Some({key_bytes:?})") }
    )
    .unwrap();
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR").unwrap());
    let settings = format!(
        "/// `GRIDSENTRY_WIFI_SSID`.\npub const WIFI_SSID: &str = {ssid:?};\n\
         /// `GRIDSENTRY_WIFI_PASSWORD` (empty: open network).\npub const WIFI_PASSWORD: &str = {password:?};\n\
         /// `GRIDSENTRY_BROKER`: host.\npub const BROKER_HOST: &str = {broker_host:?};\n\
         /// `GRIDSENTRY_BROKER`: port.\npub const BROKER_PORT: u16 = {port};\n\
         /// `GRIDSENTRY_NTP`.\npub const NTP_HOST: &str = {ntp:?};\n{ids}"
    );
    std::fs::write(out.join("settings.rs"), settings).unwrap();
    println!("cargo:rerun-if-changed=build.rs");
}
