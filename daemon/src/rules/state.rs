//! Per-subject rule state: plain data, serialised with serde and persisted by the order store.

use super::config::{Colour, FlapConfig, Step};
use super::MS;
use gridsentry_sensors::Id;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::fmt;

/// Whom a rule event is about: a device, or a wristband behind a gateway.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Subject {
    /// Site id.
    pub site: Id,
    /// Device (or gateway) id.
    pub device: Id,
    /// Wristband id, for heart rules.
    pub band: Option<Id>,
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.site, self.device)?;
        match &self.band {
            Some(b) => write!(f, "/{b}"),
            None => Ok(()),
        }
    }
}

impl Subject {
    /// Parses the `site/device[/band]` form written by `Display`.
    pub fn parse(s: &str) -> Option<Subject> {
        let mut it = s.split('/');
        let site = Id::new(it.next()?).ok()?;
        let device = Id::new(it.next()?).ok()?;
        let band = match it.next() {
            Some(b) => Some(Id::new(b).ok()?),
            None => None,
        };
        it.next().is_none().then_some(Subject { site, device, band })
    }
}

/// An open condition (an order exists for it).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Open {
    /// Event time of the raise.
    pub since_ms: u64,
    /// Current colour (after escalation steps).
    pub colour: Colour,
    /// Raised from backfill and not yet confirmed by a live reading.
    pub late: bool,
}

/// Everything a rule remembers about one subject: the bookkeeping every condition shares, and
/// what its own kind keeps ([`KindState`]).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(from = "Stored", into = "Stored")]
pub struct SubjectState {
    /// Event time of the last applied reading (older ones are skipped).
    pub last_ms: u64,
    /// The debounced condition.
    pub active: bool,
    /// Since when the pending transition (raise when inactive, clear when active) has held.
    pub pending_since: Option<u64>,
    /// The order this rule holds open for the subject.
    pub open: Option<Open>,
    /// Recent transition times, for flap detection.
    pub transitions: VecDeque<u64>,
    /// Flapping: transitions are folded into one order until a quiet window passes.
    pub flapping: bool,
    /// Receive time of the last message from the device (no-data rules).
    pub seen_ms: u64,
    /// The device's last will said offline (no-data rules).
    pub offline: bool,
    /// What the condition's kind keeps.
    pub kind: KindState,
    /// Changed since last persisted.
    pub(crate) dirty: bool,
    /// `seen_ms` as last persisted.
    pub(crate) saved_seen_ms: u64,
}

/// What one condition kind keeps beyond the shared bookkeeping.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum KindState {
    /// Nothing (thresholds, heart-rate low, band removed, no data).
    #[default]
    None,
    /// Heart-rate drop: samples of the window (event ms, bpm).
    HrDrop(VecDeque<(u64, u16)>),
    /// Tangent angle: displacement history, levels, forecast.
    Slope(Box<super::landslide::SlopeState>),
    /// Rainfall: the gauge's last total and the increments of the window.
    Rain(Box<super::landslide::RainState>),
}

impl KindState {
    /// The heart-rate window (made on first use).
    pub(crate) fn hr_window(&mut self) -> &mut VecDeque<(u64, u16)> {
        if !matches!(self, KindState::HrDrop(_)) {
            *self = KindState::HrDrop(VecDeque::new());
        }
        match self {
            KindState::HrDrop(w) => w,
            KindState::None | KindState::Slope(_) | KindState::Rain(_) => unreachable!("set above"),
        }
    }

    /// The slope state, if this is a tangent-angle subject.
    pub fn slope(&self) -> Option<&super::landslide::SlopeState> {
        match self {
            KindState::Slope(s) => Some(s),
            KindState::None | KindState::HrDrop(_) | KindState::Rain(_) => None,
        }
    }

    /// The slope state, mutable.
    pub(crate) fn slope_mut(&mut self) -> Option<&mut super::landslide::SlopeState> {
        match self {
            KindState::Slope(s) => Some(s),
            KindState::None | KindState::HrDrop(_) | KindState::Rain(_) => None,
        }
    }

    /// The slope state (made on first use).
    pub(crate) fn slope_or_default(&mut self) -> &mut super::landslide::SlopeState {
        if !matches!(self, KindState::Slope(_)) {
            *self = KindState::Slope(Box::default());
        }
        self.slope_mut().expect("set above")
    }

    /// The rain state (made on first use).
    pub(crate) fn rain_or_default(&mut self) -> &mut super::landslide::RainState {
        if !matches!(self, KindState::Rain(_)) {
            *self = KindState::Rain(Box::default());
        }
        match self {
            KindState::Rain(r) => r,
            KindState::None | KindState::HrDrop(_) | KindState::Slope(_) => unreachable!("set above"),
        }
    }
}

/// The persisted form: the kind's state as the optional fields earlier versions wrote, so rows
/// stored before [`KindState`] existed load unchanged.
#[derive(Clone, Default, Serialize, Deserialize)]
struct Stored {
    #[serde(default)]
    last_ms: u64,
    #[serde(default)]
    active: bool,
    #[serde(default)]
    pending_since: Option<u64>,
    #[serde(default)]
    open: Option<Open>,
    #[serde(default, skip_serializing_if = "VecDeque::is_empty")]
    transitions: VecDeque<u64>,
    #[serde(default)]
    flapping: bool,
    #[serde(default, skip_serializing_if = "VecDeque::is_empty")]
    window: VecDeque<(u64, u16)>,
    #[serde(default)]
    seen_ms: u64,
    #[serde(default)]
    offline: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    slope: Option<Box<super::landslide::SlopeState>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    rain: Option<Box<super::landslide::RainState>>,
}

