//! End to end: the real client address behind trusted proxies (`trusted_proxies`,
//! `crates/spin-adapter/src/client_ip.rs`) and gzip for JSON responses
//! (`crates/spin-adapter/src/encoding.rs`), against the real components in the real host.
//!
//! The address is observed through the login throttle (`crates/core/src/throttle.rs`): 20 free
//! failures per client address, then a wait. Every request here comes from 127.0.0.1; what a
//! forwarding header claims must count only when the peer is a trusted proxy.
//!
//! The hosts run with `limits_enabled=false`: the abuse limits (`limits.rs`) would refuse these
//! bursts of logins and comments first, and they are not what is tested here.

use std::io::Read;
use std::time::Duration;

use serde_json::Value;
use tikspin_core::api::{TOO_MANY_ATTEMPTS, WRONG_CREDENTIALS};
use tikspin_e2e::api::{envelope, expect_ok, query, register, unique_name};
use tikspin_e2e::client::{Client, Reply};
use tikspin_e2e::harness::{HostConfig, TestHost};

const LOGIN: &str = "/douyin/user/login/";

fn start_host(variables: &[(&str, &str)]) -> TestHost {
    let mut vars = vec![("limits_enabled".to_string(), "false".to_string())];
    vars.extend(
        variables
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string())),
    );
    TestHost::start(HostConfig {
        variables: vars,
        ..Default::default()
    })
}

/// A login with extra request headers. Never a 5xx, whatever the headers.
#[track_caller]
fn login(c: &Client, username: &str, password: &str, headers: &[(&str, &str)]) -> Value {
    let path = format!(
        "{LOGIN}?{}",
        query(&[("username", username), ("password", password)])
    );
    envelope(c.post_with(&path, headers, b""))
}

fn code(v: &Value) -> i32 {
    v["status_code"].as_i64().unwrap() as i32
}

/// Fails logins for fresh usernames (so only the address counter grows) until `target` are
/// counted, each request with the headers `headers(i)` gives; waits out refusals as told.
/// Counting two past the 20 free failures leaves a refusal window of about 4 s.
fn fail_logins(c: &Client, target: u32, mut headers: impl FnMut(u32) -> Vec<(String, String)>) {
    let mut counted = 0;
    let mut attempt = 0;
    while counted < target {
        attempt += 1;
        let h = headers(attempt);
        let h: Vec<(&str, &str)> = h.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let v = login(c, &unique_name("nobody"), "wrong-password", &h);
        match code(&v) {
            WRONG_CREDENTIALS => counted += 1,
            TOO_MANY_ATTEMPTS => {
                assert!(counted >= 20, "refused after {counted} failures: {v}");
                std::thread::sleep(Duration::from_millis(wait_secs(&v) * 1000 + 100));
            }
            _ => panic!("failed login {counted}: {v}"),
        }
    }
}

fn wait_secs(v: &Value) -> u64 {
    let m = v["status_msg"].as_str().unwrap();
    let digits: String = m
        .split("try again in ")
        .nth(1)
        .unwrap_or_default()
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().unwrap_or(1)
}

fn xff(value: &str) -> Vec<(String, String)> {
    vec![("x-forwarded-for".into(), value.into())]
}

/// A failed login for a fresh username (only the address counter can refuse it).
fn attempt(c: &Client, headers: &[(&str, &str)]) -> Value {
    login(c, &unique_name("nobody"), "x", headers)
}

/// Each `(header, value)` case, sent alone, answers `want` (throttled or not).
#[track_caller]
fn each_answers(c: &Client, cases: &[(&str, &str)], want: i32) {
    for (name, value) in cases {
        let v = attempt(c, &[(name, value)]);
        assert_eq!(code(&v), want, "{name}: {value}: {v}");
    }
}

#[test]
fn a_forwarded_address_from_an_untrusted_peer_is_ignored() {
    // No trusted_proxies (the default): 127.0.0.1 is the client whatever it forwards.
    let host = start_host(&[]);
    let c = &host.client;
    // Every failure claims another address, in both headers; all count against 127.0.0.1.
    fail_logins(c, 22, |i| {
        vec![
            ("x-forwarded-for".into(), format!("203.0.113.{i}")),
            ("forwarded".into(), format!("for=198.51.100.{i}")),
        ]
    });
    let spoofed = [
        ("x-forwarded-for", "192.0.2.200"),
        ("forwarded", "for=\"[2001:db8::200]:4711\""),
        ("x-real-ip", "192.0.2.201"),
    ];
    each_answers(c, &spoofed, TOO_MANY_ATTEMPTS);
}

