//! `fermyon:spin/sqlite`: databases of type `spin`, a file each.
//!
//! As in Spin 3+, every `open` is its own connection, so `BEGIN … COMMIT` across `execute` calls
//! on one handle is one transaction, and a handle dropped mid-transaction rolls it back (closing
//! a SQLite connection discards its open transaction). Like Spin, the host waits up to 5 s on a
//! locked database and leaves the journal mode to the app.
//!
//! Connections are pooled per database: opening one and re-reading the schema costs more than
//! a typical request's queries. Semantics stay Spin's: an open handle owns its connection
//! alone, and a connection comes back from a dropped handle only after its open transaction,
//! if any, is rolled back.
//!
//! Statements take microseconds, so they run inline on the executor; only the wait for a lock
//! is long, and that wait is asynchronous here (SQLite's own busy handler would sleep the
//! thread): a statement that finds the database locked is retried with backoff until
//! [`LOCK_WAIT`] has passed.

use std::time::{Duration, Instant};

use rusqlite::types::{ToSqlOutput, ValueRef};
use wasmtime::component::Resource;

/// How long a statement waits for a locked database, as Spin's `busy_timeout`.
pub const LOCK_WAIT: Duration = Duration::from_secs(5);
use crate::bindings::fermyon::spin2_0_0::sqlite::{
    Error, Host, HostConnection, QueryResult, RowResult, Value,
};
use crate::state::InstanceState;

/// Idle connections of one database file.
pub struct SqlitePool {
    path: std::path::PathBuf,
    idle: std::sync::Mutex<Vec<rusqlite::Connection>>,
}

/// Idle connections kept per database; more are closed when their handles drop.
const MAX_IDLE: usize = 64;

impl SqlitePool {
    pub fn new(path: std::path::PathBuf) -> Self {
        Self {
            path,
            idle: std::sync::Mutex::new(Vec::new()),
        }
    }

    fn take(&self) -> rusqlite::Result<rusqlite::Connection> {
        if let Some(conn) = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop() {
            return Ok(conn);
        }
        let conn = rusqlite::Connection::open(&self.path)?;
        // Lock waits are ours (asynchronous, below), not SQLite's sleeping busy handler.
        conn.busy_timeout(Duration::ZERO)?;
        Ok(conn)
    }

    fn give_back(&self, conn: rusqlite::Connection) {
        // A handle dropped mid-transaction rolls it back, as closing the connection would.
        if !conn.is_autocommit() && conn.execute_batch("ROLLBACK").is_err() {
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < MAX_IDLE {
            idle.push(conn);
        }
    }
}

pub struct OpenConnection {
    conn: Option<rusqlite::Connection>,
    pool: std::sync::Arc<SqlitePool>,
}

impl Drop for OpenConnection {
    /// An instance that traps never calls `drop` on its handles: give the connection back here.
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            self.pool.give_back(conn);
        }
    }
}

impl Host for InstanceState {}

impl HostConnection for InstanceState {
    async fn open(
        &mut self,
        database: String,
    ) -> wasmtime::Result<Result<Resource<OpenConnection>, Error>> {
        if !self.caps.sqlite_databases.contains(&database) {
            return Ok(Err(Error::AccessDenied));
        }
        let Some(pool) = self.services.sqlite.get(&database).cloned() else {
            return Ok(Err(Error::NoSuchDatabase));
        };
        match pool.take() {
            Ok(conn) => Ok(Ok(self.table.push(OpenConnection {
                conn: Some(conn),
                pool,
            })?)),
            Err(e) => Ok(Err(Error::Io(e.to_string()))),
        }
    }

    async fn execute(
        &mut self,
        this: Resource<OpenConnection>,
        statement: String,
        parameters: Vec<Value>,
    ) -> wasmtime::Result<Result<QueryResult, Error>> {
        let deadline = Instant::now() + LOCK_WAIT;
        let mut pause = Duration::from_micros(250);
        loop {
            let conn = self
                .table
                .get(&this)?
                .conn
                .as_ref()
                .expect("open until dropped");
            match execute(conn, &statement, &parameters) {
                Err(e) if is_locked(&e) && Instant::now() + pause < deadline => {
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_millis(20));
                }
                result => return Ok(result.map_err(|e| Error::Io(e.to_string()))),
            }
        }
    }

    async fn drop(&mut self, this: Resource<OpenConnection>) -> wasmtime::Result<()> {
        let mut handle = self.table.delete(this)?;
        if let Some(conn) = handle.conn.take() {
            handle.pool.give_back(conn);
        }
        Ok(())
    }
}

/// SQLITE_BUSY / SQLITE_LOCKED: another connection holds the lock; trying again later helps.
fn is_locked(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
}

fn execute(
    conn: &rusqlite::Connection,
    statement: &str,
    params: &[Value],
) -> rusqlite::Result<QueryResult> {
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
