//! The SQLite schema. WAL journal, `synchronous = FULL`: a committed batch survives a power cut,
//! and group commit keeps the fsync count at one per batch.

use rusqlite::Connection;

pub(crate) fn migrate(conn: &Connection) -> rusqlite::Result<()> {
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    // What is deleted (purged evidence, old payloads) is overwritten, not left readable in free
    // space of the file.
    conn.pragma_update(None, "secure_delete", "ON")?;
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if version < 1 {
        // A new file: incremental auto-vacuum from the start (an old one is rebuilt for it below).
        conn.pragma_update(None, "auto_vacuum", "INCREMENTAL")?;
        create_v1(conn)?;
    }
    if version < 2 {
        // v2: the failure forecast of slope orders (JSON), shown with the order.
        conn.execute_batch(
            "BEGIN; ALTER TABLE orders ADD COLUMN forecast TEXT; PRAGMA user_version = 2; COMMIT;",
        )?;
    }
    if version < 3 {
        // v3: the two tables written in every group commit keep their rows in the primary-key
        // B-tree itself (WITHOUT ROWID): an upsert touches one B-tree, not a table and an index.
        conn.execute_batch(
            "BEGIN;
            CREATE TABLE rule_state_v3 (key TEXT PRIMARY KEY, state TEXT NOT NULL) WITHOUT ROWID;
            INSERT INTO rule_state_v3 SELECT key, state FROM rule_state;
            DROP TABLE rule_state;
            ALTER TABLE rule_state_v3 RENAME TO rule_state;
            CREATE TABLE device_seq_v3 (device TEXT PRIMARY KEY, boot INTEGER NOT NULL, seq INTEGER NOT NULL) WITHOUT ROWID;
            INSERT INTO device_seq_v3 SELECT device, boot, seq FROM device_seq;
            DROP TABLE device_seq;
            ALTER TABLE device_seq_v3 RENAME TO device_seq;
            PRAGMA user_version = 3;
            COMMIT;",
        )?;
    }
    if version < 4 {
        // v4: the window of sequence numbers seen per device (`sensors::seq`, 128 bytes), so a
        // late arrival is told from a repeat across restarts. Old rows have none: every number
        // up to the highest counts as seen, as before.
        conn.execute_batch(
            "BEGIN; ALTER TABLE device_seq ADD COLUMN seen BLOB; PRAGMA user_version = 4; COMMIT;",
        )?;
    }
    if version < 5 {
        // v5: deadlines run from when the order took its current colour (or was confirmed from
        // backfill), not from its first raise: a yellow order that turns red gets the full red
        // dispatch minute.
        conn.execute_batch(
            "BEGIN; ALTER TABLE orders ADD COLUMN deadlines_from_ms INTEGER;
             UPDATE orders SET deadlines_from_ms = created_ms; PRAGMA user_version = 5; COMMIT;",
        )?;
    }
    if version < 6 {
        // v6: cluster mode's partitions (PostgreSQL uses the same columns; an edge gateway
        // leaves them empty): which stream partition an order, a rule state row and a device's
        // sequence window belong to, and each partition's owner epoch and stream position.
        conn.execute_batch(
            "BEGIN;
             ALTER TABLE orders ADD COLUMN part INTEGER;
             ALTER TABLE rule_state ADD COLUMN part INTEGER;
             ALTER TABLE device_seq ADD COLUMN part INTEGER;
             CREATE TABLE partitions (p INTEGER PRIMARY KEY, epoch INTEGER NOT NULL DEFAULT 0, owner TEXT,
                 checkpoint INTEGER NOT NULL DEFAULT 0, heartbeat_ms INTEGER NOT NULL DEFAULT 0);
             CREATE TABLE workers (id TEXT PRIMARY KEY, seen_ms INTEGER NOT NULL);
             PRAGMA user_version = 6; COMMIT;",
        )?;
    }
    if version < 7 {
        // v7: each partition's stored position (everything up to it is in the time series too).
        conn.execute_batch(
            "BEGIN; ALTER TABLE partitions ADD COLUMN stored INTEGER; PRAGMA user_version = 7; COMMIT;",
        )?;
    }
    if version < 8 {
        // v8: people, their sessions and tokens, the audit chain (see `audit`), and the person
        // an order was dispatched to. The triggers keep audit rows from being changed or
        // deleted by mistake (the chain shows it when they are dropped first).
        conn.execute_batch(
            "BEGIN;
             ALTER TABLE orders ADD COLUMN assignee TEXT;
             CREATE TABLE people (name TEXT PRIMARY KEY, role TEXT NOT NULL, streets TEXT NOT NULL DEFAULT '',
                 hash TEXT NOT NULL, disabled INTEGER NOT NULL DEFAULT 0, failures INTEGER NOT NULL DEFAULT 0,
                 locked_until_ms INTEGER NOT NULL DEFAULT 0, created_ms INTEGER NOT NULL);
             CREATE TABLE credentials (hash TEXT PRIMARY KEY, person TEXT NOT NULL REFERENCES people(name),
                 kind TEXT NOT NULL, label TEXT NOT NULL, created_ms INTEGER NOT NULL, expires_ms INTEGER NOT NULL,
                 revoked INTEGER NOT NULL DEFAULT 0);
             CREATE INDEX credentials_by_person ON credentials(person);
             CREATE TABLE audit (id INTEGER PRIMARY KEY, at_ms INTEGER NOT NULL, who TEXT NOT NULL,
                 action TEXT NOT NULL, subject TEXT NOT NULL, detail TEXT NOT NULL, prev TEXT NOT NULL,
                 hash TEXT NOT NULL);
             CREATE INDEX audit_by_time ON audit(at_ms);
             CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
                 BEGIN SELECT RAISE(ABORT, 'audit rows are never changed'); END;
             CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
                 BEGIN SELECT RAISE(ABORT, 'audit rows are never deleted'); END;
             PRAGMA user_version = 8; COMMIT;",
        )?;
    }
    if version < 9 {
        // v9: texts in Chinese beside the English ones; a resolve while the condition was still
        // active (`reraise_ms`: when to raise it again) and the order a re-raise follows.
        conn.execute_batch(
            "BEGIN;
             ALTER TABLE orders ADD COLUMN summary_zh TEXT NOT NULL DEFAULT '';
             ALTER TABLE orders ADD COLUMN reraised_from INTEGER;
             ALTER TABLE orders ADD COLUMN reraise_ms INTEGER;
             ALTER TABLE order_events ADD COLUMN why_zh TEXT NOT NULL DEFAULT '';
             CREATE INDEX orders_reraise ON orders(reraise_ms) WHERE reraise_ms IS NOT NULL;
             PRAGMA user_version = 9; COMMIT;",
        )?;
    }
    if version < 10 {
        // v10: silences (maintenance windows): what they match, from when until when, why, by whom.
        conn.execute_batch(
            "BEGIN;
             CREATE TABLE silences (id INTEGER PRIMARY KEY, matcher TEXT NOT NULL, starts_ms INTEGER NOT NULL,
                 ends_ms INTEGER NOT NULL, reason TEXT NOT NULL, who TEXT NOT NULL,
                 include_red INTEGER NOT NULL DEFAULT 0, created_ms INTEGER NOT NULL);
             CREATE INDEX silences_by_end ON silences(ends_ms);
             PRAGMA user_version = 10; COMMIT;",
        )?;
    }
    if version < 11 {
        // v11: incidents (orders with one cause, `incidents`), the key each is found by, and the
        // gateway order that inhibits a band's order.
        conn.execute_batch(
            "BEGIN;
             ALTER TABLE orders ADD COLUMN incident INTEGER;
             ALTER TABLE orders ADD COLUMN inhibited_by INTEGER;
             ALTER TABLE outbox ADD COLUMN incident INTEGER;
             CREATE INDEX outbox_by_incident ON outbox(incident) WHERE incident IS NOT NULL;
             CREATE INDEX orders_by_incident ON orders(incident) WHERE incident IS NOT NULL;
             CREATE INDEX orders_inhibited ON orders(inhibited_by) WHERE inhibited_by IS NOT NULL;
             CREATE INDEX orders_by_subject ON orders(subject);
             CREATE TABLE incidents (id INTEGER PRIMARY KEY, key TEXT NOT NULL, label TEXT NOT NULL,
                 opened_ms INTEGER NOT NULL, last_ms INTEGER NOT NULL, orders INTEGER NOT NULL,
                 offline INTEGER NOT NULL, mass_offline INTEGER NOT NULL, part INTEGER, street TEXT NOT NULL DEFAULT '');
             CREATE TABLE incident_heads (key TEXT PRIMARY KEY, incident INTEGER NOT NULL, last_ms INTEGER NOT NULL);
             PRAGMA user_version = 11; COMMIT;",
        )?;
    }
    if version < 12 {
        // v12: public warnings (one per order) and each send's result.
        conn.execute_batch(
            "BEGIN;
             CREATE TABLE warnings (id INTEGER PRIMARY KEY, order_id INTEGER NOT NULL UNIQUE, site TEXT NOT NULL,
                 trigger TEXT NOT NULL, who TEXT NOT NULL, text TEXT NOT NULL, params TEXT NOT NULL,
                 status TEXT NOT NULL DEFAULT 'new', created_ms INTEGER NOT NULL);
             CREATE TABLE warning_sends (id INTEGER PRIMARY KEY, warning_id INTEGER NOT NULL REFERENCES warnings(id),
                 channel TEXT NOT NULL, recipient TEXT NOT NULL, status TEXT NOT NULL DEFAULT 'pending',
                 attempts INTEGER NOT NULL DEFAULT 0, next_ms INTEGER NOT NULL, detail TEXT, sent_ms INTEGER,
                 UNIQUE (warning_id, channel, recipient));
             CREATE INDEX warning_sends_pending ON warning_sends(status, next_ms);
             PRAGMA user_version = 12; COMMIT;",
        )?;
    }
    if version < 13 {
        // v13: the HJ 212 uplink's records, kept until the platform answers each.
        conn.execute_batch(
            "BEGIN;
             CREATE TABLE hj212_frames (id INTEGER PRIMARY KEY, mn TEXT NOT NULL, cn TEXT NOT NULL,
                 data_time TEXT NOT NULL, qn TEXT NOT NULL, cp TEXT NOT NULL, status TEXT NOT NULL DEFAULT 'pending',
                 attempts INTEGER NOT NULL DEFAULT 0, created_ms INTEGER NOT NULL, sent_ms INTEGER,
                 UNIQUE (mn, cn, data_time));
             CREATE INDEX hj212_pending ON hj212_frames(mn, status);
             PRAGMA user_version = 13; COMMIT;",
        )?;
    }
    if version < 14 {
        // v14: fleet updates: signed images, roll-outs, what each device reported, and each
        // device's progress in each roll-out with its history ([`super::ota`]).
        conn.execute_batch(&format!("BEGIN; {} PRAGMA user_version = 14; COMMIT;", super::ota::SQLITE_V14))?;
    }
    let auto_vacuum: i64 = conn.pragma_query_value(None, "auto_vacuum", |r| r.get(0))?;
    if auto_vacuum != 2 {
        // Incremental auto-vacuum, so a purge can hand freed pages back (`Store::compact`). An
        // existing file is rebuilt once for it (VACUUM: a few seconds for a large one).
        conn.pragma_update(None, "auto_vacuum", "INCREMENTAL")?;
        conn.execute_batch("VACUUM")?;
    }
    Ok(())
}

