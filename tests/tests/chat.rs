//! End to end: the `chat` route group (`/douyin/message/...`) over HTTP, against the real
//! `user`, `social` and `chat` components (in the whole app) served by the real host.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Barrier;
use std::time::Duration;

use serde_json::Value;
use tikspin_e2e::api::{enc, envelope, expect_ok, query, register, User as U};
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

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// A `Message` off the wire, its shape checked.
#[derive(Clone, Debug, PartialEq, Eq)]
struct M {
    id: i64,
    from: i64,
    to: i64,
    content: String,
    time: i64,
}

/// `message_list`, which must be an array whatever happened.
#[track_caller]
fn message_list(v: &Value) -> Vec<M> {
    let list = v["message_list"]
        .as_array()
        .unwrap_or_else(|| panic!("message_list must be an array: {v}"));
    list.iter()
        .map(|m| {
            for k in ["id", "to_user_id", "from_user_id", "create_time"] {
                assert!(m[k].is_i64(), "Message.{k} must be an integer: {m}");
            }
            assert!(
                m["content"].is_string(),
                "Message.content must be a string: {m}"
            );
            M {
                id: m["id"].as_i64().unwrap(),
                from: m["from_user_id"].as_i64().unwrap(),
                to: m["to_user_id"].as_i64().unwrap(),
                content: m["content"].as_str().unwrap().to_string(),
                time: m["create_time"].as_i64().unwrap(),
            }
        })
        .collect()
}

fn contents(ms: &[M]) -> Vec<&str> {
    ms.iter().map(|m| m.content.as_str()).collect()
}

/// POST message/action with the given parameters (absent ones omitted).
fn send_raw(c: &Client, pairs: &[(&str, &str)]) -> Value {
    envelope(c.post_empty(&format!("/douyin/message/action/?{}", query(pairs))))
}

#[track_caller]
fn say(c: &Client, from: &U, to: &U, content: &str) {
    let v = send_raw(
        c,
        &[
            ("token", &from.token),
            ("to_user_id", &to.id.to_string()),
            ("action_type", "1"),
            ("content", content),
        ],
    );
    assert_eq!(
        v["status_code"], 0,
        "{} → {}: {content:?} not sent: {v}",
        from.name, to.name
    );
}

/// GET message/chat with the given parameters (absent ones omitted).
fn chat_raw(c: &Client, pairs: &[(&str, &str)]) -> Value {
    let v = envelope(c.get(&format!("/douyin/message/chat/?{}", query(pairs))));
    message_list(&v);
    v
}

/// The whole conversation as `me` sees it (no `pre_msg_time`).
#[track_caller]
fn history(c: &Client, me: &U, peer: &U) -> Vec<M> {
    let v = chat_raw(
        c,
        &[("token", &me.token), ("to_user_id", &peer.id.to_string())],
    );
    expect_ok(&v);
    message_list(&v)
}

/// An incremental poll from `cursor`.
#[track_caller]
fn poll(c: &Client, me: &U, peer: &U, cursor: i64) -> Vec<M> {
    let v = chat_raw(
        c,
        &[
            ("token", &me.token),
            ("to_user_id", &peer.id.to_string()),
            ("pre_msg_time", &cursor.to_string()),
        ],
    );
    expect_ok(&v);
    let got = message_list(&v);
    for m in &got {
        assert_eq!(
            (m.from, m.to),
            (peer.id, me.id),
            "a poll returns only the peer's messages to the viewer: {m:?}"
        );
        assert!(
            m.time > cursor,
            "a poll returns only messages newer than {cursor}: {m:?}"
        );
    }
    got
}

#[track_caller]
fn assert_oldest_first(ms: &[M]) {
    for w in ms.windows(2) {
        assert!(
            w[0].time <= w[1].time,
            "oldest first: {:?} before {:?}",
            w[0],
            w[1]
        );
    }
    let ids: BTreeSet<i64> = ms.iter().map(|m| m.id).collect();
    assert_eq!(ids.len(), ms.len(), "a message listed twice: {ms:?}");
}

// ---- history and polls ----------------------------------------------------------------------

