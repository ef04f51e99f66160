//! The audit log: who did what, when, as an append-only table whose rows form a SHA-256 chain.
//!
//! Why in the orders database: an order action and its audit row commit in one transaction (an
//! action is never done without its record, nor recorded without being done), and one backup
//! holds both. Why a chain: anyone who can write the file can change a row; each row's `hash`
//! covers its content and the previous row's hash, so `gridsentry audit verify` finds the first
//! row edited, inserted or removed in the middle. (Cutting rows off the end leaves a valid but
//! shorter chain: an exported log's last hash is the anchor that shows it; see
//! docs/operating.md.) Rows are never deleted by gridsentry, whatever `[privacy]` says (kept at
//! least 180 days as MLPS 2.0 asks; archive them with `audit export`). Triggers refuse UPDATE
//! and DELETE on SQLite; on PostgreSQL `migrate --grant` gives the workers' role INSERT and
//! SELECT on it only.

use super::db::{args, Engine, Tx};
use super::store::{Store, StoreError};
use serde::Serialize;
use sha2::{Digest, Sha256};

/// The `prev` of the first row.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One audit row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditRow {
    /// Position in the chain, from 1, without gaps.
    pub id: i64,
    /// When, UTC ms.
    pub at_ms: i64,
    /// Who acted (a person's name, `legacy-token`, `cli:<user>`, `daemon`), or `-` for an
    /// unknown name at login.
    pub who: String,
    /// What: `login`, `login.failed`, `lockout`, `order.ack`, `person.add`, ...
    pub action: String,
    /// On what: an order (`order 12`), a person (`person wang`), ...
    pub subject: String,
    /// Details (why, from which address, what changed).
    pub detail: String,
    /// The previous row's hash.
    pub prev: String,
    /// SHA-256 over `prev` and this row's content, hex.
    pub hash: String,
}

/// What to record.
#[derive(Debug, Clone, Copy)]
pub struct Entry<'a> {
    /// Who.
    pub who: &'a str,
    /// What.
    pub action: &'a str,
    /// On what.
    pub subject: &'a str,
    /// Details.
    pub detail: &'a str,
}

/// A row's hash: SHA-256 of the previous hash and the row's fields as a JSON array (one
/// unambiguous encoding, easy to recompute with any tool).
pub fn chain_hash(prev: &str, id: i64, at_ms: i64, e: &Entry<'_>) -> String {
    let content = serde_json::json!([id, at_ms, e.who, e.action, e.subject, e.detail]).to_string();
    let mut h = Sha256::new();
    h.update(prev.as_bytes());
    h.update(b"\n");
    h.update(content.as_bytes());
    hex::encode(h.finalize())
}

/// Appends `e` at `at_ms` inside the caller's write transaction; its id.
pub(crate) fn append(tx: &mut dyn Tx, at_ms: i64, e: &Entry<'_>) -> Result<i64, StoreError> {
    if tx.engine() == Engine::Postgres {
        // One appender at a time across workers (the key spells "gsaudit!"), so two rows never
        // take the same id or the same predecessor.
        tx.exec("SELECT pg_advisory_xact_lock(7454002189290350881)", &[])?;
    }
    let last = tx.row("SELECT id, hash FROM audit ORDER BY id DESC LIMIT 1", &[])?;
    let (id, prev) = match last {
        Some(r) => (r.int(0)? + 1, r.text(1)?),
        None => (1, GENESIS.to_string()),
    };
    let hash = chain_hash(&prev, id, at_ms, e);
    tx.exec(
        "INSERT INTO audit (id, at_ms, who, action, subject, detail, prev, hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        args![id, at_ms, e.who, e.action, e.subject, e.detail, &prev, &hash],
    )?;
    Ok(id)
}

/// Where the chain breaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Broken {
    /// The first row that does not fit.
    pub id: i64,
    /// Why.
    pub why: String,
}

fn from_row(r: &super::db::Row) -> Result<AuditRow, StoreError> {
    Ok(AuditRow {
        id: r.int(0)?,
        at_ms: r.int(1)?,
        who: r.text(2)?,
        action: r.text(3)?,
        subject: r.text(4)?,
        detail: r.text(5)?,
        prev: r.text(6)?,
        hash: r.text(7)?,
    })
}

