//! The tables about the devices and the people behind them: which devices are heard
//! (`[devices]`), where the sites are (`[[site]]`), and how long personal data is kept
//! (`[privacy]`).

use serde::Deserialize;
use std::path::PathBuf;

/// `[[site]]`: a place on the console's map.
#[derive(Debug, Clone, PartialEq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct SiteConfig {
    /// Site id (as in the topics).
    pub id: String,
    /// Name for people (e.g. 解放碑广场).
    #[serde(default)]
    pub name: String,
    /// Latitude, degrees (WGS-84 or GCJ-02: the map only needs them consistent).
    pub lat: f64,
    /// Longitude, degrees.
    pub lon: f64,
    /// Street (街道) or grid the site belongs to: the console groups by it.
    #[serde(default)]
    pub street: String,
}

/// `[privacy]`: how long the readings behind orders are kept (see `orders::retention`).
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Privacy {
    /// Days the evidence of an order event (the reading that caused it, heart rates included)
    /// is kept; then it is emptied (orders, events and summaries stay). 0: kept for ever.
    pub evidence_days: u64,
    /// Days a reading may wait on the gateway's disk for the time-series server (spool); older
    /// ones are deleted (counted as dropped). 0: kept until sent. The server's own retention
    /// is its bucket's.
    pub readings_days: u64,
}

impl Default for Privacy {
    fn default() -> Self {
        Privacy { evidence_days: 30, readings_days: 0 }
    }
}

/// `[devices]`: which devices the daemon listens to ([`crate::gate`]).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Devices {
    /// `any`: every device whose readings pass the checks (up to `max_tracked`); `known`: only
    /// devices in `registry` and the configured field devices (others counted and dropped).
    pub allow: Allow,
    /// The device registry, one `site/device` per line (`gridsentry provision` writes it);
    /// re-read when it changes.
    pub registry: Option<PathBuf>,
    /// Most devices tracked (sequence windows, rule state, console). A new device beyond it
    /// is counted and dropped, so a flood of invented ids cannot grow memory and the database.
    pub max_tracked: std::num::NonZeroUsize,
    /// Most wristbands one gateway may report; readings of further bands are counted and not
    /// applied to heart rules (a gateway inventing band ids cannot grow the rule state).
    pub max_bands: std::num::NonZeroUsize,
}

impl Default for Devices {
    fn default() -> Self {
        Devices {
            allow: Allow::Any,
            registry: None,
            max_tracked: const { std::num::NonZeroUsize::new(10_000).unwrap() },
            max_bands: const { std::num::NonZeroUsize::new(crate::rules::MAX_BANDS).unwrap() },
        }
    }
}

/// `[devices] allow`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Allow {
    /// Any device.
    #[default]
    Any,
    /// Devices in the registry and the configured field devices.
    Known,
}

/// `[[duty]]`: who is on duty for a street, and when (a simple rota). The console's 派遣 offers
/// the people on duty for the order's street first; `GET /api/v1/duty` lists the rota.
#[derive(Debug, Clone, PartialEq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct DutyConfig {
    /// The street (as in `[[site]] street`).
    pub street: String,
    /// Login names of the people on duty (`gridsentry people add`).
    pub people: Vec<String>,
    /// `HH:MM-HH:MM` in `[daemon] timezone` (may cross midnight, `20:00-08:00`); absent: all day.
    #[serde(default)]
    pub hours: Option<String>,
}

impl DutyConfig {
    /// The hours as minutes after midnight, `None` for all day; `Err` for a malformed value.
    pub fn span(&self) -> Result<Option<(u32, u32)>, String> {
        let Some(h) = &self.hours else { return Ok(None) };
        let bad = || format!("hours `{h}`: HH:MM-HH:MM expected (e.g. 08:00-20:00)");
        let (from, to) = h.split_once('-').ok_or_else(bad)?;
        let minute = |s: &str| crate::rules::parse_hhmm(s.trim());
        match (minute(from), minute(to)) {
            (Some(a), Some(b)) if a != b => Ok(Some((a, b))),
            _ => Err(bad()),
        }
    }

    /// Whether the rota entry covers `minute` (minutes after local midnight).
    pub fn covers(&self, minute: u32) -> bool {
        match self.span() {
            Ok(None) => true,
            Ok(Some((a, b))) if a < b => (a..b).contains(&minute),
            Ok(Some((a, b))) => minute >= a || minute < b,
            Err(_) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::DutyConfig;

    fn duty(hours: Option<&str>) -> DutyConfig {
        DutyConfig { street: "s".into(), people: vec!["wang".into()], hours: hours.map(str::to_string) }
    }

    #[test]
    fn hours_cover_their_span_and_may_cross_midnight() {
        let day = duty(Some("08:00-20:00"));
        assert!(
            day.covers(8 * 60) && day.covers(19 * 60 + 59) && !day.covers(20 * 60) && !day.covers(7 * 60)
        );
        let night = duty(Some("20:00-08:00"));
        assert!(
            night.covers(23 * 60) && night.covers(0) && night.covers(7 * 60 + 59) && !night.covers(12 * 60)
        );
        assert!(duty(None).covers(3 * 60));
    }

    #[test]
    fn malformed_hours_are_refused() {
        for bad in ["8-20", "08:00", "25:00-08:00", "08:00-08:00", "08:00-20:60", "0800-2000"] {
            assert!(duty(Some(bad)).span().is_err(), "{bad}");
            assert!(!duty(Some(bad)).covers(9 * 60), "{bad}");
        }
    }
}
