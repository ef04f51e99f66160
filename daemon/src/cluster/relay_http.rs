//! A relay's own endpoints, so that it can be monitored like a worker: `/healthz` (the process
//! answers), `/readyz` (200 only while the broker and NATS are connected, the stream was found,
//! publishing works and no stage is stalled; otherwise 503 with the reason) and `/metrics`
//! (`gridsentry_relay_*`). No API, no console: a relay holds no orders.

use super::relay::RelayStats;
use crate::metrics::{Metrics, RelayScrape};
use crate::watchdog::Health;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use tokio::sync::watch;

/// What the endpoints read.
pub struct Relay {
    /// Ingest's counters (broker connection, malformed messages).
    pub metrics: Arc<Metrics>,
    /// The relay's own.
    pub stats: Arc<RelayStats>,
    /// The watchdog's verdict.
    pub health: Arc<Health>,
    /// Whether the relay reads a broker (`[mqtt]`).
    pub has_mqtt: bool,
}

impl Relay {
    /// `Ok` when ready, or why not.
    pub fn readiness(&self) -> Result<(), String> {
        if let Some(p) = self.health.problem() {
            return Err(p);
        }
        if !self.stats.nats_connected() {
            return Err("not connected to NATS".into());
        }
        // Before the broker: the relay subscribes only once the stream is there.
        if !self.stats.stream_found.load(Relaxed) {
            return Err("waiting for the reading stream (a worker creates it)".into());
        }
        if self.has_mqtt && self.metrics.mqtt_connected.load(Relaxed) != 1 {
            return Err("not connected to the broker".into());
        }
        if self.stats.failing.load(Relaxed) {
            return Err(format!("publishing to the stream fails ({} readings held)", self.stats.in_flight()));
        }
        Ok(())
    }

    fn scrape(&self) -> RelayScrape {
        let s = &self.stats;
        RelayScrape {
            received: s.received.load(Relaxed),
            published: s.published.load(Relaxed),
            duplicates: s.duplicates.load(Relaxed),
            retries: s.retries.load(Relaxed),
            in_flight: s.in_flight(),
            mqtt_connected: self.has_mqtt.then(|| self.metrics.mqtt_connected.load(Relaxed) == 1),
            nats_connected: s.nats_connected(),
            ready: self.readiness().is_ok(),
        }
    }
}

async fn ready(State(r): State<Arc<Relay>>) -> Response {
    match r.readiness() {
        Ok(()) => (StatusCode::OK, "ready\n").into_response(),
        Err(why) => (StatusCode::SERVICE_UNAVAILABLE, format!("{why}\n")).into_response(),
    }
}

async fn metrics(State(r): State<Arc<Relay>>) -> Response {
    let body = crate::metrics::render_relay(&r.metrics, &r.scrape());
    ([("content-type", crate::metrics::CONTENT_TYPE)], body).into_response()
}

/// Serves the endpoints on `addr` until `shutdown`; the bound address and the server's task.
pub async fn serve(
    relay: Relay,
    addr: &str,
    mut shutdown: watch::Receiver<bool>,
) -> std::io::Result<(std::net::SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let router = Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(ready))
        .route("/metrics", get(metrics))
        .with_state(Arc::new(relay));
    let task = tokio::spawn(async move {
        let stop = async move {
            let _ = shutdown.wait_for(|s| *s).await;
        };
        if let Err(e) = axum::serve(listener, router).with_graceful_shutdown(stop).await {
            tracing::error!(error = %e, "relay http stopped");
        }
    });
    Ok((bound, task))
}
