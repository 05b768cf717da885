mod common;
mod support;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Barrier};

use common::{params, World, BASE, NOW};
use serde_json::{json, Value as Json};
use support::*;
use tikspin_core::api::{self, Reply};
use tikspin_core::comments::{self, CommentAction};
use tikspin_core::migrate::migrate;
use tikspin_core::testing::CountingSql;
use tikspin_core::{ApiError, Env, Sql};

const SEC: i64 = 1_000;

fn counters(sql: &dyn Sql, user: i64) -> (i64, i64) {
    let rows = sql
        .query(
            "SELECT total_favorited, favorite_count FROM users WHERE id = ?",
            &[user.into()],
        )
        .unwrap();
    let row = rows.first().unwrap();
    (row.i64(0).unwrap(), row.i64(1).unwrap())
}

fn video_counts(sql: &dyn Sql, video: i64) -> (i64, i64) {
    let rows = sql
        .query(
            "SELECT favorite_count, comment_count FROM videos WHERE id = ?",
            &[video.into()],
        )
        .unwrap();
    let row = rows.first().unwrap();
    (row.i64(0).unwrap(), row.i64(1).unwrap())
}

#[test]
fn likes_are_idempotent_and_move_four_counters() {
    let w = world();
    let (author, ta) = user(&w.sql, "author");
    let (fan, tf) = user(&w.sql, "fan");
    let v = video(&w.sql, author, "v", NOW - SEC, true);

    like(&w, &tf, v, 1).unwrap();
    like(&w, &tf, v, 1).unwrap();
    assert_eq!(video_counts(&w.sql, v).0, 1, "liking twice counts once");
    assert_eq!(counters(&w.sql, author), (1, 0));
    assert_eq!(counters(&w.sql, fan), (0, 1));
    assert_eq!(scalar(&w.sql, "SELECT COUNT(*) FROM favorites", &[]), 1);

    like(&w, &tf, v, 2).unwrap();
    like(&w, &tf, v, 2).unwrap();
    assert_eq!(video_counts(&w.sql, v).0, 0);
    assert_eq!(counters(&w.sql, author), (0, 0));
    assert_eq!(counters(&w.sql, fan), (0, 0));
    // Unliking what was never liked succeeds and changes nothing.
    let before = snapshot(&w.sql);
    like(&w, &ta, v, 2).unwrap();
    assert_eq!(snapshot(&w.sql), before);

    // Liking one's own video: both counters of the same user move.
    like(&w, &ta, v, 1).unwrap();
    assert_eq!(counters(&w.sql, author), (1, 1));
    assert_eq!(video_counts(&w.sql, v).0, 1);
    // Likes work on a video still processing (it is in its author's publish list).
    let p = video(&w.sql, author, "processing", NOW - SEC, false);
    like(&w, &tf, p, 1).unwrap();
    assert_eq!(counters(&w.sql, author), (2, 1));
    assert_counters_match_rows(&w.sql);
}

