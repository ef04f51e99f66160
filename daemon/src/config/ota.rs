//! `[ota]`: fleet updates over the air ([`crate::ota`]).

use serde::Deserialize;

/// `[ota]`: the daemon serves roll-outs to the devices on its broker.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OtaConfig {
    /// The fleet's signing key's public half, 64 hex characters (`gridsentry firmware keygen`
    /// prints it). `gridsentry firmware add` refuses an image it did not sign; the devices were
    /// built with the same key and refuse it too.
    pub public_key: String,
    /// Bytes per chunk offered (a device's MQTT buffer holds one plus 8 bytes).
    #[serde(default = "chunk")]
    pub chunk_bytes: u32,
    /// A device offered an update that stays silent this long is offered it again.
    #[serde(default = "reoffer")]
    pub reoffer_s: u64,
    /// A wave advances past devices that have been offline this long (they are still updated
    /// when they come back).
    #[serde(default = "offline")]
    pub offline_grace_s: u64,
}

fn chunk() -> u32 {
    1024
}
fn reoffer() -> u64 {
    60
}
fn offline() -> u64 {
    3600
}

impl OtaConfig {
    /// What is wrong with it.
    pub fn check(&self) -> Result<(), String> {
        if gridsentry_sensors::ota::unhex::<32>(self.public_key.trim()).is_none() {
            return Err(
                "public_key must be 64 lowercase hex characters (gridsentry firmware keygen prints it)"
                    .into(),
            );
        }
        if !(64..=gridsentry_sensors::ota::CHUNK_MAX).contains(&self.chunk_bytes) {
            return Err(format!("chunk_bytes must be 64 to {}", gridsentry_sensors::ota::CHUNK_MAX));
        }
        if self.reoffer_s == 0 {
            return Err("reoffer_s must be at least 1".into());
        }
        Ok(())
    }
}
