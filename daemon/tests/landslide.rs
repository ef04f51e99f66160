//! Landslide rules on synthetic creep curves with a known failure time: tangent-angle levels,
//! the inverse-velocity forecast, corroboration across stations, windowed rainfall, and state
//! that survives a restart. Event time is explicit (rules read no clock).

use gridsentry::rules::*;
use gridsentry_sensors::*;
use proptest::prelude::*;

const T0: u64 = 1_780_000_000_000;
const HOUR: u64 = 3_600_000;
const DAY: f64 = 86_400_000.0;

/// Steady creep at `v_c` mm/day until `t1` days, then tertiary creep with 1/v falling linearly
/// to zero at `t_f` days (Fukuzono): v = 1 / (A (t_f − t)), continuous at `t1`.
#[derive(Clone, Copy)]
struct Creep {
    v_c: f64,
    t1: f64,
    t_f: f64,
}

impl Creep {
    fn a(&self) -> f64 {
        1.0 / (self.v_c * (self.t_f - self.t1))
    }
    fn displacement(&self, t: f64) -> f64 {
        if t <= self.t1 {
            return self.v_c * t;
        }
        self.v_c * self.t1 + ((self.t_f - self.t1) / (self.t_f - t)).ln() / self.a()
    }
    /// First time the velocity reaches `v` (days).
    fn time_of_velocity(&self, v: f64) -> f64 {
        self.t_f - 1.0 / (self.a() * v)
    }
}

fn id(s: &str) -> Id {
    Id::new(s).unwrap()
}

fn deform(device: &str, seq: u32, at: u64, mm: f64) -> Reading {
    let mut d = DeformReport::default();
    d.push(ChannelKind::DisplacementMm, mm).unwrap();
    let header = Header {
        site: id("slope-7"),
        device: id(device),
        boot_id: 1,
        seq,
        time: Timestamp::Utc(at),
        historical: false,
    };
    Reading { header, body: Body::Deform(d) }
}

fn tangent(creep: Option<f64>, corroborate: u8) -> TangentAngle {
    TangentAngle {
        field: "disp_mm".into(),
        creep_mm_per_day: creep,
        baseline_s: 3 * 86_400,
        baseline_min_points: 10,
        min_creep_mm_per_day: 0.1,
        velocity_window_s: 6 * 3600,
        levels_deg: [40.0, 45.0, 80.0, 85.0],
        hold: [3, 5],
        forecast_min_points: 10,
        corroborate,
    }
}

fn engine(t: TangentAngle, min: Colour) -> Engine {
    let rule = RuleConfig {
        name: String::new(),
        id: "slope".into(),
        colour: min,
        sites: vec![],
        escalate: vec![],
        flap: None,
        condition: Condition::TangentAngle(t),
    };
    Engine::new(vec![rule], jiff::tz::TimeZone::UTC).unwrap()
}

/// Small deterministic noise, ±`amp` mm.
fn noise(i: u64, amp: f64) -> f64 {
    let x = i.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407) >> 33;
    (x as f64 / (1u64 << 31) as f64 - 0.5) * 2.0 * amp
}

/// Hourly readings until two hours before failure; returns the events.
fn run(e: &mut Engine, c: Creep, device: &str, amp: f64) -> Vec<Event> {
    let mut out = Vec::new();
    let hours = ((c.t_f * 24.0) as u64).saturating_sub(2);
    for h in 0..=hours {
        let at = T0 + h * HOUR;
        let mm = c.displacement(h as f64 / 24.0) + noise(h, amp);
        e.apply(&deform(device, h as u32, at, mm), at, &mut out);
    }
    out
}

fn colours(events: &[Event]) -> Vec<(Colour, u64)> {
    events
        .iter()
        .filter_map(|e| match e.kind {
            EventKind::Raise { colour, .. } | EventKind::Escalate { colour, .. } => Some((colour, e.at_ms)),
            _ => None,
        })
        .collect()
}

const CREEP: Creep = Creep { v_c: 1.0, t1: 5.0, t_f: 15.0 };

