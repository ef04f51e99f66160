//! Logging in and out: `POST /api/v1/login` (name and password → a session cookie for the
//! console), `POST /api/v1/tokens` (→ a personal API token for the CLI and scripts, shown once),
//! `POST /api/v1/logout`, `GET /api/v1/me`. Every attempt, success or not, is in the audit log.

use super::auth::{Credential, COOKIE};
use super::{error, store_error, with_store, ApiState};
use crate::access::{self, Principal};
use crate::clock::now_ms;
use crate::orders::people::{Issue, Outcome};
use axum::extract::{ConnectInfo, Extension, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

/// Body of a login or token request.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Login {
    name: String,
    password: String,
    /// Tokens: what it is for (shown in the audit log).
    #[serde(default)]
    label: Option<String>,
    /// Tokens: valid for this many days (default 90, at most 366).
    #[serde(default)]
    days: Option<i64>,
}

const REFUSED: &str = "wrong name or password (5 failures in a row lock a name for 15 minutes)";

/// Checks the password (rate-limited per address) and issues a credential of `kind`.
async fn sign_in(
    s: &Arc<ApiState>,
    peer: SocketAddr,
    body: Login,
    kind: &'static str,
) -> Result<(Principal, String, i64), Response> {
    if let Err(wait) = s.logins.attempt(peer.ip(), Instant::now()) {
        let r = (
            StatusCode::TOO_MANY_REQUESTS,
            [(header::RETRY_AFTER, wait.to_string())],
            Json(json!({ "error": "too many login attempts from this address; wait a minute" })),
        );
        return Err(r.into_response());
    }
    let Login { name, password, label, days } = body;
    let days = days.unwrap_or(access::TOKEN_DAYS);
    if !(1..=366).contains(&days) {
        return Err(error(StatusCode::BAD_REQUEST, "`days` is 1 to 366"));
    }
    let n = name.clone();
    let candidate = with_store(s, move |st| st.login_lookup(&n)).await.map_err(store_error)?;
    // Verify off the runtime's threads (Argon2 takes tens of ms); a wrong name costs the same.
    let matched = tokio::task::spawn_blocking(move || match candidate {
        Some(c) => access::verify_password(&password, &c.hash),
        None => {
            access::verify_nobody(&password);
            false
        }
    })
    .await
    .unwrap_or(false);
    let secret = access::new_secret();
    let now = now_ms() as i64;
    let expires = now + if kind == "token" { days * 86_400_000 } else { access::SESSION_MS };
    let hash = access::secret_hash(&secret);
    let label = crate::logsafe::escape(label.as_deref().unwrap_or(""), 80);
    let from = peer.ip().to_string();
    let outcome = with_store(s, move |st| {
        let issue = Issue { kind, hash: &hash, label: &label, expires_ms: expires };
        st.login_outcome(&name, matched, issue, &from, now)
    })
    .await
    .map_err(store_error)?;
    match outcome {
        Outcome::Issued(p) => Ok((p, secret, expires)),
        Outcome::Refused => Err(error(StatusCode::UNAUTHORIZED, REFUSED)),
    }
}

/// `POST /api/v1/login`: the console's session cookie (HttpOnly, SameSite=Strict, Secure over
/// TLS; 12 hours).
pub async fn login(
    State(s): State<Arc<ApiState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Json(body): Json<Login>,
) -> Response {
    match sign_in(&s, peer, body, "session").await {
        Ok((p, secret, _)) => {
            let secure = if s.secure_cookies { "; Secure" } else { "" };
            let cookie = format!(
                "{COOKIE}={secret}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{secure}",
                access::SESSION_MS / 1000
            );
            (
                [(header::SET_COOKIE, cookie)],
                Json(json!({ "name": p.name, "role": p.role, "streets": p.streets, "timezone": s.timezone })),
            )
                .into_response()
        }
        Err(r) => r,
    }
}

/// `POST /api/v1/tokens`: a personal API token, shown this once.
pub async fn token(
    State(s): State<Arc<ApiState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Json(body): Json<Login>,
) -> Response {
    match sign_in(&s, peer, body, "token").await {
        Ok((p, secret, expires)) => {
            Json(json!({ "name": p.name, "role": p.role, "token": secret, "expires_ms": expires }))
                .into_response()
        }
        Err(r) => r,
    }
}

/// `POST /api/v1/logout`: ends this session (or revokes this token).
pub async fn logout(
    State(s): State<Arc<ApiState>>,
    Extension(p): Extension<Principal>,
    Extension(c): Extension<Credential>,
) -> Response {
    let Some(hash) = c.0 else { return error(StatusCode::BAD_REQUEST, "the legacy token cannot log out") };
    match with_store(&s, move |st| st.revoke_one(&hash, &p.name, now_ms() as i64)).await {
        Ok(_) => {
            let clear = format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0");
            ([(header::SET_COOKIE, clear)], Json(json!({ "logged_out": true }))).into_response()
        }
        Err(e) => store_error(e),
    }
}

/// `GET /api/v1/me`: who this session belongs to, and the time zone people here read times in.
pub async fn me(State(s): State<Arc<ApiState>>, Extension(p): Extension<Principal>) -> Response {
    Json(json!({ "name": p.name, "role": p.role, "streets": p.streets, "timezone": s.timezone }))
        .into_response()
}
