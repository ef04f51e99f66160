//! Rule behaviour under explicit event time (rules read no clock, so no sleeping or pausing is
//! needed): debounce and hysteresis, night limits, heart-rate conditions, no-data, flapping,
//! escalation, late (backfilled) raises, and state that survives a restart.

use gridsentry::rules::*;
use gridsentry_sensors::heapless;
use gridsentry_sensors::*;
use proptest::prelude::*;

const T0: u64 = 1_764_072_000_000; // 2025-11-25 12:00:00 UTC = 20:00 in Asia/Shanghai

fn id(s: &str) -> Id {
    Id::new(s).unwrap()
}

fn tz() -> jiff::tz::TimeZone {
    jiff::tz::TimeZone::get("Asia/Shanghai").unwrap()
}

fn header(seq: u32, at: u64) -> Header {
    Header {
        site: id("plaza-3"),
        device: id("nb-01"),
        boot_id: 1,
        seq,
        time: Timestamp::Utc(at),
        historical: false,
    }
}

fn noise(at: u64, db: f32) -> Reading {
    let n = NoiseReport::levels(db, db);
    Reading { header: header(0, at), body: Body::Noise(n) }
}

fn hr(at: u64, bpm: u16, contact: Contact) -> Reading {
    let h = HeartRateReport {
        band: id("band-1"),
        bpm,
        contact,
        rr_1024: heapless::Vec::new(),
        energy_kj: None,
        battery_pct: None,
    };
    let mut head = header(0, at);
    head.site = id("home-12");
    head.device = id("gw-1");
    Reading { header: head, body: Body::HeartRate(h) }
}

fn rule(id: &str, colour: Colour, condition: Condition) -> RuleConfig {
    RuleConfig {
        id: id.into(),
        name: String::new(),
        colour,
        sites: vec![],
        escalate: vec![],
        flap: None,
        condition,
    }
}

fn noise_rule(for_s: u64, clear_for_s: u64) -> RuleConfig {
    rule(
        "plaza-noise",
        Colour::Yellow,
        Condition::Threshold(Threshold {
            stream: Stream::Noise,
            field: "laeq_db".into(),
            above: Some(70.0),
            below: None,
            clear: 65.0,
            for_s,
            clear_for_s,
            night: None,
        }),
    )
}

fn engine(rules: Vec<RuleConfig>) -> Engine {
    Engine::new(rules, tz()).unwrap()
}

/// Applies readings one per second from `start`, returning (second offset, event) pairs.
fn run(e: &mut Engine, readings: impl IntoIterator<Item = Reading>) -> Vec<Event> {
    let mut out = Vec::new();
    for r in readings {
        let at = r.utc_ms().unwrap();
        e.apply(&r, at, &mut out);
    }
    out
}

fn kinds(events: &[Event]) -> Vec<(u64, EventKind)> {
    events.iter().map(|e| ((e.at_ms - T0) / 1000, e.kind)).collect()
}

fn raise(colour: Colour) -> EventKind {
    EventKind::Raise { colour, flapping: false }
}

#[test]
fn threshold_waits_for_s_and_clears_with_hysteresis() {
    let mut e = engine(vec![noise_rule(60, 30)]);
    // 75 dB for 100 s, then 68 dB (between clear and limit) for 50 s, then 60 dB for 40 s
    let levels = (0..100).map(|_| 75.0).chain((0..50).map(|_| 68.0)).chain((0..40).map(|_| 60.0));
    let events = run(&mut e, levels.enumerate().map(|(s, db)| noise(T0 + s as u64 * 1000, db)));
    assert_eq!(kinds(&events), vec![(60, raise(Colour::Yellow)), (180, EventKind::Clear)]);
    assert_eq!(events[0].summary.en, "laeq_db above 70 (75.0)");
    assert_eq!(events[0].summary.zh, "等效声级超过 70 dB(A)（当前 75.0 dB(A)）");
}

#[test]
fn a_dip_restarts_the_for_s_timer() {
    let mut e = engine(vec![noise_rule(10, 0)]);
    let levels = [75.0, 75.0, 75.0, 75.0, 75.0, 69.0].into_iter().chain([75.0; 12]);
    let events = run(&mut e, levels.enumerate().map(|(s, db)| noise(T0 + s as u64 * 1000, db)));
    assert_eq!(kinds(&events), vec![(16, raise(Colour::Yellow))]);
}

