//! `gridsentry relay --config FILE`: the street broker (`[mqtt]`) into NATS JetStream
//! (`[cluster] nats`), until SIGTERM or Ctrl-C.

use super::fail;
use gridsentry::cluster::relay::{self, RelayStats};
use gridsentry::config;
use gridsentry::ingest::mqtt::Settings;
use gridsentry::metrics::Metrics;
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
    let (Some(mqtt), Some(cluster)) = (&cfg.mqtt, &cfg.cluster) else {
        return fail(&format!(
            "{}: a relay needs [mqtt] (the street's broker) and [cluster] (nats)",
            path.display()
        ));
    };
    let settings = match Settings::from_config(mqtt) {
        Ok(s) => s,
        Err(e) => return fail(&e.to_string()),
    };
    let _ = rustls::crypto::ring::default_provider().install_default();
    let (stop_tx, stop) = watch::channel(false);
    let stats = Arc::new(RelayStats::default());
    let tasks =
        match relay::start(cluster.get_ref(), settings, Arc::new(Metrics::default()), stats.clone(), stop)
            .await
        {
            Ok(t) => t,
            Err(e) => return fail(&e.to_string()),
        };
    tracing::info!(broker = %format!("{}:{}", mqtt.host, mqtt.port), nats = ?cluster.get_ref().nats, "relaying");
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {}
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
