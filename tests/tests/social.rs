//! End to end: the `social` route group (`/douyin/relation/...`) over HTTP, against the real
//! `user`, `social` and `chat` components (in the whole app) served by the real host.

use std::collections::BTreeSet;

use serde_json::Value;
use tikspin_e2e::api::{
    assert_user_shape, envelope, expect_ok, expect_refused, query, register, User as U,
};
use tikspin_e2e::client::Client;
use tikspin_e2e::harness::TestHost;

// ---- the app under test -------------------------------------------------------------------

/// The whole app of `spin.toml` (or `TIKSPIN_BASE_URL`). `user` registers the users this suite
/// works with; the other components stay out of the way (the embedded layout has no Redis
/// trigger; the welcome video is seeded only by a feed request, which this suite never makes).
fn host() -> TestHost {
    TestHost::app()
}

// ---- requests -------------------------------------------------------------------------------

/// `user_list`, which must be an array whatever happened.
#[track_caller]
fn user_list(v: &Value) -> &Vec<Value> {
    v["user_list"]
        .as_array()
        .unwrap_or_else(|| panic!("user_list must be an array: {v}"))
}

#[track_caller]
fn ids(v: &Value) -> Vec<i64> {
    user_list(v)
        .iter()
        .map(|u| u["id"].as_i64().unwrap())
        .collect()
}

#[track_caller]
fn id_set(v: &Value) -> BTreeSet<i64> {
    let ids = ids(v);
    let set: BTreeSet<i64> = ids.iter().copied().collect();
    assert_eq!(set.len(), ids.len(), "a user listed twice: {v}");
    set
}

/// POST relation/action with the given parameters (absent ones omitted).
fn relation_raw(c: &Client, pairs: &[(&str, &str)]) -> Value {
    envelope(c.post_empty(&format!("/douyin/relation/action/?{}", query(pairs))))
}

fn relation(c: &Client, from: &U, to: i64, action: &str) -> Value {
    relation_raw(
        c,
        &[
            ("token", &from.token),
            ("to_user_id", &to.to_string()),
            ("action_type", action),
        ],
    )
}

#[track_caller]
fn follow(c: &Client, from: &U, to: &U) {
    expect_ok(&relation(c, from, to.id, "1"));
}

#[track_caller]
fn unfollow(c: &Client, from: &U, to: &U) {
    expect_ok(&relation(c, from, to.id, "2"));
}

/// `user` as `viewer` sees it through GET /douyin/user/.
#[track_caller]
fn profile(c: &Client, viewer: &U, user: i64) -> Value {
    let v = envelope(c.get(&format!(
        "/douyin/user/?{}",
        query(&[("user_id", &user.to_string()), ("token", &viewer.token)])
    )));
    expect_ok(&v);
    assert_user_shape(&v["user"]);
    v["user"].clone()
}

/// (follow_count, follower_count) of `user`.
#[track_caller]
fn counts(c: &Client, viewer: &U, user: i64) -> (i64, i64) {
    let u = profile(c, viewer, user);
    (
        u["follow_count"].as_i64().unwrap(),
        u["follower_count"].as_i64().unwrap(),
    )
}

/// GET relation/{kind}/list/ with the given parameters.
fn list_raw(c: &Client, kind: &str, pairs: &[(&str, &str)]) -> Value {
    let v = envelope(c.get(&format!("/douyin/relation/{kind}/list/?{}", query(pairs))));
    user_list(&v);
    v
}

#[track_caller]
fn list(c: &Client, kind: &str, user: i64, viewer: Option<&U>) -> Value {
    let id = user.to_string();
    let mut pairs = vec![("user_id", id.as_str())];
    if let Some(viewer) = viewer {
        pairs.push(("token", viewer.token.as_str()));
    }
    let v = list_raw(c, kind, &pairs);
    expect_ok(&v);
    for u in user_list(&v) {
        assert_user_shape(u);
    }
    v
}

fn entry(v: &Value, id: i64) -> Value {
    user_list(v)
        .iter()
        .find(|u| u["id"] == id)
        .cloned()
        .unwrap_or_else(|| panic!("user {id} not listed: {v}"))
}