const COLS: &str = "id, at_ms, who, action, subject, detail, prev, hash";

/// Checks rows that follow a row with `id - 1` and hash `prev`; the state after them.
pub fn verify_rows(mut expect: (i64, String), rows: &[AuditRow]) -> Result<(i64, String), Broken> {
    for r in rows {
        let (next, prev) = (expect.0 + 1, &expect.1);
        let e = Entry { who: &r.who, action: &r.action, subject: &r.subject, detail: &r.detail };
        let why = if r.id != next {
            Some(format!("expected row {next} next, found row {} (rows removed or inserted)", r.id))
        } else if &r.prev != prev {
            Some("its `prev` is not the previous row's hash (a row before it was changed or removed)".into())
        } else if chain_hash(prev, r.id, r.at_ms, &e) != r.hash {
            Some("its content does not match its hash (the row was changed)".into())
        } else {
            None
        };
        if let Some(why) = why {
            return Err(Broken { id: r.id, why });
        }
        expect = (r.id, r.hash.clone());
    }
    Ok(expect)
}

impl Store {
    /// Records `e` now, in a transaction of its own.
    pub fn audit(&mut self, e: Entry<'_>, at_ms: i64) -> Result<i64, StoreError> {
        self.write(|tx, _| append(tx, at_ms, &e))
    }

    /// Rows with `id > after` and `at_ms >= since_ms`, oldest first, at most `limit`.
    pub fn audit_rows(&mut self, after: i64, since_ms: i64, limit: i64) -> Result<Vec<AuditRow>, StoreError> {
        self.read(|tx| {
            let sql = format!("SELECT {COLS} FROM audit WHERE id > ?1 AND at_ms >= ?2 ORDER BY id LIMIT ?3");
            tx.rows(&sql, args![after, since_ms, limit])?.iter().map(from_row).collect()
        })
    }

    /// Walks the whole chain: `Ok((rows, last hash))`, or where it first breaks.
    pub fn audit_verify(&mut self) -> Result<Result<(i64, String), Broken>, StoreError> {
        let mut state = (0, GENESIS.to_string());
        loop {
            let rows = self.audit_rows(state.0, i64::MIN, 10_000)?;
            // A gap right after `state.0` shows as the next row's id.
            match verify_rows(state.clone(), &rows) {
                Err(b) => return Ok(Err(b)),
                Ok(s) if rows.is_empty() => return Ok(Ok(s)),
                Ok(s) => state = s,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(n: i64) -> Vec<AuditRow> {
        let mut prev = GENESIS.to_string();
        (1..=n)
            .map(|id| {
                let e = Entry { who: "wang", action: "order.ack", subject: "order 1", detail: "on my way" };
                let hash = chain_hash(&prev, id, 1000 + id, &e);
                AuditRow {
                    id,
                    at_ms: 1000 + id,
                    who: e.who.into(),
                    action: e.action.into(),
                    subject: e.subject.into(),
                    detail: e.detail.into(),
                    prev: std::mem::replace(&mut prev, hash.clone()),
                    hash,
                }
            })
            .collect()
    }

    #[test]
    fn a_whole_chain_verifies_and_any_change_names_its_row() {
        let rows = chain(5);
        let start = (0, GENESIS.to_string());
        assert_eq!(verify_rows(start.clone(), &rows).unwrap(), (5, rows[4].hash.clone()));
        let mut edited = rows.clone();
        edited[2].detail = "never went".into();
        assert_eq!(verify_rows(start.clone(), &edited).unwrap_err().id, 3);
        let mut rehashed = edited.clone();
        rehashed[2].hash = chain_hash(
            &rehashed[2].prev,
            3,
            rehashed[2].at_ms,
            &Entry { who: "wang", action: "order.ack", subject: "order 1", detail: "never went" },
        );
        assert_eq!(
            verify_rows(start.clone(), &rehashed).unwrap_err().id,
            4,
            "the next row no longer follows"
        );
        let mut removed = rows.clone();
        removed.remove(1);
        assert_eq!(verify_rows(start.clone(), &removed).unwrap_err().id, 3);
        assert!(verify_rows(start, &[]).is_ok());
    }
}
