//! The store stage's loop: batch, write, spill, replay — and hand the acks back.
//!
//! A reading's MQTT ack waits here until its batch is accepted by the server or safely spilled,
//! so nothing the broker forgets is missing from the time series. The loop never makes the rules
//! wait on the server: while a write is out, new readings gather in the next batch, and a batch
//! that fills before the write comes back goes to disk. While anything is on disk, new batches
//! queue behind it there, so the server receives batches in the order they were formed.

use super::marks::{Marked, Marks};
use super::narrow::{self, Refused};
use super::pending::{Batch, Pending};
use super::spool::Spool;
use super::writer::{WriteError, Writer};
use super::Settings;
use crate::flow::{self, Ack, AckSender, Inbound};
use crate::metrics::Metrics;
use crate::watchdog::Progress;
use bytes::Bytes;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// What a write task ends with: the points the server refused, or a failure to retry.
type Written = Result<Vec<Refused>, WriteError>;

enum Flight {
    Fresh(Batch),
    Spooled { number: u64, points: u64 },
}

pub(super) struct Stage<W: Writer> {
    pub writer: Arc<W>,
    pub spool: Spool,
    marks: Marks,
    pub settings: Settings,
    pub acks: AckSender,
    pub metrics: Arc<Metrics>,
    pub next_number: u64,
    /// Readings taken from the pipeline and finished (acked) here, for the watchdog.
    progress: Option<Arc<Progress>>,
    pending: Pending,
    flight: Option<(Flight, JoinHandle<Written>)>,
    retry_at: Option<Instant>,
    backoff: Duration,
    /// Time of the last spool I/O failure: spilling pauses for a while (readings stay unacked).
    spool_failed: Option<Instant>,
}

impl<W: Writer> Stage<W> {
    pub fn new(
        writer: W,
        spool: Spool,
        marks: Marks,
        settings: Settings,
        acks: AckSender,
        metrics: Arc<Metrics>,
    ) -> Self {
        let next_number = spool.last_number().map_or(0, |n| n + 1);
        let backoff = settings.retry_initial;
        Stage {
            writer: Arc::new(writer),
            spool,
            marks,
            settings,
            acks,
            metrics,
            next_number,
            progress: None,
            pending: Pending::default(),
            flight: None,
            retry_at: None,
            backoff,
            spool_failed: None,
        }
    }

    /// Runs until the pipeline closes the channel. What is still pending then is written once
    /// if the server was answering (the last readings before a stop arrive while it stops:
    /// stored now rather than at the next start), and goes to disk if that fails or it was not.
    pub async fn run(mut self, mut rx: flow::Receiver<Inbound>) {
        self.progress = Some(rx.progress().clone());
        if !self.spool.is_empty() {
            tracing::warn!(
                batches = self.spool.len(),
                points = self.spool.points(),
                "time-series batches left on disk by an earlier run; replaying them first"
            );
        }
        let mut open = true;
        while open || self.flight.is_some() {
            // One `now` for both: a deadline that passes between them would otherwise be
            // neither acted on nor waited for (the last readings then sat pending until the
            // next one arrived: a test waited 20 s for 120 of them).
            let now = Instant::now();
            self.advance(open, now);
            self.gauges();
            let accepting = open && (self.pending.points as usize) < self.settings.batch_lines * 4;
            let wake = self.next_wake(now);
            tokio::select! {
                m = rx.recv(), if accepting => match m {
                    Some(batch) => self.add(batch),
                    None => open = false,
                },
                r = async { (&mut self.flight.as_mut().expect("guarded").1).await }, if self.flight.is_some() => {
                    let (flight, _) = self.flight.take().expect("guarded");
                    self.landed(flight, r.unwrap_or_else(|e| Err(WriteError::Retry(e.to_string()))));
                }
                _ = tokio::time::sleep_until(wake) => {}
            }
        }
        if self.pending.points > 0 && self.spool.is_empty() && self.retry_at.is_none() {
            let b = self.form();
            let body = b.body.clone();
            self.launch(Flight::Fresh(b), body);
            if let Some((flight, task)) = self.flight.take() {
                let r = task.await.unwrap_or_else(|e| Err(WriteError::Retry(e.to_string())));
                // A failed write spills the batch (`landed`).
                self.landed(flight, r);
            }
        }
        if self.pending.points > 0 {
            let b = self.form();
            self.spill(b);
        }
        self.gauges();
    }

