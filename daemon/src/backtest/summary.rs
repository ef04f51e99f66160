//! `gridsentry backtest --summary`: per rule and subject, what a rule would have done with a
//! recorded series — orders by colour, red episodes, and the v_c a tangent-angle rule learnt —
//! so a v_c or a level can be judged before the rule goes live (a false red is expensive when
//! it warns residents).

use crate::orders::Change;
use crate::rules::{Colour, Engine};
use std::collections::BTreeMap;
use std::io::Write;

/// What one rule did to one subject.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Subject {
    /// Orders by the highest colour each reached.
    pub by_colour: BTreeMap<Colour, u64>,
    /// Times an order became red (raised red or escalated to red).
    pub red_episodes: u64,
    /// The latest failure forecast put on a red order (local time text).
    pub forecast: Option<String>,
    /// Tangent angle: the v_c learnt (mm/day), or how far the baseline got.
    pub creep: Option<String>,
    /// Why the v_c may not fit the data.
    pub warning: Option<String>,
}

/// Collects changes as the backtest runs.
#[derive(Debug, Default)]
pub struct Collector {
    subjects: BTreeMap<(String, String), Subject>,
    highest: BTreeMap<i64, Colour>,
}

impl Collector {
    /// One order transition.
    pub fn change(&mut self, c: &Change) {
        let s = self.subjects.entry((c.rule.clone(), c.subject.clone())).or_default();
        let before = self.highest.get(&c.order_id).copied();
        if c.colour == Colour::Red && before != Some(Colour::Red) {
            s.red_episodes += 1;
        }
        if c.colour == Colour::Red && c.forecast.is_some() {
            s.forecast.clone_from(&c.forecast);
        }
        if before.is_none_or(|b| c.colour > b) {
            if let Some(b) = before {
                if let Some(n) = s.by_colour.get_mut(&b) {
                    *n -= 1;
                }
            }
            *s.by_colour.entry(c.colour).or_default() += 1;
            self.highest.insert(c.order_id, c.colour);
        }
    }

    /// Adds what the tangent-angle rules learnt, and their warnings.
    pub fn finish(mut self, engine: &Engine) -> BTreeMap<(String, String), Subject> {
        for (rule, subj, s, t) in engine.slopes() {
            let entry = self.subjects.entry((rule.to_string(), subj.to_string())).or_default();
            match (t.creep_mm_per_day, s.creep, &s.baseline) {
                (Some(c), _, _) => entry.creep = Some(format!("{c} (configured)")),
                (None, Some(c), _) => {
                    entry.creep = Some(format!("{c:.4} (Theil–Sen over {} d)", t.baseline_s / 86_400));
                    if c <= t.min_creep_mm_per_day {
                        entry.warning = Some(format!(
                            "v_c is the floor min_creep_mm_per_day = {}: the baseline moved less; is it long enough?",
                            t.min_creep_mm_per_day
                        ));
                    }
                }
                (None, None, Some(b)) => {
                    entry.creep = Some(format!("not learnt: {} readings over {:.1} d", b.seen(), b.days()));
                    entry.warning = Some(format!(
                        "the baseline needs baseline_s = {} d and baseline_min_points = {} readings: too short for this sampling",
                        t.baseline_s / 86_400,
                        t.baseline_min_points
                    ));
                }
                (None, None, None) => entry.creep = Some("not learnt".into()),
            }
        }
        self.subjects
    }
}

/// Prints the table.
pub fn print(out: &mut dyn Write, subjects: &BTreeMap<(String, String), Subject>) -> std::io::Result<()> {
    writeln!(
        out,
        "{:<24} {:<24} {:>5} {:>6} {:>6} {:>4} {:>7}  v_c mm/day",
        "rule", "subject", "blue", "yellow", "orange", "red", "red ep."
    )?;
    for ((rule, subject), s) in subjects {
        let n = |c: Colour| s.by_colour.get(&c).copied().unwrap_or(0);
        writeln!(
            out,
            "{rule:<24} {subject:<24} {:>5} {:>6} {:>6} {:>4} {:>7}  {}",
            n(Colour::Blue),
            n(Colour::Yellow),
            n(Colour::Orange),
            n(Colour::Red),
            s.red_episodes,
            s.creep.as_deref().unwrap_or("-")
        )?;
        if let Some(f) = &s.forecast {
            writeln!(out, "    forecast failure on the last red: {f}")?;
        }
        if let Some(w) = &s.warning {
            writeln!(out, "    warning: {w}")?;
        }
    }
    Ok(())
}
