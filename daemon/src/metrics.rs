//! Counters and gauges of the running daemon, rendered for Prometheus at `/metrics`.
//!
//! Plain atomics and one small map: the hot path pays one relaxed add per reading.

use crate::devtime::Skew;
use crate::gate::Refusal;
use gridsentry_sensors::Stream;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;

/// Everything the daemon counts.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Readings applied to the rules, by stream.
    pub readings: [AtomicU64; Stream::COUNT],
    /// Readings whose device time was refused, by [`Skew`] (`as usize`).
    pub clock_skew: [AtomicU64; 2],
    /// Readings of devices not heard, by [`Refusal`] (`as usize`).
    pub devices_refused: [AtomicU64; 2],
    /// Devices tracked.
    pub devices_tracked: AtomicU64,
    /// Messages dropped as malformed, by reason (topic or payload reason).
    pub malformed: Mutex<BTreeMap<String, u64>>,
    /// Field-bus failures (Modbus, serial), by reason.
    pub field_errors: Mutex<BTreeMap<String, u64>>,
    /// Successful Modbus polls.
    pub modbus_polls: AtomicU64,
    /// Readings already applied before (redelivered after a restart): acked, not re-applied.
    pub duplicates: AtomicU64,
    /// Readings below the device's highest sequence number, not seen before: applied.
    pub out_of_order: AtomicU64,
    /// Readings further below the highest than the sequence window reaches: taken as applied.
    pub too_old: AtomicU64,
    /// Readings older than one already applied for the same rule and subject.
    pub stale: AtomicU64,
    /// Group commits.
    pub batches: AtomicU64,
    /// Order transitions recorded.
    pub transitions: AtomicU64,
    /// 1 while connected to the broker.
    pub mqtt_connected: AtomicI64,
    /// Broker (re)connections.
    pub mqtt_connects: AtomicU64,
    /// Webhook deliveries that succeeded.
    pub webhooks_delivered: AtomicU64,
    /// Webhook attempts that failed.
    pub webhooks_failed: AtomicU64,
    /// Notifications given up (dead letters).
    pub webhooks_dead: AtomicU64,
    /// Points the time-series server accepted (replays included).
    pub series_written: AtomicU64,
    /// Points sent from the disk spool.
    pub series_replayed: AtomicU64,
    /// Points spilled to disk.
    pub series_spilled: AtomicU64,
    /// Bytes spilled to disk.
    pub series_spilled_bytes: AtomicU64,
    /// Points dropped because the spool was full (lost).
    pub series_dropped: AtomicU64,
    /// Redelivered readings not written again (the server had them).
    pub series_already_stored: AtomicU64,
    /// Points the server refused as malformed (lost).
    pub series_rejected: AtomicU64,
    /// Failed writes (each is retried).
    pub series_write_errors: AtomicU64,
    /// Batches waiting on disk.
    pub series_queue_batches: AtomicU64,
    /// Points not yet accepted (disk and memory).
    pub series_queue_points: AtomicU64,
    /// Bytes waiting on disk.
    pub series_queue_bytes: AtomicU64,
    /// Formation time (UTC ms) of the oldest unsent batch; 0 when nothing waits.
    pub series_oldest_unsent_ms: AtomicU64,
}

impl Metrics {
    /// Counts a dropped message.
    pub fn malformed(&self, reason: &str) {
        bump(&self.malformed, reason);
    }

    /// Counts a field-bus failure.
    pub fn field_error(&self, reason: &str) {
        bump(&self.field_errors, reason);
    }

