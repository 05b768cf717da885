mod common;
mod support;

use std::collections::BTreeSet;
use std::sync::{Arc, Barrier};

use common::{params, World, NOW};
use serde_json::json;
use support::people::{body, count, deleted_user, send, user, Case, Pairs};
use support::world;
use tikspin_core::api::{self, Reply};
use tikspin_core::auth::jwt;
use tikspin_core::db::transaction;
use tikspin_core::follows::Previews;
use tikspin_core::migrate::migrate;
use tikspin_core::social::{self, FriendList, UserList, LIST_LIMIT};
use tikspin_core::testing::{CountingSql, SqliteSql};
use tikspin_core::{ApiError, Env, Sql, SqlError};

fn counters(sql: &dyn Sql, id: i64) -> (i64, i64) {
    let rows = sql
        .query(
            "SELECT follow_count, follower_count FROM users WHERE id = ?",
            &[id.into()],
        )
        .unwrap();
    let row = rows.first().unwrap();
    (row.i64(0).unwrap(), row.i64(1).unwrap())
}

fn act(env: &Env<'_>, token: &str, to: i64, action: &str) -> Result<(), ApiError> {
    social::relation_action(
        env,
        &params(&[
            ("token", token),
            ("to_user_id", &to.to_string()),
            ("action_type", action),
        ]),
    )
    .map(drop)
}

fn follow(w: &World, token: &str, to: i64) {
    act(&w.env(), token, to, "1").unwrap();
}

fn ids(list: &UserList) -> Vec<i64> {
    list.user_list.iter().map(|u| u.id).collect()
}

fn follow_list(env: &Env<'_>, user_id: i64, token: Option<&str>) -> Result<UserList, ApiError> {
    let uid = user_id.to_string();
    let mut p = vec![("user_id", uid.as_str())];
    p.extend(token.map(|t| ("token", t)));
    social::follow_list(env, &params(&p))
}

fn follower_list(env: &Env<'_>, user_id: i64, token: Option<&str>) -> Result<UserList, ApiError> {
    let uid = user_id.to_string();
    let mut p = vec![("user_id", uid.as_str())];
    p.extend(token.map(|t| ("token", t)));
    social::follower_list(env, &params(&p))
}

fn friend_list(env: &Env<'_>, user_id: i64, token: &str) -> Result<FriendList, ApiError> {
    social::friend_list(
        env,
        &params(&[("user_id", &user_id.to_string()), ("token", token)]),
    )
}

#[test]
fn following_is_idempotent_and_moves_each_counter_once() {
    let w = world();
    let (a, ta) = user(&w.sql, "a");
    let (b, tb) = user(&w.sql, "b");

    let reply = body(Reply::from_result(social::relation_action(
        &w.env(),
        &params(&[
            ("token", &ta),
            ("to_user_id", &b.to_string()),
            ("action_type", "1"),
        ]),
    )));
    assert_eq!(reply, json!({"status_code": 0, "status_msg": "success"}));
    follow(&w, &ta, b); // twice: counts once
    assert_eq!(count(&w.sql, "SELECT COUNT(*) FROM follows"), 1);
    assert_eq!(counters(&w.sql, a), (1, 0));
    assert_eq!(counters(&w.sql, b), (0, 1));

    follow(&w, &tb, a); // the other direction is its own row
    assert_eq!(counters(&w.sql, a), (1, 1));
    assert_eq!(counters(&w.sql, b), (1, 1));

    for _ in 0..2 {
        act(&w.env(), &ta, b, "2").unwrap(); // unfollowing twice: once
    }
    assert_eq!(count(&w.sql, "SELECT COUNT(*) FROM follows"), 1);
    assert_eq!(counters(&w.sql, a), (0, 1));
    assert_eq!(counters(&w.sql, b), (1, 0));

    // Unfollowing someone never followed succeeds and changes nothing.
    let (c, _) = user(&w.sql, "c");
    act(&w.env(), &ta, c, "2").unwrap();
    assert_eq!(counters(&w.sql, a), (0, 1));
    assert_eq!(counters(&w.sql, c), (0, 0));
    assert_eq!(count(&w.sql, "SELECT COUNT(*) FROM follows"), 1);
}