#[test]
fn refused_favorite_actions_change_nothing() {
    let w = world();
    let (author, _) = user(&w.sql, "author");
    let (_, tf) = user(&w.sql, "fan");
    let v = video(&w.sql, author, "v", NOW - SEC, true);
    let vs = v.to_string();
    let gone = token(999_999);
    let before = snapshot(&w.sql);
    for (pairs, code, needle) in [
        (
            vec![("video_id", vs.as_str()), ("action_type", "1")],
            api::AUTH_REQUIRED,
            "token",
        ),
        (
            vec![
                ("token", "garbage"),
                ("video_id", &vs),
                ("action_type", "1"),
            ],
            api::INVALID_TOKEN,
            "token",
        ),
        (
            vec![("token", &gone), ("video_id", &vs), ("action_type", "1")],
            api::INVALID_TOKEN,
            "token",
        ),
        (
            vec![("token", &tf), ("video_id", "123456"), ("action_type", "1")],
            api::NOT_FOUND,
            "video",
        ),
        (
            vec![("token", &tf), ("video_id", "abc"), ("action_type", "1")],
            api::BAD_PARAMETER,
            "video_id",
        ),
        (
            vec![("token", &tf), ("video_id", "-1"), ("action_type", "1")],
            api::BAD_PARAMETER,
            "video_id",
        ),
        (
            vec![("token", &tf), ("action_type", "1")],
            api::BAD_PARAMETER,
            "video_id",
        ),
        (
            vec![("token", &tf), ("video_id", &vs), ("action_type", "3")],
            api::BAD_PARAMETER,
            "action_type",
        ),
        (
            vec![("token", &tf), ("video_id", &vs), ("action_type", "x")],
            api::BAD_PARAMETER,
            "action_type",
        ),
        (
            vec![("token", &tf), ("video_id", &vs)],
            api::BAD_PARAMETER,
            "action_type",
        ),
    ] {
        let err = tikspin_core::favorites::favorite_action(&w.env(), &params(&pairs)).unwrap_err();
        assert_eq!(err.code, code, "{pairs:?}: {err}");
        assert!(err.msg.contains(needle), "{pairs:?}: {}", err.msg);
        assert_eq!(snapshot(&w.sql), before, "{pairs:?} changed something");
    }
    let reply: Json = serde_json::from_slice(
        Reply::from_result(tikspin_core::favorites::favorite_action(
            &w.env(),
            &params(&[("video_id", "1")]),
        ))
        .body(),
    )
    .unwrap();
    assert_eq!(reply["status_code"], api::AUTH_REQUIRED);
}

/// A temp-file database shared by threads, each with its own connection (as Spin instances).
fn shared_db() -> (tempfile::TempDir, PathBuf, World) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shared.db");
    let w = world_on(&path);
    migrate(&w.sql).unwrap();
    (dir, path, w)
}

fn in_threads<T: Send + 'static>(
    path: &Path,
    n: usize,
    body: impl Fn(usize, &World) -> T + Send + Sync + 'static,
) -> Vec<T> {
    let barrier = Arc::new(Barrier::new(n));
    let body = Arc::new(body);
    let handles: Vec<_> = (0..n)
        .map(|i| {
            let (path, barrier, body) = (path.to_owned(), barrier.clone(), body.clone());
            std::thread::spawn(move || {
                let w = world_on(&path);
                barrier.wait();
                body(i, &w)
            })
        })
        .collect();
    handles.into_iter().map(|h| h.join().unwrap()).collect()
}

#[test]
fn fifty_users_liking_one_video_at_once_count_fifty() {
    let (_dir, path, w) = shared_db();
    let (author, _) = user(&w.sql, "author");
    let v = video(&w.sql, author, "v", NOW - SEC, true);
    let tokens: Arc<Vec<String>> = Arc::new(
        (0..50)
            .map(|i| user(&w.sql, &format!("fan{i}")).1)
            .collect(),
    );
    let results = in_threads(&path, 50, move |i, w| like(w, &tokens[i], v, 1));
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    assert_eq!(video_counts(&w.sql, v).0, 50);
    assert_eq!(counters(&w.sql, author).0, 50);
    assert_counters_match_rows(&w.sql);
}

#[test]
fn one_user_liking_twenty_times_at_once_counts_once() {
    let (_dir, path, w) = shared_db();
    let (author, _) = user(&w.sql, "author");
    let (fan, tf) = user(&w.sql, "fan");
    let v = video(&w.sql, author, "v", NOW - SEC, true);
    let results = in_threads(&path, 20, move |_, w| like(w, &tf, v, 1));
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    assert_eq!(video_counts(&w.sql, v).0, 1);
    assert_eq!(counters(&w.sql, author), (1, 0));
    assert_eq!(counters(&w.sql, fan), (0, 1));
    assert_counters_match_rows(&w.sql);
}

