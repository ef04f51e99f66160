//! Public warnings in the store: a red order of a hazard site warns its residents once.
//!
//! Why here: a warning must not be lost between the decision and the sending, nor sent twice
//! (people leave their homes). The decision is a row of `warnings`, unique per order, written in
//! the transaction that made the order red with its forecast (automatic) or by an operator's
//! 一键预警 (audited); the sender ([`crate::warn`]) expands it into one `warning_sends` row per
//! resident and channel and records each one's result. A crash in between resumes from the rows.

use super::audit::{append, Entry as AuditEntry};
use super::db::{args, Tx};
use super::model::Order;
use super::store::{Ctx, Store, StoreError};
use crate::rules::Colour;
use serde::Serialize;

/// A hazard site's warning as the store needs it (no secrets, no numbers).
#[derive(Debug, Clone, PartialEq)]
pub struct Hazard {
    /// The site.
    pub site: String,
    /// The evacuation route.
    pub route: String,
    /// Warn automatically when a red order forecasts failure within this, ms.
    pub auto_within_ms: Option<i64>,
}

/// Why an operator's warning was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Refusal {
    #[error("no order {0}")]
    NoOrder(i64),
    #[error("only a red order warns residents (this one is {0})")]
    NotRed(String),
    #[error("site `{0}` has no [[warning]]")]
    NoHazard(String),
    #[error("residents were already warned of this order (warning {0})")]
    Already(i64),
}

/// A warning to send or being sent.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Warning {
    pub id: i64,
    pub order_id: i64,
    pub site: String,
    /// `auto` or `manual`.
    pub trigger: String,
    pub who: String,
    /// What residents read.
    pub text: String,
    /// The SMS template's variables (`site`, `route`, `time`), JSON.
    pub params: String,
    /// `new` (not yet expanded into sends) or `queued`.
    pub status: String,
    pub created_ms: i64,
}

/// One send: a resident's text message or the broadcast.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Send {
    pub id: i64,
    pub warning_id: i64,
    /// `sms` or `broadcast`.
    pub channel: String,
    /// A number, or the broadcast's name.
    pub recipient: String,
    /// `pending`, `sent` or `failed`.
    pub status: String,
    pub attempts: i64,
    /// The provider's id, or what went wrong.
    pub detail: Option<String>,
    pub sent_ms: Option<i64>,
}

/// Creates the warning of `order` (once; `None` if it exists).
fn create(
    tx: &mut dyn Tx,
    ctx: &Ctx<'_>,
    order: &Order,
    h: &Hazard,
    trigger: &str,
    who: &str,
    now_ms: i64,
) -> Result<Option<i64>, StoreError> {
    let names = ctx.names;
    let time = order.forecast.map(|f| names.local(f.failure_ms as i64)).unwrap_or_default();
    let site = names.site(&order.site);
    let text = match &order.forecast {
        // For people: 12月7日 10:04 in the daemon's zone (the template's `time` stays RFC 3339).
        Some(f) => format!(
            "【地质灾害预警】{site}：预测 {} 前后可能发生滑坡。请立即按撤离路线撤离：{}。",
            jiff::Timestamp::from_millisecond((f.failure_ms as i64).saturating_add(30_000)) // to the nearest minute
                .map(|t| t.to_zoned_datetime(names.tz().clone()).strftime("%-m月%-d日 %H:%M").to_string())
                .unwrap_or_else(|_| time.clone()),
            h.route
        ),
        None => format!("【地质灾害预警】{site}：监测到险情。请立即按撤离路线撤离：{}。", h.route),
    };
    let params = serde_json::json!({ "site": site, "route": h.route, "time": time }).to_string();
    let row = tx.row(
        "INSERT INTO warnings (order_id, site, trigger, who, text, params, created_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT (order_id) DO NOTHING RETURNING id",
        args![order.id, order.site.as_str(), trigger, who, text.as_str(), params.as_str(), now_ms],
    )?;
    row.map(|r| r.int(0)).transpose()
}

