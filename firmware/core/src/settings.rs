//! A device's own settings (which site and device it is, its Wi-Fi, broker, microphone
//! calibration, alarm levels), read at start from a flash sector of their own — not compiled in.
//!
//! Why: one signed update image must fit a whole fleet. With the settings compiled in, the image
//! built for one box would carry its identity and passwords to every box it was rolled out to.
//! So the installer image (`scripts/firmware-image`) carries the device's settings in the
//! settings sector, the app image carries none, and an update leaves the sector alone.
//!
//! The sector: magic `GSST`, text length and CRC-32 of the text (u32 little-endian each), then the
//! text: `GRIDSENTRY_NAME=value` lines as `gridsentry provision` writes them (`#` comments).
//! A blank or damaged sector leaves the build's defaults. The same checks run when the image is
//! made (`examples/settings.rs`), at build time (`firmware/link/build.rs`, for the defaults) and
//! on the device, so a wrong value is refused before it reaches a pole.

use crate::alarm::AlarmSettings;
use crate::noise::Mic;
use gridsentry_sensors::Id;
use heapless::{String, Vec};

/// The sector's first bytes.
pub const MAGIC: &[u8; 4] = b"GSST";
/// Largest settings text a sector holds.
pub const TEXT_MAX: usize = 4096 - 12;
/// Wristbands one home gateway follows at most.
pub const BANDS_MAX: usize = 8;

/// The device's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// `GRIDSENTRY_WIFI_SSID`.
    pub wifi_ssid: String<32>,
    /// `GRIDSENTRY_WIFI_PASSWORD` (empty: open network).
    pub wifi_password: String<63>,
    /// `GRIDSENTRY_BROKER`: host (IPv4 address or name).
    pub broker_host: String<64>,
    /// `GRIDSENTRY_BROKER`: port.
    pub broker_port: u16,
    /// `GRIDSENTRY_MQTT_USER` (empty: anonymous).
    pub mqtt_user: String<64>,
    /// `GRIDSENTRY_MQTT_PASSWORD`.
    pub mqtt_password: String<64>,
    /// `GRIDSENTRY_NTP`.
    pub ntp_host: String<64>,
    /// `GRIDSENTRY_SITE`.
    pub site: Id,
    /// `GRIDSENTRY_DEVICE`.
    pub device: Id,
    /// `GRIDSENTRY_BANDS`: wristband addresses, most significant byte first (empty: any band).
    pub bands: Vec<[u8; 6], BANDS_MAX>,
    /// `GRIDSENTRY_MIC`.
    pub mic: Mic,
    /// `GRIDSENTRY_CAL_DB`.
    pub cal_db: f32,
    /// `GRIDSENTRY_ALARM_ON_DB`, `_OFF_DB`, `_HOLD_S`.
    pub alarm: AlarmSettings,
    /// `GRIDSENTRY_REPORT_S`.
    pub report_s: u32,
}

/// A refused setting: the variable and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingError {
    /// The variable (`(line)` when a line is not `NAME=value`).
    pub name: String<40>,
    /// What a valid value looks like.
    pub why: &'static str,
}

/// The settings the build fixes for every device (`firmware/link/build.rs`), never read from
/// the sector.
pub const FLEET_WIDE: [&str; 3] =
    ["GRIDSENTRY_VERSION", "GRIDSENTRY_OTA_PUBLIC_KEY", "GRIDSENTRY_OTA_TRIAL_S"];

impl Default for Settings {
    fn default() -> Self {
        fn s<const N: usize>(v: &str) -> String<N> {
            String::try_from(v).unwrap_or_default()
        }
        Settings {
            wifi_ssid: s("gridsentry"),
            wifi_password: String::new(),
            broker_host: s("192.168.4.1"),
            broker_port: 1883,
            mqtt_user: String::new(),
            mqtt_password: String::new(),
            ntp_host: s("pool.ntp.org"),
            site: Id::new("plaza-1").unwrap_or_else(|_| unreachable!()),
            device: Id::new("box-1").unwrap_or_else(|_| unreachable!()),
            bands: Vec::new(),
            mic: Mic::INMP441,
            cal_db: 0.0,
            alarm: AlarmSettings::default(),
            report_s: 1,
        }
    }
}

