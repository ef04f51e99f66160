//! A stuck daemon must never look healthy.
//!
//! Every hand-off between stages counts what entered it and what left it ([`Progress`]). The
//! watchdog looks at those counters: a stage with work pending whose "left" count has not moved
//! for half of `stall_s` turns `/readyz` red; after the whole `stall_s` it is declared stalled,
//! logged as an ERROR naming the stage, and [`Health::fatal`] fires, on which `gridsentry run`
//! exits non-zero so that systemd or the container runtime restarts it and the broker redelivers
//! what was never acknowledged. A stage task that ends while the daemon is not shutting down is
//! fatal the same way. Idle stages (nothing pending) are never stalled, however long they wait.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;

/// Items handed to a stage and items it finished.
#[derive(Debug)]
pub struct Progress {
    name: &'static str,
    entered: AtomicU64,
    left: AtomicU64,
}

impl Progress {
    /// A counter for the stage `name`.
    pub fn new(name: &'static str) -> Arc<Progress> {
        Arc::new(Progress { name, entered: AtomicU64::new(0), left: AtomicU64::new(0) })
    }

    /// The stage's name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// `n` items handed to the stage.
    pub fn enter(&self, n: u64) {
        self.entered.fetch_add(n, Relaxed);
    }

    /// `n` items finished.
    pub fn leave(&self, n: u64) {
        self.left.fetch_add(n, Relaxed);
    }

    /// Items finished so far.
    pub fn finished(&self) -> u64 {
        self.left.load(Relaxed)
    }

    /// Items waiting or being worked on.
    pub fn pending(&self) -> u64 {
        // Read `left` first: a concurrent enter+leave can only make this larger, never wrap.
        let left = self.left.load(Relaxed);
        self.entered.load(Relaxed).saturating_sub(left)
    }
}

/// What `/readyz` and the `run` command learn from the watchdog.
#[derive(Debug)]
pub struct Health {
    problem: Mutex<Option<String>>,
    fatal: watch::Sender<Option<String>>,
}

impl Default for Health {
    fn default() -> Self {
        Health { problem: Mutex::new(None), fatal: watch::channel(None).0 }
    }
}

impl Health {
    /// Why the daemon is not ready (a stage stalling or dead), if it is not.
    pub fn problem(&self) -> Option<String> {
        self.problem.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Fires once, with the reason, when the daemon must exit.
    pub fn fatal(&self) -> watch::Receiver<Option<String>> {
        self.fatal.subscribe()
    }

    /// Declares the daemon failed: logs the reason as an ERROR and fires [`Self::fatal`].
    pub fn fail(&self, why: String) {
        if self.fatal.borrow().is_some() {
            return;
        }
        tracing::error!(reason = %why, "daemon failed; exiting so that the supervisor restarts it");
        *self.problem.lock().unwrap_or_else(|p| p.into_inner()) = Some(why.clone());
        self.fatal.send_replace(Some(why));
    }

    /// A stage task ended. Fatal unless the daemon is shutting down.
    pub fn ended(&self, stage: &str, shutting_down: bool, detail: Option<String>) {
        if !shutting_down {
            let why = detail.map_or(String::new(), |d| format!(": {d}"));
            self.fail(format!("stage `{stage}` ended unexpectedly{why}"));
        }
    }

    fn set_stalling(&self, why: Option<String>) {
        if self.fatal.borrow().is_some() {
            return;
        }
        let mut p = self.problem.lock().unwrap_or_else(|p| p.into_inner());
        if why.is_some() && p.is_none() {
            tracing::warn!(reason = why.as_deref().unwrap_or_default(), "a stage is not making progress");
        }
        *p = why;
    }
}

/// What a mode adds to `/readyz` and `/metrics` (a cluster worker: its partitions, NATS, the
/// stream). The API asks it without knowing the mode.
pub trait Readiness: Send + Sync {
    /// `Ok` with what it serves, or `Err` with why it is not ready.
    fn readiness(&self) -> Result<String, String>;
    /// Its figures for `/metrics`.
    fn scrape(&self) -> Option<crate::metrics::ClusterScrape> {
        None
    }
}

/// Watches `stages` until `shutdown` turns true.
pub fn spawn(
    stages: Vec<Arc<Progress>>,
    stall: Duration,
    health: Arc<Health>,
    mut shutdown: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    let period = (stall / 20).clamp(Duration::from_millis(10), Duration::from_secs(1));
    tokio::spawn(async move {
        let mut seen: Vec<(u64, Instant)> = stages.iter().map(|s| (s.finished(), Instant::now())).collect();
        let mut tick = tokio::time::interval(period);
        loop {
            tokio::select! {
                _ = shutdown.wait_for(|s| *s) => return,
                _ = tick.tick() => {}
            }
            let now = Instant::now();
            let mut stalling = None;
            for (stage, (left, since)) in stages.iter().zip(seen.iter_mut()) {
                let finished = stage.finished();
                let pending = stage.pending();
                if pending == 0 || finished != *left {
                    *left = finished;
                    *since = now;
                    continue;
                }
                let idle = now - *since;
                let why = format!(
                    "stage `{}` has made no progress for {:.1} s with {pending} items pending",
                    stage.name(),
                    idle.as_secs_f64()
                );
                if idle >= stall {
                    health.fail(why);
                    return;
                }
                if idle >= stall / 2 {
                    stalling = Some(why);
                }
            }
            health.set_stalling(stalling);
        }
    })
}

/// Reports to `health` when a stage's thread returns (fatal unless shutting down).
pub fn ended_hook(
    stage: &'static str,
    health: &Arc<Health>,
    shutdown: &watch::Receiver<bool>,
) -> impl FnOnce(Option<String>) + Send + 'static {
    let (health, shutdown) = (health.clone(), shutdown.clone());
    move |detail| health.ended(stage, *shutdown.borrow(), detail)
}

