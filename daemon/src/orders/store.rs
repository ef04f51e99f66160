//! The order store: SQLite through rusqlite, one transaction per batch of readings.
//!
//! Several connections share the file (pipeline, API, one per notifier). Write transactions
//! start IMMEDIATE: a deferred one that reads first and then writes fails at once with "database
//! is locked" when another connection committed in between, instead of waiting its turn.

use super::model::{Action, ActionError, Order, OrderEvent, State};
use super::schema;
use super::sla::{self, SlaTable};
use crate::rules::{Colour, Event, EventKind};
use rusqlite::{params, Connection, OptionalExtension, Row, Transaction, TransactionBehavior};
use serde::Serialize;
use std::collections::HashMap;
use std::path::Path;

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite said no (disk full, locked, corrupt, ...).
    #[error("order store: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A person's action does not apply.
    #[error(transparent)]
    Action(#[from] ActionError),
    /// A row holds something this build cannot read.
    #[error("order store: unreadable row: {0}")]
    Corrupt(String),
}

/// A webhook receiver as the store routes to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receiver {
    /// Name (outbox rows refer to it).
    pub name: String,
    /// Escalation tier: 0 first, missed deadlines move an order up.
    pub tier: i64,
}

/// What one group commit writes.
#[derive(Debug, Default)]
pub struct Batch {
    /// Rule events, each with the reading that caused it (JSON) when there was one.
    pub events: Vec<(Event, Option<String>)>,
    /// Changed rule state rows (`Engine::take_dirty`).
    pub rule_state: Vec<(String, String)>,
    /// Last applied `(boot, seq)` per `site/device`.
    pub device_seqs: Vec<(String, u32, u32)>,
}

/// An order transition, as the demo prints it (one JSON object per line).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Change {
    /// Order id.
    pub order_id: i64,
    /// Transition number (idempotency key `{order_id}-{seq}`).
    pub seq: i64,
    /// Rule id.
    pub rule: String,
    /// Site id.
    pub site: String,
    /// Device id.
    pub device: String,
    /// `site/device[/band]`.
    pub subject: String,
    /// Colour after the transition.
    pub colour: Colour,
    /// State after it, or `escalated` for an escalation.
    pub state: String,
    /// What happened (`raised`, `escalated`, `reminder`, `confirmed`, ...).
    pub event: String,
    /// When, RFC 3339 UTC.
    pub at: String,
    /// The order's summary (or, for escalations and reminders, why).
    pub summary: String,
}

/// Order list filter.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Only this state.
    pub state: Option<State>,
    /// Only this colour.
    pub colour: Option<Colour>,
    /// Only this site.
    pub site: Option<String>,
    /// Only open orders (not resolved or closed).
    pub open: bool,
}

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

/// The durable order store.
pub struct Store {
    conn: Connection,
    sla: SlaTable,
    receivers: Vec<Receiver>,
}

const ORDER_COLS: &str = "id, rule, subject, site, device, colour, state, summary, late, active, \
                          opened_ms, updated_ms, seq, tier, missed, last_notice_ms";

impl Store {
    /// Opens (creating if needed) the store at `path`.
    pub fn open(path: &Path, sla: SlaTable, receivers: Vec<Receiver>) -> Result<Store, StoreError> {
        let conn = Connection::open(path)?;
        schema::migrate(&conn)?;
        Ok(Store { conn, sla, receivers })
    }

    /// Replaces deadlines and receivers (config reload); open orders keep their state.
    pub fn reconfigure(&mut self, sla: SlaTable, receivers: Vec<Receiver>) {
        self.sla = sla;
        self.receivers = receivers;
    }

