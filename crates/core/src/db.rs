//! Helpers over the [`Sql`] port: transactions with retry on contention, and the few statements
//! that differ between SQLite and MySQL outside the schema (kept here so the table modules stay
//! dialect-free).

use std::time::Duration;

use crate::ports::{Dialect, Sql, SqlError};

/// An error a transaction body may return: it must be able to carry a [`SqlError`] and to say
/// whether it is contention (retry) or a missing schema (migrate). Implemented for [`SqlError`]
/// and for [`crate::api::ApiError`], so service code can use `?` on both.
pub trait StorageError: From<SqlError> {
    fn is_busy(&self) -> bool;
    fn is_missing_schema(&self) -> bool;
}

impl StorageError for SqlError {
    fn is_busy(&self) -> bool {
        matches!(self, SqlError::Busy(_))
    }
    fn is_missing_schema(&self) -> bool {
        matches!(self, SqlError::MissingSchema(_))
    }
}

/// Attempts per transaction, and the first backoff (doubled each retry, plus jitter). The host
/// already waits on a locked SQLite database (Spin: 5 s) before reporting busy, so a few
/// attempts are enough; more would only hold the request longer.
pub const TRANSACTION_ATTEMPTS: u32 = 4;
pub const FIRST_BACKOFF: Duration = Duration::from_millis(10);

/// Runs `body` inside a transaction on `sql`: COMMIT on `Ok`, ROLLBACK on `Err`, and the whole
/// body again (after a short backoff) when anything in it reports contention.
///
/// SQLite takes the write lock up front (`BEGIN IMMEDIATE`): a deferred transaction that reads
/// then writes can fail with "busy" in the middle, where the host's own wait does not help.
/// Do not nest: neither dialect has nested BEGIN.
pub fn transaction<T, E: StorageError>(
    sql: &dyn Sql,
    mut body: impl FnMut(&dyn Sql) -> Result<T, E>,
) -> Result<T, E> {
    let mut attempt = 1;
    loop {
        match transaction_once(sql, &mut body) {
            Err(e) if e.is_busy() && attempt < TRANSACTION_ATTEMPTS => {
                std::thread::sleep(backoff(attempt));
                attempt += 1;
            }
            done => return done,
        }
    }
}

fn transaction_once<T, E: StorageError>(
    sql: &dyn Sql,
    body: &mut impl FnMut(&dyn Sql) -> Result<T, E>,
) -> Result<T, E> {
    let begin = match sql.dialect() {
        Dialect::Sqlite => {
            // Per connection, not stored in the file, and only writes care: with WAL it makes a
            // commit wait for no fsync (the checkpoint does). Reads never pay for setting it.
            sql.execute("PRAGMA synchronous = NORMAL", &[])?;
            "BEGIN IMMEDIATE"
        }
        Dialect::Mysql => "START TRANSACTION",
    };
    sql.execute(begin, &[])?;
    let outcome =
        body(sql).and_then(|value| sql.execute("COMMIT", &[]).map(|()| value).map_err(E::from));
    if outcome.is_err() {
        // A failed ROLLBACK means there was nothing left to roll back (MySQL already rolled
        // back a deadlock victim); the original error is the one worth reporting.
        let _ = sql.execute("ROLLBACK", &[]);
    }
    outcome
}

fn backoff(attempt: u32) -> Duration {
    let base = FIRST_BACKOFF * 2u32.pow(attempt - 1);
    // Jitter from the clock keeps two colliding requests from retrying in lockstep.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    base + Duration::from_micros(u64::from(nanos % 10_000))
}

/// Runs an INSERT and returns the new row's id. Spin's `execute` returns neither the id nor a
/// row count, so this asks the same connection right after (both functions are per-connection,
/// so concurrent requests cannot interfere).
pub fn insert(sql: &dyn Sql, statement: &str, params: &[crate::Value]) -> Result<i64, SqlError> {
    sql.execute(statement, params)?;
    let ask = match sql.dialect() {
        Dialect::Sqlite => "SELECT last_insert_rowid()",
        Dialect::Mysql => "SELECT LAST_INSERT_ID()",
    };
    sql.query(ask, &[])?.scalar_i64()
}

/// Runs a write and returns how many rows it changed. On MySQL that is rows *changed*, not rows
/// matched: an UPDATE that sets a column to its current value counts 0.
pub fn execute_counted(
    sql: &dyn Sql,
    statement: &str,
    params: &[crate::Value],
) -> Result<u64, SqlError> {
    sql.execute(statement, params)?;
    let ask = match sql.dialect() {
        Dialect::Sqlite => "SELECT changes()",
        Dialect::Mysql => "SELECT ROW_COUNT()",
    };
    // ROW_COUNT() is -1 after a statement that changes nothing by nature (e.g. a SELECT).
    Ok(sql.query(ask, &[])?.scalar_i64()?.max(0) as u64)
}

/// The start of an insert that silently skips rows a UNIQUE index refuses; the idempotent
/// actions (like, follow) count the inserted rows to know whether to move a counter.
pub fn insert_ignore(dialect: Dialect) -> &'static str {
    match dialect {
        Dialect::Sqlite => "INSERT OR IGNORE",
        Dialect::Mysql => "INSERT IGNORE",
    }
}

/// What ends a SELECT that must lock the rows it reads until COMMIT: MySQL's `FOR UPDATE`;
/// nothing on SQLite, whose [`transaction`] holds the whole database's write lock from BEGIN
/// (and which has no `FOR UPDATE`).
pub fn for_update(dialect: Dialect) -> &'static str {
    match dialect {
        Dialect::Sqlite => "",
        Dialect::Mysql => " FOR UPDATE",
    }
}

/// `?, ?, ?` for an `IN (...)` list of `n` values (n > 0; an empty `IN ()` is a syntax error,
/// so callers skip the query instead).
pub fn placeholders(n: usize) -> String {
    debug_assert!(n > 0, "IN () with no values");
    let mut s = String::with_capacity(n * 3);
    for i in 0..n {
        if i > 0 {
            s.push_str(", ");
        }
        s.push('?');
    }
    s
}