fn create_v1(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch(
        "BEGIN;
        CREATE TABLE orders (
            id INTEGER PRIMARY KEY,
            rule TEXT NOT NULL,
            subject TEXT NOT NULL,
            site TEXT NOT NULL,
            device TEXT NOT NULL,
            colour TEXT NOT NULL,
            state TEXT NOT NULL,
            summary TEXT NOT NULL,
            late INTEGER NOT NULL,
            active INTEGER NOT NULL,
            opened_ms INTEGER NOT NULL,  -- event time of the raise
            created_ms INTEGER NOT NULL, -- wall clock of the raise: deadlines run from here
            updated_ms INTEGER NOT NULL,
            seq INTEGER NOT NULL,
            tier INTEGER NOT NULL DEFAULT 0,
            missed INTEGER NOT NULL DEFAULT 0,
            last_notice_ms INTEGER NOT NULL
        );
        CREATE UNIQUE INDEX one_open_order ON orders(rule, subject)
            WHERE state NOT IN ('resolved', 'closed');
        CREATE INDEX orders_by_state ON orders(state);
        CREATE TABLE order_events (
            order_id INTEGER NOT NULL REFERENCES orders(id),
            seq INTEGER NOT NULL,
            at_ms INTEGER NOT NULL,
            kind TEXT NOT NULL,
            state TEXT NOT NULL,
            colour TEXT NOT NULL,
            who TEXT NOT NULL,
            why TEXT NOT NULL,
            evidence TEXT,
            PRIMARY KEY (order_id, seq)
        );
        CREATE TABLE outbox (
            id INTEGER PRIMARY KEY,
            order_id INTEGER NOT NULL REFERENCES orders(id),
            seq INTEGER NOT NULL,
            receiver TEXT NOT NULL,
            payload TEXT NOT NULL,
            status TEXT NOT NULL DEFAULT 'pending',
            attempts INTEGER NOT NULL DEFAULT 0,
            next_ms INTEGER NOT NULL,
            last_error TEXT,
            UNIQUE (order_id, seq, receiver)
        );
        CREATE INDEX outbox_pending ON outbox(status, next_ms);
        CREATE TABLE rule_state (key TEXT PRIMARY KEY, state TEXT NOT NULL);
        CREATE TABLE device_seq (device TEXT PRIMARY KEY, boot INTEGER NOT NULL, seq INTEGER NOT NULL);
        PRAGMA user_version = 1;
        COMMIT;",
    )
}
