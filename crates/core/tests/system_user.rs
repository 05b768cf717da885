//! The welcome video's system user: made by the schema migration before any request, found by
//! its mark, never by name, and impossible to register as or log in as.

mod common;

use std::sync::{Arc, Barrier};

use common::World;
use tikspin_core::api;
use tikspin_core::auth::password;
use tikspin_core::migrate::{current_version, migrate};
use tikspin_core::publish::{self, PublishRequest, StoredVideo};
use tikspin_core::schema::{self, MIGRATIONS};
use tikspin_core::testing::SqliteSql;
use tikspin_core::users::{self, NO_PASSWORD, SYSTEM_ROLE_WELCOME, SYSTEM_USER_FALLBACK_NAME};
use tikspin_core::{Dialect, Sql, Value};

fn scalar(sql: &dyn Sql, q: &str, params: &[Value]) -> i64 {
    sql.query(q, params).unwrap().scalar_i64().unwrap()
}

fn name_and_hash(sql: &dyn Sql, id: i64) -> (String, String) {
    let rows = sql
        .query(
            "SELECT name, password_hash FROM users WHERE id = ?",
            &[id.into()],
        )
        .unwrap();
    let row = rows.first().unwrap();
    (row.text(0).unwrap().into(), row.text(1).unwrap().into())
}

fn system_user(sql: &dyn Sql) -> i64 {
    users::system_user(sql, SYSTEM_ROLE_WELCOME)
        .unwrap()
        .expect("the migration made the system user")
}

/// A database as the release before the system user left it: migrations 1–3 only.
fn version_3_database() -> SqliteSql {
    let sql = SqliteSql::memory();
    sql.execute(schema::schema_version_table(Dialect::Sqlite), &[])
        .unwrap();
    for m in MIGRATIONS.iter().filter(|m| m.version <= 3) {
        for statement in m.statements(Dialect::Sqlite) {
            sql.execute(statement, &[]).unwrap();
        }
        sql.execute(
            "INSERT INTO schema_version (version, applied_at) VALUES (?, 0)",
            &[m.version.into()],
        )
        .unwrap();
    }
    assert_eq!(current_version(&sql).unwrap(), 3);
    sql
}

fn old_insert_user(sql: &dyn Sql, name: &str, hash: &str) -> i64 {
    tikspin_core::db::insert(
        sql,
        "INSERT INTO users (name, password_hash, created_at) VALUES (?, ?, 5)",
        &[name.into(), hash.into()],
    )
    .unwrap()
}

#[test]
fn a_fresh_database_has_the_system_user_and_nobody_can_be_it() {
    let w = World::new();
    for name in [
        "TikSpin",
        "tikspin",
        "TIKSPIN",
        "ＴｉｋＳｐｉｎ",
        "Tik\u{200B}Spin",
    ] {
        let refused = w.register(name, "secret1").unwrap_err();
        assert_eq!(
            refused.code,
            api::USERNAME_RESERVED,
            "{name:?}: {refused:?}"
        );
        assert_eq!(
            refused.msg,
            "this username is reserved, please choose another"
        );
    }
    // The first request that reaches the database migrates it, and the system user is there.
    let alice = w.register("alice", "secret1").unwrap();
    let system = system_user(&w.sql);
    assert_ne!(alice.user_id, system);
    assert_eq!(
        name_and_hash(&w.sql, system),
        ("TikSpin".to_string(), NO_PASSWORD.to_string())
    );
    // Nobody logs in as it, whatever the password.
    for pw in ["!", "", "secret1", "TikSpin", "password"] {
        let refused = w.login("TikSpin", pw).unwrap_err();
        assert!(
            [api::WRONG_CREDENTIALS, api::BAD_PARAMETER].contains(&refused.code),
            "{pw:?}: {refused:?}"
        );
    }
    assert_eq!(
        scalar(
            &w.sql,
            "SELECT COUNT(*) FROM users WHERE system_role IS NOT NULL",
            &[]
        ),
        1
    );
}

