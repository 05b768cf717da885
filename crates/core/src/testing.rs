//! The ports on real engines, for native tests (feature `rusqlite`): [`SqliteSql`] is a real
//! SQLite database, so tests exercise the same SQL the components send; [`MemKv`] is a map, which
//! is all a key-value store is; [`CountingSql`] counts round trips, for "a bounded number of
//! queries whatever the page size" checks.

use std::cell::Cell;
use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{Connection, ToSql};

use crate::ports::{classify_sqlite_error, Atomics, Dialect, Kv, Rows, Sql, SqlError, Value};

/// One SQLite connection, like one `spin_sdk::sqlite::Connection`: its own handle, waiting up
/// to 5 s on a locked database (Spin's setting), one statement per call.
pub struct SqliteSql {
    conn: Connection,
}

impl SqliteSql {
    pub fn open(path: impl AsRef<Path>) -> Result<Self, SqlError> {
        let conn = Connection::open(path).map_err(to_sql_error)?;
        conn.busy_timeout(Duration::from_secs(5))
            .map_err(to_sql_error)?;
        Ok(SqliteSql { conn })
    }

    pub fn memory() -> Self {
        SqliteSql {
            conn: Connection::open_in_memory().expect("in-memory SQLite opens"),
        }
    }

    pub fn connection(&self) -> &Connection {
        &self.conn
    }
}

fn to_sql_error(e: rusqlite::Error) -> SqlError {
    classify_sqlite_error(e.to_string())
}

struct Param<'a>(&'a Value);

impl ToSql for Param<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(match self.0 {
            Value::Null => ValueRef::Null,
            Value::Int(v) => ValueRef::Integer(*v),
            Value::Real(v) => ValueRef::Real(*v),
            Value::Text(s) => ValueRef::Text(s.as_bytes()),
            Value::Blob(b) => ValueRef::Blob(b),
        }))
    }
}

fn from_sqlite(v: ValueRef<'_>) -> Value {
    match v {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => Value::Int(i),
        ValueRef::Real(f) => Value::Real(f),
        ValueRef::Text(t) => Value::Text(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(b) => Value::Blob(b.to_vec()),
    }
}

impl Sql for SqliteSql {
    fn dialect(&self) -> Dialect {
        Dialect::Sqlite
    }

    fn execute(&self, sql: &str, params: &[Value]) -> Result<(), SqlError> {
        // Stepped like a query: statements such as `PRAGMA journal_mode=WAL` return a row, which
        // rusqlite's `execute` would reject and Spin's host simply returns.
        self.query(sql, params).map(drop)
    }

    fn query(&self, sql: &str, params: &[Value]) -> Result<Rows, SqlError> {
        let mut stmt = self.conn.prepare(sql).map_err(to_sql_error)?;
        let columns: Vec<String> = stmt.column_names().into_iter().map(str::to_owned).collect();
        let width = columns.len();
        let mut cursor = stmt
            .query(rusqlite::params_from_iter(params.iter().map(Param)))
            .map_err(to_sql_error)?;
        let mut rows = Vec::new();
        while let Some(row) = cursor.next().map_err(to_sql_error)? {
            let values = (0..width)
                .map(|i| row.get_ref(i).map(from_sqlite))
                .collect::<rusqlite::Result<Vec<_>>>()
                .map_err(to_sql_error)?;
            rows.push(values);
        }
        Ok(Rows { columns, rows })
    }
}

#[derive(Default)]
pub struct MemKv {
    map: Mutex<HashMap<String, Vec<u8>>>,
}

impl MemKv {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        self.map.lock().unwrap().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Kv for MemKv {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, String> {
        Ok(self
            .map
            .lock()
            .map_err(|e| e.to_string())?
            .get(key)
            .cloned())
    }
    fn set(&self, key: &str, value: &[u8]) -> Result<(), String> {
        self.map
            .lock()
            .map_err(|e| e.to_string())?
            .insert(key.to_owned(), value.to_vec());
        Ok(())
    }
    fn delete(&self, key: &str) -> Result<(), String> {
        self.map.lock().map_err(|e| e.to_string())?.remove(key);
        Ok(())
    }
}

/// [`Atomics`] in memory, stored as Spin's SQLite store does (8 bytes little-endian), with
/// faults to order: a concurrent request's step landing between a read and an increment, an
/// outage.
#[derive(Default)]
pub struct MemAtomics {
    kv: MemKv,
    interleave: Mutex<Option<(String, i64)>>,
    down: std::sync::atomic::AtomicBool,
}

impl MemAtomics {
    /// The next increment of `key` first adds `delta` for "another request".
    pub fn step_before_next_increment(&self, key: &str, delta: i64) {
        *self.interleave.lock().unwrap() = Some((key.to_owned(), delta));
    }
    pub fn fail(&self, down: bool) {
        self.down.store(down, std::sync::atomic::Ordering::SeqCst);
    }
    /// The key's number, if set.
    pub fn value(&self, key: &str) -> Option<i64> {
        let v = self.kv.get(key).ok()??;
        Some(i64::from_le_bytes(v.try_into().ok()?))
    }
    fn up(&self) -> Result<(), String> {
        if self.down.load(std::sync::atomic::Ordering::SeqCst) {
            Err("store down".into())
        } else {
            Ok(())
        }
    }
    fn add(&self, key: &str, delta: i64) -> Result<i64, String> {
        let mut map = self.kv.map.lock().map_err(|e| e.to_string())?;
        let old = match map.get(key) {
            None => 0,
            Some(v) => i64::from_le_bytes(
                v.as_slice().try_into().map_err(|_| format!("{key}: not an 8-byte number"))?,
            ),
        };
        let new = old.wrapping_add(delta);
        map.insert(key.to_owned(), new.to_le_bytes().to_vec());
        Ok(new)
    }
}

impl Atomics for MemAtomics {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, String> {
        self.up()?;
        self.kv.get(key)
    }
    fn increment(&self, key: &str, delta: i64) -> Result<i64, String> {
        self.up()?;
        let other = self.interleave.lock().unwrap().take_if(|(k, _)| k == key);
        if let Some((_, step)) = other {
            self.add(key, step)?;
        }
        self.add(key, delta)
    }
}

/// Passes everything to `inner` and counts the calls (`execute` and `query` alike: each is one
/// round trip to the host).
pub struct CountingSql<'a> {
    inner: &'a dyn Sql,
    calls: Cell<usize>,
}

impl<'a> CountingSql<'a> {
    pub fn new(inner: &'a dyn Sql) -> Self {
        CountingSql {
            inner,
            calls: Cell::new(0),
        }
    }

    pub fn calls(&self) -> usize {
        self.calls.get()
    }

    pub fn reset(&self) {
        self.calls.set(0);
    }
}

impl Sql for CountingSql<'_> {
    fn dialect(&self) -> Dialect {
        self.inner.dialect()
    }
    fn execute(&self, sql: &str, params: &[Value]) -> Result<(), SqlError> {
        self.calls.set(self.calls.get() + 1);
        self.inner.execute(sql, params)
    }
    fn query(&self, sql: &str, params: &[Value]) -> Result<Rows, SqlError> {
        self.calls.set(self.calls.get() + 1);
        self.inner.query(sql, params)
    }
}