/// After a rule event: a red order of a hazard site whose forecast failure is within the
/// site's `auto_within_h` of the event warns its residents (once).
pub(crate) fn auto(
    tx: &mut dyn Tx,
    ctx: &Ctx<'_>,
    order: &Order,
    at_ms: i64,
    now_ms: i64,
) -> Result<(), StoreError> {
    if order.colour != Colour::Red {
        return Ok(());
    }
    let Some(h) = ctx.names.hazard(&order.site) else { return Ok(()) };
    let (Some(within), Some(f)) = (h.auto_within_ms, order.forecast) else { return Ok(()) };
    if f.failure_ms as i64 - at_ms <= within {
        if let Some(id) = create(tx, ctx, order, h, "auto", &format!("rule:{}", order.rule), now_ms)? {
            tracing::warn!(order = order.id, warning = id, site = %order.site, "failure forecast within auto_within_h: residents are warned");
        }
    }
    Ok(())
}

const WARNING_COLS: &str = "id, order_id, site, trigger, who, text, params, status, created_ms";
const SEND_COLS: &str = "id, warning_id, channel, recipient, status, attempts, detail, sent_ms";

fn warning(r: &super::db::Row) -> Result<Warning, StoreError> {
    Ok(Warning {
        id: r.int(0)?,
        order_id: r.int(1)?,
        site: r.text(2)?,
        trigger: r.text(3)?,
        who: r.text(4)?,
        text: r.text(5)?,
        params: r.text(6)?,
        status: r.text(7)?,
        created_ms: r.int(8)?,
    })
}

fn send(r: &super::db::Row) -> Result<Send, StoreError> {
    Ok(Send {
        id: r.int(0)?,
        warning_id: r.int(1)?,
        channel: r.text(2)?,
        recipient: r.text(3)?,
        status: r.text(4)?,
        attempts: r.int(5)?,
        detail: r.opt_text(6)?,
        sent_ms: r.opt_int(7)?,
    })
}

impl Store {
    /// An operator's 一键预警 from order `id` (audited): the warning's id.
    pub fn warn(&mut self, id: i64, who: &str, now_ms: i64) -> Result<Result<i64, Refusal>, StoreError> {
        self.write(|tx, ctx| {
            let Some(order) = super::rows::load(tx, "id = ?1", args![id])? else {
                return Ok(Err(Refusal::NoOrder(id)));
            };
            if order.colour != Colour::Red {
                return Ok(Err(Refusal::NotRed(order.colour.as_str().into())));
            }
            let Some(h) = ctx.names.hazard(&order.site) else {
                return Ok(Err(Refusal::NoHazard(order.site.clone())));
            };
            match create(tx, ctx, &order, h, "manual", who, now_ms)? {
                Some(w) => {
                    let (subject, detail) =
                        (format!("order {id}"), format!("warning {w}: residents of {} warned", order.site));
                    append(
                        tx,
                        now_ms,
                        &AuditEntry { who, action: "warning.send", subject: &subject, detail: &detail },
                    )?;
                    Ok(Ok(w))
                }
                None => {
                    let w = tx.row("SELECT id FROM warnings WHERE order_id = ?1", args![id])?;
                    Ok(Err(Refusal::Already(w.map(|r| r.int(0)).transpose()?.unwrap_or(0))))
                }
            }
        })
    }

    /// Warnings not yet expanded into sends.
    pub fn warnings_new(&mut self) -> Result<Vec<Warning>, StoreError> {
        let sql = format!("SELECT {WARNING_COLS} FROM warnings WHERE status = 'new' ORDER BY id");
        self.read(|tx| tx.rows(&sql, &[])?.iter().map(warning).collect())
    }

    /// Expands warning `id` into one send per (channel, recipient), due now.
    pub fn warning_queue(&mut self, id: i64, sends: &[(&str, &str)], now_ms: i64) -> Result<(), StoreError> {
        self.write(|tx, _| {
            for (channel, recipient) in sends {
                tx.exec(
                    "INSERT INTO warning_sends (warning_id, channel, recipient, next_ms) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT DO NOTHING",
                    args![id, *channel, *recipient, now_ms],
                )?;
            }
            tx.exec("UPDATE warnings SET status = 'queued' WHERE id = ?1", args![id])?;
            Ok(())
        })
    }

