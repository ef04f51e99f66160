//! Counters and gauges of the running daemon, rendered for Prometheus at `/metrics`.
//!
//! Plain atomics and one small map: the hot path pays one relaxed add per reading.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;

/// Everything the daemon counts.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Readings applied to the rules, by stream.
    pub readings: [AtomicU64; 5],
    /// Messages dropped as malformed, by reason (topic or payload reason).
    pub malformed: Mutex<BTreeMap<String, u64>>,
    /// Readings already applied before (redelivered after a restart): acked, not re-applied.
    pub duplicates: AtomicU64,
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
}

impl Metrics {
    /// Counts a dropped message.
    pub fn malformed(&self, reason: &str) {
        let mut m = self.malformed.lock().unwrap_or_else(|p| p.into_inner());
        *m.entry(reason.to_string()).or_default() += 1;
    }

    /// Prometheus text format; `extra` adds gauges read at scrape time.
    pub fn render(&self, extra: &[(&str, &str, i64)]) -> String {
        let mut s = String::new();
        let streams = ["noise", "hr", "deform", "rain", "status"];
        let _ = writeln!(s, "# TYPE gridsentry_readings_total counter");
        for (i, name) in streams.iter().enumerate() {
            let _ = writeln!(
                s,
                "gridsentry_readings_total{{stream=\"{name}\"}} {}",
                self.readings[i].load(Relaxed)
            );
        }
        let _ = writeln!(s, "# TYPE gridsentry_malformed_total counter");
        for (reason, n) in self.malformed.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            let _ = writeln!(s, "gridsentry_malformed_total{{reason=\"{reason}\"}} {n}");
        }
        let plain = [
            ("gridsentry_duplicates_total", &self.duplicates),
            ("gridsentry_stale_total", &self.stale),
            ("gridsentry_batches_total", &self.batches),
            ("gridsentry_order_transitions_total", &self.transitions),
            ("gridsentry_mqtt_connects_total", &self.mqtt_connects),
            ("gridsentry_webhooks_delivered_total", &self.webhooks_delivered),
            ("gridsentry_webhooks_failed_total", &self.webhooks_failed),
            ("gridsentry_webhooks_dead_total", &self.webhooks_dead),
        ];
        for (name, v) in plain {
            let _ = writeln!(s, "# TYPE {name} counter\n{name} {}", v.load(Relaxed));
        }
        let _ = writeln!(
            s,
            "# TYPE gridsentry_mqtt_connected gauge\ngridsentry_mqtt_connected {}",
            self.mqtt_connected.load(Relaxed)
        );
        for (name, labels, v) in extra {
            let _ = writeln!(s, "{name}{labels} {v}");
        }
        s
    }
}