fn send(c: &Client, from: &U, to: &U, content: &str) {
    let v = envelope(c.post_empty(&format!(
        "/douyin/message/action/?{}",
        query(&[
            ("token", &from.token),
            ("to_user_id", &to.id.to_string()),
            ("action_type", "1"),
            ("content", content)
        ])
    )));
    expect_ok(&v);
}

/// The counters of `u` agree with its lists; returns (follow ids, follower ids).
#[track_caller]
fn consistent(c: &Client, viewer: &U, u: &U) -> (BTreeSet<i64>, BTreeSet<i64>) {
    let (follow_count, follower_count) = counts(c, viewer, u.id);
    let follows = id_set(&list(c, "follow", u.id, None));
    let followers = id_set(&list(c, "follower", u.id, None));
    assert_eq!(
        follow_count as usize,
        follows.len(),
        "{}: follow_count {follow_count} but follow list {follows:?}",
        u.name
    );
    assert_eq!(
        follower_count as usize,
        followers.len(),
        "{}: follower_count {follower_count} but follower list {followers:?}",
        u.name
    );
    (follows, followers)
}

// ---- flows ------------------------------------------------------------------------------------

#[test]
fn follow_moves_both_counts_and_both_lists() {
    let h = host();
    let c = &h.client;
    let (a, b, x) = (
        register(c, "alice"),
        register(c, "bob"),
        register(c, "xena"),
    );

    follow(c, &a, &b);
    assert_eq!(counts(c, &a, a.id), (1, 0), "the follower's follow_count");
    assert_eq!(counts(c, &a, b.id), (0, 1), "the followee's follower_count");
    assert_eq!(
        counts(c, &x, b.id),
        (0, 1),
        "a third party sees the same counts"
    );
    assert_eq!(
        counts(c, &x, x.id),
        (0, 0),
        "a bystander's counts do not move"
    );
    assert_eq!(profile(c, &a, b.id)["is_follow"], true, "alice follows bob");
    assert_eq!(
        profile(c, &x, b.id)["is_follow"],
        false,
        "xena does not follow bob"
    );
    assert_eq!(
        profile(c, &b, a.id)["is_follow"],
        false,
        "bob does not follow alice"
    );

    // alice's follow list: [bob], is_follow relative to the viewer.
    let anon = list(c, "follow", a.id, None);
    assert_eq!(ids(&anon), vec![b.id]);
    assert_eq!(
        entry(&anon, b.id)["is_follow"],
        false,
        "anonymous viewers never follow"
    );
    assert_eq!(entry(&anon, b.id)["name"], b.name.as_str());
    assert_eq!(entry(&anon, b.id)["follower_count"], 1);
    assert_eq!(
        entry(&list(c, "follow", a.id, Some(&a)), b.id)["is_follow"],
        true,
        "alice viewing her own follows"
    );
    assert_eq!(
        entry(&list(c, "follow", a.id, Some(&b)), b.id)["is_follow"],
        false,
        "bob viewing himself"
    );
    assert_eq!(
        entry(&list(c, "follow", a.id, Some(&x)), b.id)["is_follow"],
        false,
        "xena does not follow bob"
    );
    // A token that fails verification is served as anonymous, not refused.
    let stale = list_raw(
        c,
        "follow",
        &[("user_id", &a.id.to_string()), ("token", "not-a-token")],
    );
    expect_ok(&stale);
    assert_eq!(ids(&stale), vec![b.id]);
    assert_eq!(entry(&stale, b.id)["is_follow"], false);

    // bob's follower list: [alice].
    let followers = list(c, "follower", b.id, None);
    assert_eq!(ids(&followers), vec![a.id]);
    assert_eq!(entry(&followers, a.id)["is_follow"], false);
    assert_eq!(entry(&followers, a.id)["follow_count"], 1);
    assert_eq!(
        entry(&list(c, "follower", b.id, Some(&b)), a.id)["is_follow"],
        false,
        "bob does not follow alice yet"
    );
    assert_eq!(
        entry(&list(c, "follower", b.id, Some(&a)), a.id)["is_follow"],
        false,
        "alice viewing herself"
    );

    // The other directions stay empty.
    assert!(user_list(&list(c, "follower", a.id, None)).is_empty());
    assert!(user_list(&list(c, "follow", b.id, None)).is_empty());

    // bob follows back: now he follows the follower he sees.
    follow(c, &b, &a);
    assert_eq!(
        entry(&list(c, "follower", b.id, Some(&b)), a.id)["is_follow"],
        true
    );
    assert_eq!(counts(c, &x, a.id), (1, 1));
    assert_eq!(counts(c, &x, b.id), (1, 1));

    // A second followee: both listed, once each.
    follow(c, &a, &x);
    assert_eq!(
        id_set(&list(c, "follow", a.id, None)),
        BTreeSet::from([b.id, x.id])
    );
    assert_eq!(counts(c, &a, a.id), (2, 1));
    assert_eq!(counts(c, &a, x.id), (0, 1));

    // Unfollow undoes it.
    unfollow(c, &a, &b);
    assert_eq!(ids(&list(c, "follow", a.id, None)), vec![x.id]);
    assert!(user_list(&list(c, "follower", b.id, None)).is_empty());
    assert_eq!(counts(c, &x, a.id), (1, 1));
    assert_eq!(counts(c, &x, b.id), (1, 0));
    assert_eq!(profile(c, &a, b.id)["is_follow"], false);

    // The paths also answer without their trailing slash.
    let v = envelope(c.get(&format!("/douyin/relation/follow/list?user_id={}", a.id)));
    expect_ok(&v);
    assert_eq!(ids(&v), vec![x.id]);
    let v = envelope(c.post_empty(&format!(
        "/douyin/relation/action?{}",
        query(&[
            ("token", &a.token),
            ("to_user_id", &b.id.to_string()),
            ("action_type", "1")
        ])
    )));
    expect_ok(&v);
    assert_eq!(counts(c, &x, b.id), (1, 1));
    // The token may come as a bearer header.
    let v = envelope(c.get_with(
        &format!("/douyin/relation/follow/list/?user_id={}", a.id),
        &[("authorization", &format!("Bearer {}", a.token))],
    ));
    expect_ok(&v);
    assert_eq!(entry(&v, b.id)["is_follow"], true);
}

