//! Broker connection settings from `[mqtt]` (or the embedded broker), resolved once at start.
//!
//! rumqttc turns a packet over its size limit into a disconnect, after which the broker
//! redelivers the same packet forever: the client's limit is MQTT's own maximum, and
//! `max_message_kb` is applied by the reader after reading (counted as `too_large`).

use crate::config::Mqtt;
use rumqttc::MqttOptions;
use std::time::Duration;

/// MQTT's largest packet (remaining length 268,435,455 plus a 5-byte fixed header).
const MQTT_MAX_PACKET: usize = 268_435_460;

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

/// Broker connection settings, resolved.
#[derive(Clone)]
pub struct Settings {
    pub(super) options: MqttOptions,
    pub(super) max_message: usize,
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
        Ok(Settings { options: o, max_message: c.max_message_kb.get().saturating_mul(1024) })
    }

    /// The same broker for another part of the daemon (the roll-out server): its own client id
    /// (`ID-SUFFIX`), a clean session (what it needs is retained), automatic acks.
    pub fn for_part(&self, suffix: &str) -> MqttOptions {
        let mut o = self.options.clone();
        o.set_client_id(format!("{}-{suffix}", self.options.client_id()));
        o.set_manual_acks(false);
        o.set_clean_session(true);
        o
    }

    /// A plain local broker (the embedded one).
    pub fn local(client_id: &str, port: u16) -> Settings {
        Settings { options: base(client_id, "127.0.0.1", port, 30), max_message: 256 * 1024 }
    }
}

fn base(client_id: &str, host: &str, port: u16, keepalive_s: u64) -> MqttOptions {
    let mut o = MqttOptions::new(client_id, host, port);
    o.set_manual_acks(true);
    o.set_clean_session(false);
    o.set_keep_alive(Duration::from_secs(keepalive_s.max(5)));
    o.set_max_packet_size(MQTT_MAX_PACKET, 64 * 1024);
    o
}
