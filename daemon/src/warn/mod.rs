//! Public warnings: the residents of a hazard site told to leave, by SMS and loudspeaker.
//!
//! Why: the landslide platforms people compare us with push warnings to villagers through
//! broadcast loudspeakers and text messages, with the evacuation route. A red slope order with a
//! failure forecast within `auto_within_h`, or an operator's 一键预警, becomes one warning row
//! ([`crate::orders::warnings`], once per order); this sender expands it into one send per
//! resident (Alibaba Cloud SMS, [`aliyun`]) and one to the broadcast system (a Standard-Webhooks
//! signed POST), sends them, retries failures with backoff, and records each one's result.

pub mod aliyun;

use crate::clock::now_ms;
use crate::notify::deliver::Source;
use crate::orders::warnings::{Send, Warning};
use crate::orders::{Store, StoreError};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// Attempts per send before it is recorded as failed.
pub const MAX_ATTEMPTS: i64 = 8;
/// Requests in flight at once.
const PARALLEL: usize = 8;

/// Alibaba Cloud SMS, secrets resolved.
#[derive(Debug, Clone)]
pub struct Sms {
    pub url: String,
    pub key_id: String,
    pub key_secret: String,
    pub sign_name: String,
    pub template_code: String,
}

/// One hazard site's channels, secrets and numbers read.
#[derive(Debug, Clone)]
pub struct Channels {
    pub site: String,
    pub residents: Vec<String>,
    pub sms: Option<Sms>,
    /// The broadcast system's URL and signing key.
    pub broadcast: Option<(String, String)>,
}

/// The config's `[[warning]]`s with their secrets and residents read (`Err` names what failed).
pub fn channels(cfg: &crate::config::Config) -> Result<Vec<Channels>, String> {
    cfg.warnings
        .iter()
        .map(|w| w.get_ref())
        .map(|w| {
            let what = |e: String| format!("[[warning]] {}: {e}", w.site);
            let sms = match &w.sms {
                None => None,
                Some(s) => Some(Sms {
                    url: s.url.clone(),
                    key_id: s.access_key_id.clone(),
                    key_secret: s.access_key_secret.resolve().map_err(what)?,
                    sign_name: s.sign_name.clone(),
                    template_code: s.template_code.clone(),
                }),
            };
            let broadcast = match &w.broadcast {
                None => None,
                Some(b) => Some((b.url.clone(), b.secret.resolve().map_err(what)?)),
            };
            Ok(Channels {
                site: w.site.clone(),
                residents: crate::config::residents(&w.residents_file).map_err(what)?,
                sms,
                broadcast,
            })
        })
        .collect()
}

/// `138****0001`: a number as the API and logs show it.
pub fn masked(n: &str) -> String {
    let chars: Vec<char> = n.chars().collect();
    if chars.len() <= 7 {
        return "*".repeat(chars.len());
    }
    let head: String = chars[..3].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}{}{tail}", "*".repeat(chars.len() - 7))
}

/// Starts the sender (nothing when no `[[warning]]` is configured).
pub fn spawn(
    channels: Vec<Channels>,
    db: &Source,
    metrics: Arc<crate::metrics::Metrics>,
    shutdown: watch::Receiver<bool>,
) -> Result<Option<tokio::task::JoinHandle<()>>, StoreError> {
    if channels.is_empty() {
        return Ok(None);
    }
    let blocking = matches!(db, Source::Postgres(..));
    let sender = Sender {
        channels,
        store: std::sync::Mutex::new(db.open()?),
        blocking,
        http: crate::notify::deliver::client(),
        metrics,
    };
    Ok(Some(tokio::spawn(sender.run(shutdown))))
}

struct Sender {
    channels: Vec<Channels>,
    store: std::sync::Mutex<Store>,
    blocking: bool,
    http: reqwest::Client,
    metrics: Arc<crate::metrics::Metrics>,
}

impl Sender {
    async fn run(self, mut shutdown: watch::Receiver<bool>) {
        loop {
            if *shutdown.borrow() {
                return;
            }
            if let Err(e) = self.round().await {
                tracing::error!(error = %e, "public warnings: the database is unreadable; retrying");
            }
            tokio::select! {
                _ = shutdown.changed() => return,
                _ = tokio::time::sleep(Duration::from_millis(250)) => {}
            }
        }
    }

    fn with_db<R>(&self, f: impl FnOnce(&mut Store) -> R) -> R {
        crate::notify::deliver::locked(&self.store, self.blocking, f)
    }

