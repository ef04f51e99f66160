//! The `/metrics` exposition: every family with its help text and type, written by
//! `prometheus-client` (OpenMetrics text) from values read at scrape time.
//!
//! Why read at scrape time instead of registering `prometheus-client` counters: the hot path
//! keeps its plain atomics (one relaxed add per reading), and the order store's counts (open
//! orders, outbox) are queried once per scrape. Counter families are named without `_total`;
//! the encoder appends it to the samples, so the series are the `gridsentry_*_total` that
//! dashboards and alert rules query.

use super::{process, Metrics};
use crate::devtime::Skew;
use crate::gate::Refusal;
use gridsentry_sensors::Stream;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;
use std::sync::atomic::Ordering::Relaxed;

/// The exposition's content type (OpenMetrics text, which Prometheus negotiates).
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// What the order store and the watchdog say at scrape time.
#[derive(Debug, Clone, Default)]
pub struct Scrape {
    /// Open orders per colour.
    pub open: Vec<(&'static str, i64)>,
    /// Outbox rows per status.
    pub outbox: Vec<(&'static str, i64)>,
    /// Devices of live roll-outs per state, zeros included.
    pub ota: Vec<(&'static str, i64)>,
    /// Orders per (colour, state), zeros included.
    pub orders: Vec<(&'static str, &'static str, i64)>,
    /// How long the most overdue pending notification has been due, seconds.
    pub outbox_lag_s: i64,
    /// `/readyz` would answer 200.
    pub ready: bool,
    /// Cluster mode: this worker's partitions.
    pub cluster: Option<ClusterScrape>,
}

/// A cluster worker's partitions at scrape time.
#[derive(Debug, Clone, Default)]
pub struct ClusterScrape {
    /// Owned partitions and how many readings each is behind the stream.
    pub owned: Vec<(u32, u64)>,
    /// Commits refused because another worker had taken the partition.
    pub fenced: u64,
    /// Partitions taken from a worker that stopped heart-beating.
    pub takeovers: u64,
    /// Whether the worker's NATS connection is up.
    pub nats_connected: bool,
    /// Messages refused because they sat in a partition their site does not map to.
    pub misrouted: u64,
    /// Consumers re-created because nothing came while the stream held more.
    pub recreated: u64,
    /// Owned partitions not progressing with work pending (half the stall time or more).
    pub stalling: u64,
    /// Partitions let go because they stalled.
    pub released_stalled: u64,
}

type Labels = Vec<(&'static str, String)>;

#[derive(Debug, Clone, Copy)]
enum Value {
    Counter(u64),
    /// A counter in fractions (CPU seconds).
    CounterF(f64),
    Gauge(f64),
}

#[derive(Debug)]
struct Family {
    name: &'static str,
    help: &'static str,
    samples: Vec<(Labels, Value)>,
}

#[derive(Debug)]
struct Families(Vec<Family>);

impl Collector for Families {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        for f in &self.0 {
            let kind = match f.samples.first() {
                Some((_, Value::Gauge(_))) => MetricType::Gauge,
                Some((_, Value::Counter(_) | Value::CounterF(_))) | None => MetricType::Counter,
            };
            let mut family = encoder.encode_descriptor(f.name, f.help, None, kind)?;
            if let [(labels, v)] = f.samples.as_slice() {
                if labels.is_empty() {
                    encode(*v, family)?;
                    continue;
                }
            }
            for (labels, v) in &f.samples {
                encode(*v, family.encode_family(labels)?)?;
            }
        }
        Ok(())
    }
}

fn encode(v: Value, enc: prometheus_client::encoding::MetricEncoder<'_>) -> Result<(), std::fmt::Error> {
    match v {
        Value::Counter(n) => ConstCounter::new(n).encode(enc),
        Value::CounterF(x) => ConstCounter::new(x).encode(enc),
        Value::Gauge(g) => ConstGauge::new(g).encode(enc),
    }
}

fn one(name: &'static str, help: &'static str, v: Value) -> Family {
    Family { name, help, samples: vec![(Vec::new(), v)] }
}

fn by<T>(
    name: &'static str,
    help: &'static str,
    label: &'static str,
    items: impl IntoIterator<Item = (T, Value)>,
) -> Family
where
    T: ToString,
{
    Family {
        name,
        help,
        samples: items.into_iter().map(|(k, v)| (vec![(label, k.to_string())], v)).collect(),
    }
}

/// What a relay's `/metrics` shows.
#[derive(Debug, Clone, Default)]
pub struct RelayScrape {
    /// Readings taken from the broker and field devices.
    pub received: u64,
    /// Readings the stream stored.
    pub published: u64,
    /// Readings the stream already had (dropped by message id).
    pub duplicates: u64,
    /// Failed publish attempts (each retried).
    pub retries: u64,
    /// Readings received and not yet in the stream.
    pub in_flight: u64,
    /// Whether the broker connection is up (`None`: the relay has no `[mqtt]`).
    pub mqtt_connected: Option<bool>,
    /// Whether the NATS connection is up.
    pub nats_connected: bool,
    /// `/readyz` would answer 200.
    pub ready: bool,
}

/// A relay's exposition: its own families, what its ingest counts (malformed and too large
/// messages, field-bus errors), build and process.
pub fn render_relay(m: &Metrics, r: &RelayScrape) -> String {
    use Value::{Counter as C, Gauge as G};
    let gauge = |b: bool| G(if b { 1.0 } else { 0.0 });
    let lock = |mtx: &std::sync::Mutex<std::collections::BTreeMap<String, u64>>| {
        mtx.lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(k, v)| (k.clone(), C(*v)))
            .collect::<Vec<_>>()
    };
    let too_large =
        m.malformed.lock().unwrap_or_else(|p| p.into_inner()).get("too_large").copied().unwrap_or(0);
    let mut f = vec![
        one(
            "gridsentry_relay_received",
            "Readings taken from the broker and the field devices.",
            C(r.received),
        ),
        one("gridsentry_relay_published", "Readings the stream stored (PubAck).", C(r.published)),
        one(
            "gridsentry_relay_duplicates",
            "Readings the stream already had (same message id): dropped there.",
            C(r.duplicates),
        ),
        one(
            "gridsentry_relay_retries",
            "Publish attempts that failed and were retried with the same message id.",
            C(r.retries),
        ),
        one(
            "gridsentry_relay_in_flight",
            "Readings received and not yet in the stream (their MQTT acks held).",
            G(r.in_flight as f64),
        ),
        one(
            "gridsentry_relay_too_large",
            "Messages larger than the broker session's limit, acked and dropped.",
            C(too_large),
        ),
        by(
            "gridsentry_relay_malformed",
            "Messages dropped as malformed, by reason.",
            "reason",
            lock(&m.malformed),
        ),
        by(
            "gridsentry_relay_field_errors",
            "Field-bus failures (Modbus, serial), by reason.",
            "reason",
            lock(&m.field_errors),
        ),
        one(
            "gridsentry_relay_nats_connected",
            "1 while the relay's NATS connection is up.",
            gauge(r.nats_connected),
        ),
        one("gridsentry_relay_ready", "1 while /readyz answers 200.", gauge(r.ready)),
    ];
    if let Some(up) = r.mqtt_connected {
        f.push(one(
            "gridsentry_relay_mqtt_connected",
            "1 while the relay's broker connection is up.",
            gauge(up),
        ));
    }
    f.push(build_info());
    f.extend(process::families().into_iter().map(|(name, help, v)| match v {
        process::Value::Counter(x) => one(name, help, Value::CounterF(x)),
        process::Value::Gauge(x) => one(name, help, G(x)),
    }));
    encode_all(f)
}

fn encode_all(f: Vec<Family>) -> String {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(Families(f)));
    let mut out = String::new();
    // Writing into a String cannot fail.
    let _ = prometheus_client::encoding::text::encode(&mut out, &registry);
    out
}

/// The whole exposition.
pub fn render(m: &Metrics, s: &Scrape) -> String {
    encode_all(families(m, s))
}

fn build_info() -> Family {
    Family {
        name: "gridsentry_build_info",
        help: "The running build: version and commit (value 1).",
        samples: vec![(
            vec![("version", env!("CARGO_PKG_VERSION").into()), ("commit", env!("GRIDSENTRY_COMMIT").into())],
            Value::Gauge(1.0),
        )],
    }
}

fn families(m: &Metrics, s: &Scrape) -> Vec<Family> {
    use Value::{Counter as C, Gauge as G};
    let c = |a: &std::sync::atomic::AtomicU64| C(a.load(Relaxed));
    let g = |a: &std::sync::atomic::AtomicU64| G(a.load(Relaxed) as f64);
    let map = |mtx: &std::sync::Mutex<std::collections::BTreeMap<String, u64>>| {
        mtx.lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(k, v)| (k.clone(), C(*v)))
            .collect::<Vec<_>>()
    };
    let oldest = m.series_oldest_unsent_ms.load(Relaxed);
    let age = if oldest == 0 { 0.0 } else { crate::clock::now_ms().saturating_sub(oldest) as f64 / 1000.0 };
    let mut f = vec![
        build_info(),
        one(
            "gridsentry_ready",
            "1 while /readyz answers 200 (broker connected, no stage stalled).",
            G(f64::from(u8::from(s.ready))),
        ),
        by(
            "gridsentry_readings",
            "Readings applied to the rules, by stream.",
            "stream",
            Stream::ALL.map(|st| (st, c(&m.readings[st.index()]))),
        ),
        by("gridsentry_malformed", "Messages dropped as malformed, by reason.", "reason", map(&m.malformed)),
        by(
            "gridsentry_field_errors",
            "Field-bus failures (Modbus, serial), by reason.",
            "reason",
            map(&m.field_errors),
        ),
        by(
            "gridsentry_clock_skew",
            "Readings whose device time was refused (evaluated at receive time), by direction.",
            "direction",
            Skew::ALL.map(|k| (k.as_str(), c(&m.clock_skew[k as usize]))),
        ),
        by(
            "gridsentry_devices_refused",
            "Readings of devices not heard (unknown, or over max_tracked), by reason.",
            "reason",
            Refusal::ALL.map(|r| (r.as_str(), c(&m.devices_refused[r as usize]))),
        ),
        one(
            "gridsentry_bands_refused",
            "Heart-rate readings of bands beyond a gateway's [devices] max_bands (not applied to heart rules).",
            c(&m.bands_refused),
        ),
        one(
            "gridsentry_devices_tracked",
            "Devices tracked (bounded by [devices] max_tracked).",
            g(&m.devices_tracked),
        ),
        one("gridsentry_modbus_polls", "Successful Modbus polls.", c(&m.modbus_polls)),
        one(
            "gridsentry_duplicates",
            "Readings applied before (redelivered): acked, not applied again.",
            c(&m.duplicates),
        ),
        one(
            "gridsentry_out_of_order",
            "Readings below the device's highest sequence number, not seen before: applied.",
            c(&m.out_of_order),
        ),
        one(
            "gridsentry_seq_too_old",
            "Readings further below the highest than the sequence window: taken as applied.",
            c(&m.too_old),
        ),
        one(
            "gridsentry_stale",
            "Readings older than one already applied for the same rule and subject.",
            c(&m.stale),
        ),
        one("gridsentry_batches", "Group commits of the pipeline.", c(&m.batches)),
        one("gridsentry_journal_syncs", "Syncs of the order journal to disk (each makes every commit since the last one durable).", c(&m.syncs)),
        one("gridsentry_order_transitions", "Order transitions recorded.", c(&m.transitions)),
        one(
            "gridsentry_mqtt_connected",
            "1 while connected to the broker.",
            G(m.mqtt_connected.load(Relaxed) as f64),
        ),
        one("gridsentry_mqtt_connects", "Broker (re)connections.", c(&m.mqtt_connects)),
        one("gridsentry_webhooks_delivered", "Webhook deliveries that succeeded.", c(&m.webhooks_delivered)),
        one(
            "gridsentry_webhooks_failed",
            "Webhook attempts that failed (each is retried).",
            c(&m.webhooks_failed),
        ),
        one("gridsentry_webhooks_dead", "Notifications given up (dead letters).", c(&m.webhooks_dead)),
        one("gridsentry_webhooks_local_errors", "Deliveries not sent because of this machine (file descriptors, route, name service); no attempt spent.", c(&m.webhooks_local_errors)),
        one("gridsentry_webhooks_digested", "Notifications sent inside a digest because their receiver's max_per_minute was reached (red never is).", c(&m.webhooks_digested)),
        one("gridsentry_webhook_digests", "Digest messages sent.", c(&m.webhook_digests)),
        one("gridsentry_webhooks_silenced", "Notifications a silence held: recorded in the outbox as silenced, not sent.", c(&m.webhooks_silenced)),
        one("gridsentry_warning_sends", "Public warning sends delivered (residents' text messages accepted by the provider, broadcasts answered).", c(&m.warning_sends)),
        one("gridsentry_warning_send_failures", "Public warning send attempts that failed (each is retried, then recorded as failed).", c(&m.warning_send_failures)),
        one("gridsentry_hj212_records_sent", "HJ 212 minute and hour records the environmental bureau's platform answered.", c(&m.hj212_sent)),
        one("gridsentry_hj212_unanswered", "HJ 212 records sent without an answer in time (the link reconnects and sends them again).", c(&m.hj212_unanswered)),
        one(
            "gridsentry_series_written_points",
            "Points the time-series server accepted (replays included).",
            c(&m.series_written),
        ),
        one("gridsentry_series_replayed_points", "Points sent from the disk spool.", c(&m.series_replayed)),
        one("gridsentry_series_spilled_points", "Points spilled to disk.", c(&m.series_spilled)),
        one("gridsentry_series_spilled_bytes", "Bytes spilled to disk.", c(&m.series_spilled_bytes)),
        one(
            "gridsentry_series_dropped_points",
            "Points dropped because the spool was full (lost).",
            c(&m.series_dropped),
        ),
        one(
            "gridsentry_series_rejected_points",
            "Points the server refused, or that cannot be written (lost).",
            c(&m.series_rejected),
        ),
        one(
            "gridsentry_series_already_stored",
            "Redelivered readings not written again (stored before).",
            c(&m.series_already_stored),
        ),
        one(
            "gridsentry_series_write_errors",
            "Failed time-series writes (each is retried).",
            c(&m.series_write_errors),
        ),
        one(
            "gridsentry_series_queue_batches",
            "Time-series batches waiting on disk.",
            g(&m.series_queue_batches),
        ),
        one(
            "gridsentry_series_queue_points",
            "Points not yet accepted by the server (disk and memory).",
            g(&m.series_queue_points),
        ),
        one("gridsentry_series_queue_bytes", "Bytes waiting in the spool.", g(&m.series_queue_bytes)),
        one(
            "gridsentry_series_oldest_unsent_age_seconds",
            "Age of the oldest batch not yet accepted (0: none).",
            G(age),
        ),
        by(
            "gridsentry_open_orders",
            "Open orders, by colour.",
            "colour",
            s.open.iter().map(|(k, n)| (*k, G(*n as f64))),
        ),
        by(
            "gridsentry_ota_devices",
            "Devices of active or paused firmware roll-outs, by state (pending: not offered yet).",
            "state",
            s.ota.iter().map(|(k, n)| (*k, G(*n as f64))),
        ),
        by(
            "gridsentry_outbox",
            "Notification rows, by status.",
            "status",
            s.outbox.iter().map(|(k, n)| (*k, G(*n as f64))),
        ),
        Family {
            name: "gridsentry_orders",
            help: "Orders, by colour and state (zeros included).",
            samples: s
                .orders
                .iter()
                .map(|(c, st, n)| (vec![("colour", c.to_string()), ("state", st.to_string())], G(*n as f64)))
                .collect(),
        },
        one(
            "gridsentry_outbox_lag_seconds",
            "How long the most overdue pending notification has been due.",
            G(s.outbox_lag_s as f64),
        ),
    ];
    if let Some(c) = &s.cluster {
        f.push(one(
            "gridsentry_cluster_partitions_owned",
            "Stream partitions this worker owns.",
            G(c.owned.len() as f64),
        ));
        f.push(by(
            "gridsentry_cluster_partition_lag",
            "How far an owned partition is behind the stream: its last stream sequence minus the last one applied (and stored).",
            "partition",
            c.owned.iter().map(|(p, lag)| (*p, G(*lag as f64))),
        ));
        f.push(one(
            "gridsentry_cluster_fenced_commits",
            "Commits refused because another worker had taken the partition (a paused worker's late writes).",
            C(c.fenced),
        ));
        f.push(one(
            "gridsentry_cluster_takeovers",
            "Partitions taken over from a worker that stopped heart-beating.",
            C(c.takeovers),
        ));
        f.push(one(
            "gridsentry_cluster_misrouted",
            "Messages refused because their subject's partition is not their site's (published around the mapping).",
            C(c.misrouted),
        ));
        f.push(one(
            "gridsentry_cluster_consumers_recreated",
            "Partition consumers re-created because nothing came while the stream held more.",
            C(c.recreated),
        ));
        f.push(one(
            "gridsentry_cluster_partitions_stalling",
            "Owned partitions with work pending and no progress for half of stall_s or more.",
            G(c.stalling as f64),
        ));
        f.push(one(
            "gridsentry_cluster_partitions_released_stalled",
            "Partitions this worker let go because they made no progress for stall_s.",
            C(c.released_stalled),
        ));
        f.push(one(
            "gridsentry_cluster_nats_connected",
            "1 while the worker's NATS connection is up.",
            G(if c.nats_connected { 1.0 } else { 0.0 }),
        ));
    }
    f.extend(process::families().into_iter().map(|(name, help, v)| match v {
        process::Value::Counter(x) => one(name, help, Value::CounterF(x)),
        process::Value::Gauge(x) => one(name, help, G(x)),
    }));
    f
}