#[test]
fn bad_relation_actions_are_refused_and_write_nothing() {
    let w = world();
    let (a, ta) = user(&w.sql, "a");
    let (b, _) = user(&w.sql, "b");
    let (gone, tgone) = deleted_user(&w.sql, "gone");
    let forged = jwt::issue("another-secret", a, NOW).unwrap();
    let (bs, a_s, gone_s) = (b.to_string(), a.to_string(), gone.to_string());

    let cases: Vec<Case> = vec![
        (
            vec![("to_user_id", &bs), ("action_type", "1")],
            api::AUTH_REQUIRED,
            "log in",
        ),
        (
            vec![
                ("token", "nonsense"),
                ("to_user_id", &bs),
                ("action_type", "1"),
            ],
            api::INVALID_TOKEN,
            "token",
        ),
        (
            vec![
                ("token", &forged),
                ("to_user_id", &bs),
                ("action_type", "1"),
            ],
            api::INVALID_TOKEN,
            "token",
        ),
        (
            vec![("token", &tgone), ("to_user_id", &bs), ("action_type", "1")],
            api::INVALID_TOKEN,
            "token",
        ),
        (
            vec![("token", &ta), ("action_type", "1")],
            api::BAD_PARAMETER,
            "to_user_id",
        ),
        (
            vec![("token", &ta), ("to_user_id", "abc"), ("action_type", "1")],
            api::BAD_PARAMETER,
            "to_user_id",
        ),
        (
            vec![("token", &ta), ("to_user_id", "-4"), ("action_type", "1")],
            api::BAD_PARAMETER,
            "to_user_id",
        ),
        (
            vec![("token", &ta), ("to_user_id", &a_s), ("action_type", "1")],
            api::CANNOT_FOLLOW_SELF,
            "yourself",
        ),
        (
            vec![("token", &ta), ("to_user_id", &a_s), ("action_type", "2")],
            api::CANNOT_FOLLOW_SELF,
            "yourself",
        ),
        (
            vec![
                ("token", &ta),
                ("to_user_id", "999999"),
                ("action_type", "1"),
            ],
            api::RELATION_USER_NOT_FOUND,
            "999999 does not exist",
        ),
        (
            vec![
                ("token", &ta),
                ("to_user_id", &gone_s),
                ("action_type", "2"),
            ],
            api::RELATION_USER_NOT_FOUND,
            "does not exist",
        ),
        (
            vec![("token", &ta), ("to_user_id", &bs)],
            api::BAD_RELATION_ACTION,
            "1 (follow) or 2 (unfollow)",
        ),
        (
            vec![("token", &ta), ("to_user_id", &bs), ("action_type", "3")],
            api::BAD_RELATION_ACTION,
            "\"3\"",
        ),
        (
            vec![("token", &ta), ("to_user_id", &bs), ("action_type", "0")],
            api::BAD_RELATION_ACTION,
            "action_type",
        ),
        (
            vec![
                ("token", &ta),
                ("to_user_id", &bs),
                ("action_type", "follow"),
            ],
            api::BAD_RELATION_ACTION,
            "action_type",
        ),
    ];
    for (pairs, code, needle) in cases {
        let err = social::relation_action(&w.env(), &params(&pairs)).unwrap_err();
        assert_eq!(err.code, code, "{pairs:?}: {err}");
        assert!(err.msg.contains(needle), "{pairs:?}: {}", err.msg);
        let reply = body(Reply::from_result(social::relation_action(
            &w.env(),
            &params(&pairs),
        )));
        assert_eq!(reply["status_code"], code);
    }
    assert_eq!(count(&w.sql, "SELECT COUNT(*) FROM follows"), 0);
    assert_eq!(
        count(
            &w.sql,
            "SELECT COALESCE(SUM(follow_count + follower_count), 0) FROM users"
        ),
        0
    );
}

