//! Counters and gauges of the running daemon, exposed for Prometheus at `/metrics`.
//!
//! Plain atomics and one small map: the hot path pays one relaxed add per reading. At scrape
//! time [`expose`] reads them (with the order store's counts and the process's own figures)
//! and the `prometheus-client` crate writes the exposition, `# HELP` and `# TYPE` included.

mod expose;
mod process;

pub use expose::{render, render_relay, ClusterScrape, RelayScrape, Scrape, CONTENT_TYPE};

use gridsentry_sensors::Stream;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, AtomicU64};
use std::sync::Mutex;

/// Everything the daemon counts.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Readings applied to the rules, by stream.
    pub readings: [AtomicU64; Stream::COUNT],
    /// Readings whose device time was refused, by [`crate::devtime::Skew`] (`as usize`).
    pub clock_skew: [AtomicU64; 2],
    /// Readings of devices not heard, by [`crate::gate::Refusal`] (`as usize`).
    pub devices_refused: [AtomicU64; 2],
    /// Devices tracked.
    pub devices_tracked: AtomicU64,
    /// Heart-rate readings of bands beyond a gateway's `[devices] max_bands`.
    pub bands_refused: AtomicU64,
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
    /// Syncs of the order journal to disk (one per group of commits that arrived meanwhile).
    pub syncs: AtomicU64,
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
    /// Deliveries not sent because of this machine (no file descriptor, route or name service).
    pub webhooks_local_errors: AtomicU64,
    /// Notifications sent inside a digest (a receiver's rate limit was reached).
    pub webhooks_digested: AtomicU64,
    /// Digest messages sent.
    pub webhook_digests: AtomicU64,
    /// Notifications a silence held (recorded, not sent).
    pub webhooks_silenced: AtomicU64,
    /// Public warning sends delivered (a resident's SMS accepted, the broadcast answered 2xx).
    pub warning_sends: AtomicU64,
    /// Public warning send attempts that failed (retried up to `warn::MAX_ATTEMPTS`).
    pub warning_send_failures: AtomicU64,
    /// HJ 212 records the bureau's platform answered.
    pub hj212_sent: AtomicU64,
    /// HJ 212 records sent without an answer in time (sent again after a reconnect).
    pub hj212_unanswered: AtomicU64,
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
}

/// Adds one to `reason`'s count.
fn bump(map: &Mutex<BTreeMap<String, u64>>, reason: &str) {
    let mut m = map.lock().unwrap_or_else(|p| p.into_inner());
    *m.entry(reason.to_string()).or_default() += 1;
}
