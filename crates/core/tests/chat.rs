mod common;
mod support;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::time::Instant;

use common::{params, World, NOW};
use serde_json::json;
use support::people::{body, count, deleted_user, send, user, Case};
use support::world;
use tikspin_core::api::{self, Reply};
use tikspin_core::chat::{self, MessageList, CHAT_LIMIT, MAX_AHEAD_MS};
use tikspin_core::messages::{chat_statement, ChatRead};
use tikspin_core::migrate::migrate;
use tikspin_core::model::Message;
use tikspin_core::testing::{CountingSql, SqliteSql};
use tikspin_core::{ApiError, Env, Sql};

fn poll(env: &Env<'_>, token: &str, peer: i64, pre: i64) -> Result<MessageList, ApiError> {
    chat::message_chat(
        env,
        &params(&[
            ("token", token),
            ("to_user_id", &peer.to_string()),
            ("pre_msg_time", &pre.to_string()),
        ]),
    )
}

fn contents(list: &[Message]) -> Vec<&str> {
    list.iter().map(|m| m.content.as_str()).collect()
}

#[test]
fn full_history_both_ways_then_incremental_polls_from_the_peer() {
    let mut w = world();
    let (a, ta) = user(&w.sql, "a");
    let (b, tb) = user(&w.sql, "b");

    // Nothing yet: `[]`, not null.
    let reply = body(Reply::from_result(poll(&w.env(), &ta, b, 0)));
    assert_eq!(
        reply,
        json!({"status_code": 0, "status_msg": "success", "message_list": []})
    );

    w.now_ms = NOW + 1_000;
    send(&w.env(), &ta, b, "你好 b 👋").unwrap();
    w.now_ms = NOW + 2_000;
    send(&w.env(), &tb, a, "hi a").unwrap();
    w.now_ms = NOW + 3_000;
    send(&w.env(), &ta, b, "how are you").unwrap();

    // pre_msg_time 0 or absent: everything, both directions, oldest first, from either side.
    let all = poll(&w.env(), &ta, b, 0).unwrap().message_list;
    assert_eq!(contents(&all), vec!["你好 b 👋", "hi a", "how are you"]);
    assert_eq!(
        all.iter()
            .map(|m| (m.from_user_id, m.to_user_id, m.create_time))
            .collect::<Vec<_>>(),
        vec![
            (a, b, NOW + 1_000),
            (b, a, NOW + 2_000),
            (a, b, NOW + 3_000)
        ]
    );
    let absent = chat::message_chat(
        &w.env(),
        &params(&[("token", &tb), ("to_user_id", &a.to_string())]),
    )
    .unwrap();
    assert_eq!(absent.message_list, all);
    let empty = chat::message_chat(
        &w.env(),
        &params(&[
            ("token", &tb),
            ("to_user_id", &a.to_string()),
            ("pre_msg_time", ""),
        ]),
    )
    .unwrap();
    assert_eq!(empty.message_list, all);

    // The wire shape.
    let reply = body(Reply::from_result(poll(&w.env(), &tb, a, 0)));
    assert_eq!(
        reply["message_list"][1],
        json!({"id": all[1].id, "to_user_id": a, "from_user_id": b, "content": "hi a", "create_time": NOW + 2_000})
    );

    // pre_msg_time > 0: only the peer's messages to me, strictly after it.
    assert_eq!(
        contents(&poll(&w.env(), &tb, a, NOW).unwrap().message_list),
        vec!["你好 b 👋", "how are you"]
    );
    assert_eq!(
        contents(&poll(&w.env(), &tb, a, NOW + 1_000).unwrap().message_list),
        vec!["how are you"]
    );
    assert!(poll(&w.env(), &tb, a, NOW + 3_000)
        .unwrap()
        .message_list
        .is_empty());
    assert_eq!(
        contents(&poll(&w.env(), &ta, b, NOW).unwrap().message_list),
        vec!["hi a"]
    );
    // Seconds are accepted: 10 digits mean seconds.
    let secs = (NOW + 1_500) / 1000; // NOW+1000 ms, as seconds
    assert_eq!(
        contents(&poll(&w.env(), &tb, a, secs).unwrap().message_list),
        vec!["how are you"],
        "{secs} s = {} ms",
        secs * 1000
    );
}

