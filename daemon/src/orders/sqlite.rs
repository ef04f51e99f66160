//! The SQLite side of [`Tx`]: the edge gateway's embedded store (rusqlite, cached statements).

use super::db::{Arg, Cell, Engine, Row, Tx};
use super::store::StoreError;
use rusqlite::types::{ToSqlOutput, Value, ValueRef};
use rusqlite::{params_from_iter, Connection, ToSql};

/// A connection, or a transaction on it (it derefs to the connection).
pub(crate) struct Lite<'a>(pub(crate) &'a Connection);

impl ToSql for Arg<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match *self {
            Arg::Int(v) => ToSqlOutput::Owned(Value::Integer(v)),
            Arg::OptInt(v) => ToSqlOutput::Owned(v.map_or(Value::Null, Value::Integer)),
            Arg::Text(v) => ToSqlOutput::Borrowed(ValueRef::Text(v.as_bytes())),
            Arg::OptText(v) => v.map_or(ToSqlOutput::Owned(Value::Null), |v| {
                ToSqlOutput::Borrowed(ValueRef::Text(v.as_bytes()))
            }),
            Arg::Bytes(v) => ToSqlOutput::Borrowed(ValueRef::Blob(v)),
        })
    }
}

fn cell(v: ValueRef<'_>) -> Result<Cell, StoreError> {
    Ok(match v {
        ValueRef::Null => Cell::Null,
        ValueRef::Integer(i) => Cell::Int(i),
        ValueRef::Text(t) => Cell::Text(
            std::str::from_utf8(t).map_err(|e| StoreError::Corrupt(format!("text column: {e}")))?.to_string(),
        ),
        ValueRef::Blob(b) => Cell::Bytes(b.to_vec()),
        ValueRef::Real(r) => return Err(StoreError::Corrupt(format!("unexpected real number {r}"))),
    })
}

impl Tx for Lite<'_> {
    fn exec(&mut self, sql: &str, args: &[Arg<'_>]) -> Result<u64, StoreError> {
        let mut st = self.0.prepare_cached(sql)?;
        Ok(st.execute(params_from_iter(args.iter()))? as u64)
    }

    fn rows(&mut self, sql: &str, args: &[Arg<'_>]) -> Result<Vec<Row>, StoreError> {
        let mut st = self.0.prepare_cached(sql)?;
        let n = st.column_count();
        let mut rows = st.query(params_from_iter(args.iter()))?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            out.push(Row((0..n).map(|i| cell(r.get_ref(i)?)).collect::<Result<_, StoreError>>()?));
        }
        Ok(out)
    }

    fn engine(&self) -> Engine {
        Engine::Sqlite
    }
}
