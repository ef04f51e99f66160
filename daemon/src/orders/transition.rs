//! Order transitions: what a rule event or a person does to an order, recorded as an appended
//! event, an updated row and (when someone must hear of it) outbox rows, in the caller's
//! transaction.

use super::db::{args, Arg, Tx};
use super::kind::OrderEventKind as K;
use super::model::{Order, State};
use super::rows::load;
use super::store::{Change, Ctx, Receiver, StoreError};
use crate::rules::{Colour, Event, EventKind};

pub(crate) fn on_rule_event(
    tx: &mut dyn Tx,
    ctx: &Ctx<'_>,
    e: &Event,
    evidence: Option<&str>,
    now_ms: i64,
    changes: &mut Vec<Change>,
) -> Result<(), StoreError> {
    let subject = e.subject.to_string();
    let open = load(
        tx,
        "rule = ?1 AND subject = ?2 AND state NOT IN ('resolved', 'closed')",
        args![&*e.rule, subject.as_str()],
    )?;
    let (mut order, kind, why, notify) = match (e.kind, open) {
        (EventKind::Raise { colour, .. }, None) => {
            (insert(tx, e, colour, &subject, ctx.part(), now_ms)?, K::Raised, e.summary.as_str(), !e.late)
        }
        (EventKind::Raise { flapping, .. }, Some(mut order)) => {
            order.active = true;
            if flapping {
                order.summary.clone_from(&e.summary);
            }
            (order, if flapping { K::Flapping } else { K::Reactivated }, e.summary.as_str(), !e.late)
        }
        (EventKind::Confirm, Some(mut order)) => {
            order.late = false;
            restart_deadlines(tx, &mut order, now_ms)?;
            (order, K::Confirmed, e.summary.as_str(), true)
        }
        (EventKind::Escalate { colour, restate }, Some(mut order)) => {
            if colour > order.colour {
                order.colour = colour;
                restart_deadlines(tx, &mut order, now_ms)?;
            }
            if restate {
                order.summary.clone_from(&e.summary);
            }
            order.forecast = e.forecast.or(order.forecast);
            (order, K::Escalated, e.summary.as_str(), !e.late)
        }
        (EventKind::Forecast, Some(mut order)) => {
            order.forecast = e.forecast;
            order.summary.clone_from(&e.summary);
            (order, K::Forecast, e.summary.as_str(), false)
        }
        (EventKind::Clear, Some(mut order)) if order.colour == Colour::Red => {
            order.active = false;
            (
                order,
                K::ConditionCleared,
                "condition cleared; red is latched until a person resolves it",
                !e.late,
            )
        }
        (EventKind::Clear, Some(mut order)) => {
            order.active = false;
            order.state = State::Resolved;
            (order, K::Resolved, e.summary.as_str(), !e.late)
        }
        // Nothing open: a person already resolved it, or it never reached the store.
        (_, None) => return Ok(()),
    };
    let who = format!("rule:{}", e.rule);
    let entry = Entry { kind, who: &who, why, evidence, notify, at_ms: e.at_ms as i64 };
    changes.push(record(tx, ctx.receivers, &mut order, &entry, now_ms)?);
    Ok(())
}

/// The order's deadlines start again at `now_ms` (its colour rose, or it became live): those of
/// its new colour run in full, none counts as missed yet.
fn restart_deadlines(tx: &mut dyn Tx, order: &mut Order, now_ms: i64) -> Result<(), StoreError> {
    order.deadlines_from_ms = now_ms;
    order.missed = 0;
    tx.exec("UPDATE orders SET deadlines_from_ms = ?2, missed = 0 WHERE id = ?1", args![order.id, now_ms])?;
    Ok(())
}

