//! The order store: one transaction per batch of readings, on SQLite (the edge gateway's file,
//! rusqlite) or PostgreSQL (cluster mode). The order logic is written once against
//! [`super::db::Tx`]; this file holds the connection and the public operations.
//!
//! SQLite: several connections share the file (pipeline, API, one per notifier). Write
//! transactions start IMMEDIATE: a deferred one that reads first and then writes fails at once
//! with "database is locked" when another connection committed in between, instead of waiting
//! its turn. PostgreSQL: read committed; a person's action locks the order row (`FOR UPDATE`) and
//! checks its state; deadline ticks lock the open orders they may change. A broken connection is
//! re-opened on the next call (the failed call returns its error).

use super::db::{args, Arg, Engine, Tx};
use super::kind::OrderEventKind;
use super::model::{ActionError, Order, OrderEvent, State};
use super::names::Names;
use super::postgres::{self as pg, Cache, Pg};
use super::rows::{list, load, parse_colour, parse_kind, parse_state};
use super::schema;
use super::sla::{self, SlaTable};
use super::sqlite::Lite;
use super::transition::on_rule_event;
use crate::rules::{Colour, Event};
use gridsentry_sensors::seq::SeqWindow;
use rusqlite::{Connection, TransactionBehavior};
use serde::Serialize;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite said no (disk full, locked, corrupt, ...).
    #[error("order store: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// PostgreSQL said no, or the connection to it failed.
    #[error("order store (PostgreSQL): {0}")]
    Postgres(#[from] postgres::Error),
    /// A person's action does not apply.
    #[error(transparent)]
    Action(#[from] ActionError),
    /// A row holds something this build cannot read.
    #[error("order store: unreadable row: {0}")]
    Corrupt(String),
    /// Cluster mode: another worker took this partition (its epoch moved); nothing of this
    /// transaction was written.
    #[error("partition {0}: fenced, another worker owns it now")]
    Fenced(u32),
    /// A change to people that does not apply.
    #[error(transparent)]
    People(#[from] super::people::PeopleError),
    /// The PostgreSQL schema cannot be made or used as it is.
    #[error("order store (PostgreSQL): {0}")]
    Schema(String),
    /// What is to be added is there already (a firmware version, …).
    #[error("{0}")]
    Conflict(String),
    /// The journal could not be synced to disk (the pipeline's durable stage).
    #[error("order store: syncing the journal to disk: {0}")]
    Io(#[from] std::io::Error),
}

/// Cluster mode: the stream partition a worker's store writes for, and the epoch it took it at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scope {
    /// Partition number.
    pub partition: u32,
    /// The epoch this worker's take-over gave the partition.
    pub epoch: i64,
}

/// What a write transaction's closure gets besides the transaction.
pub(crate) struct Ctx<'a> {
    pub(crate) receivers: &'a [Receiver],
    pub(crate) sla: &'a SlaTable,
    pub(crate) scope: Option<Scope>,
    pub(crate) names: &'a Names,
}

impl Ctx<'_> {
    /// The partition column's value (NULL on an edge gateway).
    pub(crate) fn part(&self) -> Option<i64> {
        self.scope.map(|s| i64::from(s.partition))
    }
}

/// A webhook receiver as the store routes to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receiver {
    /// Name (outbox rows refer to it).
    pub name: String,
    /// Escalation tier: 0 first, missed deadlines move an order up.
    pub tier: i64,
    /// A person's own receiver: hears the orders dispatched to them, outside tier routing.
    pub person: Option<String>,
}

/// What one group commit writes.
#[derive(Debug, Default)]
pub struct Batch {
    /// Rule events, each with the reading that caused it (JSON) when there was one.
    pub events: Vec<(Event, Option<String>)>,
    /// Changed rule state rows (`Engine::take_dirty`).
    pub rule_state: Vec<(String, String)>,
    /// Changed windows of applied sequence numbers, per `site/device`.
    pub device_seqs: Vec<(String, SeqWindow)>,
    /// Cluster mode: the stream sequence number of the batch's last reading (the partition's
    /// new position, committed with what the readings caused).
    pub checkpoint: Option<u64>,
}

