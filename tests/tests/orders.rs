//! The order store's semantics, the same suite on both engines: a real SQLite file and a real
//! PostgreSQL server (Debian's, started per test by the harness). Transitions, latching, late
//! raises, deadlines, outbox bookkeeping, retention, and what survives reopening; plus what only
//! one engine has (SQLite's schema migrations, PostgreSQL's concurrent writers).

use gridsentry::orders::*;
use gridsentry::rules::{Colour, Event, EventKind, Said, Subject};
use gridsentry_sensors::Id;
use gridsentry_tests::postgres::Postgres;
use std::sync::Arc;

const T: i64 = 1_764_072_000_000;

/// Where a test's orders live.
enum Db {
    Sqlite(tempfile::TempDir),
    Postgres(Postgres, String),
}

impl Db {
    fn sqlite() -> Db {
        Db::Sqlite(tempfile::tempdir().unwrap())
    }

    fn postgres() -> Db {
        let pg = Postgres::start();
        let url = pg.database();
        Db::Postgres(pg, url)
    }

    /// Opens the store (again: a reopened store sees what was committed).
    fn open(&self) -> Store {
        let receivers = vec![
            Receiver { name: "grid-worker".into(), tier: 0, person: None },
            Receiver { name: "duty-officer".into(), tier: 1, person: None },
            Receiver { name: "street-chief".into(), tier: 2, person: None },
        ];
        match self {
            Db::Sqlite(dir) => {
                Store::open(&dir.path().join("orders.db"), SlaTable::default(), receivers).unwrap()
            }
            Db::Postgres(_, url) => Store::connect(url, SlaTable::default(), receivers).unwrap(),
        }
    }

    /// One text value, read with the engine's own client (not through the store).
    fn text(&self, sql: &str) -> String {
        match self {
            Db::Sqlite(dir) => rusqlite::Connection::open(dir.path().join("orders.db"))
                .unwrap()
                .query_row(sql, [], |r| r.get(0))
                .unwrap(),
            Db::Postgres(pg, url) => {
                let db = url.split("dbname=").nth(1).unwrap().split(' ').next().unwrap();
                pg.psql(db, sql).trim_end_matches('\n').to_string()
            }
        }
    }
}

/// Each scenario as a test on each engine (`sqlite::name`, `postgres::name`).
macro_rules! on_both {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[test] fn $name() { super::$name(&super::Db::sqlite()) })*
        }
        mod postgres {
            $(#[test] fn $name() { super::$name(&super::Db::postgres()) })*
        }
    };
}

on_both!(
    a_raise_opens_one_order_and_queues_its_notification,
    red_is_latched_until_a_person_resolves_it,
    other_colours_resolve_when_the_condition_clears,
    late_raises_page_nobody_until_confirmed,
    missed_deadlines_escalate_to_the_next_tier_and_reminders_repeat,
    outbox_retry_dead_letter_replay_and_fallback,
    rule_state_and_sequence_numbers_survive_reopening,
    deadlines_run_from_when_the_order_was_raised_here_not_from_event_time,
    a_forecast_rides_on_the_order_and_updates_silently,
    a_slope_order_that_turns_red_late_gets_the_full_red_deadlines_from_then,
    evidence_past_its_retention_is_emptied_and_the_rest_stays,
    two_writers_never_open_two_orders_for_one_subject,
    two_people_acting_at_once_change_an_order_once,
    a_fenced_writer_writes_nothing_and_partitions_keep_their_own_state,
    resolved_while_active_is_raised_again_after_reraise_s,
    a_clear_after_the_resolve_ends_the_wait,
    changes_carry_names_and_local_times,
    a_persons_own_receiver_hears_the_orders_dispatched_to_them,
    silences_are_kept_listed_audited_and_end_on_their_time_or_by_hand,
    a_claim_can_take_reds_alone_or_everything_else,
    orders_with_one_cause_are_one_incident_and_a_gateway_holds_its_bands_back,
    a_red_order_warns_residents_once_and_each_send_is_claimed_once,
);

fn subject() -> Subject {
    Subject {
        site: Id::new("home-12").unwrap(),
        device: Id::new("gw-1").unwrap(),
        band: Some(Id::new("band-1").unwrap()),
    }
}

