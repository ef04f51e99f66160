//! The PostgreSQL side of [`Tx`] (cluster mode): the tokio-postgres project's synchronous client,
//! because the order store is synchronous (the pipeline commits on a blocking thread, the API and
//! notifier call it through `spawn_blocking`). Statements are prepared once per connection with
//! their parameter types (nothing depends on PostgreSQL's type inference) and cached.
//!
//! The schema is the SQLite one at version 6 with PostgreSQL types; `late` and `active` stay
//! integers so one row reader serves both engines. Workers that start together create it once:
//! the migration holds a transaction-scoped advisory lock.

use super::db::{dollar_params, Arg, Cell, Engine, Row, Tx};
use super::store::StoreError;
use postgres::types::{ToSql, Type};
use postgres::{Client, Statement, Transaction};
use std::collections::HashMap;

/// Prepared statements of one connection, by SQL text.
pub(crate) type Cache = HashMap<String, Statement>;

/// A transaction with the connection's statement cache.
pub(crate) struct Pg<'a, 'b> {
    pub(crate) tx: &'a mut Transaction<'b>,
    pub(crate) cache: &'a mut Cache,
}

fn pg_type(a: &Arg<'_>) -> Type {
    match a {
        Arg::Int(_) | Arg::OptInt(_) => Type::INT8,
        Arg::Text(_) | Arg::OptText(_) => Type::TEXT,
        Arg::Bytes(_) => Type::BYTEA,
    }
}

fn value<'a>(a: &'a Arg<'a>) -> &'a (dyn ToSql + Sync) {
    match a {
        Arg::Int(v) => v,
        Arg::OptInt(v) => v,
        Arg::Text(v) => v,
        Arg::OptText(v) => v,
        Arg::Bytes(v) => v,
    }
}

fn cell(r: &postgres::Row, i: usize) -> Result<Cell, StoreError> {
    let t = r.columns()[i].type_();
    let v = if *t == Type::INT8 {
        r.try_get::<_, Option<i64>>(i)?.map(Cell::Int)
    } else if *t == Type::INT4 {
        r.try_get::<_, Option<i32>>(i)?.map(|v| Cell::Int(v.into()))
    } else if *t == Type::INT2 {
        r.try_get::<_, Option<i16>>(i)?.map(|v| Cell::Int(v.into()))
    } else if *t == Type::BOOL {
        r.try_get::<_, Option<bool>>(i)?.map(|v| Cell::Int(v.into()))
    } else if *t == Type::TEXT || *t == Type::VARCHAR || *t == Type::NAME {
        r.try_get::<_, Option<String>>(i)?.map(Cell::Text)
    } else if *t == Type::BYTEA {
        r.try_get::<_, Option<Vec<u8>>>(i)?.map(Cell::Bytes)
    } else {
        return Err(StoreError::Corrupt(format!("column {i}: unexpected type {t}")));
    };
    Ok(v.unwrap_or(Cell::Null))
}