#[test]
fn follow_and_unfollow_are_idempotent() {
    let h = host();
    let c = &h.client;
    let (a, b) = (register(c, "ida"), register(c, "ivan"));

    // Unfollowing someone never followed succeeds and changes nothing.
    unfollow(c, &a, &b);
    assert_eq!(consistent(c, &a, &a), (BTreeSet::new(), BTreeSet::new()));
    assert_eq!(counts(c, &a, b.id), (0, 0));

    for _ in 0..3 {
        follow(c, &a, &b);
    }
    assert_eq!(
        counts(c, &a, a.id),
        (1, 0),
        "following three times counts once"
    );
    assert_eq!(counts(c, &a, b.id), (0, 1));
    assert_eq!(ids(&list(c, "follow", a.id, None)), vec![b.id]);
    assert_eq!(ids(&list(c, "follower", b.id, None)), vec![a.id]);

    for _ in 0..3 {
        unfollow(c, &a, &b);
    }
    assert_eq!(
        counts(c, &a, a.id),
        (0, 0),
        "unfollowing three times goes down once"
    );
    assert_eq!(counts(c, &a, b.id), (0, 0));
    assert!(user_list(&list(c, "follow", a.id, None)).is_empty());
    assert!(user_list(&list(c, "follower", b.id, None)).is_empty());

    follow(c, &a, &b);
    assert_eq!(
        counts(c, &a, b.id),
        (0, 1),
        "following again after unfollowing counts"
    );
}

