//! What a worker knows of its cluster state, for `/readyz`, `/metrics` and the ownership loop:
//! owned partitions with their progress, NATS, the stream, stalls, counters.

use super::worker;
use std::collections::BTreeMap;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};

/// What the API shows of this worker's cluster state.
#[derive(Debug, Default)]
pub struct Status {
    /// Partitions this worker owns now, with their epoch and lag.
    pub owned: Mutex<BTreeMap<u32, (i64, Arc<worker::Lag>)>>,
    /// Commits refused because another worker had taken the partition.
    pub fenced: std::sync::atomic::AtomicU64,
    /// Partitions taken over from a worker that had stopped heart-beating.
    pub takeovers: std::sync::atomic::AtomicU64,
    /// Stream subjects in partitions no worker reads (P ≥ K: the NATS mapping and
    /// `[cluster] partitions` disagree); their readings wait unapplied.
    pub unread: Mutex<Vec<String>>,
    /// The worker's NATS connection (set once connected).
    pub nats: std::sync::OnceLock<async_nats::Client>,
    /// Owned partitions not progressing with work pending, and why ([`super::stall`]).
    pub stalling: Mutex<BTreeMap<u32, String>>,
    /// The reading stream cannot be found or read (deleted?), if so.
    pub stream_problem: Mutex<Option<String>>,
    /// Partitions let go because they stalled.
    pub released_stalled: std::sync::atomic::AtomicU64,
    /// Misrouted messages and re-created consumers of partitions no longer owned here (the
    /// counters stay monotonic when a partition goes).
    pub misrouted: std::sync::atomic::AtomicU64,
    /// See `misrouted`.
    pub recreated: std::sync::atomic::AtomicU64,
}

impl Status {
    /// Whether the NATS connection is up (it reconnects by itself).
    pub fn nats_connected(&self) -> bool {
        self.nats.get().is_none_or(|c| c.connection_state() == async_nats::connection::State::Connected)
    }

    /// Partition `p` is no longer owned here; its counters are kept.
    pub(super) fn forget(&self, p: u32) {
        if let Some((_, lag)) = self.owned.lock().unwrap_or_else(|e| e.into_inner()).remove(&p) {
            self.misrouted.fetch_add(lag.misrouted.load(Relaxed), Relaxed);
            self.recreated.fetch_add(lag.recreated.load(Relaxed), Relaxed);
        }
    }

    /// What `/metrics` shows of the cluster.
    pub fn figures(&self) -> crate::metrics::ClusterScrape {
        let owned = self.owned.lock().unwrap_or_else(|p| p.into_inner());
        let sum = |f: fn(&worker::Lag) -> u64| owned.values().map(|(_, l)| f(l)).sum::<u64>();
        crate::metrics::ClusterScrape {
            owned: owned.iter().map(|(p, (_, lag))| (*p, lag.behind())).collect(),
            fenced: self.fenced.load(Relaxed),
            takeovers: self.takeovers.load(Relaxed),
            nats_connected: self.nats_connected(),
            misrouted: self.misrouted.load(Relaxed) + sum(|l| l.misrouted.load(Relaxed)),
            recreated: self.recreated.load(Relaxed) + sum(|l| l.recreated.load(Relaxed)),
            stalling: self.stalling.lock().unwrap_or_else(|p| p.into_inner()).len() as u64,
            released_stalled: self.released_stalled.load(Relaxed),
        }
    }

    /// Whether this worker is ready: `Ok` with what it owns, or `Err` with why not.
    pub fn ready(&self) -> Result<String, String> {
        let unread = self.unread.lock().unwrap_or_else(|p| p.into_inner()).len();
        if unread > 0 {
            return Err(format!("readings in partitions no worker reads: nats-server's partition(K, 1) mapping and [cluster] partitions disagree ({unread} subjects)"));
        }
        if !self.nats_connected() {
            return Err("not connected to NATS: the partitions here are not read".into());
        }
        if let Some(why) = self.stream_problem.lock().unwrap_or_else(|p| p.into_inner()).clone() {
            return Err(why);
        }
        let stalling = self.stalling.lock().unwrap_or_else(|p| p.into_inner());
        if !stalling.is_empty() {
            return Err(stalling.values().cloned().collect::<Vec<_>>().join("; "));
        }
        // A worker serves the API and delivers notifications whether it owns partitions or not.
        let owned = self.owned.lock().unwrap_or_else(|p| p.into_inner());
        let list: Vec<String> = owned.iter().map(|(p, (epoch, _))| format!("{p} (epoch {epoch})")).collect();
        Ok(format!("ready; partitions owned: {}", list.join(", ")))
    }
}

impl crate::watchdog::Readiness for Status {
    fn readiness(&self) -> Result<String, String> {
        self.ready()
    }

    fn scrape(&self) -> Option<crate::metrics::ClusterScrape> {
        Some(self.figures())
    }
}
