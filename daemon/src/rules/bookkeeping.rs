//! The bookkeeping every condition shares: debounce edges into raises and clears, flapping,
//! colour steps, late raises and their confirmation.

use super::condition::Signal;
use super::config::{Colour, RuleConfig};
use super::landslide;
use super::say::{self, Said};
use super::slope::Forecast;
use super::state::{Edge, Open, Subject, SubjectState};
use super::{Event, EventKind, MS};
use gridsentry_sensors::{Body, DeviceState, Reading};
use jiff::tz::TimeZone;
use std::sync::Arc;

pub(crate) fn no_data_message(
    ctx: &Ctx<'_>,
    st: &mut SubjectState,
    r: &Reading,
    received_ms: u64,
    out: &mut Vec<Event>,
) {
    st.seen_ms = st.seen_ms.max(received_ms);
    let offline = matches!(&r.body, Body::Status(s) if s.state == DeviceState::Offline);
    if offline && !r.header.historical {
        st.offline = true;
        if st.open.is_none() {
            ctx.raise(st, received_ms, false, say::offline(), None, out);
        }
    } else if !offline {
        st.offline = false;
        if st.open.is_some() {
            ctx.clear(st, received_ms, say::data_again(), out);
        }
    }
}

/// One rule looking at one subject.
#[derive(Clone, Copy)]
pub(crate) struct Ctx<'a> {
    pub(crate) id: &'a Arc<str>,
    pub(crate) cfg: &'a RuleConfig,
    pub(crate) subj: &'a Subject,
    pub(crate) late: bool,
    /// The daemon's time zone (local times in Chinese texts).
    pub(crate) tz: &'a TimeZone,
}