    /// Every persisted rule state row.
    pub fn rule_states(&self) -> Result<Vec<(String, String)>, StoreError> {
        let mut st = self.conn.prepare("SELECT key, state FROM rule_state")?;
        let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Last applied `(boot, seq)` per `site/device`.
    pub fn device_seqs(&self) -> Result<HashMap<String, (u32, u32)>, StoreError> {
        let mut st = self.conn.prepare("SELECT device, boot, seq FROM device_seq")?;
        let rows = st.query_map([], |r| Ok((r.get::<_, String>(0)?, (r.get(1)?, r.get(2)?))))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Writes a batch in one transaction; returns the order transitions it caused.
    pub fn commit(&mut self, batch: &Batch, now_ms: i64) -> Result<Vec<Change>, StoreError> {
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut changes = Vec::new();
        for (event, evidence) in &batch.events {
            on_rule_event(&tx, &self.receivers, event, evidence.as_deref(), now_ms, &mut changes)?;
        }
        {
            let mut put =
                tx.prepare_cached("INSERT OR REPLACE INTO rule_state (key, state) VALUES (?1, ?2)")?;
            for (k, v) in &batch.rule_state {
                put.execute(params![k, v])?;
            }
            let mut seq = tx.prepare_cached(
                "INSERT OR REPLACE INTO device_seq (device, boot, seq) VALUES (?1, ?2, ?3)",
            )?;
            for (d, boot, s) in &batch.device_seqs {
                seq.execute(params![d, boot, s])?;
            }
        }
        tx.commit()?;
        Ok(changes)
    }

    /// A person's action on order `id`.
    pub fn act(
        &mut self,
        id: i64,
        action: Action,
        who: &str,
        why: &str,
        now_ms: i64,
    ) -> Result<Change, StoreError> {
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut order = load(&tx, "id = ?1", params![id])?.ok_or(ActionError::NotFound(id))?;
        order.state = action.apply(order.state)?;
        let kind = order.state.as_str();
        let entry = Entry { kind, who, why, evidence: None, notify: true, at_ms: now_ms };
        let change = record(&tx, &self.receivers, &mut order, &entry, now_ms)?;
        tx.commit()?;
        Ok(change)
    }

    /// Escalates missed deadlines and sends reminders due at `now_ms`.
    pub fn sla_tick(&mut self, now_ms: i64) -> Result<Vec<Change>, StoreError> {
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let open = list(&tx, &Filter { open: true, ..Filter::default() })?;
        let mut changes = Vec::new();
        for mut order in open.into_iter().filter(|o| !o.late) {
            let deadlines = self.sla.get(order.colour);
            let (missed_bits, last_notice, created) = tx.query_row(
                "SELECT missed, last_notice_ms, created_ms FROM orders WHERE id = ?1",
                [order.id],
                |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?, r.get::<_, i64>(2)?)),
            )?;
            // Deadlines run from when the order was raised here (wall clock), not from the
            // device's event time: people could not act before the daemon knew.
            let missed = sla::missed(&deadlines, order.state, created, missed_bits, now_ms);
            let why = if let Some((_, why)) = missed.last() {
                let bits = missed.iter().fold(missed_bits, |b, (bit, _)| b | bit);
                tx.execute("UPDATE orders SET missed = ?1 WHERE id = ?2", params![bits, order.id])?;
                order.tier += 1;
                Some(("escalated", why.clone()))
            } else if sla::remind_due(&deadlines, order.state, last_notice, now_ms) {
                Some(("reminder", format!("not acknowledged after {} s", (now_ms - created) / 1000)))
            } else {
                None
            };
            if let Some((kind, why)) = why {
                let entry =
                    Entry { kind, who: "sla", why: &why, evidence: None, notify: true, at_ms: now_ms };
                changes.push(record(&tx, &self.receivers, &mut order, &entry, now_ms)?);
            }
        }
        tx.commit()?;
        Ok(changes)
    }

    /// Orders matching `filter`, newest first.
    pub fn orders(&self, filter: &Filter) -> Result<Vec<Order>, StoreError> {
        list(&self.conn, filter)
    }

    /// One order with its events.
    pub fn order(&self, id: i64) -> Result<Option<(Order, Vec<OrderEvent>)>, StoreError> {
        let Some(order) = load(&self.conn, "id = ?1", params![id])? else { return Ok(None) };
        let mut st = self.conn.prepare(
            "SELECT seq, at_ms, kind, state, colour, who, why, evidence FROM order_events WHERE order_id = ?1 ORDER BY seq",
        )?;
        let events = st.query_map([id], |r| {
            Ok(OrderEvent {
                seq: r.get(0)?,
                at_ms: r.get(1)?,
                kind: r.get(2)?,
                state: parse_state(r, 3)?,
                colour: parse_colour(r, 4)?,
                who: r.get(5)?,
                why: r.get(6)?,
                evidence: r.get(7)?,
            })
        })?;
        Ok(Some((order, events.collect::<Result<_, _>>()?)))
    }

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

