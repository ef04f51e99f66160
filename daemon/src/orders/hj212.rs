//! The HJ 212 uplink's queue: every minute and hour record waits here until the bureau's
//! platform answered it (CN=9014), so an outage of the platform or of this gateway's link is
//! made up for afterwards, oldest first ([`crate::report`]).

use super::db::{args, Tx};
use super::store::{Store, StoreError};

/// A record to send.
#[derive(Debug, Clone, PartialEq)]
pub struct Frame {
    pub id: i64,
    /// The box's MN.
    pub mn: String,
    /// `2051` (minute) or `2061` (hour).
    pub cn: String,
    /// `YYYYMMDDhhmmss`, local time, the window's start.
    pub data_time: String,
    /// The request number (`QN`) it is sent under, every time.
    pub qn: String,
    /// What goes between `CP=&&` and `&&`.
    pub cp: String,
    pub attempts: i64,
}

fn frame(r: &super::db::Row) -> Result<Frame, StoreError> {
    Ok(Frame {
        id: r.int(0)?,
        mn: r.text(1)?,
        cn: r.text(2)?,
        data_time: r.text(3)?,
        qn: r.text(4)?,
        cp: r.text(5)?,
        attempts: r.int(6)?,
    })
}

impl Store {
    /// Queues a record (once per MN, command and data time: a window closed twice is kept as
    /// first written).
    pub fn hj212_queue(
        &mut self,
        mn: &str,
        cn: &str,
        data_time: &str,
        qn: &str,
        cp: &str,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        self.write(|tx, _| {
            let n = tx.exec(
                "INSERT INTO hj212_frames (mn, cn, data_time, qn, cp, created_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT DO NOTHING",
                args![mn, cn, data_time, qn, cp, now_ms],
            )?;
            Ok(n == 1)
        })
    }

    /// The oldest records of `mn` not yet answered.
    pub fn hj212_pending(&mut self, mn: &str, limit: i64) -> Result<Vec<Frame>, StoreError> {
        self.read(|tx: &mut dyn Tx| {
            tx.rows(
                "SELECT id, mn, cn, data_time, qn, cp, attempts FROM hj212_frames WHERE mn = ?1 AND status = 'pending'
                 ORDER BY id LIMIT ?2",
                args![mn, limit],
            )?
            .iter()
            .map(frame)
            .collect()
        })
    }

    /// Record `id` was answered (`true`) or sent without an answer.
    pub fn hj212_sent(&mut self, id: i64, answered: bool, now_ms: i64) -> Result<(), StoreError> {
        self.write(|tx, _| {
            match answered {
                true => tx.exec(
                    "UPDATE hj212_frames SET status = 'sent', attempts = attempts + 1, sent_ms = ?2 WHERE id = ?1",
                    args![id, now_ms],
                )?,
                false => tx.exec("UPDATE hj212_frames SET attempts = attempts + 1 WHERE id = ?1", args![id])?,
            };
            Ok(())
        })
    }

    /// Records of `mn` by status (`pending`, `sent`).
    pub fn hj212_counts(&mut self, mn: &str) -> Result<Vec<(String, i64)>, StoreError> {
        self.read(|tx: &mut dyn Tx| {
            tx.rows("SELECT status, COUNT(*) FROM hj212_frames WHERE mn = ?1 GROUP BY status", args![mn])?
                .into_iter()
                .map(|r| Ok((r.text(0)?, r.int(1)?)))
                .collect()
        })
    }
}