#[test]
fn night_limit_in_the_configured_zone() {
    let mut r = noise_rule(0, 0);
    let Condition::Threshold(t) = &mut r.condition else { unreachable!() };
    t.above = Some(55.0);
    t.clear = 52.0;
    t.night = Some(Night { limit: 45.0, clear: 42.0, from: "22:00".into(), to: "06:00".into() });
    let hour = 3_600_000;
    // 50 dB at 20:00 Shanghai (day limit 55): nothing; at 22:30: night limit 45 -> raise
    let mut e = engine(vec![r]);
    let events = run(&mut e, [noise(T0, 50.0), noise(T0 + 2 * hour + hour / 2, 50.0)]);
    assert_eq!(kinds(&events), vec![(9000, raise(Colour::Yellow))]);
}

fn drop_rule() -> RuleConfig {
    rule(
        "hr-drop",
        Colour::Red,
        Condition::HrDrop(HrDrop { drop_pct: Some(30.0), drop_bpm: Some(30), window_s: 60, clear_for_s: 60 }),
    )
}

#[test]
fn heart_rate_drop_while_worn_is_red() {
    let mut e = engine(vec![drop_rule()]);
    let bpm = [82, 80, 81, 79, 52];
    let events =
        run(&mut e, bpm.iter().enumerate().map(|(s, &b)| hr(T0 + s as u64 * 1000, b, Contact::Detected)));
    assert_eq!(kinds(&events), vec![(4, raise(Colour::Red))]);
    assert_eq!(events[0].subject.band, Some(id("band-1")));
}

#[test]
fn a_removed_band_is_not_a_heart_rate_of_zero() {
    let rules = vec![
        drop_rule(),
        rule(
            "hr-low",
            Colour::Red,
            Condition::HrLow(HrLow { below_bpm: 40, for_s: 30, clear_bpm: None, clear_for_s: 30 }),
        ),
        rule("band-off", Colour::Orange, Condition::BandRemoved(BandRemoved { for_s: 60 })),
    ];
    let mut e = engine(rules);
    let mut readings: Vec<Reading> = (0..5).map(|s| hr(T0 + s * 1000, 80, Contact::Detected)).collect();
    readings.extend((5..100).map(|s| hr(T0 + s * 1000, 0, Contact::NotDetected)));
    let events = run(&mut e, readings);
    assert_eq!(kinds(&events), vec![(65, raise(Colour::Orange))]);
    assert_eq!(&*events[0].rule, "band-off");
    assert_eq!(events[0].summary.en, "wristband taken off (no skin contact)");
}

#[test]
fn low_heart_rate_for_thirty_seconds_while_worn() {
    let low = rule(
        "hr-low",
        Colour::Red,
        Condition::HrLow(HrLow { below_bpm: 40, for_s: 30, clear_bpm: None, clear_for_s: 30 }),
    );
    let mut e = engine(vec![low]);
    let bpm = (0..40).map(|_| 36).chain((0..40).map(|_| 44)).chain((0..40).map(|_| 46));
    let events = run(&mut e, bpm.enumerate().map(|(s, b)| hr(T0 + s as u64 * 1000, b, Contact::Detected)));
    // 44 bpm is below the clear level (45): holds; 46 for 30 s clears
    assert_eq!(kinds(&events), vec![(30, raise(Colour::Red)), (110, EventKind::Clear)]);
}

fn status(at: u64, state: DeviceState) -> Reading {
    let s = StatusReport {
        state,
        firmware: heapless::String::try_from("1.0").unwrap(),
        dropped: 0,
        slot: Default::default(),
    };
    Reading { header: header(0, at), body: Body::Status(s) }
}

#[test]
fn no_data_tells_last_will_from_silence() {
    let nd = rule(
        "noise-silent",
        Colour::Blue,
        Condition::NoData(NoData { stream: Stream::Noise, silent_s: 120 }),
    );
    let mut e = engine(vec![nd]);
    let mut out = Vec::new();
    e.apply(&noise(T0, 50.0), T0, &mut out);
    e.tick(T0 + 119_000, &mut out);
    assert!(out.is_empty());
    e.tick(T0 + 120_000, &mut out);
    assert_eq!(kinds(&out), vec![(120, raise(Colour::Blue))]);
    assert_eq!(out[0].summary.en, "no noise data for 120 s");
    assert_eq!(out[0].summary.zh, "2 分钟无噪声数据");
    e.apply(&noise(T0 + 130_000, 50.0), T0 + 130_000, &mut out);
    assert_eq!(out[1].kind, EventKind::Clear);
    e.apply(&status(T0 + 140_000, DeviceState::Offline), T0 + 140_000, &mut out);
    assert_eq!(kinds(&out[2..]), vec![(140, raise(Colour::Blue))]);
    assert_eq!(out[2].summary.en, "gateway reported the device offline (last will)");
    e.tick(T0 + 400_000, &mut out);
    assert_eq!(out.len(), 3, "one order for the offline device, not another for its silence");
}

