//! The console's view of the field: per device, when it was last heard and the recent values of
//! each stream, kept in memory (the time series lives in InfluxDB; this is only what an
//! operator glances at). Fed by the pipeline after each commit, read by the API.

use crate::flow::Inbound;
use gridsentry_sensors::{Body, DeviceState, Id};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Mutex;

/// Points kept per stream (a small chart, not history).
pub const POINTS: usize = 60;

/// Series kept per device when not told otherwise (`[devices] max_bands` plus the other
/// streams: see [`Live::new`]).
pub const MAX_SERIES: usize = crate::rules::MAX_BANDS + 16;

/// Recent readings of every device.
pub struct Live {
    devices: Mutex<HashMap<(Id, Id), DeviceView>>,
    /// Series per device at most: a gateway inventing band ids cannot grow the view (and every
    /// console's re-read of it) without bound.
    max_series: usize,
}

impl Default for Live {
    fn default() -> Self {
        Live::new(MAX_SERIES)
    }
}

/// One device as the console shows it.
#[derive(Debug, Clone, Serialize)]
pub struct DeviceView {
    /// Site id.
    pub site: String,
    /// Device id.
    pub device: String,
    /// When its last message arrived, UTC ms.
    pub last_seen_ms: u64,
    /// What its last status message said, if any.
    pub online: Option<bool>,
    /// Recent values by series (`noise`, `hr:<band>`, `deform:<channel>`, `rain`).
    pub series: BTreeMap<String, Series>,
    /// More series came than are kept.
    pub capped: bool,
}

/// Recent values of one series.
#[derive(Debug, Clone, Serialize)]
pub struct Series {
    /// What the value is (`laeq_db`, `bpm`, `disp_mm`, ...).
    pub field: String,
    /// `(event ms, value)`, oldest first.
    pub points: VecDeque<(u64, f64)>,
}

impl Live {
    /// A view keeping at most `max_series` series per device.
    pub fn new(max_series: usize) -> Live {
        Live { devices: Mutex::default(), max_series: max_series.max(1) }
    }

    /// Records readings just committed.
    pub fn record<'a>(&self, readings: impl Iterator<Item = &'a Inbound>) {
        let mut devices = self.devices.lock().unwrap_or_else(|p| p.into_inner());
        for m in readings {
            let h = &m.reading.header;
            let key = (h.site.clone(), h.device.clone());
            let view = devices.entry(key).or_insert_with(|| DeviceView {
                site: h.site.to_string(),
                device: h.device.to_string(),
                last_seen_ms: 0,
                online: None,
                series: BTreeMap::new(),
                capped: false,
            });
            view.last_seen_ms = view.last_seen_ms.max(m.received_ms);
            let at = m.event_ms;
            // The common case (one noise value) allocates nothing once the series exists.
            let known_noise = match (&m.reading.body, view.series.get_mut("noise")) {
                (Body::Noise(n), Some(s)) => {
                    push(s, at, n.laeq_db.into());
                    true
                }
                _ => false,
            };
            if !known_noise {
                for (name, field, value) in values(&m.reading.body) {
                    if !view.series.contains_key(&name) && view.series.len() >= self.max_series {
                        if !view.capped {
                            view.capped = true;
                            tracing::warn!(site = %h.site, device = %h.device, max = self.max_series, "live view: series past the cap are not shown");
                        }
                        continue;
                    }
                    let s =
                        view.series.entry(name).or_insert_with(|| Series { field, points: VecDeque::new() });
                    push(s, at, value);
                }
            }
            if let Body::Status(st) = &m.reading.body {
                view.online = Some(st.state == DeviceState::Online);
            } else if !m.reading.header.historical {
                view.online = Some(true);
            }
        }
    }

    /// Every device, by site and id; `site` filters.
    pub fn snapshot(&self, site: Option<&str>) -> Vec<DeviceView> {
        let devices = self.devices.lock().unwrap_or_else(|p| p.into_inner());
        let mut out: Vec<DeviceView> =
            devices.values().filter(|d| site.is_none_or(|s| d.site == s)).cloned().collect();
        out.sort_by(|a, b| (&a.site, &a.device).cmp(&(&b.site, &b.device)));
        out
    }
}

fn push(s: &mut Series, at: u64, value: f64) {
    if s.points.len() == POINTS {
        s.points.pop_front();
    }
    s.points.push_back((at, value));
}

/// The values worth a chart: `(series name, field, value)`.
fn values(body: &Body) -> Vec<(String, String, f64)> {
    match body {
        Body::Noise(n) => vec![("noise".into(), "laeq_db".into(), n.laeq_db.into())],
        Body::HeartRate(h) => vec![(format!("hr:{}", h.band), "bpm".into(), h.bpm.into())],
        Body::Deform(d) => d
            .channels
            .iter()
            .filter(|c| c.kind != gridsentry_sensors::ChannelKind::TemperatureC)
            .map(|c| (format!("deform:{}", c.kind.as_str()), c.kind.as_str().into(), c.value))
            .collect(),
        Body::Rain(d) => {
            d.channels.iter().map(|c| ("rain".into(), c.kind.as_str().into(), c.value)).collect()
        }
        Body::Status(_) => Vec::new(),
    }
}