impl Ctx<'_> {
    pub(crate) fn step(&self, st: &mut SubjectState, at: u64, sig: Signal, out: &mut Vec<Event>) {
        let (for_s, clear_for_s) = self.cfg.condition.timing();
        self.confirm_if_live(st, at, sig.value, out);
        match st.debounce(at, sig.trigger, sig.release, for_s * MS, clear_for_s * MS) {
            Some(edge) => self.transition(st, at, edge, sig.value, out),
            None => self.end_flapping(st, at, out),
        }
        self.escalate(st, at, out);
    }

    /// A live reading finds a condition raised from backfill still active: page now.
    pub(crate) fn confirm_if_live(
        &self,
        st: &mut SubjectState,
        at: u64,
        v: Option<f64>,
        out: &mut Vec<Event>,
    ) {
        if let (Some(open), false) = (st.open, self.late) {
            if open.late {
                st.open = Some(Open { late: false, ..open });
                out.push(self.event(at, EventKind::Confirm, false, say::live_again(), v));
            }
        }
    }

    /// Multi-level conditions: opens the order at `target`, escalates it when `target` is
    /// higher, clears it when there is no level any more; a moved forecast is recorded.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn level(
        &self,
        st: &mut SubjectState,
        at: u64,
        target: Option<Colour>,
        summary: Said,
        v: Option<f64>,
        forecast: Option<Forecast>,
        out: &mut Vec<Event>,
    ) {
        let last = st.kind.slope().and_then(|s| s.forecast);
        let moved = forecast.is_some_and(|f| landslide::forecast_moved(last, f, at));
        let late = self.late || st.open.is_some_and(|o| o.late);
        let sent = match (target, st.open) {
            (None, Some(_)) => {
                self.clear(st, at, say::back_to_normal().then(&summary), out);
                if let Some(s) = st.kind.slope_mut() {
                    s.forecast = None;
                }
                return;
            }
            (None, None) => return,
            (Some(colour), None) => {
                st.open = Some(Open { since_ms: at, colour, late: self.late });
                Some(self.event(at, EventKind::Raise { colour, flapping: false }, self.late, summary, v))
            }
            (Some(colour), Some(open)) if colour > open.colour => {
                st.open = Some(Open { colour, ..open });
                Some(self.event(at, EventKind::Escalate { colour, restate: true }, late, summary, v))
            }
            (Some(_), Some(_)) if moved => Some(self.event(at, EventKind::Forecast, late, summary, v)),
            (Some(_), Some(_)) => None,
        };
        if let Some(mut e) = sent {
            e.forecast = forecast;
            out.push(e);
            if let (Some(s), Some(f)) = (st.kind.slope_mut(), forecast) {
                s.forecast = Some(f);
            }
        }
    }

    fn transition(
        &self,
        st: &mut SubjectState,
        at: u64,
        edge: Edge,
        value: Option<f64>,
        out: &mut Vec<Event>,
    ) {
        let flap = self.cfg.flap.as_ref();
        if st.note_transition(at, flap) && !st.flapping {
            // One flapping order: opened now, or the open one is marked as flapping.
            st.flapping = true;
            let summary = self.cfg.condition.describe(value, true);
            match st.open {
                None => self.raise_as(st, at, summary, value, true, out),
                Some(open) => {
                    let kind = EventKind::Raise { colour: open.colour, flapping: true };
                    out.push(self.event(at, kind, self.late || open.late, summary, value));
                }
            }
            return;
        }
        if st.flapping {
            return;
        }
        match edge {
            Edge::Rise if st.open.is_none() => {
                let summary = self.cfg.condition.describe(value, false);
                self.raise(st, at, self.late, summary, value, out);
            }
            Edge::Fall if st.open.is_some() => self.clear(st, at, say::back_to_normal(), out),
            _ => {}
        }
    }

    pub(crate) fn end_flapping(&self, st: &mut SubjectState, at: u64, out: &mut Vec<Event>) {
        if !st.flapping || !st.flap_quiet(at, self.cfg.flap.as_ref()) {
            return;
        }
        st.flapping = false;
        st.transitions.clear();
        if !st.active && st.open.is_some() {
            self.clear(st, at, say::stopped_flapping(), out);
        }
    }

    pub(crate) fn escalate(&self, st: &mut SubjectState, at: u64, out: &mut Vec<Event>) {
        if let (Some(colour), Some(open)) = (st.due_colour(at, &self.cfg.escalate), st.open) {
            st.open = Some(Open { colour, ..open });
            let summary = say::still_active(at.saturating_sub(open.since_ms) / MS);
            out.push(self.event(
                at,
                EventKind::Escalate { colour, restate: false },
                open.late,
                summary,
                None,
            ));
        }
    }

    pub(crate) fn raise(
        &self,
        st: &mut SubjectState,
        at: u64,
        late: bool,
        summary: Said,
        v: Option<f64>,
        out: &mut Vec<Event>,
    ) {
        st.open = Some(Open { since_ms: at, colour: self.cfg.colour, late });
        out.push(self.event(
            at,
            EventKind::Raise { colour: self.cfg.colour, flapping: false },
            late,
            summary,
            v,
        ));
    }

    fn raise_as(
        &self,
        st: &mut SubjectState,
        at: u64,
        summary: Said,
        v: Option<f64>,
        flapping: bool,
        out: &mut Vec<Event>,
    ) {
        st.open = Some(Open { since_ms: at, colour: self.cfg.colour, late: self.late });
        out.push(self.event(
            at,
            EventKind::Raise { colour: self.cfg.colour, flapping },
            self.late,
            summary,
            v,
        ));
    }

    pub(crate) fn clear(&self, st: &mut SubjectState, at: u64, summary: Said, out: &mut Vec<Event>) {
        let late = st.open.is_some_and(|o| o.late);
        st.open = None;
        out.push(self.event(at, EventKind::Clear, late, summary, None));
    }

    pub(crate) fn event(
        &self,
        at: u64,
        kind: EventKind,
        late: bool,
        summary: Said,
        value: Option<f64>,
    ) -> Event {
        let (rule, subject) = (self.id.clone(), self.subj.clone());
        Event { rule, subject, at_ms: at, kind, late, summary, value, forecast: None }
    }
}