#[test]
fn flapping_input_gives_one_flapping_order() {
    let mut r = noise_rule(0, 0);
    r.flap = Some(FlapConfig { transitions: 4, window_s: 60 });
    let mut e = engine(vec![r]);
    let levels = (0..20).map(|s| if s % 2 == 0 { 75.0 } else { 60.0 }).chain((0..70).map(|_| 60.0));
    let events = run(&mut e, levels.enumerate().map(|(s, db)| noise(T0 + s as u64 * 1000, db)));
    let k = kinds(&events);
    // raise, clear, raise (3 transitions), then the 4th makes it flap: the open order is marked
    // flapping and stays, the rest is folded; after a quiet minute below the clear level it
    // clears once.
    let flapping = EventKind::Raise { colour: Colour::Yellow, flapping: true };
    assert_eq!(
        k,
        vec![
            (0, raise(Colour::Yellow)),
            (1, EventKind::Clear),
            (2, raise(Colour::Yellow)),
            (3, flapping),
            (79, EventKind::Clear)
        ]
    );
    assert_eq!(events[3].summary.en, "flapping: laeq_db above 70 (60.0)");
    assert_eq!(events[4].summary.en, "stopped flapping");
}

#[test]
fn persisting_condition_steps_up_a_colour() {
    let mut r = noise_rule(0, 0);
    r.escalate =
        vec![Step { after_s: 300, colour: Colour::Orange }, Step { after_s: 900, colour: Colour::Red }];
    let mut e = engine(vec![r]);
    let events = run(&mut e, (0..1000).map(|s| noise(T0 + s * 1000, 80.0)));
    let k = kinds(&events);
    assert_eq!(
        k,
        vec![
            (0, raise(Colour::Yellow)),
            (300, EventKind::Escalate { colour: Colour::Orange, restate: false }),
            (900, EventKind::Escalate { colour: Colour::Red, restate: false })
        ]
    );
}

#[test]
fn backfilled_raise_is_late_until_live_data_confirms_it() {
    let mut e = engine(vec![noise_rule(0, 0)]);
    let mut old = noise(T0, 80.0);
    old.header.historical = true;
    let mut over = noise(T0 + 1000, 60.0);
    over.header.historical = true;
    let events = run(&mut e, [old.clone(), over]);
    assert_eq!(
        events.iter().map(|e| (e.kind, e.late)).collect::<Vec<_>>(),
        vec![(raise(Colour::Yellow), true), (EventKind::Clear, true)]
    );
    let mut old2 = old.clone();
    old2.header.time = Timestamp::Utc(T0 + 2000);
    let events = run(&mut e, [old2, noise(T0 + 3000, 81.0)]);
    assert_eq!(
        events.iter().map(|e| (e.kind, e.late)).collect::<Vec<_>>(),
        vec![(raise(Colour::Yellow), true), (EventKind::Confirm, false)]
    );
}

#[test]
fn older_readings_are_skipped_and_counted() {
    let mut e = engine(vec![noise_rule(0, 0)]);
    let events = run(&mut e, [noise(T0 + 5000, 60.0), noise(T0, 90.0)]);
    assert!(events.is_empty());
    assert_eq!(e.stats().stale, 1);
}

#[test]
fn a_pending_timer_survives_a_restart() {
    let mut first = engine(vec![noise_rule(60, 0)]);
    assert!(run(&mut first, (0..40).map(|s| noise(T0 + s * 1000, 75.0))).is_empty());
    let rows = first.take_dirty();
    assert_eq!(rows.len(), 1);
    let mut second = engine(vec![noise_rule(60, 0)]);
    for (k, v) in &rows {
        assert!(second.restore(k, v).unwrap());
    }
    let events = run(&mut second, (40..70).map(|s| noise(T0 + s * 1000, 75.0)));
    assert_eq!(kinds(&events), vec![(60, raise(Colour::Yellow))]);
}

#[test]
fn invalid_rules_are_refused_with_the_rule_named() {
    let mut r = noise_rule(0, 0);
    let Condition::Threshold(t) = &mut r.condition else { unreachable!() };
    t.clear = 75.0;
    let err = Engine::new(vec![r], tz()).err().unwrap();
    assert_eq!(
        err.to_string(),
        "rule `plaza-noise`: `clear` must be on the safe side of the limit (hysteresis)"
    );
    let err = Engine::new(vec![noise_rule(0, 0), noise_rule(1, 1)], tz()).err().unwrap();
    assert_eq!(err.message, "duplicate rule id");
}

