//! The wristband gateway in an elderly person's home: BLE Heart Rate Measurement notifications
//! (from a connected band) and advertisements (bands that broadcast their heart rate) in,
//! heart-rate readings out.
//!
//! - Per band, what arrives within a report interval is merged into one reading: the latest heart
//!   rate, contact and battery, and the RR intervals in order (at most `RR_MAX`, newest kept).
//!   Bands repeat the same advertisement many times a second: a payload equal to the band's
//!   previous one within `repeat_ms` is a duplicate and adds nothing (no doubled RR intervals).
//! - A change of skin contact (band taken off, or put back) is reported at once, not at the end
//!   of the interval: "band removed" is its own state upstream, and a silent band must never look
//!   like heart rate 0.
//! - Unparseable data and bands beyond the gateway's capacity are counted, never a panic.

use gridsentry_sensors::hrs;
use gridsentry_sensors::reading::RR_MAX;
use gridsentry_sensors::{Body, Contact, Header, HeartRateReport, Id, Reading, Stream, Timestamp};

/// A heart-rate reading as the gateway's outbox keeps it (with the time it was reported).
#[derive(Debug, Clone, PartialEq)]
pub struct HrRecord {
    /// When the gateway reported it.
    pub time: Timestamp,
    /// The merged report.
    pub report: HeartRateReport,
}

impl crate::uplink::Stored for HrRecord {
    const STREAM: Stream = Stream::Hr;

    fn reading(&self, mut header: Header) -> Reading {
        header.time = self.time;
        Reading { header, body: Body::HeartRate(self.report.clone()) }
    }
}

/// Gateway settings.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// One reading per band per this interval.
    pub report_ms: u64,
    /// An identical payload from the same band within this time is a repeat.
    pub repeat_ms: u64,
}

impl Default for Settings {
    /// 5 s reports, 2 s repeat window.
    fn default() -> Self {
        Settings { report_ms: 5_000, repeat_ms: 2_000 }
    }
}

/// Counters of what was dropped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Dropped {
    /// Notifications or advertisements that did not parse.
    pub malformed: u32,
    /// Data from bands beyond the gateway's capacity.
    pub unknown_band: u32,
    /// Repeats of the previous payload.
    pub repeats: u32,
}

#[derive(Debug, Clone)]
struct Band {
    id: Id,
    last_payload: heapless::Vec<u8, 24>,
    last_payload_ms: Option<u64>,
    since_ms: u64,
    pending: Option<HeartRateReport>,
    contact: Option<Contact>,
    battery_pct: Option<u8>,
}

/// The gateway's state for up to `B` bands.
#[derive(Debug, Clone)]
pub struct Gateway<const B: usize> {
    settings: Settings,
    bands: heapless::Vec<Band, B>,
    dropped: Dropped,
}

/// A band's id: its BLE address as 12 lowercase hex digits, most significant byte first (HCI
/// hands addresses over least significant byte first: `le` is that order).
pub fn band_id(le: [u8; 6]) -> Id {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = heapless::String::<12>::new();
    for b in le.iter().rev() {
        let _ = s.push(char::from(HEX[usize::from(b >> 4)]));
        let _ = s.push(char::from(HEX[usize::from(b & 15)]));
    }
    // Cannot fail: 12 hex digits are a valid id.
    Id::new(&s).unwrap_or_else(|_| unreachable!("hex digits are id characters"))
}

const HRM_UUID: u16 = 0x2A37;
const HRS_UUID: u16 = 0x180D;
const BATTERY_UUID: u16 = 0x2A19;
const BATTERY_SERVICE: u16 = 0x180F;

impl<const B: usize> Gateway<B> {
    /// A gateway with no bands seen yet.
    pub fn new(settings: Settings) -> Self {
        Gateway { settings, bands: heapless::Vec::new(), dropped: Dropped::default() }
    }

    /// What was dropped so far.
    pub fn dropped(&self) -> Dropped {
        self.dropped
    }

    fn band(&mut self, id: &Id, now_ms: u64) -> Option<usize> {
        if let Some(i) = self.bands.iter().position(|b| &b.id == id) {
            return Some(i);
        }
        let band = Band {
            id: id.clone(),
            last_payload: heapless::Vec::new(),
            last_payload_ms: None,
            since_ms: now_ms,
            pending: None,
            contact: None,
            battery_pct: None,
        };
        if self.bands.push(band).is_err() {
            self.dropped.unknown_band += 1;
            return None;
        }
        Some(self.bands.len() - 1)
    }

