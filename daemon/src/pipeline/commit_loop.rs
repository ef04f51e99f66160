//! The pipeline thread's loop: wait for readings (or the next tick), group what arrived into one
//! commit, and hand it to the [`durable`](super::durable) stage, which acts on it once the disk has
//! it. Grouping is where latency and CPU are traded: a reading never waits for company while the
//! disk is idle, and what arrives while a sync is in flight joins the next commit.

use super::checkpoint::Checkpointer;
use super::durable::{Committed, Durable, Syncer};
use super::{Control, Pipeline, PipelineError, Tuning};
use crate::flow::{self, Inbound, Sink};
use crate::orders::StoreError;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::mpsc;

impl Pipeline {
    /// Runs on the calling thread until the channel closes; `Err` when a commit or a sync
    /// failed.
    ///
    /// One wake-up per batch: it waits for the first batch (or the next tick), takes whatever
    /// else is already queued (up to `batch_max` readings; while a sync is in flight, lingering
    /// at most `linger` for more), commits once and hands the batch to the [`durable`](super::durable) stage,
    /// which acts on it (acks, webhooks, console) once the disk has it.
    pub fn run(
        mut self,
        rt: tokio::runtime::Handle,
        rx: flow::Receiver<Inbound>,
        control: mpsc::UnboundedReceiver<Control>,
        sink: Arc<dyn Sink>,
        tuning: Tuning,
    ) -> Result<(), PipelineError> {
        let syncer = match self.store.defer_sync()? {
            Some(wal) => Syncer::File(wal),
            None => Syncer::Done,
        };
        self.run_with(rt, rx, control, sink, tuning, syncer)
    }

    pub(super) fn run_with(
        mut self,
        rt: tokio::runtime::Handle,
        mut rx: flow::Receiver<Inbound>,
        mut control: mpsc::UnboundedReceiver<Control>,
        sink: Arc<dyn Sink>,
        tuning: Tuning,
        syncer: Syncer,
    ) -> Result<(), PipelineError> {
        // SQLite's log is checkpointed by a thread of its own, never inside a commit.
        let checkpointer = match &syncer {
            Syncer::File(wal) => {
                Some(Checkpointer::start(wal).map_err(|e| PipelineError::Store(StoreError::Io(e)))?)
            }
            _ => None,
        };
        std::thread::scope(|scope| {
            let out = self.out.clone();
            let mut durable = Durable::start(scope, syncer, out, sink, rx.progress().clone())?;
            let ckpt = checkpointer.as_ref();
            let r = self.commit_loop(&rt, &mut rx, &mut control, tuning, &mut durable, ckpt);
            // Whatever was committed is acted on once durable, even when the loop stopped.
            let finished = durable.finish();
            r.and(finished)
        })
    }

    fn commit_loop(
        &mut self,
        rt: &tokio::runtime::Handle,
        rx: &mut flow::Receiver<Inbound>,
        control: &mut mpsc::UnboundedReceiver<Control>,
        tuning: Tuning,
        durable: &mut Durable<'_>,
        checkpointer: Option<&Checkpointer>,
    ) -> Result<(), PipelineError> {
        let mut next_tick = Instant::now();
        let mut commits = 0u64;
        loop {
            let wait = next_tick.saturating_duration_since(Instant::now());
            let next = rt.block_on(async {
                tokio::select! {
                    biased;
                    () = durable.stopped() => None,
                    r = tokio::time::timeout(wait, rx.recv()) => Some(r),
                }
            });
            let mut inbound = match next {
                // The durable stage stopped (a sync failed): its error.
                None => return durable.finish().and(Err(PipelineError::SinkGone)),
                Some(Ok(None)) => return Ok(()),
                Some(Ok(Some(batch))) => batch,
                Some(Err(_)) => Vec::new(),
            };
            if !inbound.is_empty() {
                if durable.busy() {
                    rt.block_on(join_while_syncing(rx, &mut inbound, tuning.batch_max, durable));
                }
                gather(rx, &mut inbound, tuning, durable.busy());
            }
            let tick = Instant::now() >= next_tick;
            if tick {
                next_tick = Instant::now() + tuning.tick;
            }
            // Reloads sent before these readings arrived apply to them.
            let mut reloaded = false;
            while let Ok(c) = control.try_recv() {
                self.control(c);
                reloaded = true;
            }
            if reloaded {
                // The reload's audit entry is synced like any commit (an empty one carries it).
                durable.send(Committed {
                    inbound: Vec::new(),
                    changes: Vec::new(),
                    applied: Default::default(),
                })?;
            }
            if !inbound.is_empty() {
                crate::testhook::stall("pipeline");
                crate::testhook::before_commit(commits + 1);
            }
            let (changes, applied) = self.step(&mut inbound, tick)?;
            if !inbound.is_empty() {
                commits += 1;
                crate::testhook::slow_commit(inbound.len());
                crate::testhook::after_commit(commits);
            } else if changes.is_empty() {
                continue;
            }
            durable.send(Committed { inbound, changes, applied })?;
            if checkpointer.is_some_and(Checkpointer::wanted) {
                // While the log syncs: a log that kept growing is copied back now, when nothing
                // is appended to it, and the next commit starts it again from its beginning.
                match self.store.checkpoint_pass() {
                    Ok((log, copied)) => tracing::debug!(log, copied, "WAL checkpointed between commits"),
                    Err(e) => tracing::warn!(error = %e, "WAL checkpoint between commits failed"),
                }
            }
        }
    }
}

/// While a sync is in flight, what arrives joins `inbound` (up to `batch_max` readings): it
/// could not be acked before the next sync anyway, and one commit costs less than several
/// (at 2k/s each reading was its own commit). Returns once the sync is done (or the inlet closed).
async fn join_while_syncing(
    rx: &mut flow::Receiver<Inbound>,
    inbound: &mut Vec<Inbound>,
    batch_max: usize,
    durable: &mut Durable<'_>,
) {
    while inbound.len() < batch_max {
        tokio::select! {
            biased;
            () = durable.idle() => return,
            more = rx.recv() => match more {
                Some(more) => inbound.extend(more),
                None => return,
            },
        }
    }
}

/// Adds what is already queued to `inbound`, up to `batch_max` readings. While a sync is in
/// flight (`syncing`) a batch below `batch_max` first lingers: the thread sleeps `linger` once
/// and then takes everything that arrived meanwhile — bigger groups under load, one wake-up per
/// batch; with the disk idle it commits at once (no added latency at low load).
fn gather(rx: &mut flow::Receiver<Inbound>, inbound: &mut Vec<Inbound>, t: Tuning, syncing: bool) {
    if syncing && inbound.len() < t.batch_max && !t.linger.is_zero() {
        std::thread::sleep(t.linger);
    }
    while inbound.len() < t.batch_max {
        match rx.try_recv() {
            Some(more) => inbound.extend(more),
            None => break,
        }
    }
}
