//! Serial line devices: GNSS receivers printing NMEA GGA sentences, one task per port.
//!
//! Why averaging: an RTK receiver prints a fix every second, each with a few millimetres of
//! noise; slope rules want one steady value per minute, not sixty noisy ones. Each window
//! (`average_s`) gives one reading, the mean east/north/up displacement of its good fixes.
//!
//! Why quality gating: a float-RTK or plain GPS fix wanders by decimetres to metres, which the
//! tangent-angle rule would read as a landslide. Fixes below `min_quality` are counted
//! (`nmea_low_quality`) and dropped. Noise on the line — bad checksums, garbage, over-long lines
//! — is counted by reason and logged at most once a minute per device, never a panic.
//!
//! A receiver that gives no good fix for `silent_s`, or a port that fails, is reported offline
//! once (a `no_data` rule raises its maintenance order at once); the port is re-opened with a
//! doubling wait, and the next good window reports it online again.

use crate::config::SerialDevice;
use crate::flow::{Inbound, Inlet};
use crate::metrics::Metrics;
use gridsentry_sensors::nmea::{self, Fix, Origin};
use gridsentry_sensors::{Body, DeviceState, Id, Topic};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncReadExt;
use tokio::sync::watch;
use tokio::time::Instant;

/// Longest line kept (NMEA allows 82 characters; receivers with extra decimals write ~100).
const LINE_MAX: usize = 256;

/// Starts one task per device; they stop when `shutdown` turns true or the pipeline goes away.
pub fn spawn(
    devices: &[SerialDevice],
    tx: Inlet,
    metrics: Arc<Metrics>,
    shutdown: watch::Receiver<bool>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let boot: u32 = rand::random();
    let mut tasks = Vec::new();
    for d in devices {
        let (Ok(site), Ok(device)) = (Id::new(&d.site), Id::new(&d.device)) else {
            tracing::error!(site = %d.site, device = %d.device, "serial device skipped: not checked by config");
            continue;
        };
        let port = Port {
            cfg: d.clone(),
            site,
            device,
            boot,
            seq: 0,
            online: None,
            tx: tx.clone(),
            metrics: metrics.clone(),
            quiet_until: None,
        };
        tasks.push(tokio::spawn(port.run(shutdown.clone())));
    }
    tasks
}

struct Port {
    cfg: SerialDevice,
    site: Id,
    device: Id,
    boot: u32,
    seq: u32,
    online: Option<bool>,
    tx: Inlet,
    metrics: Arc<Metrics>,
    /// Line-noise warnings are held back until then (one a minute per device).
    quiet_until: Option<Instant>,
}

/// Mean displacement of the good fixes of one window.
#[derive(Default)]
struct Window {
    n: u32,
    sum: [f64; 3],
}

