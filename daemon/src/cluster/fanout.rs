//! The console's live feed across workers. An operator's console is served by one worker, but
//! orders change at whichever worker owns their partition (or serves the person who acted):
//! every worker publishes its own transitions on the NATS subject `gs.changes` and passes the
//! other workers' on to its console clients (Server-Sent Events), so a red order raised on one
//! worker appears at once on every console.
//!
//! Core NATS is at most once, which suits a live view: the orders themselves are in PostgreSQL,
//! and the console re-reads them on its regular poll and after a `lagged` event. A transition
//! is published after its commit (the pipelines and the API announce nothing else).

use crate::orders::Change;
use futures_util::StreamExt;
use tokio::sync::broadcast::{self, error::RecvError};
use tokio::sync::watch;

/// The subject of order transitions.
pub const SUBJECT: &str = "gs.changes";

/// The header naming the worker that made a transition.
const ORIGIN: &str = "Gs-Origin";

/// Passes this worker's transitions (`local`) to its console feed and to the other workers,
/// and theirs to the feed, until `shutdown`.
pub async fn run(
    nats: async_nats::Client,
    me: String,
    local: broadcast::Sender<Change>,
    feed: broadcast::Sender<Change>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut mine = local.subscribe();
    let mut theirs = match nats.subscribe(SUBJECT).await {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::warn!(error = %e, "cluster: cannot hear other workers' order changes; the console polls");
            None
        }
    };
    loop {
        tokio::select! {
            c = mine.recv() => match c {
                Ok(change) => {
                    let _ = feed.send(change.clone());
                    let Ok(body) = serde_json::to_vec(&change) else { continue };
                    let mut headers = async_nats::HeaderMap::new();
                    headers.insert(ORIGIN, me.as_str());
                    if let Err(e) = nats.publish_with_headers(SUBJECT, headers, body.into()).await {
                        tracing::debug!(error = %e, "cluster: order change not published to the other consoles");
                    }
                }
                Err(RecvError::Lagged(n)) => tracing::warn!(missed = n, "cluster: console feed fell behind"),
                Err(RecvError::Closed) => return,
            },
            m = async { theirs.as_mut().expect("guarded").next().await }, if theirs.is_some() => match m {
                Some(m) => {
                    let origin = m.headers.as_ref().and_then(|h| h.get(ORIGIN)).map(|v| v.as_str());
                    if origin == Some(me.as_str()) {
                        continue;
                    }
                    match serde_json::from_slice::<Change>(&m.payload) {
                        Ok(change) => { let _ = feed.send(change); }
                        Err(e) => tracing::warn!(error = %e, "cluster: an order change on gs.changes does not parse"),
                    }
                }
                None => theirs = None,
            },
            _ = async { drop(shutdown.wait_for(|s| *s).await) } => return,
        }
    }
}