#[test]
fn concurrent_like_unlike_pairs_keep_counters_equal_to_rows() {
    let (_dir, path, w) = shared_db();
    let (author, _) = user(&w.sql, "author");
    let v1 = video(&w.sql, author, "v1", NOW - 2 * SEC, true);
    let v2 = video(&w.sql, author, "v2", NOW - SEC, true);
    // 20 threads over 5 users: the same user races itself on the same video.
    let tokens: Arc<Vec<String>> =
        Arc::new((0..5).map(|i| user(&w.sql, &format!("fan{i}")).1).collect());
    let results = in_threads(&path, 20, move |i, w| {
        let tok = &tokens[i % 5];
        let v = if i % 2 == 0 { v1 } else { v2 };
        for round in 0..5 {
            like(w, tok, v, 1)?;
            like(w, tok, v, 2)?;
            if round == 4 && i % 3 == 0 {
                like(w, tok, v, 1)?;
            }
        }
        Ok::<_, ApiError>(())
    });
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    assert_counters_match_rows(&w.sql);
    let rows = scalar(&w.sql, "SELECT COUNT(*) FROM favorites", &[]);
    assert_eq!(
        video_counts(&w.sql, v1).0 + video_counts(&w.sql, v2).0,
        rows
    );
    assert_eq!(counters(&w.sql, author).0, rows);
}

#[test]
fn favorite_list_is_newest_liked_first_with_viewer_flags() {
    let mut w = world();
    let (a, _) = user(&w.sql, "author");
    let (fan, tf) = user(&w.sql, "fan");
    let (viewer, tv) = user(&w.sql, "viewer");
    let v1 = video(&w.sql, a, "v1", NOW - 30 * SEC, true);
    let v2 = video(&w.sql, a, "v2", NOW - 20 * SEC, true);
    let v3 = video(&w.sql, a, "v3", NOW - 10 * SEC, true);
    // Liked in the order v2, v1, v3 (time moves between the likes).
    for (i, v) in [v2, v1, v3].into_iter().enumerate() {
        w.now_ms = NOW + i as i64 * SEC;
        like(&w, &tf, v, 1).unwrap();
    }
    w.now_ms = NOW + 10 * SEC;
    like(&w, &tv, v1, 1).unwrap();
    w.sql
        .execute(
            "INSERT INTO follows (follower_id, followee_id, created_at) VALUES (?, ?, 0)",
            &[viewer.into(), a.into()],
        )
        .unwrap();
    let fs = fan.to_string();

    let anon = favorite_list(&w, &[("user_id", &fs)]).unwrap().video_list;
    assert_eq!(ids(&anon), vec![v3, v1, v2], "newest-liked first");
    assert!(anon.iter().all(|v| !v.is_favorite && !v.author.is_follow));
    let seen = favorite_list(&w, &[("user_id", &fs), ("token", &tv)])
        .unwrap()
        .video_list;
    let flags: Vec<(bool, bool)> = seen
        .iter()
        .map(|v| (v.is_favorite, v.author.is_follow))
        .collect();
    assert_eq!(flags, vec![(false, true), (true, true), (false, true)]);
    assert_eq!(seen[1].favorite_count, 2);
    let own = favorite_list(&w, &[("token", &tf)]).unwrap().video_list;
    assert!(own.iter().all(|v| v.is_favorite), "one's own likes");
    assert!(
        favorite_list(&w, &[("user_id", &fs), ("token", "stale")]).is_ok(),
        "bad token = anonymous"
    );

    assert_eq!(
        favorite_list(&w, &[("user_id", "999999")])
            .unwrap_err()
            .code,
        api::NOT_FOUND
    );
    assert_eq!(
        favorite_list(&w, &[("user_id", "x")]).unwrap_err().code,
        api::BAD_PARAMETER
    );
    assert!(favorite_list(&w, &[]).unwrap_err().msg.contains("user_id"));
    assert!(favorite_list(&w, &[("user_id", &a.to_string())])
        .unwrap()
        .video_list
        .is_empty());
}

