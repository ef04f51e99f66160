//! The demo's people at work: the dispatcher sends the red heart-rate order to grid worker Wang,
//! who acknowledges it, reports on site and resolves it, each through the HTTP API with their
//! own token (so the order's events and the audit log name them); the plaza noise order is left
//! alone so that it escalates.

use crate::orders::Change;
use std::time::Duration;
use tokio::sync::broadcast;

/// The dispatcher (an operator).
pub const DISPATCHER: &str = "dispatcher-zhao";
/// The grid worker (field).
pub const WORKER: &str = "grid-worker-wang";

/// A personal token for `name`, as `gridsentry login` gets one.
async fn token(http: &reqwest::Client, api: &str, name: &str, password: &str) -> Option<String> {
    let body = serde_json::json!({ "name": name, "password": password, "label": "demo", "days": 1 });
    let r = http.post(format!("{api}/api/v1/tokens")).json(&body).send().await.ok()?;
    let v: serde_json::Value = r.json().await.ok()?;
    v["token"].as_str().map(str::to_string)
}

/// Acts on the first red `heart-rate-drop` order it sees; `logins` are the dispatcher's and the
/// worker's names and passwords.
pub async fn run(api: String, logins: Vec<(&'static str, String)>, mut changes: broadcast::Receiver<Change>) {
    let http = reqwest::Client::new();
    let mut tokens = std::collections::HashMap::new();
    for (name, password) in &logins {
        match token(&http, &api, name, password).await {
            Some(t) => {
                tokens.insert(*name, t);
            }
            None => tracing::warn!(name, "demo: could not log in"),
        }
    }
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
        (DISPATCHER, "dispatch", "nearest grid worker", 1000),
        (WORKER, "ack", "on my way", 500),
        (WORKER, "on-site", "at the door with the community doctor", 3000),
        (WORKER, "resolve", "conscious, taken to hospital", 3000),
    ];
    // Dispatch within a second and the acknowledgement half a second later, well inside the
    // demo's 4 s red dispatch deadline even on a loaded machine; the later steps keep a 3 s pace.
    for (who, action, why, wait_ms) in steps {
        tokio::time::sleep(Duration::from_millis(wait_ms)).await;
        let url = format!("{api}/api/v1/orders/{order}/{action}");
        let mut body = serde_json::json!({ "why": why });
        if action == "dispatch" {
            body["to"] = serde_json::json!(WORKER);
        }
        let token = tokens.get(who).map_or("", String::as_str);
        match http.post(&url).bearer_auth(token).json(&body).send().await {
            Ok(r) if r.status().is_success() => {}
            Ok(r) => tracing::warn!(%url, status = %r.status(), "operator action refused"),
            Err(e) => tracing::warn!(%url, error = %e, "operator action failed"),
        }
    }
}