#[test]
fn following_yourself_is_refused() {
    let h = host();
    let c = &h.client;
    let a = register(c, "narcis");
    for action in ["1", "2"] {
        let v = relation(c, &a, a.id, action);
        expect_refused(&v);
        assert!(
            v["status_msg"]
                .as_str()
                .unwrap()
                .to_lowercase()
                .contains("yourself"),
            "{v}"
        );
    }
    assert_eq!(counts(c, &a, a.id), (0, 0));
    assert!(user_list(&list(c, "follow", a.id, None)).is_empty());
    assert!(user_list(&list(c, "follower", a.id, None)).is_empty());
    assert!(user_list(&list(c, "friend", a.id, Some(&a))).is_empty());
}

#[test]
fn friend_list_is_mutual_follows_with_message_previews() {
    let h = host();
    let c = &h.client;
    let (a, b, e, one_way, fan) = (
        register(c, "fa"),
        register(c, "fb"),
        register(c, "fe"),
        register(c, "oneway"),
        register(c, "fan"),
    );

    // Nothing mutual yet.
    follow(c, &a, &b);
    follow(c, &a, &one_way); // a → one_way only
    follow(c, &fan, &a); // fan → a only
    assert!(
        user_list(&list(c, "friend", a.id, Some(&a))).is_empty(),
        "one-way follows are not friends"
    );

    follow(c, &b, &a);
    follow(c, &a, &e);
    follow(c, &e, &a);
    let v = list(c, "friend", a.id, Some(&a));
    assert_eq!(
        id_set(&v),
        BTreeSet::from([b.id, e.id]),
        "friends are the mutual follows: {v}"
    );
    for f in user_list(&v) {
        assert_eq!(f["message"], "", "no message yet: {f}");
        assert_eq!(f["msgType"], 0, "{f}");
        assert_eq!(f["is_follow"], true, "the viewer follows a friend: {f}");
        assert!(f.get("msg_type").is_none(), "the key is msgType: {f}");
    }
    let fb = entry(&v, b.id);
    assert_eq!(fb["name"], b.name.as_str());
    assert_eq!(
        (fb["follow_count"].as_i64(), fb["follower_count"].as_i64()),
        (Some(1), Some(1))
    );
    assert_eq!(ids(&list(c, "friend", b.id, Some(&b))), vec![a.id]);

    // a writes to b: a sent it (1), b received it (0).
    send(c, &a, &b, "hi bob");
    let fb = entry(&list(c, "friend", a.id, Some(&a)), b.id);
    assert_eq!(
        (fb["message"].as_str(), fb["msgType"].as_i64()),
        (Some("hi bob"), Some(1)),
        "{fb}"
    );
    let fa = entry(&list(c, "friend", b.id, Some(&b)), a.id);
    assert_eq!(
        (fa["message"].as_str(), fa["msgType"].as_i64()),
        (Some("hi bob"), Some(0)),
        "{fa}"
    );
    // e's preview is still empty: previews are per conversation.
    let fe = entry(&list(c, "friend", a.id, Some(&a)), e.id);
    assert_eq!(
        (fe["message"].as_str(), fe["msgType"].as_i64()),
        (Some(""), Some(0)),
        "{fe}"
    );

    // b replies: the latest message wins, directions swap.
    send(c, &b, &a, "你好 👋 alice");
    let fb = entry(&list(c, "friend", a.id, Some(&a)), b.id);
    assert_eq!(
        (fb["message"].as_str(), fb["msgType"].as_i64()),
        (Some("你好 👋 alice"), Some(0)),
        "{fb}"
    );
    let fa = entry(&list(c, "friend", b.id, Some(&b)), a.id);
    assert_eq!(
        (fa["message"].as_str(), fa["msgType"].as_i64()),
        (Some("你好 👋 alice"), Some(1)),
        "{fa}"
    );

    // Messages with a non-friend do not make a friend.
    send(c, &one_way, &a, "follow me back?");
    assert_eq!(
        id_set(&list(c, "friend", a.id, Some(&a))),
        BTreeSet::from([b.id, e.id])
    );

    // Unfollowing ends the friendship, on both sides.
    unfollow(c, &e, &a);
    assert_eq!(ids(&list(c, "friend", a.id, Some(&a))), vec![b.id]);
    assert!(user_list(&list(c, "friend", e.id, Some(&e))).is_empty());

    // A user with no friends: [].
    assert!(user_list(&list(c, "friend", fan.id, Some(&fan))).is_empty());
}