    /// Marks a notification delivered.
    pub fn delivered(&self, id: i64) -> Result<(), StoreError> {
        self.conn
            .execute("UPDATE outbox SET status = 'delivered', attempts = attempts + 1 WHERE id = ?1", [id])?;
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

fn on_rule_event(
    tx: &Transaction<'_>,
    receivers: &[Receiver],
    e: &Event,
    evidence: Option<&str>,
    now_ms: i64,
    changes: &mut Vec<Change>,
) -> Result<(), StoreError> {
    let subject = e.subject.to_string();
    let open = load(
        tx,
        "rule = ?1 AND subject = ?2 AND state NOT IN ('resolved', 'closed')",
        params![&*e.rule, subject],
    )?;
    let (mut order, kind, why, notify) = match (e.kind, open) {
        (EventKind::Raise { colour, .. }, None) => {
            (insert(tx, e, colour, &subject, now_ms)?, "raised", e.summary.as_str(), !e.late)
        }
        (EventKind::Raise { flapping, .. }, Some(mut order)) => {
            order.active = true;
            if flapping {
                order.summary.clone_from(&e.summary);
            }
            (order, if flapping { "flapping" } else { "reactivated" }, e.summary.as_str(), !e.late)
        }
        (EventKind::Confirm, Some(mut order)) => {
            order.late = false;
            (order, "confirmed", e.summary.as_str(), true)
        }
        (EventKind::Escalate { colour }, Some(mut order)) => {
            order.colour = order.colour.max(colour);
            (order, "escalated", e.summary.as_str(), !e.late)
        }
        (EventKind::Clear, Some(mut order)) if order.colour == Colour::Red => {
            order.active = false;
            (
                order,
                "condition_cleared",
                "condition cleared; red is latched until a person resolves it",
                !e.late,
            )
        }
        (EventKind::Clear, Some(mut order)) => {
            order.active = false;
            order.state = State::Resolved;
            (order, "resolved", e.summary.as_str(), !e.late)
        }
        // Nothing open: a person already resolved it, or it never reached the store.
        (_, None) => return Ok(()),
    };
    let who = format!("rule:{}", e.rule);
    let entry = Entry { kind, who: &who, why, evidence, notify, at_ms: e.at_ms as i64 };
    changes.push(record(tx, receivers, &mut order, &entry, now_ms)?);
    Ok(())
}

fn insert(
    tx: &Transaction<'_>,
    e: &Event,
    colour: Colour,
    subject: &str,
    now_ms: i64,
) -> Result<Order, StoreError> {
    let at = e.at_ms as i64;
    tx.execute(
        "INSERT INTO orders (rule, subject, site, device, colour, state, summary, late, active, opened_ms, created_ms,
         updated_ms, seq, last_notice_ms) VALUES (?1, ?2, ?3, ?4, ?5, 'raised', ?6, ?7, 1, ?8, ?9, ?9, 0, ?9)",
        params![&*e.rule, subject, e.subject.site.as_str(), e.subject.device.as_str(), colour.as_str(), e.summary, e.late, at, now_ms],
    )?;
    load(tx, "id = ?1", params![tx.last_insert_rowid()])?
        .ok_or_else(|| StoreError::Corrupt("inserted order vanished".into()))
}

/// One appended order event.
struct Entry<'a> {
    kind: &'a str,
    who: &'a str,
    why: &'a str,
    evidence: Option<&'a str>,
    /// Queue notifications for it.
    notify: bool,
    /// When it happened (event time for rule events).
    at_ms: i64,
}