#[test]
fn levels_follow_the_angle_thresholds() {
    let mut e = engine(tangent(Some(1.2), 1), Colour::Yellow);
    let events = run(&mut e, CREEP, "gnss-1", 0.0);
    let seen = colours(&events);
    let order: Vec<Colour> = seen.iter().map(|&(c, _)| c).collect();
    assert_eq!(order, [Colour::Yellow, Colour::Orange, Colour::Red], "{events:#?}");
    // Each level appears after the analytic angle crosses its threshold and within the lag of
    // the smoothing window (3 h to its middle) plus the 3-of-5 hold (3 hourly evaluations).
    for ((colour, at), deg) in seen.iter().zip([45.0f64, 80.0, 85.0]) {
        let v = 1.2 * deg.to_radians().tan();
        let crossing = T0 as f64 + CREEP.time_of_velocity(v) * DAY;
        let lag = (*at as f64 - crossing) / HOUR as f64;
        assert!((0.0..=7.0).contains(&lag), "{colour:?} at {lag:.1} h after the crossing");
    }
    assert!(!events.iter().any(|e| e.kind == EventKind::Clear));
}

#[test]
fn forecast_recovers_the_failure_time_within_5_percent() {
    for (amp, creep) in [(0.0, Some(1.0)), (0.05, None)] {
        let mut e = engine(tangent(creep, 1), Colour::Yellow);
        let events = run(&mut e, CREEP, "gnss-1", amp);
        let red = events
            .iter()
            .find(|e| matches!(e.kind, EventKind::Escalate { colour: Colour::Red, .. }))
            .expect("red escalation");
        let f = red.forecast.expect("red order carries a forecast");
        let t_f = T0 as f64 + CREEP.t_f * DAY;
        let lead = (CREEP.t_f - CREEP.t1) * DAY;
        let err = (f.failure_ms as f64 - t_f).abs() / lead;
        eprintln!("noise {amp} mm: forecast error {:.2} % of the lead, {f:?}", err * 100.0);
        assert!(err <= 0.05, "noise {amp}: forecast off by {:.1} % of the lead", err * 100.0);
        assert!(f.points >= 10 && f.r2 > 0.5, "{f:?}");
        assert!(
            red.summary.en.contains("failure forecast") && red.summary.zh.contains("预测失稳时间"),
            "{:?}",
            red.summary
        );
        // The forecast is kept up to date on the open order.
        let updates = events.iter().filter(|e| e.kind == EventKind::Forecast).count();
        assert!(updates >= 1, "no forecast updates");
        let last = events.iter().rev().find_map(|e| e.forecast).unwrap();
        assert!((last.failure_ms as f64 - t_f).abs() / lead <= 0.05);
    }
}

#[test]
fn learns_creep_velocity_from_the_baseline_and_stays_quiet_in_steady_creep() {
    let steady = Creep { v_c: 1.0, t1: 100.0, t_f: 200.0 };
    let mut e = engine(tangent(None, 1), Colour::Orange);
    let mut out = Vec::new();
    for h in 0..24 * 10 {
        let at = T0 + h * HOUR;
        e.apply(
            &deform("gnss-1", h as u32, at, steady.displacement(h as f64 / 24.0) + noise(h, 0.05)),
            at,
            &mut out,
        );
    }
    assert!(out.is_empty(), "{out:#?}");
    let subj = Subject { site: id("slope-7"), device: id("gnss-1"), band: None };
    let s = e.state("slope", &subj).unwrap().kind.slope().unwrap();
    let creep = s.creep.expect("learnt v_c");
    assert!((creep - 1.0).abs() < 0.05, "v_c {creep}");
    assert!((s.angle - 45.0).abs() < 10.0, "angle {}", s.angle);
}

