mod common;

use std::sync::{Arc, Barrier};

use tikspin_core::migrate::{current_version, migrate, with_schema};
use tikspin_core::schema::latest_version;
use tikspin_core::testing::{CountingSql, SqliteSql};
use tikspin_core::{users, ApiError, Sql, SqlError};

const TABLES: [&str; 8] = [
    "users",
    "videos",
    "favorites",
    "comments",
    "follows",
    "messages",
    "jobs",
    "schema_version",
];

fn table_names(sql: &dyn Sql) -> Vec<String> {
    let rows = sql
        .query("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name", &[])
        .unwrap();
    rows.iter().map(|r| r.text(0).unwrap().to_owned()).collect()
}

#[test]
fn migrating_creates_every_table_and_is_idempotent() {
    let sql = SqliteSql::memory();
    assert_eq!(migrate(&sql).unwrap(), latest_version());
    assert_eq!(migrate(&sql).unwrap(), latest_version());
    let mut expected: Vec<String> = TABLES.iter().map(|s| s.to_string()).collect();
    expected.sort();
    assert_eq!(table_names(&sql), expected);
    let versions = sql
        .query("SELECT COUNT(*) FROM schema_version", &[])
        .unwrap()
        .scalar_i64()
        .unwrap();
    assert_eq!(versions, tikspin_core::schema::MIGRATIONS.len() as i64);
    assert_eq!(current_version(&sql).unwrap(), latest_version());
}

#[test]
fn the_queries_hit_indexes() {
    let sql = SqliteSql::memory();
    migrate(&sql).unwrap();
    let plan = |q: &str| -> String {
        let rows = sql.query(&format!("EXPLAIN QUERY PLAN {q}"), &[]).unwrap();
        rows.iter()
            .map(|r| r.text(3).unwrap().to_owned())
            .collect::<Vec<_>>()
            .join(" | ")
    };
    let cases = [
        ("SELECT id FROM videos WHERE state = 'ready' AND created_at < 5 ORDER BY created_at DESC, id DESC LIMIT 30", "videos_feed"),
        ("SELECT id FROM videos WHERE author_id = 1 ORDER BY created_at DESC, id DESC", "videos_author"),
        ("SELECT video_id FROM favorites WHERE user_id = 1 ORDER BY created_at DESC, id DESC", "favorites_user_time"),
        ("SELECT id FROM comments WHERE video_id = 1 ORDER BY created_at DESC, id DESC", "comments_video_time"),
        ("SELECT followee_id FROM follows WHERE follower_id = 1 ORDER BY created_at DESC, id DESC", "follows_follower_time"),
        ("SELECT follower_id FROM follows WHERE followee_id = 1 ORDER BY created_at DESC, id DESC", "follows_followee_time"),
        ("SELECT content FROM messages WHERE user_lo = 1 AND user_hi = 2 AND create_time > 5 ORDER BY create_time, id", "messages_conversation_time"),
        ("SELECT content FROM messages WHERE user_lo = 1 AND user_hi = 2 ORDER BY create_time DESC, id DESC LIMIT 1", "messages_conversation_time"),
        ("SELECT id FROM jobs WHERE state = 'pending' AND run_at <= 5 ORDER BY run_at LIMIT 10", "jobs_state_run_at"),
        ("SELECT id FROM users WHERE name = 'x'", "users_name"),
    ];
    for (query, index) in cases {
        let p = plan(query);
        assert!(p.contains(index), "{query}\n  plan: {p}");
        assert!(
            !p.contains("TEMP B-TREE"),
            "{query} sorts instead of scanning an index\n  plan: {p}"
        );
    }
}

#[test]
fn two_connections_migrating_at_once_both_succeed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db.sqlite");
    let barrier = Arc::new(Barrier::new(2));
    let workers: Vec<_> = (0..2)
        .map(|_| {
            let (path, barrier) = (path.clone(), barrier.clone());
            std::thread::spawn(move || {
                let sql = SqliteSql::open(&path).unwrap();
                barrier.wait();
                migrate(&sql)
            })
        })
        .collect();
    for w in workers {
        assert_eq!(w.join().unwrap().unwrap(), latest_version());
    }
    let sql = SqliteSql::open(&path).unwrap();
    let versions = sql
        .query("SELECT COUNT(*) FROM schema_version", &[])
        .unwrap()
        .scalar_i64()
        .unwrap();
    assert_eq!(versions, latest_version());
    let mode = sql.query("PRAGMA journal_mode", &[]).unwrap();
    assert_eq!(
        mode.first().unwrap().text(0).unwrap(),
        "wal",
        "WAL must persist in the file"
    );
}

#[test]
fn with_schema_migrates_a_fresh_database_once_and_costs_nothing_after() {
    let sql = SqliteSql::memory();
    let counting = CountingSql::new(&sql);
    let mut runs = 0;
    let found: Result<bool, ApiError> = with_schema(&counting, || {
        runs += 1;
        // Not 1: the migration made the system user, which is likely to have that id.
        Ok(users::exists(&counting, 999)?)
    });
    assert_eq!(found, Ok(false));
    assert_eq!(
        runs, 2,
        "the op runs, fails on the missing table, and runs again"
    );
    assert_eq!(current_version(&sql).unwrap(), latest_version());

    counting.reset();
    let found: Result<bool, SqlError> = with_schema(&counting, || users::exists(&counting, 999));
    assert!(!found.unwrap());
    assert_eq!(counting.calls(), 1, "no schema check on the hot path");
}

#[test]
fn other_errors_are_not_retried_by_with_schema() {
    let sql = SqliteSql::memory();
    let mut runs = 0;
    let r: Result<(), SqlError> = with_schema(&sql, || {
        runs += 1;
        sql.execute("SELEC 1", &[])
    });
    assert!(matches!(r, Err(SqlError::Other(_))));
    assert_eq!(runs, 1);
    assert!(
        table_names(&sql).is_empty(),
        "no migration for a syntax error"
    );
}
