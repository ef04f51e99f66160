//! Which worker owns which partition: PostgreSQL advisory locks, a lease, and epochs.
//!
//! A worker owns partition p while it holds `pg_try_advisory_lock(NAMESPACE, p)` on its own
//! dedicated connection (the server releases the lock when that connection dies: a SIGKILLed
//! worker's partitions are free at once) and the partition row's epoch is the one its take-over
//! set. Every round (a third of the lease) it records itself in `workers`, heartbeats its
//! partitions, and moves towards its fair share, ceil(K / live workers): it takes free partitions
//! and gives back extra ones, one per round, so partitions rebalance when workers join or leave.
//!
//! A worker that is alive to the kernel but not running (SIGSTOP, a long GC-like pause, a
//! network partition to its clients) keeps its lock connection: when a partition's heartbeat
//! has not moved for a whole lease in two rounds, another worker ends that connection
//! (`pg_terminate_backend`) and takes the partition, bumping its epoch. The paused worker's next
//! commit checks the epoch and is refused ([`crate::orders::StoreError::Fenced`]), so nothing is
//! applied twice.

use super::stall;
use super::worker::{self, Recipe, Runner};
use super::ClusterError;
use crate::clock::now_ms;
use async_nats::jetstream;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

/// The advisory lock key space of partitions ("gs").
const NAMESPACE: i32 = 0x6773;

/// How long a partition whose runner failed here is left before this worker takes it again.
const RETAKE_AFTER: Duration = Duration::from_secs(5);

/// The `application_name` of a worker's ownership and partition sessions.
pub(crate) fn session(worker: &str) -> String {
    format!("gridsentry/{worker}")
}

pub use super::status::Status;

/// The ownership loop's state.
pub struct Owner {
    me: String,
    partitions: u32,
    lease: Duration,
    recipe: Recipe,
    js: jetstream::Context,
    rt: tokio::runtime::Handle,
    locks: Option<postgres::Client>,
    store: crate::orders::Store,
    running: BTreeMap<u32, Runner>,
    /// Heartbeats of partitions held by others, as last seen (a take-over needs two sightings).
    stale: HashMap<u32, i64>,
    /// Partitions whose runner failed here, not to be taken again before then.
    cooldown: HashMap<u32, std::time::Instant>,
    status: Arc<Status>,
    /// `[daemon] stall_s`: half of it without progress is red, the whole lets the partition go.
    stall: Duration,
    watches: HashMap<u32, stall::Watch>,
    /// Told when a stalled partition's pipeline cannot be stopped (the process must exit).
    health: Arc<crate::watchdog::Health>,
}

impl Owner {
    /// Connects (blocking: call it on a blocking thread).
    pub fn new(
        cfg: &super::Config,
        recipe: Recipe,
        js: jetstream::Context,
        rt: tokio::runtime::Handle,
        status: Arc<Status>,
        stall: Duration,
        health: Arc<crate::watchdog::Health>,
    ) -> Result<Owner, ClusterError> {
        let me = cfg.worker();
        let store =
            crate::orders::Store::connect_as(&recipe.postgres, &session(&me), recipe.sla, Vec::new())?;
        Ok(Owner {
            me,
            partitions: cfg.partitions,
            lease: Duration::from_millis(cfg.lease_ms),
            recipe,
            js,
            rt,
            locks: None,
            store,
            running: BTreeMap::new(),
            stale: HashMap::new(),
            cooldown: HashMap::new(),
            status,
            stall,
            watches: HashMap::new(),
            health,
        })
    }

    /// Runs rounds until `stop` turns true; then stops every partition and lets go of them.
    pub fn run(mut self, stop: tokio::sync::watch::Receiver<bool>) {
        while !*stop.borrow() {
            if let Err(e) = self.round() {
                tracing::error!(error = %e, "cluster: ownership round failed; letting go of every partition");
                self.release_all();
            }
            std::thread::sleep(self.lease / 3);
        }
        self.release_all();
    }

    fn locks(&mut self) -> Result<&mut postgres::Client, ClusterError> {
        if self.locks.as_ref().is_none_or(postgres::Client::is_closed) {
            // A new connection holds no locks: whatever ran under the old one must stop.
            self.stop_all();
            let mut pg = crate::orders::PgConnect::parse(&self.recipe.postgres)?;
            pg.config.application_name(&session(&self.me));
            self.locks = Some(pg.connect()?);
        }
        Ok(self.locks.as_mut().expect("connected"))
    }

