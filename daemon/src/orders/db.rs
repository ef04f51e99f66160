//! The one interface between the order logic and its two engines: SQLite (the edge gateway's
//! embedded file) and PostgreSQL (cluster mode). The order logic (transitions, deadlines,
//! outbox, retention) is written once against [`Tx`], in SQL both engines run: `?N` parameters
//! (rewritten to `$N` for PostgreSQL), `INSERT ... ON CONFLICT`, `RETURNING`, row values. The few
//! statements that differ ask [`Tx::engine`].
//!
//! Why not an ORM or sqlx: the statements are few and fixed, both engines must run them in one
//! transaction per batch, and the SQLite side is the existing rusqlite code path, unchanged in
//! behaviour (IMMEDIATE write transactions, one fsync per batch).

use super::store::StoreError;

/// Which engine runs the statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Engine {
    Sqlite,
    Postgres,
}

/// A statement parameter. PostgreSQL gets its type with it, so nothing depends on inference.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Arg<'a> {
    Int(i64),
    OptInt(Option<i64>),
    Text(&'a str),
    OptText(Option<&'a str>),
    Bytes(&'a [u8]),
}

impl From<i64> for Arg<'_> {
    fn from(v: i64) -> Self {
        Arg::Int(v)
    }
}

impl From<Option<i64>> for Arg<'_> {
    fn from(v: Option<i64>) -> Self {
        Arg::OptInt(v)
    }
}

impl From<bool> for Arg<'_> {
    fn from(v: bool) -> Self {
        Arg::Int(i64::from(v))
    }
}

impl<'a> From<&'a str> for Arg<'a> {
    fn from(v: &'a str) -> Self {
        Arg::Text(v)
    }
}

impl<'a> From<&'a String> for Arg<'a> {
    fn from(v: &'a String) -> Self {
        Arg::Text(v)
    }
}

impl<'a> From<Option<&'a str>> for Arg<'a> {
    fn from(v: Option<&'a str>) -> Self {
        Arg::OptText(v)
    }
}

impl<'a> From<&'a Option<String>> for Arg<'a> {
    fn from(v: &'a Option<String>) -> Self {
        Arg::OptText(v.as_deref())
    }
}

impl<'a> From<&'a [u8]> for Arg<'a> {
    fn from(v: &'a [u8]) -> Self {
        Arg::Bytes(v)
    }
}

/// Parameters, as `args![a, b, ...]`.
macro_rules! args {
    ($($a:expr),* $(,)?) => { &[$($crate::orders::db::Arg::from($a)),*][..] };
}
pub(crate) use args;

/// One value of a result row.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Cell {
    Null,
    Int(i64),
    Text(String),
    Bytes(Vec<u8>),
}

/// One result row.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Row(pub(crate) Vec<Cell>);

fn corrupt(i: usize, want: &str, got: &Cell) -> StoreError {
    StoreError::Corrupt(format!("column {i}: expected {want}, found {got:?}"))
}

impl Row {
    fn cell(&self, i: usize) -> &Cell {
        self.0.get(i).unwrap_or(&Cell::Null)
    }

    pub(crate) fn int(&self, i: usize) -> Result<i64, StoreError> {
        match self.cell(i) {
            Cell::Int(v) => Ok(*v),
            c => Err(corrupt(i, "an integer", c)),
        }
    }

    pub(crate) fn opt_int(&self, i: usize) -> Result<Option<i64>, StoreError> {
        match self.cell(i) {
            Cell::Null => Ok(None),
            _ => self.int(i).map(Some),
        }
    }

    pub(crate) fn flag(&self, i: usize) -> Result<bool, StoreError> {
        self.int(i).map(|v| v != 0)
    }

    pub(crate) fn text(&self, i: usize) -> Result<String, StoreError> {
        match self.cell(i) {
            Cell::Text(v) => Ok(v.clone()),
            c => Err(corrupt(i, "text", c)),
        }
    }

    pub(crate) fn opt_text(&self, i: usize) -> Result<Option<String>, StoreError> {
        match self.cell(i) {
            Cell::Null => Ok(None),
            _ => self.text(i).map(Some),
        }
    }

    pub(crate) fn opt_bytes(&self, i: usize) -> Result<Option<Vec<u8>>, StoreError> {
        match self.cell(i) {
            Cell::Null => Ok(None),
            Cell::Bytes(b) => Ok(Some(b.clone())),
            c => Err(corrupt(i, "bytes", c)),
        }
    }
}

/// A transaction (or, for SQLite reads, the connection) on either engine.
pub(crate) trait Tx {
    /// Runs a statement; the number of rows it changed.
    fn exec(&mut self, sql: &str, args: &[Arg<'_>]) -> Result<u64, StoreError>;
    /// Runs a query; its rows.
    fn rows(&mut self, sql: &str, args: &[Arg<'_>]) -> Result<Vec<Row>, StoreError>;
    /// Which engine this is.
    fn engine(&self) -> Engine;

    /// The first row, if any.
    fn row(&mut self, sql: &str, args: &[Arg<'_>]) -> Result<Option<Row>, StoreError> {
        Ok(self.rows(sql, args)?.into_iter().next())
    }
}

/// `?N` → `$N` (PostgreSQL's parameters). The statements have no other `?`.
pub(crate) fn dollar_params(sql: &str) -> String {
    sql.replace('?', "$")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_say_what_is_wrong() {
        let r = Row(vec![Cell::Int(3), Cell::Null, Cell::Text("x".into())]);
        assert_eq!(r.int(0).unwrap(), 3);
        assert_eq!(r.opt_int(1).unwrap(), None);
        assert!(r.flag(0).unwrap());
        assert_eq!(r.text(2).unwrap(), "x");
        assert!(matches!(r.int(2), Err(StoreError::Corrupt(m)) if m.contains("column 2")));
        assert!(r.text(7).is_err(), "a missing column is an error, not a panic");
        assert_eq!(dollar_params("a = ?1 AND b = ?12"), "a = $1 AND b = $12");
    }
}