    /// A Heart Rate Measurement notification from a connected band. A contact change is
    /// handed to `out` at once.
    pub fn notification(
        &mut self,
        id: &Id,
        bytes: &[u8],
        now_ms: u64,
        out: &mut impl FnMut(HeartRateReport),
    ) {
        let Some(i) = self.band(id, now_ms) else { return };
        if self.repeat(i, bytes, now_ms) {
            return;
        }
        match hrs::parse(bytes) {
            Ok(m) => self.merge(i, m, now_ms, out),
            Err(_) => self.dropped.malformed += 1,
        }
    }

    /// An advertisement's data (AD structures). Heart rate travels as service data for the Heart
    /// Rate Measurement (0x2A37) or Heart Rate service (0x180D) UUID, battery as service data for
    /// 0x2A19 / 0x180F. Advertisements without either are ignored.
    pub fn advertisement(&mut self, id: &Id, ad: &[u8], now_ms: u64, out: &mut impl FnMut(HeartRateReport)) {
        let (mut hrm, mut battery, mut rest) = (None, None, ad);
        while let [len, tail @ ..] = rest {
            let len = usize::from(*len);
            if len == 0 {
                break;
            }
            let Some((structure, after)) = tail.split_at_checked(len) else {
                self.dropped.malformed += 1;
                return;
            };
            rest = after;
            // Service Data - 16-bit UUID: type 0x16, UUID little-endian, then the value.
            if let [0x16, lo, hi, value @ ..] = structure {
                match u16::from_le_bytes([*lo, *hi]) {
                    HRM_UUID | HRS_UUID => hrm = Some(value),
                    BATTERY_UUID | BATTERY_SERVICE => battery = value.first().copied(),
                    _ => {}
                }
            }
        }
        if battery.is_none() && hrm.is_none() {
            return;
        }
        let Some(i) = self.band(id, now_ms) else { return };
        if let Some(pct) = battery {
            self.bands[i].battery_pct = Some(pct.min(100));
        }
        if let Some(bytes) = hrm {
            if self.repeat(i, bytes, now_ms) {
                return;
            }
            match hrs::parse(bytes) {
                Ok(m) => self.merge(i, m, now_ms, out),
                Err(_) => self.dropped.malformed += 1,
            }
        }
    }

    /// Same payload as last time, within the repeat window (remembers this one otherwise).
    fn repeat(&mut self, i: usize, bytes: &[u8], now_ms: u64) -> bool {
        let b = &mut self.bands[i];
        let recent = b.last_payload_ms.is_some_and(|t| now_ms.saturating_sub(t) < self.settings.repeat_ms);
        if recent && b.last_payload.as_slice() == bytes {
            self.dropped.repeats += 1;
            return true;
        }
        b.last_payload.clear();
        let _ = b.last_payload.extend_from_slice(&bytes[..bytes.len().min(24)]);
        b.last_payload_ms = Some(now_ms);
        false
    }

    fn merge(
        &mut self,
        i: usize,
        m: hrs::HeartRateMeasurement,
        now_ms: u64,
        out: &mut impl FnMut(HeartRateReport),
    ) {
        let b = &mut self.bands[i];
        let changed = b.contact.is_some_and(|c| c != m.contact);
        b.contact = Some(m.contact);
        let report = b.pending.get_or_insert_with(|| {
            b.since_ms = now_ms;
            HeartRateReport {
                band: b.id.clone(),
                bpm: m.bpm,
                contact: m.contact,
                rr_1024: heapless::Vec::new(),
                energy_kj: None,
                battery_pct: None,
            }
        });
        report.bpm = m.bpm;
        report.contact = m.contact;
        report.energy_kj = m.energy_kj.or(report.energy_kj);
        for rr in m.rr_1024 {
            if report.rr_1024.is_full() {
                report.rr_1024.remove(0);
            }
            let _ = report.rr_1024.push(rr);
        }
        debug_assert!(report.rr_1024.len() <= RR_MAX);
        if changed {
            self.flush(i, now_ms, out);
        }
    }

    fn flush(&mut self, i: usize, now_ms: u64, out: &mut impl FnMut(HeartRateReport)) {
        let b = &mut self.bands[i];
        if let Some(mut r) = b.pending.take() {
            r.battery_pct = b.battery_pct;
            out(r);
        }
        b.since_ms = now_ms;
    }

    /// Hands over every band's reading whose interval is over.
    pub fn due(&mut self, now_ms: u64, out: &mut impl FnMut(HeartRateReport)) {
        for i in 0..self.bands.len() {
            let b = &self.bands[i];
            if b.pending.is_some() && now_ms.saturating_sub(b.since_ms) >= self.settings.report_ms {
                self.flush(i, now_ms, out);
            }
        }
    }
}
