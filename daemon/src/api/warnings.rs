//! Public warnings over HTTP: an operator's 一键预警 from a red order (the console asks first),
//! and the list of warnings with every send's result (numbers masked).

use super::auth::need;
use super::{error, store_error, with_store, ApiState};
use crate::access::{Perm, Principal};
use crate::clock::now_ms;
use crate::orders::warnings::Refusal;
use axum::extract::{Extension, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;
use std::sync::Arc;

type Shared = State<Arc<ApiState>>;

/// `POST /api/v1/orders/{id}/warn`: warns the residents of the order's hazard site (once).
pub async fn warn(State(s): Shared, Extension(p): Extension<Principal>, Path(id): Path<i64>) -> Response {
    if let Err(r) = need(&p, Perm::Warn) {
        return r;
    }
    // Someone limited to streets warns only on theirs (the order must be in their view).
    let visible = match with_store(&s, move |st| st.order(id)).await {
        Ok(Some((o, _))) => p.sees_street(super::street_of(&s, &o.site)),
        Ok(None) => false,
        Err(e) => return store_error(e),
    };
    if !visible {
        return error(StatusCode::NOT_FOUND, format!("no order {id}"));
    }
    let who = p.name.clone();
    match with_store(&s, move |st| st.warn(id, &who, now_ms() as i64)).await {
        Ok(Ok(w)) => (StatusCode::CREATED, Json(json!({ "warning": w }))).into_response(),
        Ok(Err(r @ Refusal::NoOrder(_))) => error(StatusCode::NOT_FOUND, r),
        Ok(Err(r @ Refusal::Already(w))) => {
            (StatusCode::CONFLICT, Json(json!({ "error": r.to_string(), "warning": w }))).into_response()
        }
        Ok(Err(r)) => error(StatusCode::CONFLICT, r),
        Err(e) => store_error(e),
    }
}

/// `GET /api/v1/warnings`: the latest 50 with their sends (numbers masked).
pub async fn list(State(s): Shared, Extension(p): Extension<Principal>) -> Response {
    if let Err(r) = need(&p, Perm::Read) {
        return r;
    }
    if p.own_only() {
        return Json(json!({ "warnings": [] })).into_response();
    }
    match with_store(&s, |st| st.warnings_recent(50)).await {
        Ok(list) => {
            let list: Vec<_> = list
                .into_iter()
                .filter(|(w, _)| p.sees_street(super::street_of(&s, &w.site)))
                .map(|(w, sends)| {
                    let count = |st: &str| sends.iter().filter(|x| x.status == st).count();
                    let (sent, failed, pending) = (count("sent"), count("failed"), count("pending"));
                    let sends: Vec<_> = sends
                        .into_iter()
                        .map(|x| json!({ "channel": x.channel,
                            // Residents' numbers masked; the broadcast's name is no one's.
                            "to": if x.channel == "sms" { crate::warn::masked(&x.recipient) } else { x.recipient.clone() },
                            "status": x.status,
                            "attempts": x.attempts, "detail": x.detail, "sent_ms": x.sent_ms }))
                        .collect();
                    json!({ "warning": w, "sent": sent, "failed": failed, "pending": pending, "sends": sends })
                })
                .collect();
            Json(json!({ "warnings": list })).into_response()
        }
        Err(e) => store_error(e),
    }
}
