//! The spine: readings → rules → orders, in group commits, acknowledged after they are durable.
//!
//! One thread owns the rule engine and the order store (both synchronous). It takes what has
//! arrived (batches from ingest, one per socket read; [`commit_loop`] decides how many go into
//! one commit), applies every reading to the rules, writes the rule state changes, sequence
//! numbers and order transitions in one SQLite transaction, and hands the batch to the
//! [`durable`] stage, which syncs the journal on its own thread and only then sends the acks back
//! to ingest (or, with a time-series server configured, the batch on to the store stage through a
//! [`crate::flow::Sink`], which acks it once stored). A crash before the sync loses nothing: the broker
//! redelivers, and per-device (boot, sequence) numbers make re-application detectable. If the
//! store cannot commit or sync (disk full, I/O error) the pipeline stops the daemon instead of
//! acking what it could not record: fail-stop, never lose. Which readings get in at all (device
//! gate, sequence window) is [`admit`]; the hourly evidence purge is [`retention`]; the journal
//! is copied back into the database file by [`checkpoint`]'s thread, never inside a commit.

mod admit;
mod checkpoint;
mod commit_loop;
mod durable;
mod retention;

use crate::clock::now_ms;
use crate::devtime;
use crate::flow::Inbound;
use crate::gate::{Gate, Policy};
use crate::metrics::Metrics;
use crate::orders::{Batch, Change, Store, StoreError};
use crate::rules::{Engine, Event};
use gridsentry_sensors::seq::SeqWindow;
use gridsentry_sensors::{codec, Format, Id, Stream};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{broadcast, watch};

/// Batching and timing knobs.
#[derive(Debug, Clone, Copy)]
pub struct Tuning {
    /// Readings per commit above which it takes no more (a batch from ingest is never split).
    pub batch_max: usize,
    /// How long a commit waits for more readings (one sleep; 0: commit what has arrived).
    pub linger: Duration,
    /// Interval of wall-clock checks (no-data, deadlines).
    pub tick: Duration,
}

/// Where the pipeline reports.
#[derive(Clone)]
pub struct Outputs {
    /// Every order transition (demo output, console).
    pub changes: broadcast::Sender<Change>,
    /// Bumped after every commit that queued notifications.
    pub outbox: watch::Sender<u64>,
    /// Counters.
    pub metrics: Arc<Metrics>,
    /// What the console shows of each device.
    pub live: Arc<crate::live::Live>,
    /// The HJ 212 minute and hour windows (`[[hj212]]` boxes), if any.
    pub report: Option<Arc<crate::report::Reporter>>,
}

/// Why the pipeline stopped.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// A commit failed: nothing more is acked.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The stage after the pipeline (the store stage) is gone; committed readings could no
    /// longer be stored.
    #[error("the stage after the pipeline stopped")]
    SinkGone,
}

/// Changes made while running (config reload).
#[derive(Debug, Clone)]
pub enum Control {
    /// New rules and deadlines: rule state of surviving rule ids and open orders are kept.
    Reload {
        /// The new rules.
        rules: Vec<crate::rules::RuleConfig>,
        /// The new deadlines.
        sla: crate::orders::SlaTable,
        /// Receivers (names and tiers) for routing.
        receivers: Vec<crate::orders::Receiver>,
        /// What people call rules and sites.
        names: crate::orders::Names,
    },
}

/// The running pipeline's state.
pub struct Pipeline {
    engine: Engine,
    store: Store,
    seqs: HashMap<(Id, Id), SeqWindow>,
    dirty_seqs: HashSet<(Id, Id)>,
    out: Outputs,
    /// How far ahead of its receive time a device may stamp a reading, ms ([`crate::devtime`]).
    max_skew_ms: u64,
    /// Which devices are heard.
    gate: Gate,
    /// Days evidence is kept (0: for ever), and when it was last purged.
    evidence_days: u64,
    last_purge: Option<Instant>,
    /// Per-device warnings (clock skew), rate-limited.
    quiet: crate::logsafe::Throttle,
}

