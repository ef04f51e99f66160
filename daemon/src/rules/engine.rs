//! The rule engine: rules by id, their per-subject state, and the event bookkeeping shared by
//! every condition (debounce, flapping, escalation, late raises).

use super::condition::{self, Signal};
use super::config::{Condition, RuleConfig};
use super::state::{Edge, Open, Subject, SubjectState};
use super::{subject, Event, EventKind, MS};
use gridsentry_sensors::{Body, DeviceState, Reading, Stream};
use jiff::tz::TimeZone;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// A rule definition that cannot work.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("rule `{rule}`: {message}")]
pub struct RuleError {
    /// The rule's id.
    pub rule: String,
    /// What is wrong.
    pub message: String,
}

/// Counters of the engine.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Readings skipped because they were older than one already applied.
    pub stale: u64,
}

struct Rule {
    id: Arc<str>,
    cfg: RuleConfig,
    states: HashMap<Subject, SubjectState>,
}

/// All rules and their state.
pub struct Engine {
    rules: Vec<Rule>,
    tz: TimeZone,
    stats: Stats,
}

impl Engine {
    /// Builds an engine; every rule is checked first.
    pub fn new(configs: Vec<RuleConfig>, tz: TimeZone) -> Result<Engine, RuleError> {
        let mut ids = HashSet::new();
        for c in &configs {
            validate(c)?;
            if !ids.insert(c.id.clone()) {
                return Err(RuleError { rule: c.id.clone(), message: "duplicate rule id".into() });
            }
        }
        let rules = configs
            .into_iter()
            .map(|cfg| Rule { id: cfg.id.as_str().into(), cfg, states: HashMap::new() })
            .collect();
        Ok(Engine { rules, tz, stats: Stats::default() })
    }

    /// Replaces the rules, keeping the state of every rule whose id survives.
    pub fn reload(&mut self, configs: Vec<RuleConfig>) -> Result<(), RuleError> {
        let mut fresh = Engine::new(configs, self.tz.clone())?;
        for rule in &mut fresh.rules {
            if let Some(old) = self.rules.iter_mut().find(|o| o.id == rule.id) {
                rule.states = std::mem::take(&mut old.states);
            }
        }
        self.rules = fresh.rules;
        Ok(())
    }

    /// Counters so far.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// Applies one reading received at `received_ms`; events go to `out`.
    pub fn apply(&mut self, r: &Reading, received_ms: u64, out: &mut Vec<Event>) {
        let at = r.utc_ms().unwrap_or(received_ms);
        let (tz, stats) = (&self.tz, &mut self.stats);
        for rule in self.rules.iter_mut().filter(|rule| applies(&rule.cfg, r)) {
            let band = match &r.body {
                Body::HeartRate(h) if is_heart(&rule.cfg.condition) => Some(&h.band),
                _ => None,
            };
            let subj = subject(&r.header.site, &r.header.device, band);
            if !rule.states.contains_key(&subj) {
                rule.states.insert(subj.clone(), SubjectState::default());
            }
            let Some(st) = rule.states.get_mut(&subj) else { continue };
            let before = st.fingerprint();
            if let Condition::NoData(_) = rule.cfg.condition {
                no_data_message(&rule.id, &rule.cfg, st, &subj, r, received_ms, out);
            } else if at < st.last_ms {
                stats.stale += 1;
            } else {
                st.last_ms = at;
                if let Some(sig) = signal(&rule.cfg.condition, st, r, at, tz) {
                    let ctx = Ctx { id: &rule.id, cfg: &rule.cfg, subj: &subj, late: r.header.historical };
                    ctx.step(st, at, sig, out);
                }
            }
            st.note_change(&before);
        }
    }

    /// Advances wall-clock time: no-data silences, escalation and flap endings without readings.
    pub fn tick(&mut self, now_ms: u64, out: &mut Vec<Event>) {
        for rule in &mut self.rules {
            for (subj, st) in rule.states.iter_mut() {
                let ctx = Ctx { id: &rule.id, cfg: &rule.cfg, subj, late: false };
                let before = st.fingerprint();
                if let Condition::NoData(n) = &rule.cfg.condition {
                    let silent = now_ms.saturating_sub(st.seen_ms) >= n.silent_s * MS;
                    if st.open.is_none() && silent {
                        let summary =
                            format!("no {} data for {} s", n.stream, now_ms.saturating_sub(st.seen_ms) / MS);
                        ctx.raise(st, now_ms, false, summary, None, out);
                    }
                } else {
                    ctx.end_flapping(st, now_ms, out);
                }
                ctx.escalate(st, now_ms, out);
                st.note_change(&before);
            }
        }
    }