fn err(name: &str, why: &'static str) -> SettingError {
    let mut n = String::new();
    for c in name.chars().take(40) {
        let _ = n.push(c);
    }
    SettingError { name: n, why }
}

fn text<const N: usize>(name: &str, v: &str, why: &'static str) -> Result<String<N>, SettingError> {
    String::try_from(v).map_err(|_| err(name, why))
}

fn host<const N: usize>(name: &str, v: &str) -> Result<String<N>, SettingError> {
    const WHY: &str = "not an IPv4 address or host name (at most 64 bytes)";
    let ok = !v.is_empty()
        && v.split('.').all(|l| !l.is_empty() && l.len() <= 63)
        && v.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
    if !ok {
        return Err(err(name, WHY));
    }
    text(name, v, WHY)
}

fn number(
    name: &str,
    v: &str,
    lo: f32,
    hi: f32,
    whole: bool,
    why: &'static str,
) -> Result<f32, SettingError> {
    match v.trim().parse::<f32>() {
        Ok(x) if (lo..=hi).contains(&x) && (!whole || x == libm::truncf(x)) => Ok(x),
        _ => Err(err(name, why)),
    }
}

fn band(v: &str) -> Option<[u8; 6]> {
    let mut out = [0u8; 6];
    let mut parts = v.split(':');
    for b in &mut out {
        let h = parts.next()?;
        if h.len() != 2 {
            return None;
        }
        *b = u8::from_str_radix(h, 16).ok()?;
    }
    parts.next().is_none().then_some(out)
}

impl Settings {
    /// Sets one variable (`GRIDSENTRY_NAME` and its value), checked.
    pub fn set(&mut self, name: &str, v: &str) -> Result<(), SettingError> {
        match name {
            "GRIDSENTRY_WIFI_SSID" => {
                const N: &str = "GRIDSENTRY_WIFI_SSID";
                if v.is_empty() {
                    return Err(err(N, "an SSID has 1 to 32 bytes"));
                }
                self.wifi_ssid = text(N, v, "an SSID has 1 to 32 bytes")?;
            }
            "GRIDSENTRY_WIFI_PASSWORD" => {
                const WHY: &str = "a WPA2 passphrase has 8 to 63 characters";
                if !v.is_empty() && v.len() < 8 {
                    return Err(err("GRIDSENTRY_WIFI_PASSWORD", WHY));
                }
                self.wifi_password = text("GRIDSENTRY_WIFI_PASSWORD", v, WHY)?;
            }
            "GRIDSENTRY_BROKER" => {
                const N: &str = "GRIDSENTRY_BROKER";
                let (h, port) = v.rsplit_once(':').ok_or_else(|| err(N, "expected host:port"))?;
                self.broker_host = host(N, h)?;
                self.broker_port = match port.parse::<u16>() {
                    Ok(p) if p > 0 => p,
                    _ => return Err(err(N, "the port is not a number 1-65535")),
                };
            }
            "GRIDSENTRY_MQTT_USER" => self.mqtt_user = text(name, v, "at most 64 bytes")?,
            "GRIDSENTRY_MQTT_PASSWORD" => self.mqtt_password = text(name, v, "at most 64 bytes")?,
            "GRIDSENTRY_NTP" => self.ntp_host = host("GRIDSENTRY_NTP", v)?,
            "GRIDSENTRY_SITE" | "GRIDSENTRY_DEVICE" => {
                let id = Id::new(v).map_err(|_| {
                    err(name, "1 to 32 characters of a-z 0-9 and - (no leading or trailing -)")
                })?;
                if name == "GRIDSENTRY_SITE" {
                    self.site = id;
                } else {
                    self.device = id;
                }
            }
            "GRIDSENTRY_BANDS" => {
                const WHY: &str = "a BLE address is six hex bytes, aa:bb:cc:dd:ee:ff (at most 8)";
                let mut bands = Vec::new();
                for b in v.split(',').map(str::trim).filter(|b| !b.is_empty()) {
                    let addr = band(b).ok_or_else(|| err("GRIDSENTRY_BANDS", WHY))?;
                    bands.push(addr).map_err(|_| err("GRIDSENTRY_BANDS", WHY))?;
                }
                self.bands = bands;
            }
            "GRIDSENTRY_MIC" => {
                self.mic = match v {
                    "inmp441" => Mic::INMP441,
                    "ics43434" => Mic::ICS43434,
                    "sph0645" => Mic::SPH0645,
                    _ => return Err(err("GRIDSENTRY_MIC", "one of inmp441, ics43434, sph0645")),
                }
            }
            "GRIDSENTRY_CAL_DB" => {
                self.cal_db = number(name, v, -12.7, 12.7, false, "a number from -12.7 to 12.7")?
            }
            "GRIDSENTRY_ALARM_ON_DB" => {
                self.alarm.on_db = number(name, v, 30.0, 130.0, false, "a number from 30 to 130")?
            }
            "GRIDSENTRY_ALARM_OFF_DB" => {
                self.alarm.off_db = number(name, v, 30.0, 130.0, false, "a number from 30 to 130")?
            }
            "GRIDSENTRY_ALARM_HOLD_S" => {
                self.alarm.hold_s =
                    number(name, v, 1.0, 3600.0, true, "a whole number from 1 to 3600")? as u16
            }
            "GRIDSENTRY_REPORT_S" => {
                self.report_s = number(name, v, 1.0, 600.0, true, "a whole number from 1 to 600")? as u32
            }
            _ if FLEET_WIDE.contains(&name) => {
                return Err(err(name, "set when the firmware is built, for the whole fleet"))
            }
            _ => return Err(err(name, "not a gridsentry device setting")),
        }
        Ok(())
    }

