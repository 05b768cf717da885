//! `fermyon:spin/sqlite`: databases of type `spin`, a file each.
//!
//! As in Spin 3+, every `open` is its own connection, so `BEGIN … COMMIT` across `execute` calls
//! on one handle is one transaction, and a handle dropped mid-transaction rolls it back (closing
//! a SQLite connection discards its open transaction). The journal mode is left to the app.
//!
//! What a handle costs depends on the [`Profile`]:
//!
//! - `spin` (Spin's `spin-sqlite-inproc`): the handle's own rusqlite connection, opened at its
//!   first statement with rusqlite's defaults (a 5 s busy timeout, a 16-statement cache) and
//!   closed with the handle, so every request reads the schema again; each statement runs on
//!   tokio's blocking pool under the handle's mutex, and a locked database sleeps in SQLite's
//!   busy handler there.
//! - `fast`: connections are pooled per database (opening one and re-reading the schema costs
//!   more than a typical request's queries), each with a 128-statement cache, and a connection
//!   comes back from a dropped handle only after its open transaction, if any, is rolled back.
//!   Statements take microseconds, so they run inline on the executor; only the wait for a lock
//!   is long, and that wait is asynchronous (SQLite's own busy handler would sleep the thread):
//!   a statement that finds the database locked is retried with backoff until [`LOCK_WAIT`].

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use rusqlite::types::{ToSqlOutput, ValueRef};
use wasmtime::component::Resource;

use crate::bindings::fermyon::spin2_0_0::sqlite::{
    Error, Host, HostConnection, QueryResult, RowResult, Value,
};
use crate::profile::Profile;
use crate::state::InstanceState;

/// How long a statement waits for a locked database, as Spin's `busy_timeout`.
pub const LOCK_WAIT: Duration = Duration::from_secs(5);

/// One database file, and the connections the profile keeps to it.
pub struct Database {
    path: std::path::PathBuf,
    profile: Profile,
    /// Idle connections (fast profile only).
    idle: Mutex<Vec<rusqlite::Connection>>,
    /// Connections opened so far (what the profile tests look at).
    opened: AtomicU64,
}

/// Idle connections kept per database in the fast profile; more are closed when their handles
/// drop.
const MAX_IDLE: usize = 64;

/// Prepared statements kept per pooled connection. An app sends the same few dozen statement
/// texts over and over; parsing and planning them again cost as much as running the short ones.
const STATEMENT_CACHE: usize = 128;

impl Database {
    pub fn new(path: std::path::PathBuf, profile: Profile) -> Self {
        Self {
            path,
            profile,
            idle: Mutex::new(Vec::new()),
            opened: AtomicU64::new(0),
        }
    }