#[test]
fn favorite_list_statements_do_not_grow_with_the_list() {
    let mut calls = Vec::new();
    for n in [1, 30] {
        let w = world();
        let (fan, tf) = user(&w.sql, "fan");
        let (_, tv) = user(&w.sql, "viewer");
        for i in 0..n {
            let (a, _) = user(&w.sql, &format!("a{i}"));
            let v = video(&w.sql, a, &format!("v{i}"), NOW - SEC, true);
            like(&w, &tf, v, 1).unwrap();
        }
        let counting = CountingSql::new(&w.sql);
        let env = Env {
            sql: &counting,
            ..w.env()
        };
        let fs = fan.to_string();
        let mut row = Vec::new();
        for pairs in [
            vec![("user_id", fs.as_str())],
            vec![("user_id", &fs), ("token", &tv)],
        ] {
            counting.reset();
            let list =
                tikspin_core::favorites::favorite_list(&env, &params(&pairs), &links()).unwrap();
            assert_eq!(list.video_list.len(), n);
            row.push(counting.calls());
        }
        calls.push(row);
    }
    assert_eq!(calls[0], calls[1]);
    assert_eq!(
        calls[1],
        vec![2, 4],
        "likes+videos, authors; a viewer adds likes and follows"
    );
}

#[test]
fn comments_add_list_delete_with_counts_and_authorization() {
    let mut w = world();
    w.config.tz_offset_minutes = 8 * 60;
    let (author, ta) = user(&w.sql, "author");
    let (c1, t1) = user(&w.sql, "commenter");
    let (_, t2) = user(&w.sql, "stranger");
    let v = video(&w.sql, author, "v", NOW - SEC, true);

    let reply: Json = serde_json::from_slice(
        Reply::from_result(comment(
            &w,
            &[
                ("token", &t1),
                ("video_id", &v.to_string()),
                ("action_type", "1"),
                ("comment_text", "first!"),
            ],
        ))
        .body(),
    )
    .unwrap();
    let first = reply["comment"]["id"].as_i64().unwrap();
    assert_eq!(reply["status_code"], 0);
    assert_eq!(reply["comment"]["content"], "first!");
    // NOW is 2023-11-14T22:13:20Z: already the 15th in UTC+8.
    assert_eq!(reply["comment"]["create_date"], "11-15");
    assert_eq!(reply["comment"]["user"]["id"], c1);
    assert_eq!(reply["comment"]["user"]["name"], "commenter");
    assert_eq!(
        reply["comment"]["user"]["avatar"],
        format!("{BASE}/media/avatar/{c1}.png")
    );
    assert_eq!(reply["comment"]["user"]["is_follow"], false);
    w.config.tz_offset_minutes = 0;
    w.now_ms = NOW + SEC;
    let second = add_comment(&w, &ta, v, "thanks").unwrap();
    assert_eq!(video_counts(&w.sql, v).1, 2);

    let list = comment_list(&w, &[("video_id", &v.to_string())])
        .unwrap()
        .comment_list;
    let got: Vec<(i64, &str, &str)> = list
        .iter()
        .map(|c| (c.id, c.content.as_str(), c.create_date.as_str()))
        .collect();
    assert_eq!(
        got,
        vec![(second, "thanks", "11-14"), (first, "first!", "11-14")],
        "newest first, UTC now"
    );

    // A stranger may not delete; the commenter and the video's author may.
    let before = snapshot(&w.sql);
    let err = delete_comment(&w, &t2, v, first).unwrap_err();
    assert_eq!(err.code, api::FORBIDDEN);
    assert!(err.msg.contains("author"), "{}", err.msg);
    assert_eq!(snapshot(&w.sql), before);
    delete_comment(&w, &ta, v, first).unwrap();
    assert_eq!(video_counts(&w.sql, v).1, 1);
    let err = delete_comment(&w, &ta, v, first).unwrap_err();
    assert_eq!(
        err.code,
        api::NOT_FOUND,
        "deleting twice: the comment is gone"
    );
    let third = add_comment(&w, &t1, v, "again").unwrap();
    delete_comment(&w, &t1, v, third).unwrap();
    delete_comment(&w, &ta, v, second).unwrap();
    assert_eq!(video_counts(&w.sql, v).1, 0);
    assert!(comment_list(&w, &[("video_id", &v.to_string())])
        .unwrap()
        .comment_list
        .is_empty());
    assert_counters_match_rows(&w.sql);
    // Delete reply has no comment field.
    let c = add_comment(&w, &t1, v, "x").unwrap();
    let body: Json = serde_json::from_slice(
        Reply::from_result(comment(
            &w,
            &[
                ("token", &t1),
                ("action_type", "2"),
                ("comment_id", &c.to_string()),
            ],
        ))
        .body(),
    )
    .unwrap();
    assert_eq!(body, json!({"status_code": 0, "status_msg": "success"}));
}

