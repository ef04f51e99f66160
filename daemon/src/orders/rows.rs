//! Reading orders and their columns back, on either engine.

use super::db::{args, Row, Tx};
use super::model::{Order, State};
use super::store::{Filter, StoreError};
use crate::rules::Colour;

/// The columns [`order_from_row`] reads, in order.
pub(crate) const ORDER_COLS: &str = "id, rule, subject, site, device, colour, state, summary, late, active, \
                          opened_ms, updated_ms, seq, tier, forecast, created_ms, missed, deadlines_from_ms, assignee, \
                          summary_zh, reraised_from, incident, inhibited_by";

pub(crate) fn load(
    tx: &mut dyn Tx,
    clause: &str,
    p: &[super::db::Arg<'_>],
) -> Result<Option<Order>, StoreError> {
    let sql = format!("SELECT {ORDER_COLS} FROM orders WHERE {clause}");
    tx.row(&sql, p)?.map(|r| order_from_row(&r)).transpose()
}

/// Orders matching `f`, newest first, at most 1000 (the API's page).
pub(crate) fn list(tx: &mut dyn Tx, f: &Filter) -> Result<Vec<Order>, StoreError> {
    let sql = format!(
        "SELECT {ORDER_COLS} FROM orders WHERE (?1 IS NULL OR state = ?1) AND (?2 IS NULL OR colour = ?2)
         AND (?3 IS NULL OR site = ?3) AND (?4 = 0 OR state NOT IN ('resolved', 'closed'))
         AND (?5 IS NULL OR assignee = ?5) AND (?6 IS NULL OR incident = ?6) ORDER BY id DESC LIMIT 1000"
    );
    let p = args![
        f.state.map(State::as_str),
        f.colour.map(Colour::as_str),
        &f.site,
        f.open,
        &f.assignee,
        f.incident
    ];
    tx.rows(&sql, p)?.iter().map(order_from_row).collect()
}

pub(crate) fn order_from_row(r: &Row) -> Result<Order, StoreError> {
    Ok(Order {
        id: r.int(0)?,
        rule: r.text(1)?,
        subject: r.text(2)?,
        site: r.text(3)?,
        device: r.text(4)?,
        colour: parse_colour(r, 5)?,
        state: parse_state(r, 6)?,
        summary: r.text(7)?,
        late: r.flag(8)?,
        active: r.flag(9)?,
        opened_ms: r.int(10)?,
        updated_ms: r.int(11)?,
        seq: r.int(12)?,
        tier: r.int(13)?,
        forecast: r.opt_text(14)?.and_then(|j| serde_json::from_str(&j).ok()),
        created_ms: r.int(15)?,
        missed: r.int(16)?,
        deadlines_from_ms: r.opt_int(17)?.map_or_else(|| r.int(15), Ok)?,
        assignee: r.opt_text(18)?,
        summary_zh: r.text(19)?,
        reraised_from: r.opt_int(20)?,
        incident: r.opt_int(21)?,
        inhibited_by: r.opt_int(22)?,
        title: String::new(),
        due: None,
    })
}

fn bad(i: usize, what: &str, got: &str) -> StoreError {
    StoreError::Corrupt(format!("column {i}: {what} `{got}`"))
}

pub(crate) fn parse_state(r: &Row, i: usize) -> Result<State, StoreError> {
    let s = r.text(i)?;
    State::parse(&s).ok_or_else(|| bad(i, "unknown order state", &s))
}

pub(crate) fn parse_kind(r: &Row, i: usize) -> Result<super::OrderEventKind, StoreError> {
    let s = r.text(i)?;
    super::OrderEventKind::parse(&s).ok_or_else(|| bad(i, "unknown order event kind", &s))
}

pub(crate) fn parse_colour(r: &Row, i: usize) -> Result<Colour, StoreError> {
    let s = r.text(i)?;
    [Colour::Blue, Colour::Yellow, Colour::Orange, Colour::Red]
        .into_iter()
        .find(|c| c.as_str() == s)
        .ok_or_else(|| bad(i, "unknown colour", &s))
}

/// Every open order, oldest first (no page limit: deadlines must reach all of them); with
/// `part`, only that partition's (cluster mode: timers run at the partition's owner).
pub(crate) fn open_orders(tx: &mut dyn Tx, part: Option<i64>) -> Result<Vec<Order>, StoreError> {
    // PostgreSQL: lock them, so two deadline ticks cannot both escalate one order.
    let lock = if tx.engine() == super::db::Engine::Postgres { " FOR UPDATE" } else { "" };
    let open = "state NOT IN ('resolved', 'closed')";
    let rows = match part {
        Some(p) => tx.rows(
            &format!("SELECT {ORDER_COLS} FROM orders WHERE {open} AND part = ?1 ORDER BY id{lock}"),
            args![p],
        )?,
        None => tx.rows(&format!("SELECT {ORDER_COLS} FROM orders WHERE {open} ORDER BY id{lock}"), &[])?,
    };
    rows.iter().map(order_from_row).collect()
}