#[test]
fn follow_and_follower_lists_are_newest_first_with_viewer_relative_flags() {
    let mut w = world();
    let (a, ta) = user(&w.sql, "a");
    let (b, tb) = user(&w.sql, "b");
    let (c, _) = user(&w.sql, "c");
    let (d, td) = user(&w.sql, "d");
    for (i, to) in [b, c, d].into_iter().enumerate() {
        w.now_ms = NOW + i as i64;
        follow(&w, &ta, to);
    }
    w.now_ms = NOW + 10;
    follow(&w, &tb, c);
    follow(&w, &td, a);

    // Anonymous, and a bad token is anonymous too (never an error on an optional token).
    for token in [None, Some("stale.token.here")] {
        let list = follow_list(&w.env(), a, token).unwrap();
        assert_eq!(ids(&list), vec![d, c, b]);
        assert!(list.user_list.iter().all(|u| !u.is_follow));
    }
    // The owner follows everyone listed.
    let list = follow_list(&w.env(), a, Some(&ta)).unwrap();
    assert!(list.user_list.iter().all(|u| u.is_follow));
    // Another viewer: b follows c only.
    let list = follow_list(&w.env(), a, Some(&tb)).unwrap();
    let flags: Vec<(i64, bool)> = list.user_list.iter().map(|u| (u.id, u.is_follow)).collect();
    assert_eq!(
        flags,
        vec![(d, false), (c, true), (b, false)],
        "b never follows itself"
    );
    let c_entry = &list.user_list[1];
    assert_eq!((c_entry.follow_count, c_entry.follower_count), (0, 2));

    // Followers of c: b (later) then a; viewer d follows a, not b.
    let list = follower_list(&w.env(), c, Some(&td)).unwrap();
    assert_eq!(ids(&list), vec![b, a]);
    assert_eq!(
        list.user_list
            .iter()
            .map(|u| u.is_follow)
            .collect::<Vec<_>>(),
        vec![false, true]
    );
    assert_eq!(ids(&follower_list(&w.env(), b, None).unwrap()), vec![a]);

    // Unfollow then follow again: the relation is new, so it moves to the top.
    w.now_ms = NOW + 20;
    act(&w.env(), &ta, b, "2").unwrap();
    follow(&w, &ta, b);
    assert_eq!(ids(&follow_list(&w.env(), a, None).unwrap()), vec![b, d, c]);

    // An empty list is `[]`, and the JSON carries full users.
    let reply = body(Reply::from_result(follow_list(&w.env(), c, None)));
    assert_eq!(
        reply,
        json!({"status_code": 0, "status_msg": "success", "user_list": []})
    );
    let reply = body(Reply::from_result(follower_list(&w.env(), a, None)));
    assert_eq!(reply["user_list"][0]["id"], d);
    assert_eq!(reply["user_list"][0]["name"], "d");
    assert_eq!(reply["user_list"][0]["follow_count"], 1);
}

#[test]
fn lists_refuse_unknown_and_missing_users() {
    let w = World::new(); // unmigrated: the list migrates by itself, then finds no user
    let err = follow_list(&w.env(), 42, None).unwrap_err();
    assert_eq!(err.code, api::RELATION_USER_NOT_FOUND);
    assert_eq!(err.msg, "user 42 does not exist");
    let reply = body(Reply::from_result(follower_list(&w.env(), 42, None)));
    assert_eq!(reply["status_code"], api::RELATION_USER_NOT_FOUND);
    assert_eq!(reply["user_list"], json!([]));
    for pairs in [
        vec![],
        vec![("user_id", "")],
        vec![("user_id", "x")],
        vec![("user_id", "0")],
    ] {
        let err = social::follow_list(&w.env(), &params(&pairs)).unwrap_err();
        assert_eq!(err.code, api::BAD_PARAMETER, "{pairs:?}");
        assert!(err.msg.contains("user_id"), "{}", err.msg);
    }
}

#[test]
fn lists_are_capped_at_the_newest_relations() {
    let w = world();
    let (owner, _) = user(&w.sql, "owner");
    let total = LIST_LIMIT + 5;
    let followed = transaction(&w.sql, |tx| {
        let mut ids = Vec::new();
        for i in 0..total {
            let (id, _) = user(tx, &format!("f{i}"));
            tx.execute(
                "INSERT INTO follows (follower_id, followee_id, created_at) VALUES (?, ?, ?)",
                &[owner.into(), id.into(), (NOW + i as i64).into()],
            )?;
            ids.push(id);
        }
        Ok::<_, SqlError>(ids)
    })
    .unwrap();
    let list = follow_list(&w.env(), owner, None).unwrap();
    let expected: Vec<i64> = followed.iter().rev().take(LIST_LIMIT).copied().collect();
    assert_eq!(ids(&list), expected);
}

