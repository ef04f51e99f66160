//! People (admins) and the audit log (auditors) over HTTP. The CLI's `gridsentry people` does
//! the same on the gateway itself, without the API.

use super::auth::need;
use super::{error, store_error, with_store, ApiState};
use crate::access::{self, Perm, Principal, Role};
use crate::clock::now_ms;
use crate::orders::people::Change;
use axum::extract::{Extension, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;

type Shared = State<Arc<ApiState>>;

/// A fresh password and its hash, hashed off the runtime's threads (Argon2 takes tens of ms).
async fn new_password() -> Option<(String, String)> {
    let password = access::new_password();
    let pw = password.clone();
    let hash = tokio::task::spawn_blocking(move || access::hash_password(&pw)).await.ok()?.ok()?;
    Some((password, hash))
}

/// `GET /api/v1/people`.
pub async fn list(State(s): Shared, Extension(p): Extension<Principal>) -> Response {
    if let Err(r) = need(&p, Perm::People) {
        return r;
    }
    match with_store(&s, |st| st.people(now_ms() as i64)).await {
        Ok(people) => Json(json!({ "people": people })).into_response(),
        Err(e) => store_error(e),
    }
}

/// Body of `POST /api/v1/people`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewPerson {
    name: String,
    role: String,
    #[serde(default)]
    streets: Vec<String>,
}

/// `POST /api/v1/people`: adds a person; the answer carries their first password, once.
pub async fn add(State(s): Shared, Extension(p): Extension<Principal>, Json(b): Json<NewPerson>) -> Response {
    if let Err(r) = need(&p, Perm::People) {
        return r;
    }
    let Some(role) = Role::parse(&b.role) else {
        return error(StatusCode::BAD_REQUEST, "role is viewer, field, operator, admin or auditor");
    };
    if let Err(e) = access::check_name(&b.name) {
        return error(StatusCode::BAD_REQUEST, e);
    }
    if let Some(bad) = b.streets.iter().find(|st| access::check_name(st).is_err()) {
        return error(
            StatusCode::BAD_REQUEST,
            format!("`{}` is not a street id", crate::logsafe::escape(bad, 64)),
        );
    }
    let Some((password, hash)) = new_password().await else {
        return error(StatusCode::INTERNAL_SERVER_ERROR, "password hashing failed");
    };
    let name = b.name.clone();
    match with_store(&s, move |st| st.person_add(&b.name, role, &b.streets, &hash, &p.name, now_ms() as i64))
        .await
    {
        Ok(()) => (StatusCode::CREATED, Json(json!({ "name": name, "role": role, "password": password })))
            .into_response(),
        Err(e) => store_error(e),
    }
}

/// `POST /api/v1/people/{name}/{disable|enable|unlock|revoke|reset}` (`reset` answers with the
/// new password, once).
pub async fn change(
    State(s): Shared,
    Extension(p): Extension<Principal>,
    Path((name, change)): Path<(String, String)>,
) -> Response {
    if let Err(r) = need(&p, Perm::People) {
        return r;
    }
    let mut password = None;
    let change = match change.as_str() {
        "disable" => Change::Disable,
        "enable" => Change::Enable,
        "unlock" => Change::Unlock,
        "revoke" => Change::Revoke,
        "reset" => {
            let Some((pw, hash)) = new_password().await else {
                return error(StatusCode::INTERNAL_SERVER_ERROR, "password hashing failed");
            };
            password = Some(pw);
            Change::Reset(hash)
        }
        _ => return error(StatusCode::NOT_FOUND, "unknown change (disable, enable, unlock, revoke, reset)"),
    };
    let who = name.clone();
    match with_store(&s, move |st| st.person_change(&who, &change, &p.name, now_ms() as i64)).await {
        Ok(()) => Json(json!({ "name": name, "password": password })).into_response(),
        Err(e) => store_error(e),
    }
}

/// Query of `GET /api/v1/audit`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    #[serde(default)]
    after: i64,
    #[serde(default)]
    since_ms: Option<i64>,
    #[serde(default)]
    limit: Option<i64>,
}

/// `GET /api/v1/audit?after=ID&since_ms=&limit=`: rows after `after`, oldest first (at most
/// 1000 a page; `next_after` continues).
pub async fn audit(
    State(s): Shared,
    Extension(p): Extension<Principal>,
    Query(q): Query<AuditQuery>,
) -> Response {
    if let Err(r) = need(&p, Perm::Audit) {
        return r;
    }
    let limit = q.limit.unwrap_or(1000).clamp(1, 1000);
    let since = q.since_ms.unwrap_or(i64::MIN);
    match with_store(&s, move |st| st.audit_rows(q.after, since, limit)).await {
        Ok(rows) => {
            let next = rows.last().map_or(q.after, |r| r.id);
            Json(json!({ "rows": rows, "next_after": next })).into_response()
        }
        Err(e) => store_error(e),
    }
}
