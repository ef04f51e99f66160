//! MQTT ingest with rumqttc: QoS 1, persistent session, manual acks.
//!
//! rumqttc keeps neither subscriptions nor a usable state across every failure, so this loop
//! subscribes again on every ConnAck (rumqtt issue 250) and rebuilds the client and event loop
//! when the session state is unusable (`CollisionTimeout` loops, issues 1014/1056).

use super::{now_ms, Ack, Inbound};
use crate::config::Mqtt;
use crate::metrics::Metrics;
use gridsentry_sensors::{codec, topic::FILTER_ALL, Topic};
use rumqttc::{
    AsyncClient, ConnectionError, Event, MqttOptions, Packet, QoS, StateError, SubscribeReasonCode,
};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// Why ingest could not start.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// A secret (password) could not be read.
    #[error("mqtt: {0}")]
    Secret(String),
    /// The CA file could not be read.
    #[error("mqtt: cannot read CA file: {0}")]
    Ca(std::io::Error),
}

/// Acks returned by the pipeline after commit.
pub type AckSender = mpsc::UnboundedSender<Vec<Ack>>;

/// Broker connection settings, resolved.
#[derive(Clone)]
pub struct Settings {
    options: MqttOptions,
}

impl Settings {
    /// From `[mqtt]` (secrets read now).
    pub fn from_config(c: &Mqtt) -> Result<Settings, IngestError> {
        let mut o = base(&c.client_id, &c.host, c.port, c.keepalive_s);
        if let Some(user) = &c.username {
            let password = match &c.password {
                Some(p) => p.resolve().map_err(IngestError::Secret)?,
                None => String::new(),
            };
            o.set_credentials(user, password);
        }
        if let Some(ca) = &c.tls_ca_file {
            let ca = std::fs::read(ca).map_err(IngestError::Ca)?;
            o.set_transport(rumqttc::Transport::tls_with_config(rumqttc::TlsConfiguration::Simple {
                ca,
                alpn: None,
                client_auth: None,
            }));
        }
        Ok(Settings { options: o })
    }

    /// A plain local broker (the embedded one).
    pub fn local(client_id: &str, port: u16) -> Settings {
        Settings { options: base(client_id, "127.0.0.1", port, 30) }
    }
}

fn base(client_id: &str, host: &str, port: u16, keepalive_s: u64) -> MqttOptions {
    let mut o = MqttOptions::new(client_id, host, port);
    o.set_manual_acks(true);
    o.set_clean_session(false);
    o.set_keep_alive(Duration::from_secs(keepalive_s.max(5)));
    o.set_max_packet_size(64 * 1024, 64 * 1024);
    o.set_inflight(1000);
    o
}

/// Runs ingest until `shutdown` turns true: decoded readings go to `out`; acks come back on
/// the returned sender.
pub fn spawn(
    settings: Settings,
    out: mpsc::Sender<Inbound>,
    metrics: Arc<Metrics>,
    mut shutdown: watch::Receiver<bool>,
) -> (AckSender, tokio::task::JoinHandle<()>) {
    let (ack_tx, mut ack_rx) = mpsc::unbounded_channel::<Vec<Ack>>();
    let task = tokio::spawn(async move {
        let mut generation = 0u64;
        'rebuild: loop {
            generation += 1;
            let (client, mut events) = AsyncClient::new(settings.options.clone(), 10_000);
            loop {
                tokio::select! {
                    _ = shutdown.changed() => {
                        let _ = client.disconnect().await;
                        metrics.mqtt_connected.store(0, Relaxed);
                        return;
                    }
                    Some(acks) = ack_rx.recv() => send_acks(&client, acks, generation).await,
                    polled = events.poll() => match polled {
                        Ok(event) => on_event(event, &client, &out, &metrics, generation).await,
                        Err(e) => {
                            metrics.mqtt_connected.store(0, Relaxed);
                            if unusable(&e) {
                                tracing::warn!(error = %e, "mqtt session state unusable; rebuilding the client");
                                continue 'rebuild;
                            }
                            tracing::warn!(error = %e, "mqtt connection lost; reconnecting");
                            // Acks of this connection can no longer be sent: the broker will
                            // redeliver those messages.
                            generation += 1;
                            tokio::time::sleep(Duration::from_millis(500)).await;
                        }
                    },
                }
            }
        }
    });
    (ack_tx, task)
}

fn unusable(e: &ConnectionError) -> bool {
    matches!(e, ConnectionError::MqttState(StateError::CollisionTimeout))
}

async fn send_acks(client: &AsyncClient, acks: Vec<Ack>, generation: u64) {
    for ack in acks {
        if let Ack::Mqtt { publish, generation: g } = ack {
            if g == generation {
                if let Err(e) = client.ack(&publish).await {
                    tracing::warn!(error = %e, "mqtt ack not sent; the broker will redeliver");
                }
            }
        }
    }
}

async fn on_event(
    event: Event,
    client: &AsyncClient,
    out: &mpsc::Sender<Inbound>,
    metrics: &Metrics,
    generation: u64,
) {
    match event {
        Event::Incoming(Packet::ConnAck(ack)) => {
            // Not "connected" yet: readings published before the SUBACK would find no
            // subscription (a new session) and the broker would drop them. Ready at the SUBACK.
            metrics.mqtt_connects.fetch_add(1, Relaxed);
            tracing::info!(session_present = ack.session_present, "mqtt connected");
            // Subscribe on every ConnAck: rumqttc does not restore subscriptions.
            if let Err(e) = client.subscribe(FILTER_ALL, QoS::AtLeastOnce).await {
                tracing::error!(error = %e, "mqtt subscribe failed");
            }
        }
        Event::Incoming(Packet::SubAck(ack)) => {
            if ack.return_codes.iter().all(|c| matches!(c, SubscribeReasonCode::Success(_))) {
                metrics.mqtt_connected.store(1, Relaxed);
            } else {
                tracing::error!(codes = ?ack.return_codes, "mqtt subscription refused by the broker (ACL?)");
            }
        }
        Event::Incoming(Packet::Publish(p)) => {
            let received_ms = now_ms();
            match decode(&p) {
                Ok((topic, reading)) => {
                    let raw = p.payload.to_vec();
                    let ack = Ack::Mqtt { publish: p, generation };
                    // Waits when the pipeline is behind: backpressure to the broker.
                    let _ = out.send(Inbound { topic, reading, raw, received_ms, ack }).await;
                }
                Err((reason, detail)) => {
                    metrics.malformed(&reason);
                    tracing::warn!(topic = %p.topic, %reason, %detail, "malformed message dropped");
                    if let Err(e) = client.ack(&p).await {
                        tracing::warn!(error = %e, "mqtt ack of a malformed message not sent");
                    }
                }
            }
        }
        _ => {}
    }
}

/// Topic and payload checks; `Err` is (counter label, detail for the log).
fn decode(p: &rumqttc::Publish) -> Result<(Topic, gridsentry_sensors::Reading), (String, String)> {
    let topic = Topic::parse(&p.topic).map_err(|e| ("topic".to_string(), e.to_string()))?;
    let reading = codec::decode_on(&topic, &p.payload)
        .map_err(|e| (format!("payload_{}", e.reason()), e.to_string()))?;
    Ok((topic, reading))
}
