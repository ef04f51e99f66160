//! Order transitions: what a rule event or a person does to an order, recorded as an appended
//! event, an updated row and (when someone must hear of it) outbox rows, in the caller's
//! transaction.

use super::db::{args, Arg, Tx};
use super::kind::OrderEventKind as K;
use super::model::{Order, State};
use super::names::Names;
use super::rows::load;
use super::store::{Change, Ctx, Receiver, StoreError};
use crate::rules::{Colour, Event, EventKind, Said};

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
            let new = NewOrder {
                rule: &e.rule,
                subject: &subject,
                site: e.subject.site.as_str(),
                device: e.subject.device.as_str(),
                colour,
                summary: &e.summary,
                late: e.late,
                opened_ms: e.at_ms as i64,
                forecast: e.forecast,
                part: ctx.part(),
                reraised_from: None,
            };
            let mut order = insert(tx, &new, now_ms)?;
            super::incidents::on_new(tx, ctx, &mut order, now_ms)?;
            (order, K::Raised, e.summary.clone(), !e.late)
        }
        (EventKind::Raise { flapping, .. }, Some(mut order)) => {
            order.active = true;
            if flapping {
                set_summary(&mut order, &e.summary);
            }
            (order, if flapping { K::Flapping } else { K::Reactivated }, e.summary.clone(), !e.late)
        }
        (EventKind::Confirm, Some(mut order)) => {
            order.late = false;
            restart_deadlines(tx, &mut order, now_ms)?;
            (order, K::Confirmed, e.summary.clone(), true)
        }
        (EventKind::Escalate { colour, restate }, Some(mut order)) => {
            if colour > order.colour {
                order.colour = colour;
                restart_deadlines(tx, &mut order, now_ms)?;
            }
            if restate {
                set_summary(&mut order, &e.summary);
            }
            order.forecast = e.forecast.or(order.forecast);
            (order, K::Escalated, e.summary.clone(), !e.late)
        }
        (EventKind::Forecast, Some(mut order)) => {
            order.forecast = e.forecast;
            set_summary(&mut order, &e.summary);
            (order, K::Forecast, e.summary.clone(), false)
        }
        (EventKind::Clear, Some(mut order)) if order.colour == Colour::Red => {
            order.active = false;
            let why = Said::new(
                "condition cleared; red is latched until a person resolves it",
                "条件已解除；红色工单须由人工处置完毕后关闭",
            );
            (order, K::ConditionCleared, why, !e.late)
        }
        (EventKind::Clear, Some(mut order)) => {
            order.active = false;
            order.state = State::Resolved;
            (order, K::Resolved, e.summary.clone(), !e.late)
        }
        // Nothing open: a person already resolved it (a clear ends the wait to raise it
        // again, see `reraise`), or it never reached the store.
        (EventKind::Clear, None) => return super::reraise::cleared(tx, &e.rule, &subject),
        (_, None) => return Ok(()),
    };
    let who = format!("rule:{}", e.rule);
    let entry =
        Entry { kind, who: &who, why: &why.en, why_zh: &why.zh, evidence, notify, at_ms: e.at_ms as i64 };
    changes.push(record(tx, ctx, &mut order, &entry, now_ms)?);
    super::warnings::auto(tx, ctx, &order, e.at_ms as i64, now_ms)?;
    super::incidents::after(tx, ctx, &order, kind, now_ms, changes)
}

/// The order's deadlines start again at `now_ms` (its colour rose, or it became live): those of
/// its new colour run in full, none counts as missed yet.
fn restart_deadlines(tx: &mut dyn Tx, order: &mut Order, now_ms: i64) -> Result<(), StoreError> {
    order.deadlines_from_ms = now_ms;
    order.missed = 0;
    tx.exec("UPDATE orders SET deadlines_from_ms = ?2, missed = 0 WHERE id = ?1", args![order.id, now_ms])?;
    Ok(())
}

/// A new order's row.
pub(crate) struct NewOrder<'a> {
    pub(crate) rule: &'a str,
    pub(crate) subject: &'a str,
    pub(crate) site: &'a str,
    pub(crate) device: &'a str,
    pub(crate) colour: Colour,
    pub(crate) summary: &'a Said,
    pub(crate) late: bool,
    /// Event time of the raise.
    pub(crate) opened_ms: i64,
    pub(crate) forecast: Option<crate::rules::Forecast>,
    pub(crate) part: Option<i64>,
    /// The resolved order a re-raise follows.
    pub(crate) reraised_from: Option<i64>,
}

