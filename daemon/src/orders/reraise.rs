//! Resolved while the condition is still active: raised again after `[sla] reraise_s`.
//!
//! Why: a person may resolve an order while the rule still sees its condition (the slope still
//! moving, the heart rate still low) — by mistake, or because the visit found nothing. The rule
//! keeps its condition open and would stay silent until it clears; nobody would hear of the
//! subject again. So the resolve records when to look again (`reraise_ms`); a clear from the
//! rule before then ends the wait; at that time, if no order is open for the rule and subject,
//! the deadline clock raises a new one that names the resolved one (`reraised_from`).

use super::db::{args, Arg, Tx};
use super::kind::OrderEventKind as K;
use super::model::Order;
use super::rows::{load, ORDER_COLS};
use super::store::{Change, Ctx, StoreError};
use super::transition::{insert, record, Entry, NewOrder};
use crate::rules::Said;

/// A person resolved `order`: while its condition is active, note when to raise it again.
pub(crate) fn resolved(tx: &mut dyn Tx, ctx: &Ctx<'_>, order: &Order, now_ms: i64) -> Result<(), StoreError> {
    if order.active && ctx.sla.reraise_s > 0 {
        let at = now_ms.saturating_add(1000 * ctx.sla.reraise_s as i64);
        tx.exec("UPDATE orders SET reraise_ms = ?2 WHERE id = ?1", args![order.id, at])?;
    }
    Ok(())
}

/// The rule's condition for `rule`/`subject` cleared with no order open: resolved orders are no
/// longer active and none is raised again.
pub(crate) fn cleared(tx: &mut dyn Tx, rule: &str, subject: &str) -> Result<(), StoreError> {
    tx.exec(
        "UPDATE orders SET active = 0, reraise_ms = NULL
         WHERE rule = ?1 AND subject = ?2 AND state IN ('resolved', 'closed') AND (active = 1 OR reraise_ms IS NOT NULL)",
        args![rule, subject],
    )?;
    Ok(())
}

/// Raises again every order whose wait ended by `now_ms` (this partition's, in cluster mode).
pub(crate) fn due(
    tx: &mut dyn Tx,
    ctx: &Ctx<'_>,
    now_ms: i64,
    changes: &mut Vec<Change>,
) -> Result<(), StoreError> {
    let sql = format!(
        "SELECT {ORDER_COLS} FROM orders WHERE reraise_ms IS NOT NULL AND reraise_ms <= ?1
         AND (?2 IS NULL OR part = ?2) ORDER BY id"
    );
    let rows = tx.rows(&sql, &[Arg::Int(now_ms), Arg::OptInt(ctx.part())])?;
    for row in rows {
        let old = super::rows::order_from_row(&row)?;
        tx.exec("UPDATE orders SET reraise_ms = NULL WHERE id = ?1", args![old.id])?;
        let open = load(
            tx,
            "rule = ?1 AND subject = ?2 AND state NOT IN ('resolved', 'closed')",
            args![old.rule.as_str(), old.subject.as_str()],
        )?;
        if open.is_some() {
            continue;
        }
        let why = Said::new(
            format!("resolved while still active: follows order {}", old.id),
            format!("处置完毕后条件仍在持续：接续工单 {}", old.id),
        );
        let summary =
            Said::new(format!("{} ({})", old.summary, why.en), format!("{}（{}）", old.summary_zh, why.zh));
        let new = NewOrder {
            rule: &old.rule,
            subject: &old.subject,
            site: &old.site,
            device: &old.device,
            colour: old.colour,
            summary: &summary,
            late: false,
            opened_ms: now_ms,
            forecast: old.forecast,
            part: ctx.part(),
            reraised_from: Some(old.id),
        };
        let mut order = insert(tx, &new, now_ms)?;
        super::incidents::on_new(tx, ctx, &mut order, now_ms)?;
        let entry = Entry {
            kind: K::Raised,
            who: "sla",
            why: &why.en,
            why_zh: &why.zh,
            evidence: None,
            notify: true,
            at_ms: now_ms,
        };
        changes.push(record(tx, ctx, &mut order, &entry, now_ms)?);
    }
    Ok(())
}
