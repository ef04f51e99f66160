//! The HTTP API: REST for orders, devices, dead letters, people and the audit log, open only to
//! a person who logged in (a console session or a personal token; see `auth`), plus
//! `/healthz`, `/readyz` and Prometheus `/metrics` (open, for scrapers on the gateway), and the
//! operators' console at `/` (a static page that logs in and uses the same REST calls).

mod auth;
mod console;
mod duty;
mod events;
mod handlers;
pub mod incidents;
mod limit;
mod people;
pub mod rollouts;
pub mod serve;
mod session;
pub mod silences;
pub mod warnings;

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
    /// `[daemon] legacy_token`: machines (healthchecks, scripts) acting as `legacy-token`
    /// with an operator's rights; `None` (the default): only people get in.
    pub legacy_token: Option<String>,
    /// Login attempts per client address.
    pub logins: limit::Limiter,
    /// Cookies get `Secure` (the API is served over TLS).
    pub secure_cookies: bool,
    /// `[daemon] timezone`: the console shows times in it.
    pub timezone: String,
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
    /// The hazard sites' evacuation routes (`[[warning]]`: site, route): the console offers
    /// 一键预警 on their red orders.
    pub warnings: Vec<(String, String)>,
    /// The rota (`[[duty]]`), for the console's dispatch picker.
    pub duty: Vec<crate::config::DutyConfig>,
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
        .route("/api/v1/duty", get(duty::duty))
        .route("/api/v1/dead-letters", get(handlers::dead_letters))
        .route("/api/v1/dead-letters/{id}/replay", post(handlers::replay))
        .route("/api/v1/me", get(session::me))
        .route("/api/v1/logout", post(session::logout))
        .route("/api/v1/people", get(people::list).post(people::add))
        .route("/api/v1/people/{name}/{change}", post(people::change))
        .route("/api/v1/audit", get(people::audit))
        .route("/api/v1/silences", get(silences::list).post(silences::add))
        .route("/api/v1/silences/{id}/expire", post(silences::expire))
        .route("/api/v1/incidents", get(incidents::list))
        .route("/api/v1/orders/{id}/warn", post(warnings::warn))
        .route("/api/v1/warnings", get(warnings::list))
        .route("/api/v1/rollouts", get(rollouts::list))
        .route("/api/v1/rollouts/{id}", get(rollouts::one))
        .route("/api/v1/rollouts/{id}/{action}", post(rollouts::act))
        .route("/api/v1/fleet", get(rollouts::fleet))
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), auth::require_person));
    let open = Router::new()
        .route("/api/v1/login", post(session::login))
        .route("/api/v1/tokens", post(session::token));
    Router::new()
        .route("/", get(console::page))
        .route("/console.js", get(console::script))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(handlers::ready))
        .route("/metrics", get(handlers::metrics))
        .merge(api)
        .merge(open)
        .layer(axum::middleware::from_fn_with_state(state.clone(), hsts))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(state)
}

fn error(status: axum::http::StatusCode, message: impl std::fmt::Display) -> axum::response::Response {
    use axum::response::IntoResponse;
    (status, axum::Json(serde_json::json!({ "error": message.to_string() }))).into_response()
}

/// Runs `f` on the store on a blocking thread: SQLite file I/O and the PostgreSQL client block,
/// and must not hold up the runtime's workers (the PostgreSQL client cannot run on them at all).
async fn with_store<R: Send + 'static>(
    s: &Arc<ApiState>,
    f: impl FnOnce(&mut Store) -> Result<R, crate::orders::StoreError> + Send + 'static,
) -> Result<R, crate::orders::StoreError> {
    let s = s.clone();
    tokio::task::spawn_blocking(move || f(&mut s.store.lock().unwrap_or_else(|p| p.into_inner())))
        .await
        .unwrap_or_else(|e| Err(crate::orders::StoreError::Corrupt(format!("store task failed: {e}"))))
}

fn store_error(e: crate::orders::StoreError) -> axum::response::Response {
    use crate::orders::{ActionError, StoreError};
    use axum::http::StatusCode;
    match e {
        StoreError::Action(ActionError::NotFound(_)) => error(StatusCode::NOT_FOUND, e),
        StoreError::Action(ActionError::NotYours(_)) => error(StatusCode::FORBIDDEN, e),
        StoreError::Action(ActionError::NoSuchPerson(_)) => error(StatusCode::BAD_REQUEST, e),
        StoreError::Action(_) => error(StatusCode::CONFLICT, e),
        StoreError::People(crate::orders::people::PeopleError::NotFound(_)) => {
            error(StatusCode::NOT_FOUND, e)
        }
        StoreError::People(_) => error(StatusCode::CONFLICT, e),
        e => {
            tracing::error!(error = %e, "api: store error");
            error(StatusCode::INTERNAL_SERVER_ERROR, "store error")
        }
    }
}

/// The street of site `site` (`None`: not a configured site, or no street given).
fn street_of<'a>(s: &'a ApiState, site: &str) -> Option<&'a str> {
    s.sites.iter().find(|c| c.id == site).map(|c| c.street.as_str()).filter(|st| !st.is_empty())
}

/// Over TLS, tells browsers to use nothing else for a year (HSTS).
async fn hsts(
    axum::extract::State(s): axum::extract::State<Arc<ApiState>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let mut r = next.run(req).await;
    if s.secure_cookies {
        r.headers_mut()
            .insert("strict-transport-security", axum::http::HeaderValue::from_static("max-age=31536000"));
    }
    r
}