fn all_rules() -> Vec<RuleConfig> {
    let mut flappy = noise_rule(2, 1);
    flappy.id = "flappy".into();
    flappy.flap = Some(FlapConfig { transitions: 3, window_s: 20 });
    flappy.escalate = vec![Step { after_s: 30, colour: Colour::Red }];
    vec![
        noise_rule(5, 3),
        flappy,
        drop_rule(),
        rule(
            "hr-low",
            Colour::Red,
            Condition::HrLow(HrLow { below_bpm: 40, for_s: 5, clear_bpm: None, clear_for_s: 5 }),
        ),
        rule("band-off", Colour::Orange, Condition::BandRemoved(BandRemoved { for_s: 4 })),
    ]
}

fn input() -> impl Strategy<Value = Vec<Reading>> {
    let step = prop_oneof![
        (40.0f32..90.0).prop_map(|db| (0u8, db, Contact::Detected)),
        (0u16..120, prop_oneof![Just(Contact::Detected), Just(Contact::NotDetected)])
            .prop_map(|(b, c)| (1u8, b as f32, c)),
    ];
    proptest::collection::vec((step, 0u64..3000), 1..200).prop_map(|steps| {
        let mut at = T0;
        steps
            .into_iter()
            .map(|((kind, v, c), gap)| {
                at += gap;
                if kind == 0 {
                    noise(at, v)
                } else {
                    hr(at, v as u16, c)
                }
            })
            .collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]
    /// State serialised at any point and restored into a new engine behaves as if nothing
    /// had happened.
    #[test]
    fn restored_state_behaves_the_same(readings in input(), cut in any::<prop::sample::Index>()) {
        let cut = cut.index(readings.len());
        let mut before = engine(all_rules());
        let first = run(&mut before, readings[..cut].iter().cloned());
        let mut after = engine(all_rules());
        for (k, v) in before.take_dirty() {
            prop_assert!(after.restore(&k, &v).unwrap());
        }
        let rest = run(&mut after, readings[cut..].iter().cloned());
        let mut again = engine(all_rules());
        let all = run(&mut again, readings.iter().cloned());
        prop_assert_eq!(first.len() + rest.len(), all.len());
        prop_assert_eq!(&all[first.len()..], &rest[..]);
    }
}

#[test]
fn a_reading_stamped_a_year_ahead_does_not_mute_the_subject() {
    let mut e = engine(vec![noise_rule(0, 0)]);
    let year = 365 * 86_400_000;
    let mut out = Vec::new();
    // Received at T0 + 1 s, stamped a year ahead: evaluated at its receive time.
    e.apply(&noise(T0 + year, 50.0), T0 + 1000, &mut out);
    e.apply(&noise(T0 + 2000, 80.0), T0 + 2000, &mut out);
    assert_eq!(e.stats().stale, 0, "the device's next reading is not stale");
    assert!(matches!(out.last().map(|ev| ev.kind), Some(EventKind::Raise { .. })), "{out:?}");
    // State written before the policy existed: a rule clock a year ahead is pulled back.
    let mut e2 = engine(vec![noise_rule(0, 0)]);
    let key = "plaza-noise|plaza-3/nb-01";
    let json = format!(r#"{{"last_ms":{}}}"#, T0 + year);
    assert!(e2.restore(key, &json).unwrap());
    assert_eq!(e2.clamp_future(T0), 1);
    e2.apply(&noise(T0 + 1000, 80.0), T0 + 1000, &mut out);
    assert_eq!(e2.stats().stale, 0);
}

#[test]
fn a_gateway_inventing_bands_is_bounded_and_its_known_bands_still_count() {
    let drop = rule(
        "heart-rate-drop",
        Colour::Red,
        Condition::HrDrop(HrDrop { drop_pct: Some(30.0), drop_bpm: None, window_s: 60, clear_for_s: 60 }),
    );
    let mut e = Engine::new(vec![drop], tz()).unwrap().with_max_bands(2);
    let band = |b: &str, bpm: u16, at: u64| {
        let mut r = hr(at, bpm, Contact::Detected);
        if let Body::HeartRate(h) = &mut r.body {
            h.band = id(b);
        }
        r
    };
    let mut out = Vec::new();
    for (i, b) in ["a1", "a2", "x1", "x2", "x3"].iter().enumerate() {
        e.apply(&band(b, 80, T0 + i as u64 * 1000), T0 + i as u64 * 1000, &mut out);
    }
    assert_eq!(e.stats().bands_refused, 3, "the third band on is not heard");
    let subj = |b: &str| Subject { site: id("home-12"), device: id("gw-1"), band: Some(id(b)) };
    assert!(e.state("heart-rate-drop", &subj("x1")).is_none(), "no state for an invented band");
    // A known band's sharp drop still raises.
    e.apply(&band("a1", 40, T0 + 10_000), T0 + 10_000, &mut out);
    assert!(
        out.iter().any(|ev| matches!(ev.kind, EventKind::Raise { .. }) && ev.subject == subj("a1")),
        "{out:?}"
    );
}
