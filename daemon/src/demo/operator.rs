//! The demo's operator: works the red heart-rate order through the HTTP API (acknowledge, on
//! site, resolve) and leaves the plaza noise order alone so that it escalates.

use crate::orders::Change;
use std::time::Duration;
use tokio::sync::broadcast;

/// Acts on the first red `heart-rate-drop` order it sees.
pub async fn run(api: String, token: String, mut changes: broadcast::Receiver<Change>) {
    let http = reqwest::Client::new();
    let order = loop {
        match changes.recv().await {
            Ok(c) if c.rule == "heart-rate-drop" && c.event == crate::orders::OrderEventKind::Raised => {
                break c.order_id
            }
            Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => continue,
            Err(broadcast::error::RecvError::Closed) => return,
        }
    };
    let steps = [
        ("ack", "on my way"),
        ("on-site", "at the door with the community doctor"),
        ("resolve", "conscious, taken to hospital"),
    ];
    // The acknowledgement comes within a second, well inside the demo's 4 s red dispatch
    // deadline even on a loaded machine (at 3 s it sometimes missed it and the order escalated
    // first); the later steps keep a 3 s pace.
    for (i, (action, why)) in steps.into_iter().enumerate() {
        tokio::time::sleep(Duration::from_secs(if i == 0 { 1 } else { 3 })).await;
        let url = format!("{api}/api/v1/orders/{order}/{action}");
        let body = serde_json::json!({ "who": "grid-worker-wang", "why": why });
        match http.post(&url).bearer_auth(&token).json(&body).send().await {
            Ok(r) if r.status().is_success() => {}
            Ok(r) => tracing::warn!(%url, status = %r.status(), "operator action refused"),
            Err(e) => tracing::warn!(%url, error = %e, "operator action failed"),
        }
    }
}
