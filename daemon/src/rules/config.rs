//! Rule definitions as they appear in the config file (`[[rule]]` tables).

use gridsentry_sensors::Stream;
use serde::{Deserialize, Serialize};

/// Order colour, in rising severity (Chinese emergency levels 4 → 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Colour {
    /// Level 4: maintenance, low.
    Blue,
    /// Level 3.
    Yellow,
    /// Level 2.
    Orange,
    /// Level 1: life at risk.
    Red,
}

impl Colour {
    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Colour::Blue => "blue",
            Colour::Yellow => "yellow",
            Colour::Orange => "orange",
            Colour::Red => "red",
        }
    }
}

/// One `[[rule]]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    /// Stable id: orders and persisted state refer to it.
    pub id: String,
    /// Colour of the orders it raises.
    pub colour: Colour,
    /// Sites it applies to: exact ids, or prefixes ending in `*`. Empty: every site.
    #[serde(default)]
    pub sites: Vec<String>,
    /// Colour steps while the condition persists.
    #[serde(default)]
    pub escalate: Vec<Step>,
    /// Flap detection: many transitions in a window become one flapping order.
    #[serde(default)]
    pub flap: Option<FlapConfig>,
    /// What to watch.
    pub condition: Condition,
}

/// Step up to `colour` once the condition has lasted `after_s`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// Seconds since the raise.
    pub after_s: u64,
    /// Colour from then on.
    pub colour: Colour,
}

/// `transitions` raises and clears within `window_s` make the subject flap.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlapConfig {
    /// Transitions (raise or clear) that count as flapping.
    pub transitions: u32,
    /// Window, seconds; flapping ends after a quiet window.
    pub window_s: u64,
}

/// The condition a rule watches.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Condition {
    /// A value above (or below) a limit, with hysteresis.
    Threshold(Threshold),
    /// Heart rate falls sharply within a window while the band is worn.
    HrDrop(HrDrop),
    /// Heart rate stays low while the band is worn.
    HrLow(HrLow),
    /// The band reports no skin contact.
    BandRemoved(BandRemoved),
    /// A device stops sending a stream, or its gateway says it is offline.
    NoData(NoData),
}

/// `above` (or `below`) the limit for `for_s` raises; `clear` for `clear_for_s` clears.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Threshold {
    /// Stream the value comes from.
    pub stream: Stream,
    /// Field: `laeq_db`, `lafmax_db`, `l10_db`, `l90_db`, `bpm`, or a channel (`disp_mm`, ...).
    pub field: String,
    /// Raise when the value is above this (exclusive with `below`).
    #[serde(default)]
    pub above: Option<f64>,
    /// Raise when the value is below this (exclusive with `above`).
    #[serde(default)]
    pub below: Option<f64>,
    /// Clear level (hysteresis): below it (for `above`) or above it (for `below`).
    pub clear: f64,
    /// Seconds the limit must be passed before raising.
    #[serde(default)]
    pub for_s: u64,
    /// Seconds the clear level must hold before clearing.
    #[serde(default)]
    pub clear_for_s: u64,
    /// Different limits at night (e.g. GB 3096 class 1: 55 dB day, 45 dB night).
    #[serde(default)]
    pub night: Option<Night>,
}

/// Night-time limit and clear level of a threshold, in the daemon's time zone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Night {
    /// Limit at night.
    pub limit: f64,
    /// Clear level at night.
    pub clear: f64,
    /// Start of night, `HH:MM` local time (GB 3096: 22:00).
    #[serde(default = "night_from")]
    pub from: String,
    /// End of night, `HH:MM` local time (GB 3096: 06:00).
    #[serde(default = "night_to")]
    pub to: String,
}

fn night_from() -> String {
    "22:00".into()
}

fn night_to() -> String {
    "06:00".into()
}

/// Heart rate falls by `drop_pct` % or `drop_bpm` below its highest value within `window_s`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HrDrop {
    /// Relative fall, percent of the window's highest rate.
    #[serde(default)]
    pub drop_pct: Option<f64>,
    /// Absolute fall, bpm.
    #[serde(default)]
    pub drop_bpm: Option<u16>,
    /// Window, seconds.
    pub window_s: u64,
    /// Seconds without a drop before it clears.
    #[serde(default = "sixty")]
    pub clear_for_s: u64,
}

/// Heart rate below `below_bpm` for `for_s` while worn.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HrLow {
    /// Limit, bpm (NEWS2 scores ≤ 40 as 3).
    pub below_bpm: u16,
    /// Seconds below before raising.
    #[serde(default)]
    pub for_s: u64,
    /// Clears at or above this (default `below_bpm + 5`).
    #[serde(default)]
    pub clear_bpm: Option<u16>,
    /// Seconds at or above `clear_bpm` before clearing.
    #[serde(default = "thirty")]
    pub clear_for_s: u64,
}

/// The band reports no skin contact for `for_s`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BandRemoved {
    /// Seconds off the wrist before raising.
    #[serde(default = "sixty")]
    pub for_s: u64,
}

/// No reading on `stream` for `silent_s`, or the device's last will said offline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoData {
    /// Stream expected from the device.
    pub stream: gridsentry_sensors::Stream,
    /// Seconds of silence before raising.
    pub silent_s: u64,
}

fn sixty() -> u64 {
    60
}

fn thirty() -> u64 {
    30
}