#[test]
fn friends_are_mutual_follows_with_the_viewers_latest_message() {
    let mut w = world();
    let (a, ta) = user(&w.sql, "a");
    let (b, tb) = user(&w.sql, "b");
    let (c, tc) = user(&w.sql, "c");
    let (d, _) = user(&w.sql, "d");
    let (_, te) = user(&w.sql, "e");
    // a↔b mutual at NOW+1, a↔c mutual at NOW+3, a→d one way, e→a one way.
    w.now_ms = NOW;
    follow(&w, &ta, b);
    w.now_ms = NOW + 1;
    follow(&w, &tb, a);
    w.now_ms = NOW + 2;
    follow(&w, &ta, c);
    follow(&w, &ta, d);
    follow(&w, &te, a);
    w.now_ms = NOW + 3;
    follow(&w, &tc, a);

    let list = friend_list(&w.env(), a, &ta).unwrap();
    let got: Vec<(i64, &str, i64, bool)> = list
        .user_list
        .iter()
        .map(|f| (f.user.id, f.message.as_str(), f.msg_type, f.user.is_follow))
        .collect();
    assert_eq!(
        got,
        vec![(c, "", 0, true), (b, "", 0, true)],
        "newest friendship first, no messages yet"
    );

    // Messages: a→b, then b→a (latest, received by a); c→a; e→a (not a friend: not listed).
    w.now_ms = NOW + 100;
    send(&w.env(), &ta, b, "hi b").unwrap();
    send(&w.env(), &tb, a, "hello a 😀").unwrap();
    send(&w.env(), &tc, a, "from c").unwrap();
    send(&w.env(), &ta, c, "to c").unwrap();
    send(&w.env(), &te, a, "stranger").unwrap();
    let list = friend_list(&w.env(), a, &ta).unwrap();
    let got: Vec<(i64, &str, i64)> = list
        .user_list
        .iter()
        .map(|f| (f.user.id, f.message.as_str(), f.msg_type))
        .collect();
    assert_eq!(got, vec![(c, "to c", 1), (b, "hello a 😀", 0)]);

    // b's own list: a, with b's latest message to a (sent by b).
    let list = friend_list(&w.env(), b, &tb).unwrap();
    assert_eq!(list.user_list.len(), 1);
    assert_eq!(
        (
            list.user_list[0].user.id,
            list.user_list[0].message.as_str(),
            list.user_list[0].msg_type
        ),
        (a, "hello a 😀", 1)
    );

    // b reads a's friend list: the entries are a's friends, the previews are b's conversations.
    let list = friend_list(&w.env(), a, &tb).unwrap();
    let got: Vec<(i64, &str, i64, bool)> = list
        .user_list
        .iter()
        .map(|f| (f.user.id, f.message.as_str(), f.msg_type, f.user.is_follow))
        .collect();
    assert_eq!(
        got,
        vec![(c, "", 0, false), (b, "", 0, false)],
        "no b–c messages, b is itself"
    );

    // The JSON: every User field flat, plus message and msgType.
    let reply = body(Reply::from_result(friend_list(&w.env(), a, &ta)));
    let entry = reply["user_list"][1].as_object().unwrap();
    let keys: BTreeSet<&str> = entry.keys().map(String::as_str).collect();
    let expected: BTreeSet<&str> = [
        "id",
        "name",
        "follow_count",
        "follower_count",
        "is_follow",
        "avatar",
        "background_image",
        "signature",
        "total_favorited",
        "work_count",
        "favorite_count",
        "message",
        "msgType",
    ]
    .into();
    assert_eq!(keys, expected);
    assert_eq!(entry["id"], b);
    assert_eq!(entry["msgType"], 0);
    assert_eq!(entry["message"], "hello a 😀");
    assert_eq!(entry["follow_count"], 1);

    // Unfollowing breaks the friendship.
    act(&w.env(), &tc, a, "2").unwrap();
    assert_eq!(ids_of(&friend_list(&w.env(), a, &ta).unwrap()), vec![b]);
}