    /// Sends due at `now_ms`, oldest first, with their warning, claimed for `claim_ms`: on
    /// PostgreSQL every cluster worker runs a sender, so the rows are locked, skipped by the
    /// others and made due again only after the claim (a resident never gets one twice from two
    /// workers); SQLite has one sender.
    pub fn warning_sends_due(
        &mut self,
        now_ms: i64,
        limit: i64,
        claim_ms: i64,
    ) -> Result<Vec<(Send, Warning)>, StoreError> {
        let claim = |tx: &mut dyn Tx| -> Result<Vec<(Send, Warning)>, StoreError> {
            let rows = match tx.engine() {
                super::db::Engine::Sqlite => tx.rows(
                    &format!("SELECT {SEND_COLS} FROM warning_sends WHERE status = 'pending' AND next_ms <= ?1 ORDER BY id LIMIT ?2"),
                    args![now_ms, limit],
                )?,
                super::db::Engine::Postgres => tx.rows(
                    &format!(
                        "UPDATE warning_sends SET next_ms = ?3 WHERE id IN (SELECT id FROM warning_sends
                         WHERE status = 'pending' AND next_ms <= ?1 ORDER BY id LIMIT ?2 FOR UPDATE SKIP LOCKED)
                         RETURNING {SEND_COLS}"
                    ),
                    args![now_ms, limit, now_ms + claim_ms],
                )?,
            };
            let sends: Vec<Send> = rows.iter().map(send).collect::<Result<_, _>>()?;
            let mut out = Vec::with_capacity(sends.len());
            for s in sends {
                let sql = format!("SELECT {WARNING_COLS} FROM warnings WHERE id = ?1");
                if let Some(r) = tx.row(&sql, args![s.warning_id])? {
                    out.push((s, warning(&r)?));
                }
            }
            out.sort_by_key(|(s, _)| s.id);
            Ok(out)
        };
        match self.engine() {
            super::db::Engine::Sqlite => self.read(claim),
            super::db::Engine::Postgres => self.write(|tx, _| claim(tx)),
        }
    }

    /// Records a send's result: sent (with the provider's id), or failed and tried again at
    /// `retry_ms` (`None`: given up).
    pub fn warning_sent(
        &mut self,
        id: i64,
        result: Result<&str, &str>,
        retry_ms: Option<i64>,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        self.write(|tx, _| {
            match (result, retry_ms) {
                (Ok(detail), _) => tx.exec(
                    "UPDATE warning_sends SET status = 'sent', attempts = attempts + 1, detail = ?2, sent_ms = ?3 WHERE id = ?1",
                    args![id, detail, now_ms],
                )?,
                (Err(e), Some(next)) => tx.exec(
                    "UPDATE warning_sends SET attempts = attempts + 1, detail = ?2, next_ms = ?3 WHERE id = ?1",
                    args![id, e, next],
                )?,
                (Err(e), None) => tx.exec(
                    "UPDATE warning_sends SET status = 'failed', attempts = attempts + 1, detail = ?2 WHERE id = ?1",
                    args![id, e],
                )?,
            };
            Ok(())
        })
    }

    /// The latest `limit` warnings with their sends (numbers as stored: the API masks them).
    pub fn warnings_recent(&mut self, limit: i64) -> Result<Vec<(Warning, Vec<Send>)>, StoreError> {
        self.read(|tx| {
            let sql = format!("SELECT {WARNING_COLS} FROM warnings ORDER BY id DESC LIMIT ?1");
            let list: Vec<Warning> =
                tx.rows(&sql, args![limit])?.iter().map(warning).collect::<Result<_, _>>()?;
            let mut out = Vec::with_capacity(list.len());
            for w in list {
                let sql = format!("SELECT {SEND_COLS} FROM warning_sends WHERE warning_id = ?1 ORDER BY id");
                let sends = tx.rows(&sql, args![w.id])?.iter().map(send).collect::<Result<_, _>>()?;
                out.push((w, sends));
            }
            Ok(out)
        })
    }
}
