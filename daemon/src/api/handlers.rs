//! Request handlers.

use super::ApiState;
use crate::clock::now_ms;
use crate::orders::{Action, ActionError, Filter, State as OrderState, Store, StoreError};
use crate::rules::Colour;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

type Shared = State<Arc<ApiState>>;

fn error(status: StatusCode, message: impl std::fmt::Display) -> Response {
    (status, Json(json!({ "error": message.to_string() }))).into_response()
}

/// Runs `f` on the store on a blocking thread: SQLite file I/O and the PostgreSQL client block,
/// and must not hold up the runtime's workers (the PostgreSQL client cannot run on them at all).
async fn with_store<R: Send + 'static>(
    s: &Arc<ApiState>,
    f: impl FnOnce(&mut Store) -> Result<R, StoreError> + Send + 'static,
) -> Result<R, StoreError> {
    let s = s.clone();
    tokio::task::spawn_blocking(move || f(&mut s.store.lock().unwrap_or_else(|p| p.into_inner())))
        .await
        .unwrap_or_else(|e| Err(StoreError::Corrupt(format!("store task failed: {e}"))))
}

fn store_error(e: StoreError) -> Response {
    match e {
        StoreError::Action(ActionError::NotFound(_)) => error(StatusCode::NOT_FOUND, e),
        StoreError::Action(_) => error(StatusCode::CONFLICT, e),
        e => {
            tracing::error!(error = %e, "api: store error");
            error(StatusCode::INTERNAL_SERVER_ERROR, "store error")
        }
    }
}

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
    let (colours_open, outbox, by_state, next_due) = with_store(&s, |store| {
        Ok((
            store.open_by_colour().unwrap_or_default(),
            store.outbox_counts().unwrap_or_default(),
            store.orders_by_colour_state().unwrap_or_default(),
            store.next_outbox_ms().unwrap_or_default(),
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
}

/// `GET /api/v1/orders?state=&colour=&site=&open=true`.
pub async fn list(State(s): Shared, Query(q): Query<ListQuery>) -> Response {
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
    let filter = Filter { state, colour, site: q.site, open: q.open };
    let result = with_store(&s, move |store| store.orders(&filter)).await;
    match result {
        Ok(orders) => Json(json!({ "now_ms": now_ms(), "orders": orders })).into_response(),
        Err(e) => store_error(e),
    }
}

/// `GET /api/v1/orders/{id}`: the order and its events.
pub async fn one(State(s): Shared, Path(id): Path<i64>) -> Response {
    let result = with_store(&s, move |store| store.order(id)).await;
    match result {
        Ok(Some((order, events))) => Json(json!({ "order": order, "events": events })).into_response(),
        Ok(None) => error(StatusCode::NOT_FOUND, format!("no order {id}")),
        Err(e) => store_error(e),
    }
}

/// Body of an action (optional).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActBody {
    #[serde(default)]
    who: Option<String>,
    #[serde(default)]
    why: Option<String>,
}

/// `POST /api/v1/orders/{id}/{ack|dispatch|on-site|resolve|close}`.
pub async fn act(
    State(s): Shared,
    Path((id, action)): Path<(i64, String)>,
    body: Option<Json<ActBody>>,
) -> Response {
    let Some(action) = Action::parse(&action) else {
        return error(StatusCode::NOT_FOUND, "unknown action (ack, dispatch, on-site, resolve, close)");
    };
    let body = body.map(|Json(b)| b).unwrap_or_default();
    let who = body.who.unwrap_or_else(|| "api".into());
    let why = body.why.unwrap_or_default();
    let result = with_store(&s, move |store| store.act(id, action, &who, &why, now_ms() as i64)).await;
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
pub async fn dead_letters(State(s): Shared) -> Response {
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
pub async fn replay(State(s): Shared, Path(id): Path<i64>) -> Response {
    let result = with_store(&s, move |store| store.replay(id, now_ms() as i64)).await;
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
pub async fn devices(State(s): Shared, Query(q): Query<DeviceQuery>) -> Response {
    Json(json!({ "now_ms": now_ms(), "devices": s.live.snapshot(q.site.as_deref()) })).into_response()
}

/// `GET /api/v1/sites`: the configured sites (`[[site]]`) with their place and street.
pub async fn sites(State(s): Shared) -> Response {
    Json(json!({ "sites": s.sites })).into_response()
}