#[test]
fn messages_in_the_same_millisecond_are_all_kept_in_order() {
    let w = world(); // the clock never moves
    let (a, ta) = user(&w.sql, "a");
    let (b, tb) = user(&w.sql, "b");
    send(&w.env(), &tb, a, "one").unwrap();
    send(&w.env(), &tb, a, "two").unwrap();
    send(&w.env(), &ta, b, "mine").unwrap();
    send(&w.env(), &tb, a, "three").unwrap();
    let all = poll(&w.env(), &ta, b, 0).unwrap().message_list;
    assert_eq!(contents(&all), vec!["one", "two", "mine", "three"]);
    let times: Vec<i64> = all.iter().map(|m| m.create_time).collect();
    assert_eq!(
        times,
        vec![NOW, NOW + 1, NOW + 2, NOW + 3],
        "strictly increasing per conversation"
    );
    // A poll from the first one gets the rest of the peer's, once.
    assert_eq!(
        contents(&poll(&w.env(), &ta, b, NOW).unwrap().message_list),
        vec!["two", "three"]
    );
    // A clock that steps back still stamps after the latest.
    let mut w = w;
    w.now_ms = NOW - 60_000;
    send(&w.env(), &tb, a, "four").unwrap();
    let last = poll(&w.env(), &ta, b, NOW + 3).unwrap().message_list;
    assert_eq!(contents(&last), vec!["four"]);
    assert_eq!(last[0].create_time, NOW + 4);
    // Other conversations have their own sequence.
    let (c, tc) = user(&w.sql, "c");
    send(&w.env(), &tc, a, "from c").unwrap();
    let from_c = poll(&w.env(), &ta, c, 0).unwrap().message_list;
    assert_eq!(from_c[0].create_time, NOW - 60_000);
}

/// What the client does: first the whole history, then every second the messages after the
/// newest one it has; it never de-duplicates. Sends from both sides interleave with the polls,
/// often within one millisecond.
#[test]
fn a_polling_client_sees_every_peer_message_exactly_once() {
    let mut w = world();
    let (a, ta) = user(&w.sql, "a");
    let (b, tb) = user(&w.sql, "b");
    send(&w.env(), &ta, b, "a-start").unwrap();
    send(&w.env(), &tb, a, "b-start").unwrap();

    struct Client {
        cursor: i64,
        seen: Vec<String>,
    }
    let mut clients = BTreeMap::new();
    for (me, token, peer) in [(a, ta.clone(), b), (b, tb.clone(), a)] {
        let history = poll(&w.env(), &token, peer, 0).unwrap().message_list;
        assert_eq!(history.len(), 2);
        let seen = history
            .iter()
            .filter(|m| m.from_user_id == peer)
            .map(|m| m.content.clone())
            .collect();
        clients.insert(
            me,
            Client {
                cursor: history.last().unwrap().create_time,
                seen,
            },
        );
    }
    let mut sent: BTreeMap<i64, Vec<String>> = BTreeMap::new();
    sent.insert(a, vec!["a-start".into()]);
    sent.insert(b, vec!["b-start".into()]);

    let mut rng: u64 = 0x5eed;
    let mut next = move || {
        rng = rng
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (rng >> 33) as u32
    };
    for step in 0..400 {
        let r = next();
        if r % 4 == 0 {
            w.now_ms += 1; // most steps share a millisecond with the previous one
        }
        for (me, token, peer) in [(a, &ta, b), (b, &tb, a)] {
            if next() % 3 == 0 {
                let text = format!("{me}-{step}");
                send(&w.env(), token, peer, &text).unwrap();
                sent.get_mut(&me).unwrap().push(text);
            }
            if next() % 2 == 0 {
                let client = clients.get_mut(&me).unwrap();
                let got = poll(&w.env(), token, peer, client.cursor)
                    .unwrap()
                    .message_list;
                for m in &got {
                    assert_eq!((m.from_user_id, m.to_user_id), (peer, me));
                    assert!(m.create_time > client.cursor);
                    client.cursor = m.create_time;
                    client.seen.push(m.content.clone());
                }
            }
        }
    }
    for (me, token, peer) in [(a, &ta, b), (b, &tb, a)] {
        let client = clients.get_mut(&me).unwrap();
        let got = poll(&w.env(), token, peer, client.cursor)
            .unwrap()
            .message_list;
        client.seen.extend(got.into_iter().map(|m| m.content));
        assert_eq!(
            client.seen, sent[&peer],
            "user {me} must see each of {peer}'s messages once, in order"
        );
        assert!(sent[&peer].len() > 100);
    }
}