#[test]
fn comment_text_round_trips_unchanged() {
    let w = world();
    let (a, ta) = user(&w.sql, "author");
    let v = video(&w.sql, a, "v", NOW - SEC, true);
    let texts = [
        "'; DROP TABLE users; --",
        "Robert'); DELETE FROM comments WHERE ('1'='1",
        "表情 😀👍🏽 👨‍👩‍👧 中文评论",
        "  leading and trailing spaces  ",
        "line one\nline two \"quoted\" \\ back",
        &"评".repeat(500),
    ];
    for text in texts {
        let action = comment(
            &w,
            &[
                ("token", &ta),
                ("video_id", &v.to_string()),
                ("action_type", "1"),
                ("comment_text", text),
            ],
        )
        .unwrap();
        assert_eq!(action.comment.unwrap().content, text);
    }
    let listed: Vec<String> = comment_list(&w, &[("video_id", &v.to_string())])
        .unwrap()
        .comment_list
        .into_iter()
        .map(|c| c.content)
        .rev()
        .collect();
    assert_eq!(
        listed,
        texts.iter().map(|t| t.to_string()).collect::<Vec<_>>()
    );
    assert_eq!(
        scalar(
            &w.sql,
            "SELECT COUNT(*) FROM users WHERE system_role IS NULL",
            &[]
        ),
        1,
        "users table intact (the system user aside)"
    );
    assert_eq!(video_counts(&w.sql, v).1, texts.len() as i64);
}

