//! The abuse limits (issue 19), end to end on the real host and the real components: bursts
//! refused exactly past the configured limit and admitted again after the refill, one user's
//! bucket apart from another's, exact under concurrency on the SQLite store, one limit shared
//! by two host processes on one Redis store, and a limit variable that is not a number.
//!
//! Small rates come in through `--variable`, so refills take a second or two.

use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;
use tikspin_e2e::api::{envelope, expect_ok, query, register, User};
use tikspin_e2e::client::{Client, Reply};
use tikspin_e2e::harness::{HostConfig, TestHost};
use tikspin_e2e::servers::RedisServer;

const RATE_LIMITED: i64 = 1011;
const MISCONFIGURED: i64 = 1502;
const JWT_SECRET: &str = "e2e-limits-secret-5b1e0c93d2";

/// A host with the limits on: everything generous but what `vars` sets.
fn host(vars: &[(&str, &str)], runtime_config: Option<std::path::PathBuf>) -> TestHost {
    let mut variables: Vec<(String, String)> = [
        ("jwt_secret", JWT_SECRET),
        ("limits_enabled", "true"),
        ("limit_register_per_minute", "6000"),
        ("limit_register_burst", "1000"),
        ("limit_read_per_minute", "6000"),
        ("limit_read_burst", "1000"),
        ("limit_address_multiplier", "100"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    for (k, v) in vars {
        variables.retain(|(name, _)| name != k);
        variables.push((k.to_string(), v.to_string()));
    }
    TestHost::start(HostConfig {
        variables,
        runtime_config,
        ..Default::default()
    })
}

fn follow(c: &Client, who: &User, to: &User, action: &str) -> Reply {
    c.post_empty(&format!(
        "/douyin/relation/action/?{}",
        query(&[
            ("token", &who.token),
            ("to_user_id", &to.id.to_string()),
            ("action_type", action),
        ])
    ))
}

/// A refusal by a limit: HTTP 200, `status_code` 1011, a message a person reads, and a
/// `Retry-After` of whole seconds that the message repeats.
#[track_caller]
fn expect_limited(r: Reply, what: &str) -> u64 {
    let retry = r
        .header("retry-after")
        .unwrap_or_else(|| panic!("no Retry-After on a refusal: {}", r.text()))
        .parse::<u64>()
        .expect("Retry-After in seconds");
    let v = envelope(r);
    assert_eq!(v["status_code"], RATE_LIMITED, "{v}");
    let msg = v["status_msg"].as_str().unwrap();
    assert_eq!(msg, format!("{what}, try again in {retry} s"), "{v}");
    assert!((1..=60).contains(&retry), "{v}");
    retry
}

#[track_caller]
fn expect_admitted(r: Reply) -> Value {
    assert!(r.header("retry-after").is_none(), "{}", r.text());
    let v = envelope(r);
    assert_ne!(v["status_code"], RATE_LIMITED, "refused too early: {v}");
    v
}

/// Follow/unfollow at 60 a minute with a burst of 3: three pass, the fourth is refused with
/// Retry-After 1; another user is untouched; a second later exactly one more passes.
#[test]
fn a_burst_is_refused_exactly_past_the_limit_and_refills() {
    let h = host(
        &[("limit_follow_per_minute", "60"), ("limit_follow_burst", "3")],
        None,
    );
    let c = &h.client;
    let (a, b, x) = (register(c, "lim_a"), register(c, "lim_b"), register(c, "lim_x"));
    for action in ["1", "2", "1"] {
        expect_ok(&expect_admitted(follow(c, &a, &x, action)));
    }
    let started = Instant::now();
    assert_eq!(expect_limited(follow(c, &a, &x, "2"), "too many follows"), 1);
    // Nothing was written by the refusal: a still follows x.
    let v = envelope(c.get(&format!(
        "/douyin/relation/follow/list/?{}",
        query(&[("user_id", &a.id.to_string()), ("token", &a.token)])
    )));
    assert_eq!(v["user_list"].as_array().unwrap().len(), 1, "{v}");
    // b's bucket is its own.
    for action in ["1", "2", "1"] {
        expect_ok(&expect_admitted(follow(c, &b, &x, action)));
    }
    expect_limited(follow(c, &b, &x, "2"), "too many follows");
    // One token a second: after the refill a passes once, then is refused again.
    thread::sleep(Duration::from_millis(1100).saturating_sub(started.elapsed()));
    expect_ok(&expect_admitted(follow(c, &a, &x, "2")));
    expect_limited(follow(c, &a, &x, "1"), "too many follows");
}

/// Comments: the refusal names them and waits the configured interval (one per 20 s).
#[test]
fn too_many_comments_says_so_in_seconds() {
    let h = host(
        &[("limit_comment_per_minute", "3"), ("limit_comment_burst", "2")],
        None,
    );
    let c = &h.client;
    let feed = envelope(c.get("/douyin/feed/"));
    let video = feed["video_list"][0]["id"].as_i64().expect("the welcome video");
    let u = register(c, "lim_c");
    let comment = || {
        c.post_empty(&format!(
            "/douyin/comment/action/?{}",
            query(&[
                ("token", &u.token),
                ("video_id", &video.to_string()),
                ("action_type", "1"),
                ("comment_text", "hello"),
            ])
        ))
    };
    expect_ok(&expect_admitted(comment()));
    expect_ok(&expect_admitted(comment()));
    let retry = expect_limited(comment(), "too many comments");
    assert!((19..=20).contains(&retry), "{retry}");
}

/// Reads are limited per address, and a refused read is still the endpoint's envelope.
#[test]
fn reads_are_limited_per_address() {
    let h = host(
        &[("limit_read_per_minute", "1"), ("limit_read_burst", "4")],
        None,
    );
    let c = &h.client;
    let path = "/douyin/user/?user_id=1";
    for _ in 0..4 {
        expect_admitted(c.get(path));
    }
    expect_limited(c.get(path), "too many requests");
    expect_limited(c.get("/douyin/feed/"), "too many requests");
}

/// `n` reads at once, spread over `clients`: how many were admitted.
fn concurrent_reads(clients: &[&Client], n: usize) -> usize {
    thread::scope(|s| {
        let handles: Vec<_> = (0..n)
            .map(|i| {
                let c = clients[i % clients.len()];
                s.spawn(move || {
                    let v = envelope(c.get("/douyin/user/?user_id=1"));
                    v["status_code"] != RATE_LIMITED
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap())
            .filter(|admitted| *admitted)
            .count()
    })
}

/// 40 reads at once against a burst of 10 (the bucket warmed by one, so 9 left): exactly 9
/// pass on the host's SQLite store.
#[test]
fn concurrent_requests_are_counted_exactly_on_the_sqlite_store() {
    let h = host(
        &[("limit_read_per_minute", "1"), ("limit_read_burst", "10")],
        None,
    );
    expect_admitted(h.client.get("/douyin/user/?user_id=1"));
    assert_eq!(concurrent_reads(&[&h.client], 40), 9);
}

/// Two host processes on one Redis store enforce one limit together: sequentially, the
/// burst is shared; concurrently, still exactly.
#[test]
fn two_hosts_on_one_redis_store_share_the_limit() {
    let redis = RedisServer::start().expect("redis-server");
    let dir = tempfile::tempdir().unwrap();
    let rc = redis.kv_runtime_config(dir.path());
    let vars = [("limit_read_per_minute", "1"), ("limit_read_burst", "6")];
    let (h1, h2) = (host(&vars, Some(rc.clone())), host(&vars, Some(rc)));
    let path = "/douyin/user/?user_id=1";
    for i in 0..6 {
        let c = if i % 2 == 0 { &h1.client } else { &h2.client };
        expect_admitted(c.get(path));
    }
    expect_limited(h1.client.get(path), "too many requests");
    expect_limited(h2.client.get(path), "too many requests");
    // The bucket is one Redis key, rewritten in place.
    let keys = redis.cli(&["KEYS", "limit:*"]).unwrap();
    assert_eq!(keys.trim(), "limit:read:a:127.0.0.1", "{keys}");
    // Concurrently through both hosts: the bucket emptied, warmed by one, then 30 at once.
    redis.cli(&["DEL", "limit:read:a:127.0.0.1"]).unwrap();
    expect_admitted(h1.client.get(path));
    assert_eq!(concurrent_reads(&[&h1.client, &h2.client], 30), 5);
}

/// A limit variable that is not a number: every limited request of the components that read
/// it answers 1502 naming the variable (HTTP 200, never a 5xx); other limits still work.
#[test]
fn a_limit_that_is_not_a_number_names_itself() {
    let h = host(&[("limit_follow_burst", "lots")], None);
    let c = &h.client;
    let (a, b) = (register(c, "lim_m"), register(c, "lim_n"));
    let r = follow(c, &a, &b, "1");
    assert_eq!(r.status, 200);
    let v = envelope(r);
    assert_eq!(v["status_code"], MISCONFIGURED, "{v}");
    let msg = v["status_msg"].as_str().unwrap();
    assert!(msg.contains("limit_follow_burst") && msg.contains("lots"), "{v}");
    expect_ok(&envelope(c.get(&format!("/douyin/user/?user_id={}&token={}", a.id, a.token))));
}
