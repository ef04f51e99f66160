//! The rule engine: rules by id, their per-subject state, and the event bookkeeping shared by
//! every condition (debounce, flapping, escalation, late raises).

use super::bookkeeping::{no_data_message, Ctx};
use super::config::{Condition, RuleConfig};
use super::landslide;
use super::state::{Subject, SubjectState};
use super::validate::validate;
use super::{subject, Event, MS};
use crate::devtime::EventTime;
use gridsentry_sensors::{Body, Id, Reading};
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
    /// Heart-rate readings of a band beyond a gateway's `max_bands` (not applied to heart rules).
    pub bands_refused: u64,
}

/// Default bound on the wristbands one gateway may report (a home has a few).
pub const MAX_BANDS: usize = 16;

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
    /// Bands seen per gateway (site, device): bounded by `max_bands`, so a gateway inventing band
    /// ids cannot grow the rule state without limit.
    bands: HashMap<(Id, Id), Vec<Id>>,
    max_bands: usize,
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
        Ok(Engine { rules, tz, stats: Stats::default(), bands: HashMap::new(), max_bands: MAX_BANDS })
    }

    /// Sets how many wristbands one gateway may report (`[devices] max_bands`).
    pub fn with_max_bands(mut self, n: usize) -> Engine {
        self.max_bands = n;
        self
    }

    /// Whether heart rules hear `band` of gateway `site/device`: a band seen before, or a new
    /// one while the gateway has fewer than `max_bands` (`restored`: state from the store, never
    /// refused).
    fn band_heard(&mut self, site: &Id, device: &Id, band: &Id, restored: bool) -> bool {
        let key = (site.clone(), device.clone());
        if self.bands.get(&key).is_some_and(|seen| seen.contains(band)) {
            return true;
        }
        let seen = self.bands.entry(key).or_default();
        if seen.len() >= self.max_bands && !restored {
            return false;
        }
        seen.push(band.clone());
        true
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

    /// Applies one reading received at `received_ms` at its event time under the default device
    /// time policy ([`crate::devtime`]); events go to `out`.
    pub fn apply(&mut self, r: &Reading, received_ms: u64, out: &mut Vec<Event>) {
        let t = crate::devtime::event_time(r, received_ms, crate::devtime::DEFAULT_MAX_SKEW_S * MS);
        self.apply_at(r, t, received_ms, out);
    }

    /// Applies one reading at its event time `t` ([`crate::devtime::event_time`]), received at
    /// `received_ms`; events go to `out`. A reading whose device stamp was refused is evaluated
    /// at its receive time but does not move the rule's clock (`last_ms`): its true time is
    /// unknown, and the device's next correctly stamped readings must not look stale.
    pub fn apply_at(&mut self, r: &Reading, t: EventTime, received_ms: u64, out: &mut Vec<Event>) {
        let at = t.at_ms;
        let moves_clock = t.skew.is_none();
        let band_heard = match &r.body {
            Body::HeartRate(h) => self.band_heard(&r.header.site, &r.header.device, &h.band, false),
            Body::Noise(_) | Body::Deform(_) | Body::Rain(_) | Body::Status(_) => true,
        };
        if !band_heard {
            self.stats.bands_refused += 1;
        }
        let (tz, stats) = (&self.tz, &mut self.stats);
        for rule in self.rules.iter_mut().filter(|rule| applies(&rule.cfg, r)) {
            let band = match &r.body {
                Body::HeartRate(h) if rule.cfg.condition.keyed_by_band() => Some(&h.band),
                Body::HeartRate(_) | Body::Noise(_) | Body::Deform(_) | Body::Rain(_) | Body::Status(_) => {
                    None
                }
            };
            if band.is_some() && !band_heard {
                continue;
            }
            let subj = subject(&r.header.site, &r.header.device, band);
            if !rule.states.contains_key(&subj) {
                rule.states.insert(subj.clone(), SubjectState::default());
            }
            let Some(st) = rule.states.get_mut(&subj) else { continue };
            let before = st.fingerprint();
            if let Condition::NoData(_) = rule.cfg.condition {
                let ctx = Ctx { id: &rule.id, cfg: &rule.cfg, subj: &subj, late: false, tz };
                no_data_message(&ctx, st, r, received_ms, out);
            } else if at < st.last_ms && moves_clock {
                stats.stale += 1;
            } else if let Condition::TangentAngle(t) = &rule.cfg.condition {
                if moves_clock {
                    st.last_ms = at;
                }
                let ctx = Ctx { id: &rule.id, cfg: &rule.cfg, subj: &subj, late: r.header.historical, tz };
                landslide::tangent(&ctx, t, &mut rule.states, r, at, out);
                continue;
            } else {
                if moves_clock {
                    st.last_ms = at;
                }
                if let Some(sig) = rule.cfg.condition.signal(st, r, at, tz) {
                    let ctx =
                        Ctx { id: &rule.id, cfg: &rule.cfg, subj: &subj, late: r.header.historical, tz };
                    ctx.step(st, at, sig, out);
                }
            }
            st.note_change(&before);
        }
    }

    /// Advances wall-clock time: no-data silences, escalation and flap endings without readings.
    pub fn tick(&mut self, now_ms: u64, out: &mut Vec<Event>) {
        let tz = &self.tz;
        for rule in &mut self.rules {
            for (subj, st) in rule.states.iter_mut() {
                let ctx = Ctx { id: &rule.id, cfg: &rule.cfg, subj, late: false, tz };
                let before = st.fingerprint();
                if let Condition::NoData(n) = &rule.cfg.condition {
                    let silent = now_ms.saturating_sub(st.seen_ms) >= n.silent_s * MS;
                    if st.open.is_none() && silent {
                        let summary =
                            super::say::no_data_for(n.stream, now_ms.saturating_sub(st.seen_ms) / MS);
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

    /// Pulls rule clocks that are ahead of `now_ms` back to it (state written before the device
    /// time policy existed, when one reading stamped in the future could mute a subject).
    /// Returns how many states it moved.
    pub fn clamp_future(&mut self, now_ms: u64) -> usize {
        let mut moved = 0;
        for st in self.rules.iter_mut().flat_map(|r| r.states.values_mut()) {
            if st.last_ms > now_ms {
                st.last_ms = now_ms;
                st.dirty = true;
                moved += 1;
            }
        }
        moved
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
        rule.states.insert(subj.clone(), st);
        if let Some(band) = &subj.band {
            self.band_heard(&subj.site, &subj.device, band, true);
        }
        Ok(true)
    }

    /// The state of `rule` for `subject`, if any (tests, console).
    pub fn state(&self, rule: &str, subj: &Subject) -> Option<&SubjectState> {
        self.rules.iter().find(|r| &*r.id == rule)?.states.get(subj)
    }

    /// Every tangent-angle subject: its rule, the subject, its state and the rule's settings.
    pub fn slopes(
        &self,
    ) -> Vec<(&str, &Subject, &super::landslide::SlopeState, &super::config::TangentAngle)> {
        let mut out = Vec::new();
        for r in &self.rules {
            let Condition::TangentAngle(t) = &r.cfg.condition else { continue };
            for (subj, st) in &r.states {
                if let Some(s) = st.kind.slope() {
                    out.push((&*r.id, subj, s, t));
                }
            }
        }
        out
    }
}

fn applies(cfg: &RuleConfig, r: &Reading) -> bool {
    cfg.condition.applies_to(r.body.stream()) && site_matches(&cfg.sites, r.header.site.as_str())
}

fn site_matches(patterns: &[String], site: &str) -> bool {
    patterns.is_empty()
        || patterns.iter().any(|p| match p.strip_suffix('*') {
            Some(prefix) => site.starts_with(prefix),
            None => p == site,
        })
}
