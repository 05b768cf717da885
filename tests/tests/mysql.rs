//! The whole app with MySQL as the source of truth (`database_url`), against a real MariaDB:
//! the same components, the other SQL adapter and dialect.

use std::thread;

use serde_json::Value;
use tikspin_e2e::api::{expect_ok, publish_form};
use tikspin_e2e::client::Client;
use tikspin_e2e::fixtures::fixture_bytes;
use tikspin_e2e::harness::{HostConfig, TestHost};
use tikspin_e2e::servers::MariaDb;

fn var(k: &str, v: &str) -> (String, String) {
    (k.to_string(), v.to_string())
}

fn register(c: &Client, name: &str) -> (i64, String) {
    let v = c
        .post_empty(&format!(
            "/douyin/user/register/?username={name}&password=secret123"
        ))
        .json();
    expect_ok(&v);
    (
        v["user_id"].as_i64().unwrap(),
        v["token"].as_str().unwrap().to_string(),
    )
}

fn publish(c: &Client, token: &str, title: &str) {
    let clip = fixture_bytes("landscape-2s-noaudio.mp4");
    let (ct, body) = publish_form("tikspin-mysql-test", token, title, "a.mp4", &clip);
    expect_ok(&c.post("/douyin/publish/action/", &ct, &body).json());
}

fn user(c: &Client, token: &str, id: i64) -> Value {
    expect_ok(
        &c.get(&format!("/douyin/user/?user_id={id}&token={token}"))
            .json(),
    )["user"]
        .clone()
}

/// The app with `db` as its database (and the outbound grant the MySQL adapter needs).
fn app_on(db: &MariaDb) -> TestHost {
    TestHost::start(HostConfig {
        variables: vec![
            var("database_url", &db.url()),
            var("database_host", &format!("mysql://127.0.0.1:{}", db.port)),
        ],
        ..Default::default()
    })
}

#[test]
fn every_route_group_works_on_mysql() {
    let db = MariaDb::start().expect("mariadb");
    let h = app_on(&db);
    let c = &h.client;

    // The welcome video was seeded into MySQL by the first feed.
    let feed = c.get("/douyin/feed/").json();
    assert_eq!(
        expect_ok(&feed)["video_list"].as_array().unwrap().len(),
        1,
        "{feed}"
    );

    // Two concurrent registrations of one name: exactly one user (the UNIQUE index on MySQL).
    let outcomes: Vec<i64> = thread::scope(|s| {
        let a = s.spawn(|| {
            c.post_empty("/douyin/user/register/?username=twin&password=secret123")
                .json()["status_code"]
                .as_i64()
                .unwrap()
        });
        let b = s.spawn(|| {
            c.post_empty("/douyin/user/register/?username=twin&password=secret123")
                .json()["status_code"]
                .as_i64()
                .unwrap()
        });
        vec![a.join().unwrap(), b.join().unwrap()]
    });
    assert_eq!(
        outcomes.iter().filter(|&&s| s == 0).count(),
        1,
        "{outcomes:?}"
    );

    let (author, author_token) = register(c, "author");
    let (fan, fan_token) = register(c, "粉丝🎬");
    let login = c
        .post_empty("/douyin/user/login/?username=author&password=secret123")
        .json();
    assert_eq!(expect_ok(&login)["user_id"], author);

    publish(c, &author_token, "on mysql");
    let list = c
        .get(&format!(
            "/douyin/publish/list/?user_id={author}&token={fan_token}"
        ))
        .json();
    let video_id = expect_ok(&list)["video_list"][0]["id"].as_i64().unwrap();

    // Twenty likers at once: counters exact under MySQL's row locks.
    let likers: Vec<(i64, String)> = (0..20).map(|i| register(c, &format!("liker{i}"))).collect();
    thread::scope(|s| {
        for (_, token) in &likers {
            s.spawn(move || {
                expect_ok(
                    &c.post_empty(&format!(
                        "/douyin/favorite/action/?token={token}&video_id={video_id}&action_type=1"
                    ))
                    .json(),
                )
                .clone()
            });
        }
    });
    // Liking twice counts once.
    expect_ok(
        &c.post_empty(&format!(
            "/douyin/favorite/action/?token={}&video_id={video_id}&action_type=1",
            likers[0].1
        ))
        .json(),
    );
    assert_eq!(user(c, &author_token, author)["total_favorited"], 20);
    let feed = expect_ok(
        &c.get(&format!("/douyin/feed/?token={}", likers[3].1))
            .json(),
    )
    .clone();
    let v = feed["video_list"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["id"] == video_id)
        .unwrap()
        .clone();
    assert_eq!(v["favorite_count"], 20);
    assert_eq!(v["is_favorite"], true);

    // Comments with text that looks like SQL round-trip unchanged.
    let text = "'); DROP TABLE users; -- 你好 👋";
    let enc: String = text.bytes().map(|b| format!("%{b:02X}")).collect();
    let added = c.post_empty(&format!("/douyin/comment/action/?token={fan_token}&video_id={video_id}&action_type=1&comment_text={enc}")).json();
    assert_eq!(expect_ok(&added)["comment"]["content"], text);
    let comments = c
        .get(&format!("/douyin/comment/list/?video_id={video_id}"))
        .json();
    assert_eq!(expect_ok(&comments)["comment_list"][0]["content"], text);

    // Mutual follows make friends; chat in both directions.
    follow(c, &fan_token, author);
    follow(c, &author_token, fan);
    assert_eq!(user(c, &fan_token, author)["follower_count"], 1);
    send(c, &fan_token, author, "hi");
    send(c, &fan_token, author, "again");
    assert_eq!(
        friend_previews(c, author, &author_token),
        vec![(fan, "again".into(), 0)]
    );
    let chat = c
        .get(&format!(
            "/douyin/message/chat/?token={author_token}&to_user_id={fan}&pre_msg_time=0"
        ))
        .json();
    let msgs = expect_ok(&chat)["message_list"].as_array().unwrap().clone();
    assert_eq!(msgs.len(), 2);
    let first_time = msgs[0]["create_time"].as_i64().unwrap();
    let poll = c
        .get(&format!(
            "/douyin/message/chat/?token={author_token}&to_user_id={fan}&pre_msg_time={first_time}"
        ))
        .json();
    let polled = expect_ok(&poll)["message_list"].as_array().unwrap().clone();
    assert_eq!(polled.len(), 1);
    assert_eq!(polled[0]["content"], "again");
}

