//! The outbox side of the store: what the notifier delivers, retries, gives up on and replays.

use super::db::{args, Arg, Engine, Row, Tx};
use super::store::{Store, StoreError};

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

/// Which due notifications a claim takes: a rate-limited receiver claims reds first, so that a
/// red behind hundreds of due notifications in a storm is not left for a later round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Which {
    /// Every one.
    All,
    /// Red orders' (the stored payload says `"colour":"red"`).
    Red,
    /// The others.
    NotRed,
    /// The non-red ones of one incident (its digest takes every one that is due).
    Incident(i64),
}

impl Which {
    fn clause(self) -> String {
        match self {
            Which::All => String::new(),
            Which::Red => r#" AND payload LIKE '%"colour":"red"%'"#.into(),
            Which::NotRed => r#" AND payload NOT LIKE '%"colour":"red"%'"#.into(),
            Which::Incident(id) => format!(r#" AND incident = {id} AND payload NOT LIKE '%"colour":"red"%'"#),
        }
    }
}

impl Store {
    /// Pending notifications due at `now_ms`, oldest first.
    pub fn due_outbox(&mut self, now_ms: i64, limit: usize) -> Result<Vec<OutboxRow>, StoreError> {
        self.outbox_where(
            "status = 'pending' AND next_ms <= ?1 ORDER BY id LIMIT ?2",
            args![now_ms, limit as i64],
        )
    }

    /// Pending notifications of one receiver due at `now_ms`, oldest first.
    pub fn due_outbox_for(
        &mut self,
        receiver: &str,
        now_ms: i64,
        limit: usize,
    ) -> Result<Vec<OutboxRow>, StoreError> {
        let clause = "status = 'pending' AND receiver = ?1 AND next_ms <= ?2 ORDER BY id LIMIT ?3";
        self.outbox_where(clause, args![receiver, now_ms, limit as i64])
    }

    /// Pending notifications of `receiver` due at `now_ms`, oldest first, claimed for
    /// `claim_ms`: on PostgreSQL (several workers deliver) they are locked and skipped by the
    /// others (`FOR UPDATE SKIP LOCKED`) and made due again only after the claim; SQLite has one
    /// notifier per receiver and only reads them.
    pub fn claim_due_for(
        &mut self,
        receiver: &str,
        now_ms: i64,
        limit: usize,
        claim_ms: i64,
        which: Which,
    ) -> Result<Vec<OutboxRow>, StoreError> {
        let only = which.clause();
        let claim = |tx: &mut dyn Tx| -> Result<Vec<OutboxRow>, StoreError> {
            let mut rows = match tx.engine() {
                Engine::Sqlite => tx.rows(
                    &format!(
                        "SELECT id, order_id, seq, receiver, payload, attempts, last_error FROM outbox
                         WHERE status = 'pending' AND receiver = ?1 AND next_ms <= ?2{only} ORDER BY id LIMIT ?3"
                    ),
                    args![receiver, now_ms, limit as i64],
                )?,
                Engine::Postgres => tx.rows(
                    &format!(
                        "UPDATE outbox SET next_ms = ?4 WHERE id IN (
                            SELECT id FROM outbox WHERE status = 'pending' AND receiver = ?1 AND next_ms <= ?2{only}
                            ORDER BY id LIMIT ?3 FOR UPDATE SKIP LOCKED)
                         RETURNING id, order_id, seq, receiver, payload, attempts, last_error"
                    ),
                    args![receiver, now_ms, limit as i64, now_ms + claim_ms],
                )?,
            }
            .iter()
            .map(outbox_row)
            .collect::<Result<Vec<_>, _>>()?;
            rows.sort_by_key(|r| r.id);
            Ok(rows)
        };
        match self.engine() {
            // SQLite: one notifier per receiver, a plain read as before.
            Engine::Sqlite => self.read(claim),
            Engine::Postgres => self.write(|tx, _| claim(tx)),
        }
    }

    /// The soonest time a pending notification of `receiver` is due, if any.
    pub fn next_outbox_ms_for(&mut self, receiver: &str) -> Result<Option<i64>, StoreError> {
        let sql = "SELECT MIN(next_ms) FROM outbox WHERE status = 'pending' AND receiver = ?1";
        self.read(|tx| first_int(tx, sql, args![receiver]))
    }

    /// Counts of notifications by status (`pending`, `delivered`, `dead`).
    pub fn outbox_counts(&mut self) -> Result<Vec<(String, i64)>, StoreError> {
        self.read(|tx| pairs(tx, "SELECT status, COUNT(*) FROM outbox GROUP BY status"))
    }

    /// Open orders by colour.
    pub fn open_by_colour(&mut self) -> Result<Vec<(String, i64)>, StoreError> {
        let sql =
            "SELECT colour, COUNT(*) FROM orders WHERE state NOT IN ('resolved', 'closed') GROUP BY colour";
        self.read(|tx| pairs(tx, sql))
    }

    /// Orders by colour and state (all of them: closed ones too, for totals).
    pub fn orders_by_colour_state(&mut self) -> Result<Vec<(String, String, i64)>, StoreError> {
        self.read(|tx| {
            tx.rows("SELECT colour, state, COUNT(*) FROM orders GROUP BY colour, state", &[])?
                .into_iter()
                .map(|r| Ok((r.text(0)?, r.text(1)?, r.int(2)?)))
                .collect()
        })
    }

