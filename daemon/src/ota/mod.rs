//! Fleet updates over the air: signed images rolled out in waves to the devices on the broker.
//!
//! Why: boxes on poles and wristband gateways in elderly people's homes are flashed once by an
//! installer; every later fix would otherwise mean a visit. The platforms people compare us with
//! (ThingsBoard, ESPHome, Golioth, Mender, hawkBit) show what goes wrong in the field — a power
//! cut mid-download, a bad image, a whole fleet bricked at once — so:
//! - images are signed offline ([`sign`]); the daemon and the devices hold the public key only;
//! - the device pulls chunks by offset over its own MQTT session (the contract is
//!   `gridsentry_sensors::ota`), so it resumes after a power cut from what reached its flash;
//! - roll-outs go in waves that open only when the previous one finished, and pause themselves
//!   at a failure rate, raising an order ([`waves`]);
//! - every device's progress is in the orders database with its history (`orders::ota`).
//!
//! The firmware side (A/B slots, trial boot, confirm or revert) is in `firmware/`.

pub mod serve;
pub mod sign;
pub mod waves;

use crate::config::OtaConfig;
use crate::orders::Store;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use std::sync::Arc;
use tokio::sync::watch;

/// Starts the roll-out server on the broker `options` point at, with `store` (its own
/// connection); the returned task ends at shutdown.
pub fn spawn(
    cfg: &OtaConfig,
    mut options: MqttOptions,
    store: Store,
    metrics: Arc<crate::metrics::Metrics>,
    outbox: Option<watch::Sender<u64>>,
    mut shutdown: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    // Requests queue in rumqttc's channel: room for a burst of chunks to many devices.
    options.set_request_channel_capacity(4096);
    let (client, mut events) = AsyncClient::new(options, 4096);
    let tuning = serve::Tuning {
        chunk: cfg.chunk_bytes,
        reoffer_ms: (cfg.reoffer_s * 1000) as i64,
        grace_ms: (cfg.offline_grace_s * 1000) as i64,
    };
    let (tx, rx) = std::sync::mpsc::channel();
    let server = serve::Server::new(store, client.clone(), tuning, metrics, outbox);
    let thread = std::thread::Builder::new().name("ota".into()).spawn(move || server.run(rx));
    if let Err(e) = &thread {
        tracing::error!(error = %e, "ota: cannot start its thread");
    }
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = shutdown.changed() => {
                    if *shutdown.borrow() {
                        let _ = client.try_disconnect();
                        return;
                    }
                }
                ev = events.poll() => match ev {
                    Ok(Event::Incoming(Packet::ConnAck(_))) => {
                        // Every device's report and status are retained: a new session learns the fleet.
                        for f in ["gs/v1/+/+/ota/state", "gs/v1/+/+/status"] {
                            if let Err(e) = client.try_subscribe(f, QoS::AtLeastOnce) {
                                tracing::error!(error = %e, "ota: subscribe failed");
                            }
                        }
                    }
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        let m = serve::Incoming { topic: p.topic, payload: p.payload, retained: p.retain };
                        if tx.send(m).is_err() {
                            tracing::error!("ota: its thread ended; roll-outs stop until a restart");
                            return;
                        }
                    }
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!(error = %e, "ota: broker connection lost; reconnecting");
                        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                    }
                }
            }
        }
    })
}