    /// Checks what involves two settings.
    pub fn check(&self) -> Result<(), SettingError> {
        if self.alarm.off_db >= self.alarm.on_db {
            return Err(err("GRIDSENTRY_ALARM_OFF_DB", "must be below GRIDSENTRY_ALARM_ON_DB (hysteresis)"));
        }
        if self.mqtt_user.is_empty() && !self.mqtt_password.is_empty() {
            return Err(err("GRIDSENTRY_MQTT_PASSWORD", "a password needs GRIDSENTRY_MQTT_USER"));
        }
        Ok(())
    }

    /// These settings with the `NAME=value` lines of `text` applied (all or none).
    pub fn with_text(&self, text: &str) -> Result<Settings, SettingError> {
        let mut s = self.clone();
        for line in text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
            let (name, value) =
                line.split_once('=').ok_or_else(|| err("(line)", "expected GRIDSENTRY_NAME=value"))?;
            s.set(name.trim(), value.trim())?;
        }
        s.check()?;
        Ok(s)
    }
}

/// The settings text in a sector, if one was written whole (magic, length and CRC check out).
pub fn sector_text(sector: &[u8]) -> Option<&str> {
    let word = |i: usize| sector.get(i..i + 4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
    if sector.get(..4)? != MAGIC {
        return None;
    }
    let len = word(4)? as usize;
    let text = sector.get(12..12 + len).filter(|_| len <= TEXT_MAX)?;
    if crate::ota::record::crc32(text) != word(8)? {
        return None;
    }
    core::str::from_utf8(text).ok()
}

/// Writes `text` as a sector's contents into `out` (at least 12 + its length); returns the length.
pub fn sector_bytes(text: &str, out: &mut [u8]) -> Option<usize> {
    let n = 12 + text.len();
    if text.len() > TEXT_MAX || out.len() < n {
        return None;
    }
    out[..4].copy_from_slice(MAGIC);
    out[4..8].copy_from_slice(&(text.len() as u32).to_le_bytes());
    out[8..12].copy_from_slice(&crate::ota::record::crc32(text.as_bytes()).to_le_bytes());
    out[12..n].copy_from_slice(text.as_bytes());
    Some(n)
}