/// Appends an event, updates the order row and, when `notify`, queues the notification.
/// `now_ms` (wall clock) stamps the bookkeeping that deadlines and reminders are measured on.
fn record(
    tx: &Transaction<'_>,
    receivers: &[Receiver],
    order: &mut Order,
    e: &Entry<'_>,
    now_ms: i64,
) -> Result<Change, StoreError> {
    let Entry { kind, who, why, evidence, notify, at_ms } = *e;
    order.seq += 1;
    order.updated_ms = now_ms;
    tx.execute(
        "INSERT INTO order_events (order_id, seq, at_ms, kind, state, colour, who, why, evidence)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        params![
            order.id,
            order.seq,
            at_ms,
            kind,
            order.state.as_str(),
            order.colour.as_str(),
            who,
            why,
            evidence
        ],
    )?;
    let notice = if notify { now_ms } else { -1 };
    tx.execute(
        "UPDATE orders SET colour = ?2, state = ?3, late = ?4, active = ?5, updated_ms = ?6, seq = ?7, tier = ?8,
         last_notice_ms = CASE WHEN ?9 >= 0 THEN ?9 ELSE last_notice_ms END, summary = ?10 WHERE id = ?1",
        params![
            order.id,
            order.colour.as_str(),
            order.state.as_str(),
            order.late,
            order.active,
            now_ms,
            order.seq,
            order.tier,
            notice,
            order.summary
        ],
    )?;
    let change = change(order, kind, why, at_ms);
    if notify {
        let payload = crate::notify::payload(order, &change, evidence);
        let mut put = tx.prepare_cached(
            "INSERT OR IGNORE INTO outbox (order_id, seq, receiver, payload, next_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
        )?;
        for r in route(receivers, order.tier) {
            put.execute(params![order.id, order.seq, r.name, payload, now_ms])?;
        }
    }
    Ok(change)
}

/// Receivers of the highest configured tier not above `tier`.
fn route(receivers: &[Receiver], tier: i64) -> impl Iterator<Item = &Receiver> {
    let best = receivers.iter().map(|r| r.tier).filter(|&t| t <= tier).max();
    receivers.iter().filter(move |r| Some(r.tier) == best)
}

fn change(order: &Order, kind: &str, why: &str, at_ms: i64) -> Change {
    let state = if kind == "escalated" { "escalated".to_string() } else { order.state.as_str().to_string() };
    let summary = if matches!(kind, "escalated" | "reminder") {
        format!("{}: {why}", order.summary)
    } else {
        order.summary.clone()
    };
    Change {
        order_id: order.id,
        seq: order.seq,
        rule: order.rule.clone(),
        site: order.site.clone(),
        device: order.device.clone(),
        subject: order.subject.clone(),
        colour: order.colour,
        state,
        event: kind.to_string(),
        at: rfc3339(at_ms),
        summary,
    }
}

/// UTC ms as RFC 3339.
pub(crate) fn rfc3339(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms).map_or_else(|_| ms.to_string(), |t| t.to_string())
}

fn load(conn: &Connection, clause: &str, p: impl rusqlite::Params) -> Result<Option<Order>, StoreError> {
    let sql = format!("SELECT {ORDER_COLS} FROM orders WHERE {clause}");
    Ok(conn.query_row(&sql, p, order_from_row).optional()?)
}

fn list(conn: &Connection, f: &Filter) -> Result<Vec<Order>, StoreError> {
    let sql = format!(
        "SELECT {ORDER_COLS} FROM orders WHERE (?1 IS NULL OR state = ?1) AND (?2 IS NULL OR colour = ?2)
         AND (?3 IS NULL OR site = ?3) AND (?4 = 0 OR state NOT IN ('resolved', 'closed')) ORDER BY id DESC LIMIT 1000"
    );
    let mut st = conn.prepare_cached(&sql)?;
    let p = params![f.state.map(State::as_str), f.colour.map(Colour::as_str), f.site, f.open];
    let rows = st.query_map(p, order_from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

fn order_from_row(r: &Row<'_>) -> rusqlite::Result<Order> {
    Ok(Order {
        id: r.get(0)?,
        rule: r.get(1)?,
        subject: r.get(2)?,
        site: r.get(3)?,
        device: r.get(4)?,
        colour: parse_colour(r, 5)?,
        state: parse_state(r, 6)?,
        summary: r.get(7)?,
        late: r.get(8)?,
        active: r.get(9)?,
        opened_ms: r.get(10)?,
        updated_ms: r.get(11)?,
        seq: r.get(12)?,
        tier: r.get(13)?,
    })
}

fn bad(i: usize, what: &str) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, what.to_string().into())
}

fn parse_state(r: &Row<'_>, i: usize) -> rusqlite::Result<State> {
    State::parse(&r.get::<_, String>(i)?).ok_or_else(|| bad(i, "unknown order state"))
}

fn parse_colour(r: &Row<'_>, i: usize) -> rusqlite::Result<Colour> {
    let s: String = r.get(i)?;
    [Colour::Blue, Colour::Yellow, Colour::Orange, Colour::Red]
        .into_iter()
        .find(|c| c.as_str() == s)
        .ok_or_else(|| bad(i, "unknown colour"))
}