#[test]
fn a_trusted_proxys_forwarded_address_is_the_client() {
    let host = start_host(&[("trusted_proxies", "127.0.0.1/32")]);
    let c = &host.client;
    fail_logins(c, 22, |_| xff("203.0.113.7"));

    // The same client, however the proxy writes it.
    let same_client = [
        ("x-forwarded-for", "203.0.113.7"),
        // What the client put left of the proxy's entry is not believed.
        ("x-forwarded-for", "6.6.6.6, 203.0.113.7"),
        ("x-forwarded-for", "203.0.113.7:40000"),
        ("x-forwarded-for", "::ffff:203.0.113.7"),
        ("forwarded", "for=203.0.113.7;proto=https"),
        ("forwarded", "for=\"[::ffff:203.0.113.7]:1\""),
    ];
    each_answers(c, &same_client, TOO_MANY_ATTEMPTS);
    // Two header lines are one list: the last line's entry is the client.
    let v = attempt(
        c,
        &[
            ("x-forwarded-for", "203.0.113.8"),
            ("x-forwarded-for", "203.0.113.7"),
        ],
    );
    assert_eq!(
        code(&v),
        TOO_MANY_ATTEMPTS,
        "two X-Forwarded-For lines: {v}"
    );

    // Other clients behind the same proxy have their own counters.
    let other_clients = [
        ("x-forwarded-for", "203.0.113.8"),
        ("x-forwarded-for", "203.0.113.7, 203.0.113.8"),
        ("forwarded", "for=\"[2001:db8::7]:4711\""),
        ("forwarded", "for=203.0.113.7, for=203.0.113.9"),
    ];
    each_answers(c, &other_clients, WRONG_CREDENTIALS);
    // And the proxy itself (no forwarding header) is a client of its own, not locked.
    let v = attempt(c, &[]);
    assert_eq!(code(&v), WRONG_CREDENTIALS, "the proxy's own request: {v}");
}

/// Whatever a forwarding header holds, the request is served (never a 5xx); what cannot be
/// read counts against the nearest trustworthy address, the trusted peer.
#[test]
fn malformed_forwarding_headers_never_fail_a_request() {
    let host = start_host(&[("trusted_proxies", "127.0.0.1/32, 10.0.0.0/8")]);
    let c = &host.client;
    let user = unique_name("proxied");
    expect_ok(&envelope(c.post_empty(&format!(
        "/douyin/user/register/?{}",
        query(&[("username", &user), ("password", "secret123")])
    ))));
    // Long, but inside what HTTP servers accept in one header line (8 KiB is common).
    let huge = "9".repeat(6_000);
    let many = vec!["10.0.0.1"; 700].join(",");
    let bad: Vec<(&str, String)> = vec![
        ("x-forwarded-for", "unknown".into()),
        ("x-forwarded-for", "".into()),
        ("x-forwarded-for", ",,,".into()),
        ("x-forwarded-for", "999.999.999.999".into()),
        ("x-forwarded-for", "<script>alert(1)</script>".into()),
        ("x-forwarded-for", "[::1".into()),
        ("x-forwarded-for", huge.clone()),
        ("x-forwarded-for", many),
        ("forwarded", "for=unknown".into()),
        ("forwarded", "for=_hidden;by=_proxy".into()),
        ("forwarded", "for=\"[2001:db8::1\"".into()),
        ("forwarded", "for=2001:db8::1".into()),
        ("forwarded", "for=\"1.2.3.4:99999\"".into()),
        ("forwarded", ";;;===,,,\"".into()),
        ("forwarded", format!("for={huge}")),
        ("forwarded", "proto=https".into()),
    ];
    for (name, value) in &bad {
        let shown = &value[..value.len().min(40)];
        let v = login(c, &user, "secret123", &[(name, value)]);
        assert_eq!(code(&v), 0, "{name}: {shown}: {v}");
        let r = c.get_with("/douyin/feed/", &[(name, value)]);
        assert_eq!(r.status, 200, "feed with {name}: {shown}: {}", r.text());
    }
    // The failures behind unreadable headers count against the proxy (127.0.0.1), not against
    // nobody: 21 failures and a fresh username is refused without a header.
    fail_logins(c, 21, |i| {
        let (name, value) = &bad[i as usize % 6];
        vec![(name.to_string(), value.to_string())]
    });
    let v = attempt(c, &[]);
    assert_eq!(
        code(&v),
        TOO_MANY_ATTEMPTS,
        "the proxy, after unreadable entries: {v}"
    );
    // A readable client behind it is still its own.
    let v = attempt(c, &[("x-forwarded-for", "192.0.2.77")]);
    assert_eq!(
        code(&v),
        WRONG_CREDENTIALS,
        "a client behind the same proxy: {v}"
    );
}

// ---- gzip ---------------------------------------------------------------------------------

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_end(&mut out)
        .expect("a valid gzip stream");
    out
}

fn content_length(r: &Reply) -> usize {
    r.header("content-length")
        .expect("a content-length")
        .parse()
        .unwrap()
}

