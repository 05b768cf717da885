//! `bench/seed` (issue 20, item 2) at a small scale, on real SQLite and a throwaway MariaDB:
//! the seed passes its own check, the check names a corrupted counter, a non-empty database is
//! refused, and the distributions are the documented ones.

use std::process::Command;

use tikspin_core::ports::Sql;
use tikspin_core::testing::SqliteSql;
use tikspin_e2e::seed::{self, mysql::MysqlSql, zipf_counts, Options, Scale, SeedError};
use tikspin_e2e::servers::MariaDb;

fn small() -> Options {
    Options {
        scale: Scale {
            users: 300,
            videos: 2_000,
            likes: 20_000,
            follows: 3_000,
            comments: 5_000,
            messages: 2_000,
            conversations: 200,
        },
        seed: 7,
        now_ms: tikspin_core::time::now_ms(),
        append: false,
    }
}

fn count(sql: &dyn Sql, statement: &str) -> i64 {
    sql.query(statement, &[]).unwrap().scalar_i64().unwrap()
}

/// Seed, check, corrupt one column of each kind, check again, refuse a second seed.
fn seed_check_corrupt_refuse(sql: &dyn Sql) {
    let opts = small();
    seed::seed(sql, &opts, &mut |_| {}).expect("seeds");
    let s = opts.scale;
    assert_eq!(count(sql, "SELECT COUNT(*) FROM favorites"), s.likes as i64);
    assert_eq!(count(sql, "SELECT COUNT(*) FROM comments"), s.comments as i64);
    assert_eq!(count(sql, "SELECT COUNT(*) FROM videos"), s.videos as i64);
    assert_eq!(count(sql, "SELECT COUNT(*) FROM follows"), s.follows as i64);
    assert_eq!(count(sql, "SELECT COUNT(*) FROM messages"), s.messages as i64);
    assert_eq!(
        count(
            sql,
            "SELECT COUNT(*) FROM (SELECT DISTINCT user_lo, user_hi FROM messages) t"
        ),
        s.conversations as i64
    );
    // Friendships and previews exist, so the friend list has something to read.
    assert!(count(sql, "SELECT COUNT(*) FROM follows WHERE friend_since IS NOT NULL") > 0);
    assert!(count(sql, "SELECT COUNT(*) FROM follows WHERE last_message_id IS NOT NULL") > 0);
    // Zipf: the most liked video is liked by every user (the cap), 30 times the mean of 10.
    let top = count(sql, "SELECT MAX(favorite_count) FROM videos");
    assert_eq!(top, s.users as i64, "the top video's likes");
    assert_eq!(seed::check(sql).unwrap(), Vec::<String>::new());

    // The migrations ran: the app's own schema version.
    assert_eq!(
        tikspin_core::migrate::current_version(sql).unwrap(),
        tikspin_core::schema::latest_version()
    );

    let user = count(sql, "SELECT MIN(id) FROM users WHERE system_role IS NULL");
    sql.execute(
        "UPDATE users SET total_favorited = total_favorited + 1 WHERE id = ?",
        &[user.into()],
    )
    .unwrap();
    let follow = count(sql, "SELECT MIN(id) FROM follows WHERE last_message_id IS NOT NULL");
    sql.execute(
        "UPDATE follows SET last_message_id = NULL WHERE id = ?",
        &[follow.into()],
    )
    .unwrap();
    let drift = seed::check(sql).unwrap();
    assert_eq!(drift.len(), 2, "{drift:?}");
    assert!(
        drift[0].starts_with(&format!("users.total_favorited (id {user}): stored ")),
        "{drift:?}"
    );
    assert!(
        drift[1].starts_with(&format!("follows.last_message_id (id {follow}): stored NULL")),
        "{drift:?}"
    );

    let before = count(sql, "SELECT COUNT(*) FROM users");
    match seed::seed(sql, &opts, &mut |_| {}) {
        Err(SeedError::NotEmpty(what)) => assert!(what.contains("users"), "{what}"),
        other => panic!("a non-empty database was not refused: {other:?}"),
    }
    assert_eq!(count(sql, "SELECT COUNT(*) FROM users"), before);
}

#[test]
fn sqlite_seed_checks_clean_and_names_a_corrupted_counter() {
    let dir = tempfile::tempdir().unwrap();
    let sql = SqliteSql::open(dir.path().join("sqlite_db.db")).unwrap();
    seed_check_corrupt_refuse(&sql);
}

#[test]
fn mariadb_seed_checks_clean_and_names_a_corrupted_counter() {
    let db = MariaDb::start().expect("MariaDB starts");
    let sql = MysqlSql::connect(&db.url()).unwrap();
    seed_check_corrupt_refuse(&sql);
}

/// The binary: exit 0 on a fresh file, 3 (and nothing written) on a non-empty one, `--append`
/// adds, `--check` exits 1 naming the row after a counter is changed behind its back.
#[test]
fn the_cli_refuses_a_non_empty_database_and_check_exits_non_zero_on_drift() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sqlite_db.db");
    let run = |extra: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_seed"))
            .arg("--sqlite")
            .arg(&path)
            .args(["--divide", "1000"])
            .args(extra)
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.code(), text)
    };
    let (code, text) = run(&[]);
    assert_eq!(code, Some(0), "{text}");
    let users = || {
        let db = rusqlite::Connection::open(&path).unwrap();
        db.query_row("SELECT COUNT(*) FROM users", [], |r| r.get::<_, i64>(0))
            .unwrap()
    };
    let seeded = users();
    assert_eq!(seeded, 100 + 1, "100 users and the system user");

    let (code, text) = run(&[]);
    assert_eq!(code, Some(3), "{text}");
    assert!(text.contains("not empty"), "{text}");
    assert_eq!(users(), seeded);

    let (code, text) = run(&["--append"]);
    assert_eq!(code, Some(0), "{text}");
    assert_eq!(users(), seeded + 100);
    let (code, text) = run(&["--check"]);
    assert_eq!(code, Some(0), "{text}");

    let db = rusqlite::Connection::open(&path).unwrap();
    db.execute("UPDATE videos SET comment_count = comment_count + 2 WHERE id = 3", [])
        .unwrap();
    drop(db);
    let (code, text) = run(&["--check"]);
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("videos.comment_count (id 3): stored "), "{text}");
}

#[test]
fn zipf_counts_are_exact_capped_and_decreasing() {
    for (n, total, cap) in [(1000, 10_000, 100), (10, 5, 1), (5, 100, 10), (100_000, 10_000_000, 100_000)] {
        let c = zipf_counts(n, total, 1.0, cap);
        assert_eq!(c.len(), n);
        assert_eq!(c.iter().sum::<u64>(), total.min(n as u64 * cap));
        assert!(c.iter().all(|&x| x <= cap), "cap {cap}");
        assert!(c.windows(2).all(|w| w[0] + 1 >= w[1]), "roughly decreasing");
    }
    // Issue 20's likes: the top videos reach the cap (every user).
    let likes = zipf_counts(1_000_000, 10_000_000, 1.0, 100_000);
    assert_eq!(likes[0], 100_000);
}
