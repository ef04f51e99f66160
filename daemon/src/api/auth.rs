//! Who is asking: a console session (cookie `gs_session`), a person's API token (`Authorization:
//! Bearer`), or the machines' `[daemon] legacy_token` when one is configured. The person found
//! rides along as a request extension; each handler asks for the permission it needs, so the
//! role × endpoint table lives in one place per endpoint and `access::Role::allows`.

use super::{with_store, ApiState};
use crate::access::{self, Perm, Principal};
use crate::clock::now_ms;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;
use std::sync::Arc;

/// The console's session cookie.
pub const COOKIE: &str = "gs_session";

/// The credential a request came with (its hash), for logging out.
#[derive(Debug, Clone)]
pub struct Credential(pub Option<String>);

/// The session cookie's value, if any.
pub fn session_cookie(h: &HeaderMap) -> Option<&str> {
    h.get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v)
}

fn bearer(h: &HeaderMap) -> Option<&str> {
    h.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "))
}

/// Refuses requests without a valid session or token (401); passes on the person.
pub async fn require_person(State(state): State<Arc<ApiState>>, mut req: Request, next: Next) -> Response {
    let secret = session_cookie(req.headers()).or_else(|| bearer(req.headers())).map(str::to_string);
    let Some(secret) = secret else {
        return unauthorized(
            "log in first (POST /api/v1/login, or a personal token from `gridsentry login`)",
        );
    };
    if let Some(legacy) = &state.legacy_token {
        if bearer(req.headers()).is_some_and(|b| constant_time_eq(legacy.as_bytes(), b.as_bytes())) {
            req.extensions_mut().insert(Principal::machine());
            req.extensions_mut().insert(Credential(None));
            return next.run(req).await;
        }
    }
    let hash = access::secret_hash(&secret);
    let h = hash.clone();
    match with_store(&state, move |s| s.principal(&h, now_ms() as i64)).await {
        Ok(Some((person, _kind))) => {
            req.extensions_mut().insert(person);
            req.extensions_mut().insert(Credential(Some(hash)));
            next.run(req).await
        }
        Ok(None) => unauthorized("session or token unknown, expired or revoked: log in again"),
        Err(e) => {
            tracing::error!(error = %e, "api: cannot look up a session");
            (StatusCode::SERVICE_UNAVAILABLE, Json(json!({ "error": "store unavailable" }))).into_response()
        }
    }
}

fn unauthorized(why: &str) -> Response {
    (StatusCode::UNAUTHORIZED, [("www-authenticate", "Bearer")], Json(json!({ "error": why })))
        .into_response()
}

/// 403 unless `p` may do `perm`.
#[allow(clippy::result_large_err)]
pub fn need(p: &Principal, perm: Perm) -> Result<(), Response> {
    match p.role.allows(perm) {
        true => Ok(()),
        false => Err((
            StatusCode::FORBIDDEN,
            Json(json!({ "error": format!("the {} role may not do this", p.role.as_str()) })),
        )
            .into_response()),
    }
}

/// Compares without an early exit on the first differing byte.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = a.len() ^ b.len();
    for (i, x) in a.iter().enumerate() {
        diff |= usize::from(x ^ b.get(i).copied().unwrap_or(0));
    }
    diff == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_time_eq_is_eq() {
        let eq = constant_time_eq;
        assert!(eq(b"secret", b"secret"));
        assert!(!eq(b"secret", b"secreT"));
        assert!(!eq(b"secret", b"secret2"));
        assert!(!eq(b"secret", b""));
    }

    #[test]
    fn the_session_cookie_is_found_among_others() {
        let mut h = HeaderMap::new();
        h.append(header::COOKIE, "a=1; gs_session=abc".parse().unwrap());
        assert_eq!(session_cookie(&h), Some("abc"));
        h.clear();
        h.append(header::COOKIE, "gs_sessionx=1".parse().unwrap());
        assert_eq!(session_cookie(&h), None);
    }
}
