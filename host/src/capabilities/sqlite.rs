//! `fermyon:spin/sqlite`: databases of type `spin`, a file each.
//!
//! As in Spin 3+, every `open` is its own connection, so `BEGIN … COMMIT` across `execute` calls
//! on one handle is one transaction, and a handle dropped mid-transaction rolls it back (closing
//! a SQLite connection discards its open transaction). Like Spin, the host waits up to 5 s on a
//! locked database and leaves the journal mode to the app.

use std::time::Duration;

use rusqlite::types::{ToSqlOutput, ValueRef};
use wasmtime::component::Resource;

use super::blocking;
use crate::bindings::fermyon::spin2_0_0::sqlite::{Error, Host, HostConnection, QueryResult, RowResult, Value};
use crate::state::InstanceState;

pub struct OpenConnection(rusqlite::Connection);

impl Host for InstanceState {}

impl HostConnection for InstanceState {
    async fn open(&mut self, database: String) -> wasmtime::Result<Result<Resource<OpenConnection>, Error>> {
        if !self.caps.sqlite_databases.contains(&database) {
            return Ok(Err(Error::AccessDenied));
        }
        let Some(path) = self.services.sqlite.get(&database).cloned() else {
            return Ok(Err(Error::NoSuchDatabase));
        };
        let opened = blocking(|| -> rusqlite::Result<rusqlite::Connection> {
            let conn = rusqlite::Connection::open(&path)?;
            conn.busy_timeout(Duration::from_secs(5))?;
            Ok(conn)
        });
        match opened {
            Ok(conn) => Ok(Ok(self.table.push(OpenConnection(conn))?)),
            Err(e) => Ok(Err(Error::Io(e.to_string()))),
        }
    }

    async fn execute(
        &mut self,
        this: Resource<OpenConnection>,
        statement: String,
        parameters: Vec<Value>,
    ) -> wasmtime::Result<Result<QueryResult, Error>> {
        let conn = &self.table.get(&this)?.0;
        Ok(blocking(|| execute(conn, &statement, &parameters)).map_err(|e| Error::Io(e.to_string())))
    }

    async fn drop(&mut self, this: Resource<OpenConnection>) -> wasmtime::Result<()> {
        let conn = self.table.delete(this)?;
        blocking(move || drop(conn));
        Ok(())
    }
}

fn execute(conn: &rusqlite::Connection, statement: &str, params: &[Value]) -> rusqlite::Result<QueryResult> {
    let mut stmt = conn.prepare(statement)?;
    let columns: Vec<String> = stmt.column_names().into_iter().map(String::from).collect();
    let params: Vec<SqlParam<'_>> = params.iter().map(SqlParam).collect();
    let mut rows = stmt.query(rusqlite::params_from_iter(params.iter()))?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        let mut values = Vec::with_capacity(columns.len());
        for i in 0..columns.len() {
            values.push(match row.get_ref(i)? {
                ValueRef::Null => Value::Null,
                ValueRef::Integer(n) => Value::Integer(n),
                ValueRef::Real(f) => Value::Real(f),
                ValueRef::Text(t) => Value::Text(String::from_utf8_lossy(t).into_owned()),
                ValueRef::Blob(b) => Value::Blob(b.to_vec()),
            });
        }
        out.push(RowResult { values });
    }
    Ok(QueryResult { columns, rows: out })
}

struct SqlParam<'a>(&'a Value);

impl rusqlite::ToSql for SqlParam<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match self.0 {
            Value::Integer(n) => ToSqlOutput::Borrowed(ValueRef::Integer(*n)),
            Value::Real(f) => ToSqlOutput::Borrowed(ValueRef::Real(*f)),
            Value::Text(t) => ToSqlOutput::Borrowed(ValueRef::Text(t.as_bytes())),
            Value::Blob(b) => ToSqlOutput::Borrowed(ValueRef::Blob(b)),
            Value::Null => ToSqlOutput::Borrowed(ValueRef::Null),
        })
    }
}