fn event(kind: EventKind, at: i64, late: bool) -> (Event, Option<String>) {
    let e = Event {
        rule: Arc::from("hr-drop"),
        subject: subject(),
        at_ms: at as u64,
        kind,
        late,
        summary: Said::new("sharp drop", "心率骤降"),
        value: Some(50.0),
        forecast: None,
    };
    (e, Some(r#"{"bpm":50}"#.into()))
}

fn raise(colour: Colour, at: i64) -> (Event, Option<String>) {
    event(EventKind::Raise { colour, flapping: false }, at, false)
}

fn commit(s: &mut Store, events: Vec<(Event, Option<String>)>, at: i64) -> Vec<Change> {
    s.commit(&Batch { events, ..Batch::default() }, at).unwrap()
}

fn states(changes: &[Change]) -> Vec<(&str, &str)> {
    changes.iter().map(|c| (c.event.as_str(), c.state.as_str())).collect()
}

fn a_raise_opens_one_order_and_queues_its_notification(db: &Db) {
    let mut s = db.open();
    let c = commit(&mut s, vec![raise(Colour::Red, T), raise(Colour::Red, T + 1000)], T);
    assert_eq!(states(&c), vec![("raised", "raised"), ("reactivated", "raised")]);
    let open = s.orders(&Filter { open: true, ..Filter::default() }).unwrap();
    assert_eq!(open.len(), 1, "one open order per rule and subject");
    assert_eq!(open[0].subject, "home-12/gw-1/band-1");
    let due = s.due_outbox(T + 1000, 10).unwrap();
    assert_eq!(
        due.iter().map(|r| (r.seq, r.receiver.as_str())).collect::<Vec<_>>(),
        vec![(1, "grid-worker"), (2, "grid-worker")]
    );
    let body: serde_json::Value = serde_json::from_str(&due[0].payload).unwrap();
    assert_eq!(body["schema"], "gridsentry.order.v1");
    assert_eq!(body["idempotency_key"], format!("{}-1", open[0].id));
    assert_eq!(body["colour"], "red");
    assert_eq!(body["evidence"]["bpm"], 50);
    assert_eq!(body["at"], "2025-11-25T12:00:00Z");
}

fn red_is_latched_until_a_person_resolves_it(db: &Db) {
    let mut s = db.open();
    commit(&mut s, vec![raise(Colour::Red, T)], T);
    let c = commit(&mut s, vec![event(EventKind::Clear, T + 5000, false)], T + 5000);
    assert_eq!(states(&c), vec![("condition_cleared", "raised")]);
    let id = c[0].order_id;
    let err = s.act(id, Action::Close, "op", "", T + 6000).unwrap_err();
    assert_eq!(err.to_string(), "cannot close an order that is raised");
    for (action, state) in [
        (Action::Ack, "acknowledged"),
        (Action::OnSite, "on_site"),
        (Action::Resolve, "resolved"),
        (Action::Close, "closed"),
    ] {
        assert_eq!(s.act(id, action, "op-li", "checked", T + 7000).unwrap().state, state);
    }
    let (order, events) = s.order(id).unwrap().unwrap();
    assert_eq!(order.state, State::Closed);
    let kinds: Vec<_> = events.iter().map(|e| (e.seq, e.kind.as_str(), e.who.as_str())).collect();
    assert_eq!(
        kinds,
        vec![
            (1, "raised", "rule:hr-drop"),
            (2, "condition_cleared", "rule:hr-drop"),
            (3, "acknowledged", "op-li"),
            (4, "on_site", "op-li"),
            (5, "resolved", "op-li"),
            (6, "closed", "op-li"),
        ]
    );
    assert_eq!(events[0].evidence.as_deref(), Some(r#"{"bpm":50}"#));
}

fn other_colours_resolve_when_the_condition_clears(db: &Db) {
    let mut s = db.open();
    commit(&mut s, vec![raise(Colour::Yellow, T)], T);
    let c = commit(&mut s, vec![event(EventKind::Clear, T + 5000, false)], T + 5000);
    assert_eq!(states(&c), vec![("resolved", "resolved")]);
    // a new raise after that opens a new order
    let c = commit(&mut s, vec![raise(Colour::Yellow, T + 9000)], T + 9000);
    assert_ne!(
        c[0].order_id,
        s.orders(&Filter { state: Some(State::Resolved), ..Filter::default() }).unwrap()[0].id
    );
}

fn late_raises_page_nobody_until_confirmed(db: &Db) {
    let mut s = db.open();
    commit(&mut s, vec![event(EventKind::Raise { colour: Colour::Orange, flapping: false }, T, true)], T);
    assert!(s.due_outbox(T, 10).unwrap().is_empty());
    assert!(s.sla_tick(T + 3_600_000).unwrap().is_empty(), "no deadlines for an unconfirmed late order");
    commit(&mut s, vec![event(EventKind::Confirm, T + 10_000, false)], T + 10_000);
    let due = s.due_outbox(T + 10_000, 10).unwrap();
    assert_eq!(due.len(), 1);
    assert!(due[0].payload.contains(r#""event":"confirmed""#));
}

fn missed_deadlines_escalate_to_the_next_tier_and_reminders_repeat(db: &Db) {
    let mut s = db.open();
    let id = commit(&mut s, vec![raise(Colour::Red, T)], T)[0].order_id;
    assert!(s.sla_tick(T + 59_000).unwrap().is_empty());
    let c = s.sla_tick(T + 60_000).unwrap();
    assert_eq!(states(&c), vec![("escalated", "escalated")]);
    assert_eq!(c[0].summary, "sharp drop: dispatch deadline (60 s) missed");
    assert_eq!(c[0].summary_zh, "心率骤降：超过派遣时限（60 秒）");
    let due = s.due_outbox(T + 60_000, 10).unwrap();
    assert_eq!(due.last().unwrap().receiver, "duty-officer");
    assert_eq!(states(&s.sla_tick(T + 120_000).unwrap()), vec![("reminder", "raised")]);
    s.act(id, Action::Ack, "op", "", T + 130_000).unwrap();
    assert!(s.sla_tick(T + 250_000).unwrap().is_empty(), "no reminders once acknowledged");
    let c = s.sla_tick(T + 300_000).unwrap();
    assert_eq!(c[0].summary, "sharp drop: on-site deadline (300 s) missed");
    assert_eq!(s.due_outbox(T + 300_000, 10).unwrap().last().unwrap().receiver, "street-chief");
}

fn outbox_retry_dead_letter_replay_and_fallback(db: &Db) {
    let mut s = db.open();
    commit(&mut s, vec![raise(Colour::Red, T)], T);
    let row = s.due_outbox(T, 10).unwrap().remove(0);
    s.retry_at(row.id, T + 5000, "HTTP 500").unwrap();
    assert!(s.due_outbox(T + 4999, 10).unwrap().is_empty());
    assert_eq!(s.next_outbox_ms().unwrap(), Some(T + 5000));
    s.dead(row.id, "HTTP 500 after 8 attempts").unwrap();
    let dead = s.dead_letters().unwrap();
    assert_eq!(
        (dead.len(), dead[0].attempts, dead[0].last_error.as_deref()),
        (1, 2, Some("HTTP 500 after 8 attempts"))
    );
    assert!(s.reroute(&dead[0], "duty-officer", T + 6000).unwrap());
    assert!(!s.reroute(&dead[0], "duty-officer", T + 6000).unwrap(), "one copy per receiver");
    assert!(s.replay(row.id, T + 7000).unwrap());
    assert!(!s.replay(row.id, T + 7000).unwrap(), "only dead letters replay");
    let due = s.due_outbox(T + 7000, 10).unwrap();
    assert_eq!(due.len(), 2);
    assert!(due.iter().all(|r| r.payload == row.payload), "same bytes, same idempotency key");
    s.delivered(&[due[0].id]).unwrap();
    assert_eq!(s.due_outbox(T + 7000, 10).unwrap().len(), 1);
}

fn rule_state_and_sequence_numbers_survive_reopening(db: &Db) {
    use gridsentry_sensors::seq::{SeqWindow, Verdict};
    let mut window = SeqWindow::new(7, 42);
    window.accept(7, 45);
    {
        let mut s = db.open();
        let batch = Batch {
            events: vec![raise(Colour::Red, T)],
            rule_state: vec![("hr-drop|home-12/gw-1/band-1".into(), r#"{"active":true}"#.into())],
            device_seqs: vec![("home-12/gw-1".into(), window.clone())],
            checkpoint: None,
        };
        s.commit(&batch, T).unwrap();
    }
    let mut s = db.open();
    assert_eq!(
        s.rule_states().unwrap(),
        vec![("hr-drop|home-12/gw-1/band-1".to_string(), r#"{"active":true}"#.to_string())]
    );
    let restored = &s.device_seqs().unwrap()["home-12/gw-1"];
    assert_eq!(restored, &window);
    assert_eq!(restored.check(7, 43), Verdict::OutOfOrder, "the gap below the highest is kept");
    assert_eq!(s.orders(&Filter::default()).unwrap().len(), 1);
}

fn deadlines_run_from_when_the_order_was_raised_here_not_from_event_time(db: &Db) {
    let mut s = db.open();
    let day = 86_400_000;
    // A reading measured a day ago (backfilled, or a device clock far behind) raises now.
    commit(&mut s, vec![raise(Colour::Red, T - day)], T);
    assert!(s.sla_tick(T + 59_000).unwrap().is_empty());
    assert_eq!(states(&s.sla_tick(T + 60_000).unwrap()), vec![("escalated", "escalated")]);
}

fn a_forecast_rides_on_the_order_and_updates_silently(db: &Db) {
    let mut s = db.open();
    let forecast = |ms: u64| Some(gridsentry::rules::Forecast { failure_ms: ms, r2: 0.97, points: 12 });
    let (mut e, ev) = event(EventKind::Escalate { colour: Colour::Orange, restate: true }, T + 1000, false);
    e.forecast = forecast(T as u64 + 86_400_000);
    e.summary = Said::new("tangent angle 82°", "切线角 82°");
    let (mut f, fv) = event(EventKind::Forecast, T + 2000, false);
    f.forecast = forecast(T as u64 + 80_000_000);
    f.summary = Said::new("tangent angle 84°", "切线角 84°");
    commit(&mut s, vec![raise(Colour::Yellow, T)], T);
    let c = commit(&mut s, vec![(e, ev), (f, fv)], T + 2000);
    assert_eq!(states(&c), vec![("escalated", "escalated"), ("forecast", "raised")]);
    assert_eq!(c[0].summary, "tangent angle 82°", "restated, not appended");
    assert_eq!(c[1].forecast.as_deref(), Some("2025-11-26T10:13:20Z"));
    let order = &s.orders(&Filter { open: true, ..Filter::default() }).unwrap()[0];
    assert_eq!((order.colour, order.summary.as_str()), (Colour::Orange, "tangent angle 84°"));
    assert_eq!(order.forecast, forecast(T as u64 + 80_000_000));
    // Raise and escalation page; the forecast update is recorded without paging.
    let due = s.due_outbox(T + 3000, 10).unwrap();
    assert_eq!(due.iter().map(|r| r.seq).collect::<Vec<_>>(), vec![1, 2]);
    let body: serde_json::Value = serde_json::from_str(&due[1].payload).unwrap();
    assert_eq!(body["forecast"]["failure_at"], "2025-11-26T12:00:00Z");
    assert_eq!(body["forecast"]["points"], 12);
}

fn a_slope_order_that_turns_red_late_gets_the_full_red_deadlines_from_then(db: &Db) {
    let mut s = db.open();
    let id = commit(&mut s, vec![raise(Colour::Yellow, T)], T)[0].order_id;
    // Yellow: its 30-minute dispatch deadline passes unmet.
    let c = s.sla_tick(T + 1_800_000).unwrap();
    assert_eq!(c[0].summary, "sharp drop: dispatch deadline (1800 s) missed");
    // Two hours after the raise the rule moves it to red.
    let red_at = T + 7_200_000;
    let up = event(EventKind::Escalate { colour: Colour::Red, restate: true }, red_at, false);
    commit(&mut s, vec![up], red_at);
    let (order, _) = s.order(id).unwrap().unwrap();
    assert_eq!((order.colour, order.deadlines_from_ms), (Colour::Red, red_at));
    let due = order.due.unwrap();
    assert_eq!(
        (due.next, due.at_ms),
        (Some("dispatch"), Some(red_at + 60_000)),
        "not overdue on turning red"
    );
    assert!(due.overdue.is_empty());
    assert!(s
        .sla_tick(red_at + 59_000)
        .unwrap()
        .iter()
        .all(|c| c.event != gridsentry::orders::OrderEventKind::Escalated));
    let c = s.sla_tick(red_at + 60_000).unwrap();
    assert_eq!(states(&c), vec![("escalated", "escalated")]);
    assert!(c[0].summary.ends_with("dispatch deadline (60 s) missed"), "{}", c[0].summary);
}

fn evidence_past_its_retention_is_emptied_and_the_rest_stays(db: &Db) {
    let mut s = db.open();
    let day = 86_400_000;
    let old = commit(&mut s, vec![raise(Colour::Red, T - 40 * day)], T - 40 * day)[0].order_id;
    let mut recent_event = raise(Colour::Red, T);
    recent_event.0.subject.band = Some(Id::new("band-2").unwrap());
    let recent = commit(&mut s, vec![recent_event], T)[0].order_id;
    // The old order's notifications went out; the recent one's still wait.
    let rows: Vec<i64> =
        s.due_outbox(T, 100).unwrap().iter().filter(|r| r.order_id == old).map(|r| r.id).collect();
    assert_eq!(rows.len(), 1);
    s.delivered(&rows).unwrap();
    let purged = s.purge_evidence(T - 30 * day).unwrap();
    assert_eq!((purged.events, purged.notifications), (1, 1));
    let (_, old_events) = s.order(old).unwrap().unwrap();
    assert_eq!(old_events[0].evidence, None, "evidence emptied");
    assert_eq!(old_events[0].why, "sharp drop", "what happened stays");
    let (_, recent_events) = s.order(recent).unwrap().unwrap();
    assert!(recent_events[0].evidence.is_some());
    let payload = db.text(&format!("SELECT payload FROM outbox WHERE id = {}", rows[0]));
    let p: serde_json::Value = serde_json::from_str(&payload).unwrap();
    assert!(p["evidence"].is_null() && p["order_id"] == old, "{payload}");
    let pending = db.text(&format!("SELECT payload FROM outbox WHERE order_id = {recent} LIMIT 1"));
    assert!(pending.contains("\"bpm\":50"), "a pending notification keeps its evidence");
    assert_eq!(s.purge_evidence(T - 30 * day).unwrap(), Purged::default(), "nothing left to purge");
}

#[test]
fn sqlite_a_purged_value_is_gone_from_the_files_bytes() {
    let db = Db::sqlite();
    let Db::Sqlite(dir) = &db else { unreachable!() };
    let mut s = db.open();
    let day = 86_400_000;
    const MARK: &str = "rr-1024-MARK-83251";
    let mut old = raise(Colour::Red, T - 40 * day);
    old.1 = Some(format!("{{\"bpm\":50,\"rr\":\"{MARK}\"}}"));
    let id = commit(&mut s, vec![old], T - 40 * day)[0].order_id;
    let rows: Vec<i64> =
        s.due_outbox(T, 100).unwrap().iter().filter(|r| r.order_id == id).map(|r| r.id).collect();
    s.delivered(&rows).unwrap();
    let bytes = || {
        let mut all = Vec::new();
        for f in ["orders.db", "orders.db-wal"] {
            all.extend(std::fs::read(dir.path().join(f)).unwrap_or_default());
        }
        all
    };
    let has = |b: &[u8]| b.windows(MARK.len()).any(|w| w == MARK.as_bytes());
    assert!(has(&bytes()), "the marker is written at first");
    s.purge_evidence(T - 30 * day).unwrap();
    s.compact().unwrap();
    assert!(!has(&bytes()), "a purged value is still readable in the file");
}

#[test]
fn sqlite_an_old_database_is_migrated_in_place() {
    let db = Db::sqlite();
    let Db::Sqlite(dir) = &db else { unreachable!() };
    // A database of schema version 1 (before forecasts and deadlines_from_ms).
    drop(db.open());
    {
        let c = rusqlite::Connection::open(dir.path().join("orders.db")).unwrap();
        c.execute_batch(
            "DROP INDEX one_open_order; ALTER TABLE orders DROP COLUMN forecast;
             ALTER TABLE orders DROP COLUMN deadlines_from_ms; ALTER TABLE orders DROP COLUMN part;
             DROP TABLE partitions; DROP TABLE workers;
             ALTER TABLE orders DROP COLUMN assignee; DROP TABLE credentials; DROP TABLE people; DROP TABLE audit;
             DROP INDEX orders_reraise; ALTER TABLE orders DROP COLUMN summary_zh; ALTER TABLE orders DROP COLUMN reraised_from;
             ALTER TABLE orders DROP COLUMN reraise_ms; ALTER TABLE order_events DROP COLUMN why_zh;
             DROP TABLE silences;
             DROP INDEX orders_by_incident; DROP INDEX orders_inhibited; DROP INDEX orders_by_subject;
             DROP INDEX outbox_by_incident; ALTER TABLE orders DROP COLUMN incident;
             ALTER TABLE orders DROP COLUMN inhibited_by; ALTER TABLE outbox DROP COLUMN incident;
             DROP TABLE incidents; DROP TABLE incident_heads; DROP TABLE warning_sends; DROP TABLE warnings; DROP TABLE hj212_frames;
             DROP TABLE ota_log; DROP TABLE ota_devices; DROP TABLE ota_fleet; DROP TABLE rollouts; DROP TABLE firmware;
             CREATE UNIQUE INDEX one_open_order ON orders(rule, subject) WHERE state NOT IN ('resolved', 'closed');
             INSERT INTO orders (id, rule, subject, site, device, colour, state, summary, late, active, opened_ms,
             created_ms, updated_ms, seq, last_notice_ms) VALUES (7, 'old', 'a/b', 'a', 'b', 'blue', 'raised', 'kept',
             0, 1, 1, 1, 1, 1, 1); PRAGMA user_version = 1;",
        )
        .unwrap();
    }
    let mut s = db.open();
    let old = s.orders(&Filter::default()).unwrap();
    assert_eq!((old[0].id, old[0].summary.as_str(), old[0].forecast), (7, "kept", None));
    assert_eq!(old[0].deadlines_from_ms, 1, "deadlines run from the old raise");
    commit(&mut s, vec![raise(Colour::Yellow, T)], T);
    assert_eq!(s.orders(&Filter { open: true, ..Filter::default() }).unwrap().len(), 2);
}

fn two_writers_never_open_two_orders_for_one_subject(db: &Db) {
    // Two connections (two workers, or the pipeline and a restarted one) raise the same
    // (rule, subject) at the same moment, many times over.
    for round in 0..20 {
        let at = T + round * 1000;
        let barrier = std::sync::Barrier::new(2);
        let results: Vec<_> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..2)
                .map(|_| {
                    let mut s = db.open();
                    let barrier = &barrier;
                    scope.spawn(move || {
                        barrier.wait();
                        s.commit(&Batch { events: vec![raise(Colour::Red, at)], ..Batch::default() }, at)
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let mut s = db.open();
        let open = s.orders(&Filter { open: true, ..Filter::default() }).unwrap();
        assert_eq!(open.len(), 1, "round {round}: {results:?}");
        assert!(results.iter().any(Result::is_ok), "round {round}: {results:?}");
        // Resolve it for the next round.
        s.act(open[0].id, Action::Resolve, "test", "", at).unwrap();
    }
}

fn two_people_acting_at_once_change_an_order_once(db: &Db) {
    let mut s = db.open();
    for round in 0..20 {
        let at = T + round * 1000;
        let id = commit(&mut s, vec![raise(Colour::Red, at)], at)[0].order_id;
        let barrier = std::sync::Barrier::new(2);
        let results: Vec<_> = std::thread::scope(|scope| {
            let handles: Vec<_> = ["ana", "bo"]
                .into_iter()
                .map(|who| {
                    let mut s = db.open();
                    let barrier = &barrier;
                    scope.spawn(move || {
                        barrier.wait();
                        s.act(id, Action::Ack, who, "", at)
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let ok = results.iter().filter(|r| r.is_ok()).count();
        assert_eq!(ok, 1, "round {round}: exactly one acknowledgement: {results:?}");
        assert!(
            results.iter().any(|r| matches!(r, Err(StoreError::Action(ActionError::NotAllowed { .. })))),
            "round {round}: the other is told it no longer applies: {results:?}"
        );
        let (_, events) = s.order(id).unwrap().unwrap();
        assert_eq!(events.iter().filter(|e| e.kind == OrderEventKind::Acknowledged).count(), 1);
        s.act(id, Action::Resolve, "test", "", at).unwrap();
    }
}

fn a_fenced_writer_writes_nothing_and_partitions_keep_their_own_state(db: &Db) {
    // Worker A takes partition 0 and commits a batch with its stream position.
    let taken = db.open().take_partition(0, "a", T).unwrap();
    let epoch_a = taken.epoch;
    assert_eq!(
        (taken.checkpoint, taken.stored),
        (0, None),
        "a new partition starts at the stream's beginning"
    );
    let mut a = db.open().scoped(Scope { partition: 0, epoch: epoch_a });
    let batch = |key: &str, checkpoint| Batch {
        events: vec![raise(Colour::Red, T)],
        rule_state: vec![(key.to_string(), "{}".to_string())],
        checkpoint: Some(checkpoint),
        ..Batch::default()
    };
    assert_eq!(a.commit(&batch("hr-drop|p0", 10), T).unwrap().len(), 1);
    // Partition 1's state, written by another owner, is not partition 0's.
    let epoch_1 = db.open().take_partition(1, "c", T).unwrap().epoch;
    let mut c = db.open().scoped(Scope { partition: 1, epoch: epoch_1 });
    c.commit(&Batch { rule_state: vec![("noise|p1".into(), "{}".into())], ..Batch::default() }, T).unwrap();
    // Worker B takes partition 0 over (A paused past its lease): it starts where A committed.
    // A's heartbeat recorded that everything up to 8 was stored in the time series.
    assert!(db.open().heartbeat(0, epoch_a, T + 1000, 8).unwrap());
    let taken = db.open().take_partition(0, "b", T + 5000).unwrap();
    let epoch_b = taken.epoch;
    assert_eq!((epoch_b, taken.checkpoint, taken.stored), (epoch_a + 1, 10, Some(8)));
    assert!(!db.open().heartbeat(0, epoch_a, T + 5500, 20).unwrap(), "A's heartbeat no longer counts");
    // A wakes up and commits: refused, and nothing of it is written.
    let mut late = batch("hr-drop|late", 20);
    late.events[0].0.subject.band = Some(Id::new("band-9").unwrap());
    assert!(matches!(a.commit(&late, T + 6000), Err(StoreError::Fenced(0))));
    assert!(matches!(a.sla_tick(T + 6000), Err(StoreError::Fenced(0))), "its timers are fenced too");
    let mut b = db.open().scoped(Scope { partition: 0, epoch: epoch_b });
    assert_eq!(b.rule_states().unwrap(), vec![("hr-drop|p0".to_string(), "{}".to_string())]);
    assert_eq!(b.orders(&Filter::default()).unwrap().len(), 1, "the fenced batch raised nothing");
    let taken = db.open().take_partition(0, "b", T + 7000).unwrap();
    assert_eq!((taken.checkpoint, taken.stored), (10, Some(8)), "positions unchanged by A");
    // B re-applies readings from 9 (the stored position) to 12: the checkpoint only moves on.
    let mut b = db.open().scoped(Scope { partition: 0, epoch: taken.epoch });
    b.commit(&Batch { checkpoint: Some(9), ..Batch::default() }, T + 7100).unwrap();
    assert_eq!(db.open().take_partition(0, "b", T + 7200).unwrap().checkpoint, 10, "never back");
}

/// A person resolves an order while its rule still sees the condition: after `reraise_s`
/// (default 300 s) a new order follows it, pages the first tier, and says which it follows.
fn resolved_while_active_is_raised_again_after_reraise_s(db: &Db) {
    let mut s = db.open();
    let id = commit(&mut s, vec![raise(Colour::Red, T)], T)[0].order_id;
    s.act(id, Action::Resolve, "wang", "nothing found", T + 1000).unwrap();
    assert_eq!(s.sla_tick(T + 1000 + 299_000).unwrap(), vec![], "not before reraise_s");
    let c = s.sla_tick(T + 1000 + 300_000).unwrap();
    assert_eq!(states(&c), vec![("raised", "raised")]);
    assert_ne!(c[0].order_id, id);
    assert!(c[0].summary_zh.contains(&format!("接续工单 {id}")), "{}", c[0].summary_zh);
    let (order, events) = s.order(c[0].order_id).unwrap().unwrap();
    assert_eq!((order.reraised_from, order.colour, order.active), (Some(id), Colour::Red, true));
    assert_eq!((events[0].who.as_str(), events[0].why_zh.contains("处置完毕后条件仍在持续")), ("sla", true));
    let due = s.due_outbox(T + 302_000, 10).unwrap();
    assert!(due.iter().any(|r| r.order_id == c[0].order_id && r.receiver == "grid-worker"), "{due:?}");
    // Once only; the rule's events now reach the new order, and its clear ends it as usual.
    assert_eq!(s.sla_tick(T + 400_000).unwrap().iter().filter(|c| c.event.as_str() == "raised").count(), 0);
    let cleared = commit(&mut s, vec![event(EventKind::Clear, T + 401_000, false)], T + 401_000);
    assert_eq!(states(&cleared), vec![("condition_cleared", "raised")]);
    assert_eq!(cleared[0].order_id, c[0].order_id);
}

/// The condition clears before `reraise_s` is up: nothing is raised again, and the resolved order
/// no longer reads as active.
fn a_clear_after_the_resolve_ends_the_wait(db: &Db) {
    let mut s = db.open();
    let id = commit(&mut s, vec![raise(Colour::Orange, T)], T)[0].order_id;
    s.act(id, Action::Resolve, "wang", "", T + 1000).unwrap();
    assert_eq!(commit(&mut s, vec![event(EventKind::Clear, T + 5000, false)], T + 5000), vec![]);
    assert_eq!(s.sla_tick(T + 400_000).unwrap(), vec![]);
    let (order, _) = s.order(id).unwrap().unwrap();
    assert!(!order.active);
    // A resolve of an order whose condition had already cleared waits for nothing either.
    let id = commit(&mut s, vec![raise(Colour::Red, T + 500_000)], T + 500_000)[0].order_id;
    commit(&mut s, vec![event(EventKind::Clear, T + 501_000, false)], T + 501_000);
    s.act(id, Action::Resolve, "wang", "", T + 502_000).unwrap();
    assert_eq!(s.sla_tick(T + 900_000).unwrap(), vec![]);
}

/// With names: changes and payloads carry the title and the times with the zone's offset.
fn changes_carry_names_and_local_times(db: &Db) {
    let rule: gridsentry::rules::RuleConfig = serde_json::from_value(serde_json::json!({
        "id": "hr-drop", "name": "独居老人心率骤降", "colour": "red",
        "condition": { "type": "hr_drop", "drop_pct": 30.0, "window_s": 60, "clear_for_s": 60 }
    }))
    .unwrap();
    let tz = jiff::tz::TimeZone::get("Asia/Shanghai").unwrap();
    let names = Names::new(tz, [&rule], [("home-12", "民生路12号", "解放碑街道")]);
    let mut s = db.open().named(names);
    let c = commit(&mut s, vec![raise(Colour::Red, T)], T);
    assert_eq!(c[0].title, "独居老人心率骤降 · 民生路12号（解放碑街道）");
    assert_eq!((c[0].summary.as_str(), c[0].summary_zh.as_str()), ("sharp drop", "心率骤降"));
    assert_eq!(c[0].at, "2025-11-25T20:00:00+08:00");
    let due = s.due_outbox(T, 10).unwrap();
    let body: serde_json::Value = serde_json::from_str(&due[0].payload).unwrap();
    assert_eq!(body["title"], "独居老人心率骤降 · 民生路12号（解放碑街道）");
    assert_eq!(body["summary_zh"], "心率骤降");
    assert_eq!(
        (body["at"].as_str(), body["opened_at"].as_str()),
        (Some("2025-11-25T20:00:00+08:00"), Some("2025-11-25T20:00:00+08:00"))
    );
    let listed = s.orders(&Filter { open: true, ..Filter::default() }).unwrap();
    assert_eq!(listed[0].title, "独居老人心率骤降 · 民生路12号（解放碑街道）");
}

/// `[[receiver]] person = "wang"`: Wang's own chat receiver hears his orders from the dispatch
/// on, and nothing else; tier routing goes on as before.
fn a_persons_own_receiver_hears_the_orders_dispatched_to_them(db: &Db) {
    let mut s = db.open();
    let mut receivers = s.receivers().to_vec();
    receivers.push(Receiver { name: "wang-wecom".into(), tier: 0, person: Some("wang".into()) });
    s.reconfigure(SlaTable::default(), receivers);
    let hash = gridsentry::access::hash_password("wang-long-password").unwrap();
    s.person_add("wang", gridsentry::access::Role::Field, &[], &hash, "test", T).unwrap();
    let mine = commit(&mut s, vec![raise(Colour::Red, T)], T)[0].order_id;
    let other =
        commit(&mut s, vec![(Event { rule: Arc::from("noise"), ..raise(Colour::Red, T).0 }, None)], T)[0]
            .order_id;
    let a = Act { who: "op", why: "", to: Some("wang"), own_only: false };
    s.act_as(mine, Action::Dispatch, &a, T + 1000).unwrap();
    s.act_as(mine, Action::Ack, &Act { who: "wang", own_only: true, ..Act::default() }, T + 2000).unwrap();
    let rows = s.due_outbox(T + 3000, 100).unwrap();
    let to =
        |r: &str| rows.iter().filter(|x| x.receiver == r).map(|x| (x.order_id, x.seq)).collect::<Vec<_>>();
    assert_eq!(to("wang-wecom"), vec![(mine, 2), (mine, 3)], "the dispatch and what followed, only his");
    assert_eq!(to("grid-worker").len(), 4, "tier 0 as before: {rows:?}");
    assert!(!to("grid-worker").is_empty() && to("wang-wecom").iter().all(|(id, _)| *id != other));
}

/// Silences on both engines: ids, what is in force when, an early end (once), the audit trail,
/// and notifications recorded as silenced with why.
fn silences_are_kept_listed_audited_and_end_on_their_time_or_by_hand(db: &Db) {
    use gridsentry::orders::silences::Matcher;
    let mut s = db.open();
    let site = Matcher::parse("site=home-12").unwrap();
    let a = s.silence_add(&site, T + 60_000, "box replaced", false, "op", T).unwrap();
    let b =
        s.silence_add(&Matcher::parse("rule=hr").unwrap(), T + 60_000, "drill", true, "admin", T).unwrap();
    assert!(b > a);
    let ids = |v: Vec<gridsentry::orders::silences::Silence>| v.iter().map(|x| x.id).collect::<Vec<_>>();
    assert_eq!(ids(s.silences_active(T + 1).unwrap()), [a, b]);
    assert_eq!(ids(s.silences_active(T + 60_000).unwrap()), Vec::<i64>::new(), "over at its end");
    assert!(s.silence_expire(b, "admin", T + 10).unwrap());
    assert!(!s.silence_expire(b, "admin", T + 20).unwrap(), "ended once");
    assert_eq!(ids(s.silences_active(T + 11).unwrap()), [a]);
    assert_eq!(ids(s.silences_recent(10).unwrap()), [b, a], "newest first, ended ones too");
    let red = s.silences_recent(10).unwrap().into_iter().find(|x| x.id == b).unwrap();
    assert!(red.include_red && red.who == "admin" && red.reason == "drill");
    let actions: Vec<String> =
        s.audit_rows(0, i64::MIN, 100).unwrap().into_iter().map(|r| r.action).collect();
    assert_eq!(actions, ["silence.add", "silence.add", "silence.expire"]);
    commit(&mut s, vec![raise(Colour::Yellow, T)], T);
    let due = s.due_outbox(T, 10).unwrap();
    s.silenced(&[(due[0].id, format!("silence {a}"))]).unwrap();
    assert!(s.due_outbox(T + 1, 10).unwrap().iter().all(|r| r.id != due[0].id), "no longer due");
    assert!(s.outbox_counts().unwrap().contains(&("silenced".to_string(), 1)));
}

/// A rate-limited notifier claims reds first: the claim's colour filter on both engines.
fn a_claim_can_take_reds_alone_or_everything_else(db: &Db) {
    let mut s = db.open();
    let yellow = commit(&mut s, vec![raise(Colour::Yellow, T)], T)[0].order_id;
    let noise = Event { rule: Arc::from("noise"), ..raise(Colour::Red, T).0 };
    let red = commit(&mut s, vec![(noise, None)], T)[0].order_id;
    let claim = |s: &mut Store, which| -> Vec<i64> {
        s.claim_due_for("grid-worker", T, 10, 0, which).unwrap().iter().map(|r| r.order_id).collect()
    };
    assert_eq!(claim(&mut s, Which::Red), [red]);
    assert_eq!(claim(&mut s, Which::NotRed), [yellow]);
    assert_eq!(claim(&mut s, Which::All), [yellow, red]);
}

/// Incidents and inhibition on both engines: one street's offline orders within the window are
/// one incident named by its first order (later ones open another); a band's order is held
/// back while its gateway is offline and released (paged) when the gateway's order ends.
fn orders_with_one_cause_are_one_incident_and_a_gateway_holds_its_bands_back(db: &Db) {
    let rule = |v: serde_json::Value| -> gridsentry::rules::RuleConfig { serde_json::from_value(v).unwrap() };
    let offline = rule(serde_json::json!({ "id": "gw-offline", "colour": "blue",
        "condition": { "type": "no_data", "stream": "hr", "silent_s": 600 } }));
    let band = rule(serde_json::json!({ "id": "band-removed", "colour": "orange",
        "condition": { "type": "band_removed", "for_s": 10 } }));
    let group: gridsentry::config::GroupConfig = serde_json::from_value(serde_json::json!({
        "by": ["street"], "window_s": 60, "digest_s": 30, "rules": ["gw-offline"], "mass_offline": 2 }))
    .unwrap();
    let grouping = gridsentry::orders::Grouping::new([&group], &[&offline, &band]);
    let names =
        Names::new(jiff::tz::TimeZone::UTC, [&offline, &band], [("home-12", "民生路12号", "解放碑街道")])
            .grouped(grouping);
    let mut s = db.open().named(names);
    let on = |rule: &str, device: &str, band: Option<&str>, kind: EventKind, at: i64| {
        let subject = Subject {
            site: Id::new("home-12").unwrap(),
            device: Id::new(device).unwrap(),
            band: band.map(|b| Id::new(b).unwrap()),
        };
        (Event { rule: Arc::from(rule), subject, at_ms: at as u64, kind, ..raise(Colour::Blue, at).0 }, None)
    };
    let up = EventKind::Raise { colour: Colour::Blue, flapping: false };
    let orange = EventKind::Raise { colour: Colour::Orange, flapping: false };
    let b = commit(&mut s, vec![on("band-removed", "gw-1", Some("b1"), orange, T)], T)[0].order_id;
    let c = commit(
        &mut s,
        vec![on("gw-offline", "gw-1", None, up, T + 1000), on("gw-offline", "gw-2", None, up, T + 1000)],
        T + 1000,
    );
    let (g1, g2) = (c[0].order_id, c.iter().find(|x| x.subject == "home-12/gw-2").unwrap().order_id);
    assert!(c.iter().any(|x| x.order_id == b && x.event.as_str() == "inhibited"), "{c:?}");
    let later =
        commit(&mut s, vec![on("gw-offline", "gw-3", None, up, T + 200_000)], T + 200_000)[0].order_id;
    let (o, _) = s.order(g2).unwrap().unwrap();
    assert_eq!(o.incident, Some(g1), "joined the first order's incident");
    assert_eq!(s.order(later).unwrap().unwrap().0.incident, Some(later), "past the window: a new one");
    assert_eq!(s.order(b).unwrap().unwrap().0.inhibited_by, Some(g1));
    assert_eq!(s.order(b).unwrap().unwrap().0.incident, None, "not a rule of the group");
    let list = s.incidents(10).unwrap();
    assert_eq!(
        list.iter().map(|i| (i.id, i.orders, i.mass_offline)).collect::<Vec<_>>(),
        [(later, 1, false), (g1, 2, true)]
    );
    assert_eq!(list[1].label, "大面积离线 · 解放碑街道");
    assert_eq!(s.orders(&Filter { incident: Some(g1), ..Filter::default() }).unwrap().len(), 2);
    let due = s.due_outbox(T + 1000, 100).unwrap();
    let payload = |id: i64| -> serde_json::Value {
        serde_json::from_str(&due.iter().find(|r| r.order_id == id).unwrap().payload).unwrap()
    };
    assert_eq!(payload(g1)["incident"]["first"], true);
    assert_eq!(
        (payload(g2)["incident"]["id"].as_i64(), payload(g2)["incident"]["first"].as_bool()),
        (Some(g1), Some(false))
    );
    assert_eq!(payload(g2)["incident"]["label"], "解放碑街道");
    assert!(due.iter().all(|r| r.order_id != b), "the band's raise was held back");
    // The gateway is back: its order resolves, the band's still open one is paged.
    let c = commit(&mut s, vec![on("gw-offline", "gw-1", None, EventKind::Clear, T + 300_000)], T + 300_000);
    assert!(c.iter().any(|x| x.order_id == b && x.event.as_str() == "released"), "{c:?}");
    assert_eq!(s.order(b).unwrap().unwrap().0.inhibited_by, None);
    let due = s.due_outbox(T + 300_000, 100).unwrap();
    let released: Vec<_> = due.iter().filter(|r| r.order_id == b).collect();
    assert_eq!(released.len(), 1, "{due:?}");
    assert!(released[0].payload.contains(r#""event":"released""#));
}

/// Public warnings on both engines: once per order, only red, audited; sends claimed by one
/// sender at a time (PostgreSQL: a second claim meanwhile gets nothing), results recorded.
fn a_red_order_warns_residents_once_and_each_send_is_claimed_once(db: &Db) {
    use gridsentry::orders::warnings::{Hazard, Refusal};
    let hazard = Hazard { site: "home-12".into(), route: "向东撤离".into(), auto_within_ms: None };
    let mut s = db.open().named(Names::default().with_hazards(vec![hazard]));
    let yellow =
        commit(&mut s, vec![(Event { rule: Arc::from("other"), ..raise(Colour::Yellow, T).0 }, None)], T)[0]
            .order_id;
    assert_eq!(s.warn(yellow, "wang", T).unwrap(), Err(Refusal::NotRed("yellow".into())));
    let red = commit(&mut s, vec![raise(Colour::Red, T)], T)[0].order_id;
    let w = s.warn(red, "wang", T + 1).unwrap().unwrap();
    assert_eq!(s.warn(red, "li", T + 2).unwrap(), Err(Refusal::Already(w)));
    assert_eq!(s.warn(12345, "li", T + 2).unwrap(), Err(Refusal::NoOrder(12345)));
    let new = s.warnings_new().unwrap();
    assert_eq!((new.len(), new[0].trigger.as_str(), new[0].who.as_str()), (1, "manual", "wang"));
    assert!(new[0].text.contains("向东撤离"), "{}", new[0].text);
    s.warning_queue(w, &[("sms", "13800000001"), ("sms", "13800000001"), ("broadcast", "broadcast")], T + 3)
        .unwrap();
    assert!(s.warnings_new().unwrap().is_empty());
    let due = s.warning_sends_due(T + 3, 10, 60_000).unwrap();
    assert_eq!(due.len(), 2, "a number listed twice is sent once");
    if matches!(db, Db::Postgres(..)) {
        assert!(s.warning_sends_due(T + 3, 10, 60_000).unwrap().is_empty(), "claimed by the first sender");
    }
    s.warning_sent(due[0].0.id, Ok("biz-1"), None, T + 4).unwrap();
    s.warning_sent(due[1].0.id, Err("HTTP 502"), Some(T + 5), T + 4).unwrap();
    let recent = s.warnings_recent(10).unwrap();
    let status: Vec<(&str, i64)> = recent[0].1.iter().map(|x| (x.status.as_str(), x.attempts)).collect();
    assert_eq!(status, [("sent", 1), ("pending", 1)]);
    let audit = s.audit_rows(0, 0, 100).unwrap();
    assert!(audit.iter().any(|a| a.action == "warning.send" && a.who == "wang"), "{audit:?}");
}