impl Pipeline {
    /// Restores rule state and sequence numbers from the store.
    pub fn new(mut engine: Engine, mut store: Store, out: Outputs) -> Result<Pipeline, StoreError> {
        for (key, json) in store.rule_states()? {
            if let Err(e) = engine.restore(&key, &json) {
                tracing::warn!(%key, error = %e, "rule state row ignored");
            }
        }
        let seqs: HashMap<(Id, Id), SeqWindow> = store
            .device_seqs()?
            .into_iter()
            .filter_map(|(key, w)| {
                let (site, device) = key.split_once('/')?;
                Some(((Id::new(site).ok()?, Id::new(device).ok()?), w))
            })
            .collect();
        let moved = engine.clamp_future(now_ms());
        if moved > 0 {
            tracing::warn!(
                states = moved,
                "rule clocks ahead of now (a device clock was wrong) pulled back to now"
            );
        }
        let max_skew_ms = devtime::DEFAULT_MAX_SKEW_S * 1000;
        let gate = Gate::new(Policy::default(), seqs.keys().cloned());
        Ok(Pipeline {
            engine,
            store,
            seqs,
            dirty_seqs: HashSet::new(),
            out,
            max_skew_ms,
            gate,
            evidence_days: 0,
            last_purge: None,
            quiet: Default::default(),
        })
    }

    /// Sets how long evidence is kept (`[privacy] evidence_days`; 0: for ever).
    pub fn with_evidence_days(mut self, days: u64) -> Pipeline {
        self.evidence_days = days;
        self
    }

    /// Sets which devices are heard (`[devices]`); devices with stored sequence numbers stay
    /// tracked.
    pub fn with_gate(mut self, policy: Policy) -> Pipeline {
        self.gate = Gate::new(policy, self.seqs.keys().cloned());
        self
    }

    /// Sets how far ahead of its receive time a device may stamp a reading (`[daemon]
    /// max_clock_skew_s`).
    pub fn with_max_skew(mut self, max_skew: Duration) -> Pipeline {
        self.max_skew_ms = max_skew.as_millis() as u64;
        self
    }