#[test]
fn a_mysql_database_from_an_older_release_is_upgraded_by_the_first_friend_list() {
    use tikspin_core::schema::{schema_version_table, MIGRATIONS};
    use tikspin_core::Dialect;

    let db = MariaDb::start().expect("mariadb");
    // Schema version 1 as an older release left it, and a migration to version 2 cut short
    // after its first statement (MySQL commits each DDL statement by itself).
    let mut v1 = vec![schema_version_table(Dialect::Mysql)];
    v1.extend(MIGRATIONS[0].statements(Dialect::Mysql));
    db.sql(&v1.join(";\n")).unwrap();
    db.sql(
        "INSERT INTO schema_version (version, applied_at) VALUES (1, 0);
         ALTER TABLE follows ADD COLUMN friend_since BIGINT NULL",
    )
    .unwrap();

    let h = app_on(&db);
    let c = &h.client;
    let (a, ta) = register(c, "olda");
    let (b, _) = register(c, "oldb");
    let (cc, _) = register(c, "oldc");
    let (d, td) = register(c, "oldd");
    // Follows made by the older release: a↔b friends since 5 (b followed back), a↔c since 3,
    // a→d one way.
    let rows: Vec<String> = [(a, b, 1), (cc, a, 2), (a, cc, 3), (b, a, 5), (a, d, 6)]
        .iter()
        .map(|(from, to, at)| format!("({from}, {to}, {at})"))
        .collect();
    db.sql(&format!(
        "INSERT INTO follows (follower_id, followee_id, created_at) VALUES {}",
        rows.join(", ")
    ))
    .unwrap();
    // And a–b's messages, b's the latest.
    db.sql(&format!(
        "INSERT INTO messages (user_lo, user_hi, from_user_id, to_user_id, content, create_time) \
         VALUES ({lo}, {hi}, {a}, {b}, 'ab', 7), ({lo}, {hi}, {b}, {a}, 'ba', 8)",
        lo = a.min(b),
        hi = a.max(b)
    ))
    .unwrap();

    // The missing index sends the request through the rest of the migration.
    assert_eq!(
        friend_previews(c, a, &ta),
        vec![(b, "ba".into(), 0), (cc, "".into(), 0)]
    );
    assert_eq!(
        db.sql("SELECT MAX(version) FROM schema_version")
            .unwrap()
            .trim(),
        tikspin_core::schema::latest_version().to_string()
    );
    assert_eq!(
        db.sql(&format!(
            "SELECT friend_since FROM follows WHERE follower_id = {a} AND followee_id = {b}"
        ))
        .unwrap()
        .trim(),
        "5"
    );
    // And the upgraded schema keeps friendships from here on.
    follow(c, &td, a);
    let ids = |list: Vec<(i64, String, i64)>| list.into_iter().map(|f| f.0).collect::<Vec<_>>();
    assert_eq!(ids(friend_previews(c, a, &ta)), vec![d, b, cc]);
}

fn follow(c: &Client, token: &str, to: i64) {
    expect_ok(
        &c.post_empty(&format!(
            "/douyin/relation/action/?token={token}&to_user_id={to}&action_type=1"
        ))
        .json(),
    );
}

fn send(c: &Client, token: &str, to: i64, content: &str) {
    expect_ok(
        &c.post_empty(&format!(
            "/douyin/message/action/?token={token}&to_user_id={to}&action_type=1&content={content}"
        ))
        .json(),
    );
}

