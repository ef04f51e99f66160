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
            Ok(c) if c.rule == "heart-rate-drop" && c.event == "raised" => break c.order_id,
            Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => continue,
            Err(broadcast::error::RecvError::Closed) => return,
        }
    };
    let steps = [
        ("ack", "on my way"),
        ("on-site", "at the door with the community doctor"),
        ("resolve", "conscious, taken to hospital"),
    ];
    for (action, why) in steps {
        tokio::time::sleep(Duration::from_secs(3)).await;
        let url = format!("{api}/api/v1/orders/{order}/{action}");
        let body = serde_json::json!({ "who": "grid-worker-wang", "why": why });
        match http.post(&url).bearer_auth(&token).json(&body).send().await {
            Ok(r) if r.status().is_success() => {}
            Ok(r) => tracing::warn!(%url, status = %r.status(), "operator action refused"),
            Err(e) => tracing::warn!(%url, error = %e, "operator action failed"),
        }
    }
}
