//! Criterion benchmarks of the landslide rules, per reading, with realistic windows: GNSS
//! stations reporting once a minute, velocity smoothed over 6 h (360 points per fit), the
//! inverse-velocity forecast refitted on every reading once a slope accelerates (up to 256
//! points), and a 24 h rainfall window.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use gridsentry::rules::*;
use gridsentry_sensors::*;

const T0: u64 = 1_780_000_000_000;
const MINUTE: u64 = 60_000;
const STATIONS: u32 = 10;
const PER_STATION: u64 = 2000;

fn rule(condition: Condition) -> Engine {
    let r = RuleConfig {
        id: "r".into(),
        name: String::new(),
        colour: Colour::Yellow,
        sites: vec![],
        escalate: vec![],
        flap: None,
        condition,
    };
    Engine::new(vec![r], jiff::tz::TimeZone::UTC).unwrap()
}

fn tangent(creep: f64) -> Condition {
    Condition::TangentAngle(TangentAngle {
        field: "disp_mm".into(),
        creep_mm_per_day: Some(creep),
        baseline_s: 86_400,
        baseline_min_points: 10,
        min_creep_mm_per_day: 0.1,
        velocity_window_s: 6 * 3600,
        levels_deg: [40.0, 50.0, 80.0, 85.0],
        hold: [3, 5],
        forecast_min_points: 10,
        corroborate: 2,
    })
}

fn reading(kind: ChannelKind, station: u32, i: u64, value: f64) -> Reading {
    let mut d = DeformReport::default();
    d.push(kind, value).unwrap();
    let header = Header {
        site: Id::new("slope-7").unwrap(),
        device: Id::new(&format!("st-{station}")).unwrap(),
        boot_id: 1,
        seq: i as u32,
        time: Timestamp::Utc(T0 + i * MINUTE),
        historical: false,
    };
    let body = if kind == ChannelKind::RainCumulativeMm { Body::Rain(d) } else { Body::Deform(d) };
    Reading { header, body }
}

/// Readings of every station, interleaved in time; `mm(i)` is the displacement at minute `i`.
fn series(kind: ChannelKind, mm: impl Fn(u64) -> f64) -> Vec<Reading> {
    let mut out = Vec::new();
    for i in 0..PER_STATION {
        for s in 0..STATIONS {
            let jitter = ((i * 7919 + u64::from(s) * 104_729) % 100) as f64 / 100.0 - 0.5;
            out.push(reading(kind, s, i, mm(i) + jitter * 0.4));
        }
    }
    out
}

/// Name, readings, rule.
type Case<'a> = (&'a str, &'a Vec<Reading>, fn() -> Condition);

fn bench(c: &mut Criterion) {
    let steady = series(ChannelKind::DisplacementMm, |i| i as f64 / 1440.0); // 1 mm/day
                                                                             // Tertiary creep towards failure just after the last reading (1/v linear in time).
    let t_f = PER_STATION as f64 + 30.0;
    let accel = series(ChannelKind::DisplacementMm, |i| -(t_f - i as f64).ln() * 5.0);
    let rain = series(ChannelKind::RainCumulativeMm, |i| (i / 10) as f64 * 0.2);
    let cases: [Case; 3] = [
        ("tangent-angle/steady-creep", &steady, || tangent(1.0)),
        ("tangent-angle/accelerating+forecast", &accel, || tangent(0.2)),
        ("rainfall-24h", &rain, || {
            Condition::Rainfall(Rainfall { window_s: 86_400, above_mm: 50.0, clear_mm: 30.0, clear_for_s: 0 })
        }),
    ];
    let mut g = c.benchmark_group("landslide");
    for (name, readings, cond) in cases {
        g.throughput(Throughput::Elements(readings.len() as u64));
        g.bench_function(name, |b| {
            b.iter(|| {
                let mut e = rule(cond());
                let mut out = Vec::new();
                for r in readings {
                    let at = r.utc_ms().unwrap();
                    e.apply(r, at, &mut out);
                }
                out.len()
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
