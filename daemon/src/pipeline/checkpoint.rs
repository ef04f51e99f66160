//! WAL checkpoints off the commit path.
//!
//! SQLite copies its write-ahead log back into the database file (a checkpoint) by default
//! inside the COMMIT that pushes the log past 1,000 pages: on the pipeline's thread, with a sync
//! of the log and one of the file — a pause of the rules, and of every reading queued behind them,
//! every few MB written. The pipeline's connection turns that off ([`Store::defer_sync`] sets
//! `wal_autocheckpoint = 0`) and this thread checkpoints instead, from a connection of its own,
//! every [`EVERY`]: PASSIVE, so it never waits for the pipeline or for a reader, and never makes
//! them wait.
//!
//! A pass that copies every frame lets the pipeline's next write start the log again from its
//! beginning (the file does not grow). Under sustained writes a pass may never find the log
//! whole — the pipeline appends while it copies — so when the log has grown past
//! [`RESTART_FRAMES`] the thread asks the pipeline to run one PASSIVE pass itself between two
//! commits ([`Checkpointer::wanted`]): nothing is appended during it, the frames before it are
//! mostly copied already (a sync and a few pages), and the next write restarts the log. The same
//! request is made when this thread's own pass fails, so the log stays bounded either way.
//!
//! [`Store::defer_sync`]: crate::orders::Store::defer_sync

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{mpsc, Arc};
use std::time::Duration;

/// How often the thread checkpoints.
pub const EVERY: Duration = Duration::from_millis(100);
/// A log this long (frames of one page, 4 KiB: 64 MiB) that did not restart is checkpointed by
/// the pipeline itself.
pub const RESTART_FRAMES: i64 = 16_384;

/// The checkpoint thread; stops (and is joined) when dropped.
pub struct Checkpointer {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    shared: Arc<Shared>,
}

#[derive(Default)]
struct Shared {
    wanted: AtomicBool,
    passes: AtomicU64,
}

impl Checkpointer {
    /// Starts checkpointing the SQLite database whose write-ahead log is `wal`.
    pub fn start(wal: &Path) -> std::io::Result<Checkpointer> {
        let db = database_of(wal);
        let shared = Arc::new(Shared::default());
        let (stop, stopped) = mpsc::channel::<()>();
        let s = shared.clone();
        let thread = std::thread::Builder::new()
            .name("wal-checkpoint".into())
            .spawn(move || run(&db, &stopped, &s))?;
        Ok(Checkpointer { stop: Some(stop), thread: Some(thread), shared })
    }

    /// Whether the pipeline should run a pass itself now (asked once per request).
    pub fn wanted(&self) -> bool {
        self.shared.wanted.swap(false, Relaxed)
    }

    /// Passes this thread ran (tests).
    #[cfg(test)]
    pub fn passes(&self) -> u64 {
        self.shared.passes.load(Relaxed)
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn database_of(wal: &Path) -> PathBuf {
    let s = wal.as_os_str().to_string_lossy();
    PathBuf::from(s.strip_suffix("-wal").unwrap_or(&s).to_string())
}

fn run(db: &Path, stopped: &mpsc::Receiver<()>, shared: &Shared) {
    let mut conn = None;
    let mut failures = 0u64;
    while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(EVERY) {
        match pass(db, &mut conn) {
            Ok(log) => {
                shared.passes.fetch_add(1, Relaxed);
                if log > RESTART_FRAMES {
                    shared.wanted.store(true, Relaxed);
                }
            }
            Err(e) => {
                conn = None;
                failures += 1;
                shared.wanted.store(true, Relaxed);
                if failures.is_power_of_two() {
                    tracing::warn!(error = %e, failures, "WAL checkpoint failed; the pipeline checkpoints between commits instead");
                }
            }
        }
    }
}

/// One PASSIVE pass; the log's length in frames.
fn pass(db: &Path, conn: &mut Option<rusqlite::Connection>) -> rusqlite::Result<i64> {
    if conn.is_none() {
        *conn = Some(rusqlite::Connection::open_with_flags(
            db,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?);
    }
    let c = conn.as_ref().expect("opened above");
    c.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get::<_, i64>(1))
}
