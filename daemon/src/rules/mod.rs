//! Rules: pure, synchronous functions `(state, reading, time) -> (state, events)`.
//!
//! Why pure: nothing here does I/O or reads a clock, so rules are unit-tested with explicit
//! times, replayed over history (backtest) and their state is plain data (serde) that the order
//! store persists in the same transaction as the orders it caused. A pending `for_s` timer
//! therefore survives a restart: its start time is part of the state.
//!
//! Time is **event time**: a reading's device timestamp (or the receive time when the device
//! clock is unsynced). Readings older than the last one applied for the same rule and subject are
//! skipped (counted), never evaluated out of order. Readings flagged historical (backfill) still
//! move the state, but what they raise is marked `late`; it is confirmed (and pages someone)
//! only if a live reading finds the condition still active.

mod bookkeeping;
mod condition;
mod config;
mod engine;
mod kind;
mod landslide;
mod say;
pub mod slope;
mod state;
mod validate;

pub(crate) use condition::{minute_of_day, parse_hhmm};
pub use config::{
    BandRemoved, Colour, Condition, FlapConfig, HrDrop, HrLow, Night, NoData, Rainfall, RuleConfig, Step,
    TangentAngle, Threshold,
};
pub use engine::{Engine, RuleError, Stats, MAX_BANDS};
pub use landslide::{RainState, SlopeState};
pub use say::{default_name, Said};
pub use slope::Forecast;
pub use state::{KindState, Subject, SubjectState};

use gridsentry_sensors::Id;
use std::sync::Arc;

/// What a rule says happened to one subject.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// The rule's id.
    pub rule: Arc<str>,
    /// Whom it is about.
    pub subject: Subject,
    /// Event time, UTC ms.
    pub at_ms: u64,
    /// What happened.
    pub kind: EventKind,
    /// Raised from backfilled readings: must not page anyone until confirmed.
    pub late: bool,
    /// One line for people, in English and Chinese.
    pub summary: Said,
    /// The value that caused it, when there is one.
    pub value: Option<f64>,
    /// Forecast failure time (tangent-angle rules), put on the order.
    pub forecast: Option<Forecast>,
}

/// The kinds of rule events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// The condition started (or, with `flapping`, keeps starting and stopping).
    Raise {
        /// Colour of the order.
        colour: Colour,
        /// Raised by flap detection: one order for many transitions.
        flapping: bool,
    },
    /// A late raise was found still active by a live reading: page now.
    Confirm,
    /// The condition persisted past an `escalate` step.
    Escalate {
        /// The new colour.
        colour: Colour,
        /// The event's summary replaces the order's (multi-level rules describe the new level);
        /// otherwise it is the reason appended to it.
        restate: bool,
    },
    /// The condition ended (cleared level held for `clear_for_s`).
    Clear,
    /// A new failure-time forecast for the open order (recorded, not paged).
    Forecast,
}

/// Milliseconds in a second.
pub(crate) const MS: u64 = 1000;

/// The subject of a reading for rules keyed by band (heart rules) or by device.
pub(crate) fn subject(site: &Id, device: &Id, band: Option<&Id>) -> Subject {
    Subject { site: site.clone(), device: device.clone(), band: band.cloned() }
}
