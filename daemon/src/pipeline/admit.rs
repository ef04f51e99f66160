//! Which readings the pipeline applies: a device that is heard ([`crate::gate`]), a
//! (boot, sequence number) not applied before ([`SeqWindow`]).

use super::Pipeline;
use crate::flow::Inbound;
use gridsentry_sensors::seq::{SeqWindow, Verdict};
use gridsentry_sensors::Body;
use std::sync::atomic::Ordering::Relaxed;

impl Pipeline {
    /// Whether this (boot, sequence number) was applied before ([`SeqWindow`]): a repeat, or
    /// further below the highest than the window reaches. Late arrivals inside the window are
    /// applied and counted (`out_of_order`). Status messages (birth, last will) carry no running
    /// sequence and are always applied.
    pub(super) fn is_duplicate(&mut self, m: &Inbound) -> bool {
        if matches!(m.reading.body, Body::Status(_)) {
            return false;
        }
        let h = &m.reading.header;
        let key = (h.site.clone(), h.device.clone());
        let verdict = match self.seqs.get_mut(&key) {
            Some(w) => w.accept(h.boot_id, h.seq),
            None => {
                self.seqs.insert(key.clone(), SeqWindow::new(h.boot_id, h.seq));
                Verdict::New
            }
        };
        let metrics = &self.out.metrics;
        match verdict {
            Verdict::New => {}
            Verdict::OutOfOrder => {
                metrics.out_of_order.fetch_add(1, Relaxed);
            }
            Verdict::TooOld => {
                metrics.too_old.fetch_add(1, Relaxed);
            }
            Verdict::Repeat => {
                metrics.duplicates.fetch_add(1, Relaxed);
            }
        }
        if verdict.is_fresh() {
            self.dirty_seqs.insert(key);
        }
        !verdict.is_fresh()
    }
}
