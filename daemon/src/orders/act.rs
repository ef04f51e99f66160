//! What changes an order between batches of readings: a person's action (any worker in
//! cluster mode: the order row is locked and its state checked, so two people acting at once
//! get one success and one "no longer applies") and the deadline clock (at the owner of the
//! order's partition: escalations and reminders).

use super::audit::{append, Entry as AuditEntry};
use super::db::{args, Engine};
use super::kind::OrderEventKind;
use super::model::{Action, ActionError};
use super::rows::{load, open_orders};
use super::sla;
use super::store::{Change, Store, StoreError};
use super::transition::{record, Entry};
use crate::rules::Said;

/// Who acts, and how.
#[derive(Debug, Clone, Copy, Default)]
pub struct Act<'a> {
    /// The person (recorded in the order's event and the audit log).
    pub who: &'a str,
    /// Why, for people.
    pub why: &'a str,
    /// `dispatch`: the person it goes to (must be an enabled person).
    pub to: Option<&'a str>,
    /// A field worker: only orders dispatched to `who`.
    pub own_only: bool,
}

impl Store {
    /// A person's action on order `id` (an operator's, without a dispatch target).
    pub fn act(
        &mut self,
        id: i64,
        action: Action,
        who: &str,
        why: &str,
        now_ms: i64,
    ) -> Result<Change, StoreError> {
        self.act_as(id, action, &Act { who, why, ..Act::default() }, now_ms)
    }

    /// A person's action on order `id`, with its audit row in the same transaction.
    pub fn act_as(
        &mut self,
        id: i64,
        action: Action,
        a: &Act<'_>,
        now_ms: i64,
    ) -> Result<Change, StoreError> {
        self.write(|tx, ctx| {
            let lock = if tx.engine() == Engine::Postgres { " FOR UPDATE" } else { "" };
            let mut order =
                load(tx, &format!("id = ?1{lock}"), args![id])?.ok_or(ActionError::NotFound(id))?;
            if a.own_only && order.assignee.as_deref() != Some(a.who) {
                return Err(ActionError::NotYours(id).into());
            }
            order.state = action.apply(order.state)?;
            if let (Action::Dispatch, Some(to)) = (action, a.to) {
                let known = tx.row("SELECT 1 FROM people WHERE name = ?1 AND disabled = 0", args![to])?;
                if known.is_none() {
                    return Err(ActionError::NoSuchPerson(crate::logsafe::escape(to, 64)).into());
                }
                tx.exec("UPDATE orders SET assignee = ?2 WHERE id = ?1", args![id, to])?;
                order.assignee = Some(to.to_string());
            }
            let (why, why_zh) = match (action, a.to) {
                (Action::Dispatch, Some(to)) if a.why.is_empty() => {
                    (format!("to {to}"), format!("派遣给 {to}"))
                }
                (Action::Dispatch, Some(to)) => {
                    (format!("to {to}: {}", a.why), format!("派遣给 {to}：{}", a.why))
                }
                _ => (a.why.to_string(), a.why.to_string()),
            };
            if action == Action::Resolve {
                super::reraise::resolved(tx, ctx, &order, now_ms)?;
            }
            let kind = OrderEventKind::reached(order.state);
            let entry = Entry {
                kind,
                who: a.who,
                why: &why,
                why_zh: &why_zh,
                evidence: None,
                notify: true,
                at_ms: now_ms,
            };
            let change = record(tx, ctx, &mut order, &entry, now_ms)?;
            // A gateway's offline order closed by a person releases its bands' orders (their
            // changes are recorded; the caller announces this order's).
            super::incidents::after(tx, ctx, &order, kind, now_ms, &mut Vec::new())?;
            let (action, subject) = (format!("order.{}", action.as_str()), format!("order {id}"));
            let audit = AuditEntry { who: a.who, action: &action, subject: &subject, detail: &why };
            append(tx, now_ms, &audit)?;
            Ok(change)
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
                    let s = (now_ms - created) / 1000;
                    Some((
                        OrderEventKind::Reminder,
                        Said::new(format!("not acknowledged after {s} s"), format!("{s} 秒仍未确认接收")),
                    ))
                } else {
                    None
                };
                if let Some((kind, why)) = why {
                    let (why, why_zh) = (&why.en, &why.zh);
                    let entry =
                        Entry { kind, who: "sla", why, why_zh, evidence: None, notify: true, at_ms: now_ms };
                    changes.push(record(tx, ctx, &mut order, &entry, now_ms)?);
                }
            }
            super::reraise::due(tx, ctx, now_ms, &mut changes)?;
            Ok(changes)
        })
    }
}