/// An order transition, as the demo prints it (one JSON object per line).
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct Change {
    /// Order id.
    pub order_id: i64,
    /// Transition number (idempotency key `{order_id}-{seq}`).
    pub seq: i64,
    /// Rule id.
    pub rule: String,
    /// Site id.
    pub site: String,
    /// Device id.
    pub device: String,
    /// `site/device[/band]`.
    pub subject: String,
    /// Colour after the transition.
    pub colour: Colour,
    /// State after it, or `escalated` for an escalation.
    pub state: String,
    /// What happened.
    pub event: OrderEventKind,
    /// When, RFC 3339 with the daemon's offset.
    pub at: String,
    /// `规则名称 · 站点（街道）`.
    #[serde(default)]
    pub title: String,
    /// The order's summary (or, for escalations and reminders, why).
    pub summary: String,
    /// The same in Chinese.
    #[serde(default)]
    pub summary_zh: String,
    /// Forecast failure time (slope orders), RFC 3339 UTC.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub forecast: Option<String>,
    /// The person the order is dispatched to (a grid worker's feed carries only theirs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assignee: Option<String>,
}

/// Order list filter.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Only this state.
    pub state: Option<State>,
    /// Only this colour.
    pub colour: Option<Colour>,
    /// Only this site.
    pub site: Option<String>,
    /// Only open orders (not resolved or closed).
    pub open: bool,
    /// Only orders dispatched to this person.
    pub assignee: Option<String>,
    /// Only the orders of this incident.
    pub incident: Option<i64>,
}

/// The connection, to one engine or the other.
enum Conn {
    Sqlite(Connection),
    Postgres { url: String, name: String, client: Option<Box<postgres::Client>>, cache: Cache },
}

/// The durable order store.
pub struct Store {
    conn: Conn,
    sla: SlaTable,
    receivers: Vec<Receiver>,
    scope: Option<Scope>,
    names: Names,
}

impl Drop for Conn {
    fn drop(&mut self) {
        // The synchronous PostgreSQL client closes its connection by blocking on its own
        // runtime, which panics on a tokio worker thread (the API's store is dropped there at
        // shutdown): close it on a thread of its own instead.
        if let Conn::Postgres { client, .. } = self {
            if let Some(c) = client.take().filter(|_| tokio::runtime::Handle::try_current().is_ok()) {
                let _ = std::thread::Builder::new().name("pg-close".into()).spawn(move || drop(c));
            }
        }
    }
}

impl Store {
    /// Opens (creating if needed) the SQLite store at `path`.
    pub fn open(path: &Path, sla: SlaTable, receivers: Vec<Receiver>) -> Result<Store, StoreError> {
        let conn = Connection::open(path)?;
        schema::migrate(&conn)?;
        Ok(Store { conn: Conn::Sqlite(conn), sla, receivers, scope: None, names: Names::default() })
    }

    /// On SQLite: this connection's commits append to the write-ahead log without waiting for
    /// the disk (`synchronous = NORMAL`) and never checkpoint it (`wal_autocheckpoint = 0`); the
    /// caller makes each commit durable by syncing the returned log file before it acts on it
    /// ([`crate::pipeline`]'s durable stage) and checkpoints from elsewhere (its checkpoint
    /// thread, or [`Store::checkpoint_pass`] between commits). `None` on PostgreSQL: a commit
    /// there is durable when it returns.
    pub fn defer_sync(&mut self) -> Result<Option<PathBuf>, StoreError> {
        let Conn::Sqlite(c) = &self.conn else { return Ok(None) };
        let Some(db) = c.path().filter(|p| !p.is_empty()).map(PathBuf::from) else { return Ok(None) };
        c.pragma_update(None, "synchronous", "NORMAL")?;
        c.pragma_update(None, "wal_autocheckpoint", 0)?;
        let mut wal = db.into_os_string();
        wal.push("-wal");
        Ok(Some(wal.into()))
    }

