//! The operators' console: one static page and one script, embedded in the binary (no Node
//! build step, nothing to deploy beside the daemon). The page asks for the API token, keeps it
//! in the tab's session storage, and drives the same REST API as any other client.

use axum::http::header;
use axum::response::IntoResponse;

const PAGE: &str = include_str!("console/index.html");
const SCRIPT: &str = include_str!("console/console.js");

/// `GET /`.
pub async fn page() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CONTENT_SECURITY_POLICY, "default-src 'self'; style-src 'self' 'unsafe-inline'"),
            (header::X_FRAME_OPTIONS, "DENY"),
        ],
        PAGE,
    )
}

/// `GET /console.js`.
pub async fn script() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/javascript; charset=utf-8")], SCRIPT)
}
