//! The HTTP API: token-protected REST for orders, devices and dead letters, plus `/healthz`,
//! `/readyz` and Prometheus `/metrics` (open, for scrapers on the gateway), and the operators'
//! console at `/` (static page; it logs in with the API token and uses the same REST calls).

mod auth;
mod console;
mod events;
mod handlers;

use crate::metrics::Metrics;
use crate::orders::{Change, Store};
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::Router;
use std::sync::{Arc, Mutex};
use tokio::sync::{broadcast, watch};

/// Largest request body accepted (an action's `who`/`why`).
pub const BODY_LIMIT: usize = 16 * 1024;

/// What the handlers share.
pub struct ApiState {
    /// The API's own connection to the order store.
    pub store: Mutex<Store>,
    /// Bearer token; `None` refuses every `/api` request.
    pub token: Option<String>,
    /// Counters.
    pub metrics: Arc<Metrics>,
    /// Order transitions made through the API are announced here too.
    pub changes: broadcast::Sender<Change>,
    /// What the console's live feed hears: `changes` in edge mode; in cluster mode every
    /// worker's (the fan-out over NATS).
    pub feed: broadcast::Sender<Change>,
    /// Wakes the notifier after an action queued notifications.
    pub outbox: watch::Sender<u64>,
    /// Recent readings per device (console).
    pub live: Arc<crate::live::Live>,
    /// Stalled or dead stages (the watchdog's verdict).
    pub health: Arc<crate::watchdog::Health>,
    /// The sites of the config (`[[site]]`), for the console's map.
    pub sites: Vec<crate::config::SiteConfig>,
    /// What the mode adds to `/readyz` and `/metrics` (a cluster worker's partitions); `None`:
    /// edge mode, ready while connected to its broker.
    pub readiness: Option<Arc<dyn crate::watchdog::Readiness>>,
}

/// The router.
pub fn router(state: Arc<ApiState>) -> Router {
    let api = Router::new()
        .route("/api/v1/orders", get(handlers::list))
        .route("/api/v1/orders/{id}", get(handlers::one))
        .route("/api/v1/orders/{id}/{action}", post(handlers::act))
        .route("/api/v1/devices", get(handlers::devices))
        .route("/api/v1/events", get(events::events))
        .route("/api/v1/sites", get(handlers::sites))
        .route("/api/v1/dead-letters", get(handlers::dead_letters))
        .route("/api/v1/dead-letters/{id}/replay", post(handlers::replay))
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), auth::require_token));
    Router::new()
        .route("/", get(console::page))
        .route("/console.js", get(console::script))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(handlers::ready))
        .route("/metrics", get(handlers::metrics))
        .merge(api)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(state)
}