/// Real threads on one database file: two threads send as b, one as a, while a poller thread
/// polls as a. Every b message arrives exactly once, and each sender's messages in order.
#[test]
fn concurrent_senders_and_a_poller_lose_and_repeat_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("chat.db");
    let setup = SqliteSql::open(&path).unwrap();
    migrate(&setup).unwrap();
    let (a, ta) = user(&setup, "a");
    let (b, tb) = user(&setup, "b");
    const PER_SENDER: usize = 40;
    let start = Instant::now();
    // A slow clock (one tick per 5 real ms) so that many sends share a millisecond.
    let now = move || NOW + (start.elapsed().as_millis() / 5) as i64;
    let done = Arc::new(AtomicBool::new(false));
    let barrier = Arc::new(Barrier::new(4));

    let senders: Vec<_> = [
        ("b0", tb.clone(), a),
        ("b1", tb.clone(), a),
        ("a", ta.clone(), b),
    ]
    .into_iter()
    .map(|(name, token, to)| {
        let (path, barrier) = (path.clone(), barrier.clone());
        std::thread::spawn(move || {
            let mut w = World::with_sql(SqliteSql::open(&path).unwrap());
            barrier.wait();
            for i in 0..PER_SENDER {
                w.now_ms = now();
                send(&w.env(), &token, to, &format!("{name}-{i}")).unwrap();
            }
        })
    })
    .collect();
    let poller = {
        let (path, barrier, done, ta) = (path.clone(), barrier.clone(), done.clone(), ta.clone());
        std::thread::spawn(move || {
            let mut w = World::with_sql(SqliteSql::open(&path).unwrap());
            barrier.wait();
            let mut cursor = 0;
            let mut seen: Vec<Message> = Vec::new();
            loop {
                let finished = done.load(Ordering::SeqCst);
                w.now_ms = now();
                let got = poll(&w.env(), &ta, b, cursor).unwrap().message_list;
                for m in got {
                    if m.from_user_id == b {
                        seen.push(m.clone());
                    }
                    assert!(m.create_time > cursor, "never the same message twice");
                    cursor = m.create_time;
                }
                if finished {
                    return seen;
                }
            }
        })
    };
    for s in senders {
        s.join().unwrap();
    }
    done.store(true, Ordering::SeqCst);
    let seen = poller.join().unwrap();
    let names: Vec<&str> = contents(&seen);
    assert_eq!(names.len(), 2 * PER_SENDER, "every b message exactly once");
    for sender in ["b0", "b1"] {
        let order: Vec<usize> = names
            .iter()
            .filter_map(|n| n.strip_prefix(sender)?.strip_prefix('-')?.parse().ok())
            .collect();
        assert_eq!(
            order,
            (0..PER_SENDER).collect::<Vec<_>>(),
            "{sender} in order"
        );
    }
    assert_eq!(
        count(&setup, "SELECT COUNT(*) FROM messages"),
        3 * PER_SENDER as i64
    );
}

