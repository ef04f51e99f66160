//! A noise report as the outbox keeps it: 16 bytes instead of the ~100-byte `Reading` (ids and
//! all). A noise box keeps an hour of 1 s reports while the broker is away (3600 × 16 B = 56 KB);
//! the wire reading is rebuilt when it is sent.

use gridsentry_sensors::{Body, Header, NoiseReport, Reading, Stream, Timestamp};

/// Seconds between the Unix epoch and 2000-01-01T00:00:00Z: record times count from there, so
/// a u32 of seconds lasts until 2136.
const EPOCH_2000_S: u64 = 946_684_800;

/// One stored noise report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NoiseRecord {
    /// Seconds since 2000 (UTC) or since boot (unsynced clock, flag bit 2).
    time_s: u32,
    /// LAeq, LAFmax, L10, L90 in centi-dB (0xFFFF: not measured).
    levels: [u16; 4],
    /// Report interval in tenths of a second.
    interval_ds: u16,
    /// Bit 0 overload, bit 1 under range, bit 2 unsynced clock.
    flags: u8,
    /// Calibration offset applied, tenths of a dB (±12.7 dB).
    cal_ddb: i8,
}

fn cdb(db: f32) -> u16 {
    (db * 100.0 + 0.5).clamp(0.0, 65534.0) as u16
}

fn db(c: u16) -> Option<f32> {
    (c != u16::MAX).then_some(c as f32 / 100.0)
}

impl NoiseRecord {
    /// Stores `r` measured at `time` (sub-second parts are dropped: reports end on seconds).
    pub fn new(time: Timestamp, r: &NoiseReport) -> Self {
        let (time_s, unsynced) = match time {
            Timestamp::Utc(ms) => ((ms / 1000).saturating_sub(EPOCH_2000_S) as u32, 0),
            Timestamp::Unsynced(ms) => ((ms / 1000) as u32, 4),
        };
        let opt = |v: Option<f32>| v.map_or(u16::MAX, cdb);
        NoiseRecord {
            time_s,
            levels: [cdb(r.laeq_db), cdb(r.lafmax_db), opt(r.l10_db), opt(r.l90_db)],
            interval_ds: (r.interval_ms / 100).min(u16::MAX as u32) as u16,
            flags: u8::from(r.overload) | u8::from(r.under_range) << 1 | unsynced,
            cal_ddb: libm::roundf(r.cal_offset_db * 10.0).clamp(-127.0, 127.0) as i8,
        }
    }

    /// LAeq, LAFmax, L10, L90 in hundredths of a dB (`u16::MAX`: not measured), for logs.
    pub fn levels_cdb(&self) -> [u16; 4] {
        self.levels
    }

    /// The reading to send: `header` carries the identity, sequence number and historical flag;
    /// its time is replaced by the record's.
    pub fn reading(&self, mut header: Header) -> Reading {
        let s = u64::from(self.time_s);
        header.time = if self.flags & 4 == 0 {
            Timestamp::Utc((s + EPOCH_2000_S) * 1000)
        } else {
            Timestamp::Unsynced(s * 1000)
        };
        let [laeq, lafmax, l10, l90] = self.levels;
        let report = NoiseReport {
            interval_ms: u32::from(self.interval_ds) * 100,
            laeq_db: db(laeq).unwrap_or(0.0),
            lafmax_db: db(lafmax).unwrap_or(0.0),
            lcpeak_db: None,
            l10_db: db(l10),
            l90_db: db(l90),
            overload: self.flags & 1 != 0,
            under_range: self.flags & 2 != 0,
            cal_offset_db: f32::from(self.cal_ddb) / 10.0,
        };
        Reading { header, body: Body::Noise(report) }
    }
}

impl crate::uplink::Stored for NoiseRecord {
    const STREAM: Stream = Stream::Noise;

    fn reading(&self, header: Header) -> Reading {
        NoiseRecord::reading(self, header)
    }
}
