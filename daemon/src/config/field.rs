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
