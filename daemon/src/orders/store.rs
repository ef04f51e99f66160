//! The order store: SQLite through rusqlite, one transaction per batch of readings.
//!
//! Several connections share the file (pipeline, API, one per notifier). Write transactions
//! start IMMEDIATE: a deferred one that reads first and then writes fails at once with "database
//! is locked" when another connection committed in between, instead of waiting its turn.

use super::kind::OrderEventKind;
use super::model::{Action, ActionError, Order, OrderEvent, State};
use super::rows::{list, load, open_orders, parse_colour, parse_kind, parse_state};
use super::schema;
use super::sla::{self, SlaTable};
use super::transition::{on_rule_event, record, Entry};
use crate::rules::{Colour, Event};
use gridsentry_sensors::seq::SeqWindow;
use rusqlite::{params, Connection, TransactionBehavior};
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
    /// Changed windows of applied sequence numbers, per `site/device`.
    pub device_seqs: Vec<(String, SeqWindow)>,
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
    /// What happened.
    pub event: OrderEventKind,
    /// When, RFC 3339 UTC.
    pub at: String,
    /// The order's summary (or, for escalations and reminders, why).
    pub summary: String,
    /// Forecast failure time (slope orders), RFC 3339 UTC.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub forecast: Option<String>,
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

/// The durable order store.
pub struct Store {
    pub(super) conn: Connection,
    sla: SlaTable,
    receivers: Vec<Receiver>,
}

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

    /// The window of applied sequence numbers per `site/device`.
    pub fn device_seqs(&self) -> Result<HashMap<String, SeqWindow>, StoreError> {
        let mut st = self.conn.prepare("SELECT device, boot, seq, seen FROM device_seq")?;
        let rows = st.query_map([], |r| {
            let seen: Option<Vec<u8>> = r.get(3)?;
            Ok((r.get::<_, String>(0)?, SeqWindow::from_parts(r.get(1)?, r.get(2)?, seen.as_deref())))
        })?;
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
                "INSERT OR REPLACE INTO device_seq (device, boot, seq, seen) VALUES (?1, ?2, ?3, ?4)",
            )?;
            for (d, w) in &batch.device_seqs {
                let (boot, highest, seen) = w.parts();
                seq.execute(params![d, boot, highest, &seen[..]])?;
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
        let kind = OrderEventKind::reached(order.state);
        let entry = Entry { kind, who, why, evidence: None, notify: true, at_ms: now_ms };
        let change = record(&tx, &self.receivers, &mut order, &entry, now_ms)?;
        tx.commit()?;
        Ok(change)
    }

    /// Escalates missed deadlines and sends reminders due at `now_ms`.
    pub fn sla_tick(&mut self, now_ms: i64) -> Result<Vec<Change>, StoreError> {
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let open = open_orders(&tx)?;
        let mut changes = Vec::new();
        for mut order in open.into_iter().filter(|o| !o.late) {
            let deadlines = self.sla.get(order.colour);
            let last_notice =
                tx.query_row("SELECT last_notice_ms FROM orders WHERE id = ?1", [order.id], |r| {
                    r.get::<_, i64>(0)
                })?;
            let (missed_bits, created) = (order.missed, order.created_ms);
            // Deadlines run from when the order was raised here or took its colour (wall clock),
            // not from the device's event time: people could not act before the daemon knew.
            let from = order.deadlines_from_ms;
            let missed = sla::missed(&deadlines, order.state, from, missed_bits, now_ms);
            let why = if let Some((_, why)) = missed.last() {
                let bits = missed.iter().fold(missed_bits, |b, (bit, _)| b | bit);
                tx.execute("UPDATE orders SET missed = ?1 WHERE id = ?2", params![bits, order.id])?;
                order.tier += 1;
                Some((OrderEventKind::Escalated, why.clone()))
            } else if sla::remind_due(&deadlines, order.state, last_notice, now_ms) {
                Some((
                    OrderEventKind::Reminder,
                    format!("not acknowledged after {} s", (now_ms - created) / 1000),
                ))
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
        let mut orders = list(&self.conn, filter)?;
        for o in &mut orders {
            self.set_due(o);
        }
        Ok(orders)
    }

    fn set_due(&self, o: &mut Order) {
        o.due = sla::due(&self.sla.get(o.colour), o.state, o.deadlines_from_ms, o.missed);
    }

    /// One order with its events.
    pub fn order(&self, id: i64) -> Result<Option<(Order, Vec<OrderEvent>)>, StoreError> {
        let Some(mut order) = load(&self.conn, "id = ?1", params![id])? else { return Ok(None) };
        self.set_due(&mut order);
        let mut st = self.conn.prepare(
            "SELECT seq, at_ms, kind, state, colour, who, why, evidence FROM order_events WHERE order_id = ?1 ORDER BY seq",
        )?;
        let events = st.query_map([id], |r| {
            Ok(OrderEvent {
                seq: r.get(0)?,
                at_ms: r.get(1)?,
                kind: parse_kind(r, 2)?,
                state: parse_state(r, 3)?,
                colour: parse_colour(r, 4)?,
                who: r.get(5)?,
                why: r.get(6)?,
                evidence: r.get(7)?,
            })
        })?;
        Ok(Some((order, events.collect::<Result<_, _>>()?)))
    }
}
