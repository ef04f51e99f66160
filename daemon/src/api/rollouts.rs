//! Fleet updates over HTTP: the roll-outs with their progress, one roll-out device by device,
//! the fleet's versions, and pausing, resuming or cancelling a roll-out (admins; audited).
//! Creating one stays on the CLI (`gridsentry rollout create`), next to the offline signing.

use super::auth::need;
use super::{error, store_error, with_store, ApiState};
use crate::access::{Perm, Principal};
use crate::clock::now_ms;
use axum::extract::{Extension, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;
use std::sync::Arc;

type Shared = State<Arc<ApiState>>;

/// `GET /api/v1/rollouts`: the latest roll-outs, each with its devices counted by state.
pub async fn list(State(s): Shared, Extension(p): Extension<Principal>) -> Response {
    if let Err(r) = need(&p, Perm::Read) {
        return r;
    }
    if p.own_only() {
        return Json(json!({ "rollouts": [] })).into_response();
    }
    let r = with_store(&s, |st| {
        let mut out = Vec::new();
        for r in st.rollouts(false)? {
            let targets = st.rollout_targets(r.id)?;
            let counts: serde_json::Map<String, serde_json::Value> = crate::ota::waves::STATES
                .iter()
                .map(|k| (k.to_string(), json!(targets.iter().filter(|t| t.state == *k).count())))
                .collect();
            out.push(json!({ "rollout": r, "devices": targets.len(), "by_state": counts }));
        }
        Ok(out)
    })
    .await;
    match r {
        Ok(list) => Json(json!({ "rollouts": list })).into_response(),
        Err(e) => store_error(e),
    }
}

/// `GET /api/v1/rollouts/{id}`: one roll-out, its devices and their history.
pub async fn one(State(s): Shared, Extension(p): Extension<Principal>, Path(id): Path<i64>) -> Response {
    if let Err(r) = need(&p, Perm::Read) {
        return r;
    }
    if p.own_only() {
        return error(StatusCode::NOT_FOUND, format!("no rollout {id}"));
    }
    let r =
        with_store(&s, move |st| Ok((st.rollout(id)?, st.rollout_targets(id)?, st.rollout_log(id, None)?)))
            .await;
    match r {
        Ok((Some(r), targets, log)) => {
            Json(json!({ "rollout": r, "devices": targets, "log": log })).into_response()
        }
        Ok((None, ..)) => error(StatusCode::NOT_FOUND, format!("no rollout {id}")),
        Err(e) => store_error(e),
    }
}

/// `GET /api/v1/fleet`: every device that reported on `ota/state`: board, version, slot.
pub async fn fleet(State(s): Shared, Extension(p): Extension<Principal>) -> Response {
    if let Err(r) = need(&p, Perm::Read) {
        return r;
    }
    if p.own_only() {
        return Json(json!({ "devices": [] })).into_response();
    }
    match with_store(&s, |st| st.fleet()).await {
        Ok(list) => Json(json!({ "devices": list })).into_response(),
        Err(e) => store_error(e),
    }
}

/// `POST /api/v1/rollouts/{id}/{pause|resume|cancel}`.
pub async fn act(
    State(s): Shared,
    Extension(p): Extension<Principal>,
    Path((id, action)): Path<(i64, String)>,
) -> Response {
    if let Err(r) = need(&p, Perm::Fleet) {
        return r;
    }
    let (from, to): (&'static [&'static str], &'static str) = match action.as_str() {
        "pause" => (&["active"], "paused"),
        "resume" => (&["paused"], "active"),
        "cancel" => (&["active", "paused"], "cancelled"),
        _ => return error(StatusCode::NOT_FOUND, "actions: pause, resume, cancel"),
    };
    let why = format!("{action} by {}", p.name);
    match with_store(&s, move |st| st.rollout_status(id, from, to, &why, &p.name, now_ms() as i64)).await {
        Ok(true) => Json(json!({ "id": id, "status": to })).into_response(),
        Ok(false) => error(StatusCode::CONFLICT, format!("rollout {id} is not {}", from.join(" or "))),
        Err(e) => store_error(e),
    }
}
