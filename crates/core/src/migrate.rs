//! Applies [`crate::schema::MIGRATIONS`]: versioned (a `schema_version` table), safe to repeat
//! after a migration was cut short (see [`crate::schema`]), and safe when two requests migrate at
//! once (SQLite: one `BEGIN IMMEDIATE` transaction; MySQL, whose DDL commits implicitly: a named
//! `GET_LOCK`).
//!
//! Requests do not check the schema up front (that would cost a round trip each time): they run
//! inside [`with_schema`], which migrates only when a statement reports a missing table or
//! column — a fresh database, or one an older release created.

use crate::db::{self, StorageError};
use crate::ports::{Dialect, Sql, SqlError, Value};
use crate::schema::{self, MIGRATIONS};

/// How long a MySQL migrator waits for another one to finish, in seconds.
const MYSQL_LOCK_TIMEOUT_SECS: i64 = 30;
const MYSQL_LOCK_NAME: &str = "tikspin.migrate";

/// Brings the schema to the latest version; returns that version.
pub fn migrate(sql: &dyn Sql) -> Result<i64, SqlError> {
    match sql.dialect() {
        Dialect::Sqlite => migrate_sqlite(sql),
        Dialect::Mysql => migrate_mysql(sql),
    }
}

/// Runs `op`; if it fails because the schema is missing, migrates and runs it once more. `op`
/// must be safe to repeat (reads, or writes inside [`db::transaction`]), which a failure on a
/// missing table guarantees in practice: nothing was written.
///
/// Call it outside any transaction (put the transaction inside `op`): migrating opens its own.
pub fn with_schema<T, E: StorageError>(
    sql: &dyn Sql,
    mut op: impl FnMut() -> Result<T, E>,
) -> Result<T, E> {
    match op() {
        Err(e) if e.is_missing_schema() => {
            migrate(sql).map_err(E::from)?;
            op()
        }
        done => done,
    }
}

fn migrate_sqlite(sql: &dyn Sql) -> Result<i64, SqlError> {
    // WAL persists in the database file, so setting it once here is enough, and it is what makes
    // concurrent writers fast (see ARCHITECTURE.md §3). It cannot change inside a transaction,
    // and failing to set it (an in-memory database, a busy file) costs speed, not correctness.
    if let Err(e) = sql.execute("PRAGMA journal_mode=WAL", &[]) {
        eprintln!("tikspin: could not switch SQLite to WAL: {e}");
    }
    db::transaction(sql, apply_pending)
}

fn migrate_mysql(sql: &dyn Sql) -> Result<i64, SqlError> {
    let got = sql.query(
        "SELECT GET_LOCK(?, ?)",
        &[MYSQL_LOCK_NAME.into(), MYSQL_LOCK_TIMEOUT_SECS.into()],
    )?;
    if got.first().map(|r| r.opt_i64(0)).transpose()?.flatten() != Some(1) {
        return Err(SqlError::Busy("another migration holds the lock".into()));
    }
    let outcome = apply_pending(sql);
    let released = sql.query("SELECT RELEASE_LOCK(?)", &[MYSQL_LOCK_NAME.into()]);
    let version = outcome?;
    released?;
    Ok(version)
}

fn apply_pending(sql: &dyn Sql) -> Result<i64, SqlError> {
    let dialect = sql.dialect();
    sql.execute(schema::schema_version_table(dialect), &[])?;
    let current = current_version(sql)?;
    for migration in MIGRATIONS.iter().filter(|m| m.version > current) {
        for statement in migration.statements(dialect) {
            match sql.execute(statement, &[]) {
                Err(e) if repeats_as_duplicate(statement) && is_duplicate_schema(&e) => {}
                done => done?,
            }
        }
        sql.execute(
            "INSERT INTO schema_version (version, applied_at) VALUES (?, ?)",
            &[
                Value::Int(migration.version),
                Value::Int(crate::time::now_ms()),
            ],
        )?;
    }
    Ok(schema::latest_version().max(current))
}

/// A MySQL `ALTER TABLE … ADD COLUMN`, `CREATE INDEX` or `DROP INDEX`: MySQL has no
/// `IF (NOT) EXISTS` for them, so running one again answers that the column or index is there
/// already (or gone already), which means done.
pub fn repeats_as_duplicate(statement: &str) -> bool {
    let unguarded = !statement.contains("IF NOT EXISTS") && !statement.contains("IF EXISTS");
    statement.starts_with("ALTER TABLE ") && statement.contains(" ADD COLUMN ")
        || (statement.starts_with("CREATE INDEX ") || statement.starts_with("DROP INDEX "))
            && unguarded
}

/// MySQL 1060 "Duplicate column name", 1061 "Duplicate key name", 1091 "Can't DROP …; check
/// that column/key exists".
fn is_duplicate_schema(e: &SqlError) -> bool {
    let msg = e.to_string();
    let lower = msg.to_ascii_lowercase();
    ["1060", "1061", "1091"]
        .iter()
        .any(|code| msg.contains(code))
        || lower.contains("duplicate column name")
        || lower.contains("duplicate key name")
        || lower.contains("check that column/key exists")
        || lower.contains("check that it exists")
}

/// The applied version, 0 for a fresh database.
pub fn current_version(sql: &dyn Sql) -> Result<i64, SqlError> {
    let rows = sql.query("SELECT COALESCE(MAX(version), 0) FROM schema_version", &[])?;
    rows.scalar_i64()
}
