//! Bearer-token check, in constant time.

use super::ApiState;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

/// Rejects requests without the configured bearer token (401).
pub async fn require_token(State(state): State<Arc<ApiState>>, req: Request, next: Next) -> Response {
    let given = req
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match (&state.token, given) {
        (Some(want), Some(got)) if constant_time_eq(want.as_bytes(), got.as_bytes()) => next.run(req).await,
        (None, _) => (StatusCode::SERVICE_UNAVAILABLE, "no API token configured\n").into_response(),
        _ => (StatusCode::UNAUTHORIZED, [("www-authenticate", "Bearer")], "missing or wrong token\n")
            .into_response(),
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
    #[test]
    fn constant_time_eq_is_eq() {
        use super::constant_time_eq as eq;
        assert!(eq(b"secret", b"secret"));
        assert!(!eq(b"secret", b"secreT"));
        assert!(!eq(b"secret", b"secret2"));
        assert!(!eq(b"secret", b""));
    }
}