#[test]
fn red_waits_for_a_second_station_and_is_never_dropped() {
    let mut e = engine(tangent(Some(1.2), 2), Colour::Yellow);
    // Station B creeps steadily: A alone reaches the red angle but stays orange.
    let quiet = Creep { v_c: 0.5, t1: 100.0, t_f: 200.0 };
    let mut out = Vec::new();
    let hours = (CREEP.t_f * 24.0) as u64 - 2;
    for h in 0..=hours {
        let at = T0 + h * HOUR;
        e.apply(&deform("gnss-a", h as u32, at, CREEP.displacement(h as f64 / 24.0)), at, &mut out);
        e.apply(&deform("gnss-b", h as u32, at, quiet.displacement(h as f64 / 24.0)), at, &mut out);
    }
    let a: Vec<Colour> = colours(&out).into_iter().map(|(c, _)| c).collect();
    assert_eq!(a, [Colour::Yellow, Colour::Orange, Colour::Orange], "{out:#?}");
    assert!(
        out.iter()
            .any(|e| e.summary.en.contains("awaiting corroboration")
                && e.summary.zh.contains("待其他测站印证")),
        "{out:#?}"
    );
    let subj = Subject { site: id("slope-7"), device: id("gnss-a"), band: None };
    let a_state = e.state("slope", &subj).unwrap();
    let slope = a_state.kind.slope().unwrap();
    assert!(slope.held == 4 && slope.capped, "A holds red, capped");
    assert_eq!(a_state.open.map(|o| o.colour), Some(Colour::Orange));
    // B accelerates: once it holds orange, A goes red at once.
    let fast = Creep { v_c: 2.0, t1: 0.0, t_f: 1.0 };
    let start = T0 + (hours + 1) * HOUR;
    let mut b_out = Vec::new();
    let b0 = quiet.displacement(hours as f64 / 24.0);
    for m in 1..(22 * 6) {
        let at = start + m * 600_000;
        let mm = b0 + quiet.v_c / 24.0 + fast.displacement(m as f64 / 144.0);
        e.apply(&deform("gnss-b", 1000 + m as u32, at, mm), at, &mut b_out);
    }
    let is = |e: &&Event, dev: &str, c: Colour| {
        e.subject.device.as_str() == dev
            && colours(std::slice::from_ref(*e)).first().is_some_and(|x| x.0 >= c)
    };
    let red = b_out
        .iter()
        .find(|e| is(e, "gnss-a", Colour::Red))
        .unwrap_or_else(|| panic!("A never went red: {b_out:#?}"));
    assert!(red.summary.en.contains("confirmed by 2 stations"), "{:?}", red.summary);
    let b_orange = b_out.iter().find(|e| is(e, "gnss-b", Colour::Orange)).expect("B orange");
    assert_eq!(red.at_ms, b_orange.at_ms, "A goes red with the reading that puts B at orange");
}

#[test]
fn a_site_with_one_station_goes_red_without_corroboration() {
    let mut e = engine(tangent(Some(1.0), 3), Colour::Yellow);
    let events = run(&mut e, CREEP, "gnss-1", 0.0);
    assert_eq!(colours(&events).last().map(|c| c.0), Some(Colour::Red));
}

#[test]
fn state_survives_a_restart_mid_acceleration() {
    let mut whole = engine(tangent(None, 1), Colour::Yellow);
    let expected = run(&mut whole, CREEP, "gnss-1", 0.05);
    let hours = (CREEP.t_f * 24.0) as u64 - 2;
    let cut = 12 * 24 + 5;
    let (mut first, mut got) = (engine(tangent(None, 1), Colour::Yellow), Vec::new());
    for h in 0..=hours {
        if h == cut {
            let mut second = engine(tangent(None, 1), Colour::Yellow);
            for (k, v) in first.take_dirty() {
                assert!(second.restore(&k, &v).unwrap());
            }
            first = second;
        }
        let at = T0 + h * HOUR;
        let mm = CREEP.displacement(h as f64 / 24.0) + noise(h, 0.05);
        first.apply(&deform("gnss-1", h as u32, at, mm), at, &mut got);
    }
    assert_eq!(got, expected);
}

fn rain(seq: u32, at: u64, total: f64) -> Reading {
    let mut d = DeformReport::default();
    d.push(ChannelKind::RainCumulativeMm, total).unwrap();
    let header = Header {
        site: id("slope-7"),
        device: id("rain-1"),
        boot_id: 1,
        seq,
        time: Timestamp::Utc(at),
        historical: false,
    };
    Reading { header, body: Body::Rain(d) }
}