#[test]
fn bad_sends_are_refused_and_write_nothing() {
    let w = world();
    let (a, ta) = user(&w.sql, "a");
    let (b, _) = user(&w.sql, "b");
    let (gone, tgone) = deleted_user(&w.sql, "gone");
    let (a_s, b_s, gone_s) = (a.to_string(), b.to_string(), gone.to_string());
    let long = "长".repeat(1001);
    let cases: Vec<Case> = vec![
        (
            vec![("to_user_id", &b_s), ("action_type", "1"), ("content", "x")],
            api::AUTH_REQUIRED,
            "log in",
        ),
        (
            vec![
                ("token", "a.b.c"),
                ("to_user_id", &b_s),
                ("action_type", "1"),
                ("content", "x"),
            ],
            api::INVALID_TOKEN,
            "token",
        ),
        (
            vec![
                ("token", &tgone),
                ("to_user_id", &b_s),
                ("action_type", "1"),
                ("content", "x"),
            ],
            api::INVALID_TOKEN,
            "token",
        ),
        (
            vec![("token", &ta), ("action_type", "1"), ("content", "x")],
            api::BAD_PARAMETER,
            "to_user_id",
        ),
        (
            vec![
                ("token", &ta),
                ("to_user_id", "zz"),
                ("action_type", "1"),
                ("content", "x"),
            ],
            api::BAD_PARAMETER,
            "to_user_id",
        ),
        (
            vec![("token", &ta), ("to_user_id", &b_s), ("content", "x")],
            api::BAD_MESSAGE_ACTION,
            "1 (send)",
        ),
        (
            vec![
                ("token", &ta),
                ("to_user_id", &b_s),
                ("action_type", "2"),
                ("content", "x"),
            ],
            api::BAD_MESSAGE_ACTION,
            "\"2\"",
        ),
        (
            vec![
                ("token", &ta),
                ("to_user_id", &b_s),
                ("action_type", "send"),
                ("content", "x"),
            ],
            api::BAD_MESSAGE_ACTION,
            "action_type",
        ),
        (
            vec![("token", &ta), ("to_user_id", &b_s), ("action_type", "1")],
            api::MESSAGE_EMPTY,
            "empty",
        ),
        (
            vec![
                ("token", &ta),
                ("to_user_id", &b_s),
                ("action_type", "1"),
                ("content", ""),
            ],
            api::MESSAGE_EMPTY,
            "empty",
        ),
        (
            vec![
                ("token", &ta),
                ("to_user_id", &b_s),
                ("action_type", "1"),
                ("content", " \n\t "),
            ],
            api::MESSAGE_EMPTY,
            "empty",
        ),
        (
            vec![
                ("token", &ta),
                ("to_user_id", &b_s),
                ("action_type", "1"),
                ("content", &long),
            ],
            api::MESSAGE_TOO_LONG,
            "at most 1000 characters, got 1001",
        ),
        (
            vec![
                ("token", &ta),
                ("to_user_id", &a_s),
                ("action_type", "1"),
                ("content", "me"),
            ],
            api::CANNOT_MESSAGE_SELF,
            "yourself",
        ),
        (
            vec![
                ("token", &ta),
                ("to_user_id", "777777"),
                ("action_type", "1"),
                ("content", "x"),
            ],
            api::MESSAGE_PEER_NOT_FOUND,
            "777777 does not exist",
        ),
        (
            vec![
                ("token", &ta),
                ("to_user_id", &gone_s),
                ("action_type", "1"),
                ("content", "x"),
            ],
            api::MESSAGE_PEER_NOT_FOUND,
            "does not exist",
        ),
    ];
    for (pairs, code, needle) in cases {
        let err = chat::message_action(&w.env(), &params(&pairs)).unwrap_err();
        assert_eq!(err.code, code, "{pairs:?}: {err}");
        assert!(err.msg.contains(needle), "{pairs:?}: {}", err.msg);
        let reply = body(Reply::from_result(chat::message_action(
            &w.env(),
            &params(&pairs),
        )));
        assert_eq!(reply["status_code"], code);
    }
    assert_eq!(count(&w.sql, "SELECT COUNT(*) FROM messages"), 0);

    // The limits themselves are fine: 1000 characters of 3 bytes each, emoji, and no friendship.
    send(&w.env(), &ta, b, &"长".repeat(1000)).unwrap();
    send(&w.env(), &ta, b, "😀").unwrap();
    assert_eq!(count(&w.sql, "SELECT COUNT(*) FROM messages"), 2);
    assert_eq!(count(&w.sql, "SELECT COUNT(*) FROM follows"), 0);
}

