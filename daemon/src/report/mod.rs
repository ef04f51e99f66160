//! Reporting to the environmental bureau over HJ 212 (`[[hj212]]`).
//!
//! Why: automatic noise stations in China report minute and hour data to the ecology and
//! environment bureaus' platforms over HJ 212 (noise: system code ST=23). A plaza box that cannot
//! report there is a second box on the same pole. The pipeline hands every committed noise
//! report of a configured box to [`Reporter`]; its minute (CN=2051) and hour (CN=2061) windows
//! ([`noise`]) close into records that are queued in the order database
//! ([`crate::orders::hj212`]) and sent by one uplink per box ([`uplink`]), which waits for the
//! platform's answer to each and sends what it missed after an outage, oldest first.

pub mod hj212;
pub mod noise;
pub mod uplink;

use crate::flow::Inbound;
use gridsentry_sensors::Body;
use noise::{BoxWindows, Span, Window};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;
use tokio::sync::mpsc;

/// A closed window, ready to queue.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub mn: String,
    pub cn: &'static str,
    /// `YYYYMMDDhhmmss`, local.
    pub data_time: String,
    pub qn: String,
    pub cp: String,
}

/// The boxes' open windows; fed by the pipeline after each commit.
pub struct Reporter {
    boxes: Mutex<HashMap<String, (String, BoxWindows)>>,
    tz: jiff::tz::TimeZone,
    out: mpsc::UnboundedSender<Record>,
    last_qn: AtomicU64,
    /// Reports older than their box's open window (not counted).
    pub late: AtomicU64,
}

impl Reporter {
    /// For `boxes` (`(site/device, mn)`), times in `tz`; closed windows go to the receiver.
    pub fn new(
        boxes: &[(String, String)],
        tz: jiff::tz::TimeZone,
    ) -> (Reporter, mpsc::UnboundedReceiver<Record>) {
        let (out, rx) = mpsc::unbounded_channel();
        let boxes = boxes.iter().map(|(d, mn)| (d.clone(), (mn.clone(), BoxWindows::default()))).collect();
        (
            Reporter {
                boxes: Mutex::new(boxes),
                tz,
                out,
                last_qn: AtomicU64::new(0),
                late: AtomicU64::new(0),
            },
            rx,
        )
    }

    /// Takes committed readings (noise reports of configured boxes count).
    pub fn record<'a>(&self, readings: impl Iterator<Item = &'a Inbound>) {
        let mut boxes = self.boxes.lock().unwrap_or_else(|p| p.into_inner());
        let mut closed = Vec::new();
        for m in readings {
            let Body::Noise(n) = &m.reading.body else { continue };
            let key = format!("{}/{}", m.reading.header.site, m.reading.header.device);
            let Some((mn, windows)) = boxes.get_mut(&key) else { continue };
            if !windows.add(n, m.event_ms, m.received_ms, &mut closed) {
                self.late.fetch_add(1, Relaxed);
            }
            let mn = mn.clone();
            for (span, w) in closed.drain(..) {
                self.emit(&mn, span, &w);
            }
        }
    }

    /// Closes the windows of boxes that have been quiet for [`noise::QUIET_MS`].
    pub fn flush(&self, now_ms: u64) {
        let mut boxes = self.boxes.lock().unwrap_or_else(|p| p.into_inner());
        let mut closed = Vec::new();
        for (mn, windows) in boxes.values_mut() {
            windows.flush_quiet(now_ms, &mut closed);
            for (span, w) in closed.drain(..) {
                self.emit(mn, span, &w);
            }
        }
    }

    fn emit(&self, mn: &str, span: Span, w: &Window) {
        let Some(l) = w.levels() else { return };
        let data_time = self.local(w.start_ms, "%Y%m%d%H%M%S");
        let flag = if l.overload { "T" } else { "N" };
        let field = |code: &str, v: f64| format!("{code}-Avg={v:.1},{code}-Flag={flag}");
        let cp = format!(
            "DataTime={data_time};{};{};{};{};{};{}",
            field("Leq", l.leq),
            field("L10", l.l10),
            field("L50", l.l50),
            field("L90", l.l90),
            field("LMx", l.lmax),
            field("LMn", l.lmin)
        );
        // A request number per record, in time order and never repeated by this process.
        let qn = self.local(self.bump(crate::clock::now_ms()), "%Y%m%d%H%M%S%3f");
        let _ = self.out.send(Record { mn: mn.to_string(), cn: span.cn(), data_time, qn, cp });
    }

    /// The next unused millisecond at or after `at`.
    fn bump(&self, at: u64) -> u64 {
        let last = self.last_qn.fetch_update(Relaxed, Relaxed, |last| Some(at.max(last + 1)));
        at.max(last.unwrap_or_else(|l| l) + 1)
    }

    fn local(&self, ms: u64, format: &str) -> String {
        jiff::Timestamp::from_millisecond(ms as i64)
            .map(|t| t.to_zoned_datetime(self.tz.clone()).strftime(format).to_string())
            .unwrap_or_default()
    }
}