    /// Prometheus text format; `extra` adds gauges read at scrape time.
    pub fn render(&self, extra: &[(&str, &str, i64)]) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "# TYPE gridsentry_readings_total counter");
        for stream in Stream::ALL {
            let n = self.readings[stream.index()].load(Relaxed);
            let _ = writeln!(s, "gridsentry_readings_total{{stream=\"{stream}\"}} {n}");
        }
        let _ = writeln!(s, "# TYPE gridsentry_devices_refused_total counter");
        for why in Refusal::ALL {
            let n = self.devices_refused[why as usize].load(Relaxed);
            let _ = writeln!(s, "gridsentry_devices_refused_total{{reason=\"{}\"}} {n}", why.as_str());
        }
        let _ = writeln!(s, "# TYPE gridsentry_clock_skew_total counter");
        for skew in Skew::ALL {
            let n = self.clock_skew[skew as usize].load(Relaxed);
            let _ = writeln!(s, "gridsentry_clock_skew_total{{direction=\"{}\"}} {n}", skew.as_str());
        }
        for (name, map) in [
            ("gridsentry_malformed_total", &self.malformed),
            ("gridsentry_field_errors_total", &self.field_errors),
        ] {
            let _ = writeln!(s, "# TYPE {name} counter");
            for (reason, n) in map.lock().unwrap_or_else(|p| p.into_inner()).iter() {
                let _ = writeln!(s, "{name}{{reason=\"{reason}\"}} {n}");
            }
        }
        let plain = [
            ("gridsentry_modbus_polls_total", &self.modbus_polls),
            ("gridsentry_duplicates_total", &self.duplicates),
            ("gridsentry_out_of_order_total", &self.out_of_order),
            ("gridsentry_seq_too_old_total", &self.too_old),
            ("gridsentry_stale_total", &self.stale),
            ("gridsentry_batches_total", &self.batches),
            ("gridsentry_order_transitions_total", &self.transitions),
            ("gridsentry_mqtt_connects_total", &self.mqtt_connects),
            ("gridsentry_webhooks_delivered_total", &self.webhooks_delivered),
            ("gridsentry_webhooks_failed_total", &self.webhooks_failed),
            ("gridsentry_webhooks_dead_total", &self.webhooks_dead),
            ("gridsentry_series_written_points_total", &self.series_written),
            ("gridsentry_series_replayed_points_total", &self.series_replayed),
            ("gridsentry_series_spilled_points_total", &self.series_spilled),
            ("gridsentry_series_spilled_bytes_total", &self.series_spilled_bytes),
            ("gridsentry_series_dropped_points_total", &self.series_dropped),
            ("gridsentry_series_rejected_points_total", &self.series_rejected),
            ("gridsentry_series_already_stored_total", &self.series_already_stored),
            ("gridsentry_series_write_errors_total", &self.series_write_errors),
        ];
        for (name, v) in plain {
            let _ = writeln!(s, "# TYPE {name} counter\n{name} {}", v.load(Relaxed));
        }
        let _ = writeln!(
            s,
            "# TYPE gridsentry_mqtt_connected gauge\ngridsentry_mqtt_connected {}",
            self.mqtt_connected.load(Relaxed)
        );
        let gauges = [
            ("gridsentry_devices_tracked", &self.devices_tracked),
            ("gridsentry_series_queue_batches", &self.series_queue_batches),
            ("gridsentry_series_queue_points", &self.series_queue_points),
            ("gridsentry_series_queue_bytes", &self.series_queue_bytes),
        ];
        for (name, v) in gauges {
            let _ = writeln!(s, "# TYPE {name} gauge\n{name} {}", v.load(Relaxed));
        }
        let oldest = self.series_oldest_unsent_ms.load(Relaxed);
        let age =
            if oldest == 0 { 0.0 } else { crate::clock::now_ms().saturating_sub(oldest) as f64 / 1000.0 };
        let _ = writeln!(
            s,
            "# TYPE gridsentry_series_oldest_unsent_age_seconds gauge\ngridsentry_series_oldest_unsent_age_seconds {age}"
        );
        for (name, labels, v) in extra {
            let _ = writeln!(s, "{name}{labels} {v}");
        }
        s
    }
}

/// Adds one to `reason`'s count.
fn bump(map: &Mutex<BTreeMap<String, u64>>, reason: &str) {
    let mut m = map.lock().unwrap_or_else(|p| p.into_inner());
    *m.entry(reason.to_string()).or_default() += 1;
}
