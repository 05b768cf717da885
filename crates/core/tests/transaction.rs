use std::cell::Cell;

use tikspin_core::db::{execute_counted, insert, insert_ignore, transaction};
use tikspin_core::migrate::migrate;
use tikspin_core::testing::SqliteSql;
use tikspin_core::{ApiError, Dialect, Sql, SqlError};

/// Ordinary users: the migration also made the system user.
fn count_users(sql: &dyn Sql) -> i64 {
    sql.query("SELECT COUNT(*) FROM users WHERE system_role IS NULL", &[])
        .unwrap()
        .scalar_i64()
        .unwrap()
}

fn add_user(sql: &dyn Sql, name: &str) -> Result<i64, SqlError> {
    insert(
        sql,
        "INSERT INTO users (name, password_hash, created_at) VALUES (?, 'x', 0)",
        &[name.into()],
    )
}

#[test]
fn commit_on_ok_rollback_on_err() {
    let sql = SqliteSql::memory();
    migrate(&sql).unwrap();
    let id = transaction(&sql, |tx| add_user(tx, "a")).unwrap();
    assert!(id > 0);
    let r: Result<(), ApiError> = transaction(&sql, |tx| {
        add_user(tx, "b")?;
        Err(ApiError::forbidden("changed my mind"))
    });
    assert_eq!(r.unwrap_err().msg, "changed my mind");
    assert_eq!(
        count_users(&sql),
        1,
        "the failed transaction left nothing behind"
    );
    // The connection is usable again (no transaction left open).
    transaction(&sql, |tx| add_user(tx, "c")).unwrap();
    assert_eq!(count_users(&sql), 2);
}

#[test]
fn busy_bodies_are_retried_whole() {
    let sql = SqliteSql::memory();
    migrate(&sql).unwrap();
    let runs = Cell::new(0);
    let id = transaction(&sql, |tx| {
        runs.set(runs.get() + 1);
        let id = add_user(tx, "racer")?;
        if runs.get() < 3 {
            return Err(SqlError::Busy("database is locked".into()));
        }
        Ok(id)
    })
    .unwrap();
    assert_eq!(runs.get(), 3);
    assert!(id > 0);
    assert_eq!(count_users(&sql), 1, "the busy attempts were rolled back");

    let runs = Cell::new(0);
    let r: Result<(), SqlError> = transaction(&sql, |_| {
        runs.set(runs.get() + 1);
        Err(SqlError::Busy("still locked".into()))
    });
    assert!(matches!(r, Err(SqlError::Busy(_))));
    assert_eq!(runs.get(), tikspin_core::db::TRANSACTION_ATTEMPTS);
}

#[test]
fn rows_affected_and_insert_ignore() {
    let sql = SqliteSql::memory();
    migrate(&sql).unwrap();
    let first = add_user(&sql, "a").unwrap();
    let second = add_user(&sql, "b").unwrap();
    assert_eq!(second, first + 1);
    assert!(matches!(add_user(&sql, "a"), Err(SqlError::Unique(_))));
    let like = format!(
        "{} INTO favorites (user_id, video_id, created_at) VALUES (?, ?, 0)",
        insert_ignore(Dialect::Sqlite)
    );
    assert_eq!(
        execute_counted(&sql, &like, &[1.into(), 2.into()]).unwrap(),
        1
    );
    assert_eq!(
        execute_counted(&sql, &like, &[1.into(), 2.into()]).unwrap(),
        0,
        "liking twice counts once"
    );
    let bumped = execute_counted(
        &sql,
        "UPDATE users SET work_count = work_count + 1 WHERE system_role IS NULL",
        &[],
    )
    .unwrap();
    assert_eq!(bumped, 2);
}