#[test]
fn refused_comment_actions_change_nothing() {
    let w = world();
    let (a, ta) = user(&w.sql, "author");
    let (_, t1) = user(&w.sql, "commenter");
    let (_, t2) = user(&w.sql, "stranger");
    let v = video(&w.sql, a, "v", NOW - SEC, true);
    let other = video(&w.sql, a, "other", NOW - SEC, true);
    let c = add_comment(&w, &t1, v, "hello").unwrap();
    let (vs, cs, os) = (v.to_string(), c.to_string(), other.to_string());
    let long = "x".repeat(501);
    let gone = token(999_999);
    let before = snapshot(&w.sql);
    type Case<'a> = (Vec<(&'a str, &'a str)>, i32, &'a str);
    let cases: Vec<Case> = vec![
        (
            vec![
                ("video_id", &vs),
                ("action_type", "1"),
                ("comment_text", "hi"),
            ],
            api::AUTH_REQUIRED,
            "token",
        ),
        (
            vec![
                ("token", "bad"),
                ("video_id", &vs),
                ("action_type", "1"),
                ("comment_text", "hi"),
            ],
            api::INVALID_TOKEN,
            "token",
        ),
        (
            vec![
                ("token", &gone),
                ("video_id", &vs),
                ("action_type", "1"),
                ("comment_text", "hi"),
            ],
            api::INVALID_TOKEN,
            "token",
        ),
        (
            vec![("token", &gone), ("action_type", "2"), ("comment_id", &cs)],
            api::INVALID_TOKEN,
            "token",
        ),
        (
            vec![
                ("token", &t1),
                ("video_id", "987654"),
                ("action_type", "1"),
                ("comment_text", "hi"),
            ],
            api::NOT_FOUND,
            "video",
        ),
        (
            vec![
                ("token", &t1),
                ("video_id", "abc"),
                ("action_type", "1"),
                ("comment_text", "hi"),
            ],
            api::BAD_PARAMETER,
            "video_id",
        ),
        (
            vec![("token", &t1), ("action_type", "1"), ("comment_text", "hi")],
            api::BAD_PARAMETER,
            "video_id",
        ),
        (
            vec![
                ("token", &t1),
                ("video_id", &vs),
                ("action_type", "7"),
                ("comment_text", "hi"),
            ],
            api::BAD_PARAMETER,
            "action_type",
        ),
        (
            vec![("token", &t1), ("video_id", &vs), ("comment_text", "hi")],
            api::BAD_PARAMETER,
            "action_type",
        ),
        (
            vec![("token", &t1), ("video_id", &vs), ("action_type", "1")],
            api::COMMENT_EMPTY,
            "comment_text",
        ),
        (
            vec![
                ("token", &t1),
                ("video_id", &vs),
                ("action_type", "1"),
                ("comment_text", ""),
            ],
            api::COMMENT_EMPTY,
            "empty",
        ),
        (
            vec![
                ("token", &t1),
                ("video_id", &vs),
                ("action_type", "1"),
                ("comment_text", " \n\t "),
            ],
            api::COMMENT_EMPTY,
            "empty",
        ),
        (
            vec![
                ("token", &t1),
                ("video_id", &vs),
                ("action_type", "1"),
                ("comment_text", &long),
            ],
            api::COMMENT_TOO_LONG,
            "500",
        ),
        (
            vec![("token", &t1), ("video_id", &vs), ("action_type", "2")],
            api::BAD_PARAMETER,
            "comment_id",
        ),
        (
            vec![
                ("token", &t1),
                ("video_id", &vs),
                ("action_type", "2"),
                ("comment_id", "zz"),
            ],
            api::BAD_PARAMETER,
            "comment_id",
        ),
        (
            vec![
                ("token", &t1),
                ("video_id", &vs),
                ("action_type", "2"),
                ("comment_id", "555555"),
            ],
            api::NOT_FOUND,
            "comment",
        ),
        (
            vec![
                ("token", &t1),
                ("video_id", &os),
                ("action_type", "2"),
                ("comment_id", &cs),
            ],
            api::NOT_FOUND,
            "comment",
        ),
        (
            vec![
                ("token", &t2),
                ("video_id", &vs),
                ("action_type", "2"),
                ("comment_id", &cs),
            ],
            api::FORBIDDEN,
            "delete",
        ),
    ];
    for (pairs, code, needle) in cases {
        let err = comment(&w, &pairs).unwrap_err();
        assert_eq!(err.code, code, "{pairs:?}: {err}");
        assert!(err.msg.contains(needle), "{pairs:?}: {}", err.msg);
        assert_eq!(snapshot(&w.sql), before, "{pairs:?} changed something");
        let body: Json = serde_json::from_slice(Reply::error::<CommentAction>(err).body()).unwrap();
        assert!(body.get("comment").is_none());
    }
    // The video's author may delete it, through the same path the stranger could not.
    delete_comment(&w, &ta, v, c).unwrap();
    assert_eq!(video_counts(&w.sql, v).1, 0);
}