#[test]
fn rainfall_over_a_window_from_a_cumulative_gauge_with_a_reset() {
    let cfg = Rainfall { window_s: 24 * 3600, above_mm: 50.0, clear_mm: 20.0, clear_for_s: 0 };
    let rule = RuleConfig {
        name: String::new(),
        id: "rain-24h".into(),
        colour: Colour::Yellow,
        sites: vec![],
        escalate: vec![],
        flap: None,
        condition: Condition::Rainfall(cfg),
    };
    let mut e = Engine::new(vec![rule], jiff::tz::TimeZone::UTC).unwrap();
    let mut out = Vec::new();
    // 4 mm/h for 10 h (40 mm), gauge restarts (total back to 0), 4 mm/h for 5 h more.
    let mut totals: Vec<f64> = (0..=10).map(|h| 1000.0 + 4.0 * h as f64).collect();
    totals.extend((0..=5).map(|h| 4.0 * h as f64));
    for (h, total) in totals.iter().enumerate() {
        let at = T0 + h as u64 * HOUR;
        e.apply(&rain(h as u32, at, *total), at, &mut out);
    }
    let raise = out.iter().find(|e| matches!(e.kind, EventKind::Raise { .. })).expect("raised");
    assert_eq!(raise.value, Some(52.0), "{out:#?}"); // 40 + 0 (reset reading) + 3 × 4
                                                     // A dry day later the window holds nothing: cleared.
    let at = T0 + 40 * HOUR;
    e.apply(&rain(99, at, 20.0), at, &mut out);
    assert_eq!(out.last().map(|e| e.kind), Some(EventKind::Clear));
}

proptest! {
    /// The angle never falls when the velocity rises (the rule's levels rest on it).
    #[test]
    fn angle_is_monotonic_in_velocity(v1 in -1e3f64..1e3, dv in 0f64..1e3, vc in 1e-3f64..1e2) {
        prop_assert!(slope::tangent_angle(v1, vc) <= slope::tangent_angle(v1 + dv, vc));
    }

    /// Through the rule: a station moving faster shows a larger angle.
    #[test]
    fn rule_angle_is_monotonic_in_velocity(v1 in 0f64..50.0, dv in 0.01f64..50.0) {
        let angle = |v: f64| {
            let mut e = engine(tangent(Some(1.0), 1), Colour::Red);
            let mut out = Vec::new();
            for h in 0..8u64 {
                let at = T0 + h * HOUR;
                e.apply(&deform("gnss-1", h as u32, at, v * h as f64 / 24.0), at, &mut out);
            }
            let subj = Subject { site: id("slope-7"), device: id("gnss-1"), band: None };
            e.state("slope", &subj).unwrap().kind.slope().unwrap().angle
        };
        prop_assert!(angle(v1) <= angle(v1 + dv) + 1e-9);
    }
}

#[test]
fn insar_points_teach_the_long_term_creep_despite_a_wet_spell_and_wait_for_enough_points() {
    let mut t = tangent(None, 1);
    (t.baseline_s, t.baseline_min_points, t.min_creep_mm_per_day) = (90 * 86_400, 12, 0.01);
    t.velocity_window_s = 60 * 86_400;
    let mut e = engine(t, Colour::Yellow);
    let subj = Subject { site: id("slope-7"), device: id("insar-1"), band: None };
    // 11-day InSAR points of a slope creeping 0.05 mm/d, with 4 mm in one wet spell (days 33–44):
    // a least-squares line through the first 121 days reads about 0.09 mm/d.
    let disp = |d: f64| 0.05 * d + 4.0 * ((d - 33.0) / 11.0).clamp(0.0, 1.0);
    let mut out = Vec::new();
    for k in 0..12u32 {
        let d = 11.0 * f64::from(k);
        let at = T0 + (d * 86_400_000.0) as u64;
        e.apply(&deform("insar-1", k, at, disp(d)), at, &mut out);
        let creep = e.state("slope", &subj).unwrap().kind.slope().unwrap().creep;
        // 90 days pass at the 10th point; 12 points are asked for.
        assert_eq!(creep.is_some(), k == 11, "point {k}: {creep:?}");
    }
    let creep = e.state("slope", &subj).unwrap().kind.slope().unwrap().creep.unwrap();
    assert!((creep - 0.05).abs() < 0.005, "Theil–Sen v_c {creep}, not pulled by the wet spell");
    assert!(out.is_empty(), "{out:#?}");
}
