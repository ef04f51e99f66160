//! Device time policy: which instant a reading is evaluated and stored at.
//!
//! Why: a device's clock is an input like any other, and a broken one must not break anything
//! beyond its own timestamps. Left alone, one reading stamped a year ahead would set a rule's
//! clock a year ahead (every later reading "stale": the subject muted, across restarts), and a
//! stamp past the year 2262 does not fit a nanosecond timestamp (the time-series server refuses
//! the whole batch). So a reading is evaluated at its device time only when that time is
//! plausible; otherwise at its receive time, flagged and counted. Rule clocks never move past
//! the receive time: a clock running a little fast is evaluated at its receive time (unflagged).
//!
//! Pure: the receive time is an argument, so rules and tests stay clock-free.

use gridsentry_sensors::{Reading, Timestamp};

/// 2020-01-01T00:00:00Z in ms: no device of this system was stamped earlier (the wire contract
/// dates from later); an earlier stamp is an unset clock (1970) or a corrupted one.
pub const EARLIEST_MS: u64 = 1_577_836_800_000;

/// Default of `[daemon] max_clock_skew_s`.
pub const DEFAULT_MAX_SKEW_S: u64 = 300;

/// Which way a refused device time was off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skew {
    /// More than the allowed skew ahead of the receive time.
    Ahead,
    /// Before [`EARLIEST_MS`].
    Behind,
}

impl Skew {
    /// Both directions, for counters.
    pub const ALL: [Skew; 2] = [Skew::Ahead, Skew::Behind];

    /// The `direction` label.
    pub const fn as_str(self) -> &'static str {
        match self {
            Skew::Ahead => "ahead",
            Skew::Behind => "behind",
        }
    }
}

/// The instant a reading counts at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventTime {
    /// Event time used by rules, the time series and the console, UTC ms.
    pub at_ms: u64,
    /// Set when the device's stamp was refused (the reading is flagged and counted).
    pub skew: Option<Skew>,
}

/// Event time of `r` received at `received_ms`, allowing the device clock `max_ahead_ms` ahead.
///
/// - unsynced clock: the receive time;
/// - before 2020, or more than `max_ahead_ms` ahead: the receive time, flagged;
/// - ahead by at most `max_ahead_ms`: the receive time (a rule's clock never runs ahead of now);
/// - otherwise (the past, e.g. backfill): the device time.
pub fn event_time(r: &Reading, received_ms: u64, max_ahead_ms: u64) -> EventTime {
    let plain = |at_ms| EventTime { at_ms, skew: None };
    match r.header.time {
        Timestamp::Unsynced(_) => plain(received_ms),
        Timestamp::Utc(ts) if ts < EARLIEST_MS => EventTime { at_ms: received_ms, skew: Some(Skew::Behind) },
        Timestamp::Utc(ts) if ts > received_ms.saturating_add(max_ahead_ms) => {
            EventTime { at_ms: received_ms, skew: Some(Skew::Ahead) }
        }
        Timestamp::Utc(ts) => plain(ts.min(received_ms)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gridsentry_sensors::{Body, Header, Id, NoiseReport};

    const NOW: u64 = 1_790_000_000_000;

    fn at(time: Timestamp) -> Reading {
        let header = Header {
            site: Id::new("s").unwrap(),
            device: Id::new("d").unwrap(),
            boot_id: 1,
            seq: 1,
            time,
            historical: false,
        };
        Reading { header, body: Body::Noise(NoiseReport::levels(60.0, 61.0)) }
    }

    #[test]
    fn plausible_times_are_kept_and_others_replaced_by_the_receive_time() {
        let e = |t| event_time(&at(t), NOW, 300_000);
        assert_eq!(e(Timestamp::Utc(NOW - 3_600_000)), EventTime { at_ms: NOW - 3_600_000, skew: None });
        assert_eq!(e(Timestamp::Utc(NOW + 299_000)), EventTime { at_ms: NOW, skew: None });
        assert_eq!(e(Timestamp::Utc(NOW + 301_000)), EventTime { at_ms: NOW, skew: Some(Skew::Ahead) });
        assert_eq!(e(Timestamp::Utc(u64::MAX)), EventTime { at_ms: NOW, skew: Some(Skew::Ahead) });
        assert_eq!(e(Timestamp::Utc(0)), EventTime { at_ms: NOW, skew: Some(Skew::Behind) });
        assert_eq!(e(Timestamp::Utc(EARLIEST_MS)), EventTime { at_ms: EARLIEST_MS, skew: None });
        assert_eq!(e(Timestamp::Unsynced(5)), EventTime { at_ms: NOW, skew: None });
    }
}
