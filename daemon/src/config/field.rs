//! `[[modbus]]`: polled field devices (Modbus TCP, or RTU over a serial line).

use serde::Deserialize;

/// One Modbus device.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModbusDevice {
    /// Site id of its readings.
    pub site: String,
    /// Device id of its readings.
    pub device: String,
    /// Register map (`wire_extensometer`, `inclinometer`, `rain_gauge_sen0575`, `gnss_station`).
    pub kind: String,
    /// `host:port` of a Modbus TCP server (or gateway).
    #[serde(default)]
    pub tcp: Option<String>,
    /// Serial device of an RTU bus (e.g. `/dev/ttyUSB0`); devices naming the same path share it.
    #[serde(default)]
    pub rtu: Option<String>,
    /// RTU baud rate.
    #[serde(default = "baud")]
    pub baud: u32,
    /// RTU parity: `none`, `even` or `odd`.
    #[serde(default = "parity")]
    pub parity: String,
    /// Unit (slave) id.
    #[serde(default = "unit")]
    pub unit: u8,
    /// Poll interval, ms.
    #[serde(default = "poll_ms")]
    pub poll_ms: u64,
    /// Per-request timeout, ms (then the connection is re-opened: a late reply must not be
    /// read as the answer to the next request).
    #[serde(default = "timeout_ms")]
    pub timeout_ms: u64,
    /// Extra attempts per request before the poll counts as failed.
    #[serde(default = "retries")]
    pub retries: u32,
    /// Longest interval between polls of a device that does not answer, ms (the interval
    /// doubles from `poll_ms` up to this).
    #[serde(default = "backoff_max_ms")]
    pub backoff_max_ms: u64,
    /// Quiet time between two requests on an RTU bus, ms.
    #[serde(default = "gap_ms")]
    pub gap_ms: u64,
}

fn baud() -> u32 {
    9600
}
fn parity() -> String {
    "none".into()
}
fn unit() -> u8 {
    1
}
fn poll_ms() -> u64 {
    10_000
}
fn timeout_ms() -> u64 {
    1000
}
fn retries() -> u32 {
    2
}
fn backoff_max_ms() -> u64 {
    300_000
}
fn gap_ms() -> u64 {
    20
}

impl ModbusDevice {
    /// Checks one device and its consistency with the devices before it.
    pub fn check(&self, before: &[&ModbusDevice]) -> Result<(), String> {
        let name = format!("modbus device `{}/{}`", self.site, self.device);
        gridsentry_sensors::Id::new(&self.site).map_err(|e| format!("{name}: site: {e}"))?;
        gridsentry_sensors::Id::new(&self.device).map_err(|e| format!("{name}: device: {e}"))?;
        if gridsentry_sensors::modbus::map_for(&self.kind).is_none() {
            let kinds: Vec<&str> = gridsentry_sensors::modbus::MAPS.iter().map(|m| m.kind).collect();
            return Err(format!("{name}: unknown kind `{}` (one of {})", self.kind, kinds.join(", ")));
        }
        match (&self.tcp, &self.rtu) {
            (Some(t), None) if t.rsplit_once(':').is_some_and(|(_, p)| p.parse::<u16>().is_ok()) => {}
            (Some(t), None) => return Err(format!("{name}: tcp `{t}` is not host:port")),
            (None, Some(_)) => {}
            _ => return Err(format!("{name}: give exactly one of tcp or rtu")),
        }
        if !matches!(self.parity.as_str(), "none" | "even" | "odd") {
            return Err(format!("{name}: parity must be none, even or odd"));
        }
        if self.poll_ms == 0 || self.timeout_ms == 0 || self.backoff_max_ms < self.poll_ms {
            return Err(format!("{name}: poll_ms, timeout_ms >= 1 and backoff_max_ms >= poll_ms"));
        }
        for b in before {
            if b.site == self.site && b.device == self.device {
                return Err(format!("{name}: listed twice"));
            }
            if b.rtu.is_some() && b.rtu == self.rtu {
                if (b.baud, &b.parity, b.gap_ms) != (self.baud, &self.parity, self.gap_ms) {
                    return Err(format!(
                        "{name}: same bus as `{}/{}` but other baud, parity or gap_ms",
                        b.site, b.device
                    ));
                }
                if b.unit == self.unit {
                    return Err(format!("{name}: unit {} already used on this bus", self.unit));
                }
            }
        }
        Ok(())
    }
}