    fn round(&mut self) -> Result<(), ClusterError> {
        let now = now_ms() as i64;
        self.locks()?;
        self.store.worker_seen(&self.me, now, self.lease.as_millis() as i64)?;
        let live = self.live_workers(now)?;
        // Partitions that ended by themselves (fenced, stream or store failure) are given back.
        let ended: Vec<u32> = self.running.iter().filter(|(_, r)| r.ended()).map(|(p, _)| *p).collect();
        for p in ended {
            // Not taken again for a while here (the stream or the store may be down: no epoch
            // churn); another worker may take it meanwhile.
            self.cooldown.insert(p, std::time::Instant::now() + RETAKE_AFTER);
            self.release(p)?;
        }
        self.watch_progress()?;
        let mut lost = Vec::new();
        for (p, r) in &self.running {
            if !self.store.heartbeat(*p, r.epoch, now, r.lag.done())? {
                tracing::warn!(partition = p, "cluster: partition taken over by another worker");
                lost.push(*p);
            }
        }
        for p in lost {
            self.release(p)?;
        }
        let target = self.partitions.div_ceil(live.max(1) as u32) as usize;
        tracing::debug!(live, target, owned = self.running.len(), "cluster: round");
        if self.running.len() > target {
            if let Some(&p) = self.running.keys().next_back() {
                tracing::info!(partition = p, target, "cluster: giving a partition back (rebalance)");
                self.release(p)?;
            }
            return Ok(());
        }
        let offset = self.me.bytes().fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)));
        for i in 0..self.partitions {
            if self.running.len() >= target {
                break;
            }
            let p = (offset.wrapping_add(i)) % self.partitions;
            if self.running.contains_key(&p)
                || self.cooldown.get(&p).is_some_and(|t| std::time::Instant::now() < *t)
            {
                continue;
            }
            let got: bool = self
                .locks()?
                .query_one("SELECT pg_try_advisory_lock($1, $2)", &[&NAMESPACE, &(p as i32)])
                .map_err(crate::orders::StoreError::from)?
                .get(0);
            if got {
                match self.take(p, now) {
                    Ok(()) => {}
                    // This partition's pipeline or consumer could not start (the stream is
                    // unreachable): the others stay, this one waits a while (another worker may
                    // take it meanwhile). The store failing fails the round.
                    Err(e @ (ClusterError::Nats(_) | ClusterError::Pipeline(_))) => {
                        tracing::warn!(partition = p, error = %e, "cluster: partition could not start; retrying later");
                        self.cooldown.insert(p, std::time::Instant::now() + RETAKE_AFTER);
                    }
                    Err(e) => return Err(e),
                }
            } else {
                self.maybe_break(p, now)?;
            }
        }
        Ok(())
    }

    /// Workers seen within the lease whose sessions are still connected: a SIGKILLed worker's
    /// connections are gone at once, so its share is taken at the next round rather than after
    /// its lease (a paused worker keeps its connections and is taken over by the lease).
    fn live_workers(&mut self, now: i64) -> Result<usize, ClusterError> {
        let since = now - self.lease.as_millis() as i64;
        let live: i64 = self
            .locks()?
            .query_one(
                "SELECT COUNT(*) FROM workers w WHERE w.seen_ms > $1 AND EXISTS (SELECT 1 FROM pg_stat_activity a
                 WHERE a.application_name = left('gridsentry/' || w.id, 63))",
                &[&since],
            )
            .map_err(crate::orders::StoreError::from)?
            .get(0);
        Ok(live.max(1) as usize)
    }

    /// Compares each owned partition's progress with the stream's head ([`stall`]): a partition
    /// stalling is reported (`/readyz`) and its consumer re-created; a stalled one is let go
    /// (its lock first, so that another worker can take it at once; then its runner, which
    /// must stop within the stall time or the worker exits for its supervisor to restart it).
    fn watch_progress(&mut self) -> Result<(), ClusterError> {
        let now = std::time::Instant::now();
        let mut stalling = BTreeMap::new();
        let mut stalled = Vec::new();
        for (p, r) in &self.running {
            let (done, head) = (r.lag.done(), r.lag.head.load(Relaxed));
            let w = self.watches.entry(*p).or_insert_with(|| stall::Watch::new(done, now));
            match w.observe(done, head, now, self.stall) {
                stall::Verdict::Fine => {}
                stall::Verdict::Stalling(idle) => {
                    let why = format!("partition {p}: no progress for {:.0} s with the stream {} ahead (consumer re-created)", idle.as_secs_f64(), head - done);
                    if !self.status.stalling.lock().unwrap_or_else(|e| e.into_inner()).contains_key(p) {
                        tracing::warn!(partition = p, reason = %why, "cluster: partition stalling");
                        r.lag.recreate.store(true, Relaxed);
                    }
                    stalling.insert(*p, why);
                }
                stall::Verdict::Stalled(idle) => {
                    tracing::error!(
                        partition = p,
                        idle_s = idle.as_secs(),
                        behind = head - done,
                        "cluster: partition stalled; letting it go to another worker"
                    );
                    stalled.push(*p);
                }
            }
        }
        *self.status.stalling.lock().unwrap_or_else(|e| e.into_inner()) = stalling;
        for p in stalled {
            self.status.released_stalled.fetch_add(1, Relaxed);
            self.cooldown.insert(p, now + RETAKE_AFTER.max(self.stall));
            self.watches.remove(&p);
            self.unlock(p)?;
            if let Some(r) = self.running.remove(&p) {
                self.stop_runner(p, r);
            }
        }
        Ok(())
    }

    /// Stops a partition's runner and says why it ended if it failed; declares the worker
    /// failed if it does not stop within the stall time (a pipeline stuck where nothing can
    /// reach it: the ownership loop must never hang on it).
    fn stop_within(&self, p: u32, r: Runner) -> Option<String> {
        let (tx, rx) = std::sync::mpsc::channel();
        let rt = self.rt.clone();
        let _ = std::thread::Builder::new().name(format!("stop-{p}")).spawn(move || {
            let _ = tx.send(r.stop(&rt));
        });
        match rx.recv_timeout(self.stall) {
            Ok(why) => why,
            Err(_) => {
                self.health.fail(format!("partition {p}'s pipeline did not stop within stall_s"));
                None
            }
        }
    }

    /// Takes partition `p` (its lock is held): bumps the epoch, starts its runner.
    fn take(&mut self, p: u32, now: i64) -> Result<(), ClusterError> {
        tracing::debug!(partition = p, "cluster: lock held; taking the partition");
        let taken = self.store.take_partition(p, &self.me, now)?;
        let epoch = taken.epoch;
        // With a time series, what the last owner committed but had not stored yet is read
        // again: the pipeline knows the readings (duplicates), the store stage writes them.
        let from = match (self.recipe.stores_series, taken.stored) {
            (true, Some(stored)) => stored.min(taken.checkpoint),
            // No owner ever recorded what it stored (the first one died before its first
            // heartbeat): nothing is known to be stored, so everything is read again (found by
            // the SIGKILL test once the take-over became faster than a heartbeat).
            (true, None) => 0,
            (false, _) => taken.checkpoint,
        };
        tracing::debug!(partition = p, epoch, "cluster: epoch bumped; starting its pipeline");
        // Registered first: the worker's ack router finds the partition's progress here.
        let lag = Arc::new(worker::Lag::new(from));
        self.status.owned.lock().unwrap_or_else(|e| e.into_inner()).insert(p, (epoch, lag.clone()));
        let started =
            worker::start(&self.recipe, &session(&self.me), self.js.clone(), self.rt.clone(), p, epoch, lag);
        match started {
            Ok(r) => {
                tracing::info!(
                    partition = p,
                    epoch,
                    from,
                    checkpoint = taken.checkpoint,
                    "cluster: partition taken"
                );
                self.running.insert(p, r);
                self.stale.remove(&p);
                Ok(())
            }
            Err(e) => {
                self.status.owned.lock().unwrap_or_else(|e| e.into_inner()).remove(&p);
                self.unlock(p)?;
                Err(e)
            }
        }
    }

    /// `p` is locked by someone else: if its heartbeat has not moved for a lease in two
    /// rounds, end the silent owner's sessions (its lock connection, and its partitions'
    /// connections, whose open transactions would hold the partition rows) so that the
    /// partition can be taken next round.
    fn maybe_break(&mut self, p: u32, now: i64) -> Result<(), ClusterError> {
        let Some((beat, owner)) = self.store.partition_heartbeat(p)? else { return Ok(()) };
        let silent = now - beat > self.lease.as_millis() as i64;
        match self.stale.insert(p, beat) {
            Some(seen) if seen == beat && silent => {
                let owner = owner.unwrap_or_default();
                tracing::warn!(partition = p, %owner, silent_ms = now - beat, "cluster: owner silent past its lease; taking over");
                let ended = self
                    .locks()?
                    .query(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                         WHERE application_name = $1 AND pid <> pg_backend_pid()",
                        &[&session(&owner)],
                    )
                    .map_err(crate::orders::StoreError::from)?
                    .len();
                tracing::info!(partition = p, %owner, sessions = ended, "cluster: silent owner's sessions ended");
                self.status.takeovers.fetch_add(1, Relaxed);
            }
            _ => {}
        }
        Ok(())
    }

    fn release(&mut self, p: u32) -> Result<(), ClusterError> {
        self.watches.remove(&p);
        if let Some(r) = self.running.remove(&p) {
            self.stop_runner(p, r);
        }
        self.unlock(p)
    }

    /// Stops a partition's runner; a commit it had refused is counted.
    fn stop_runner(&self, p: u32, r: Runner) {
        self.status.forget(p);
        if let Some(why) = self.stop_within(p, r) {
            if why.contains("fenced") {
                self.status.fenced.fetch_add(1, Relaxed);
            }
            tracing::warn!(partition = p, %why, "cluster: partition stopped");
        }
    }

    fn unlock(&mut self, p: u32) -> Result<(), ClusterError> {
        if let Some(c) = self.locks.as_mut().filter(|c| !c.is_closed()) {
            c.execute("SELECT pg_advisory_unlock($1, $2)", &[&NAMESPACE, &(p as i32)])
                .map_err(crate::orders::StoreError::from)?;
        }
        Ok(())
    }

    fn stop_all(&mut self) {
        let running = std::mem::take(&mut self.running);
        for (p, r) in running {
            self.stop_runner(p, r);
        }
    }

    fn release_all(&mut self) {
        self.stop_all();
        // Closing the connection releases every lock it holds.
        self.locks = None;
    }
}