impl Port {
    async fn run(mut self, mut shutdown: watch::Receiver<bool>) {
        let mut wait = Duration::from_millis(500);
        loop {
            let opened = tokio_serial::new(&self.cfg.path, self.cfg.baud);
            let result = {
                use tokio_serial::SerialPortBuilderExt;
                opened.open_native_async()
            };
            let stop = match result {
                Ok(port) => {
                    wait = Duration::from_millis(500);
                    tokio::select! {
                        r = self.read(port) => r,
                        _ = shutdown.wait_for(|s| *s) => return,
                    }
                }
                Err(e) => {
                    self.metrics.field_error("serial_open");
                    tracing::debug!(path = %self.cfg.path, error = %e, "serial port not opened");
                    !self.offline("serial_open").await
                }
            };
            if stop {
                return;
            }
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = shutdown.wait_for(|s| *s) => return,
            }
            wait = (wait * 2).min(Duration::from_millis(self.cfg.backoff_max_ms));
        }
    }

    /// Reads lines until the port fails; true when the pipeline is gone (stop).
    async fn read(&mut self, mut port: tokio_serial::SerialStream) -> bool {
        let origin = self.cfg.origin;
        let every = Duration::from_secs(self.cfg.average_s);
        let silent = Duration::from_secs(self.cfg.silent_s);
        let (mut window, mut window_end, mut last_good) =
            (Window::default(), Instant::now() + every, Instant::now());
        let (mut line, mut chunk, mut skipping) = (Vec::with_capacity(LINE_MAX), [0u8; 512], false);
        loop {
            let deadline = match self.online {
                Some(false) => window_end, // already reported: no silence deadline to wait for
                _ => window_end.min(last_good + silent),
            };
            let n = tokio::select! {
                r = port.read(&mut chunk) => match r {
                    Ok(0) | Err(_) => {
                        self.metrics.field_error("serial_io");
                        return !self.offline("serial_io").await;
                    }
                    Ok(n) => n,
                },
                _ = tokio::time::sleep_until(deadline) => 0,
            };
            for &b in &chunk[..n] {
                match b {
                    b'\n' => {
                        if !skipping {
                            if let Some(fix) = self.line(&line) {
                                let [e, n, u] = origin.enu_mm(&fix);
                                window.n += 1;
                                window.sum = [window.sum[0] + e, window.sum[1] + n, window.sum[2] + u];
                                last_good = Instant::now();
                            }
                        }
                        skipping = false;
                        line.clear();
                    }
                    _ if skipping => {}
                    _ if line.len() == LINE_MAX => {
                        self.noise("serial_overlong");
                        skipping = true;
                    }
                    _ => line.push(b),
                }
            }
            let now = Instant::now();
            if now >= window_end {
                window_end = now + every;
                let w = std::mem::take(&mut window);
                if w.n > 0 && !self.emit(&origin, w).await {
                    return true;
                }
            }
            if now >= last_good + silent && self.online != Some(false) && !self.offline("no good fix").await {
                return true;
            }
        }
    }

    /// One line: a good fix, or nothing (counted).
    fn line(&mut self, raw: &[u8]) -> Option<Fix> {
        let Ok(text) = std::str::from_utf8(raw) else {
            self.noise("nmea_malformed");
            return None;
        };
        if text.trim().is_empty() {
            return None;
        }
        match nmea::parse_line(text) {
            Ok(Some(fix)) if fix.quality >= self.cfg.min_quality => Some(fix),
            Ok(Some(_)) => {
                self.metrics.field_error("nmea_low_quality");
                None
            }
            Ok(None) => None,
            Err(e) => {
                self.noise(e.reason());
                None
            }
        }
    }

    /// Counts line noise; logs it at most once a minute per device.
    fn noise(&mut self, reason: &'static str) {
        self.metrics.field_error(reason);
        let now = Instant::now();
        if self.quiet_until.is_none_or(|t| now >= t) {
            self.quiet_until = Some(now + Duration::from_secs(60));
            let topic =
                Topic::new(self.site.clone(), self.device.clone(), gridsentry_sensors::Stream::Deform);
            tracing::warn!(%topic, path = %self.cfg.path, reason, "serial line noise dropped (further noise counted, logged again in a minute)");
        }
    }

    async fn emit(&mut self, origin: &Origin, w: Window) -> bool {
        let n = f64::from(w.n);
        let mean = [w.sum[0] / n, w.sum[1] / n, w.sum[2] / n];
        let report = match origin.report(mean) {
            Ok(r) => r,
            Err(e) => {
                self.noise("nmea_malformed");
                tracing::debug!(error = %e, "window mean not a number");
                return true;
            }
        };
        if self.online != Some(true) {
            tracing::info!(site = %self.site, device = %self.device, fixes = w.n, "serial GNSS receiver giving good fixes");
            self.online = Some(true);
            let s = self.status(DeviceState::Online);
            if self.tx.send(vec![s]).is_err() {
                return false;
            }
        }
        self.seq = self.seq.wrapping_add(1);
        let r = self.reading(self.seq, Body::Deform(report));
        self.tx.send(vec![r]).is_ok()
    }

    /// Reports the device offline once; false when the pipeline is gone.
    async fn offline(&mut self, why: &str) -> bool {
        if self.online == Some(false) {
            return true;
        }
        tracing::warn!(site = %self.site, device = %self.device, path = %self.cfg.path, why, "serial device reported offline");
        self.online = Some(false);
        let s = self.status(DeviceState::Offline);
        self.tx.send(vec![s]).is_ok()
    }

    fn reading(&self, seq: u32, body: Body) -> Inbound {
        super::field_reading(&self.site, &self.device, self.boot, seq, body)
    }

    fn status(&self, state: DeviceState) -> Inbound {
        super::field_status(&self.site, &self.device, self.boot, state, "nmea")
    }
}