#[test]
fn history_is_the_whole_conversation_both_ways_oldest_first() {
    let h = host();
    let c = &h.client;
    let (a, b, x) = (register(c, "ha"), register(c, "hb"), register(c, "hx"));

    assert!(history(c, &a, &b).is_empty(), "no messages yet");
    let before = now_ms();
    say(c, &a, &b, "one");
    say(c, &b, &a, "two");
    say(c, &a, &x, "elsewhere"); // another conversation
    say(c, &a, &b, "three");
    let after = now_ms();

    let as_a = history(c, &a, &b);
    assert_eq!(contents(&as_a), ["one", "two", "three"]);
    assert_eq!(
        as_a.iter().map(|m| (m.from, m.to)).collect::<Vec<_>>(),
        [(a.id, b.id), (b.id, a.id), (a.id, b.id)],
        "both directions, with the right sender and recipient"
    );
    assert_oldest_first(&as_a);
    for m in &as_a {
        assert!(
            m.time >= 1_000_000_000_000,
            "create_time is epoch milliseconds: {m:?}"
        );
        assert!(
            m.time >= before - 60_000 && m.time <= after + 60_000,
            "create_time is now-ish ({before}..{after}): {m:?}"
        );
        assert!(m.id > 0);
    }
    assert!(as_a[0].time < as_a[2].time);

    // pre_msg_time=0 and an empty pre_msg_time mean the same as none; the peer sees the same.
    for pre in ["0", ""] {
        let v = chat_raw(
            c,
            &[
                ("token", &a.token),
                ("to_user_id", &b.id.to_string()),
                ("pre_msg_time", pre),
            ],
        );
        expect_ok(&v);
        assert_eq!(message_list(&v), as_a, "pre_msg_time={pre:?}");
    }
    assert_eq!(history(c, &b, &a), as_a, "both sides see one conversation");
    assert_eq!(contents(&history(c, &a, &x)), ["elsewhere"]);
    assert!(history(c, &b, &x).is_empty(), "b and x never talked");

    // The token may come as a bearer header; the path also answers without its slash.
    let r = c.get_with(
        &format!("/douyin/message/chat?to_user_id={}", b.id),
        &[("authorization", &format!("Bearer {}", a.token))],
    );
    let v = envelope(r);
    expect_ok(&v);
    assert_eq!(message_list(&v), as_a);
}

#[test]
fn incremental_polls_return_only_newer_peer_messages() {
    let h = host();
    let c = &h.client;
    let (a, b) = (register(c, "ia"), register(c, "ib"));

    say(c, &a, &b, "a1");
    say(c, &b, &a, "b1");
    let hist = history(c, &a, &b);
    assert_eq!(contents(&hist), ["a1", "b1"]);
    let cursor = hist.last().unwrap().time;
    let first_time = hist[0].time;

    // Nothing new yet.
    assert!(poll(c, &a, &b, cursor).is_empty());
    assert!(poll(c, &b, &a, cursor).is_empty());

    say(c, &a, &b, "a2");
    say(c, &b, &a, "b2");
    say(c, &b, &a, "b3");
    say(c, &a, &b, "a3");

    let got_a = poll(c, &a, &b, cursor);
    assert_eq!(
        contents(&got_a),
        ["b2", "b3"],
        "a sees only b's new messages, oldest first"
    );
    let got_b = poll(c, &b, &a, cursor);
    assert_eq!(
        contents(&got_b),
        ["a2", "a3"],
        "b sees only a's new messages, oldest first"
    );

    // Continuing from the last one seen: nothing again (never the same message twice).
    assert!(poll(c, &a, &b, got_a.last().unwrap().time).is_empty());
    assert!(poll(c, &b, &a, got_b.last().unwrap().time).is_empty());
    // From the middle: only what is after it.
    assert_eq!(contents(&poll(c, &a, &b, got_a[0].time)), ["b3"]);

    // From before the first message: all of the peer's messages, none of mine.
    assert_eq!(
        contents(&poll(c, &a, &b, first_time - 1)),
        ["b1", "b2", "b3"]
    );
    // A 10-digit value is seconds.
    let secs = first_time / 1000 - 1;
    assert!(secs < 1_000_000_000_000);
    assert_eq!(
        contents(&poll(c, &a, &b, secs)),
        ["b1", "b2", "b3"],
        "pre_msg_time {secs} is seconds"
    );
    // A little ahead of the clock is accepted and finds nothing.
    assert!(poll(c, &a, &b, now_ms() + 5_000).is_empty());

    // The whole history is unchanged by polling.
    assert_eq!(
        contents(&history(c, &a, &b)),
        ["a1", "b1", "a2", "b2", "b3", "a3"]
    );
}