#[test]
fn previews_include_messages_from_before_the_friendship() {
    let mut w = world();
    let (a, ta) = user(&w.sql, "a");
    let (b, tb) = user(&w.sql, "b");
    let (c, tc) = user(&w.sql, "c");
    w.now_ms = NOW;
    // Strangers chat, then become friends: the new follow rows start with the latest message.
    send(&w.env(), &ta, b, "before").unwrap();
    send(&w.env(), &tb, a, "still before").unwrap();
    follow(&w, &ta, b);
    // A message while only a→b exists, then b follows back.
    send(&w.env(), &ta, b, "one way").unwrap();
    follow(&w, &tb, a);
    let preview = |owner: i64, token: &str| -> Vec<(i64, String, i64)> {
        friend_list(&w.env(), owner, token)
            .unwrap()
            .user_list
            .into_iter()
            .map(|f| (f.user.id, f.message, f.msg_type))
            .collect()
    };
    assert_eq!(preview(a, &ta), vec![(b, "one way".to_owned(), 1)]);
    assert_eq!(preview(b, &tb), vec![(a, "one way".to_owned(), 0)]);
    // Unfollow and follow again: the preview comes back with the new row.
    act(&w.env(), &ta, b, "2").unwrap();
    send(&w.env(), &tb, a, "while apart").unwrap();
    follow(&w, &ta, b);
    assert_eq!(preview(a, &ta), vec![(b, "while apart".to_owned(), 0)]);
    // c's messages with a do not leak into a–b.
    follow(&w, &ta, c);
    follow(&w, &tc, a);
    send(&w.env(), &tc, a, "from c").unwrap();
    assert_eq!(
        preview(a, &ta),
        vec![
            (c, "from c".to_owned(), 0),
            (b, "while apart".to_owned(), 0)
        ]
    );
}

/// The preview one's own list reads by id (kept by follows and sends) is the one a search of
/// the conversation finds, through any mix of follows, unfollows and messages.
#[test]
fn kept_previews_match_searched_ones() {
    let mut w = world();
    let people: Vec<(i64, String)> = (0..5).map(|i| user(&w.sql, &format!("p{i}"))).collect();
    let urls = w.env().urls();
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
    let mut next = |n: usize| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed % n as u64) as usize
    };
    for step in 0..300 {
        w.now_ms = NOW + step / 3;
        let (from, to) = (next(5), next(5));
        if from == to {
            continue;
        }
        let (to_id, from_token) = (people[to].0, &people[from].1);
        match next(4) {
            0 => act(&w.env(), from_token, to_id, "2").unwrap(),
            1 => act(&w.env(), from_token, to_id, "1").unwrap(),
            _ => send(&w.env(), from_token, to_id, &format!("m{step}")).unwrap(),
        }
        for (owner, _) in &people {
            let kept = tikspin_core::follows::friends_with_previews(
                &w.sql,
                *owner,
                Previews::Own,
                LIST_LIMIT,
                &urls,
            )
            .unwrap();
            let searched = tikspin_core::follows::friends_with_previews(
                &w.sql,
                *owner,
                Previews::Viewer(*owner),
                LIST_LIMIT,
                &urls,
            )
            .unwrap();
            assert_eq!(kept, searched, "step {step}, owner {owner}");
        }
    }
}

#[test]
fn friend_list_requires_a_token_of_a_living_user_and_a_known_owner() {
    let w = world();
    let (a, ta) = user(&w.sql, "a");
    let (_, tgone) = deleted_user(&w.sql, "gone");
    let a_s = a.to_string();
    let cases: Vec<(Pairs, i32)> = vec![
        (vec![("user_id", &a_s)], api::AUTH_REQUIRED),
        (
            vec![("user_id", &a_s), ("token", "x.y.z")],
            api::INVALID_TOKEN,
        ),
        (
            vec![("user_id", &a_s), ("token", &tgone)],
            api::INVALID_TOKEN,
        ),
        (vec![("token", &ta)], api::BAD_PARAMETER),
        (
            vec![("user_id", "31337"), ("token", &ta)],
            api::RELATION_USER_NOT_FOUND,
        ),
    ];
    for (pairs, code) in cases {
        let reply = body(Reply::from_result(social::friend_list(
            &w.env(),
            &params(&pairs),
        )));
        assert_eq!(reply["status_code"], code, "{pairs:?}");
        assert!(!reply["status_msg"].as_str().unwrap().is_empty());
        assert_eq!(reply["user_list"], json!([]));
    }
    assert!(friend_list(&w.env(), a, &ta).unwrap().user_list.is_empty());
}

/// One owner with `n` followees who all follow back and each exchanged a message with the owner.
fn populate(sql: &dyn Sql, n: usize) -> (i64, String) {
    transaction(sql, |tx| {
        let (owner, token) = user(tx, "owner");
        for i in 0..n {
            let (id, _) = user(tx, &format!("f{i}"));
            for (from, to) in [(owner, id), (id, owner)] {
                tikspin_core::follows::follow(tx, from, to, NOW + i as i64)?;
            }
            let (lo, hi) = (owner.min(id), owner.max(id));
            for t in 0..3 {
                tx.execute(
                    "INSERT INTO messages (user_lo, user_hi, from_user_id, to_user_id, content, create_time) \
                     VALUES (?, ?, ?, ?, ?, ?)",
                    &[lo.into(), hi.into(), id.into(), owner.into(), format!("m{i}-{t}").into(), (NOW + t).into()],
                )?;
                tikspin_core::follows::message_sent(tx, id, owner, NOW + t)?;
            }
        }
        Ok::<_, SqlError>((owner, token))
    })
    .unwrap()
}