    /// On SQLite: one PASSIVE checkpoint on this connection (outside any transaction); the log's
    /// length and how much of it is now in the database file, in frames.
    pub fn checkpoint_pass(&mut self) -> Result<(i64, i64), StoreError> {
        let Conn::Sqlite(c) = &self.conn else { return Ok((0, 0)) };
        Ok(c.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| Ok((r.get(1)?, r.get(2)?)))?)
    }

    /// Connects to the PostgreSQL store at `url` (a libpq connection string or URL), creating
    /// its tables if needed. Call it on a blocking thread, not on an async task.
    pub fn connect(url: &str, sla: SlaTable, receivers: Vec<Receiver>) -> Result<Store, StoreError> {
        Self::connect_as(url, "gridsentry", sla, receivers)
    }

    /// [`Store::connect`] with an `application_name`.
    pub fn connect_as(
        url: &str,
        name: &str,
        sla: SlaTable,
        receivers: Vec<Receiver>,
    ) -> Result<Store, StoreError> {
        let client = pg::connect(url, name)?;
        let (url, name) = (url.to_string(), name.to_string());
        let conn = Conn::Postgres { url, name, client: Some(Box::new(client)), cache: Cache::new() };
        Ok(Store { conn, sla, receivers, scope: None, names: Names::default() })
    }

    /// This store writes for one partition from now on: every write transaction first checks
    /// that the partition's epoch is still `scope.epoch` (else [`StoreError::Fenced`]), rule
    /// state, sequence windows and deadlines are the partition's only.
    pub fn scoped(mut self, scope: Scope) -> Store {
        self.scope = Some(scope);
        self
    }

    /// Names rules and sites, and gives local times, in what this store writes and lists.
    pub fn named(mut self, names: Names) -> Store {
        self.names = names;
        self
    }

    /// Replaces the names (config reload).
    pub fn rename(&mut self, names: Names) {
        self.names = names;
    }

    /// Replaces deadlines and receivers (config reload); open orders keep their state.
    pub fn reconfigure(&mut self, sla: SlaTable, receivers: Vec<Receiver>) {
        self.sla = sla;
        self.receivers = receivers;
    }

    /// The receivers orders are routed to.
    pub fn receivers(&self) -> &[Receiver] {
        &self.receivers
    }

    /// Runs `f` in one write transaction (committed when it returns Ok). A scoped store's
    /// transaction first locks its partition's row and checks the epoch: a take-over waits for
    /// this transaction, or this one sees it and writes nothing.
    pub(crate) fn write<R>(
        &mut self,
        f: impl FnOnce(&mut dyn Tx, &Ctx<'_>) -> Result<R, StoreError>,
    ) -> Result<R, StoreError> {
        let Store { conn, sla, receivers, scope, names } = self;
        let ctx = Ctx { receivers, sla, scope: *scope, names };
        let run = |tx: &mut dyn Tx| {
            if let Some(s) = ctx.scope {
                let held = tx.exec(
                    "UPDATE partitions SET heartbeat_ms = heartbeat_ms WHERE p = ?1 AND epoch = ?2",
                    args![i64::from(s.partition), s.epoch],
                )?;
                if held != 1 {
                    return Err(StoreError::Fenced(s.partition));
                }
            }
            f(tx, &ctx)
        };
        match conn {
            Conn::Sqlite(c) => {
                let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
                let r = run(&mut Lite(&tx))?;
                tx.commit()?;
                Ok(r)
            }
            Conn::Postgres { url, name, client, cache } => {
                let mut run = Some(run);
                let mut retried = false;
                loop {
                    let outcome = {
                        let c = pg::client(url, name, client, cache)?;
                        match c.transaction() {
                            Ok(mut tx) => {
                                let run = run.take().expect("run once");
                                Ok((|| {
                                    let r = run(&mut Pg { tx: &mut tx, cache })?;
                                    tx.commit()?;
                                    Ok(r)
                                })())
                            }
                            Err(e) => Err(e),
                        }
                    };
                    match outcome {
                        Ok(result) => {
                            pg::forget_if_broken(client, cache);
                            return result;
                        }
                        // The connection died while idle (a restarted server, or a take-over
                        // ended this worker's sessions): BEGIN never ran, so once more on a new
                        // one (where a scoped store then finds out whether it is fenced).
                        Err(e) if pg::gone(&e) && !retried => {
                            retried = true;
                            *client = None;
                            cache.clear();
                        }
                        Err(e) => {
                            pg::forget_if_broken(client, cache);
                            return Err(e.into());
                        }
                    }
                }
            }
        }
    }

    /// Runs `f` on a consistent view (SQLite: the connection; PostgreSQL: a transaction).
    pub(crate) fn read<R>(
        &mut self,
        f: impl FnOnce(&mut dyn Tx) -> Result<R, StoreError>,
    ) -> Result<R, StoreError> {
        match &self.conn {
            // No transaction: an IMMEDIATE one would take the write lock from the pipeline.
            Conn::Sqlite(c) if self.scope.is_none() => f(&mut Lite(c)),
            _ => self.write(|tx, _| f(tx)),
        }
    }

    /// Which engine holds the orders.
    pub(crate) fn engine(&self) -> Engine {
        match self.conn {
            Conn::Sqlite(_) => Engine::Sqlite,
            Conn::Postgres { .. } => Engine::Postgres,
        }
    }

    /// Every persisted rule state row (a scoped store: its partition's).
    pub fn rule_states(&mut self) -> Result<Vec<(String, String)>, StoreError> {
        self.write(|tx, ctx| {
            let rows = match ctx.part() {
                Some(p) => tx.rows("SELECT key, state FROM rule_state WHERE part = ?1", args![p])?,
                None => tx.rows("SELECT key, state FROM rule_state", &[])?,
            };
            rows.into_iter().map(|r| Ok((r.text(0)?, r.text(1)?))).collect()
        })
    }

    /// The window of applied sequence numbers per `site/device`.
    pub fn device_seqs(&mut self) -> Result<HashMap<String, SeqWindow>, StoreError> {
        self.write(|tx, ctx| {
            let sql = "SELECT device, boot, seq, seen FROM device_seq";
            let rows = match ctx.part() {
                Some(p) => tx.rows(&format!("{sql} WHERE part = ?1"), args![p])?,
                None => tx.rows(sql, &[])?,
            };
            rows.into_iter()
                .map(|r| {
                    let (boot, seq) = (r.int(1)? as u32, r.int(2)? as u32);
                    Ok((r.text(0)?, SeqWindow::from_parts(boot, seq, r.opt_bytes(3)?.as_deref())))
                })
                .collect()
        })
    }

    /// Writes a batch in one transaction; returns the order transitions it caused.
    pub fn commit(&mut self, batch: &Batch, now_ms: i64) -> Result<Vec<Change>, StoreError> {
        self.write(|tx, ctx| {
            let mut changes = Vec::new();
            for (event, evidence) in &batch.events {
                on_rule_event(tx, ctx, event, evidence.as_deref(), now_ms, &mut changes)?;
            }
            let part = Arg::OptInt(ctx.part());
            for (k, v) in &batch.rule_state {
                tx.exec(
                    "INSERT INTO rule_state (key, state, part) VALUES (?1, ?2, ?3)
                     ON CONFLICT (key) DO UPDATE SET state = excluded.state, part = excluded.part",
                    &[Arg::from(k), Arg::from(v), part],
                )?;
            }
            for (d, w) in &batch.device_seqs {
                let (boot, highest, seen) = w.parts();
                tx.exec(
                    "INSERT INTO device_seq (device, boot, seq, seen, part) VALUES (?1, ?2, ?3, ?4, ?5)
                     ON CONFLICT (device) DO UPDATE SET boot = excluded.boot, seq = excluded.seq, seen = excluded.seen,
                     part = excluded.part",
                    &[Arg::from(d), Arg::Int(i64::from(boot)), Arg::Int(i64::from(highest)), Arg::Bytes(&seen[..]), part],
                )?;
            }
            if let (Some(s), Some(at)) = (ctx.scope, batch.checkpoint) {
                tx.exec(
                    "UPDATE partitions SET checkpoint = CASE WHEN checkpoint > ?2 THEN checkpoint ELSE ?2 END WHERE p = ?1",
                    args![i64::from(s.partition), at as i64],
                )?;
            }
            Ok(changes)
        })
    }

    /// Orders matching `filter`, newest first.
    pub fn orders(&mut self, filter: &Filter) -> Result<Vec<Order>, StoreError> {
        let mut orders = self.read(|tx| list(tx, filter))?;
        for o in &mut orders {
            self.set_due(o);
        }
        Ok(orders)
    }

    fn set_due(&self, o: &mut Order) {
        o.title = self.names.title(&o.rule, &o.site);
        o.due = sla::due(&self.sla.get(o.colour), o.state, o.deadlines_from_ms, o.missed);
    }

    /// One order with its events.
    pub fn order(&mut self, id: i64) -> Result<Option<(Order, Vec<OrderEvent>)>, StoreError> {
        let found = self.read(|tx| {
            let Some(order) = load(tx, "id = ?1", args![id])? else { return Ok(None) };
            let events = tx
                .rows(
                    "SELECT seq, at_ms, kind, state, colour, who, why, evidence, why_zh FROM order_events
                     WHERE order_id = ?1 ORDER BY seq",
                    args![id],
                )?
                .into_iter()
                .map(|r| {
                    Ok(OrderEvent {
                        seq: r.int(0)?,
                        at_ms: r.int(1)?,
                        kind: parse_kind(&r, 2)?,
                        state: parse_state(&r, 3)?,
                        colour: parse_colour(&r, 4)?,
                        who: r.text(5)?,
                        why: r.text(6)?,
                        evidence: r.opt_text(7)?,
                        why_zh: r.text(8)?,
                    })
                })
                .collect::<Result<Vec<_>, StoreError>>()?;
            Ok(Some((order, events)))
        })?;
        Ok(found.map(|(mut order, events)| {
            self.set_due(&mut order);
            (order, events)
        }))
    }
}