#[test]
fn bad_chat_reads_are_refused() {
    let w = world();
    let (a, ta) = user(&w.sql, "a");
    let (b, tb) = user(&w.sql, "b");
    send(&w.env(), &tb, a, "hello").unwrap();
    let (a_s, b_s) = (a.to_string(), b.to_string());
    let far = (NOW + MAX_AHEAD_MS + 1).to_string();
    let far_secs = ((NOW + MAX_AHEAD_MS) / 1000 + 1).to_string();
    let cases: Vec<Case> = vec![
        (
            vec![("to_user_id", &b_s), ("pre_msg_time", "0")],
            api::AUTH_REQUIRED,
            "log in",
        ),
        (
            vec![("token", "bogus"), ("to_user_id", &b_s)],
            api::INVALID_TOKEN,
            "token",
        ),
        (
            vec![("token", &ta), ("pre_msg_time", "0")],
            api::BAD_PARAMETER,
            "to_user_id",
        ),
        (
            vec![("token", &ta), ("to_user_id", &a_s)],
            api::CANNOT_MESSAGE_SELF,
            "yourself",
        ),
        (
            vec![("token", &ta), ("to_user_id", "555555")],
            api::MESSAGE_PEER_NOT_FOUND,
            "555555 does not exist",
        ),
        (
            vec![
                ("token", &ta),
                ("to_user_id", "555555"),
                ("pre_msg_time", "1700000000000"),
            ],
            api::MESSAGE_PEER_NOT_FOUND,
            "does not exist",
        ),
        (
            vec![
                ("token", &ta),
                ("to_user_id", &b_s),
                ("pre_msg_time", "abc"),
            ],
            api::BAD_PRE_MSG_TIME,
            "integer",
        ),
        (
            vec![
                ("token", &ta),
                ("to_user_id", &b_s),
                ("pre_msg_time", "1.5"),
            ],
            api::BAD_PRE_MSG_TIME,
            "integer",
        ),
        (
            vec![("token", &ta), ("to_user_id", &b_s), ("pre_msg_time", "-1")],
            api::BAD_PRE_MSG_TIME,
            "negative",
        ),
        (
            vec![("token", &ta), ("to_user_id", &b_s), ("pre_msg_time", &far)],
            api::BAD_PRE_MSG_TIME,
            "future",
        ),
        (
            vec![
                ("token", &ta),
                ("to_user_id", &b_s),
                ("pre_msg_time", &far_secs),
            ],
            api::BAD_PRE_MSG_TIME,
            "future",
        ),
    ];
    for (pairs, code, needle) in cases {
        let reply = body(Reply::from_result(chat::message_chat(
            &w.env(),
            &params(&pairs),
        )));
        assert_eq!(reply["status_code"], code, "{pairs:?}: {reply}");
        let msg = reply["status_msg"].as_str().unwrap();
        assert!(msg.contains(needle), "{pairs:?}: {msg}");
        assert_eq!(
            reply["message_list"],
            json!([]),
            "the list is present on failure"
        );
    }
    // A little ahead of the clock is fine (bursts stamp ahead; clocks differ a little).
    assert!(poll(&w.env(), &ta, b, NOW + 1_000)
        .unwrap()
        .message_list
        .is_empty());
    assert!(poll(&w.env(), &ta, b, NOW + MAX_AHEAD_MS)
        .unwrap()
        .message_list
        .is_empty());
    assert_eq!(
        chat::parse_pre_msg_time(Some(" 0 "), NOW).unwrap(),
        ChatRead::History
    );
}

