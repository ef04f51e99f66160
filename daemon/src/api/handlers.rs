//! Request handlers.

use super::auth::need;
use super::{error, store_error, street_of, with_store, ApiState};
use crate::access::{Perm, Principal, Role};
use crate::clock::now_ms;
use crate::orders::{Act, Action, Filter, Order, State as OrderState};
use crate::rules::Colour;
use axum::extract::{Extension, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

type Shared = State<Arc<ApiState>>;

/// `GET /readyz`: 200 once connected to the broker and subscribed, and while no stage is
/// stalling or dead.
pub async fn ready(State(s): Shared) -> Response {
    if let Some(problem) = s.health.problem() {
        return (StatusCode::SERVICE_UNAVAILABLE, format!("{problem}\n")).into_response();
    }
    if let Some(c) = &s.readiness {
        return match c.readiness() {
            Ok(owned) => (StatusCode::OK, format!("{owned}\n")).into_response(),
            Err(why) => (StatusCode::SERVICE_UNAVAILABLE, format!("{why}\n")).into_response(),
        };
    }
    match s.metrics.mqtt_connected.load(Relaxed) {
        1 => (StatusCode::OK, "ready\n").into_response(),
        _ => (StatusCode::SERVICE_UNAVAILABLE, "not connected to the broker\n").into_response(),
    }
}

/// `GET /metrics`.
pub async fn metrics(State(s): Shared) -> Response {
    let (colours_open, outbox, by_state, next_due, ota) = with_store(&s, |store| {
        Ok((
            store.open_by_colour().unwrap_or_default(),
            store.outbox_counts().unwrap_or_default(),
            store.orders_by_colour_state().unwrap_or_default(),
            store.next_outbox_ms().unwrap_or_default(),
            store.ota_counts().unwrap_or_default(),
        ))
    })
    .await
    .unwrap_or_default();
    let count = |rows: &[(String, i64)], k: &str| rows.iter().find(|(r, _)| r == k).map_or(0, |(_, n)| *n);
    let colours = [Colour::Red, Colour::Orange, Colour::Yellow, Colour::Blue];
    let scrape = crate::metrics::Scrape {
        open: colours.iter().map(|c| (c.as_str(), count(&colours_open, c.as_str()))).collect(),
        outbox: ["pending", "delivered", "dead"].map(|st| (st, count(&outbox, st))).to_vec(),
        // Every colour and state, zeros included: a dashboard sees 0, not a missing series.
        orders: colours
            .iter()
            .flat_map(|c| OrderState::ALL.into_iter().map(move |st| (c.as_str(), st.as_str())))
            .map(|(c, st)| {
                (c, st, by_state.iter().find(|(bc, bs, _)| bc == c && bs == st).map_or(0, |r| r.2))
            })
            .collect(),
        ota: crate::ota::waves::STATES.map(|st| (st, count(&ota, st))).to_vec(),
        outbox_lag_s: next_due.map_or(0, |due| (now_ms() as i64 - due).max(0) / 1000),
        cluster: s.readiness.as_ref().and_then(|c| c.scrape()),
        ready: s.health.problem().is_none()
            && match &s.readiness {
                Some(c) => c.readiness().is_ok(),
                None => s.metrics.mqtt_connected.load(Relaxed) == 1,
            },
    };
    let body = crate::metrics::render(&s.metrics, &scrape);
    ([("content-type", crate::metrics::CONTENT_TYPE)], body).into_response()
}

/// Query of `GET /api/v1/orders`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    state: Option<String>,
    colour: Option<String>,
    site: Option<String>,
    #[serde(default)]
    open: bool,
    incident: Option<i64>,
}

