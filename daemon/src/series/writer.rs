//! The one place that knows which time-series client is used: the influxdb2 crate, writing line
//! protocol with millisecond precision to `/api/v2/write`. The stage only sees [`Writer`], so
//! another client (or another server) replaces this file and nothing else.

use std::future::Future;
use std::time::Duration;

/// Why a write did not land.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// Worth retrying: unreachable, timed out, 5xx, 429, refused credentials (an operator can
    /// fix those; the data must wait for them).
    #[error("{0}")]
    Retry(String),
    /// The server refused the data itself (400, 413, 422: malformed or conflicting points).
    /// Sending it again gives the same answer.
    #[error("{0}")]
    Rejected(String),
}

/// Sends line-protocol bodies somewhere.
pub trait Writer: Send + Sync + 'static {
    /// Writes one body (points separated by newlines, ms timestamps).
    fn write(&self, body: bytes::Bytes) -> impl Future<Output = Result<(), WriteError>> + Send;
}

/// `Ok` for an `http://` or `https://` URL with a host (the influxdb2 client panics on others).
pub fn check_url(url: &str) -> Result<(), String> {
    match url::Url::parse(url) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.has_host() => Ok(()),
        _ => Err(format!("url `{url}` is not an http:// or https:// URL")),
    }
}

/// InfluxDB v2 (or anything speaking its write API, e.g. VictoriaMetrics).
pub struct Influx {
    client: influxdb2::Client,
    bucket: String,
    timeout: Duration,
}

impl Influx {
    /// A client for `url` (e.g. `http://127.0.0.1:8086`); an empty token sends no header.
    pub fn new(url: &str, org: &str, bucket: &str, token: &str, timeout: Duration) -> Result<Influx, String> {
        check_url(url).map_err(|e| format!("influx {e}"))?;
        let client = influxdb2::ClientBuilder::new(url, org, token)
            .build()
            .map_err(|e| format!("influx client: {e}"))?;
        Ok(Influx { client, bucket: bucket.to_string(), timeout })
    }
}

impl Writer for Influx {
    async fn write(&self, body: bytes::Bytes) -> Result<(), WriteError> {
        use influxdb2::api::write::TimestampPrecision::Milliseconds;
        let org = self.client.org.clone();
        let call = self.client.write_line_protocol_with_precision(&org, &self.bucket, body, Milliseconds);
        match tokio::time::timeout(self.timeout, call).await {
            Err(_) => Err(WriteError::Retry(format!("no answer in {:?}", self.timeout))),
            Ok(Ok(())) => Ok(()),
            Ok(Err(influxdb2::RequestError::Http { status, text })) => {
                let msg = format!("HTTP {status}: {}", text.chars().take(300).collect::<String>());
                match status.as_u16() {
                    400 | 413 | 422 => Err(WriteError::Rejected(msg)),
                    _ => Err(WriteError::Retry(msg)),
                }
            }
            Ok(Err(e)) => Err(WriteError::Retry(e.to_string())),
        }
    }
}
