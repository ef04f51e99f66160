//! When an owned partition counts as stalled: the stream holds messages of the partition beyond
//! what is done (its head is ahead) and "done" has not moved. Half of `[daemon] stall_s` turns
//! the worker's `/readyz` red naming the partition and re-creates its consumer; the whole of it
//! lets the partition go, so that another worker takes it. A partition with nothing pending is
//! never stalled, however long it waits. Pure: the owner feeds it positions and the time.

use std::time::{Duration, Instant};

/// What a partition's progress says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Progressing, or nothing to do.
    Fine,
    /// No progress for at least half the stall time, with work pending: how long.
    Stalling(Duration),
    /// No progress for the whole stall time: let it go.
    Stalled(Duration),
}

/// One partition's last progress.
#[derive(Debug, Clone, Copy)]
pub struct Watch {
    done: u64,
    since: Instant,
}

impl Watch {
    /// A partition taken at `now`, done up to `done`.
    pub fn new(done: u64, now: Instant) -> Watch {
        Watch { done, since: now }
    }

    /// The partition is done up to `done` and the stream's head for it is `head`, at `now`.
    pub fn observe(&mut self, done: u64, head: u64, now: Instant, stall: Duration) -> Verdict {
        if done != self.done || head <= done {
            (self.done, self.since) = (done, now);
            return Verdict::Fine;
        }
        let idle = now.saturating_duration_since(self.since);
        if idle >= stall {
            Verdict::Stalled(idle)
        } else if idle >= stall / 2 {
            Verdict::Stalling(idle)
        } else {
            Verdict::Fine
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pending_work_without_progress_is_stalling_at_half_and_stalled_at_the_whole() {
        let t0 = Instant::now();
        let s = |secs: u64| t0 + Duration::from_secs(secs);
        let stall = Duration::from_secs(10);
        let mut w = Watch::new(100, t0);
        assert_eq!(w.observe(100, 150, s(4), stall), Verdict::Fine);
        assert_eq!(w.observe(100, 150, s(5), stall), Verdict::Stalling(Duration::from_secs(5)));
        assert_eq!(w.observe(100, 160, s(10), stall), Verdict::Stalled(Duration::from_secs(10)));
        // Progress starts the clock again.
        assert_eq!(w.observe(101, 160, s(11), stall), Verdict::Fine);
        assert_eq!(w.observe(101, 160, s(16), stall), Verdict::Stalling(Duration::from_secs(5)));
    }

    #[test]
    fn nothing_pending_is_never_a_stall() {
        let t0 = Instant::now();
        let mut w = Watch::new(100, t0);
        for secs in [5, 50, 500] {
            assert_eq!(
                w.observe(100, 100, t0 + Duration::from_secs(secs), Duration::from_secs(10)),
                Verdict::Fine
            );
        }
        // Work arriving after a long idle time is not stalled at once.
        assert_eq!(
            w.observe(100, 120, t0 + Duration::from_secs(501), Duration::from_secs(10)),
            Verdict::Fine
        );
    }
}