#[test]
fn comment_list_errors_and_statements() {
    let mut calls = Vec::new();
    for n in [1, 50] {
        let w = world();
        let (a, _) = user(&w.sql, "author");
        let (viewer, tv) = user(&w.sql, "viewer");
        let v = video(&w.sql, a, "v", NOW - SEC, true);
        let commenters: Vec<(i64, String)> = (0..n.min(20))
            .map(|i| user(&w.sql, &format!("c{i}")))
            .collect();
        for i in 0..n {
            let (_, t) = &commenters[i % commenters.len()];
            add_comment(&w, t, v, &format!("comment {i}")).unwrap();
        }
        w.sql
            .execute(
                "INSERT INTO follows (follower_id, followee_id, created_at) VALUES (?, ?, 0)",
                &[viewer.into(), commenters[0].0.into()],
            )
            .unwrap();
        let counting = CountingSql::new(&w.sql);
        let env = Env {
            sql: &counting,
            ..w.env()
        };
        let vs = v.to_string();
        let mut row = Vec::new();
        for pairs in [
            vec![("video_id", vs.as_str())],
            vec![("video_id", &vs), ("token", &tv)],
        ] {
            counting.reset();
            let list = comments::comment_list(&env, &params(&pairs))
                .unwrap()
                .comment_list;
            assert_eq!(list.len(), n);
            row.push(counting.calls());
            let followed = list.iter().filter(|c| c.user.is_follow).count();
            let expected = if pairs.len() == 2 {
                n.div_ceil(commenters.len())
            } else {
                0
            };
            assert_eq!(followed, expected);
        }
        calls.push(row);

        assert_eq!(
            comment_list(&w, &[("video_id", "424242")])
                .unwrap_err()
                .code,
            api::NOT_FOUND
        );
        assert_eq!(
            comment_list(&w, &[("video_id", "nope")]).unwrap_err().code,
            api::BAD_PARAMETER
        );
        assert_eq!(comment_list(&w, &[]).unwrap_err().code, api::BAD_PARAMETER);
        let quiet = video(&w.sql, a, "quiet", NOW - SEC, true);
        assert!(
            comment_list(&w, &[("video_id", &quiet.to_string()), ("token", "junk")])
                .unwrap()
                .comment_list
                .is_empty()
        );
    }
    assert_eq!(calls[0], calls[1], "1 comment vs 50 comments");
    assert_eq!(
        calls[1],
        vec![2, 3],
        "comments, commenters; a viewer adds follows"
    );
}

#[test]
fn concurrent_comment_adds_and_deletes_keep_comment_count_exact() {
    let (_dir, path, w) = shared_db();
    let (author, ta) = user(&w.sql, "author");
    let v = video(&w.sql, author, "v", NOW - SEC, true);
    // Existing comments that threads will race to delete (two threads per comment).
    let (_, tc) = user(&w.sql, "commenter");
    let doomed: Arc<Vec<i64>> = Arc::new(
        (0..10)
            .map(|i| add_comment(&w, &tc, v, &format!("old {i}")).unwrap())
            .collect(),
    );
    let tokens = Arc::new((ta, tc));
    let results = in_threads(&path, 20, move |i, w| {
        let mut deleted = 0;
        // Each thread adds three comments and deletes one of its own...
        let mine: Vec<i64> = (0..3)
            .map(|k| add_comment(w, &tokens.1, v, &format!("t{i} c{k}")).unwrap())
            .collect();
        delete_comment(w, &tokens.1, v, mine[0]).unwrap();
        // ...and races another thread to delete an old one (as the video's author).
        match delete_comment(w, &tokens.0, v, doomed[i % 10]) {
            Ok(()) => deleted += 1,
            Err(e) => assert_eq!(e.code, api::NOT_FOUND, "{e}"),
        }
        deleted
    });
    assert_eq!(
        results.iter().sum::<i32>(),
        10,
        "each old comment deleted exactly once"
    );
    assert_counters_match_rows(&w.sql);
    assert_eq!(video_counts(&w.sql, v).1, 20 * 2);
}
