//! A worker's standing checks on the reading stream, whatever partitions it owns: the stream is
//! there (deleted → ERROR and `/readyz` 503: the partitions would wait for ever, quietly), it
//! does not end below a partition's position (made anew after a deletion: its readings would be
//! skipped up to there), and no reading sits in a partition no worker reads (nats-server's
//! `partition(K, 1)` mapping and `[cluster] partitions` disagree).

use super::owner::Status;
use super::stream::{self, STREAM};
use async_nats::jetstream;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// How often the stream's presence is checked.
const EVERY: Duration = Duration::from_secs(2);
/// How often the stream's subjects are listed for partitions nobody reads (heavier: one entry
/// per device and stream).
const SUBJECTS_EVERY: u32 = 15;

/// A stream whose last sequence is below a partition's position was made anew (deleted and
/// created again: it numbers from 1): its readings would be skipped up to the old position.
fn behind_positions(status: &Status, last: u64) -> Option<String> {
    let owned = status.owned.lock().unwrap_or_else(|p| p.into_inner());
    let (p, at) = owned.iter().map(|(p, (_, lag))| (*p, lag.delivered())).max_by_key(|(_, at)| *at)?;
    (at > last).then(|| {
        format!("the reading stream {STREAM} ends at {last}, below partition {p}'s position {at}: it was made anew; its readings would be skipped. Reset the positions (deploy/README.md, runbook)")
    })
}

fn missing(e: &async_nats::jetstream::context::GetStreamError) -> bool {
    use async_nats::jetstream::context::GetStreamErrorKind;
    use async_nats::jetstream::ErrorCode;
    matches!(e.kind(), GetStreamErrorKind::JetStream(j) if j.error_code() == ErrorCode::STREAM_NOT_FOUND)
}

/// Runs the checks until `stop` turns true, recording what they find in `status`.
pub async fn run(
    js: jetstream::Context,
    status: Arc<Status>,
    partitions: u32,
    mut stop: watch::Receiver<bool>,
) {
    let mut round = 0u32;
    loop {
        // Only a stream the servers say is not there is missing: a request that times out
        // (a leader election, NATS unreachable: /readyz says so already) is not.
        let problem = match js.get_stream(STREAM).await {
            Err(e) if missing(&e) => {
                Some(format!("the reading stream {STREAM} cannot be read ({e}): nothing is applied"))
            }
            Err(e) => {
                tracing::debug!(error = %e, "cluster: stream info not answered");
                status.stream_problem.lock().unwrap_or_else(|p| p.into_inner()).clone()
            }
            Ok(stream) => behind_positions(&status, stream.cached_info().state.last_sequence),
        };
        let was = std::mem::replace(
            &mut *status.stream_problem.lock().unwrap_or_else(|p| p.into_inner()),
            problem.clone(),
        );
        match (&problem, was.is_some()) {
            (Some(why), false) => {
                tracing::error!(reason = %why, "cluster: reading stream missing or made anew")
            }
            (None, true) => tracing::info!("cluster: reading stream {STREAM} readable again"),
            _ => {}
        }
        if problem.is_none() && round.is_multiple_of(SUBJECTS_EVERY) {
            match stream::unread_subjects(&js, partitions).await {
                Ok(unread) => {
                    if !unread.is_empty() {
                        tracing::error!(partitions, subjects = ?unread.iter().take(5).collect::<Vec<_>>(), "readings in partitions no worker reads: nats-server's partition(K, 1) mapping and [cluster] partitions disagree");
                    }
                    *status.unread.lock().unwrap_or_else(|p| p.into_inner()) = unread;
                }
                Err(e) => tracing::warn!(error = %e, "cluster: could not list the stream's subjects"),
            }
        }
        round = round.wrapping_add(1);
        tokio::select! {
            _ = tokio::time::sleep(EVERY) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}