    /// State changed since the last call, as `(key, json)`; `key` is `rule|site/device[/band]`.
    pub fn take_dirty(&mut self) -> Vec<(String, String)> {
        let mut rows = Vec::new();
        for rule in &mut self.rules {
            for (subj, st) in rule.states.iter_mut().filter(|(_, st)| st.dirty) {
                st.dirty = false;
                st.saved_seen_ms = st.seen_ms;
                let json = serde_json::to_string(st).expect("rule state serialises");
                rows.push((format!("{}|{subj}", rule.id), json));
            }
        }
        rows
    }

    /// Restores one state row written by [`Engine::take_dirty`]; rows of rules no longer
    /// configured are ignored (returns false).
    pub fn restore(&mut self, key: &str, json: &str) -> Result<bool, String> {
        let (rule_id, subj) = key.split_once('|').ok_or_else(|| format!("bad state key {key}"))?;
        let subj = Subject::parse(subj).ok_or_else(|| format!("bad state key {key}"))?;
        let Some(rule) = self.rules.iter_mut().find(|r| &*r.id == rule_id) else { return Ok(false) };
        let st: SubjectState = serde_json::from_str(json).map_err(|e| format!("state {key}: {e}"))?;
        rule.states.insert(subj, st);
        Ok(true)
    }

    /// The state of `rule` for `subject`, if any (tests, console).
    pub fn state(&self, rule: &str, subj: &Subject) -> Option<&SubjectState> {
        self.rules.iter().find(|r| &*r.id == rule)?.states.get(subj)
    }
}

fn is_heart(c: &Condition) -> bool {
    matches!(
        c,
        Condition::HrDrop(_) | Condition::HrLow(_) | Condition::BandRemoved(_) | Condition::Threshold(_)
    )
}

fn applies(cfg: &RuleConfig, r: &Reading) -> bool {
    let stream = r.body.stream();
    let wanted = match &cfg.condition {
        Condition::Threshold(t) => t.stream == stream,
        Condition::HrDrop(_) | Condition::HrLow(_) | Condition::BandRemoved(_) => stream == Stream::Hr,
        Condition::NoData(n) => n.stream == stream || stream == Stream::Status,
    };
    wanted && site_matches(&cfg.sites, r.header.site.as_str())
}

fn site_matches(patterns: &[String], site: &str) -> bool {
    patterns.is_empty()
        || patterns.iter().any(|p| match p.strip_suffix('*') {
            Some(prefix) => site.starts_with(prefix),
            None => p == site,
        })
}

fn signal(cond: &Condition, st: &mut SubjectState, r: &Reading, at: u64, tz: &TimeZone) -> Option<Signal> {
    let hr = match &r.body {
        Body::HeartRate(h) => Some(h),
        _ => None,
    };
    match cond {
        Condition::Threshold(t) => condition::threshold(t, r, at, tz),
        Condition::HrDrop(d) => Some(condition::hr_drop(d, st, hr?, at)),
        Condition::HrLow(l) => {
            let h = hr?;
            let worn = condition::worn(h);
            let clear = l.clear_bpm.unwrap_or(l.below_bpm.saturating_add(5));
            Some(Signal {
                trigger: worn && h.bpm < l.below_bpm,
                release: worn && h.bpm >= clear,
                value: Some(h.bpm.into()),
            })
        }
        Condition::BandRemoved(_) => {
            let off = hr?.contact == gridsentry_sensors::Contact::NotDetected;
            Some(Signal { trigger: off, release: !off, value: None })
        }
        Condition::NoData(_) => None,
    }
}

fn no_data_message(
    id: &Arc<str>,
    cfg: &RuleConfig,
    st: &mut SubjectState,
    subj: &Subject,
    r: &Reading,
    received_ms: u64,
    out: &mut Vec<Event>,
) {
    let ctx = Ctx { id, cfg, subj, late: false };
    st.seen_ms = st.seen_ms.max(received_ms);
    let offline = matches!(&r.body, Body::Status(s) if s.state == DeviceState::Offline);
    if offline && !r.header.historical {
        st.offline = true;
        if st.open.is_none() {
            ctx.raise(
                st,
                received_ms,
                false,
                "gateway reported the device offline (last will)".into(),
                None,
                out,
            );
        }
    } else if !offline {
        st.offline = false;
        if st.open.is_some() {
            ctx.clear(st, received_ms, "data again".into(), out);
        }
    }
}

/// One rule looking at one subject.
struct Ctx<'a> {
    id: &'a Arc<str>,
    cfg: &'a RuleConfig,
    subj: &'a Subject,
    late: bool,
}