    /// The database file.
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }

    /// How many connections to the file this host has opened.
    pub fn connections_opened(&self) -> u64 {
        self.opened.load(Ordering::Relaxed)
    }

    /// A new connection, as `rusqlite::Connection::open` makes it (Spin's `InProcConnection`).
    fn connect(&self) -> rusqlite::Result<rusqlite::Connection> {
        let conn = rusqlite::Connection::open(&self.path)?;
        self.opened.fetch_add(1, Ordering::Relaxed);
        Ok(conn)
    }

    fn take(&self) -> rusqlite::Result<rusqlite::Connection> {
        if let Some(conn) = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop() {
            return Ok(conn);
        }
        let conn = self.connect()?;
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

/// An open handle held by an instance.
pub struct OpenConnection {
    db: Arc<Database>,
    conn: HandleConn,
}

enum HandleConn {
    /// `spin`: the handle's own connection, opened by its first statement.
    Own(OnceLock<Arc<Mutex<rusqlite::Connection>>>),
    /// `fast`: a pooled connection, given back when the handle goes.
    Pooled(Option<rusqlite::Connection>),
}

impl OpenConnection {
    fn new(db: Arc<Database>) -> rusqlite::Result<Self> {
        let conn = match db.profile {
            Profile::Spin => HandleConn::Own(OnceLock::new()),
            Profile::Fast => HandleConn::Pooled(Some(db.take()?)),
        };
        Ok(Self { db, conn })
    }

    /// `spin`: the handle's own connection, opened now if this is its first statement (as
    /// `InProcConnection::db_connection`). `None` for a pooled handle.
    fn own_connection(&self) -> Option<rusqlite::Result<Arc<Mutex<rusqlite::Connection>>>> {
        let HandleConn::Own(cell) = &self.conn else {
            return None;
        };
        Some(match cell.get() {
            Some(c) => Ok(c.clone()),
            None => self
                .db
                .connect()
                .map(|c| cell.get_or_init(|| Arc::new(Mutex::new(c))).clone()),
        })
    }
}

impl Drop for OpenConnection {
    /// An instance that traps never calls `drop` on its handles: give the connection back here.
    /// (An own connection simply closes, rolling back what it left open.)
    fn drop(&mut self) {
        if let HandleConn::Pooled(conn) = &mut self.conn {
            if let Some(conn) = conn.take() {
                self.db.give_back(conn);
            }
        }
    }
}

impl Host for InstanceState {}

// The spans are Spin's (crates/factor-sqlite/src/host.rs, `impl v2::HostConnection`), with
// `sqlite.backend` as `spin-sqlite-inproc` summarises a file: its path in quotes.
impl HostConnection for InstanceState {
    #[tracing::instrument(name = "spin_sqlite.open", skip(self), fields(otel.kind = "client", db.system.name = "sqlite", sqlite.backend = tracing::field::Empty))]
    async fn open(
        &mut self,
        database: String,
    ) -> wasmtime::Result<Result<Resource<OpenConnection>, Error>> {
        if !self.caps.sqlite_databases.contains(&database) {
            return Ok(Err(Error::AccessDenied));
        }
        let Some(db) = self.services.sqlite.get(&database).cloned() else {
            return Ok(Err(Error::NoSuchDatabase));
        };
        if crate::telemetry::enabled() {
            tracing::Span::current().record("sqlite.backend", format!("\"{}\"", db.path.display()));
        }
        match OpenConnection::new(db) {
            Ok(handle) => Ok(Ok(self.table.push(handle)?)),
            Err(e) => Ok(Err(Error::Io(e.to_string()))),
        }
    }

    #[tracing::instrument(name = "spin_sqlite.execute", skip(self, this, statement, parameters), fields(otel.kind = "client", db.system.name = "sqlite", otel.name = statement.as_str(), query = statement.as_str(), sqlite.backend = tracing::field::Empty))]
    async fn execute(
        &mut self,
        this: Resource<OpenConnection>,
        statement: String,
        parameters: Vec<Value>,
    ) -> wasmtime::Result<Result<QueryResult, Error>> {
        let clock = crate::metrics::SqlClock::start(&self.caps.metrics, &statement);
        let r = self.sqlite_execute(this, statement, parameters).await?;
        clock.done(&self.caps.metrics, crate::metrics::DbSystem::Sqlite, &r);
        Ok(r)
    }

    async fn drop(&mut self, this: Resource<OpenConnection>) -> wasmtime::Result<()> {
        self.table.delete(this)?;
        Ok(())
    }
}

impl InstanceState {
    async fn sqlite_execute(
        &mut self,
        this: Resource<OpenConnection>,
        statement: String,
        parameters: Vec<Value>,
    ) -> wasmtime::Result<Result<QueryResult, Error>> {
        // `spin`, as `InProcConnection::query`: the connection is opened here, on the executor,
        // and the statement runs on the blocking pool.
        if crate::telemetry::enabled() {
            let path = self.table.get(&this)?.db.path.display().to_string();
            tracing::Span::current().record("sqlite.backend", format!("\"{path}\""));
        }
        let own = self.table.get(&this)?.own_connection();
        if let Some(conn) = own {
            let conn = match conn {
                Ok(c) => c,
                Err(e) => return Ok(Err(Error::Io(e.to_string()))),
            };
            let ran = tokio::task::spawn_blocking(move || {
                let conn = conn.lock().unwrap_or_else(|p| p.into_inner());
                execute(&conn, &statement, &parameters)
            })
            .await;
            return Ok(match ran {
                Ok(result) => result.map_err(|e| Error::Io(e.to_string())),
                Err(e) => Err(Error::Io(format!("internal runtime error: {e}"))),
            });
        }
        // `fast`: inline, waiting for a lock asynchronously.
        let deadline = Instant::now() + LOCK_WAIT;
        let mut pause = Duration::from_micros(250);
        loop {
            let HandleConn::Pooled(Some(conn)) = &self.table.get(&this)?.conn else {
                unreachable!("a pooled handle keeps its connection until dropped");
            };
            match execute(conn, &statement, &parameters) {
                Err(e) if is_locked(&e) && Instant::now() + pause < deadline => {
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_millis(20));
                }
                result => return Ok(result.map_err(|e| Error::Io(e.to_string()))),
            }
        }
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
        let db = Database::new(path.clone(), Profile::Fast);
        let conn = db.take().unwrap();
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

    fn temp_table_survives(db: &Arc<Database>) -> bool {
        let first = OpenConnection::new(db.clone()).unwrap();
        let create = |conn: &rusqlite::Connection| {
            run(conn, "CREATE TEMP TABLE IF NOT EXISTS mine (x INTEGER)");
        };
        match &first.conn {
            HandleConn::Own(_) => create(&first.own_connection().unwrap().unwrap().lock().unwrap()),
            HandleConn::Pooled(c) => create(c.as_ref().unwrap()),
        }
        drop(first);
        let second = OpenConnection::new(db.clone()).unwrap();
        let seen = |conn: &rusqlite::Connection| execute(conn, "SELECT x FROM temp.mine", &[]);
        let result = match &second.conn {
            HandleConn::Own(_) => seen(&second.own_connection().unwrap().unwrap().lock().unwrap()),
            HandleConn::Pooled(c) => seen(c.as_ref().unwrap()),
        };
        result.is_ok()
    }

    /// Spin opens a new connection for every `open` (crates/sqlite-inproc): nothing one handle
    /// left on its connection (a TEMP table here) is there for the next, and the count of
    /// connections grows with the handles. The fast profile hands the same connection back.
    #[test]
    fn spin_profile_opens_a_connection_per_handle() {
        let dir = tempfile::tempdir().unwrap();
        let spin = Arc::new(Database::new(dir.path().join("a.db"), Profile::Spin));
        assert!(!temp_table_survives(&spin));
        assert_eq!(spin.connections_opened(), 2);
        // A handle that never runs a statement never opens one (the connection is lazy).
        drop(OpenConnection::new(spin.clone()).unwrap());
        assert_eq!(spin.connections_opened(), 2);

        let fast = Arc::new(Database::new(dir.path().join("b.db"), Profile::Fast));
        assert!(temp_table_survives(&fast));
        assert_eq!(fast.connections_opened(), 1);
    }

    /// A spin-profile connection has rusqlite's defaults, as `Connection::open` leaves them:
    /// SQLite's busy handler waits 5 s.
    #[test]
    fn spin_profile_connections_keep_rusqlites_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let spin = Arc::new(Database::new(dir.path().join("a.db"), Profile::Spin));
        let handle = OpenConnection::new(spin).unwrap();
        let conn = handle.own_connection().unwrap().unwrap();
        let conn = conn.lock().unwrap();
        let timeout: i64 = conn
            .query_row("PRAGMA busy_timeout", [], |r| r.get(0))
            .unwrap();
        assert_eq!(timeout, 5000);
    }
}