    /// The soonest time a pending notification is due, if any.
    pub fn next_outbox_ms(&mut self) -> Result<Option<i64>, StoreError> {
        self.read(|tx| first_int(tx, "SELECT MIN(next_ms) FROM outbox WHERE status = 'pending'", &[]))
    }

    /// Dead letters (delivery gave up), oldest first.
    pub fn dead_letters(&mut self) -> Result<Vec<OutboxRow>, StoreError> {
        self.outbox_where("status = 'dead' ORDER BY id LIMIT ?1 OFFSET ?2", args![10_000i64, 0i64])
    }

    /// Marks notifications delivered, in one transaction.
    pub fn delivered(&mut self, ids: &[i64]) -> Result<(), StoreError> {
        if ids.is_empty() {
            return Ok(());
        }
        self.write(|tx, _| {
            for &id in ids {
                tx.exec(
                    "UPDATE outbox SET status = 'delivered', attempts = attempts + 1 WHERE id = ?1",
                    args![id],
                )?;
            }
            Ok(())
        })
    }

    /// Schedules another attempt.
    pub fn retry_at(&mut self, id: i64, next_ms: i64, error: &str) -> Result<(), StoreError> {
        let sql = "UPDATE outbox SET attempts = attempts + 1, next_ms = ?2, last_error = ?3 WHERE id = ?1";
        self.write(|tx, _| tx.exec(sql, args![id, next_ms, error]).map(drop))
    }

    /// Tries again at `next_ms` without spending an attempt (the failure was this machine's own:
    /// no file descriptor, no route, no name service).
    pub fn postpone(&mut self, id: i64, next_ms: i64, error: &str) -> Result<(), StoreError> {
        let sql = "UPDATE outbox SET next_ms = ?2, last_error = ?3 WHERE id = ?1";
        self.write(|tx, _| tx.exec(sql, args![id, next_ms, error]).map(drop))
    }

    /// Makes notifications due at `next_ms` instead, without spending an attempt (an
    /// incident's next digest).
    pub fn postpone_all(&mut self, ids: &[i64], next_ms: i64, why: &str) -> Result<(), StoreError> {
        if ids.is_empty() {
            return Ok(());
        }
        self.write(|tx, _| {
            for &id in ids {
                tx.exec(
                    "UPDATE outbox SET next_ms = ?2, last_error = ?3 WHERE id = ?1",
                    args![id, next_ms, why],
                )?;
            }
            Ok(())
        })
    }

    /// Gives up on a notification (it stays listed and replayable).
    pub fn dead(&mut self, id: i64, error: &str) -> Result<(), StoreError> {
        let sql = "UPDATE outbox SET status = 'dead', attempts = attempts + 1, last_error = ?2 WHERE id = ?1";
        self.write(|tx, _| tx.exec(sql, args![id, error]).map(drop))
    }

    /// Puts a dead letter back in the queue (same payload and idempotency key). False if `id`
    /// is not a dead letter.
    pub fn replay(&mut self, id: i64, now_ms: i64) -> Result<bool, StoreError> {
        let sql = "UPDATE outbox SET status = 'pending', attempts = 0, next_ms = ?2 WHERE id = ?1 AND status = 'dead'";
        self.write(|tx, _| Ok(tx.exec(sql, args![id, now_ms])? == 1))
    }

    /// Adds a copy of a notification for another receiver (fallback), unless one exists.
    pub fn reroute(&mut self, row: &OutboxRow, receiver: &str, now_ms: i64) -> Result<bool, StoreError> {
        let sql = "INSERT INTO outbox (order_id, seq, receiver, payload, next_ms) VALUES (?1, ?2, ?3, ?4, ?5)
                   ON CONFLICT DO NOTHING";
        self.write(|tx, _| {
            Ok(tx.exec(sql, args![row.order_id, row.seq, receiver, row.payload.as_str(), now_ms])? == 1)
        })
    }

    fn outbox_where(&mut self, clause: &str, p: &[Arg<'_>]) -> Result<Vec<OutboxRow>, StoreError> {
        let sql = format!(
            "SELECT id, order_id, seq, receiver, payload, attempts, last_error FROM outbox WHERE {clause}"
        );
        self.read(|tx| tx.rows(&sql, p)?.iter().map(outbox_row).collect())
    }
}

fn outbox_row(r: &Row) -> Result<OutboxRow, StoreError> {
    Ok(OutboxRow {
        id: r.int(0)?,
        order_id: r.int(1)?,
        seq: r.int(2)?,
        receiver: r.text(3)?,
        payload: r.text(4)?,
        attempts: r.int(5)?,
        last_error: r.opt_text(6)?,
    })
}

fn first_int(tx: &mut dyn Tx, sql: &str, p: &[Arg<'_>]) -> Result<Option<i64>, StoreError> {
    tx.row(sql, p)?.map_or(Ok(None), |r| r.opt_int(0))
}

fn pairs(tx: &mut dyn Tx, sql: &str) -> Result<Vec<(String, i64)>, StoreError> {
    tx.rows(sql, &[])?.into_iter().map(|r| Ok((r.text(0)?, r.int(1)?))).collect()
}
