//! `gridsentry backtest`: recorded readings through a config's rules, before the rules go live.
//!
//! Input is line protocol as the store stage writes it and `influx` exports it. Points are
//! sorted by time (exports come series by series) and applied to the same rule engine and the
//! same order store the daemon uses — an in-memory SQLite database — with the points' own times
//! as the clock, so a backtest raises what the live daemon raised for the same readings. Order
//! transitions are printed as JSON lines, the same objects `gridsentry demo` prints. Nobody
//! works the orders, so SLA escalations are not simulated.

pub mod summary;

use crate::config::Config;
use crate::orders::{Batch, Change, Store, StoreError};
use crate::rules::{Engine, RuleError};
use gridsentry_sensors::line_protocol_read::{self as points, Precision};
use gridsentry_sensors::{codec, Format, Reading};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

/// Why a backtest could not run.
#[derive(Debug, thiserror::Error)]
pub enum BacktestError {
    /// The input could not be read.
    #[error("{0}: {1}")]
    Input(String, std::io::Error),
    /// The rules are impossible (normally caught by the config check).
    #[error(transparent)]
    Rule(#[from] RuleError),
    /// The in-memory order store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Writing the output failed.
    #[error("writing output: {0}")]
    Output(std::io::Error),
}

/// What a backtest went through.
#[derive(Debug, Default)]
pub struct Summary {
    /// Points that became readings.
    pub readings: u64,
    /// Lines skipped, by reason.
    pub skipped: BTreeMap<String, u64>,
    /// Order transitions printed.
    pub transitions: u64,
    /// Orders raised.
    pub raised: u64,
    /// Per rule and subject (`--summary`).
    pub subjects: Option<BTreeMap<(String, String), summary::Subject>>,
}

/// Replays `input` through the rules of `cfg`, writing one JSON line per order transition to
/// `out` (with `per_subject`: nothing, and [`Summary::subjects`] is filled instead). Unusable
/// lines are reported on stderr (the first 20) and counted.
pub fn run(
    cfg: &Config,
    input: &Path,
    precision: Precision,
    out: &mut dyn Write,
    per_subject: bool,
) -> Result<Summary, BacktestError> {
    let mut collector = per_subject.then(summary::Collector::default);
    let name = input.display().to_string();
    let text = std::fs::read_to_string(input).map_err(|e| BacktestError::Input(name.clone(), e))?;
    let mut summary = Summary::default();
    let mut readings: Vec<(i64, Reading)> = Vec::new();
    let bar = progress(text.lines().count() as u64, "reading");
    let mut reported = 0;
    for (line, r) in points::parse(&text, precision) {
        bar.set_position(line as u64);
        match r {
            Ok(r) => readings.push(r),
            Err(e) => {
                let reason = match &e {
                    points::PointError::Measurement(_) => "other measurement",
                    points::PointError::Syntax(_) => "syntax",
                    _ => "schema",
                };
                *summary.skipped.entry(reason.to_string()).or_default() += 1;
                if reported < 20 {
                    bar.suspend(|| eprintln!("{name}:{line}: {e}"));
                    reported += 1;
                }
            }
        }
    }
    bar.finish_and_clear();
    readings.sort_by_key(|r| r.0);

    let tz = jiff::tz::TimeZone::get(cfg.daemon.timezone.get_ref())
        .map_err(|e| RuleError { rule: "(daemon.timezone)".into(), message: e.to_string() })?;
    let mut engine = Engine::new(cfg.rules.iter().map(|r| r.get_ref().clone()).collect(), tz)?;
    // One receiver, so that routing finds someone (nothing is sent: the outbox is in memory).
    let nobody = crate::orders::Receiver { name: "backtest".into(), tier: 0, person: None };
    let mut store = Store::open(Path::new(":memory:"), cfg.sla, vec![nobody])?;
    let bar = progress(readings.len() as u64, "rules");
    let mut last_tick = i64::MIN;
    let mut events = Vec::new();
    for (i, (ts, reading)) in readings.iter().enumerate() {
        let mut batch = Batch::default();
        if *ts >= last_tick.saturating_add(1000) {
            engine.tick(*ts as u64, &mut events);
            batch.events.extend(events.drain(..).map(|e| (e, None)));
            last_tick = *ts;
        }
        engine.apply(reading, *ts as u64, &mut events);
        if !events.is_empty() {
            let evidence =
                codec::encode_vec(Format::Json, reading).ok().and_then(|v| String::from_utf8(v).ok());
            batch.events.extend(events.drain(..).map(|e| (e, evidence.clone())));
        }
        engine.take_dirty();
        summary.readings += 1;
        if i % 1024 == 0 {
            bar.set_position(i as u64);
        }
        if batch.events.is_empty() {
            continue;
        }
        for c in store.commit(&batch, *ts)? {
            summary.raised += u64::from(c.event == crate::orders::OrderEventKind::Raised);
            summary.transitions += 1;
            match &mut collector {
                Some(col) => col.change(&c),
                None => print(out, &c).map_err(BacktestError::Output)?,
            }
        }
    }
    bar.finish_and_clear();
    summary.subjects = collector.map(|c| c.finish(&engine));
    Ok(summary)
}

fn print(out: &mut dyn Write, c: &Change) -> std::io::Result<()> {
    let line = serde_json::to_string(c).map_err(std::io::Error::other)?;
    writeln!(out, "{line}")
}

/// A progress bar on stderr (drawn only when stderr is a terminal).
pub fn progress(len: u64, what: &'static str) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(len);
    if let Ok(style) =
        indicatif::ProgressStyle::with_template("{msg:>8} [{bar:40}] {pos}/{len} ({per_sec}, {eta})")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(what);
    bar
}