// ---- bad input ----------------------------------------------------------------------------------

#[test]
fn bad_relation_input_is_refused_and_writes_nothing() {
    let h = host();
    let c = &h.client;
    let (a, b) = (register(c, "bad_a"), register(c, "bad_b"));
    let (aid, bid) = (a.id.to_string(), b.id.to_string());
    let tok = a.token.as_str();

    let cases: Vec<(&str, Vec<(&str, &str)>)> = vec![
        ("unknown to_user_id", vec![("token", tok), ("to_user_id", "987654321"), ("action_type", "1")]),
        ("unknown to_user_id, unfollow", vec![("token", tok), ("to_user_id", "987654321"), ("action_type", "2")]),
        ("non-numeric to_user_id", vec![("token", tok), ("to_user_id", "abc"), ("action_type", "1")]),
        ("negative to_user_id", vec![("token", tok), ("to_user_id", "-5"), ("action_type", "1")]),
        ("zero to_user_id", vec![("token", tok), ("to_user_id", "0"), ("action_type", "1")]),
        ("overflowing to_user_id", vec![("token", tok), ("to_user_id", "99999999999999999999999"), ("action_type", "1")]),
        ("missing to_user_id", vec![("token", tok), ("action_type", "1")]),
        ("action_type 3", vec![("token", tok), ("to_user_id", &bid), ("action_type", "3")]),
        ("action_type 0", vec![("token", tok), ("to_user_id", &bid), ("action_type", "0")]),
        ("action_type text", vec![("token", tok), ("to_user_id", &bid), ("action_type", "follow")]),
        ("missing action_type", vec![("token", tok), ("to_user_id", &bid)]),
        ("missing token", vec![("to_user_id", &bid), ("action_type", "1")]),
        ("empty token", vec![("token", ""), ("to_user_id", &bid), ("action_type", "1")]),
        ("garbage token", vec![("token", "garbage"), ("to_user_id", &bid), ("action_type", "1")]),
        (
            "forged token",
            vec![
                ("token", "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOjEsImV4cCI6OTk5OTk5OTk5OX0.c2lnbmF0dXJlLW5vdC12YWxpZA"),
                ("to_user_id", &bid),
                ("action_type", "1"),
            ],
        ),
        ("following yourself", vec![("token", tok), ("to_user_id", &aid), ("action_type", "1")]),
    ];
    for (what, pairs) in &cases {
        let v = relation_raw(c, pairs);
        assert_ne!(v["status_code"], 0, "{what}: must be refused: {v}");
        assert!(
            !v["status_msg"].as_str().unwrap().trim().is_empty(),
            "{what}: needs a status_msg: {v}"
        );
    }
    // The messages say what was wrong.
    let msg = |pairs: &[(&str, &str)]| {
        relation_raw(c, pairs)["status_msg"]
            .as_str()
            .unwrap()
            .to_lowercase()
    };
    assert!(
        msg(&[("token", tok), ("to_user_id", "abc"), ("action_type", "1")]).contains("to_user_id")
    );
    assert!(
        msg(&[("token", tok), ("to_user_id", &bid), ("action_type", "3")]).contains("action_type")
    );
    assert!(msg(&[
        ("token", tok),
        ("to_user_id", "987654321"),
        ("action_type", "1")
    ])
    .contains("987654321"));
    assert!(
        msg(&[("to_user_id", &bid), ("action_type", "1")]).contains("token")
            || msg(&[("to_user_id", &bid), ("action_type", "1")]).contains("log in")
    );

    // Nothing was written.
    assert_eq!(consistent(c, &b, &a), (BTreeSet::new(), BTreeSet::new()));
    assert_eq!(consistent(c, &a, &b), (BTreeSet::new(), BTreeSet::new()));
    assert_eq!(counts(c, &a, a.id), (0, 0));
    assert_eq!(counts(c, &a, b.id), (0, 0));

    // A GET on the action is a wrong method (405), with the envelope.
    let r = c.get(&format!(
        "/douyin/relation/action/?{}",
        query(&[("token", tok), ("to_user_id", &bid), ("action_type", "1")])
    ));
    assert_eq!(r.status, 405, "{}", r.text());
    assert_ne!(r.json()["status_code"], 0);
    assert_eq!(counts(c, &a, b.id), (0, 0), "a GET must not follow");
    let r = c.get("/douyin/relation/nothing/");
    assert_eq!(r.status, 404, "{}", r.text());
}