    /// Adds the pipeline's batch to the pending one; every time that fills (`batch_lines`), it
    /// is written or spilled at once, so no write carries more than `batch_lines` points.
    fn add(&mut self, batch: Vec<Inbound>) {
        // Taken out for the loop (advance() needs `self`, never the tags): no copy per batch.
        let owned = std::mem::take(&mut self.settings.tags);
        let tags: Vec<(&str, &str)> = owned.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let mut stored = Vec::new();
        for m in batch {
            if m.refused {
                stored.push(m.ack);
                continue;
            }
            if m.applied_before && self.marks.has(&m.reading) {
                // Redelivered after the server already took it: ack now, do not write it again.
                self.metrics.series_already_stored.fetch_add(1, Relaxed);
                stored.push(m.ack);
                continue;
            }
            if let Err(error) = self.pending.push(&m, &tags, &mut self.marks) {
                tracing::error!(topic = %m.topic, %error, "reading cannot be written as line protocol; not stored");
                self.metrics.series_rejected.fetch_add(1, Relaxed);
            }
            if self.pending.points as usize >= self.settings.batch_lines {
                self.advance(true, Instant::now());
            }
        }
        drop(tags);
        self.settings.tags = owned;
        if !stored.is_empty() {
            self.ack(stored);
        }
    }

    /// Deletes spooled batches past `[privacy] readings_days` (counted as dropped, logged).
    fn expire(&mut self) {
        let Some(max) = self.settings.readings_max_age else { return };
        let cutoff = crate::clock::now_ms().saturating_sub(max.as_millis() as u64);
        if self.spool.oldest_created_ms().is_none_or(|c| c >= cutoff) {
            return;
        }
        let sending = match &self.flight {
            Some((Flight::Spooled { number, .. }, _)) => Some(*number),
            _ => None,
        };
        match self.spool.expire(cutoff, sending) {
            Ok(gone) => {
                let points: u64 = gone.iter().map(|e| e.points).sum();
                self.metrics.series_dropped.fetch_add(points, Relaxed);
                tracing::warn!(
                    batches = gone.len(),
                    points,
                    "readings waited past [privacy] readings_days for the time-series server: deleted"
                );
            }
            Err(e) => tracing::error!(error = %e, "deleting expired spool batches failed"),
        }
    }

    /// Starts writes and spills whatever the state allows at `now`.
    fn advance(&mut self, open: bool, now: Instant) {
        self.expire();
        let full = self.pending.points as usize >= self.settings.batch_lines;
        let ripe = full || self.pending.since.is_some_and(|s| now >= s + self.settings.linger);
        let spill_ok = self.spool_failed.is_none_or(|t| now >= t + self.settings.retry_max);
        let due = self.retry_at.is_none_or(|t| now >= t);
        if open && self.flight.is_none() && !self.spool.is_empty() && due {
            match self.spool.oldest() {
                Ok(Some((e, body))) => {
                    self.launch(Flight::Spooled { number: e.number, points: e.points }, body.into())
                }
                Ok(None) => {}
                Err(err) => {
                    tracing::error!(error = %err, "reading the time-series spool failed");
                    self.retry_at = Some(now + self.settings.retry_max);
                }
            }
        }
        if open && ripe && self.flight.is_none() && self.spool.is_empty() {
            let b = self.form();
            let body = b.body.clone();
            self.launch(Flight::Fresh(b), body);
        } else if ripe && spill_ok && (full || !self.spool.is_empty()) {
            // Behind a write in flight with a full batch, or behind data already on disk.
            let b = self.form();
            self.spill(b);
        }
    }

    fn form(&mut self) -> Batch {
        let number = self.next_number;
        self.next_number += 1;
        std::mem::take(&mut self.pending).form(number)
    }

    fn launch(&mut self, flight: Flight, body: Bytes) {
        let w = self.writer.clone();
        let task = tokio::spawn(async move { narrow::write(&*w, body).await });
        self.flight = Some((flight, task));
    }

