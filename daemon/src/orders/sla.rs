//! Service-level deadlines per colour, and what a missed one does.
//!
//! Defaults follow the street command centre's "dispatch within 1 minute, first responders on
//! site within 5, reinforcements within 15" for red, and stretch for lower colours:
//!
//! | colour | dispatch | on site | reinforce | remind until acknowledged |
//! |---|---|---|---|---|
//! | red | 1 min | 5 min | 15 min | every 1 min |
//! | orange | 5 min | 30 min | 60 min | every 5 min |
//! | yellow | 30 min | 2 h | 4 h | every 30 min |
//! | blue | 1 day | 3 days | 7 days | every day |
//!
//! A missed deadline escalates once (an `escalated` event, the order moves to the next receiver
//! tier, everyone there is notified); reminders repeat to the current tier until someone
//! acknowledges.

use super::model::State;
use crate::rules::{Colour, Said};
use serde::{Deserialize, Serialize};

/// Deadlines of one colour, seconds after the raise (reminders: between reminders).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sla {
    /// Someone must dispatch it by then.
    pub dispatch_s: u64,
    /// Someone must be on site by then.
    pub on_site_s: u64,
    /// It must be resolved by then, or reinforcements are called (next tier).
    pub reinforce_s: u64,
    /// Re-notify at this interval until acknowledged.
    pub remind_s: u64,
}

/// Deadlines for every colour.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SlaTable {
    /// Red (life at risk).
    pub red: Sla,
    /// Orange.
    pub orange: Sla,
    /// Yellow.
    pub yellow: Sla,
    /// Blue (maintenance).
    pub blue: Sla,
    /// Seconds after a person resolves an order while its condition is still active before it
    /// is raised again (a new order naming the resolved one); 0: never.
    pub reraise_s: u64,
}

const fn sla(dispatch_s: u64, on_site_s: u64, reinforce_s: u64, remind_s: u64) -> Sla {
    Sla { dispatch_s, on_site_s, reinforce_s, remind_s }
}

impl Default for SlaTable {
    fn default() -> Self {
        SlaTable {
            red: sla(60, 300, 900, 60),
            orange: sla(300, 1800, 3600, 300),
            yellow: sla(1800, 7200, 14400, 1800),
            blue: sla(86_400, 259_200, 604_800, 86_400),
            reraise_s: 300,
        }
    }
}

impl SlaTable {
    /// The deadlines of `colour`.
    pub fn get(&self, colour: Colour) -> Sla {
        match colour {
            Colour::Red => self.red,
            Colour::Orange => self.orange,
            Colour::Yellow => self.yellow,
            Colour::Blue => self.blue,
        }
    }
}

/// The deadlines, as bits of an order's `missed` column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Deadline {
    Dispatch = 1,
    OnSite = 2,
    Reinforce = 4,
}

impl Deadline {
    const ALL: [Deadline; 3] = [Deadline::Dispatch, Deadline::OnSite, Deadline::Reinforce];

    fn name(self) -> &'static str {
        match self {
            Deadline::Dispatch => "dispatch",
            Deadline::OnSite => "on-site",
            Deadline::Reinforce => "reinforcement",
        }
    }

    fn name_zh(self) -> &'static str {
        match self {
            Deadline::Dispatch => "派遣",
            Deadline::OnSite => "到场",
            Deadline::Reinforce => "增援",
        }
    }

    fn seconds(self, sla: &Sla) -> u64 {
        match self {
            Deadline::Dispatch => sla.dispatch_s,
            Deadline::OnSite => sla.on_site_s,
            Deadline::Reinforce => sla.reinforce_s,
        }
    }

    /// Still pending in `state` (not yet met).
    fn pending(self, state: State) -> bool {
        match self {
            Deadline::Dispatch => state == State::Raised,
            Deadline::OnSite => matches!(state, State::Raised | State::Dispatched | State::Acknowledged),
            Deadline::Reinforce => state.is_open(),
        }
    }
}

/// Deadlines that `now_ms` has passed and that were not already escalated: `(bit, why)`.
pub(crate) fn missed(
    sla: &Sla,
    state: State,
    opened_ms: i64,
    missed_bits: i64,
    now_ms: i64,
) -> Vec<(i64, Said)> {
    Deadline::ALL
        .into_iter()
        .filter(|d| missed_bits & *d as i64 == 0 && d.pending(state))
        .filter(|d| now_ms >= opened_ms + 1000 * d.seconds(sla) as i64)
        .map(|d| {
            let (s, name) = (d.seconds(sla), d.name());
            (
                d as i64,
                Said::new(
                    format!("{name} deadline ({s} s) missed"),
                    format!("超过{}时限（{s} 秒）", d.name_zh()),
                ),
            )
        })
        .collect()
}

/// Whether a reminder is due: not acknowledged yet and the interval has passed.
pub(crate) fn remind_due(sla: &Sla, state: State, last_notice_ms: i64, now_ms: i64) -> bool {
    matches!(state, State::Raised | State::Dispatched)
        && now_ms >= last_notice_ms + 1000 * sla.remind_s as i64
}

/// The next deadline an open order still has to meet, and the ones it already missed.
pub(crate) fn due(sla: &Sla, state: State, created_ms: i64, missed_bits: i64) -> Option<Due> {
    if !state.is_open() {
        return None;
    }
    let pending = || Deadline::ALL.into_iter().filter(|d| d.pending(state));
    let next = pending()
        .filter(|d| missed_bits & *d as i64 == 0)
        .map(|d| (d.name(), created_ms + 1000 * d.seconds(sla) as i64))
        .min_by_key(|(_, t)| *t);
    let overdue = pending().filter(|d| missed_bits & *d as i64 != 0).map(Deadline::name).collect();
    Some(Due { next: next.map(|n| n.0), at_ms: next.map(|n| n.1), overdue })
}

/// Deadlines of an open order (console countdowns).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Due {
    /// The next deadline to meet: `dispatch`, `on-site` or `reinforcement`.
    pub next: Option<&'static str>,
    /// When it falls, UTC ms.
    pub at_ms: Option<i64>,
    /// Deadlines passed without being met.
    pub overdue: Vec<&'static str>,
}