#[test]
fn polling_client_sees_every_peer_message_exactly_once() {
    let h = host();
    let c = &h.client;
    let (a, b) = (register(c, "pa"), register(c, "pb"));
    say(c, &a, &b, "hello b");
    say(c, &b, &a, "hello a");
    const N: usize = 30;
    let done = AtomicBool::new(false);

    // Like the client: history first (here before anyone sends), then polls with the last
    // create_time seen.
    let start = |me: &U, peer: &U| -> i64 {
        let hist = history(c, me, peer);
        assert_eq!(contents(&hist), ["hello b", "hello a"]);
        hist.last().unwrap().time
    };
    let (cursor_a, cursor_b) = (start(&a, &b), start(&b, &a));
    let poller = |me: &U, peer: &U, mut cursor: i64| -> Vec<M> {
        let mut seen = Vec::new();
        loop {
            let finished = done.load(Ordering::SeqCst);
            for m in poll(c, me, peer, cursor) {
                cursor = m.time;
                seen.push(m);
            }
            if finished {
                return seen; // this poll started after every send had been answered
            }
            std::thread::sleep(Duration::from_millis(15));
        }
    };
    let (seen_a, seen_b) = std::thread::scope(|s| {
        let pa = s.spawn(|| poller(&a, &b, cursor_a));
        let pb = s.spawn(|| poller(&b, &a, cursor_b));
        let sa = s.spawn(|| (0..N).for_each(|i| say(c, &a, &b, &format!("a-{i}"))));
        let sb = s.spawn(|| (0..N).for_each(|i| say(c, &b, &a, &format!("b-{i}"))));
        sa.join().unwrap();
        sb.join().unwrap();
        done.store(true, Ordering::SeqCst);
        (pa.join().unwrap(), pb.join().unwrap())
    });

    let want_a: Vec<String> = (0..N).map(|i| format!("b-{i}")).collect();
    let want_b: Vec<String> = (0..N).map(|i| format!("a-{i}")).collect();
    assert_eq!(
        contents(&seen_a),
        want_a,
        "a's poller: every message of b's, once, in order, none of a's own"
    );
    assert_eq!(
        contents(&seen_b),
        want_b,
        "b's poller: every message of a's, once, in order, none of b's own"
    );
    for (seen, me) in [(&seen_a, &a), (&seen_b, &b)] {
        assert_oldest_first(seen);
        assert!(seen.iter().all(|m| m.to == me.id));
    }
    // The history has everything, each once.
    let all = history(c, &a, &b);
    assert_eq!(all.len(), 2 + 2 * N);
    assert_oldest_first(&all);
}

#[test]
fn back_to_back_messages_are_all_delivered_in_order() {
    let h = host();
    let c = &h.client;
    let (a, b) = (register(c, "ba"), register(c, "bb"));
    say(c, &a, &b, "start");
    let mut cursor = history(c, &b, &a)[0].time;

    // Sequential pairs: both delivered, in the order sent.
    for round in 0..5 {
        say(c, &a, &b, &format!("first-{round}"));
        say(c, &a, &b, &format!("second-{round}"));
        let got = poll(c, &b, &a, cursor);
        assert_eq!(
            contents(&got),
            [format!("first-{round}"), format!("second-{round}")],
            "round {round}"
        );
        assert!(
            got[0].time < got[1].time,
            "two messages, two create_times, in order: {got:?}"
        );
        assert_ne!(got[0].id, got[1].id);
        cursor = got[1].time;
    }

    // Simultaneous sends (the same millisecond is likely): all delivered, each once, both ways.
    for round in 0..5 {
        let barrier = Barrier::new(4);
        std::thread::scope(|s| {
            for t in 0..4 {
                let (from, to) = if t < 3 { (&a, &b) } else { (&b, &a) };
                let barrier = &barrier;
                s.spawn(move || {
                    barrier.wait();
                    say(c, from, to, &format!("burst-{round}-{t}"));
                });
            }
        });
        let got = poll(c, &b, &a, cursor);
        let want: BTreeSet<String> = (0..3).map(|t| format!("burst-{round}-{t}")).collect();
        assert_eq!(got.len(), 3, "round {round}: {got:?}");
        assert_eq!(
            got.iter()
                .map(|m| m.content.clone())
                .collect::<BTreeSet<_>>(),
            want,
            "round {round}"
        );
        for w in got.windows(2) {
            assert!(
                w[0].time < w[1].time,
                "distinct, increasing create_times: {got:?}"
            );
        }
        cursor = got.last().unwrap().time;
        assert!(poll(c, &b, &a, cursor).is_empty());
    }
    let all = history(c, &a, &b);
    assert_eq!(all.len(), 1 + 10 + 20);
    assert_oldest_first(&all);
    assert_eq!(
        all.iter().filter(|m| m.from == b.id).count(),
        5,
        "b's burst messages are in the history"
    );
}