impl Pg<'_, '_> {
    fn statement(&mut self, sql: &str, args: &[Arg<'_>]) -> Result<Statement, StoreError> {
        let types: Vec<Type> = args.iter().map(pg_type).collect();
        let key = format!("{sql}\u{0}{types:?}");
        if let Some(st) = self.cache.get(&key) {
            return Ok(st.clone());
        }
        let st = self.tx.prepare_typed(&dollar_params(sql), &types)?;
        self.cache.insert(key, st.clone());
        Ok(st)
    }
}

impl Tx for Pg<'_, '_> {
    fn exec(&mut self, sql: &str, args: &[Arg<'_>]) -> Result<u64, StoreError> {
        let st = self.statement(sql, args)?;
        let params: Vec<_> = args.iter().map(value).collect();
        Ok(self.tx.execute(&st, &params)?)
    }

    fn rows(&mut self, sql: &str, args: &[Arg<'_>]) -> Result<Vec<Row>, StoreError> {
        let st = self.statement(sql, args)?;
        let params: Vec<_> = args.iter().map(value).collect();
        let rows = self.tx.query(&st, &params)?;
        rows.iter().map(|r| Ok(Row((0..r.len()).map(|i| cell(r, i)).collect::<Result<_, _>>()?))).collect()
    }

    fn engine(&self) -> Engine {
        Engine::Postgres
    }
}

/// Creates the schema if it is not there (version 9 of the SQLite one).
pub(crate) fn migrate(client: &mut Client) -> Result<(), StoreError> {
    // Already there (every connection of every worker comes here): no DDL, whose locks would
    // queue behind any transaction on these tables. The newest column tells.
    let present: bool = client
        .query_one(
            "SELECT to_regclass('audit') IS NOT NULL AND to_regclass('silences') IS NOT NULL
             AND to_regclass('incident_heads') IS NOT NULL AND to_regclass('warning_sends') IS NOT NULL AND to_regclass('hj212_frames') IS NOT NULL AND to_regclass('ota_log') IS NOT NULL AND EXISTS (SELECT 1 FROM pg_attribute
             WHERE attrelid = to_regclass('orders') AND attname = 'inhibited_by' AND NOT attisdropped)",
            &[],
        )?
        .get(0);
    if present {
        return Ok(());
    }
    create_schema(client).map_err(|e| match e {
        StoreError::Postgres(e) if e.code() == Some(&postgres::error::SqlState::INSUFFICIENT_PRIVILEGE) => {
            StoreError::Schema(format!(
                "the schema is missing or old and this role may not create it ({e}): run `gridsentry migrate --config FILE` with the schema owner's connection string"
            ))
        }
        e => e,
    })
}

/// `gridsentry migrate`: creates or updates the schema (as its owner) and, with `grant`, lets
/// that role read and write the tables and nothing else (the workers' role: no DDL, no
/// TRUNCATE, no ownership). Returns the tables granted on.
pub fn migrate_as_owner(url: &str, grant: Option<&str>) -> Result<Vec<String>, StoreError> {
    let mut client = connect_plain(url, "gridsentry/migrate")?;
    create_schema(&mut client)?;
    let tables: Vec<String> = client
        .query("SELECT tablename FROM pg_tables WHERE schemaname = current_schema() ORDER BY tablename", &[])?
        .iter()
        .map(|r| r.get(0))
        .collect();
    if let Some(role) = grant {
        let role = postgres_ident(role)?;
        client.batch_execute(&format!(
            "REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {role};
             GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role};
             GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {role};
             REVOKE CREATE ON SCHEMA public FROM {role};
             REVOKE UPDATE, DELETE ON audit FROM {role};"
        ))?;
    }
    Ok(tables)
}

/// A role name as a quoted identifier (letters, digits, `_`, `-` only).
fn postgres_ident(name: &str) -> Result<String, StoreError> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    match ok {
        true => Ok(format!("\"{name}\"")),
        false => Err(StoreError::Schema(format!("`{name}` is not a role name (letters, digits, _ and -)"))),
    }
}

fn create_schema(client: &mut Client) -> Result<(), StoreError> {
    let mut tx = client.transaction()?;
    // One migration at a time across workers (the key spells "gridsent").
    tx.batch_execute(
        "SELECT pg_advisory_xact_lock(7453010373645657460); SET LOCAL client_min_messages = warning",
    )?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS orders (
            id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            rule TEXT NOT NULL,
            subject TEXT NOT NULL,
            site TEXT NOT NULL,
            device TEXT NOT NULL,
            colour TEXT NOT NULL,
            state TEXT NOT NULL,
            summary TEXT NOT NULL,
            late BIGINT NOT NULL,
            active BIGINT NOT NULL,
            opened_ms BIGINT NOT NULL,
            created_ms BIGINT NOT NULL,
            updated_ms BIGINT NOT NULL,
            seq BIGINT NOT NULL,
            tier BIGINT NOT NULL DEFAULT 0,
            missed BIGINT NOT NULL DEFAULT 0,
            last_notice_ms BIGINT NOT NULL,
            forecast TEXT,
            deadlines_from_ms BIGINT,
            part BIGINT
        );
        CREATE INDEX IF NOT EXISTS orders_by_part ON orders(part) WHERE state NOT IN ('resolved', 'closed');
        CREATE UNIQUE INDEX IF NOT EXISTS one_open_order ON orders(rule, subject)
            WHERE state NOT IN ('resolved', 'closed');
        CREATE INDEX IF NOT EXISTS orders_by_state ON orders(state);
        CREATE TABLE IF NOT EXISTS order_events (
            order_id BIGINT NOT NULL REFERENCES orders(id),
            seq BIGINT NOT NULL,
            at_ms BIGINT NOT NULL,
            kind TEXT NOT NULL,
            state TEXT NOT NULL,
            colour TEXT NOT NULL,
            who TEXT NOT NULL,
            why TEXT NOT NULL,
            evidence TEXT,
            PRIMARY KEY (order_id, seq)
        );
        CREATE TABLE IF NOT EXISTS outbox (
            id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            order_id BIGINT NOT NULL REFERENCES orders(id),
            seq BIGINT NOT NULL,
            receiver TEXT NOT NULL,
            payload TEXT NOT NULL,
            status TEXT NOT NULL DEFAULT 'pending',
            attempts BIGINT NOT NULL DEFAULT 0,
            next_ms BIGINT NOT NULL,
            last_error TEXT,
            UNIQUE (order_id, seq, receiver)
        );
        CREATE INDEX IF NOT EXISTS outbox_pending ON outbox(status, next_ms);
        CREATE TABLE IF NOT EXISTS rule_state (key TEXT PRIMARY KEY, state TEXT NOT NULL, part BIGINT);
        CREATE INDEX IF NOT EXISTS rule_state_by_part ON rule_state(part);
        CREATE TABLE IF NOT EXISTS device_seq (device TEXT PRIMARY KEY, boot BIGINT NOT NULL, seq BIGINT NOT NULL,
            seen BYTEA, part BIGINT);
        CREATE INDEX IF NOT EXISTS device_seq_by_part ON device_seq(part);
        -- Cluster mode: each partition's owner epoch (bumped on every take-over; a commit checks
        -- it) and stream position (the last applied JetStream sequence).
        CREATE TABLE IF NOT EXISTS partitions (p BIGINT PRIMARY KEY, epoch BIGINT NOT NULL DEFAULT 0, owner TEXT,
            checkpoint BIGINT NOT NULL DEFAULT 0, heartbeat_ms BIGINT NOT NULL DEFAULT 0);
        -- v7: the position up to which every reading is finished, time series included.
        ALTER TABLE partitions ADD COLUMN IF NOT EXISTS stored BIGINT;
        CREATE TABLE IF NOT EXISTS workers (id TEXT PRIMARY KEY, seen_ms BIGINT NOT NULL);
        -- v8: people, their sessions and tokens, the audit chain, the person an order was
        -- dispatched to. Audit rows are append-only (trigger; migrate --grant also gives the
        -- workers role INSERT and SELECT on it only).
        ALTER TABLE orders ADD COLUMN IF NOT EXISTS assignee TEXT;
        CREATE TABLE IF NOT EXISTS people (name TEXT PRIMARY KEY, role TEXT NOT NULL, streets TEXT NOT NULL DEFAULT '',
            hash TEXT NOT NULL, disabled BIGINT NOT NULL DEFAULT 0, failures BIGINT NOT NULL DEFAULT 0,
            locked_until_ms BIGINT NOT NULL DEFAULT 0, created_ms BIGINT NOT NULL);
        CREATE TABLE IF NOT EXISTS credentials (hash TEXT PRIMARY KEY, person TEXT NOT NULL REFERENCES people(name),
            kind TEXT NOT NULL, label TEXT NOT NULL, created_ms BIGINT NOT NULL, expires_ms BIGINT NOT NULL,
            revoked BIGINT NOT NULL DEFAULT 0);
        CREATE INDEX IF NOT EXISTS credentials_by_person ON credentials(person);
        CREATE TABLE IF NOT EXISTS silences (id BIGSERIAL PRIMARY KEY, matcher TEXT NOT NULL, starts_ms BIGINT NOT NULL,
            ends_ms BIGINT NOT NULL, reason TEXT NOT NULL, who TEXT NOT NULL,
            include_red BIGINT NOT NULL DEFAULT 0, created_ms BIGINT NOT NULL);
        CREATE INDEX IF NOT EXISTS silences_by_end ON silences(ends_ms);
        CREATE TABLE IF NOT EXISTS audit (id BIGINT PRIMARY KEY, at_ms BIGINT NOT NULL, who TEXT NOT NULL,
            action TEXT NOT NULL, subject TEXT NOT NULL, detail TEXT NOT NULL, prev TEXT NOT NULL, hash TEXT NOT NULL);
        CREATE INDEX IF NOT EXISTS audit_by_time ON audit(at_ms);
        CREATE OR REPLACE FUNCTION gridsentry_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS
            'BEGIN RAISE EXCEPTION ''audit rows are never changed or deleted''; END';
        CREATE OR REPLACE TRIGGER audit_append_only BEFORE UPDATE OR DELETE ON audit
            FOR EACH ROW EXECUTE FUNCTION gridsentry_audit_append_only();
        CREATE OR REPLACE TRIGGER audit_no_truncate BEFORE TRUNCATE ON audit
            FOR EACH STATEMENT EXECUTE FUNCTION gridsentry_audit_append_only();
        -- v9: texts in Chinese beside the English ones; a resolve while the condition was still
        -- active (when to raise it again) and the order a re-raise follows.
        ALTER TABLE orders ADD COLUMN IF NOT EXISTS summary_zh TEXT NOT NULL DEFAULT '';
        ALTER TABLE orders ADD COLUMN IF NOT EXISTS reraised_from BIGINT;
        ALTER TABLE order_events ADD COLUMN IF NOT EXISTS why_zh TEXT NOT NULL DEFAULT '';
        ALTER TABLE orders ADD COLUMN IF NOT EXISTS reraise_ms BIGINT;
        CREATE INDEX IF NOT EXISTS orders_reraise ON orders(reraise_ms) WHERE reraise_ms IS NOT NULL;
        ALTER TABLE orders ADD COLUMN IF NOT EXISTS incident BIGINT;
        ALTER TABLE orders ADD COLUMN IF NOT EXISTS inhibited_by BIGINT;
        ALTER TABLE outbox ADD COLUMN IF NOT EXISTS incident BIGINT;
        CREATE INDEX IF NOT EXISTS outbox_by_incident ON outbox(incident) WHERE incident IS NOT NULL;
        CREATE INDEX IF NOT EXISTS orders_by_incident ON orders(incident) WHERE incident IS NOT NULL;
        CREATE INDEX IF NOT EXISTS orders_inhibited ON orders(inhibited_by) WHERE inhibited_by IS NOT NULL;
        CREATE INDEX IF NOT EXISTS orders_by_subject ON orders(subject);
        CREATE TABLE IF NOT EXISTS incidents (id BIGINT PRIMARY KEY, key TEXT NOT NULL, label TEXT NOT NULL,
            opened_ms BIGINT NOT NULL, last_ms BIGINT NOT NULL, orders BIGINT NOT NULL,
            offline BIGINT NOT NULL, mass_offline BIGINT NOT NULL, part BIGINT, street TEXT NOT NULL DEFAULT '');
        CREATE TABLE IF NOT EXISTS incident_heads (key TEXT PRIMARY KEY, incident BIGINT NOT NULL, last_ms BIGINT NOT NULL);
        CREATE TABLE IF NOT EXISTS warnings (id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, order_id BIGINT NOT NULL UNIQUE,
            site TEXT NOT NULL, trigger TEXT NOT NULL, who TEXT NOT NULL, text TEXT NOT NULL, params TEXT NOT NULL,
            status TEXT NOT NULL DEFAULT 'new', created_ms BIGINT NOT NULL);
        CREATE TABLE IF NOT EXISTS warning_sends (id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            warning_id BIGINT NOT NULL REFERENCES warnings(id), channel TEXT NOT NULL, recipient TEXT NOT NULL,
            status TEXT NOT NULL DEFAULT 'pending', attempts BIGINT NOT NULL DEFAULT 0, next_ms BIGINT NOT NULL,
            detail TEXT, sent_ms BIGINT, UNIQUE (warning_id, channel, recipient));
        CREATE INDEX IF NOT EXISTS warning_sends_pending ON warning_sends(status, next_ms);
        CREATE TABLE IF NOT EXISTS hj212_frames (id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, mn TEXT NOT NULL,
            cn TEXT NOT NULL, data_time TEXT NOT NULL, qn TEXT NOT NULL, cp TEXT NOT NULL,
            status TEXT NOT NULL DEFAULT 'pending', attempts BIGINT NOT NULL DEFAULT 0, created_ms BIGINT NOT NULL,
            sent_ms BIGINT, UNIQUE (mn, cn, data_time));
        CREATE INDEX IF NOT EXISTS hj212_pending ON hj212_frames(mn, status);",
    )?;
    tx.batch_execute(super::ota::POSTGRES)?;
    tx.commit()?;
    Ok(())
}

