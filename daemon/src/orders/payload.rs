//! The generic webhook payload, version 1 (documented in docs/operating.md, Webhooks). It lives
//! next to the outbox: a transition and its payload are written in one transaction, and the
//! order store needs nothing from the notifier.

use super::{Change, Names, Order};
use serde_json::json;

/// The payload's schema name and version.
pub const SCHEMA: &str = "gridsentry.order.v1";

/// The JSON body for one order transition: times with the offset of `names`' zone, `title` from
/// its names.
pub fn payload(order: &Order, change: &Change, evidence: Option<&str>, names: &Names) -> String {
    let evidence: Option<serde_json::Value> = evidence.and_then(|e| serde_json::from_str(e).ok());
    json!({
        "schema": SCHEMA,
        "idempotency_key": format!("{}-{}", order.id, order.seq),
        "order_id": order.id,
        "transition": order.seq,
        "event": change.event,
        "state": order.state.as_str(),
        "colour": order.colour.as_str(),
        "tier": order.tier,
        "rule": order.rule,
        "site": order.site,
        "street": names.street(&order.site),
        "device": order.device,
        "subject": order.subject,
        "title": names.title(&order.rule, &order.site),
        "summary": change.summary,
        "summary_zh": change.summary_zh,
        "late": order.late,
        "at": change.at,
        "opened_at": names.local(order.opened_ms),
        "forecast": order.forecast.map(|f| json!({
            "failure_at": names.local(f.failure_ms as i64),
            "r2": f.r2,
            "points": f.points,
        })),
        "evidence": evidence,
        "incident": names.grouping().membership(order, names).map(|m| json!({
            "id": order.incident,
            "key": m.key,
            "label": m.label,
            "first": order.incident == Some(order.id),
            "digest_s": m.digest_s,
        })),
    })
    .to_string()
}