/// Watches a stage's task: its end outside a shutdown is fatal. Aborting the returned task
/// aborts the stage's.
pub fn supervise(
    stage: &'static str,
    task: tokio::task::JoinHandle<()>,
    health: &Arc<Health>,
    shutdown: &watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    struct AbortOnDrop(tokio::task::AbortHandle);
    impl Drop for AbortOnDrop {
        fn drop(&mut self) {
            self.0.abort();
        }
    }
    let ended = ended_hook(stage, health, shutdown);
    tokio::spawn(async move {
        let guard = AbortOnDrop(task.abort_handle());
        let r = task.await;
        std::mem::forget(guard);
        ended(r.err().map(|e| e.to_string()));
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn settle() {
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test(start_paused = true)]
    async fn pending_work_without_progress_is_red_at_half_and_fatal_at_stall() {
        let p = Progress::new("pipeline");
        let health = Arc::new(Health::default());
        let (_stop, rx) = watch::channel(false);
        let mut fatal = health.fatal();
        let _w = spawn(vec![p.clone()], Duration::from_secs(30), health.clone(), rx);
        p.enter(5);
        tokio::time::sleep(Duration::from_secs(14)).await;
        settle().await;
        assert_eq!(health.problem(), None, "14 s without progress is not yet a problem");
        tokio::time::sleep(Duration::from_secs(2)).await;
        settle().await;
        assert!(health.problem().is_some_and(|w| w.contains("`pipeline`")), "red from 15 s");
        assert!(fatal.borrow().is_none());
        tokio::time::sleep(Duration::from_secs(15)).await;
        settle().await;
        assert!(fatal.borrow_and_update().as_deref().is_some_and(|w| w.contains("5 items pending")));
    }

    #[tokio::test(start_paused = true)]
    async fn progress_or_idleness_is_never_a_stall() {
        let busy = Progress::new("busy");
        let idle = Progress::new("idle");
        let health = Arc::new(Health::default());
        let (_stop, rx) = watch::channel(false);
        let _w = spawn(vec![busy.clone(), idle.clone()], Duration::from_secs(2), health.clone(), rx);
        for _ in 0..100 {
            busy.enter(10);
            tokio::time::sleep(Duration::from_millis(500)).await;
            busy.leave(10);
        }
        settle().await;
        assert_eq!(health.problem(), None);
        assert!(health.fatal().borrow().is_none());
    }

    #[test]
    fn an_ended_stage_is_fatal_unless_shutting_down() {
        let h = Health::default();
        h.ended("ingest", true, None);
        assert!(h.fatal().borrow().is_none());
        h.ended("ingest", false, Some("boom".into()));
        assert_eq!(h.problem().as_deref(), Some("stage `ingest` ended unexpectedly: boom"));
    }
}