#[test]
fn lists_are_arrays_on_errors_and_empty_results() {
    let h = host();
    let c = &h.client;
    let a = register(c, "lonely");
    let aid = a.id.to_string();

    // Empty results.
    for kind in ["follow", "follower"] {
        let v = list(c, kind, a.id, None);
        assert_eq!(v["user_list"], serde_json::json!([]), "{kind}: {v}");
        let v = list(c, kind, a.id, Some(&a));
        assert_eq!(v["user_list"], serde_json::json!([]), "{kind}: {v}");
    }
    let v = list(c, "friend", a.id, Some(&a));
    assert_eq!(v["user_list"], serde_json::json!([]), "{v}");

    // Errors: refused, with user_list [] (list_raw checks it is an array).
    let bad: Vec<(&str, &str, Vec<(&str, &str)>)> = vec![
        ("follow", "unknown user", vec![("user_id", "987654321")]),
        ("follow", "non-numeric user_id", vec![("user_id", "abc")]),
        ("follow", "missing user_id", vec![]),
        (
            "follower",
            "unknown user",
            vec![("user_id", "987654321"), ("token", &a.token)],
        ),
        ("follower", "non-numeric user_id", vec![("user_id", "1x")]),
        ("follower", "missing user_id", vec![("token", &a.token)]),
        ("friend", "missing token", vec![("user_id", &aid)]),
        (
            "friend",
            "invalid token",
            vec![("user_id", &aid), ("token", "garbage")],
        ),
        (
            "friend",
            "unknown user",
            vec![("user_id", "987654321"), ("token", &a.token)],
        ),
        (
            "friend",
            "non-numeric user_id",
            vec![("user_id", "me"), ("token", &a.token)],
        ),
        ("friend", "missing user_id", vec![("token", &a.token)]),
    ];
    for (kind, what, pairs) in &bad {
        let v = list_raw(c, kind, pairs);
        expect_refused(&v);
        assert_eq!(
            v["user_list"],
            serde_json::json!([]),
            "{kind} list, {what}: {v}"
        );
    }
}

// ---- concurrency --------------------------------------------------------------------------------

#[test]
fn concurrent_follow_unfollow_of_one_pair_keeps_counts_exact() {
    let h = host();
    let c = &h.client;
    let (a, b, x) = (register(c, "pa"), register(c, "pb"), register(c, "px"));

    // Mixed follows and unfollows, both directions, from several threads.
    std::thread::scope(|s| {
        for t in 0..6 {
            let (a, b) = (&a, &b);
            s.spawn(move || {
                for i in 0..12 {
                    let (from, to) = if t % 3 == 2 { (b, a) } else { (a, b) };
                    let action = if (i + t) % 2 == 0 { "1" } else { "2" };
                    expect_ok(&relation(c, from, to.id, action));
                }
            });
        }
    });
    let (a_follows, a_followers) = consistent(c, &x, &a);
    let (b_follows, b_followers) = consistent(c, &x, &b);
    assert!(
        a_follows.len() <= 1
            && a_followers.len() <= 1
            && b_follows.len() <= 1
            && b_followers.len() <= 1
    );
    assert_eq!(
        a_follows.contains(&b.id),
        b_followers.contains(&a.id),
        "a → b must show on both sides"
    );
    assert_eq!(
        b_follows.contains(&a.id),
        a_followers.contains(&b.id),
        "b → a must show on both sides"
    );

    // Everyone follows at once: exactly one follow each way.
    std::thread::scope(|s| {
        for t in 0..6 {
            let (a, b) = (&a, &b);
            s.spawn(move || {
                let (from, to) = if t % 2 == 0 { (a, b) } else { (b, a) };
                for _ in 0..4 {
                    expect_ok(&relation(c, from, to.id, "1"));
                }
            });
        }
    });
    assert_eq!(counts(c, &x, a.id), (1, 1));
    assert_eq!(counts(c, &x, b.id), (1, 1));
    consistent(c, &x, &a);
    consistent(c, &x, &b);

    // Everyone unfollows at once: back to zero, never below.
    std::thread::scope(|s| {
        for t in 0..6 {
            let (a, b) = (&a, &b);
            s.spawn(move || {
                let (from, to) = if t % 2 == 0 { (a, b) } else { (b, a) };
                for _ in 0..4 {
                    expect_ok(&relation(c, from, to.id, "2"));
                }
            });
        }
    });
    assert_eq!(counts(c, &x, a.id), (0, 0));
    assert_eq!(counts(c, &x, b.id), (0, 0));
    consistent(c, &x, &a);
    consistent(c, &x, &b);
}

