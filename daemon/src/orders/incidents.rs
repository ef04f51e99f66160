//! Incidents and inhibition: many orders with one cause are told as one.
//!
//! Why: a power cut on one street takes every plaza box and wristband gateway there offline
//! within seconds. One page per order would be hundreds of pages to the same people, and the
//! red heart-rate order that matters would queue behind them. So a new order that matches a
//! `[[group]]` joins the incident of its key (its street, site, gateway or rule) while the last
//! order joined less than `window_s` ago, or opens a new one, named by its first order's id. Its
//! payloads carry the incident, and the notifier pages an incident's first notifications at once
//! and the rest as one digest per `digest_s` per receiver (red always at once and alone). The
//! key is kept in `incident_heads` and taken with one upsert, so two cluster workers raising
//! orders on one street at once still find one incident.
//!
//! A wristband's band-removed (and any no-data) order is explained by its gateway being
//! offline: while the gateway has an open no-data order, the band's non-red orders are
//! *inhibited* — recorded, listed, their notifications kept with status `inhibited`, not sent.
//! When the gateway's order ends, each inhibited order still open is released and paged.

use super::db::{args, Tx};
use super::kind::OrderEventKind as K;
use super::model::{Order, State};
use super::names::Names;
use super::store::{Change, Ctx, StoreError};
use super::transition::{record, Entry};
use crate::config::{GroupBy, GroupConfig};
use crate::rules::{Colour, Condition, RuleConfig};
use serde::Serialize;
use std::collections::HashSet;

/// One `[[group]]`, ready to match orders.
#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    by: Vec<GroupBy>,
    window_ms: i64,
    digest_s: u64,
    rules: Vec<String>,
    colours: Vec<Colour>,
    mass_offline: u32,
}

/// The groups, and which rules say a device is offline or a band is off the wrist.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Grouping {
    groups: Vec<Group>,
    offline: HashSet<String>,
    band: HashSet<String>,
}

/// The incident an order belongs to, as its payloads tell it.
#[derive(Debug, Clone, PartialEq)]
pub struct Membership {
    /// Its key (`street=解放碑街道`).
    pub key: String,
    /// What people call it (the street's name, the site's...).
    pub label: String,
    /// Digests at most this often per receiver.
    pub digest_s: u64,
}

impl Grouping {
    /// From the config's `[[group]]`s and rules.
    pub fn new<'a>(groups: impl IntoIterator<Item = &'a GroupConfig>, rules: &[&RuleConfig]) -> Grouping {
        let kind = |f: fn(&Condition) -> bool| {
            rules.iter().filter(|r| f(&r.condition)).map(|r| r.id.clone()).collect::<HashSet<_>>()
        };
        Grouping {
            groups: groups
                .into_iter()
                .map(|g| Group {
                    by: g.by.clone(),
                    window_ms: (g.window_s.saturating_mul(1000)).min(i64::MAX as u64) as i64,
                    digest_s: g.digest_s,
                    rules: g.rules.clone(),
                    colours: g.colours.clone(),
                    mass_offline: g.mass_offline,
                })
                .collect(),
            offline: kind(|c| matches!(c, Condition::NoData(_))),
            band: kind(|c| matches!(c, Condition::BandRemoved(_) | Condition::NoData(_))),
        }
    }

    /// Whether `rule` says its subject is offline (no data, or its gateway's last will).
    pub fn is_offline(&self, rule: &str) -> bool {
        self.offline.contains(rule)
    }

    /// The first group `order` falls in, its key and label.
    fn of(&self, order: &Order, names: &Names) -> Option<(&Group, Membership)> {
        let g = self.groups.iter().find(|g| {
            (g.rules.is_empty() || g.rules.contains(&order.rule))
                && (g.colours.is_empty() || g.colours.contains(&order.colour))
        })?;
        let mut key = Vec::new();
        let mut label = Vec::new();
        for by in &g.by {
            let (k, l) = match by {
                GroupBy::Street => match names.street(&order.site) {
                    Some(s) => (format!("street={s}"), s.to_string()),
                    None => (format!("site={}", order.site), names.site(&order.site).to_string()),
                },
                GroupBy::Site => (format!("site={}", order.site), names.site(&order.site).to_string()),
                GroupBy::Gateway => {
                    let gw = gateway(&order.subject);
                    (format!("gateway={gw}"), gw.to_string())
                }
                GroupBy::Rule => (format!("rule={}", order.rule), names.rule(&order.rule).to_string()),
            };
            key.push(k);
            label.push(l);
        }
        Some((g, Membership { key: key.join(","), label: label.join(" · "), digest_s: g.digest_s }))
    }

    /// The incident membership of `order` as payloads tell it (`None`: it is in none).
    pub fn membership(&self, order: &Order, names: &Names) -> Option<Membership> {
        order.incident?;
        self.of(order, names).map(|(_, m)| m)
    }
}