#[test]
fn lists_run_a_constant_number_of_statements() {
    let mut per_size = Vec::new();
    for n in [1, 500] {
        let w = world();
        let (owner, token) = populate(&w.sql, n);
        let (_, viewer_token) = user(&w.sql, "viewer");
        let counting = CountingSql::new(&w.sql);
        let env = Env {
            sql: &counting,
            ..w.env()
        };

        let mut calls = Vec::new();
        type Call<'a> = &'a dyn Fn() -> Result<UserList, ApiError>;
        let lists: [(Call, &str); 3] = [
            (&|| follow_list(&env, owner, None), "anonymous"),
            (&|| follow_list(&env, owner, Some(&viewer_token)), "viewer"),
            (&|| follower_list(&env, owner, Some(&token)), "owner"),
        ];
        for (list, who) in lists {
            counting.reset();
            assert_eq!(list().unwrap().user_list.len(), n, "{who}");
            calls.push(counting.calls());
        }
        counting.reset();
        let friends = friend_list(&env, owner, &token).unwrap();
        assert_eq!(friends.user_list.len(), n);
        assert!(friends
            .user_list
            .iter()
            .all(|f| f.msg_type == 0 && f.message.ends_with("-2")));
        calls.push(counting.calls());
        counting.reset();
        friend_list(&env, owner, &viewer_token).unwrap();
        calls.push(counting.calls());
        per_size.push(calls);
    }
    assert_eq!(
        per_size[0], per_size[1],
        "statements must not grow with the list"
    );
    // The owner's own friend list skips the follows lookup (every friend is followed).
    assert_eq!(per_size[0], vec![2, 3, 3, 2, 3]);
}

#[test]
fn friend_list_of_1_vs_100_runs_the_same_statements() {
    let mut per_size = Vec::new();
    for n in [1, 100] {
        let w = world();
        let (owner, token) = populate(&w.sql, n);
        let counting = CountingSql::new(&w.sql);
        let env = Env {
            sql: &counting,
            ..w.env()
        };
        let list = friend_list(&env, owner, &token).unwrap().user_list;
        assert_eq!(list.len(), n);
        assert!(
            list.iter().all(|f| f.user.is_follow),
            "one's friends are all followed"
        );
        per_size.push(counting.calls());
    }
    assert_eq!(per_size, vec![2, 2]);
}

#[test]
fn relation_action_statements() {
    let w = world();
    let (_, ta) = user(&w.sql, "a");
    let (b, _) = user(&w.sql, "b");
    let counting = CountingSql::new(&w.sql);
    let env = Env {
        sql: &counting,
        ..w.env()
    };
    let mut calls = Vec::new();
    for action in ["1", "1", "2", "2"] {
        act(&env, &ta, b, action).unwrap();
        calls.push(counting.calls());
        counting.reset();
    }
    // Each includes the write transaction's `PRAGMA synchronous` (SQLite only). A new follow
    // also asks whether the reverse follow exists (by setting its `friend_since`), an unfollow
    // clears the reverse row's `friend_since`.
    assert_eq!(calls, vec![9, 6, 8, 6]);
}

fn friend_query_plan(previews: Previews) -> String {
    let sql = SqliteSql::memory();
    migrate(&sql).unwrap();
    let params = match previews {
        Previews::Own => 1,
        Previews::Viewer(_) => 5,
    };
    let plan = sql
        .query(
            &format!(
                "EXPLAIN QUERY PLAN {}",
                tikspin_core::follows::friends_statement(
                    tikspin_core::Dialect::Sqlite,
                    LIST_LIMIT,
                    previews
                )
            ),
            &vec![tikspin_core::Value::Int(1); params],
        )
        .unwrap();
    let details: Vec<String> = plan.iter().map(|r| r.text(3).unwrap().to_owned()).collect();
    details.join("\n")
}

