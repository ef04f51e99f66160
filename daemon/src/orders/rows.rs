//! Reading orders and their columns back from SQLite.

use super::model::{Order, State};
use super::store::{Filter, StoreError};
use crate::rules::Colour;
use rusqlite::{params, Connection, OptionalExtension, Row};

/// The columns [`order_from_row`] reads, in order.
pub(crate) const ORDER_COLS: &str = "id, rule, subject, site, device, colour, state, summary, late, active, \
                          opened_ms, updated_ms, seq, tier, forecast, created_ms, missed, deadlines_from_ms";

pub(crate) fn load(
    conn: &Connection,
    clause: &str,
    p: impl rusqlite::Params,
) -> Result<Option<Order>, StoreError> {
    let sql = format!("SELECT {ORDER_COLS} FROM orders WHERE {clause}");
    Ok(conn.query_row(&sql, p, order_from_row).optional()?)
}

/// Orders matching `f`, newest first, at most 1000 (the API's page).
pub(crate) fn list(conn: &Connection, f: &Filter) -> Result<Vec<Order>, StoreError> {
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
        forecast: r.get::<_, Option<String>>(14)?.and_then(|j| serde_json::from_str(&j).ok()),
        created_ms: r.get(15)?,
        missed: r.get(16)?,
        deadlines_from_ms: r.get::<_, Option<i64>>(17)?.unwrap_or(r.get(15)?),
        due: None,
    })
}

fn bad(i: usize, what: &str) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, what.to_string().into())
}

pub(crate) fn parse_state(r: &Row<'_>, i: usize) -> rusqlite::Result<State> {
    State::parse(&r.get::<_, String>(i)?).ok_or_else(|| bad(i, "unknown order state"))
}

pub(crate) fn parse_kind(r: &Row<'_>, i: usize) -> rusqlite::Result<super::OrderEventKind> {
    super::OrderEventKind::parse(&r.get::<_, String>(i)?).ok_or_else(|| bad(i, "unknown order event kind"))
}

pub(crate) fn parse_colour(r: &Row<'_>, i: usize) -> rusqlite::Result<Colour> {
    let s: String = r.get(i)?;
    [Colour::Blue, Colour::Yellow, Colour::Orange, Colour::Red]
        .into_iter()
        .find(|c| c.as_str() == s)
        .ok_or_else(|| bad(i, "unknown colour"))
}

/// Every open order, oldest first (no page limit: deadlines must reach all of them).
pub(crate) fn open_orders(conn: &Connection) -> Result<Vec<Order>, StoreError> {
    let sql =
        format!("SELECT {ORDER_COLS} FROM orders WHERE state NOT IN ('resolved', 'closed') ORDER BY id");
    let mut st = conn.prepare_cached(&sql)?;
    let rows = st.query_map([], order_from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}