#[test]
fn emoji_and_cjk_round_trip() {
    let h = host();
    let c = &h.client;
    let (a, b) = (register(c, "ea"), register(c, "eb"));
    let texts = [
        "你好，世界！",
        "🎉👨‍👩‍👧‍👦🏳️‍🌈 emoji",
        "混合 mixed 😀 ñ é ü — «quotes» & = + % ? #",
        "  leading and trailing spaces  ",
        "line one\nline two",
    ];
    for t in texts {
        say(c, &a, &b, t);
    }
    // A form body works too (the query is read first, the body is the fallback).
    let form = format!(
        "{}&content={}",
        query(&[
            ("token", &b.token),
            ("to_user_id", &a.id.to_string()),
            ("action_type", "1")
        ]),
        enc("表单 📮")
    );
    let v = envelope(c.post(
        "/douyin/message/action/",
        "application/x-www-form-urlencoded",
        form.as_bytes(),
    ));
    expect_ok(&v);

    let mut want: Vec<&str> = texts.to_vec();
    want.push("表单 📮");
    assert_eq!(
        contents(&history(c, &a, &b)),
        want,
        "stored and returned as sent"
    );
    assert_eq!(contents(&history(c, &b, &a)), want);

    // The limit counts characters, not bytes: 1000 CJK characters (3000 bytes) are accepted.
    let long = "字".repeat(1000);
    say(c, &a, &b, &long);
    let last = history(c, &b, &a).pop().unwrap();
    assert_eq!(last.content, long);
    let long_emoji = "😀".repeat(1000);
    say(c, &b, &a, &long_emoji);
    assert_eq!(history(c, &a, &b).pop().unwrap().content, long_emoji);
}

// ---- bad input ----------------------------------------------------------------------------------