/// `user_id`'s friend list as (id, message, msgType).
fn friend_previews(c: &Client, user_id: i64, token: &str) -> Vec<(i64, String, i64)> {
    let v = c
        .get(&format!(
            "/douyin/relation/friend/list/?user_id={user_id}&token={token}"
        ))
        .json();
    expect_ok(&v)["user_list"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["id"].as_i64().unwrap(),
                f["message"].as_str().unwrap().to_owned(),
                f["msgType"].as_i64().unwrap(),
            )
        })
        .collect()
}

#[test]
fn a_mysql_migration_cut_short_after_dropping_an_index_completes() {
    use tikspin_core::schema::{schema_version_table, MIGRATIONS};
    use tikspin_core::Dialect;

    let db = MariaDb::start().expect("mariadb");
    // Versions 1 and 2, and version 3 without its new index: the old one was dropped first
    // (as a release that ordered its statements so, cut short, might leave it). Running the
    // migration again meets a `DROP INDEX` of an index that is gone: MySQL error 1091.
    let mut statements = vec![schema_version_table(Dialect::Mysql)];
    statements.extend(MIGRATIONS[0].statements(Dialect::Mysql));
    statements.extend(MIGRATIONS[1].statements(Dialect::Mysql));
    statements.push("INSERT INTO schema_version (version, applied_at) VALUES (1, 0), (2, 0)");
    let v3 = MIGRATIONS[2].statements(Dialect::Mysql);
    assert_eq!(MIGRATIONS[2].version, 3);
    statements.extend(v3.iter().filter(|s| !s.starts_with("CREATE INDEX")));
    // The user an earlier release's welcome seed made: version 4 adopts it as the system user.
    statements
        .push("INSERT INTO users (name, password_hash, created_at) VALUES ('TikSpin', '!', 1)");
    db.sql(&statements.join(";\n")).unwrap();

    let h = app_on(&db);
    let c = &h.client;
    let (a, ta) = register(c, "cuta");
    let (b, tb) = register(c, "cutb");
    follow(c, &ta, b);
    follow(c, &tb, a);
    send(c, &tb, a, "hey");
    assert_eq!(friend_previews(c, a, &ta), vec![(b, "hey".into(), 0)]);
    assert_eq!(
        db.sql("SELECT MAX(version) FROM schema_version")
            .unwrap()
            .trim(),
        tikspin_core::schema::latest_version().to_string()
    );
    assert_eq!(
        db.sql("SELECT name, system_role FROM users WHERE system_role IS NOT NULL")
            .unwrap()
            .trim(),
        "TikSpin\twelcome",
        "the earlier seed's user is the system user"
    );
}

/// On MySQL too, an ordinary account that registered `TikSpin` before the name was reserved
/// stays an ordinary account (it still logs in), and the system user takes the fallback name;
/// the name is refused to new registrations.
#[test]
fn a_mysql_database_with_an_ordinary_tikspin_account_gets_its_own_system_user() {
    use tikspin_core::schema::{schema_version_table, MIGRATIONS};
    use tikspin_core::users::{SYSTEM_USER_FALLBACK_NAME, SYSTEM_USER_NAME};
    use tikspin_core::Dialect;

    let db = MariaDb::start().expect("mariadb");
    let mut statements = vec![schema_version_table(Dialect::Mysql).to_string()];
    for m in MIGRATIONS.iter().filter(|m| m.version <= 3) {
        statements.extend(m.statements(Dialect::Mysql).iter().map(|s| s.to_string()));
        statements.push(format!(
            "INSERT INTO schema_version (version, applied_at) VALUES ({}, 0)",
            m.version
        ));
    }
    let hash = tikspin_core::auth::password::hash("squat-pw").unwrap();
    statements.push(format!(
        "INSERT INTO users (name, password_hash, created_at) VALUES ('{SYSTEM_USER_NAME}', '{hash}', 1)"
    ));
    db.sql(&statements.join(";\n")).unwrap();

    let h = app_on(&db);
    let c = &h.client;
    // Login reads the new column: the request migrates, and the account is still its owner's.
    let v = c
        .post_empty("/douyin/user/login/?username=TikSpin&password=squat-pw")
        .json();
    expect_ok(&v);
    let squatter = v["user_id"].as_i64().unwrap();
    let system = db
        .sql("SELECT id, name FROM users WHERE system_role = 'welcome'")
        .unwrap();
    let (system_id, system_name) = system.trim().split_once('\t').unwrap();
    assert_eq!(system_name, SYSTEM_USER_FALLBACK_NAME);
    assert_ne!(system_id.parse::<i64>().unwrap(), squatter);
    let refused = c
        .post_empty("/douyin/user/register/?username=tikspin&password=secret123")
        .json();
    assert_eq!(
        refused["status_code"],
        tikspin_core::api::USERNAME_RESERVED,
        "{refused}"
    );
    // The welcome video goes to the system user, not to the ordinary TikSpin.
    let feed = c.get("/douyin/feed/").json();
    let author = &expect_ok(&feed)["video_list"][0]["author"];
    assert_eq!(author["name"], SYSTEM_USER_FALLBACK_NAME, "{feed}");
    assert_eq!(author["id"].as_i64().unwrap().to_string(), system_id);
}
