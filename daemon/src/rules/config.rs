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
    /// Name for people (`广场夜间噪声超标`), shown instead of the id; empty: the kind's name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
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
    /// Slope deformation: improved tangent angle levels with a failure-time forecast.
    TangentAngle(TangentAngle),
    /// Rain over a window from a cumulative rain gauge.
    Rainfall(Rainfall),
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

fn ten_u32() -> u32 {
    10
}

fn sixty() -> u64 {
    60
}

fn thirty() -> u64 {
    30
}

/// Improved tangent angle of a displacement channel (Xu Qiang 2009): α = arctan(v / v_c).
/// `colour` of the rule is the lowest level that opens an order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TangentAngle {
    /// Displacement channel of the deform stream (`disp_mm`, `disp_e_mm`, `crack_mm`, ...).
    #[serde(default = "disp_mm")]
    pub field: String,
    /// Steady-creep velocity v_c, mm/day. Absent: learnt from the first `baseline_s` of data.
    #[serde(default)]
    pub creep_mm_per_day: Option<f64>,
    /// Baseline window for learning v_c, seconds (default 7 days).
    #[serde(default = "week")]
    pub baseline_s: u64,
    /// Readings needed besides `baseline_s` before v_c is learnt (a long-term slope from a few
    /// points is not one).
    #[serde(default = "ten_u32")]
    pub baseline_min_points: u32,
    /// Floor of v_c, mm/day: a quiet slope's noise must not look like acceleration.
    #[serde(default = "one")]
    pub min_creep_mm_per_day: f64,
    /// Velocity smoothing: least-squares slope over this trailing window, seconds.
    #[serde(default = "six_hours")]
    pub velocity_window_s: u64,
    /// Angle thresholds, degrees: blue, yellow, orange, red. Steady creep sits at 45° by
    /// construction, so the defaults put it inside blue (40–50°) rather than on the blue/yellow
    /// edge (Xu Qiang's 45°), where measurement noise would open and close yellow orders.
    #[serde(default = "angles")]
    pub levels_deg: [f64; 4],
    /// A level holds when it (or higher) appears in `hold[0]` of the last `hold[1]` evaluations.
    #[serde(default = "three_of_five")]
    pub hold: [u8; 2],
    /// Inverse-velocity points needed for a forecast.
    #[serde(default = "ten")]
    pub forecast_min_points: u32,
    /// Stations of the same site (this rule) at orange or above needed before red; a site with
    /// fewer stations needs all of them.
    #[serde(default = "one_u8")]
    pub corroborate: u8,
}

/// Rain in the last `window_s` (from a cumulative gauge) above `above_mm` raises; below
/// `clear_mm` for `clear_for_s` clears.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rainfall {
    /// Window, seconds (e.g. 86400 for 24 h rain).
    pub window_s: u64,
    /// Raise above this many mm in the window.
    pub above_mm: f64,
    /// Clear below this many mm in the window.
    pub clear_mm: f64,
    /// Seconds below `clear_mm` before clearing.
    #[serde(default)]
    pub clear_for_s: u64,
}

fn disp_mm() -> String {
    "disp_mm".into()
}

fn week() -> u64 {
    7 * 86_400
}

fn one() -> f64 {
    1.0
}

fn six_hours() -> u64 {
    6 * 3600
}

fn angles() -> [f64; 4] {
    [40.0, 50.0, 80.0, 85.0]
}

fn three_of_five() -> [u8; 2] {
    [3, 5]
}

fn ten() -> u32 {
    10
}

fn one_u8() -> u8 {
    1
}