impl From<Stored> for SubjectState {
    fn from(s: Stored) -> Self {
        let kind = match (s.slope, s.rain) {
            (Some(slope), _) => KindState::Slope(slope),
            (None, Some(rain)) => KindState::Rain(rain),
            (None, None) if !s.window.is_empty() => KindState::HrDrop(s.window),
            (None, None) => KindState::None,
        };
        SubjectState {
            last_ms: s.last_ms,
            active: s.active,
            pending_since: s.pending_since,
            open: s.open,
            transitions: s.transitions,
            flapping: s.flapping,
            seen_ms: s.seen_ms,
            offline: s.offline,
            kind,
            dirty: false,
            saved_seen_ms: 0,
        }
    }
}

impl From<SubjectState> for Stored {
    fn from(s: SubjectState) -> Self {
        let mut out = Stored {
            last_ms: s.last_ms,
            active: s.active,
            pending_since: s.pending_since,
            open: s.open,
            transitions: s.transitions,
            flapping: s.flapping,
            seen_ms: s.seen_ms,
            offline: s.offline,
            ..Stored::default()
        };
        match s.kind {
            KindState::None => {}
            KindState::HrDrop(w) => out.window = w,
            KindState::Slope(slope) => out.slope = Some(slope),
            KindState::Rain(rain) => out.rain = Some(rain),
        }
        out
    }
}

/// What must be persisted when it changes. `last_ms` (an ordering guard: redeliveries after a
/// restart are caught by sequence numbers) and small advances of `seen_ms` are left out, so a
/// steady stream does not rewrite its state on every reading.
pub(crate) type Fingerprint =
    (bool, Option<u64>, Option<(u64, Colour, bool)>, bool, Option<u64>, Option<(u64, u16)>, bool);

/// How stale a persisted `seen_ms` may get (no-data rules), ms.
const SEEN_SLACK_MS: u64 = 10_000;

/// A debounced transition of the condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Edge {
    Rise,
    Fall,
}

impl SubjectState {
    pub(crate) fn fingerprint(&self) -> Fingerprint {
        (
            self.active,
            self.pending_since,
            self.open.map(|o| (o.since_ms, o.colour, o.late)),
            self.flapping,
            self.transitions.back().copied(),
            match &self.kind {
                KindState::HrDrop(w) => w.back().copied(),
                KindState::None | KindState::Slope(_) | KindState::Rain(_) => None,
            },
            self.offline,
        )
    }

    /// Marks the state for persistence if it changed materially since `before`.
    pub(crate) fn note_change(&mut self, before: &Fingerprint) {
        if self.fingerprint() != *before || self.seen_ms >= self.saved_seen_ms + SEEN_SLACK_MS {
            self.dirty = true;
        }
    }

    /// Debounces: `trigger` must hold `for_ms` to rise, `release` must hold `clear_for_ms` to
    /// fall. A reading that breaks the streak restarts it.
    pub(crate) fn debounce(
        &mut self,
        at: u64,
        trigger: bool,
        release: bool,
        for_ms: u64,
        clear_for_ms: u64,
    ) -> Option<Edge> {
        let (wanted, need) = match self.active {
            false => (trigger, for_ms),
            true => (release, clear_for_ms),
        };
        if !wanted {
            self.pending_since = None;
            return None;
        }
        let since = *self.pending_since.get_or_insert(at);
        if at.saturating_sub(since) < need {
            return None;
        }
        self.pending_since = None;
        self.active = !self.active;
        Some(if self.active { Edge::Rise } else { Edge::Fall })
    }

    /// Records a transition and says whether the subject now flaps.
    pub(crate) fn note_transition(&mut self, at: u64, flap: Option<&FlapConfig>) -> bool {
        let Some(flap) = flap else { return false };
        self.transitions.push_back(at);
        let horizon = at.saturating_sub(flap.window_s * MS);
        while self.transitions.front().is_some_and(|&t| t < horizon) {
            self.transitions.pop_front();
        }
        while self.transitions.len() > flap.transitions as usize {
            self.transitions.pop_front();
        }
        self.transitions.len() >= flap.transitions as usize
    }

    /// True when flapping and the last transition is a full window old.
    pub(crate) fn flap_quiet(&self, now: u64, flap: Option<&FlapConfig>) -> bool {
        let Some(flap) = flap else { return true };
        self.transitions.back().is_none_or(|&t| now.saturating_sub(t) >= flap.window_s * MS)
    }

    /// The colour the open condition should have at `at` given the escalation steps.
    pub(crate) fn due_colour(&self, at: u64, steps: &[Step]) -> Option<Colour> {
        let open = self.open?;
        let elapsed = at.saturating_sub(open.since_ms);
        steps.iter().filter(|s| elapsed >= s.after_s * MS && s.colour > open.colour).map(|s| s.colour).max()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_written_before_kind_state_load_and_write_back_the_same() {
        let old = r#"{"last_ms":5,"active":true,"pending_since":null,"open":null,"flapping":false,"window":[[1,80],[2,60]],"seen_ms":0,"offline":false}"#;
        let st: SubjectState = serde_json::from_str(old).unwrap();
        assert_eq!(st.kind, KindState::HrDrop(VecDeque::from([(1, 80), (2, 60)])));
        assert_eq!(serde_json::to_string(&st).unwrap(), old);
        let rain: SubjectState = serde_json::from_str(r#"{"rain":{"total":3.5,"increments":[]}}"#).unwrap();
        assert!(matches!(rain.kind, KindState::Rain(_)));
        let plain: SubjectState = serde_json::from_str("{}").unwrap();
        assert_eq!(plain.kind, KindState::None);
    }
}
