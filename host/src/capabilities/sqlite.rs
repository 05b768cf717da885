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

/// Prepared statements kept per connection. An app sends the same few dozen statement texts
/// over and over; parsing and planning them again cost as much as running the short ones.
const STATEMENT_CACHE: usize = 128;

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
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
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
    let mut stmt = conn.prepare_cached(statement)?;
    let params: Vec<SqlParam<'_>> = params.iter().map(SqlParam).collect();
    let mut rows = stmt.query(rusqlite::params_from_iter(params.iter()))?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        let width = row.as_ref().column_count();
        let mut values = Vec::with_capacity(width);
        for i in 0..width {
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
    drop(rows);
    // Read after stepping: a cached statement is re-prepared by its first step when the schema
    // changed since it was cached, and only then has today's columns (`SELECT *`).
    let columns = stmt.column_names().into_iter().map(String::from).collect();
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

#[cfg(test)]
mod tests {
    use super::*;

    fn run(conn: &rusqlite::Connection, statement: &str) -> QueryResult {
        execute(conn, statement, &[]).unwrap()
    }

    /// Statements are cached per connection; a schema change made since (here by another
    /// connection, as a migration in another instance would) must not serve stale columns.
    #[test]
    fn cached_statements_follow_schema_changes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.sqlite");
        let pool = SqlitePool::new(path.clone());
        let conn = pool.take().unwrap();
        run(&conn, "CREATE TABLE t (a INTEGER)");
        run(&conn, "INSERT INTO t VALUES (1)");
        assert_eq!(run(&conn, "SELECT * FROM t").columns, vec!["a"]);

        let other = rusqlite::Connection::open(&path).unwrap();
        other
            .execute_batch("ALTER TABLE t ADD COLUMN b TEXT DEFAULT 'x'")
            .unwrap();

        let result = run(&conn, "SELECT * FROM t");
        assert_eq!(result.columns, vec!["a", "b"]);
        assert_eq!(result.rows[0].values.len(), 2);
        assert!(matches!(&result.rows[0].values[1], Value::Text(t) if t == "x"));

        // No rows: the columns still come from the re-prepared statement.
        assert_eq!(
            run(&conn, "SELECT * FROM t WHERE a < 0").columns,
            vec!["a", "b"]
        );
        other
            .execute_batch("ALTER TABLE t ADD COLUMN c INTEGER")
            .unwrap();
        assert_eq!(
            run(&conn, "SELECT * FROM t WHERE a < 0").columns,
            vec!["a", "b", "c"]
        );
    }
}
