//! `GET /api/v1/events`: order transitions pushed as Server-Sent Events, so the console hears
//! of a red order the moment it is recorded instead of on its next poll.
//!
//! Each transition is an `order` event whose data is the transition as the demo prints it. A
//! client that falls behind gets a `lagged` event (with how many it missed) and should re-read
//! the orders; a comment every 15 s keeps proxies from closing an idle stream.

use super::ApiState;
use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;

/// `GET /api/v1/events`.
pub async fn events(State(s): State<Arc<ApiState>>) -> Response {
    let rx = s.feed.subscribe();
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        let event = match rx.recv().await {
            Ok(change) => {
                Event::default().event("order").data(serde_json::to_string(&change).unwrap_or_default())
            }
            Err(RecvError::Lagged(n)) => Event::default().event("lagged").data(n.to_string()),
            Err(RecvError::Closed) => return None,
        };
        Some((Ok::<_, Infallible>(event), rx))
    });
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))).into_response()
}
