//! Pipelined group commit: the pipeline's commits reach the disk on another thread.
//!
//! On SQLite the pipeline commits with `synchronous = NORMAL`: a commit appends its frames to
//! the write-ahead log and returns without waiting for the disk. This stage then makes them
//! durable with one `fdatasync` of the log file, for every commit that arrived while the previous
//! sync was in flight, and only after it returns publishes their order changes, counts them and
//! hands their acks on. The pipeline meanwhile applies the next readings: the disk's latency no
//! longer paces the rules, and a slow flush grows the next group instead of stalling everything.
//!
//! Why it is as durable as a `FULL` commit: SQLite recovers a log up to its last frame whose
//! checksum holds, and on Linux `fdatasync` of any descriptor of the log flushes all of it, so a
//! commit whose sync returned survives a power cut; a SIGKILL loses nothing either way (the
//! frames are in the page cache). Nothing acts on a commit before its sync: no ack, no webhook,
//! no console event, no "applied" count. A failed sync stops the daemon (fail-stop, as a failed
//! commit does) and nothing after it is acked. On PostgreSQL (cluster mode) a commit is durable
//! when it returns, and this stage acts on it at once on the pipeline's own thread.

use super::{Outputs, PipelineError};
use crate::flow::{Inbound, Sink};
use crate::orders::{Change, StoreError};
use crate::watchdog::Progress;
use gridsentry_sensors::Stream;
use std::path::PathBuf;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{mpsc, Arc};
use tokio::sync::watch;

/// What one commit did, acted on once it is durable.
pub struct Committed {
    /// The readings (their acks go on once durable).
    pub inbound: Vec<Inbound>,
    /// The order transitions it recorded.
    pub changes: Vec<Change>,
    /// Readings applied, per stream.
    pub applied: [u64; Stream::COUNT],
}

/// How a commit is made durable.
pub enum Syncer {
    /// It already is (PostgreSQL, or SQLite at `synchronous = FULL`).
    Done,
    /// By syncing this file (the SQLite write-ahead log) before anything acts on it.
    File(PathBuf),
    /// By this function (tests: a disk that fails).
    #[cfg(test)]
    With(Box<dyn FnMut() -> std::io::Result<()> + Send>),
}

impl Syncer {
    fn sync(&mut self, file: &mut Option<std::fs::File>) -> std::io::Result<()> {
        match self {
            Syncer::Done => Ok(()),
            Syncer::File(path) => {
                if file.is_none() {
                    *file = Some(std::fs::File::open(&*path)?);
                    // The log's directory entry too, once: a new file must be found after a cut.
                    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                        std::fs::File::open(dir)?.sync_all()?;
                    }
                }
                file.as_ref().map_or(Ok(()), |f| f.sync_data())
            }
            #[cfg(test)]
            Syncer::With(f) => f(),
        }
    }
}

/// The pipeline's side: hands commits over, learns whether a sync is in flight.
pub struct Durable<'s> {
    tx: Option<mpsc::Sender<Committed>>,
    busy: watch::Receiver<bool>,
    /// Turns true (or closes) when the stage stopped.
    stopped: watch::Receiver<bool>,
    _never: Option<watch::Sender<bool>>,
    thread: Option<std::thread::ScopedJoinHandle<'s, Result<(), PipelineError>>>,
    inline: Option<Acts>,
}

/// What acting on a durable commit needs.
struct Acts {
    out: Outputs,
    sink: Arc<dyn Sink>,
    progress: Arc<Progress>,
}

impl<'s> Durable<'s> {
    /// Starts the stage in `scope` (a thread of its own unless commits are already durable).
    pub fn start<'e>(
        scope: &'s std::thread::Scope<'s, 'e>,
        mut syncer: Syncer,
        out: Outputs,
        sink: Arc<dyn Sink>,
        progress: Arc<Progress>,
    ) -> Result<Durable<'s>, PipelineError> {
        let acts = Acts { out, sink, progress };
        let (flag, busy) = watch::channel(false);
        let (stop, stopped) = watch::channel(false);
        if matches!(syncer, Syncer::Done) {
            return Ok(Durable {
                tx: None,
                busy,
                stopped,
                _never: Some(stop),
                thread: None,
                inline: Some(acts),
            });
        }
        let (tx, rx) = mpsc::channel::<Committed>();
        let thread = std::thread::Builder::new()
            .name("pipeline-sync".into())
            .spawn_scoped(scope, move || {
                let r = sync_loop(&rx, &mut syncer, &flag, &acts);
                let _ = stop.send(true);
                r
            })
            .map_err(|e| PipelineError::Store(StoreError::Io(e)))?;
        Ok(Durable { tx: Some(tx), busy, stopped, _never: None, thread: Some(thread), inline: None })
    }

    /// Resolves when the stage stopped (a failed sync: the pipeline must stop too).
    pub async fn stopped(&mut self) {
        let _ = self.stopped.wait_for(|s| *s).await;
    }

    /// Whether a sync is in flight (the pipeline lingers for more readings only then).
    pub fn busy(&self) -> bool {
        *self.busy.borrow()
    }

    /// Resolves when no sync is in flight (at once if none is, or if the stage stopped).
    pub async fn idle(&mut self) {
        let _ = self.busy.wait_for(|b| !*b).await;
    }

    /// Acts on `c` once it is durable; `Err` when the stage stopped (its error).
    pub fn send(&mut self, c: Committed) -> Result<(), PipelineError> {
        if let Some(acts) = &self.inline {
            return acts.act(c);
        }
        if self.tx.as_ref().is_some_and(|tx| tx.send(c).is_ok()) {
            return Ok(());
        }
        self.finish().and(Err(PipelineError::SinkGone))
    }

    /// Waits until everything handed over is acted on; the stage's error if it stopped.
    pub fn finish(&mut self) -> Result<(), PipelineError> {
        drop(self.tx.take());
        match self.thread.take().map(|t| t.join()) {
            Some(Ok(r)) => r,
            Some(Err(panic)) => std::panic::resume_unwind(panic),
            None => Ok(()),
        }
    }
}

/// Syncs what arrived while the last sync was in flight, then acts on it; until the pipeline
/// hangs up or a sync fails.
fn sync_loop(
    rx: &mpsc::Receiver<Committed>,
    syncer: &mut Syncer,
    busy: &watch::Sender<bool>,
    acts: &Acts,
) -> Result<(), PipelineError> {
    let mut file = None;
    while let Ok(first) = rx.recv() {
        busy.send_replace(true);
        let mut group = vec![first];
        group.extend(rx.try_iter());
        crate::testhook::stall("sync");
        let synced = syncer.sync(&mut file);
        busy.send_replace(false);
        if let Err(e) = synced {
            tracing::error!(error = %e, "the order journal could not be synced to disk; nothing more is acknowledged");
            return Err(PipelineError::Store(StoreError::Io(e)));
        }
        acts.out.metrics.syncs.fetch_add(1, Relaxed);
        for c in group {
            acts.act(c)?;
        }
    }
    Ok(())
}

impl Acts {
    fn act(&self, c: Committed) -> Result<(), PipelineError> {
        // Counted once durable: "applied" means it survives a power cut.
        for (counter, n) in self.out.metrics.readings.iter().zip(c.applied) {
            counter.fetch_add(n, Relaxed);
        }
        super::publish(&self.out, c.changes);
        if c.inbound.is_empty() {
            return Ok(());
        }
        let n = c.inbound.len();
        let sent = self.sink.committed(c.inbound);
        self.progress.leave(n as u64);
        sent.map_err(|_| PipelineError::SinkGone)
    }
}
