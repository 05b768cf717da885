//! Helpers for the video and interaction tests: users and videos made directly (no argon2), the
//! services called the way a component calls them, and a snapshot of every row and counter.
#![allow(dead_code)]

/// The social and chat tests' own helpers (they share `world` and `token` with the rest).
pub mod people;

use crate::common::{params, World, BASE, NOW, SECRET};
use tikspin_core::auth::jwt;
use tikspin_core::comments::{self, CommentAction, CommentList};
use tikspin_core::db::transaction;
use tikspin_core::favorites;
use tikspin_core::feed::{self, FeedPage};
use tikspin_core::migrate::migrate;
use tikspin_core::publish;
use tikspin_core::testing::SqliteSql;
use tikspin_core::videos::{self, VideoList};
use tikspin_core::{users, ApiError, Env, Rows, Sql, SqlError, Urls};

pub fn links() -> Urls {
    Urls::new(BASE)
}

/// A migrated world.
pub fn world() -> World {
    let w = World::new();
    migrate(&w.sql).unwrap();
    w
}

pub fn world_on(path: &std::path::Path) -> World {
    World::with_sql(SqliteSql::open(path).unwrap())
}

pub fn token(user_id: i64) -> String {
    jwt::issue(SECRET, user_id, NOW).unwrap()
}

/// A user and their token.
pub fn user(sql: &dyn Sql, name: &str) -> (i64, String) {
    let id = users::insert(sql, name, "$argon2id$unused", NOW - 1_000_000_000).unwrap();
    (id, token(id))
}

/// A published video created at `at`, made ready (with a cover) when `ready`.
pub fn video(sql: &dyn Sql, author: i64, title: &str, at: i64, ready: bool) -> i64 {
    let created = transaction(sql, |tx| {
        videos::create_processing(
            tx,
            author,
            title,
            &format!("videos/{title}.mp4"),
            "video/mp4",
            1234,
            at,
        )
    })
    .unwrap();
    if ready {
        assert!(videos::mark_ready(
            sql,
            created.video_id,
            &format!("covers/{}.jpg", created.video_id)
        )
        .unwrap());
    }
    created.video_id
}

pub fn feed_at(env: &Env<'_>, pairs: &[(&str, &str)]) -> Result<FeedPage, ApiError> {
    feed::feed(env, &params(pairs), &links())
}

pub fn feed(w: &World, pairs: &[(&str, &str)]) -> FeedPage {
    feed_at(&w.env(), pairs).unwrap()
}

pub fn ids(list: &[tikspin_core::model::Video]) -> Vec<i64> {
    list.iter().map(|v| v.id).collect()
}

pub fn like(w: &World, tok: &str, video_id: i64, action: i64) -> Result<(), ApiError> {
    favorites::favorite_action(
        &w.env(),
        &params(&[
            ("token", tok),
            ("video_id", &video_id.to_string()),
            ("action_type", &action.to_string()),
        ]),
    )
    .map(drop)
}

pub fn favorite_list(w: &World, pairs: &[(&str, &str)]) -> Result<VideoList, ApiError> {
    favorites::favorite_list(&w.env(), &params(pairs), &links())
}

pub fn publish_list(w: &World, pairs: &[(&str, &str)]) -> Result<VideoList, ApiError> {
    publish::publish_list(&w.env(), &params(pairs), &links())
}

pub fn comment(w: &World, pairs: &[(&str, &str)]) -> Result<CommentAction, ApiError> {
    comments::comment_action(&w.env(), &params(pairs))
}

pub fn add_comment(w: &World, tok: &str, video_id: i64, text: &str) -> Result<i64, ApiError> {
    comment(
        w,
        &[
            ("token", tok),
            ("video_id", &video_id.to_string()),
            ("action_type", "1"),
            ("comment_text", text),
        ],
    )
    .map(|a| a.comment.expect("add returns the comment").id)
}

pub fn delete_comment(
    w: &World,
    tok: &str,
    video_id: i64,
    comment_id: i64,
) -> Result<(), ApiError> {
    comment(
        w,
        &[
            ("token", tok),
            ("video_id", &video_id.to_string()),
            ("action_type", "2"),
            ("comment_id", &comment_id.to_string()),
        ],
    )
    .map(drop)
}

pub fn comment_list(w: &World, pairs: &[(&str, &str)]) -> Result<CommentList, ApiError> {
    comments::comment_list(&w.env(), &params(pairs))
}

pub fn scalar(sql: &dyn Sql, statement: &str, args: &[tikspin_core::Value]) -> i64 {
    sql.query(statement, args).unwrap().scalar_i64().unwrap()
}

/// Every row of every table this work touches, counters included: equal snapshots before and
/// after a refused request prove it changed nothing.
pub fn snapshot(sql: &dyn Sql) -> Vec<Rows> {
    [
        "SELECT id, follow_count, follower_count, total_favorited, work_count, favorite_count FROM users ORDER BY id",
        "SELECT id, state, cover_key, favorite_count, comment_count, created_at FROM videos ORDER BY id",
        "SELECT id, user_id, video_id, created_at FROM favorites ORDER BY id",
        "SELECT id, video_id, user_id, content, created_at FROM comments ORDER BY id",
        "SELECT id, kind, state, attempts, run_at FROM jobs ORDER BY id",
    ]
    .iter()
    .map(|s| sql.query(s, &[]).unwrap())
    .collect()
}

/// Counters recomputed from the rows must equal the stored ones.
pub fn assert_counters_match_rows(sql: &dyn Sql) {
    let drift = |statement: &str| -> i64 { scalar(sql, statement, &[]) };
    assert_eq!(
        drift(
            "SELECT COUNT(*) FROM videos v WHERE favorite_count != \
             (SELECT COUNT(*) FROM favorites f WHERE f.video_id = v.id)"
        ),
        0,
        "videos.favorite_count drifted"
    );
    assert_eq!(
        drift(
            "SELECT COUNT(*) FROM videos v WHERE comment_count != \
             (SELECT COUNT(*) FROM comments c WHERE c.video_id = v.id)"
        ),
        0,
        "videos.comment_count drifted"
    );
    assert_eq!(
        drift(
            "SELECT COUNT(*) FROM users u WHERE favorite_count != \
             (SELECT COUNT(*) FROM favorites f WHERE f.user_id = u.id)"
        ),
        0,
        "users.favorite_count drifted"
    );
    assert_eq!(
        drift(
            "SELECT COUNT(*) FROM users u WHERE total_favorited != \
             (SELECT COUNT(*) FROM favorites f JOIN videos v ON v.id = f.video_id WHERE v.author_id = u.id)"
        ),
        0,
        "users.total_favorited drifted"
    );
    assert_eq!(
        drift(
            "SELECT COUNT(*) FROM users u WHERE work_count != \
             (SELECT COUNT(*) FROM videos v WHERE v.author_id = u.id)"
        ),
        0,
        "users.work_count drifted"
    );
}

pub fn must<T>(r: Result<T, SqlError>) -> T {
    r.unwrap()
}