    fn landed(&mut self, flight: Flight, r: Written) {
        let m = &self.metrics;
        match (flight, r) {
            (flight, Ok(refused)) => {
                let n = refused.len() as u64;
                for (i, x) in refused.iter().enumerate().take(3) {
                    let line = String::from_utf8_lossy(&x.line);
                    tracing::error!(n = i + 1, of = n, %line, error = %x.error, "time-series server refused a point; it is not stored");
                }
                m.series_rejected.fetch_add(n, Relaxed);
                match flight {
                    Flight::Fresh(b) => {
                        m.series_written.fetch_add(b.points.saturating_sub(n), Relaxed);
                        self.mark(&b.marks);
                        self.ack(b.acks);
                    }
                    Flight::Spooled { number, points } => {
                        m.series_written.fetch_add(points.saturating_sub(n), Relaxed);
                        m.series_replayed.fetch_add(points.saturating_sub(n), Relaxed);
                        if let Err(e) = self.spool.remove(number) {
                            tracing::error!(error = %e, "removing a replayed batch failed; it will be sent again");
                        }
                        self.backoff = self.settings.retry_initial;
                        if self.spool.is_empty() {
                            tracing::info!("time-series replay complete; writing directly again");
                        }
                    }
                }
            }
            (flight, Err(WriteError::Rejected(e))) => {
                // narrow::write never returns it; kept total: treat as retryable.
                self.landed(flight, Err(WriteError::Retry(e)));
            }
            (flight, Err(WriteError::Retry(e))) => {
                m.series_write_errors.fetch_add(1, Relaxed);
                let jitter = rand::random_range(0.5..1.0);
                self.retry_at = Some(Instant::now() + self.backoff.mul_f64(jitter));
                self.backoff = (self.backoff * 2).min(self.settings.retry_max);
                if let Flight::Fresh(b) = flight {
                    tracing::warn!(error = %e, points = b.points, "time-series write failed; spilling to disk");
                    self.spill(b);
                } else {
                    tracing::warn!(error = %e, "time-series replay failed; retrying later");
                }
            }
        }
    }

    /// Puts a batch on disk and acks it; on an I/O error it stays in memory, unacked.
    fn spill(&mut self, b: Batch) {
        match self.spool.push(b.number, b.created_ms, b.points, &b.body) {
            Ok(dropped) => {
                // The queue gauges first: a reader who sees the spilled counter move sees the
                // batch queued (the outage test reads both).
                self.gauges();
                self.metrics.series_spilled.fetch_add(b.points, Relaxed);
                self.metrics.series_spilled_bytes.fetch_add(b.body.len() as u64, Relaxed);
                for d in dropped {
                    self.metrics.series_dropped.fetch_add(d.points, Relaxed);
                    tracing::error!(
                        points = d.points,
                        formed_ms = d.created_ms,
                        max_mb = self.settings.spool_max_bytes >> 20,
                        "time-series spool full: dropped its oldest batch (these points are lost)"
                    );
                }
                self.spool_failed = None;
                self.mark(&b.marks);
                self.ack(b.acks);
            }
            Err(e) => {
                tracing::error!(error = %e, "spilling to disk failed; readings stay unacknowledged");
                self.spool_failed = Some(Instant::now());
                // Back in front of what is pending now, keeping its acks (the broker holds them).
                let rest = std::mem::take(&mut self.pending);
                let mut body = String::from_utf8_lossy(&b.body).into_owned();
                body.push_str(&rest.body);
                let mut acks = b.acks;
                acks.extend(rest.acks);
                let mut marks = b.marks;
                marks.extend(rest.marks);
                self.pending = Pending {
                    body,
                    points: b.points + rest.points,
                    acks,
                    marks,
                    since: Some(Instant::now()),
                    created_ms: b.created_ms,
                };
            }
        }
    }

    /// Records that a batch is stored or spilled, before its acks go out.
    fn mark(&mut self, marks: &Marked) {
        if let Err(e) = self.marks.record(marks) {
            // Nothing is lost: a redelivery after a crash would only be written again.
            tracing::error!(error = %e, "recording stored readings failed");
        }
    }

    fn ack(&self, acks: Vec<Ack>) {
        if let Some(p) = &self.progress {
            p.leave(acks.len() as u64);
        }
        let _ = self.acks.send(acks);
    }

    /// The next time something may become possible. Called right after [`Self::advance`] with
    /// the same `now`, so a deadline already past is waiting on something else (a write in
    /// flight): not a reason to wake.
    fn next_wake(&self, now: Instant) -> Instant {
        let linger = self.pending.since.map(|s| s + self.settings.linger);
        let spill = self.spool_failed.map(|t| t + self.settings.retry_max);
        let retry = self.retry_at.filter(|_| !self.spool.is_empty());
        let next = [linger, spill, retry].into_iter().flatten().filter(|t| *t > now).min();
        next.unwrap_or(now + Duration::from_secs(3600))
    }

    fn gauges(&self) {
        let m = &self.metrics;
        m.series_queue_batches.store(self.spool.len() as u64, Relaxed);
        m.series_queue_points.store(self.spool.points() + self.pending.points, Relaxed);
        m.series_queue_bytes.store(self.spool.bytes(), Relaxed);
        let flight = match &self.flight {
            Some((Flight::Fresh(b), _)) => Some(b.created_ms),
            _ => None,
        };
        let pending = self.pending.since.map(|_| self.pending.created_ms);
        let oldest = [flight, pending, self.spool.oldest_created_ms()].into_iter().flatten().min();
        m.series_oldest_unsent_ms.store(oldest.unwrap_or(0), Relaxed);
    }
}