fn insert(
    tx: &mut dyn Tx,
    e: &Event,
    colour: Colour,
    subject: &str,
    part: Option<i64>,
    now_ms: i64,
) -> Result<Order, StoreError> {
    let at = e.at_ms as i64;
    let forecast = e.forecast.map(|f| serde_json::json!(f).to_string());
    let id = tx
        .row(
            "INSERT INTO orders (rule, subject, site, device, colour, state, summary, late, active, opened_ms, created_ms,
             updated_ms, seq, last_notice_ms, forecast, deadlines_from_ms, part)
             VALUES (?1, ?2, ?3, ?4, ?5, 'raised', ?6, ?7, 1, ?8, ?9, ?9, 0, ?9, ?10, ?9, ?11) RETURNING id",
            &[
                Arg::from(&*e.rule),
                Arg::from(subject),
                Arg::from(e.subject.site.as_str()),
                Arg::from(e.subject.device.as_str()),
                Arg::from(colour.as_str()),
                Arg::from(&e.summary),
                Arg::from(e.late),
                Arg::Int(at),
                Arg::Int(now_ms),
                Arg::from(&forecast),
                Arg::OptInt(part),
            ],
        )?
        .ok_or_else(|| StoreError::Corrupt("insert returned no id".into()))?
        .int(0)?;
    load(tx, "id = ?1", args![id])?.ok_or_else(|| StoreError::Corrupt("inserted order vanished".into()))
}

/// One appended order event.
pub(crate) struct Entry<'a> {
    pub(crate) kind: K,
    pub(crate) who: &'a str,
    pub(crate) why: &'a str,
    pub(crate) evidence: Option<&'a str>,
    /// Queue notifications for it.
    pub(crate) notify: bool,
    /// When it happened (event time for rule events).
    pub(crate) at_ms: i64,
}

/// Appends an event, updates the order row and, when `notify`, queues the notification.
/// `now_ms` (wall clock) stamps the bookkeeping that deadlines and reminders are measured on.
pub(crate) fn record(
    tx: &mut dyn Tx,
    receivers: &[Receiver],
    order: &mut Order,
    e: &Entry<'_>,
    now_ms: i64,
) -> Result<Change, StoreError> {
    let Entry { kind, who, why, evidence, notify, at_ms } = *e;
    order.seq += 1;
    order.updated_ms = now_ms;
    tx.exec(
        "INSERT INTO order_events (order_id, seq, at_ms, kind, state, colour, who, why, evidence)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        args![
            order.id,
            order.seq,
            at_ms,
            kind.as_str(),
            order.state.as_str(),
            order.colour.as_str(),
            who,
            why,
            evidence
        ],
    )?;
    let notice = if notify { now_ms } else { -1 };
    let forecast = order.forecast.map(|f| serde_json::json!(f).to_string());
    tx.exec(
        "UPDATE orders SET colour = ?2, state = ?3, late = ?4, active = ?5, updated_ms = ?6, seq = ?7, tier = ?8,
         last_notice_ms = CASE WHEN ?9 >= 0 THEN ?9 ELSE last_notice_ms END, summary = ?10, forecast = ?11
         WHERE id = ?1",
        args![
            order.id,
            order.colour.as_str(),
            order.state.as_str(),
            order.late,
            order.active,
            now_ms,
            order.seq,
            order.tier,
            notice,
            &order.summary,
            &forecast,
        ],
    )?;
    let change = change(order, kind, why, at_ms);
    if notify {
        let payload = super::payload(order, &change, evidence);
        let mut routed = 0;
        for r in route(receivers, order.tier) {
            tx.exec(
                "INSERT INTO outbox (order_id, seq, receiver, payload, next_ms) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT DO NOTHING",
                args![order.id, order.seq, &r.name, payload.as_str(), now_ms],
            )?;
            routed += 1;
        }
        if routed == 0 {
            // `check` refuses such configs; say it loudly if one gets here anyway.
            tracing::error!(
                order = order.id,
                tier = order.tier,
                colour = order.colour.as_str(),
                "no receiver for this order's tier: nobody is notified"
            );
        }
    }
    Ok(change)
}

/// Receivers of the highest configured tier not above `tier`.
fn route(receivers: &[Receiver], tier: i64) -> impl Iterator<Item = &Receiver> {
    let best = receivers.iter().map(|r| r.tier).filter(|&t| t <= tier).max();
    receivers.iter().filter(move |r| Some(r.tier) == best)
}

fn change(order: &Order, kind: K, why: &str, at_ms: i64) -> Change {
    let state = if kind == K::Escalated {
        K::Escalated.as_str().to_string()
    } else {
        order.state.as_str().to_string()
    };
    let summary = if matches!(kind, K::Escalated | K::Reminder) && why != order.summary {
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
        event: kind,
        at: crate::clock::rfc3339(at_ms),
        summary,
        forecast: order.forecast.map(|f| crate::clock::rfc3339(f.failure_ms as i64)),
    }
}
