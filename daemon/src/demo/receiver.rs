//! The demo's webhook receiver: checks the Standard Webhooks signature of every delivery
//! ([`crate::notify::sign`]) and counts them.

use crate::notify::sign;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

/// Delivery counts.
#[derive(Debug, Default)]
pub struct Counts {
    /// Deliveries with a valid signature.
    pub valid: AtomicU64,
    /// Deliveries with a missing or wrong signature (rejected with 401).
    pub invalid: AtomicU64,
}

/// Serves on a free loopback port; returns its base URL and the counts.
pub async fn start(secret: String) -> std::io::Result<(String, Arc<Counts>)> {
    let counts = Arc::new(Counts::default());
    let state = (Arc::new(secret), counts.clone());
    let app = Router::new().route("/{receiver}", post(receive)).with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok((url, counts))
}

async fn receive(
    State((secret, counts)): State<(Arc<String>, Arc<Counts>)>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let h = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let now_s = crate::clock::now_ms() / 1000;
    let verdict =
        sign::verify(&secret, h("webhook-id"), h("webhook-timestamp"), h("webhook-signature"), &body, now_s);
    if verdict.is_ok() {
        counts.valid.fetch_add(1, Relaxed);
        StatusCode::NO_CONTENT
    } else {
        counts.invalid.fetch_add(1, Relaxed);
        StatusCode::UNAUTHORIZED
    }
}
