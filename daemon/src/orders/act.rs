//! What changes an order between batches of readings: a person's action (any worker in
//! cluster mode: the order row is locked and its state checked, so two people acting at once
//! get one success and one "no longer applies") and the deadline clock (at the owner of the
//! order's partition: escalations and reminders).

use super::db::{args, Engine};
use super::kind::OrderEventKind;
use super::model::{Action, ActionError};
use super::rows::{load, open_orders};
use super::sla;
use super::store::{Change, Store, StoreError};
use super::transition::{record, Entry};

impl Store {
    /// A person's action on order `id`.
    pub fn act(
        &mut self,
        id: i64,
        action: Action,
        who: &str,
        why: &str,
        now_ms: i64,
    ) -> Result<Change, StoreError> {
        self.write(|tx, ctx| {
            let lock = if tx.engine() == Engine::Postgres { " FOR UPDATE" } else { "" };
            let mut order =
                load(tx, &format!("id = ?1{lock}"), args![id])?.ok_or(ActionError::NotFound(id))?;
            order.state = action.apply(order.state)?;
            let kind = OrderEventKind::reached(order.state);
            let entry = Entry { kind, who, why, evidence: None, notify: true, at_ms: now_ms };
            record(tx, ctx.receivers, &mut order, &entry, now_ms)
        })
    }

    /// Escalates missed deadlines and sends reminders due at `now_ms`.
    pub fn sla_tick(&mut self, now_ms: i64) -> Result<Vec<Change>, StoreError> {
        self.write(|tx, ctx| {
            let open = open_orders(tx, ctx.part())?;
            let mut changes = Vec::new();
            for mut order in open.into_iter().filter(|o| !o.late) {
                let deadlines = ctx.sla.get(order.colour);
                let last_notice = tx
                    .row("SELECT last_notice_ms FROM orders WHERE id = ?1", args![order.id])?
                    .ok_or_else(|| StoreError::Corrupt("open order vanished".into()))?
                    .int(0)?;
                let (missed_bits, created) = (order.missed, order.created_ms);
                // Deadlines run from when the order was raised here or took its colour (wall
                // clock), not from the device's event time: people could not act before the
                // daemon knew.
                let from = order.deadlines_from_ms;
                let missed = sla::missed(&deadlines, order.state, from, missed_bits, now_ms);
                let why = if let Some((_, why)) = missed.last() {
                    let bits = missed.iter().fold(missed_bits, |b, (bit, _)| b | bit);
                    tx.exec("UPDATE orders SET missed = ?1 WHERE id = ?2", args![bits, order.id])?;
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
                    changes.push(record(tx, ctx.receivers, &mut order, &entry, now_ms)?);
                }
            }
            Ok(changes)
        })
    }
}
