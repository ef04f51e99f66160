//! The pipeline's hourly purge of evidence past `[privacy] evidence_days`
//! ([`crate::orders::Store::purge_evidence`]).

use super::Pipeline;
use std::time::{Duration, Instant};

impl Pipeline {
    /// At most hourly: empties evidence older than `evidence_days`, a batch at a time.
    pub(super) fn purge_evidence(&mut self, now: u64) {
        const EVERY: Duration = Duration::from_secs(3600);
        if self.evidence_days == 0 || self.last_purge.is_some_and(|t| t.elapsed() < EVERY) {
            return;
        }
        self.last_purge = Some(Instant::now());
        let cutoff = now.saturating_sub(self.evidence_days * 86_400_000) as i64;
        let mut total = crate::orders::Purged::default();
        for _ in 0..20 {
            match self.store.purge_evidence(cutoff) {
                Ok(p) => {
                    total.events += p.events;
                    total.notifications += p.notifications;
                    if !p.more() {
                        break;
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, "purging old evidence failed; retrying in an hour");
                    break;
                }
            }
        }
        if total != crate::orders::Purged::default() {
            if let Err(e) = self.store.compact() {
                tracing::warn!(error = %e, "compacting after the purge failed");
            }
            tracing::info!(
                events = total.events,
                notifications = total.notifications,
                days = self.evidence_days,
                "evidence past its retention emptied"
            );
        }
    }
}