#[test]
fn bad_message_action_is_refused_and_writes_nothing() {
    let h = host();
    let c = &h.client;
    let (a, b) = (register(c, "ma"), register(c, "mb"));
    let (aid, bid) = (a.id.to_string(), b.id.to_string());
    let tok = a.token.as_str();
    let too_long = "x".repeat(1001);
    let too_long_cjk = "字".repeat(1001);

    let cases: Vec<(&str, Vec<(&str, &str)>)> = vec![
        ("unknown to_user_id", vec![("token", tok), ("to_user_id", "987654321"), ("action_type", "1"), ("content", "hi")]),
        ("non-numeric to_user_id", vec![("token", tok), ("to_user_id", "bob"), ("action_type", "1"), ("content", "hi")]),
        ("negative to_user_id", vec![("token", tok), ("to_user_id", "-1"), ("action_type", "1"), ("content", "hi")]),
        ("overflowing to_user_id", vec![("token", tok), ("to_user_id", "99999999999999999999999"), ("action_type", "1"), ("content", "hi")]),
        ("missing to_user_id", vec![("token", tok), ("action_type", "1"), ("content", "hi")]),
        ("action_type 2", vec![("token", tok), ("to_user_id", &bid), ("action_type", "2"), ("content", "hi")]),
        ("action_type 0", vec![("token", tok), ("to_user_id", &bid), ("action_type", "0"), ("content", "hi")]),
        ("action_type text", vec![("token", tok), ("to_user_id", &bid), ("action_type", "send"), ("content", "hi")]),
        ("missing action_type", vec![("token", tok), ("to_user_id", &bid), ("content", "hi")]),
        ("empty content", vec![("token", tok), ("to_user_id", &bid), ("action_type", "1"), ("content", "")]),
        ("blank content", vec![("token", tok), ("to_user_id", &bid), ("action_type", "1"), ("content", " \n\t ")]),
        ("missing content", vec![("token", tok), ("to_user_id", &bid), ("action_type", "1")]),
        ("1001 characters", vec![("token", tok), ("to_user_id", &bid), ("action_type", "1"), ("content", &too_long)]),
        ("1001 CJK characters", vec![("token", tok), ("to_user_id", &bid), ("action_type", "1"), ("content", &too_long_cjk)]),
        ("to yourself", vec![("token", tok), ("to_user_id", &aid), ("action_type", "1"), ("content", "hi me")]),
        ("missing token", vec![("to_user_id", &bid), ("action_type", "1"), ("content", "hi")]),
        ("empty token", vec![("token", ""), ("to_user_id", &bid), ("action_type", "1"), ("content", "hi")]),
        ("garbage token", vec![("token", "garbage"), ("to_user_id", &bid), ("action_type", "1"), ("content", "hi")]),
        (
            "forged token",
            vec![
                ("token", "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOjEsImV4cCI6OTk5OTk5OTk5OX0.c2lnbmF0dXJlLW5vdC12YWxpZA"),
                ("to_user_id", &bid),
                ("action_type", "1"),
                ("content", "hi"),
            ],
        ),
    ];
    for (what, pairs) in &cases {
        let v = send_raw(c, pairs);
        assert_ne!(v["status_code"], 0, "{what}: must be refused: {v}");
        assert!(
            !v["status_msg"].as_str().unwrap().trim().is_empty(),
            "{what}: needs a status_msg: {v}"
        );
    }
    // The messages say what was wrong.
    let msg = |pairs: &[(&str, &str)]| {
        send_raw(c, pairs)["status_msg"]
            .as_str()
            .unwrap()
            .to_lowercase()
    };
    assert!(msg(&[
        ("token", tok),
        ("to_user_id", "bob"),
        ("action_type", "1"),
        ("content", "hi")
    ])
    .contains("to_user_id"));
    assert!(msg(&[
        ("token", tok),
        ("to_user_id", &bid),
        ("action_type", "2"),
        ("content", "hi")
    ])
    .contains("action_type"));
    assert!(msg(&[
        ("token", tok),
        ("to_user_id", &bid),
        ("action_type", "1"),
        ("content", "")
    ])
    .contains("empty"));
    assert!(msg(&[
        ("token", tok),
        ("to_user_id", &bid),
        ("action_type", "1"),
        ("content", &too_long)
    ])
    .contains("1000"));
    assert!(msg(&[
        ("token", tok),
        ("to_user_id", &aid),
        ("action_type", "1"),
        ("content", "hi")
    ])
    .contains("yourself"));
    assert!(msg(&[
        ("token", tok),
        ("to_user_id", "987654321"),
        ("action_type", "1"),
        ("content", "hi")
    ])
    .contains("987654321"));

    // Nothing was written.
    assert!(
        history(c, &a, &b).is_empty(),
        "refused sends must not be stored"
    );
    assert!(history(c, &b, &a).is_empty());

    // A GET on the action is a wrong method (405), with the envelope, and sends nothing.
    let r = c.get(&format!(
        "/douyin/message/action/?{}",
        query(&[
            ("token", tok),
            ("to_user_id", &bid),
            ("action_type", "1"),
            ("content", "hi")
        ])
    ));
    assert_eq!(r.status, 405, "{}", r.text());
    assert_ne!(r.json()["status_code"], 0);
    assert!(history(c, &b, &a).is_empty());
    // So is a POST on the read.
    let r = c.post_empty(&format!(
        "/douyin/message/chat/?{}",
        query(&[("token", tok), ("to_user_id", &bid)])
    ));
    assert_eq!(r.status, 405, "{}", r.text());
}

