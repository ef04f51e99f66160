//! People and the audit chain in both order stores (the gateway's SQLite file and the cluster's
//! PostgreSQL): logins, lockout and credentials behave the same, and writers appending at once
//! (the API, the pipeline, other workers) still make one unbroken chain.

use gridsentry::access::{hash_password, secret_hash, Role};
use gridsentry::orders::people::{Issue, Outcome};
use gridsentry::orders::{Action, AuditEntry, Batch, SlaTable, Store};
use gridsentry_tests::postgres::Postgres;

enum Db {
    Sqlite(tempfile::TempDir),
    /// The server (kept running while the test needs it) and its connection string.
    Postgres(#[allow(dead_code)] Postgres, String),
}

impl Db {
    fn open(&self) -> Store {
        match self {
            Db::Sqlite(dir) => {
                Store::open(&dir.path().join("orders.db"), SlaTable::default(), Vec::new()).unwrap()
            }
            Db::Postgres(_, url) => Store::connect(url, SlaTable::default(), Vec::new()).unwrap(),
        }
    }
}

macro_rules! on_both {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[test] fn $name() { super::$name(&super::Db::Sqlite(tempfile::tempdir().unwrap())) })*
        }
        mod postgres {
            $(#[test] fn $name() {
                let pg = gridsentry_tests::postgres::Postgres::start();
                let url = pg.database();
                super::$name(&super::Db::Postgres(pg, url))
            })*
        }
    };
}

on_both!(logins_lockout_and_credentials_are_recorded_in_one_chain, writers_appending_at_once_make_one_chain);

const T: i64 = 1_764_072_000_000;

fn issue<'a>(hash: &'a str, expires_ms: i64) -> Issue<'a> {
    Issue { kind: "session", hash, label: "", expires_ms }
}

fn logins_lockout_and_credentials_are_recorded_in_one_chain(db: &Db) {
    let mut s = db.open();
    s.person_add(
        "li",
        Role::Field,
        &["jiefangbei".into()],
        &hash_password("a-long-password").unwrap(),
        "cli:root",
        T,
    )
    .unwrap();
    assert!(s.person_add("li", Role::Viewer, &[], "x", "cli:root", T).is_err(), "names are unique");
    let secret = secret_hash("session-secret");
    let got = s.login_outcome("li", true, issue(&secret, T + 1000), "10.0.0.5", T).unwrap();
    let Outcome::Issued(p) = got else { panic!("{got:?}") };
    assert_eq!((p.role, p.streets.as_slice()), (Role::Field, &["jiefangbei".to_string()][..]));
    assert_eq!(s.principal(&secret, T + 999).unwrap().map(|(p, _)| p.name), Some("li".into()));
    // Used just before it ended, the session was extended 12 hours from then.
    assert!(s.principal(&secret, T + 1000).unwrap().is_some(), "in use: extended");
    let end = T + 999 + gridsentry::access::SESSION_MS;
    assert!(s.principal(&secret, end - 1).unwrap().is_some());
    let idle_end = end - 1 + gridsentry::access::SESSION_MS;
    assert_eq!(s.principal(&secret, idle_end + 1).unwrap(), None, "unused for 12 hours: ended");
    for i in 0..5 {
        let other = secret_hash(&format!("s{i}"));
        assert_eq!(
            s.login_outcome("li", false, issue(&other, T + 9_000_000), "10.0.0.5", T + i).unwrap(),
            Outcome::Refused
        );
    }
    let later = secret_hash("later");
    let locked = s.login_outcome("li", true, issue(&later, T + 9_000_000), "10.0.0.5", T + 10).unwrap();
    assert_eq!(locked, Outcome::Refused, "locked after five failures");
    assert_eq!(s.principal(&later, T + 11).unwrap(), None, "nothing issued while locked");
    let after = T + gridsentry::access::LOCK_MS + 11;
    assert!(matches!(
        s.login_outcome("li", true, issue(&later, after + 1000), "10.0.0.5", after).unwrap(),
        Outcome::Issued(_)
    ));
    s.person_change("li", &gridsentry::orders::people::Change::Disable, "cli:root", after + 1).unwrap();
    assert_eq!(s.principal(&later, after + 2).unwrap(), None, "disabling revokes");
    let (rows, _) = s.audit_verify().unwrap().unwrap();
    let actions: Vec<String> =
        s.audit_rows(0, i64::MIN, 100).unwrap().into_iter().map(|r| r.action).collect();
    assert_eq!(rows as usize, actions.len());
    assert_eq!(
        actions,
        [
            "person.add",
            "login",
            "login.failed",
            "login.failed",
            "login.failed",
            "login.failed",
            "login.failed",
            "lockout",
            "login.failed",
            "login",
            "person.disable"
        ],
    );
}

fn writers_appending_at_once_make_one_chain(db: &Db) {
    // An order to act on, so that one writer's rows come from order actions.
    let mut s = db.open();
    let raise = gridsentry::rules::Event {
        rule: std::sync::Arc::from("r"),
        subject: gridsentry::rules::Subject {
            site: gridsentry_sensors::Id::new("a").unwrap(),
            device: gridsentry_sensors::Id::new("b").unwrap(),
            band: None,
        },
        at_ms: T as u64,
        kind: gridsentry::rules::EventKind::Raise {
            colour: gridsentry::rules::Colour::Yellow,
            flapping: false,
        },
        late: false,
        summary: gridsentry::rules::Said::new("s", "s"),
        value: None,
        forecast: None,
    };
    let changes = s.commit(&Batch { events: vec![(raise, None)], ..Batch::default() }, T).unwrap();
    let id = changes[0].order_id;
    std::thread::scope(|scope| {
        for w in 0..3 {
            let mut s = db.open();
            scope.spawn(move || {
                for i in 0..40 {
                    let who = format!("writer-{w}");
                    s.audit(
                        AuditEntry { who: &who, action: "test", subject: "x", detail: &i.to_string() },
                        T + i,
                    )
                    .unwrap();
                }
            });
        }
        let mut s = db.open();
        scope.spawn(move || {
            for a in [Action::Ack, Action::OnSite, Action::Resolve, Action::Close] {
                s.act(id, a, "op", "", T).unwrap();
            }
        });
    });
    let (rows, _) = s.audit_verify().unwrap().expect("one unbroken chain");
    assert_eq!(rows, 3 * 40 + 4);
}