/// `GET /api/v1/orders?state=&colour=&site=&open=true&incident=`.
pub async fn list(
    State(s): Shared,
    Extension(p): Extension<Principal>,
    Query(q): Query<ListQuery>,
) -> Response {
    if let Err(r) = need(&p, Perm::Read) {
        return r;
    }
    let state = match q.state.as_deref().map(OrderState::parse) {
        Some(None) => return error(StatusCode::BAD_REQUEST, "unknown state"),
        other => other.flatten(),
    };
    let colour = match q.colour.as_deref() {
        None => None,
        Some(c) => match serde_json::from_value::<Colour>(json!(c)) {
            Ok(c) => Some(c),
            Err(_) => return error(StatusCode::BAD_REQUEST, "unknown colour"),
        },
    };
    // A field worker's list: the orders dispatched to them.
    let assignee = p.own_only().then(|| p.name.clone());
    let filter = Filter { state, colour, site: q.site, open: q.open, assignee, incident: q.incident };
    let result = with_store(&s, move |store| store.orders(&filter)).await;
    match result {
        Ok(mut orders) => {
            orders.retain(|o| visible(&s, &p, o));
            Json(json!({ "now_ms": now_ms(), "orders": orders })).into_response()
        }
        Err(e) => store_error(e),
    }
}

/// `GET /api/v1/orders/{id}`: the order and its events.
pub async fn one(State(s): Shared, Extension(p): Extension<Principal>, Path(id): Path<i64>) -> Response {
    if let Err(r) = need(&p, Perm::Read) {
        return r;
    }
    let result = with_store(&s, move |store| store.order(id)).await;
    match result {
        Ok(Some((order, events))) if visible(&s, &p, &order) => {
            Json(json!({ "order": order, "events": events })).into_response()
        }
        Ok(_) => error(StatusCode::NOT_FOUND, format!("no order {id}")),
        Err(e) => store_error(e),
    }
}

/// Whether `p` may see order `o`: within their streets, and a field worker's own.
fn visible(s: &ApiState, p: &Principal, o: &Order) -> bool {
    p.sees_street(street_of(s, &o.site)) && p.sees_assignee(o.assignee.as_deref())
}

/// Longest `why` accepted, characters.
const WHY_MAX: usize = 2000;

/// Body of an action (optional). Who acts is the person logged in, never a field of the body.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActBody {
    #[serde(default)]
    why: Option<String>,
    /// `dispatch`: the person it goes to.
    #[serde(default)]
    to: Option<String>,
}

/// `POST /api/v1/orders/{id}/{ack|dispatch|on-site|resolve|close}`.
pub async fn act(
    State(s): Shared,
    Extension(p): Extension<Principal>,
    Path((id, action)): Path<(i64, String)>,
    body: Option<Json<ActBody>>,
) -> Response {
    let Some(action) = Action::parse(&action) else {
        return error(StatusCode::NOT_FOUND, "unknown action (ack, dispatch, on-site, resolve, close)");
    };
    // Field workers ack, report on site and resolve their own orders; dispatching and closing
    // are an operator's.
    let own_only = p.own_only();
    let field_may = matches!(action, Action::Ack | Action::OnSite | Action::Resolve);
    if let Err(r) = need(&p, if field_may { Perm::ActOwn } else { Perm::ActAny }) {
        return r;
    }
    let body = body.map(|Json(b)| b).unwrap_or_default();
    let why = body.why.unwrap_or_default();
    if why.chars().count() > WHY_MAX {
        return error(StatusCode::BAD_REQUEST, format!("`why` is longer than {WHY_MAX} characters"));
    }
    // A grid worker closing the loop says what was done (闭环: the note is the record).
    if action == Action::Resolve && p.role == Role::Field && why.trim().is_empty() {
        return error(StatusCode::UNPROCESSABLE_ENTITY, "a note is required: say what was done (`why`)");
    }
    if body.to.is_some() && action != Action::Dispatch {
        return error(StatusCode::BAD_REQUEST, "`to` goes with dispatch only");
    }
    if !p.streets.is_empty() {
        // Within their streets only (an order elsewhere does not exist for them).
        let order = with_store(&s, move |store| store.order(id)).await;
        match order {
            Ok(Some((o, _))) if p.sees_street(street_of(&s, &o.site)) => {}
            Ok(_) => return error(StatusCode::NOT_FOUND, format!("no order {id}")),
            Err(e) => return store_error(e),
        }
    }
    let result = with_store(&s, move |store| {
        let a = Act { who: &p.name, why: &why, to: body.to.as_deref(), own_only };
        store.act_as(id, action, &a, now_ms() as i64)
    })
    .await;
    match result {
        Ok(change) => {
            s.metrics.transitions.fetch_add(1, Relaxed);
            s.outbox.send_modify(|n| *n += 1);
            let _ = s.changes.send(change.clone());
            Json(change).into_response()
        }
        Err(e) => store_error(e),
    }
}