/// Inserts a raised order (deadlines and notices from `now_ms`, wall clock) and reads it back.
pub(crate) fn insert(tx: &mut dyn Tx, n: &NewOrder<'_>, now_ms: i64) -> Result<Order, StoreError> {
    let forecast = n.forecast.map(|f| serde_json::json!(f).to_string());
    let id = tx
        .row(
            "INSERT INTO orders (rule, subject, site, device, colour, state, summary, late, active, opened_ms, created_ms,
             updated_ms, seq, last_notice_ms, forecast, deadlines_from_ms, part, summary_zh, reraised_from)
             VALUES (?1, ?2, ?3, ?4, ?5, 'raised', ?6, ?7, 1, ?8, ?9, ?9, 0, ?9, ?10, ?9, ?11, ?12, ?13) RETURNING id",
            &[
                Arg::from(n.rule),
                Arg::from(n.subject),
                Arg::from(n.site),
                Arg::from(n.device),
                Arg::from(n.colour.as_str()),
                Arg::from(&n.summary.en),
                Arg::from(n.late),
                Arg::Int(n.opened_ms),
                Arg::Int(now_ms),
                Arg::from(&forecast),
                Arg::OptInt(n.part),
                Arg::from(&n.summary.zh),
                Arg::OptInt(n.reraised_from),
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
    /// The same in Chinese (a person's own words: the same text).
    pub(crate) why_zh: &'a str,
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
    ctx: &Ctx<'_>,
    order: &mut Order,
    e: &Entry<'_>,
    now_ms: i64,
) -> Result<Change, StoreError> {
    let Entry { kind, who, why, why_zh, evidence, notify, at_ms } = *e;
    order.seq += 1;
    order.updated_ms = now_ms;
    tx.exec(
        "INSERT INTO order_events (order_id, seq, at_ms, kind, state, colour, who, why, evidence, why_zh)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        args![
            order.id,
            order.seq,
            at_ms,
            kind.as_str(),
            order.state.as_str(),
            order.colour.as_str(),
            who,
            why,
            evidence,
            why_zh
        ],
    )?;
    let notice = if notify { now_ms } else { -1 };
    let forecast = order.forecast.map(|f| serde_json::json!(f).to_string());
    tx.exec(
        "UPDATE orders SET colour = ?2, state = ?3, late = ?4, active = ?5, updated_ms = ?6, seq = ?7, tier = ?8,
         last_notice_ms = CASE WHEN ?9 >= 0 THEN ?9 ELSE last_notice_ms END, summary = ?10, forecast = ?11,
         summary_zh = ?12 WHERE id = ?1",
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
            &order.summary_zh,
        ],
    )?;
    if order.inhibited_by.is_some() && order.colour == Colour::Red {
        // Turned red while its gateway was away (a band off the wrist for an hour): red is
        // never held back.
        tx.exec("UPDATE orders SET inhibited_by = NULL WHERE id = ?1", args![order.id])?;
        order.inhibited_by = None;
    }
    let change = change(order, kind, &Said::new(why, why_zh), at_ms, ctx.names);
    if notify {
        let payload = super::payload(order, &change, evidence, ctx.names);
        let mut routed = 0;
        for r in route(ctx.receivers, order.tier).chain(personal(ctx.receivers, order.assignee.as_deref())) {
            // An inhibited order's notifications are recorded, not sent ([`super::incidents`]).
            let (status, why) = match order.inhibited_by {
                Some(cause) => {
                    ("inhibited", Some(format!("inhibited: its gateway is offline (order {cause})")))
                }
                None => ("pending", None),
            };
            tx.exec(
                "INSERT INTO outbox (order_id, seq, receiver, payload, next_ms, status, last_error, incident)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT DO NOTHING",
                args![order.id, order.seq, &r.name, payload.as_str(), now_ms, status, &why, order.incident],
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
    let tiered = || receivers.iter().filter(|r| r.person.is_none());
    let best = tiered().map(|r| r.tier).filter(|&t| t <= tier).max();
    tiered().filter(move |r| Some(r.tier) == best)
}

/// The receivers of the person the order was dispatched to.
fn personal<'a>(receivers: &'a [Receiver], assignee: Option<&'a str>) -> impl Iterator<Item = &'a Receiver> {
    receivers.iter().filter(move |r| r.person.is_some() && r.person.as_deref() == assignee)
}

/// The order's summary, in both languages, becomes `s`.
fn set_summary(order: &mut Order, s: &Said) {
    order.summary.clone_from(&s.en);
    order.summary_zh.clone_from(&s.zh);
}

fn change(order: &Order, kind: K, why: &Said, at_ms: i64, names: &Names) -> Change {
    let state = if kind == K::Escalated {
        K::Escalated.as_str().to_string()
    } else {
        order.state.as_str().to_string()
    };
    let (summary, summary_zh) = if matches!(kind, K::Escalated | K::Reminder) && why.en != order.summary {
        (format!("{}: {}", order.summary, why.en), format!("{}：{}", order.summary_zh, why.zh))
    } else {
        (order.summary.clone(), order.summary_zh.clone())
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
        at: names.local(at_ms),
        title: names.title(&order.rule, &order.site),
        summary,
        summary_zh,
        forecast: order.forecast.map(|f| names.local(f.failure_ms as i64)),
        assignee: order.assignee.clone(),
    }
}