/// One line-oriented serial device (`[[serial]]`): a GNSS receiver printing NMEA GGA.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SerialDevice {
    /// Site id of its readings.
    pub site: String,
    /// Device id of its readings.
    pub device: String,
    /// Serial device, e.g. `/dev/ttyUSB1`.
    pub path: String,
    /// Baud rate.
    #[serde(default = "gnss_baud")]
    pub baud: u32,
    /// Line format; `nmea_gga` (GNSS receivers) is the one known.
    #[serde(default = "nmea_gga")]
    pub format: String,
    /// The antenna's surveyed position: displacements are measured from it.
    pub origin: gridsentry_sensors::nmea::Origin,
    /// Worst fix quality that counts: `rtk` (fixed, default), `float_rtk`, `dgps`, `gps`.
    #[serde(default = "rtk")]
    pub min_quality: gridsentry_sensors::nmea::Quality,
    /// One reading per window: the mean of the good fixes in it, seconds.
    #[serde(default = "average_s")]
    pub average_s: u64,
    /// No good fix for this long: reported offline (a `no_data` rule raises at once), seconds.
    #[serde(default = "silent_s")]
    pub silent_s: u64,
    /// Longest wait between attempts to re-open a port that failed, ms (doubling from 500 ms).
    #[serde(default = "backoff_max_ms")]
    pub backoff_max_ms: u64,
}

fn gnss_baud() -> u32 {
    115_200
}
fn nmea_gga() -> String {
    "nmea_gga".into()
}
fn rtk() -> gridsentry_sensors::nmea::Quality {
    gridsentry_sensors::nmea::Quality::Rtk
}
fn average_s() -> u64 {
    60
}
fn silent_s() -> u64 {
    30
}

impl SerialDevice {
    /// Checks one device against the serial and Modbus devices before it.
    pub fn check(&self, before: &[&SerialDevice], modbus: &[&ModbusDevice]) -> Result<(), String> {
        let name = format!("serial device `{}/{}`", self.site, self.device);
        gridsentry_sensors::Id::new(&self.site).map_err(|e| format!("{name}: site: {e}"))?;
        gridsentry_sensors::Id::new(&self.device).map_err(|e| format!("{name}: device: {e}"))?;
        if self.format != "nmea_gga" {
            return Err(format!("{name}: unknown format `{}` (one of nmea_gga)", self.format));
        }
        let o = &self.origin;
        if !(o.lat_deg.abs() <= 90.0 && o.lon_deg.abs() <= 180.0 && o.alt_m.is_finite()) {
            return Err(format!("{name}: origin must be a latitude, longitude and altitude"));
        }
        if self.baud == 0 || self.average_s == 0 || self.silent_s == 0 || self.backoff_max_ms < 500 {
            return Err(format!("{name}: baud, average_s, silent_s >= 1 and backoff_max_ms >= 500"));
        }
        for b in before {
            if (&b.site, &b.device) == (&self.site, &self.device) || b.path == self.path {
                return Err(format!("{name}: same device or port as `{}/{}`", b.site, b.device));
            }
        }
        for m in modbus {
            if (&m.site, &m.device) == (&self.site, &self.device) || m.rtu.as_ref() == Some(&self.path) {
                return Err(format!(
                    "{name}: same device or port as modbus device `{}/{}`",
                    m.site, m.device
                ));
            }
        }
        Ok(())
    }
}