/// `GET /api/v1/dead-letters`.
pub async fn dead_letters(State(s): Shared, Extension(p): Extension<Principal>) -> Response {
    if let Err(r) = need(&p, Perm::DeadLetters) {
        return r;
    }
    let result = with_store(&s, |store| store.dead_letters()).await;
    match result {
        Ok(rows) => {
            let rows: Vec<_> = rows
                .iter()
                .map(|r| json!({ "id": r.id, "order_id": r.order_id, "transition": r.seq, "receiver": r.receiver, "attempts": r.attempts, "last_error": r.last_error }))
                .collect();
            Json(json!({ "dead_letters": rows })).into_response()
        }
        Err(e) => store_error(e),
    }
}

/// `POST /api/v1/dead-letters/{id}/replay`.
pub async fn replay(State(s): Shared, Extension(p): Extension<Principal>, Path(id): Path<i64>) -> Response {
    if let Err(r) = need(&p, Perm::DeadLetters) {
        return r;
    }
    let who = p.name.clone();
    let result = with_store(&s, move |store| {
        let replayed = store.replay(id, now_ms() as i64)?;
        if replayed {
            let subject = format!("dead letter {id}");
            let e = crate::orders::AuditEntry {
                who: &who,
                action: "dead-letter.replay",
                subject: &subject,
                detail: "",
            };
            store.audit(e, now_ms() as i64)?;
        }
        Ok(replayed)
    })
    .await;
    match result {
        Ok(true) => {
            s.outbox.send_modify(|n| *n += 1);
            Json(json!({ "replayed": id })).into_response()
        }
        Ok(false) => error(StatusCode::NOT_FOUND, format!("no dead letter {id}")),
        Err(e) => store_error(e),
    }
}

/// Query of `GET /api/v1/devices`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceQuery {
    site: Option<String>,
}

/// `GET /api/v1/devices?site=`: every device heard since start, with recent values.
pub async fn devices(
    State(s): Shared,
    Extension(p): Extension<Principal>,
    Query(q): Query<DeviceQuery>,
) -> Response {
    if let Err(r) = need(&p, Perm::Read) {
        return r;
    }
    let mut devices = s.live.snapshot(q.site.as_deref());
    devices.retain(|d| p.sees_street(street_of(&s, &d.site)));
    Json(json!({ "now_ms": now_ms(), "devices": devices })).into_response()
}

/// `GET /api/v1/sites`: the configured sites (`[[site]]`) with their place and street.
pub async fn sites(State(s): Shared, Extension(p): Extension<Principal>) -> Response {
    if let Err(r) = need(&p, Perm::Read) {
        return r;
    }
    let sites: Vec<_> = s
        .sites
        .iter()
        .filter(|c| p.sees_street(street_of(&s, &c.id)))
        .map(|c| {
            let mut v = json!(c);
            // A hazard site: its red orders may warn residents, along this route.
            v["warning_route"] = json!(s.warnings.iter().find(|(site, _)| *site == c.id).map(|(_, r)| r));
            v
        })
        .collect();
    Json(json!({ "sites": sites })).into_response()
}