#[test]
fn bad_chat_reads_are_refused_with_an_empty_list() {
    let h = host();
    let c = &h.client;
    let (a, b) = (register(c, "ra"), register(c, "rb"));
    say(c, &b, &a, "something to leak");
    let (aid, bid) = (a.id.to_string(), b.id.to_string());
    let tok = a.token.as_str();
    let hour_ahead = (now_ms() + 3_600_000).to_string();
    let day_ahead_secs = (now_ms() / 1000 + 86_400).to_string();

    let cases: Vec<(&str, Vec<(&str, &str)>)> = vec![
        ("negative pre_msg_time", vec![("token", tok), ("to_user_id", &bid), ("pre_msg_time", "-1")]),
        ("very negative pre_msg_time", vec![("token", tok), ("to_user_id", &bid), ("pre_msg_time", "-1700000000000")]),
        ("pre_msg_time an hour ahead", vec![("token", tok), ("to_user_id", &bid), ("pre_msg_time", &hour_ahead)]),
        ("pre_msg_time a day ahead, in seconds", vec![("token", tok), ("to_user_id", &bid), ("pre_msg_time", &day_ahead_secs)]),
        ("pre_msg_time i64::MAX", vec![("token", tok), ("to_user_id", &bid), ("pre_msg_time", "9223372036854775807")]),
        ("pre_msg_time text", vec![("token", tok), ("to_user_id", &bid), ("pre_msg_time", "abc")]),
        ("pre_msg_time fraction", vec![("token", tok), ("to_user_id", &bid), ("pre_msg_time", "1.5")]),
        ("pre_msg_time trailing junk", vec![("token", tok), ("to_user_id", &bid), ("pre_msg_time", "1700000000000x")]),
        ("pre_msg_time overflowing", vec![("token", tok), ("to_user_id", &bid), ("pre_msg_time", "99999999999999999999999")]),
        ("unknown to_user_id", vec![("token", tok), ("to_user_id", "987654321")]),
        ("unknown to_user_id, polling", vec![("token", tok), ("to_user_id", "987654321"), ("pre_msg_time", "1700000000000")]),
        ("non-numeric to_user_id", vec![("token", tok), ("to_user_id", "bob")]),
        ("missing to_user_id", vec![("token", tok)]),
        ("yourself", vec![("token", tok), ("to_user_id", &aid)]),
        ("missing token", vec![("to_user_id", &bid)]),
        ("missing token, peer's side", vec![("to_user_id", &aid)]),
        ("garbage token", vec![("token", "garbage"), ("to_user_id", &bid)]),
        (
            "forged token",
            vec![
                ("token", "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOjEsImV4cCI6OTk5OTk5OTk5OX0.c2lnbmF0dXJlLW5vdC12YWxpZA"),
                ("to_user_id", &bid),
            ],
        ),
    ];
    for (what, pairs) in &cases {
        let v = chat_raw(c, pairs);
        assert_ne!(v["status_code"], 0, "{what}: must be refused: {v}");
        assert!(
            !v["status_msg"].as_str().unwrap().trim().is_empty(),
            "{what}: needs a status_msg: {v}"
        );
        assert_eq!(
            v["message_list"],
            serde_json::json!([]),
            "{what}: message_list must be [] on errors: {v}"
        );
    }
    let msg = |pairs: &[(&str, &str)]| {
        chat_raw(c, pairs)["status_msg"]
            .as_str()
            .unwrap()
            .to_lowercase()
    };
    assert!(
        msg(&[("token", tok), ("to_user_id", &bid), ("pre_msg_time", "-1")])
            .contains("pre_msg_time")
    );
    assert!(msg(&[
        ("token", tok),
        ("to_user_id", &bid),
        ("pre_msg_time", &hour_ahead)
    ])
    .contains("pre_msg_time"));
    assert!(msg(&[
        ("token", tok),
        ("to_user_id", &bid),
        ("pre_msg_time", "abc")
    ])
    .contains("pre_msg_time"));

    // Empty results are [] too, history and poll alike.
    let x = register(c, "rx");
    let v = chat_raw(c, &[("token", tok), ("to_user_id", &x.id.to_string())]);
    expect_ok(&v);
    assert_eq!(v["message_list"], serde_json::json!([]), "{v}");
    let v = chat_raw(
        c,
        &[
            ("token", tok),
            ("to_user_id", &bid),
            ("pre_msg_time", &now_ms().to_string()),
        ],
    );
    expect_ok(&v);
    assert_eq!(v["message_list"], serde_json::json!([]), "{v}");
    // And the conversation is intact.
    assert_eq!(contents(&history(c, &a, &b)), ["something to leak"]);
}
