//! `[[warning]]`: residents of a hazard site warned of a landslide ([`crate::warn`]).

use super::Secret;
use serde::Deserialize;
use std::path::PathBuf;

/// `[[warning]]`: who is warned, how, with which evacuation route.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WarningConfig {
    /// The hazard site (`[[site]] id`) whose red orders may warn.
    pub site: String,
    /// The evacuation route, in the text residents get (e.g. 沿青石路向东撤离至第三小学操场).
    pub route: String,
    /// A file with the residents' mobile numbers, one per line (`#` comments): personal data,
    /// so it may not be readable by every user.
    pub residents_file: PathBuf,
    /// Warn automatically when a red order of the site forecasts failure within this many
    /// hours; absent: only by an operator's 一键预警.
    #[serde(default)]
    pub auto_within_h: Option<f64>,
    /// Text messages through Alibaba Cloud SMS.
    #[serde(default)]
    pub sms: Option<SmsConfig>,
    /// A signed webhook for the site's IP broadcast system (loudspeakers).
    #[serde(default)]
    pub broadcast: Option<BroadcastConfig>,
}

/// `[warning.sms]`: Alibaba Cloud SMS (`SendSms`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmsConfig {
    /// The endpoint (default `https://dysmsapi.aliyuncs.com/`).
    #[serde(default = "sms_url")]
    pub url: String,
    /// The AccessKey id.
    pub access_key_id: String,
    /// The AccessKey secret.
    pub access_key_secret: Secret,
    /// The approved signature (签名).
    pub sign_name: String,
    /// The approved template (模板), with variables `site`, `route`, `time`.
    pub template_code: String,
}

fn sms_url() -> String {
    "https://dysmsapi.aliyuncs.com/".into()
}

/// `[warning.broadcast]`: a webhook signed as every notification is (Standard Webhooks).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BroadcastConfig {
    /// Where to POST the warning.
    pub url: String,
    /// The signing key.
    pub secret: Secret,
}

impl WarningConfig {
    /// What is wrong with it, given the configured site ids (empty: none configured).
    pub fn check(&self, sites: &[&str]) -> Result<(), String> {
        if !sites.is_empty() && !sites.contains(&self.site.as_str()) {
            return Err(format!("site `{}` is not a [[site]] id", self.site));
        }
        if self.route.trim().is_empty() {
            return Err("`route` (the evacuation route residents are told) is needed".into());
        }
        if self.sms.is_none() && self.broadcast.is_none() {
            return Err("nothing to warn with: add `sms` and/or `broadcast`".into());
        }
        if self.auto_within_h.is_some_and(|h| !(h > 0.0 && h <= 24.0 * 30.0)) {
            return Err("auto_within_h must be more than 0 and at most 720".into());
        }
        let http = |u: &str| u.starts_with("http://") || u.starts_with("https://");
        if self.sms.as_ref().is_some_and(|s| !http(&s.url))
            || self.broadcast.as_ref().is_some_and(|b| !http(&b.url))
        {
            return Err("urls must start with http:// or https://".into());
        }
        Ok(())
    }
}

/// The numbers in a residents file: one per line, `#` comments and blank lines skipped; each
/// `+`, digits, 6 to 15 of them. `Err` names the first bad line.
pub fn residents(path: &std::path::Path) -> Result<Vec<String>, String> {
    super::secret::refuse_world_readable(path)?;
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let n = line.split('#').next().unwrap_or("").trim();
        if n.is_empty() {
            continue;
        }
        let digits = n.strip_prefix('+').unwrap_or(n);
        if !(6..=15).contains(&digits.len()) || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!("{}:{}: not a phone number", path.display(), i + 1));
        }
        if !out.iter().any(|x| x == n) {
            out.push(n.to_string());
        }
    }
    match out.is_empty() {
        true => Err(format!("{}: no numbers", path.display())),
        false => Ok(out),
    }
}