#[test]
fn friend_query_reads_friendships_and_latest_messages_by_index() {
    for previews in [Previews::Own, Previews::Viewer(2)] {
        let text = friend_query_plan(previews);
        assert!(
            text.contains("COVERING INDEX follows_friends"),
            "friends (and their last message ids) come from the friendship index alone:\n{text}"
        );
        assert!(
            !text.contains("SCAN a") && !text.contains("TEMP B-TREE"),
            "no scan of follows, no sort:\n{text}"
        );
        assert!(
            !text.contains("SCAN x") && !text.contains("SCAN m"),
            "no scan of messages:\n{text}"
        );
    }
    // One's own list reads each preview by the id its follow row keeps.
    let own = friend_query_plan(Previews::Own);
    assert!(
        !own.contains("messages_conversation_time"),
        "no search for the latest message:\n{own}"
    );
    // Another viewer's previews are found in the conversation index.
    let other = friend_query_plan(Previews::Viewer(2));
    assert!(
        other.contains("COVERING INDEX messages_conversation_time"),
        "the latest message's id comes from the conversation index alone:\n{other}"
    );
}

#[test]
fn concurrent_follows_keep_counters_equal_to_rows() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("social.db");
    let setup = SqliteSql::open(&path).unwrap();
    migrate(&setup).unwrap();
    let people: Vec<(i64, String)> = (0..6).map(|i| user(&setup, &format!("u{i}"))).collect();
    let people = Arc::new(people);
    const THREADS: usize = 8;
    const ROUNDS: usize = 25;
    let barrier = Arc::new(Barrier::new(THREADS));
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let (people, barrier, path) = (people.clone(), barrier.clone(), path.clone());
            std::thread::spawn(move || {
                let w = World::with_sql(SqliteSql::open(&path).unwrap());
                barrier.wait();
                for r in 0..ROUNDS {
                    // Everyone hammers the same pair 0→1, and each thread its own pairs too.
                    let action = if (t + r) % 2 == 0 { "1" } else { "2" };
                    act(&w.env(), &people[0].1, people[1].0, action).unwrap();
                    let from = &people[t % people.len()];
                    let to = &people[(t + r % 5 + 1) % people.len()];
                    act(&w.env(), &from.1, to.0, if r % 3 == 2 { "2" } else { "1" }).unwrap();
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let mut total = 0;
    for (id, _) in people.iter() {
        let (follows_n, followers_n) = counters(&setup, *id);
        let rows_out = setup
            .query(
                "SELECT COUNT(*) FROM follows WHERE follower_id = ?",
                &[(*id).into()],
            )
            .unwrap()
            .scalar_i64()
            .unwrap();
        let rows_in = setup
            .query(
                "SELECT COUNT(*) FROM follows WHERE followee_id = ?",
                &[(*id).into()],
            )
            .unwrap()
            .scalar_i64()
            .unwrap();
        assert_eq!((follows_n, followers_n), (rows_out, rows_in), "user {id}");
        total += rows_out;
    }
    assert!(total > 0, "the run must leave some follows behind");
    assert_eq!(
        count(
            &setup,
            "SELECT COUNT(*) FROM follows WHERE follower_id = followee_id"
        ),
        0
    );
}

#[test]
fn a_friendship_dates_from_the_second_follow_and_ends_with_either_unfollow() {
    let mut w = world();
    let (a, ta) = user(&w.sql, "a");
    let (b, tb) = user(&w.sql, "b");
    let (c, tc) = user(&w.sql, "c");
    let since = |w: &World, from: i64, to: i64| -> Option<i64> {
        let rows = w
            .sql
            .query(
                "SELECT friend_since FROM follows WHERE follower_id = ? AND followee_id = ?",
                &[from.into(), to.into()],
            )
            .unwrap();
        rows.first().and_then(|r| r.opt_i64(0).unwrap())
    };
    w.now_ms = NOW;
    follow(&w, &ta, b);
    assert_eq!(since(&w, a, b), None, "a one-way follow is no friendship");
    w.now_ms = NOW + 10;
    follow(&w, &tb, a);
    assert_eq!(
        (since(&w, a, b), since(&w, b, a)),
        (Some(NOW + 10), Some(NOW + 10))
    );
    w.now_ms = NOW + 20;
    follow(&w, &tc, a);
    follow(&w, &ta, c);
    assert_eq!(ids_of(&friend_list(&w.env(), a, &ta).unwrap()), vec![c, b]);

    // b leaves and comes back: the friendship is new again, so b is now the newest.
    w.now_ms = NOW + 30;
    act(&w.env(), &tb, a, "2").unwrap();
    assert_eq!(since(&w, a, b), None, "the remaining row is one-way again");
    assert_eq!(ids_of(&friend_list(&w.env(), a, &ta).unwrap()), vec![c]);
    w.now_ms = NOW + 40;
    follow(&w, &tb, a);
    assert_eq!(since(&w, b, a), Some(NOW + 40));
    assert_eq!(ids_of(&friend_list(&w.env(), a, &ta).unwrap()), vec![b, c]);
    // Following again changes nothing, the time included.
    w.now_ms = NOW + 50;
    follow(&w, &ta, b);
    assert_eq!(since(&w, a, b), Some(NOW + 40));
    // The other side ending it works the same.
    act(&w.env(), &ta, c, "2").unwrap();
    assert_eq!(since(&w, c, a), None);
    assert_eq!(ids_of(&friend_list(&w.env(), a, &ta).unwrap()), vec![b]);
    assert_eq!(
        ids_of(&friend_list(&w.env(), c, &tc).unwrap()),
        Vec::<i64>::new()
    );
}

fn ids_of(list: &FriendList) -> Vec<i64> {
    list.user_list.iter().map(|f| f.user.id).collect()
}

#[test]
fn a_database_from_before_friend_since_is_upgraded_by_the_first_friend_list() {
    // Schema version 1 as an older release left it, with follows made then.
    let w = World::new();
    let v1 = &tikspin_core::schema::MIGRATIONS[0];
    assert_eq!(v1.version, 1);
    w.sql
        .execute(
            tikspin_core::schema::schema_version_table(tikspin_core::Dialect::Sqlite),
            &[],
        )
        .unwrap();
    for statement in v1.statements(tikspin_core::Dialect::Sqlite) {
        w.sql.execute(statement, &[]).unwrap();
    }
    w.sql
        .execute(
            "INSERT INTO schema_version (version, applied_at) VALUES (1, 0)",
            &[],
        )
        .unwrap();
    let (a, ta) = user(&w.sql, "a");
    let (b, _) = user(&w.sql, "b");
    let (c, _) = user(&w.sql, "c");
    let (d, _) = user(&w.sql, "d");
    // a↔b became friends at +5 (b followed back), a↔c at +3 (a followed back), a→d one way.
    for (from, to, at) in [(a, b, 1), (c, a, 2), (a, c, 3), (b, a, 5), (a, d, 6)] {
        w.sql
            .execute(
                "INSERT INTO follows (follower_id, followee_id, created_at) VALUES (?, ?, ?)",
                &[from.into(), to.into(), (NOW + at).into()],
            )
            .unwrap();
    }

    // Messages of the older release: a–b twice (b's is the latest), none with c.
    for (from, to, text, at) in [(a, b, "ab", 7), (b, a, "ba", 8)] {
        w.sql
            .execute(
                "INSERT INTO messages (user_lo, user_hi, from_user_id, to_user_id, content, create_time) \
                 VALUES (?, ?, ?, ?, ?, ?)",
                &[a.min(b).into(), a.max(b).into(), from.into(), to.into(), text.into(), (NOW + at).into()],
            )
            .unwrap();
    }

    // The friend list's statement finds no `friend_since`, migrates, and runs again.
    let list = friend_list(&w.env(), a, &ta).unwrap();
    assert_eq!(ids_of(&list), vec![b, c]);
    let previews: Vec<(&str, i64)> = list
        .user_list
        .iter()
        .map(|f| (f.message.as_str(), f.msg_type))
        .collect();
    assert_eq!(previews, vec![("ba", 0), ("", 0)], "backfilled previews");
    assert_eq!(
        tikspin_core::migrate::current_version(&w.sql).unwrap(),
        tikspin_core::schema::latest_version()
    );
    let since: Vec<(i64, i64, Option<i64>)> = w
        .sql
        .query(
            "SELECT follower_id, followee_id, friend_since FROM follows ORDER BY id",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.i64(0).unwrap(), r.i64(1).unwrap(), r.opt_i64(2).unwrap()))
        .collect();
    assert_eq!(
        since,
        vec![
            (a, b, Some(NOW + 5)),
            (c, a, Some(NOW + 3)),
            (a, c, Some(NOW + 3)),
            (b, a, Some(NOW + 5)),
            (a, d, None),
        ]
    );
    // Running the migrations again changes nothing.
    assert_eq!(
        migrate(&w.sql).unwrap(),
        tikspin_core::schema::latest_version()
    );
}