#[track_caller]
fn assert_plain(r: &Reply, plain: &[u8], what: &str) {
    assert_eq!(r.status, 200, "{what}");
    assert_eq!(r.header("content-encoding"), None, "{what}");
    assert_eq!(r.body, plain, "{what}");
}

#[test]
fn large_json_is_gzipped_only_for_clients_that_ask() {
    let host = start_host(&[]);
    let c = &host.client;
    let u = register(c, "gzip");
    // The welcome video is on every fresh feed; twenty long comments make its list large.
    let feed = envelope(c.get("/douyin/feed/"));
    let video = feed["video_list"][0]["id"]
        .as_i64()
        .expect("a video on the feed");
    for i in 0..20 {
        let text = format!(
            "comment {i}: {}",
            "the quick brown fox jumps over the lazy dog ".repeat(4)
        );
        let v = envelope(c.post_empty(&format!(
            "/douyin/comment/action/?{}",
            query(&[
                ("token", &u.token),
                ("video_id", &video.to_string()),
                ("action_type", "1"),
                ("comment_text", &text),
            ])
        )));
        expect_ok(&v);
    }
    let list = format!(
        "/douyin/comment/list/?{}",
        query(&[("token", &u.token), ("video_id", &video.to_string())])
    );

    // No Accept-Encoding: as it is, but the answer varies with it.
    let plain = c.get(&list);
    assert_eq!(plain.status, 200);
    assert_eq!(plain.header("content-encoding"), None);
    assert!(
        plain.body.len() > 4096,
        "a large list: {} bytes",
        plain.body.len()
    );
    assert_eq!(content_length(&plain), plain.body.len());
    assert_eq!(
        plain.header("vary").map(str::to_ascii_lowercase).as_deref(),
        Some("accept-encoding")
    );
    let json: Value = plain.json();
    assert_eq!(json["comment_list"].as_array().unwrap().len(), 20);

    for accept in [
        "gzip",
        "gzip, deflate, br",
        "br;q=1.0, gzip;q=0.5",
        "*",
        "x-gzip",
        "GZIP;Q=1",
    ] {
        let r = c.get_with(&list, &[("accept-encoding", accept)]);
        assert_eq!(r.status, 200, "{accept}");
        assert_eq!(r.header("content-encoding"), Some("gzip"), "{accept}");
        assert_eq!(
            r.header("vary").map(str::to_ascii_lowercase).as_deref(),
            Some("accept-encoding")
        );
        assert_eq!(
            content_length(&r),
            r.body.len(),
            "{accept}: the compressed length"
        );
        assert!(
            r.body.len() * 3 < plain.body.len(),
            "{accept}: {} bytes",
            r.body.len()
        );
        assert_eq!(
            gunzip(&r.body),
            plain.body,
            "{accept}: decodes to exactly the JSON"
        );
    }
    // Refused, or preferred less than identity, or not understood: as it is.
    for accept in [
        "identity",
        "gzip;q=0",
        "identity;q=0",
        "*;q=0",
        "gzip;q=0, *",
        "br, deflate",
        "gzip;q=0.5, identity",
        "gzip;q=2",
        "gzip;q=abc",
        ";;;,,,",
        "",
    ] {
        assert_plain(
            &c.get_with(&list, &[("accept-encoding", accept)]),
            &plain.body,
            accept,
        );
    }
    let long = "br, ".repeat(10_000) + "gzip";
    assert_plain(
        &c.get_with(&list, &[("accept-encoding", &long)]),
        &plain.body,
        "absurdly long",
    );

    // A small answer is not worth it, and does not vary.
    let small = c.get_with(
        &format!(
            "/douyin/user/?{}",
            query(&[("token", &u.token), ("user_id", &u.id.to_string())])
        ),
        &[("accept-encoding", "gzip")],
    );
    assert_eq!(small.status, 200);
    assert!(small.body.len() < 1024, "{}", small.text());
    assert_eq!(small.header("content-encoding"), None);
    assert_eq!(small.header("vary"), None);
    expect_ok(&small.json());

    // The feed, served by its own route code, is compressed too.
    let feed = c.get_with("/douyin/feed/", &[("accept-encoding", "gzip")]);
    if feed.header("content-encoding").is_some() {
        let v: Value = serde_json::from_slice(&gunzip(&feed.body)).unwrap();
        expect_ok(&v);
    }

    // Media never: an image as it is, whatever the client accepts.
    let profile = small.json();
    let avatar = profile["user"]["avatar"].as_str().unwrap();
    let path = &avatar[avatar.find("/media/").expect("a /media/ URL")..];
    let image = c.get_with(path, &[("accept-encoding", "gzip")]);
    assert_eq!(image.status, 200, "{path}");
    assert_eq!(image.header("content-encoding"), None, "{path}");
}
