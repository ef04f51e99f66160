//! The outbox side of the store: what the notifier delivers, retries, gives up on and replays.

use super::store::{Store, StoreError};
use rusqlite::params;

/// A notification waiting to be delivered.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxRow {
    /// Row id.
    pub id: i64,
    /// Order id.
    pub order_id: i64,
    /// Transition number.
    pub seq: i64,
    /// Receiver name.
    pub receiver: String,
    /// JSON body (generic format).
    pub payload: String,
    /// Delivery attempts so far.
    pub attempts: i64,
    /// Last error, for dead letters.
    pub last_error: Option<String>,
}

impl Store {
    /// Pending notifications due at `now_ms`, oldest first.
    pub fn due_outbox(&self, now_ms: i64, limit: usize) -> Result<Vec<OutboxRow>, StoreError> {
        self.outbox_where(
            "status = 'pending' AND next_ms <= ?1 ORDER BY id LIMIT ?2",
            params![now_ms, limit as i64],
        )
    }

    /// Pending notifications of one receiver due at `now_ms`, oldest first.
    pub fn due_outbox_for(
        &self,
        receiver: &str,
        now_ms: i64,
        limit: usize,
    ) -> Result<Vec<OutboxRow>, StoreError> {
        let clause = "status = 'pending' AND receiver = ?1 AND next_ms <= ?2 ORDER BY id LIMIT ?3";
        self.outbox_where(clause, params![receiver, now_ms, limit as i64])
    }

    /// The soonest time a pending notification of `receiver` is due, if any.
    pub fn next_outbox_ms_for(&self, receiver: &str) -> Result<Option<i64>, StoreError> {
        let sql = "SELECT MIN(next_ms) FROM outbox WHERE status = 'pending' AND receiver = ?1";
        Ok(self.conn.query_row(sql, [receiver], |r| r.get(0))?)
    }

    /// Counts of notifications by status (`pending`, `delivered`, `dead`).
    pub fn outbox_counts(&self) -> Result<Vec<(String, i64)>, StoreError> {
        let mut st = self.conn.prepare_cached("SELECT status, COUNT(*) FROM outbox GROUP BY status")?;
        let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Open orders by colour.
    pub fn open_by_colour(&self) -> Result<Vec<(String, i64)>, StoreError> {
        let sql =
            "SELECT colour, COUNT(*) FROM orders WHERE state NOT IN ('resolved', 'closed') GROUP BY colour";
        let mut st = self.conn.prepare_cached(sql)?;
        let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Orders by colour and state (all of them: closed ones too, for totals).
    pub fn orders_by_colour_state(&self) -> Result<Vec<(String, String, i64)>, StoreError> {
        let mut st =
            self.conn.prepare_cached("SELECT colour, state, COUNT(*) FROM orders GROUP BY colour, state")?;
        let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The soonest time a pending notification is due, if any.
    pub fn next_outbox_ms(&self) -> Result<Option<i64>, StoreError> {
        Ok(self
            .conn
            .query_row("SELECT MIN(next_ms) FROM outbox WHERE status = 'pending'", [], |r| r.get(0))?)
    }

    /// Dead letters (delivery gave up), oldest first.
    pub fn dead_letters(&self) -> Result<Vec<OutboxRow>, StoreError> {
        self.outbox_where("status = 'dead' ORDER BY id LIMIT ?1 OFFSET ?2", params![10_000, 0])
    }

    /// Marks notifications delivered, in one transaction.
    pub fn delivered(&mut self, ids: &[i64]) -> Result<(), StoreError> {
        if ids.is_empty() {
            return Ok(());
        }
        let tx = self.conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        {
            let mut mark = tx.prepare_cached(
                "UPDATE outbox SET status = 'delivered', attempts = attempts + 1 WHERE id = ?1",
            )?;
            for id in ids {
                mark.execute([id])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Schedules another attempt.
    pub fn retry_at(&self, id: i64, next_ms: i64, error: &str) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE outbox SET attempts = attempts + 1, next_ms = ?2, last_error = ?3 WHERE id = ?1",
            params![id, next_ms, error],
        )?;
        Ok(())
    }

    /// Gives up on a notification (it stays listed and replayable).
    pub fn dead(&self, id: i64, error: &str) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE outbox SET status = 'dead', attempts = attempts + 1, last_error = ?2 WHERE id = ?1",
            params![id, error],
        )?;
        Ok(())
    }

    /// Puts a dead letter back in the queue (same payload and idempotency key). False if `id`
    /// is not a dead letter.
    pub fn replay(&self, id: i64, now_ms: i64) -> Result<bool, StoreError> {
        let n = self.conn.execute(
            "UPDATE outbox SET status = 'pending', attempts = 0, next_ms = ?2 WHERE id = ?1 AND status = 'dead'",
            params![id, now_ms],
        )?;
        Ok(n == 1)
    }

    /// Adds a copy of a notification for another receiver (fallback), unless one exists.
    pub fn reroute(&self, row: &OutboxRow, receiver: &str, now_ms: i64) -> Result<bool, StoreError> {
        let n = self.conn.execute(
            "INSERT OR IGNORE INTO outbox (order_id, seq, receiver, payload, next_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![row.order_id, row.seq, receiver, row.payload, now_ms],
        )?;
        Ok(n == 1)
    }

    fn outbox_where(&self, clause: &str, p: impl rusqlite::Params) -> Result<Vec<OutboxRow>, StoreError> {
        let sql = format!(
            "SELECT id, order_id, seq, receiver, payload, attempts, last_error FROM outbox WHERE {clause}"
        );
        let mut st = self.conn.prepare_cached(&sql)?;
        let rows = st.query_map(p, |r| {
            Ok(OutboxRow {
                id: r.get(0)?,
                order_id: r.get(1)?,
                seq: r.get(2)?,
                receiver: r.get(3)?,
                payload: r.get(4)?,
                attempts: r.get(5)?,
                last_error: r.get(6)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}