/// The subject's gateway: `site/device` of `site/device/band`; a device's is itself.
fn gateway(subject: &str) -> &str {
    match subject.match_indices('/').nth(1) {
        Some((i, _)) => &subject[..i],
        None => subject,
    }
}

/// A new order joins its incident (or opens one); it is inhibited if its gateway is offline,
/// and, if it says a gateway is offline, inhibits that gateway's bands' open orders.
pub(crate) fn on_new(
    tx: &mut dyn Tx,
    ctx: &Ctx<'_>,
    order: &mut Order,
    now_ms: i64,
) -> Result<(), StoreError> {
    let grouping = ctx.names.grouping();
    if let Some((g, m)) = grouping.of(order, ctx.names) {
        let head = tx
            .row(
                "INSERT INTO incident_heads (key, incident, last_ms) VALUES (?1, ?2, ?3)
                 ON CONFLICT (key) DO UPDATE SET
                 incident = CASE WHEN incident_heads.last_ms < ?4 THEN excluded.incident ELSE incident_heads.incident END,
                 last_ms = excluded.last_ms RETURNING incident",
                args![m.key.as_str(), order.id, now_ms, now_ms - g.window_ms],
            )?
            .ok_or_else(|| StoreError::Corrupt("incident upsert returned nothing".into()))?
            .int(0)?;
        let offline = i64::from(grouping.is_offline(&order.rule));
        if head == order.id {
            tx.exec(
                "INSERT INTO incidents (id, key, label, opened_ms, last_ms, orders, offline, mass_offline, part, street)
                 VALUES (?1, ?2, ?3, ?4, ?4, 1, ?5, ?6, ?7, ?8)",
                args![
                    order.id,
                    m.key.as_str(),
                    m.label.as_str(),
                    now_ms,
                    offline,
                    i64::from(g.mass_offline),
                    ctx.part(),
                    ctx.names.street(&order.site).unwrap_or("")
                ],
            )?;
        } else {
            tx.exec(
                "UPDATE incidents SET orders = orders + 1, offline = offline + ?2, last_ms = ?3 WHERE id = ?1",
                args![head, offline, now_ms],
            )?;
        }
        tx.exec("UPDATE orders SET incident = ?2 WHERE id = ?1", args![order.id, head])?;
        order.incident = Some(head);
    }
    if order.colour != Colour::Red
        && grouping.band.contains(&order.rule)
        && order.subject.matches('/').count() == 2
    {
        let open_offline = open_offline_of(tx, grouping, gateway(&order.subject))?;
        if let Some(cause) = open_offline {
            tx.exec("UPDATE orders SET inhibited_by = ?2 WHERE id = ?1", args![order.id, cause])?;
            order.inhibited_by = Some(cause);
        }
    }
    Ok(())
}

/// The open no-data order of subject `gateway`, if there is one.
fn open_offline_of(tx: &mut dyn Tx, grouping: &Grouping, gateway: &str) -> Result<Option<i64>, StoreError> {
    let rows = tx.rows(
        "SELECT id, rule FROM orders WHERE subject = ?1 AND state NOT IN ('resolved', 'closed') ORDER BY id",
        args![gateway],
    )?;
    for r in rows {
        if grouping.is_offline(&r.text(1)?) {
            return Ok(Some(r.int(0)?));
        }
    }
    Ok(None)
}