impl Ctx<'_> {
    fn step(&self, st: &mut SubjectState, at: u64, sig: Signal, out: &mut Vec<Event>) {
        let (for_s, clear_for_s) = timing(&self.cfg.condition);
        if let (Some(open), false) = (st.open, self.late) {
            if open.late {
                st.open = Some(Open { late: false, ..open });
                out.push(self.event(
                    at,
                    EventKind::Confirm,
                    false,
                    "still active on live data".into(),
                    sig.value,
                ));
            }
        }
        match st.debounce(at, sig.trigger, sig.release, for_s * MS, clear_for_s * MS) {
            Some(edge) => self.transition(st, at, edge, sig.value, out),
            None => self.end_flapping(st, at, out),
        }
        self.escalate(st, at, out);
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
            let summary = condition::describe(&self.cfg.condition, value, true);
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
                let summary = condition::describe(&self.cfg.condition, value, false);
                self.raise(st, at, self.late, summary, value, out);
            }
            Edge::Fall if st.open.is_some() => self.clear(st, at, "back to normal".into(), out),
            _ => {}
        }
    }

    fn end_flapping(&self, st: &mut SubjectState, at: u64, out: &mut Vec<Event>) {
        if !st.flapping || !st.flap_quiet(at, self.cfg.flap.as_ref()) {
            return;
        }
        st.flapping = false;
        st.transitions.clear();
        if !st.active && st.open.is_some() {
            self.clear(st, at, "stopped flapping".into(), out);
        }
    }

    fn escalate(&self, st: &mut SubjectState, at: u64, out: &mut Vec<Event>) {
        if let (Some(colour), Some(open)) = (st.due_colour(at, &self.cfg.escalate), st.open) {
            st.open = Some(Open { colour, ..open });
            let summary = format!("still active after {} s", at.saturating_sub(open.since_ms) / MS);
            out.push(self.event(at, EventKind::Escalate { colour }, open.late, summary, None));
        }
    }

    fn raise(
        &self,
        st: &mut SubjectState,
        at: u64,
        late: bool,
        summary: String,
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
        summary: String,
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

    fn clear(&self, st: &mut SubjectState, at: u64, summary: String, out: &mut Vec<Event>) {
        let late = st.open.is_some_and(|o| o.late);
        st.open = None;
        out.push(self.event(at, EventKind::Clear, late, summary, None));
    }

    fn event(&self, at: u64, kind: EventKind, late: bool, summary: String, value: Option<f64>) -> Event {
        Event { rule: self.id.clone(), subject: self.subj.clone(), at_ms: at, kind, late, summary, value }
    }
}

fn timing(c: &Condition) -> (u64, u64) {
    match c {
        Condition::Threshold(t) => (t.for_s, t.clear_for_s),
        Condition::HrDrop(d) => (0, d.clear_for_s),
        Condition::HrLow(l) => (l.for_s, l.clear_for_s),
        Condition::BandRemoved(b) => (b.for_s, 0),
        Condition::NoData(_) => (0, 0),
    }
}

fn validate(c: &RuleConfig) -> Result<(), RuleError> {
    let err = |m: &str| Err(RuleError { rule: c.id.clone(), message: m.into() });
    if c.id.is_empty() || c.id.contains(['|', '/']) {
        return err("id must be non-empty and hold no `|` or `/`");
    }
    if c.flap.is_some_and(|f| f.transitions < 2 || f.window_s == 0) {
        return err("flap needs transitions >= 2 and window_s > 0");
    }
    match &c.condition {
        Condition::Threshold(t) => {
            if t.above.is_some() == t.below.is_some() {
                return err("threshold needs exactly one of `above` and `below`");
            }
            if !condition::known_field(t.stream, &t.field) {
                return err(&format!("stream {} has no field `{}`", t.stream, t.field));
            }
            let limit = t.above.or(t.below).unwrap_or_default();
            let wrong_side = |lim: f64, clear: f64| if t.above.is_some() { clear > lim } else { clear < lim };
            if wrong_side(limit, t.clear) {
                return err("`clear` must be on the safe side of the limit (hysteresis)");
            }
            if let Some(n) = &t.night {
                if condition::parse_hhmm(&n.from).is_none() || condition::parse_hhmm(&n.to).is_none() {
                    return err("night `from`/`to` must be HH:MM");
                }
                if wrong_side(n.limit, n.clear) {
                    return err("night `clear` must be on the safe side of the night limit");
                }
            }
        }
        Condition::HrDrop(d) => {
            if d.drop_pct.is_none() && d.drop_bpm.is_none() {
                return err("hr_drop needs `drop_pct` or `drop_bpm`");
            }
            if d.window_s == 0 {
                return err("hr_drop needs window_s > 0");
            }
        }
        Condition::HrLow(l) if l.clear_bpm.is_some_and(|c| c < l.below_bpm) => {
            return err("`clear_bpm` must be at least `below_bpm`");
        }
        Condition::NoData(n) if n.silent_s == 0 || n.stream == Stream::Status => {
            return err("no_data needs silent_s > 0 and a data stream");
        }
        _ => {}
    }
    Ok(())
}