    fn control(&mut self, c: Control) {
        match c {
            Control::Reload { rules, sla, receivers, names } => {
                let n = rules.len();
                let (detail, result) = match self.engine.reload(rules) {
                    Ok(()) => {
                        self.store.reconfigure(sla, receivers);
                        self.store.rename(names);
                        tracing::info!("configuration reloaded; rule state and open orders kept");
                        (format!("{n} rules, {} receivers", self.store.receivers().len()), "config.reload")
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "reload refused; the running rules stay");
                        (e.to_string(), "config.reload.refused")
                    }
                };
                let e = crate::orders::AuditEntry {
                    who: "daemon",
                    action: result,
                    subject: "config",
                    detail: &detail,
                };
                if let Err(e) = self.store.audit(e, crate::clock::now_ms() as i64) {
                    tracing::error!(error = %e, "could not record the reload in the audit log");
                }
            }
        }
    }

    /// Applies one batch (and a tick when due) and commits. Returns the order transitions and
    /// the readings applied per stream, to be acted on (with the readings' acks) once the commit
    /// is durable.
    pub fn step(
        &mut self,
        inbound: &mut [Inbound],
        tick: bool,
    ) -> Result<(Vec<Change>, [u64; Stream::COUNT]), StoreError> {
        let mut events: Vec<(Event, Option<String>)> = Vec::new();
        let mut applied = [0u64; Stream::COUNT];
        let mut fresh = Vec::new();
        for m in inbound.iter_mut() {
            let h = &m.reading.header;
            if let Err(why) = self.gate.admit(&h.site, &h.device) {
                m.refused = true;
                let n = self.out.metrics.devices_refused[why as usize].fetch_add(1, Relaxed);
                if n.is_power_of_two() {
                    tracing::warn!(topic = %m.topic, reason = why.as_str(), refused_so_far = n + 1, "reading of a device that is not heard dropped");
                }
                continue;
            }
            let t = devtime::event_time(&m.reading, m.received_ms, self.max_skew_ms);
            (m.event_ms, m.skew) = (t.at_ms, t.skew);
            m.applied_before = self.is_duplicate(m);
            if !m.applied_before {
                if let Some(skew) = t.skew {
                    self.out.metrics.clock_skew[skew as usize].fetch_add(1, Relaxed);
                    let device = format!("{}/{}", h.site, h.device);
                    if let Some(unlogged) =
                        self.quiet.allow(&device, skew.as_str(), std::time::Instant::now())
                    {
                        tracing::warn!(topic = %m.topic, device_time = ?m.reading.header.time, direction = skew.as_str(), unlogged_before = unlogged, "device clock implausible; reading evaluated and stored at its receive time (logged 3 times a minute per device; all counted)");
                    }
                }
                applied[m.reading.body.stream().index()] += 1;
                self.engine.apply_at(&m.reading, t, m.received_ms, &mut fresh);
                if !fresh.is_empty() {
                    let evidence = evidence(m);
                    events.extend(fresh.drain(..).map(|e| (e, evidence.clone())));
                }
            }
        }
        let now = now_ms();
        if tick {
            self.engine.tick(now, &mut fresh);
            events.extend(fresh.drain(..).map(|e| (e, None)));
        }
        self.out.metrics.stale.store(self.engine.stats().stale, Relaxed);
        self.out.metrics.bands_refused.store(self.engine.stats().bands_refused, Relaxed);
        let device_seqs = self
            .dirty_seqs
            .drain()
            .filter_map(|k| self.seqs.get(&k).map(|w| (format!("{}/{}", k.0, k.1), w.clone())))
            .collect();
        // Read from a replayable log (cluster mode): the new position, committed with what it
        // caused.
        let checkpoint = inbound.iter().filter_map(|m| m.ack.position()).max();
        let batch = Batch { events, rule_state: self.engine.take_dirty(), device_seqs, checkpoint };
        let mut changes = self.store.commit(&batch, now as i64)?;
        self.out.live.record(inbound.iter().filter(|m| !m.refused));
        if let Some(r) = &self.out.report {
            r.record(inbound.iter().filter(|m| !m.refused));
        }
        if tick {
            self.purge_evidence(now);
            self.gate.refresh();
            self.out.metrics.devices_tracked.store(self.gate.tracked() as u64, Relaxed);
            changes.extend(self.store.sla_tick(now as i64)?);
        }
        self.out.metrics.batches.fetch_add(1, Relaxed);
        Ok((changes, applied))
    }
}

/// Tells the outbox, the console and the log about committed (and durable) transitions.
fn publish(out: &Outputs, changes: Vec<Change>) {
    if changes.is_empty() {
        return;
    }
    out.metrics.transitions.fetch_add(changes.len() as u64, Relaxed);
    out.outbox.send_modify(|n| *n += 1);
    for c in changes {
        // The summary carries the reading's value (a heart rate: health data) and goes to
        // DEBUG only; INFO logs are kept by journald or a shipper beyond `[privacy]`.
        tracing::info!(order = c.order_id, rule = %c.rule, subject = %c.subject, colour = c.colour.as_str(), state = %c.state, "order transition");
        tracing::debug!(order = c.order_id, "{}", c.summary);
        let _ = out.changes.send(c);
    }
}

/// The reading as the wire contract's JSON, re-encoded from what was decoded (never the bytes
/// received): keys the contract does not know, however large, are not kept or sent on.
fn evidence(m: &Inbound) -> Option<String> {
    codec::encode_vec(Format::Json, &m.reading).ok().and_then(|v| String::from_utf8(v).ok())
}

#[cfg(test)]
mod tests;
