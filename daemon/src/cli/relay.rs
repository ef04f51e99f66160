//! `gridsentry relay --config FILE`: the street broker (`[mqtt]`) and the field devices it
//! polls (`[[modbus]]`, `[[serial]]`) into NATS JetStream (`[cluster] nats`), until SIGTERM or
//! Ctrl-C.

use super::fail;
use gridsentry::cluster::relay::{self, RelayStats, Sources};
use gridsentry::cluster::relay_http::{self, Relay};
use gridsentry::config;
use gridsentry::ingest::mqtt::Settings;
use gridsentry::metrics::Metrics;
use gridsentry::watchdog::{self, Health};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use tokio::sync::watch;

pub(crate) async fn relay(path: PathBuf) -> ExitCode {
    let cfg = match config::load(&path) {
        Ok(c) => c,
        Err(e) => return fail(&e.to_string()),
    };
    let field = !cfg.modbus.is_empty() || !cfg.serial.is_empty();
    let Some(cluster) = cfg.cluster.as_ref().filter(|_| cfg.mqtt.is_some() || field) else {
        return fail(&format!(
            "{}: a relay needs [cluster] (nats) and something to relay: [mqtt] (the street's broker), [[modbus]] or [[serial]] devices",
            path.display()
        ));
    };
    let mqtt = match cfg.mqtt.as_ref().map(Settings::from_config).transpose() {
        Ok(s) => s,
        Err(e) => return fail(&e.to_string()),
    };
    let broker = cfg.mqtt.as_ref().map(|m| format!("{}:{}", m.host, m.port));
    let sources = Sources {
        mqtt: mqtt.clone(),
        modbus: cfg.modbus.iter().map(|m| m.get_ref().clone()).collect(),
        serial: cfg.serial.iter().map(|s| s.get_ref().clone()).collect(),
    };
    let _ = rustls::crypto::ring::default_provider().install_default();
    let (stop_tx, stop) = watch::channel(false);
    let stats = Arc::new(RelayStats::default());
    let (metrics, health) = (Arc::new(Metrics::default()), Arc::new(Health::default()));
    // The endpoints first: a relay waiting for NATS or the stream says so on /readyz.
    let http = cfg.relay.as_ref().map_or(&cfg.daemon.http, |r| &r.get_ref().http).get_ref().clone();
    let endpoints = Relay {
        metrics: metrics.clone(),
        stats: stats.clone(),
        health: health.clone(),
        has_mqtt: mqtt.is_some(),
    };
    let (bound, server) = match relay_http::serve(endpoints, &http, stop.clone()).await {
        Ok(s) => s,
        Err(e) => return fail(&format!("relay http {http}: {e}")),
    };
    tracing::info!(http = %bound, "relay endpoints listening (/healthz, /readyz, /metrics)");
    let stall = std::time::Duration::from_secs(cfg.daemon.stall_s.get());
    let mut tasks = match relay::start(
        cluster.get_ref(),
        sources,
        metrics,
        stats.clone(),
        (&health, stall),
        stop.clone(),
    )
    .await
    {
        Ok(t) => t,
        Err(e) => return fail(&e.to_string()),
    };
    tasks.push(watchdog::supervise("relay http", server, &health, &stop));
    tracing::info!(?broker, modbus = cfg.modbus.len(), serial = cfg.serial.len(), nats = ?cluster.get_ref().nats, "relaying");
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    let mut fatal = health.fatal();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {}
        _ = fatal.wait_for(|f| f.is_some()) => {
            let _ = stop_tx.send(true);
            std::process::exit(super::EXIT_STALLED);
        }
    }
    let _ = stop_tx.send(true);
    for t in tasks {
        let _ = t.await;
    }
    tracing::info!(
        published = stats.published.load(Relaxed),
        duplicates = stats.duplicates.load(Relaxed),
        retries = stats.retries.load(Relaxed),
        "relay stopped"
    );
    ExitCode::SUCCESS
}
