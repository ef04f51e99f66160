//! Incidents over HTTP: what storms the orders came in, for the console's incident list. An
//! incident's orders are `GET /api/v1/orders?incident=ID`.

use super::auth::need;
use super::{store_error, with_store, ApiState};
use crate::access::{Perm, Principal};
use axum::extract::{Extension, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;
use std::sync::Arc;

/// `GET /api/v1/incidents`: the latest 100 the person may see (their streets), newest first.
pub async fn list(State(s): State<Arc<ApiState>>, Extension(p): Extension<Principal>) -> Response {
    if let Err(r) = need(&p, Perm::Read) {
        return r;
    }
    if p.own_only() {
        // A field worker sees the orders dispatched to them, not the street's storms.
        return Json(json!({ "incidents": [] })).into_response();
    }
    match with_store(&s, |st| st.incidents(100)).await {
        Ok(mut list) => {
            list.retain(|i| p.sees_street((!i.street.is_empty()).then_some(i.street.as_str())));
            Json(json!({ "incidents": list })).into_response()
        }
        Err(e) => store_error(e),
    }
}