/// Connects as `name` (`application_name`: a cluster worker's connections carry its id, so a
/// worker taking over from a silent one can end exactly that worker's sessions).
pub(crate) fn connect(url: &str, name: &str) -> Result<postgres::Client, StoreError> {
    let mut pg = super::PgConnect::parse(url)?;
    pg.config.application_name(name);
    // A client that stops between two statements of a transaction (a paused or hung worker)
    // must not hold its row locks for ever: the server ends such sessions. The store's own
    // transactions never wait on anything but the database between statements.
    pg.config.options("-c idle_in_transaction_session_timeout=10000");
    let mut client = pg.connect()?;
    migrate(&mut client)?;
    Ok(client)
}

fn connect_plain(url: &str, name: &str) -> Result<postgres::Client, StoreError> {
    let mut pg = super::PgConnect::parse(url)?;
    pg.config.application_name(name);
    pg.connect()
}

/// The session is over: the connection closed, or the server ended it (an administrator or a
/// worker taking over a silent one's partitions: `pg_terminate_backend`, SQLSTATE 57P01; a
/// server shutting down, 57P02/57P03).
pub(crate) fn gone(e: &postgres::Error) -> bool {
    use postgres::error::SqlState;
    e.is_closed()
        || e.code().is_some_and(|c| {
            [SqlState::ADMIN_SHUTDOWN, SqlState::CRASH_SHUTDOWN, SqlState::CANNOT_CONNECT_NOW].contains(c)
        })
}

/// The PostgreSQL client, re-connected if the last one broke.
pub(crate) fn client<'a>(
    url: &str,
    name: &str,
    client: &'a mut Option<Box<postgres::Client>>,
    cache: &mut Cache,
) -> Result<&'a mut postgres::Client, StoreError> {
    if client.as_ref().is_none_or(|c| c.is_closed()) {
        cache.clear();
        *client = None;
        *client = Some(Box::new(connect(url, name)?));
    }
    Ok(client.as_mut().expect("just connected"))
}

/// Drops a client whose connection died (the next call connects again).
pub(crate) fn forget_if_broken(client: &mut Option<Box<postgres::Client>>, cache: &mut Cache) {
    if client.as_ref().is_some_and(|c| c.is_closed()) {
        *client = None;
        cache.clear();
    }
}