#[test]
fn statements_per_request() {
    let w = world();
    let (a, ta) = user(&w.sql, "a");
    let (b, tb) = user(&w.sql, "b");
    let counting = CountingSql::new(&w.sql);
    let env = Env {
        sql: &counting,
        ..w.env()
    };

    // The hottest call, the empty poll: one statement (and the token check, no user lookup).
    assert!(poll(&env, &ta, b, NOW).unwrap().message_list.is_empty());
    assert_eq!(counting.calls(), 1);
    counting.reset();
    send(&env, &tb, a, "x").unwrap();
    assert_eq!(
        counting.calls(),
        7,
        "PRAGMA synchronous (SQLite writes only), BEGIN, users, latest, INSERT, \
         the pair's follows' last_message_id, COMMIT"
    );
    for _ in 0..20 {
        send(&w.env(), &tb, a, "more").unwrap();
    }
    counting.reset();
    assert_eq!(poll(&env, &ta, b, NOW - 1).unwrap().message_list.len(), 21);
    assert_eq!(counting.calls(), 1);
    counting.reset();
    assert_eq!(poll(&env, &ta, b, 0).unwrap().message_list.len(), 21);
    assert_eq!(counting.calls(), 1);
    counting.reset();
    let _ = poll(&env, &ta, 999_999, NOW).unwrap_err();
    assert_eq!(counting.calls(), 1, "an unknown peer costs nothing extra");
}

#[test]
fn history_is_capped_at_the_newest_messages_and_polls_page_forward() {
    let w = world();
    let (a, ta) = user(&w.sql, "a");
    let (b, _) = user(&w.sql, "b");
    let (lo, hi) = (a.min(b), a.max(b));
    let total = CHAT_LIMIT + 10;
    w.sql.execute("BEGIN", &[]).unwrap();
    for i in 0..total {
        w.sql
            .execute(
                "INSERT INTO messages (user_lo, user_hi, from_user_id, to_user_id, content, create_time) \
                 VALUES (?, ?, ?, ?, ?, ?)",
                &[lo.into(), hi.into(), b.into(), a.into(), format!("m{i}").into(), (NOW - 10_000 + i as i64).into()],
            )
            .unwrap();
    }
    w.sql.execute("COMMIT", &[]).unwrap();
    let history = poll(&w.env(), &ta, b, 0).unwrap().message_list;
    assert_eq!(history.len(), CHAT_LIMIT);
    assert_eq!(
        history[0].content, "m10",
        "the newest CHAT_LIMIT, oldest first"
    );
    assert_eq!(history.last().unwrap().content, format!("m{}", total - 1));

    let first = poll(&w.env(), &ta, b, NOW - 20_000).unwrap().message_list;
    assert_eq!(first.len(), CHAT_LIMIT);
    assert_eq!(first[0].content, "m0");
    let rest = poll(&w.env(), &ta, b, first.last().unwrap().create_time)
        .unwrap()
        .message_list;
    assert_eq!(
        contents(&rest),
        (CHAT_LIMIT..total)
            .map(|i| format!("m{i}"))
            .collect::<Vec<_>>()
    );
}

#[test]
fn chat_reads_use_the_conversation_index() {
    let sql = SqliteSql::memory();
    migrate(&sql).unwrap();
    for (read, n) in [(ChatRead::History, 3), (ChatRead::FromPeerAfter(5), 5)] {
        let plan = sql
            .query(
                &format!("EXPLAIN QUERY PLAN {}", chat_statement(read, CHAT_LIMIT)),
                &vec![tikspin_core::Value::Int(1); n],
            )
            .unwrap();
        let text: Vec<String> = plan.iter().map(|r| r.text(3).unwrap().to_owned()).collect();
        let text = text.join("\n");
        assert!(
            text.contains("USING INDEX messages_conversation_time"),
            "{read:?}:\n{text}"
        );
        assert!(!text.contains("SCAN messages"), "{read:?}:\n{text}");
        assert!(!text.contains("SCAN u"), "{read:?}:\n{text}");
        if let ChatRead::FromPeerAfter(_) = read {
            // The once-a-second call: the index range is already in order, no temporary table.
            assert!(
                !text.contains("SCAN m")
                    && !text.contains("TEMP B-TREE")
                    && !text.contains("MATERIALIZE"),
                "{read:?}:\n{text}"
            );
        }
    }
}
