//! How long the store keeps the readings behind orders (`[privacy] evidence_days`).
//!
//! Why: evidence is the reading that caused a transition. For wristband orders that is health
//! data of a named person (PIPL): kept while an order is worked and reviewed, not for ever. The
//! purge empties the evidence of events older than the limit and strips it from notifications
//! already delivered or given up; orders, their events (who, when, why) and the summaries stay.
//! Pending notifications keep theirs until they are sent. It runs in small batches (a few
//! thousand rows) so a first purge of a large store never holds the database for long.

use super::audit::{append, Entry};
use super::db::{args, Engine};
use super::store::{Store, StoreError};

/// Rows changed by one purge.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Purged {
    /// Order events whose evidence was emptied.
    pub events: usize,
    /// Notifications whose payload lost its evidence.
    pub notifications: usize,
}

const BATCH: usize = 5000;

impl Purged {
    /// A batch was full: more may be left, call again.
    pub fn more(&self) -> bool {
        self.events >= BATCH || self.notifications >= BATCH
    }
}

impl Store {
    /// Empties evidence recorded before `cutoff_ms` (UTC ms): at most a batch of each kind per
    /// call; call again while it returns a full batch.
    pub fn purge_evidence(&mut self, cutoff_ms: i64) -> Result<Purged, StoreError> {
        let batch = BATCH as i64;
        self.write(|tx, _| {
            let events = tx.exec(
                "UPDATE order_events SET evidence = NULL WHERE (order_id, seq) IN (
                    SELECT order_id, seq FROM order_events WHERE evidence IS NOT NULL AND at_ms < ?1 LIMIT ?2)",
                args![cutoff_ms, batch],
            )? as usize;
            // The payload is JSON text in both engines; each has its own JSON functions.
            let sql = match tx.engine() {
                Engine::Sqlite => {
                    "UPDATE outbox SET payload = json_set(payload, '$.evidence', json('null')) WHERE id IN (
                        SELECT o.id FROM outbox o JOIN order_events e ON e.order_id = o.order_id AND e.seq = o.seq
                        WHERE o.status != 'pending' AND e.at_ms < ?1
                          AND json_type(o.payload, '$.evidence') NOT IN ('null') LIMIT ?2)"
                }
                Engine::Postgres => {
                    "UPDATE outbox SET payload = jsonb_set(payload::jsonb, '{evidence}', 'null'::jsonb)::text WHERE id IN (
                        SELECT o.id FROM outbox o JOIN order_events e ON e.order_id = o.order_id AND e.seq = o.seq
                        WHERE o.status != 'pending' AND e.at_ms < ?1
                          AND jsonb_typeof(o.payload::jsonb -> 'evidence') <> 'null' LIMIT ?2)"
                }
            };
            let notifications = tx.exec(sql, args![cutoff_ms, batch])? as usize;
            if events + notifications > 0 {
                let before = jiff::Timestamp::from_millisecond(cutoff_ms).map(|t| t.to_string()).unwrap_or_default();
                let subject = format!("evidence before {before}");
                let detail = format!("{events} order events, {notifications} notifications");
                let e = Entry { who: "daemon", action: "retention.purge", subject: &subject, detail: &detail };
                append(tx, crate::clock::now_ms() as i64, &e)?;
            }
            Ok(Purged { events, notifications })
        })
    }

    /// After a purge: on SQLite, frees the pages it emptied and checkpoints the journal into
    /// the file, truncating it, so purged values are left neither in free pages nor in old
    /// journal frames (secure_delete zeroes what is deleted). PostgreSQL's autovacuum does its
    /// part there.
    pub fn compact(&mut self) -> Result<(), StoreError> {
        if self.engine() == Engine::Sqlite {
            self.read(|tx| {
                tx.rows("PRAGMA incremental_vacuum", &[])?;
                tx.rows("PRAGMA wal_checkpoint(TRUNCATE)", &[])?;
                Ok(())
            })?;
        }
        Ok(())
    }
}
