//! `[[hj212]]`: a noise box reported to the environmental bureau's platform over HJ 212
//! ([`crate::report`]).

use super::Secret;
use serde::Deserialize;

/// `[[hj212]]`: one box, its MN, and the platform it reports to.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Hj212Config {
    /// The box: `site/device`.
    pub device: String,
    /// Its monitoring point code (MN) as the bureau registered it.
    pub mn: String,
    /// The platform's address.
    pub host: String,
    pub port: u16,
    /// The access password (PW).
    pub password: Secret,
    /// The system code (ST): 23 for noise.
    #[serde(default = "noise")]
    pub st: u16,
}

fn noise() -> u16 {
    23
}

impl Hj212Config {
    /// What is wrong with it.
    pub fn check(&self) -> Result<(), String> {
        if self.device.split('/').count() != 2 || self.device.split('/').any(str::is_empty) {
            return Err(format!("device `{}` is not site/device", self.device));
        }
        if self.mn.is_empty() || self.mn.len() > 24 || !self.mn.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err("mn must be 1 to 24 letters and digits".into());
        }
        if self.host.trim().is_empty() || self.port == 0 {
            return Err("host and port are needed".into());
        }
        if !(1..=99).contains(&self.st) {
            return Err("st is a two-digit system code (23: noise)".into());
        }
        Ok(())
    }
}
