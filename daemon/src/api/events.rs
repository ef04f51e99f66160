//! `GET /api/v1/events`: order transitions pushed as Server-Sent Events, so the console hears
//! of a red order the moment it is recorded instead of on its next poll.
//!
//! Each transition is an `order` event whose data is the transition as the demo prints it. A
//! client that falls behind gets a `lagged` event (with how many it missed) and should re-read
//! the orders; a comment every 15 s keeps proxies from closing an idle stream.

use super::ApiState;
use crate::access::{Perm, Principal};
use axum::extract::{Extension, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;

/// `GET /api/v1/events`.
/// Someone limited to streets hears of orders on those streets only; a grid worker (who may act
/// only on their own orders) hears only of the orders dispatched to them.
pub async fn events(State(s): State<Arc<ApiState>>, Extension(p): Extension<Principal>) -> Response {
    if let Err(r) = super::auth::need(&p, Perm::Read) {
        return r;
    }
    let rx = s.feed.subscribe();
    let stream = futures_util::stream::unfold((rx, s, p), |(mut rx, s, p)| async move {
        let event = loop {
            break match rx.recv().await {
                Ok(change) if !p.sees_street(super::street_of(&s, &change.site)) => continue,
                Ok(change) if !p.sees_assignee(change.assignee.as_deref()) => continue,
                Ok(change) => {
                    Event::default().event("order").data(serde_json::to_string(&change).unwrap_or_default())
                }
                Err(RecvError::Lagged(n)) => Event::default().event("lagged").data(n.to_string()),
                Err(RecvError::Closed) => return None,
            };
        };
        Some((Ok::<_, Infallible>(event), (rx, s, p)))
    });
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))).into_response()
}
