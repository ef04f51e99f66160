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

/// Everything a rule remembers about one subject.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SubjectState {
    /// Event time of the last applied reading (older ones are skipped).
    #[serde(default)]
    pub last_ms: u64,
    /// The debounced condition.
    #[serde(default)]
    pub active: bool,
    /// Since when the pending transition (raise when inactive, clear when active) has held.
    #[serde(default)]
    pub pending_since: Option<u64>,
    /// The order this rule holds open for the subject.
    #[serde(default)]
    pub open: Option<Open>,
    /// Recent transition times, for flap detection.
    #[serde(default, skip_serializing_if = "VecDeque::is_empty")]
    pub transitions: VecDeque<u64>,
    /// Flapping: transitions are folded into one order until a quiet window passes.
    #[serde(default)]
    pub flapping: bool,
    /// Heart-rate samples of the drop window (event ms, bpm).
    #[serde(default, skip_serializing_if = "VecDeque::is_empty")]
    pub window: VecDeque<(u64, u16)>,
    /// Receive time of the last message from the device (no-data rules).
    #[serde(default)]
    pub seen_ms: u64,
    /// The device's last will said offline (no-data rules).
    #[serde(default)]
    pub offline: bool,
    /// Tangent-angle rules: displacement history, levels, forecast.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slope: Option<Box<super::landslide::SlopeState>>,
    /// Rainfall rules: the gauge's last total and the increments of the window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rain: Option<Box<super::landslide::RainState>>,
    /// Changed since last persisted.
    #[serde(skip)]
    pub(crate) dirty: bool,
    /// `seen_ms` as last persisted.
    #[serde(skip)]
    pub(crate) saved_seen_ms: u64,
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
            self.window.back().copied(),
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