/// The user an earlier release's welcome seed made (`TikSpin`, hash `!`) becomes the system
/// user, keeping its id and its video.
#[test]
fn an_earlier_seeds_user_is_adopted() {
    let sql = version_3_database();
    let bob = old_insert_user(&sql, "bob", &password::hash("secret1").unwrap());
    let seeded = old_insert_user(&sql, "TikSpin", "!");
    migrate(&sql).unwrap();
    assert_eq!(system_user(&sql), seeded);
    assert_eq!(
        scalar(
            &sql,
            "SELECT COUNT(*) FROM users WHERE system_role IS NOT NULL",
            &[]
        ),
        1
    );
    assert_eq!(
        scalar(
            &sql,
            "SELECT COUNT(*) FROM users WHERE id = ? AND system_role IS NULL",
            &[bob.into()]
        ),
        1
    );
}

/// An ordinary account that registered `TikSpin` before the name was reserved stays ordinary:
/// same name, same password, still able to log in, never the system user. The system user is
/// made under the fallback name instead.
#[test]
fn an_ordinary_tikspin_account_is_not_turned_into_the_system_user() {
    let sql = version_3_database();
    let squatter = old_insert_user(&sql, "TikSpin", &password::hash("squat-pw").unwrap());
    let w = World::with_sql(sql);
    // Logging in reads the new column, which migrates the database.
    let session = w.login("TikSpin", "squat-pw").unwrap();
    assert_eq!(session.user_id, squatter);
    assert_eq!(current_version(&w.sql).unwrap(), schema::latest_version());
    let system = system_user(&w.sql);
    assert_ne!(system, squatter);
    assert_eq!(
        name_and_hash(&w.sql, system),
        (
            SYSTEM_USER_FALLBACK_NAME.to_string(),
            NO_PASSWORD.to_string()
        )
    );
    assert_eq!(
        w.login(SYSTEM_USER_FALLBACK_NAME, "!").unwrap_err().code,
        api::WRONG_CREDENTIALS
    );
}

/// Migration 4 run again (a MySQL run cut short repeats every statement) changes nothing.
#[test]
fn the_system_user_migration_repeats_harmlessly() {
    for squatted in [false, true] {
        let sql = version_3_database();
        if squatted {
            old_insert_user(&sql, "TikSpin", &password::hash("squat-pw").unwrap());
        }
        migrate(&sql).unwrap();
        let system = system_user(&sql);
        let v4 = MIGRATIONS.iter().find(|m| m.version == 4).unwrap();
        for statement in v4.statements(Dialect::Sqlite).iter().skip(1) {
            sql.execute(statement, &[]).unwrap();
        }
        assert_eq!(system_user(&sql), system);
        assert_eq!(
            scalar(
                &sql,
                "SELECT COUNT(*) FROM users WHERE system_role IS NOT NULL",
                &[]
            ),
            1
        );
        assert_eq!(
            scalar(&sql, "SELECT COUNT(*) FROM users", &[]),
            if squatted { 2 } else { 1 }
        );
    }
}

/// Of concurrent welcome seeds (each with its own stored copy), exactly one records the video.
#[test]
fn concurrent_first_records_make_one_video() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db.sqlite");
    migrate(&SqliteSql::open(&path).unwrap()).unwrap();
    let system = system_user(&SqliteSql::open(&path).unwrap());
    let barrier = Arc::new(Barrier::new(4));
    let outcomes: Vec<bool> = (0..4)
        .map(|i| {
            let (path, barrier) = (path.clone(), barrier.clone());
            std::thread::spawn(move || {
                let w = World::with_sql(SqliteSql::open(&path).unwrap());
                barrier.wait();
                publish::record_first(
                    &w.env(),
                    system,
                    &PublishRequest {
                        title: "Welcome".into(),
                    },
                    &StoredVideo {
                        play_key: format!("videos/{i}.mp4"),
                        content_type: "video/mp4".into(),
                        size_bytes: 10,
                    },
                )
                .unwrap()
                .is_some()
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|t| t.join().unwrap())
        .collect();
    assert_eq!(outcomes.iter().filter(|o| **o).count(), 1, "{outcomes:?}");
    let sql = SqliteSql::open(&path).unwrap();
    assert_eq!(scalar(&sql, "SELECT COUNT(*) FROM videos", &[]), 1);
    assert_eq!(
        scalar(
            &sql,
            "SELECT work_count FROM users WHERE id = ?",
            &[system.into()]
        ),
        1
    );
}