    async fn round(&self) -> Result<(), StoreError> {
        for w in self.with_db(|s| s.warnings_new())? {
            let Some(c) = self.channels.iter().find(|c| c.site == w.site) else {
                tracing::error!(warning = w.id, site = %w.site, "public warning for a site without [[warning]] now: not sent (restore its [[warning]] to send it)");
                continue;
            };
            let mut sends: Vec<(&str, &str)> = Vec::new();
            if c.sms.is_some() {
                sends.extend(c.residents.iter().map(|n| ("sms", n.as_str())));
            }
            if c.broadcast.is_some() {
                sends.push(("broadcast", "broadcast"));
            }
            self.with_db(|s| s.warning_queue(w.id, &sends, now_ms() as i64))?;
            tracing::warn!(warning = w.id, order = w.order_id, site = %w.site, sends = sends.len(), trigger = %w.trigger, "public warning: sending");
        }
        // Claimed for longer than a round of requests can take (8 × 10 s timeouts).
        let due = self.with_db(|s| s.warning_sends_due(now_ms() as i64, 64, 120_000))?;
        let mut results = Vec::with_capacity(due.len());
        for chunk in due.chunks(PARALLEL) {
            let mut sending = Vec::with_capacity(chunk.len());
            for (s, w) in chunk {
                sending.push(self.send(s, w));
            }
            let out = futures_util::future::join_all(sending).await;
            results.extend(chunk.iter().map(|(s, _)| s).zip(out));
        }
        for (s, result) in results {
            let now = now_ms() as i64;
            let who = masked(&s.recipient);
            match &result {
                Ok(_) => self.metrics.warning_sends.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
                Err(_) => {
                    self.metrics.warning_send_failures.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
                }
            };
            let retry = (s.attempts + 1 < MAX_ATTEMPTS)
                .then(|| now + (1000i64 << s.attempts.clamp(0, 6)).min(60_000));
            if let Err(e) = &result {
                match retry {
                    Some(_) => {
                        tracing::warn!(send = s.id, channel = %s.channel, to = %who, error = %e, "public warning not delivered; retrying")
                    }
                    None => {
                        tracing::error!(send = s.id, channel = %s.channel, to = %who, error = %e, "public warning NOT delivered after {MAX_ATTEMPTS} attempts")
                    }
                }
            }
            self.with_db(|st| st.warning_sent(s.id, result.as_deref().map_err(String::as_str), retry, now))?;
        }
        Ok(())
    }

    async fn send(&self, s: &Send, w: &Warning) -> Result<String, String> {
        let c = self.channels.iter().find(|c| c.site == w.site).ok_or("its [[warning]] is gone")?;
        match s.channel.as_str() {
            "sms" => {
                let sms = c.sms.as_ref().ok_or("no sms configured now")?;
                let nonce = format!("{:032x}", rand::random::<u128>());
                let ts = jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string();
                let out_id = format!("gs-{}", s.id);
                let msg = aliyun::Sms {
                    key_id: &sms.key_id,
                    key_secret: &sms.key_secret,
                    sign_name: &sms.sign_name,
                    template_code: &sms.template_code,
                    template_param: &w.params,
                    phone: &s.recipient,
                    out_id: &out_id,
                };
                let r = self
                    .http
                    .post(&sms.url)
                    .timeout(Duration::from_secs(10))
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(aliyun::body(&msg, &nonce, &ts))
                    .send()
                    .await
                    .map_err(|e| e.without_url().to_string())?;
                let status = r.status().as_u16();
                // At most 64 KiB of the answer (it is a small JSON object).
                let mut r = r;
                let mut answer = Vec::new();
                while answer.len() < 64 * 1024 {
                    match r.chunk().await.map_err(|e| e.without_url().to_string())? {
                        Some(c) => answer.extend_from_slice(&c[..c.len().min(64 * 1024 - answer.len())]),
                        None => break,
                    }
                }
                aliyun::accepted(status, &answer)
            }
            "broadcast" => {
                let (url, secret) = c.broadcast.as_ref().ok_or("no broadcast configured now")?;
                let params: serde_json::Value = serde_json::from_str(&w.params).unwrap_or_default();
                let body = serde_json::json!({
                    "schema": "gridsentry.warning.v1",
                    "warning_id": w.id,
                    "order_id": w.order_id,
                    "site": w.site,
                    "trigger": w.trigger,
                    "text": w.text,
                    "route": params["route"],
                    "failure_at": params["time"],
                })
                .to_string();
                let id = format!("warning-{}", w.id);
                let ts = now_ms() / 1000;
                let r = self
                    .http
                    .post(url)
                    .timeout(Duration::from_secs(10))
                    .header("content-type", "application/json")
                    .header("webhook-id", &id)
                    .header("webhook-timestamp", ts.to_string())
                    .header(
                        "webhook-signature",
                        crate::notify::sign::signature(secret, &id, ts, body.as_bytes()),
                    )
                    .body(body)
                    .send()
                    .await
                    .map_err(|e| e.without_url().to_string())?;
                match r.status().as_u16() {
                    200..=299 => Ok(format!("HTTP {}", r.status().as_u16())),
                    code => Err(format!("HTTP {code}")),
                }
            }
            other => Err(format!("unknown channel {other}")),
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn numbers_are_masked_in_the_middle() {
        assert_eq!(super::masked("13800000001"), "138****0001");
        assert_eq!(super::masked("+8613800000001"), "+86*******0001");
        assert_eq!(super::masked("12345"), "*****");
    }
}