#[test]
fn concurrent_follows_of_many_pairs_keep_counts_exact() {
    let h = host();
    let c = &h.client;
    let users: Vec<U> = (0..7).map(|i| register(c, &format!("m{i}"))).collect();
    let n = users.len();
    let mut pairs: Vec<(usize, usize)> = (0..n)
        .flat_map(|i| (0..n).filter(move |&j| j != i).map(move |j| (i, j)))
        .collect();
    // A fixed shuffle, so threads work on unrelated pairs at the same time.
    pairs.sort_by_key(|&(i, j)| (i * 7 + j * 13) % 17);

    let run = |action: &'static str, pairs: &[(usize, usize)]| {
        std::thread::scope(|s| {
            for t in 0..4 {
                let users = &users;
                s.spawn(move || {
                    // Each pair is sent by two threads (t and t + 2), so the same pair races too.
                    for (k, &(i, j)) in pairs.iter().enumerate() {
                        if k % 2 == t % 2 {
                            expect_ok(&relation(c, &users[i], users[j].id, action));
                        }
                    }
                });
            }
        });
    };

    run("1", &pairs);
    for u in &users {
        let (follows, followers) = consistent(c, &users[0], u);
        let others: BTreeSet<i64> = users
            .iter()
            .filter(|o| o.id != u.id)
            .map(|o| o.id)
            .collect();
        assert_eq!(follows, others, "{} follows everyone else", u.name);
        assert_eq!(followers, others, "{} is followed by everyone else", u.name);
        assert_eq!(counts(c, u, u.id), ((n - 1) as i64, (n - 1) as i64));
    }

    let dropped: Vec<(usize, usize)> = pairs
        .iter()
        .copied()
        .filter(|&(i, j)| (i + 2 * j) % 3 == 0)
        .collect();
    assert!(!dropped.is_empty());
    run("2", &dropped);
    for (k, u) in users.iter().enumerate() {
        let (follows, followers) = consistent(c, &users[0], u);
        let want_follows: BTreeSet<i64> = (0..n)
            .filter(|&j| j != k && !dropped.contains(&(k, j)))
            .map(|j| users[j].id)
            .collect();
        let want_followers: BTreeSet<i64> = (0..n)
            .filter(|&i| i != k && !dropped.contains(&(i, k)))
            .map(|i| users[i].id)
            .collect();
        assert_eq!(
            follows, want_follows,
            "{}'s follows after the unfollows",
            u.name
        );
        assert_eq!(
            followers, want_followers,
            "{}'s followers after the unfollows",
            u.name
        );
    }
    // Friends are exactly the pairs still followed both ways.
    for (k, u) in users.iter().enumerate() {
        let want: BTreeSet<i64> = (0..n)
            .filter(|&j| j != k && !dropped.contains(&(k, j)) && !dropped.contains(&(j, k)))
            .map(|j| users[j].id)
            .collect();
        assert_eq!(
            id_set(&list(c, "friend", u.id, Some(u))),
            want,
            "{}'s friends",
            u.name
        );
    }
}