/// After a transition of `order`: a gateway's new no-data order inhibits its bands' open
/// non-red orders (their unsent notifications are kept back); its end releases them.
pub(crate) fn after(
    tx: &mut dyn Tx,
    ctx: &Ctx<'_>,
    order: &Order,
    kind: K,
    now_ms: i64,
    changes: &mut Vec<Change>,
) -> Result<(), StoreError> {
    let grouping = ctx.names.grouping();
    if !grouping.is_offline(&order.rule) || order.subject.matches('/').count() != 1 {
        return Ok(());
    }
    let bands = format!("{}/%", order.subject);
    if kind == K::Raised {
        let rows = tx.rows(
            "SELECT id, rule FROM orders WHERE subject LIKE ?1 AND state NOT IN ('resolved', 'closed')
             AND colour <> 'red' AND inhibited_by IS NULL ORDER BY id",
            args![bands.as_str()],
        )?;
        for r in rows {
            let (id, rule) = (r.int(0)?, r.text(1)?);
            if !grouping.band.contains(&rule) {
                continue;
            }
            tx.exec("UPDATE orders SET inhibited_by = ?2 WHERE id = ?1", args![id, order.id])?;
            let why = format!("inhibited: gateway {} offline (order {})", order.subject, order.id);
            tx.exec(
                "UPDATE outbox SET status = 'inhibited', last_error = ?2 WHERE order_id = ?1 AND status = 'pending'",
                args![id, why.as_str()],
            )?;
            let Some(mut band) = super::rows::load(tx, "id = ?1", args![id])? else { continue };
            let (en, zh) = (
                format!("gateway {} offline (order {}): held back", order.subject, order.id),
                format!("网关 {} 离线（工单 {}）：暂不通知", order.subject, order.id),
            );
            let e = Entry {
                kind: K::Inhibited,
                who: "system",
                why: &en,
                why_zh: &zh,
                evidence: None,
                notify: false,
                at_ms: now_ms,
            };
            changes.push(record(tx, ctx, &mut band, &e, now_ms)?);
        }
    } else if matches!(order.state, State::Resolved | State::Closed) {
        let rows = tx.rows("SELECT id FROM orders WHERE inhibited_by = ?1 ORDER BY id", args![order.id])?;
        for r in rows {
            let id = r.int(0)?;
            tx.exec("UPDATE orders SET inhibited_by = NULL WHERE id = ?1", args![id])?;
            let Some(mut band) = super::rows::load(tx, "id = ?1", args![id])? else { continue };
            if matches!(band.state, State::Resolved | State::Closed) || !band.active {
                // Ended or cleared while its gateway was away: nothing to page.
                continue;
            }
            let (en, zh) = (
                format!("gateway {} is back and this is still open", order.subject),
                format!("网关 {} 已恢复，该工单仍未解除", order.subject),
            );
            let e = Entry {
                kind: K::Released,
                who: "system",
                why: &en,
                why_zh: &zh,
                evidence: None,
                notify: true,
                at_ms: now_ms,
            };
            changes.push(record(tx, ctx, &mut band, &e, now_ms)?);
        }
    }
    Ok(())
}

/// An incident as the API lists it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Incident {
    /// The id of the order that opened it.
    pub id: i64,
    /// What its orders share (`street=…`).
    pub key: String,
    /// What people call it: `大面积离线 · 解放碑街道` once `mass_offline` of its orders are
    /// offline orders.
    pub label: String,
    /// Its name without the mass-offline mark (the street's, the site's...).
    pub name: String,
    /// The street of its first order (empty: none configured).
    pub street: String,
    /// Whether it is a mass offline (大面积离线).
    pub mass_offline: bool,
    /// When it opened (UTC ms).
    pub opened_ms: i64,
    /// When the last order joined (UTC ms).
    pub last_ms: i64,
    /// Orders in it.
    pub orders: i64,
    /// Of them, offline (no-data) orders.
    pub offline: i64,
    /// Of them, still open.
    pub open: i64,
    /// Of them, red.
    pub red: i64,
}

/// The latest `limit` incidents, newest first.
pub(crate) fn list(tx: &mut dyn Tx, limit: i64) -> Result<Vec<Incident>, StoreError> {
    query(tx, "ORDER BY i.id DESC LIMIT ?1", limit)
}

/// Incident `id`, if there is one.
pub(crate) fn one(tx: &mut dyn Tx, id: i64) -> Result<Option<Incident>, StoreError> {
    Ok(query(tx, "WHERE i.id = ?1", id)?.pop())
}

fn query(tx: &mut dyn Tx, tail: &str, arg: i64) -> Result<Vec<Incident>, StoreError> {
    let sql = format!(
        "SELECT i.id, i.key, i.label, i.opened_ms, i.last_ms, i.orders, i.offline, i.mass_offline,
            (SELECT COUNT(*) FROM orders o WHERE o.incident = i.id AND o.state NOT IN ('resolved', 'closed')),
            (SELECT COUNT(*) FROM orders o WHERE o.incident = i.id AND o.colour = 'red'), i.street
         FROM incidents i {tail}"
    );
    let rows = tx.rows(&sql, args![arg])?;
    rows.iter()
        .map(|r| {
            let (offline, threshold) = (r.int(6)?, r.int(7)?);
            let mass = offline >= threshold;
            let label = r.text(2)?;
            Ok(Incident {
                id: r.int(0)?,
                key: r.text(1)?,
                street: r.text(10)?,
                label: if mass { format!("大面积离线 · {label}") } else { label.clone() },
                name: label,
                mass_offline: mass,
                opened_ms: r.int(3)?,
                last_ms: r.int(4)?,
                orders: r.int(5)?,
                offline,
                open: r.int(8)?,
                red: r.int(9)?,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_band_hangs_off_its_gateway_and_a_box_is_its_own() {
        assert_eq!(gateway("home-12/gw-3/band-7"), "home-12/gw-3");
        assert_eq!(gateway("plaza-3/nb-01"), "plaza-3/nb-01");
        assert_eq!(gateway("x"), "x");
    }
}
