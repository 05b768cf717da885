//! Accounts end to end: register, login and profile (`/douyin/user/...`) over HTTP, against the
//! real `user` component run by the real host. The contract is `../shared/API.md`; the status
//! codes are the table in `crates/core/src/api.rs`; the login throttle is `throttle.rs`.
//!
//! The host runs the whole app of `spin.toml`; every path these tests request is under
//! `/douyin/user/`, which `user` serves, except the routing table test, which holds every
//! component to the same 404/405 rules.
//!
//! Most tests share one host ([`shared_host`]); the throttle tests each start their own, because
//! every request comes from 127.0.0.1 and their failed logins would lock the others out.

use std::io::{Read, Write};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Barrier, Mutex, OnceLock, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};
use tikspin_core::api::{
    AUTH_REQUIRED, BAD_PARAMETER, INVALID_TOKEN, METHOD_NOT_ALLOWED, NOT_FOUND, NO_SUCH_ROUTE,
    SUCCESS, TOO_MANY_ATTEMPTS, USERNAME_TAKEN, WRONG_CREDENTIALS,
};
use tikspin_core::auth::jwt;
use tikspin_e2e::api::enc;
use tikspin_e2e::client::{Client, Reply};
use tikspin_e2e::harness::{HostConfig, TestHost};

/// The HS256 key the host runs with, so the tests can sign their own tokens.
const JWT_SECRET: &str = "e2e-accounts-secret-5b2f9c7e1d";

const REGISTER: &str = "/douyin/user/register/";
const LOGIN: &str = "/douyin/user/login/";
const PROFILE: &str = "/douyin/user/";

// ---- the app under test -------------------------------------------------------------------

fn start_host() -> TestHost {
    TestHost::start(HostConfig {
        variables: vec![("jwt_secret".into(), JWT_SECRET.into())],
        ..Default::default()
    })
}

/// One host for the tests of this file that can share one; it stops when the last of them
/// lets go (a `static` holding the host itself would never be dropped, leaving it running).
fn shared_host() -> Arc<TestHost> {
    static SHARED: Mutex<Weak<TestHost>> = Mutex::new(Weak::new());
    let mut slot = SHARED.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(host) = slot.upgrade() {
        return host;
    }
    let host = Arc::new(start_host());
    *slot = Arc::downgrade(&host);
    host
}

// ---- requests -----------------------------------------------------------------------------

fn form(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn with_query(path: &str, pairs: &[(&str, &str)]) -> String {
    if pairs.is_empty() {
        path.to_string()
    } else {
        format!("{path}?{}", form(pairs))
    }
}

/// The envelope every answer carries (API.md): a JSON object with an integer `status_code` and
/// a string `status_msg`, served as JSON with the given HTTP status. Returns the body.
fn envelope(r: &Reply, http_status: u16) -> Value {
    assert_eq!(r.status, http_status, "HTTP status; body: {}", r.text());
    let content_type = r.header("content-type").unwrap_or_default();
    assert!(
        content_type.starts_with("application/json"),
        "content-type {content_type:?}; body: {}",
        r.text()
    );
    let v = r.json();
    assert!(v.is_object(), "not a JSON object: {v}");
    assert!(
        v.get("status_code").is_some_and(Value::is_i64),
        "status_code missing or not an integer: {v}"
    );
    assert!(
        v.get("status_msg").is_some_and(Value::is_string),
        "status_msg missing or not a string: {v}"
    );
    v
}

/// POST with the parameters in the query string and an empty body, as the Android client does.
fn post_query(c: &Client, path: &str, pairs: &[(&str, &str)]) -> Value {
    envelope(&c.post_empty(&with_query(path, pairs)), 200)
}

fn post_form(c: &Client, path: &str, pairs: &[(&str, &str)]) -> Value {
    envelope(
        &c.post(
            path,
            "application/x-www-form-urlencoded",
            form(pairs).as_bytes(),
        ),
        200,
    )
}

fn get_query(c: &Client, path: &str, pairs: &[(&str, &str)]) -> Value {
    envelope(&c.get(&with_query(path, pairs)), 200)
}

fn get_bearer(c: &Client, path: &str, pairs: &[(&str, &str)], token: &str) -> Value {
    let auth = format!("Bearer {token}");
    envelope(
        &c.get_with(
            &with_query(path, pairs),
            &[("authorization", auth.as_str())],
        ),
        200,
    )
}

fn code(v: &Value) -> i32 {
    v["status_code"].as_i64().unwrap() as i32
}

fn msg(v: &Value) -> &str {
    v["status_msg"].as_str().unwrap()
}

/// A business error: HTTP 200 (checked by [`envelope`]), this code, and a status_msg that is a
/// real message and mentions each of `needles` (case-insensitively).
#[track_caller]
fn assert_err(v: &Value, expected: i32, needles: &[&str], what: &str) {
    assert_eq!(code(v), expected, "{what}: {v}");
    let m = msg(v).to_lowercase();
    assert!(
        !m.trim().is_empty() && m != "success",
        "{what}: no clear status_msg: {v}"
    );
    for needle in needles {
        assert!(
            m.contains(&needle.to_lowercase()),
            "{what}: status_msg {:?} should mention {needle:?}",
            msg(v)
        );
    }
}

/// register/login's failure shape: both keys present, `user_id: 0` and `token: ""`.
#[track_caller]
fn assert_no_session(v: &Value, what: &str) {
    assert_eq!(
        v.get("user_id"),
        Some(&json!(0)),
        "{what}: user_id must be present and 0: {v}"
    );
    assert_eq!(
        v.get("token"),
        Some(&json!("")),
        "{what}: token must be present and empty: {v}"
    );
}

/// A successful register/login: status 0, `user_id` a positive JSON-safe integer, a token.
#[track_caller]
fn session(v: &Value, what: &str) -> (i64, String) {
    assert_eq!(code(v), SUCCESS, "{what}: {v}");
    let id = v["user_id"]
        .as_i64()
        .unwrap_or_else(|| panic!("{what}: user_id not an integer: {v}"));
    assert!(id > 0 && id < (1 << 53), "{what}: user_id {id}");
    let token = v["token"]
        .as_str()
        .unwrap_or_else(|| panic!("{what}: token not a string: {v}"));
    assert!(!token.is_empty(), "{what}: empty token: {v}");
    (id, token.to_string())
}

fn register(c: &Client, username: &str, password: &str) -> (i64, String) {
    let v = post_query(
        c,
        REGISTER,
        &[("username", username), ("password", password)],
    );
    session(&v, &format!("register {username:?}"))
}

fn login(c: &Client, username: &str, password: &str) -> Value {
    post_query(c, LOGIN, &[("username", username), ("password", password)])
}

fn profile(c: &Client, token: &str, user_id: Option<&str>) -> Value {
    let mut pairs = vec![("token", token)];
    if let Some(id) = user_id {
        pairs.push(("user_id", id));
    }
    get_query(c, PROFILE, &pairs)
}

/// The `user` of a successful profile answer, checked field by field (API.md's `User`).
#[track_caller]
fn profile_user(v: &Value, base: &str, id: i64, name: &str) -> Value {
    assert_eq!(code(v), SUCCESS, "profile of {id}: {v}");
    let u = &v["user"];
    assert!(u.is_object(), "no user object: {v}");
    for key in [
        "id",
        "follow_count",
        "follower_count",
        "total_favorited",
        "work_count",
        "favorite_count",
    ] {
        assert!(
            u.get(key).is_some_and(Value::is_i64),
            "User.{key} missing or not an integer: {u}"
        );
    }
    for key in ["name", "avatar", "background_image", "signature"] {
        assert!(
            u.get(key).is_some_and(Value::is_string),
            "User.{key} missing or not a string: {u}"
        );
    }
    assert!(
        u.get("is_follow").is_some_and(Value::is_boolean),
        "User.is_follow missing or not a bool: {u}"
    );
    assert_eq!(u["id"], json!(id), "{u}");
    assert_eq!(
        u["name"],
        json!(name),
        "the username must round-trip unchanged: {u}"
    );
    for key in ["avatar", "background_image"] {
        let url = u[key].as_str().unwrap();
        let rest = url
            .strip_prefix("http://")
            .or_else(|| url.strip_prefix("https://"));
        assert!(
            rest.is_some_and(|r| !r.is_empty() && !r.starts_with('/')),
            "User.{key} must be an absolute http(s) URL: {url:?}"
        );
        // No public_base_url is configured: the base is the one the client used (its Host).
        assert!(
            url.starts_with(&format!("{base}/")),
            "User.{key} {url:?} should be under {base}"
        );
    }
    u.clone()
}

/// A fresh user: nothing followed, published or liked.
#[track_caller]
fn assert_fresh_counts(u: &Value) {
    for key in [
        "follow_count",
        "follower_count",
        "total_favorited",
        "work_count",
        "favorite_count",
    ] {
        assert_eq!(u[key], json!(0), "User.{key} of a new user: {u}");
    }
    assert_eq!(
        u["is_follow"],
        json!(false),
        "is_follow of oneself / of someone not followed: {u}"
    );
}

/// A username nobody has used yet: unique in this process and, by a per-run salt, across runs
/// against a long-lived server. At most 19 ASCII characters besides the tag.
fn fresh(tag: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    static SALT: OnceLock<u32> = OnceLock::new();
    let salt = *SALT.get_or_init(|| {
        let t = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
        (t.subsec_nanos() ^ std::process::id().rotate_left(16) ^ t.as_secs() as u32) & 0xff_ffff
    });
    format!("{tag}_{salt:06x}_{}", N.fetch_add(1, Ordering::SeqCst))
}

/// A fresh name padded with `fill` to exactly `chars` characters.
fn name_of_len(chars: usize, fill: char) -> String {
    let mut name = fresh("n");
    assert!(name.chars().count() < chars);
    while name.chars().count() < chars {
        name.push(fill);
    }
    name
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn b64url(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | (*b as u32) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

fn token_parts(token: &str) -> (&str, &str, &str) {
    let mut parts = token.split('.');
    let t = (
        parts.next().unwrap(),
        parts.next().unwrap(),
        parts.next().unwrap(),
    );
    assert!(parts.next().is_none(), "a JWT has three parts: {token}");
    t
}

fn claims(user_id: i64) -> String {
    let iat = now_ms() / 1000;
    b64url(
        json!({"sub": user_id.to_string(), "iat": iat, "exp": iat + 3600})
            .to_string()
            .as_bytes(),
    )
}

// ---- happy paths --------------------------------------------------------------------------

#[test]
fn register_login_and_profile_with_query_parameters() {
    let host = shared_host();
    let c = &host.client;
    let name = fresh("alice");
    let v = post_query(
        c,
        REGISTER,
        &[("username", &name), ("password", "alice-pass-1")],
    );
    let (id, token) = session(&v, "register");

    // No user_id: the token's own profile; user_id=0 means the same.
    let me = profile_user(&profile(c, &token, None), &c.base, id, &name);
    assert_fresh_counts(&me);
    let me0 = profile_user(&profile(c, &token, Some("0")), &c.base, id, &name);
    assert_eq!(me, me0);

    // login: the same user, a token that works.
    let (login_id, login_token) = session(&login(c, &name, "alice-pass-1"), "login");
    assert_eq!(login_id, id);
    profile_user(&profile(c, &login_token, None), &c.base, id, &name);

    // Someone else's profile, by user_id.
    let other = fresh("bob");
    let (other_id, other_token) = register(c, &other, "bob-pass-12");
    assert_ne!(other_id, id);
    let seen = profile_user(
        &profile(c, &token, Some(&other_id.to_string())),
        &c.base,
        other_id,
        &other,
    );
    assert_fresh_counts(&seen);
    // ... and the other way round: each token names its own user.
    profile_user(
        &profile(c, &other_token, Some(&id.to_string())),
        &c.base,
        id,
        &name,
    );
    profile_user(&profile(c, &other_token, None), &c.base, other_id, &other);
}

#[test]
fn form_body_paths_without_slash_and_bearer_token() {
    let host = shared_host();
    let c = &host.client;
    let name = fresh("carol");

    // Parameters in an x-www-form-urlencoded body, on the paths without the trailing slash.
    let v = post_form(
        c,
        "/douyin/user/register",
        &[("username", &name), ("password", "carol-pass")],
    );
    let (id, token) = session(&v, "register with a form body");
    let v = post_form(
        c,
        "/douyin/user/login",
        &[("username", &name), ("password", "carol-pass")],
    );
    let (login_id, _) = session(&v, "login with a form body");
    assert_eq!(login_id, id);
    // Trailing slash with a form body, and the query and the body together.
    let v = post_form(c, LOGIN, &[("username", &name), ("password", "carol-pass")]);
    assert_eq!(session(&v, "login/ with a form body").0, id);
    let mixed = with_query(LOGIN, &[("username", &name)]);
    let v = envelope(
        &c.post(
            &mixed,
            "application/x-www-form-urlencoded",
            form(&[("password", "carol-pass")]).as_bytes(),
        ),
        200,
    );
    assert_eq!(
        session(&v, "username in the query, password in the body").0,
        id
    );
    // The query is read first: a wrong password in the body does not override the query's.
    let query_first = with_query(LOGIN, &[("username", &name), ("password", "carol-pass")]);
    let v = envelope(
        &c.post(
            &query_first,
            "application/x-www-form-urlencoded",
            b"password=not-carols",
        ),
        200,
    );
    assert_eq!(session(&v, "query wins over the body").0, id);

    // Profile without the trailing slash, token in the query.
    profile_user(
        &get_query(c, "/douyin/user", &[("token", &token)]),
        &c.base,
        id,
        &name,
    );
    // Token as `Authorization: Bearer`, with and without user_id, with and without the slash.
    profile_user(&get_bearer(c, PROFILE, &[], &token), &c.base, id, &name);
    profile_user(
        &get_bearer(c, "/douyin/user", &[("user_id", &id.to_string())], &token),
        &c.base,
        id,
        &name,
    );
    // The client sends `token=` when logged out; with a bearer header that is still the caller.
    profile_user(
        &get_bearer(c, PROFILE, &[("token", "")], &token),
        &c.base,
        id,
        &name,
    );
}

#[test]
fn multipart_body_parameters() {
    // API.md: "Read the query first and fall back to an application/x-www-form-urlencoded or
    // multipart body."
    let host = shared_host();
    let c = &host.client;
    let name = fresh("dave");
    let boundary = "----tikspin-e2e-boundary";
    let body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"username\"\r\n\r\n{name}\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"password\"\r\n\r\ndave-pass\r\n--{boundary}--\r\n"
    );
    let content_type = format!("multipart/form-data; boundary={boundary}");
    let v = envelope(&c.post(REGISTER, &content_type, body.as_bytes()), 200);
    let (id, _) = session(&v, "register with a multipart body");
    let v = envelope(&c.post(LOGIN, &content_type, body.as_bytes()), 200);
    assert_eq!(session(&v, "login with a multipart body").0, id);
}

#[test]
fn chunked_form_body_and_reply_length() {
    // A body without Content-Length (chunked, as a streaming client sends it) is read whole,
    // and replies declare their length instead of being chunked.
    let host = shared_host();
    let c = &host.client;
    let name = fresh("erin");
    let form = format!("username={name}&password=erin-pass");
    let (first, second) = form.split_at(form.len() / 2);
    let chunked = format!(
        "{:x}\r\n{first}\r\n{:x}\r\n{second}\r\n0\r\n\r\n",
        first.len(),
        second.len()
    );
    let request = |path: &str| {
        format!(
            "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\
             Content-Type: application/x-www-form-urlencoded\r\n\
             Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n{chunked}"
        )
    };
    let reply = raw_request(c, &request(REGISTER));
    let length = reply
        .header("content-length")
        .map(|n| n.parse::<usize>().expect("a numeric content-length"));
    assert_eq!(length, Some(reply.body.len()), "register reply length");
    let (id, _) = session(&envelope(&reply, 200), "register with a chunked body");
    let v = envelope(&raw_request(c, &request(LOGIN)), 200);
    assert_eq!(session(&v, "login with a chunked body").0, id);
}

/// One raw HTTP/1.1 exchange with the host (for framing the client library would not send).
fn raw_request(c: &Client, request: &str) -> Reply {
    let authority = c.base.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(authority).expect("connect to the host");
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    parse_http_response(&raw)
}

// ---- register: bad input ------------------------------------------------------------------

#[test]
fn duplicate_username_is_refused_and_the_account_kept() {
    let host = shared_host();
    let c = &host.client;
    let name = fresh("erin");
    let (id, _) = register(c, &name, "first-password");
    let v = post_query(
        c,
        REGISTER,
        &[("username", &name), ("password", "second-password")],
    );
    assert_err(&v, USERNAME_TAKEN, &["username"], "duplicate register");
    assert_no_session(&v, "duplicate register");
    // The same through a form body.
    let v = post_form(
        c,
        REGISTER,
        &[("username", &name), ("password", "second-password")],
    );
    assert_err(
        &v,
        USERNAME_TAKEN,
        &["username"],
        "duplicate register (form)",
    );
    assert_no_session(&v, "duplicate register (form)");
    // The first account is untouched: its password still works, the second one does not.
    assert_eq!(
        session(
            &login(c, &name, "first-password"),
            "login after a duplicate"
        )
        .0,
        id
    );
    let v = login(c, &name, "second-password");
    assert_err(
        &v,
        WRONG_CREDENTIALS,
        &[],
        "login with the duplicate's password",
    );
    assert_no_session(&v, "login with the duplicate's password");
}

#[test]
fn concurrent_registrations_of_one_username_admit_exactly_one() {
    let host = shared_host();
    for round in 0..3 {
        let name = fresh("twin");
        let barrier = Arc::new(Barrier::new(2));
        let threads: Vec<_> = (0..2)
            .map(|i| {
                let (c, name, barrier) = (host.client.clone(), name.clone(), barrier.clone());
                std::thread::spawn(move || {
                    let password = format!("password-{i}");
                    barrier.wait();
                    let v = post_query(
                        &c,
                        REGISTER,
                        &[("username", &name), ("password", &password)],
                    );
                    (password, v)
                })
            })
            .collect();
        let results: Vec<(String, Value)> =
            threads.into_iter().map(|t| t.join().unwrap()).collect();
        let (winners, losers): (Vec<_>, Vec<_>) =
            results.iter().partition(|(_, v)| code(v) == SUCCESS);
        assert_eq!(
            winners.len(),
            1,
            "round {round}: exactly one registration must succeed: {results:?}"
        );
        let (win_password, win) = winners[0];
        let (lose_password, lose) = losers[0];
        let (id, token) = session(win, "the winner");
        assert_err(lose, USERNAME_TAKEN, &["username"], "the loser");
        assert_no_session(lose, "the loser");
        // One account, with the winner's password.
        profile_user(
            &profile(&host.client, &token, None),
            &host.client.base,
            id,
            &name,
        );
        assert_eq!(
            session(&login(&host.client, &name, win_password), "winner login").0,
            id
        );
        if round == 0 {
            assert_err(
                &login(&host.client, &name, lose_password),
                WRONG_CREDENTIALS,
                &[],
                "loser login",
            );
        }
    }
}

#[test]
fn missing_or_empty_username_or_password_writes_nothing() {
    let host = shared_host();
    let c = &host.client;
    let name = fresh("frank");
    let cases: [(&[(&str, &str)], &str); 5] = [
        (&[("password", "frank-pass")], "username"),
        (&[("username", ""), ("password", "frank-pass")], "username"),
        (&[("username", &name)], "password"),
        (&[("username", &name), ("password", "")], "password"),
        (&[], "username"),
    ];
    for (pairs, named) in cases {
        for path in [REGISTER, LOGIN] {
            let v = post_query(c, path, pairs);
            let what = format!("{path} with {pairs:?}");
            assert_err(&v, BAD_PARAMETER, &[named], &what);
            assert_no_session(&v, &what);
            let v = post_form(c, path, pairs);
            assert_err(&v, BAD_PARAMETER, &[named], &format!("{what} (form)"));
        }
    }
    // Nothing was written under the name: it is still free.
    register(c, &name, "frank-pass");
}

#[test]
fn username_length_is_counted_in_characters() {
    let host = shared_host();
    let c = &host.client;
    // 32 characters are accepted: ASCII, CJK (3 bytes each) and emoji (4 bytes each) alike.
    for fill in ['x', '字', '😀'] {
        let name = name_of_len(32, fill);
        let (id, token) = register(c, &name, "len-pass-1");
        profile_user(&profile(c, &token, None), &c.base, id, &name);
        assert_eq!(
            session(
                &login(c, &name, "len-pass-1"),
                "login with a 32-character name"
            )
            .0,
            id
        );
    }
    // Made only of CJK / emoji, too (unique through a fresh ASCII-free suffix of digits as CJK).
    let digits = ['零', '一', '二', '三', '四', '五', '六', '七', '八', '九'];
    let n: String = fresh("z")
        .chars()
        .filter(char::is_ascii_hexdigit)
        .map(|d| digits[d.to_digit(16).unwrap() as usize % 10])
        .collect();
    let cjk: String = format!("抖音用户{n}😀");
    assert!(cjk.chars().count() <= 32);
    let (id, token) = register(c, &cjk, "cjk-pass-1");
    profile_user(&profile(c, &token, None), &c.base, id, &cjk);

    // 33 characters are refused, whatever they are, and nothing is written.
    for fill in ['x', '字', '😀'] {
        let name = name_of_len(33, fill);
        let v = post_query(
            c,
            REGISTER,
            &[("username", &name), ("password", "len-pass-1")],
        );
        assert_err(
            &v,
            BAD_PARAMETER,
            &["username"],
            &format!("33 chars of {fill:?}"),
        );
        assert_no_session(&v, "33-character name");
        if fill == 'x' {
            let v = login(c, &name, "len-pass-1");
            assert_err(
                &v,
                WRONG_CREDENTIALS,
                &[],
                "login with a refused 33-character name",
            );
        }
        // The same name cut to 32 characters was never taken by the refused attempt.
        let cut: String = name.chars().take(32).collect();
        register(c, &cut, "len-pass-1");
    }
}

#[test]
fn password_length_is_6_to_32_characters() {
    let host = shared_host();
    let c = &host.client;
    let refused = [
        "12345".to_string(),
        "x".repeat(33),
        "密码密码密".to_string(), // 5 characters, 15 bytes
        "😀".repeat(33),
    ];
    for password in &refused {
        let name = fresh("pw");
        let v = post_query(c, REGISTER, &[("username", &name), ("password", password)]);
        let what = format!("password of {} chars", password.chars().count());
        assert_err(&v, BAD_PARAMETER, &["password"], &what);
        assert_no_session(&v, &what);
        // Nothing written: the name is still free.
        register(c, &name, "valid-password");
    }
    let accepted = [
        "123456".to_string(),
        "x".repeat(32),
        "密码密码密码".to_string(),
        "😀".repeat(32),
    ];
    for password in &accepted {
        let name = fresh("pw");
        let (id, _) = register(c, &name, password);
        let v = login(c, &name, password);
        assert_eq!(
            session(
                &v,
                &format!(
                    "login with a password of {} chars",
                    password.chars().count()
                )
            )
            .0,
            id
        );
    }
}

// ---- login ---------------------------------------------------------------------------------

#[test]
fn wrong_password_and_unknown_user_get_the_same_answer() {
    let host = shared_host();
    let c = &host.client;
    let name = fresh("gina");
    register(c, &name, "gina-password");
    let wrong = login(c, &name, "not-ginas-password");
    let unknown = login(c, &fresh("nobody"), "gina-password");
    assert_err(&wrong, WRONG_CREDENTIALS, &[], "wrong password");
    assert_err(&unknown, WRONG_CREDENTIALS, &[], "unknown user");
    assert_no_session(&wrong, "wrong password");
    assert_no_session(&unknown, "unknown user");
    assert_eq!(
        msg(&wrong),
        msg(&unknown),
        "the answer must not tell which usernames exist"
    );
    assert_eq!(wrong, unknown);
}

// ---- profile: bad input --------------------------------------------------------------------

#[test]
fn profile_rejects_bad_and_unknown_user_ids() {
    let host = shared_host();
    let c = &host.client;
    let name = fresh("hank");
    let (id, token) = register(c, &name, "hank-password");
    for bad in [
        "abc",
        "-1",
        "-42",
        "1.5",
        "12abc",
        "0x10",
        "9007199254740992",
        "99999999999999999999",
    ] {
        let v = profile(c, &token, Some(bad));
        assert_err(&v, BAD_PARAMETER, &["user_id"], &format!("user_id={bad}"));
        assert!(
            v.get("user").is_none_or(|u| !u.is_object()),
            "user_id={bad}: no user on failure: {v}"
        );
    }
    let unknown = (id + 1_000_000).to_string();
    let v = profile(c, &token, Some(&unknown));
    assert_err(&v, NOT_FOUND, &["user"], "unknown user_id");
    assert!(
        v.get("user").is_none_or(|u| !u.is_object()),
        "unknown user_id: {v}"
    );
    // The caller is still fine.
    profile_user(&profile(c, &token, None), &c.base, id, &name);
}

#[test]
fn profile_rejects_missing_forged_expired_and_orphan_tokens() {
    let host = shared_host();
    let c = &host.client;
    let name = fresh("ivy");
    let (id, real) = register(c, &name, "ivy-password");
    let (other_id, _) = register(c, &fresh("jack"), "jack-password");
    let now = now_ms();
    const DAY_MS: i64 = 24 * 60 * 60 * 1000;

    // Control: a token the test signs with the server's secret works, also an old one that the
    // client kept for 29 days (it never refreshes); so the refusals below are about the token.
    let own = jwt::issue(JWT_SECRET, id, now).unwrap();
    profile_user(&profile(c, &own, None), &c.base, id, &name);
    let old = jwt::issue(JWT_SECRET, id, now - 29 * DAY_MS).unwrap();
    profile_user(&profile(c, &old, None), &c.base, id, &name);

    // No token at all.
    for pairs in [vec![], vec![("token", "")], vec![("user_id", "0")]] {
        let v = get_query(c, PROFILE, &pairs);
        assert_err(
            &v,
            AUTH_REQUIRED,
            &["token"],
            &format!("no token: {pairs:?}"),
        );
    }
    let v = envelope(
        &c.get_with(PROFILE, &[("authorization", "Basic Zm9vOmJhcg==")]),
        200,
    );
    assert_err(&v, AUTH_REQUIRED, &["token"], "Basic auth is not a token");

    // The hand-made tokens below are well-formed: base64url as RFC 4648 §5 (no padding).
    for (raw, encoded) in [
        (&b"f"[..], "Zg"),
        (b"fo", "Zm8"),
        (b"foo", "Zm9v"),
        (b"foob", "Zm9vYg"),
        (b"\xfb\xff", "-_8"),
    ] {
        assert_eq!(b64url(raw), encoded);
    }
    let (header, payload, signature) = token_parts(&real);
    let mut flipped: Vec<char> = signature.chars().collect();
    flipped[0] = if flipped[0] == 'A' { 'B' } else { 'A' };
    let flipped: String = flipped.into_iter().collect();
    let none_header = b64url(br#"{"alg":"none","typ":"JWT"}"#);
    let bad = [
        ("garbage", "not-a-token".to_string()),
        ("three garbage parts", "a.b.c".to_string()),
        ("signature changed", format!("{header}.{payload}.{flipped}")),
        ("signature removed", format!("{header}.{payload}.")),
        (
            "payload swapped to another user",
            format!("{header}.{}.{signature}", claims(other_id)),
        ),
        (
            "signed with another secret",
            jwt::issue("not-the-server-secret", id, now).unwrap(),
        ),
        (
            "alg none, no signature",
            format!("{none_header}.{}.", claims(id)),
        ),
        (
            "alg none, the real signature",
            format!("{none_header}.{payload}.{signature}"),
        ),
        (
            "alg HS512 header",
            format!(
                "{}.{payload}.{signature}",
                b64url(br#"{"alg":"HS512","typ":"JWT"}"#)
            ),
        ),
        (
            "expired",
            jwt::issue(JWT_SECRET, id, now - 31 * DAY_MS).unwrap(),
        ),
        (
            "user does not exist",
            jwt::issue(JWT_SECRET, id + 1_000_000, now).unwrap(),
        ),
    ];
    for (what, token) in &bad {
        let v = profile(c, token, None);
        assert_err(&v, INVALID_TOKEN, &["token"], what);
        assert!(v.get("user").is_none_or(|u| !u.is_object()), "{what}: {v}");
        // Asking for a real user does not help.
        let v = profile(c, token, Some(&id.to_string()));
        assert_err(
            &v,
            INVALID_TOKEN,
            &["token"],
            &format!("{what}, with user_id"),
        );
        let v = get_bearer(c, PROFILE, &[], token);
        assert_err(
            &v,
            INVALID_TOKEN,
            &["token"],
            &format!("{what}, as a bearer token"),
        );
    }
    // The real token still works after all that.
    profile_user(&profile(c, &real, None), &c.base, id, &name);
}

// ---- routing -------------------------------------------------------------------------------

#[test]
fn wrong_method_is_405_and_unknown_path_404_with_the_envelope() {
    let host = shared_host();
    let c = &host.client;
    let name = fresh("kim");
    let creds = [("username", name.as_str()), ("password", "kim-password")];
    for path in [
        REGISTER,
        "/douyin/user/register",
        LOGIN,
        "/douyin/user/login",
    ] {
        let v = envelope(&c.get(&with_query(path, &creds)), 405);
        assert_err(&v, METHOD_NOT_ALLOWED, &[], &format!("GET {path}"));
    }
    for path in [PROFILE, "/douyin/user"] {
        let v = envelope(&c.post_empty(path), 405);
        assert_err(&v, METHOD_NOT_ALLOWED, &[], &format!("POST {path}"));
    }
    for path in [
        "/douyin/user/nope/",
        "/douyin/user/nope",
        "/douyin/user/register/extra/",
        "/douyin/user/login/x",
    ] {
        let v = envelope(&c.get(path), 404);
        assert_err(&v, NO_SUCH_ROUTE, &[], &format!("GET {path}"));
        let v = envelope(&c.post_empty(&with_query(path, &creds)), 404);
        assert_err(&v, NO_SUCH_ROUTE, &[], &format!("POST {path}"));
    }
    // The GET on register registered nothing.
    register(c, &name, "kim-password");
}

/// Every endpoint of API.md, and a URL of each kind `media` serves, with the `Allow` its 405
/// must carry: the methods it answers.
const ALLOWED: [(&str, &str); 21] = [
    ("/douyin/feed/", "GET"),
    ("/douyin/user/register/", "POST"),
    ("/douyin/user/login/", "POST"),
    ("/douyin/user/", "GET"),
    ("/douyin/publish/action/", "POST"),
    ("/douyin/publish/list/", "GET"),
    ("/douyin/favorite/action/", "POST"),
    ("/douyin/favorite/list/", "GET"),
    ("/douyin/comment/action/", "POST"),
    ("/douyin/comment/list/", "GET"),
    ("/douyin/relation/action/", "POST"),
    ("/douyin/relation/follow/list/", "GET"),
    ("/douyin/relation/follower/list/", "GET"),
    ("/douyin/relation/friend/list/", "GET"),
    ("/douyin/message/action/", "POST"),
    ("/douyin/message/chat/", "GET"),
    ("/media/avatar/7.png", "GET, HEAD"),
    ("/media/background/7.png", "GET, HEAD"),
    ("/media/cover/999999999.jpg", "GET, HEAD"),
    ("/media/videos/0123456789abcdef01234567.mp4", "GET, HEAD"),
    ("/media/covers/999999999.jpg", "GET, HEAD"),
];

/// What a fuzzer tries on every path.
const METHODS: [&str; 7] = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];

/// A 405 or 404 with the envelope (a HEAD answer has no body to check).
#[track_caller]
fn refused(r: &Reply, method: &str, status: u16, code: i32, what: &str) {
    assert_eq!(r.status, status, "{what}: {}", r.text());
    if method != "HEAD" {
        let v = r.json();
        assert_eq!(v["status_code"], code, "{what}: {v}");
        assert!(
            !v["status_msg"]
                .as_str()
                .unwrap_or_default()
                .trim()
                .is_empty(),
            "{what}: a readable status_msg: {v}"
        );
    }
}

#[test]
fn every_endpoint_answers_a_wrong_method_405_with_allow() {
    let host = shared_host();
    let c = &host.client;
    for (endpoint, allow) in ALLOWED {
        let accepted: Vec<&str> = allow.split(", ").collect();
        for path in [endpoint, endpoint.trim_end_matches('/')] {
            for method in METHODS {
                let what = format!("{method} {path}");
                let r = c.request(method, path);
                if accepted.contains(&method) {
                    // No parameters: a business refusal (or the feed), a missing medium, never
                    // a 405: `Allow` lists only what is answered.
                    assert_ne!(r.status, 405, "{what}: {}", r.text());
                    assert_eq!(r.header("allow"), None, "{what}");
                    if path.starts_with("/douyin/") {
                        assert_eq!(r.status, 200, "{what}: {}", r.text());
                    }
                } else {
                    refused(&r, method, 405, METHOD_NOT_ALLOWED, &what);
                    assert_eq!(r.header("allow"), Some(allow), "{what}");
                }
            }
        }
    }
    // Unknown paths, in a group's namespace or none, stay 404 whatever the method.
    for path in [
        "/douyin/feed/more/",
        "/douyin/publish/",
        "/douyin/nope/",
        "/media/avatar",
        "/media/nope/7.png",
        "/media/avatar/7/8.png",
        "/nope",
    ] {
        for method in METHODS {
            let what = format!("{method} {path}");
            let r = c.request(method, path);
            refused(&r, method, 404, NO_SUCH_ROUTE, &what);
            assert_eq!(r.header("allow"), None, "{what}");
        }
    }
    // `/` is the web client's page (components/web): read-only, so every other method is a 405.
    for method in METHODS {
        let what = format!("{method} /");
        let r = c.request(method, "/");
        if matches!(method, "GET" | "HEAD") {
            assert_eq!(r.status, 200, "{what}");
        } else {
            refused(&r, method, 405, METHOD_NOT_ALLOWED, &what);
            assert!(r.header("allow").is_some_and(|a| a.contains("GET")), "{what}");
        }
    }
}

// ---- brute force ---------------------------------------------------------------------------

/// The wait in a "too many attempts, try again in N s" message.
#[track_caller]
fn retry_after_secs(v: &Value) -> u64 {
    let m = msg(v);
    let digits: String = m
        .chars()
        .skip_while(|c| !c.is_ascii_digit())
        .take_while(char::is_ascii_digit)
        .collect();
    digits
        .parse()
        .unwrap_or_else(|_| panic!("the refusal should say how long to wait: {m:?}"))
}

/// Fails logins (wrong password; `username()` per attempt) until the server has counted `target`
/// failures, waiting out each refusal as told. The throttle's delay doubles with each failure
/// past the free ones (1 s, 2 s, 4 s, ...), so counting two more than the free failures leaves
/// a refusal window of about 4 s: enough for the assertions on a busy machine.
fn fail_logins(c: &Client, target: u32, free: u32, mut username: impl FnMut() -> String) {
    let mut counted = 0;
    while counted < target {
        let v = login(c, &username(), "wrong-password");
        match code(&v) {
            WRONG_CREDENTIALS => counted += 1,
            TOO_MANY_ATTEMPTS => {
                assert!(
                    counted >= free,
                    "refused after only {counted} failures (the first {free} are free): {v}"
                );
                std::thread::sleep(Duration::from_millis(retry_after_secs(&v) * 1000 + 100));
            }
            _ => panic!("failed login {counted}: {v}"),
        }
    }
}

#[test]
fn repeated_failed_logins_lock_the_username_for_a_while() {
    let host = start_host();
    let c = &host.client;
    let victim = fresh("victim");
    let (victim_id, _) = register(c, &victim, "victim-password");
    let other = fresh("other");
    let (other_id, _) = register(c, &other, "other-password");

    // throttle.rs: 5 free failures per username, then 1 s, 2 s, 4 s, ... after the last one.
    fail_logins(c, 7, 5, || victim.clone());

    // Now even the right password is refused, and nothing else is said about the account.
    let v = login(c, &victim, "victim-password");
    assert_err(
        &v,
        TOO_MANY_ATTEMPTS,
        &["too many attempts"],
        "right password while locked",
    );
    assert_no_session(&v, "right password while locked");
    let wait = retry_after_secs(&v);
    assert!(
        (1..=4).contains(&wait),
        "after 7 failures the wait is at most 4 s: {v}"
    );
    // A refused attempt is refused again (it checked nothing, counted nothing) ...
    let v = login(c, &victim, "victim-password");
    assert_err(
        &v,
        TOO_MANY_ATTEMPTS,
        &["too many attempts"],
        "second attempt while locked",
    );
    // ... also from another client address: the lock guards the account, not the address.
    let v = login_from(LOOPBACK_2, c, &victim, "victim-password");
    assert_err(
        &v,
        TOO_MANY_ATTEMPTS,
        &["too many attempts"],
        "locked username from another address",
    );
    assert_no_session(&v, "locked username from another address");

    // Another username is not blocked, from this client (7 failures are under the per-address
    // limit of 20) or from another one.
    assert_eq!(
        session(
            &login(c, &other, "other-password"),
            "other user, same client"
        )
        .0,
        other_id
    );
    assert_eq!(
        session(
            &login_from(LOOPBACK_2, c, &other, "other-password"),
            "other user, other client"
        )
        .0,
        other_id
    );

    // For a while, not for ever: after the wait the right password works and clears the count.
    std::thread::sleep(Duration::from_millis(wait * 1000 + 300));
    assert_eq!(
        session(
            &login(c, &victim, "victim-password"),
            "login after the wait"
        )
        .0,
        victim_id
    );
    let v = login(c, &victim, "wrong-password");
    assert_err(
        &v,
        WRONG_CREDENTIALS,
        &[],
        "one failure after a successful login is a plain failure",
    );
    assert_eq!(
        session(
            &login(c, &victim, "victim-password"),
            "and the right password works"
        )
        .0,
        victim_id
    );
}

#[test]
fn repeated_failed_logins_from_one_address_lock_that_address() {
    let host = start_host();
    let c = &host.client;
    let alice = fresh("alice");
    let (alice_id, _) = register(c, &alice, "alice-password");

    // throttle.rs: 20 free failures per address. Each failure here is for a different unknown
    // username, so only the address counter grows.
    fail_logins(c, 22, 20, || fresh("guess"));

    // Every username from this address is refused now, even with the right password.
    let v = login(c, &alice, "alice-password");
    assert_err(
        &v,
        TOO_MANY_ATTEMPTS,
        &["too many attempts"],
        "right password from a locked address",
    );
    assert_no_session(&v, "right password from a locked address");
    // Claiming another address in a header changes nothing: under Spin the client's own
    // `spin-client-addr` reaches the component first and the runtime's value after it.
    let forged = c.post_with(
        &with_query(
            LOGIN,
            &[("username", &alice), ("password", "alice-password")],
        ),
        &[("spin-client-addr", "10.9.8.7:1")],
        b"",
    );
    assert_err(
        &envelope(&forged, 200),
        TOO_MANY_ATTEMPTS,
        &["too many attempts"],
        "a forged spin-client-addr from a locked address",
    );
    // Another client is not: alice logs in from 127.0.0.2.
    let v = login_from(LOOPBACK_2, c, &alice, "alice-password");
    assert_eq!(session(&v, "alice from another address").0, alice_id);
    // A valid login does not reset the address: it is still refused here.
    let v = login(c, &alice, "alice-password");
    assert_err(
        &v,
        TOO_MANY_ATTEMPTS,
        &["too many attempts"],
        "still locked after a valid login elsewhere",
    );
}

// ---- a second client address ---------------------------------------------------------------

/// Requests from 127.0.0.2 reach the host (on 127.0.0.1) as another client: the host passes
/// the TCP peer address on as the last `spin-client-addr` value (after any the client sent, as
/// Spin does), so the only way to be another client is to connect from another address.
const LOOPBACK_2: [u8; 4] = [127, 0, 0, 2];

/// `login` from the local address `src` (a loopback alias), over a raw HTTP/1.1 connection.
fn login_from(src: [u8; 4], c: &Client, username: &str, password: &str) -> Value {
    let port: u16 = c
        .base
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("a local host's port");
    let path = with_query(LOGIN, &[("username", username), ("password", password)]);
    let mut stream =
        connect_from(src, port).unwrap_or_else(|e| panic!("cannot connect from {src:?}: {e}"));
    stream
        .set_read_timeout(Some(Duration::from_secs(120)))
        .unwrap();
    write!(stream, "POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    envelope(&parse_http_response(&raw), 200)
}

fn parse_http_response(raw: &[u8]) -> Reply {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("an HTTP response head");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    let chunked = headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    if chunked {
        let (mut out, mut rest) = (Vec::new(), &body[..]);
        loop {
            let eol = rest
                .windows(2)
                .position(|w| w == b"\r\n")
                .expect("a chunk size line");
            let size_text = String::from_utf8_lossy(&rest[..eol]);
            let size =
                usize::from_str_radix(size_text.split(';').next().unwrap().trim(), 16).unwrap();
            if size == 0 {
                break;
            }
            out.extend_from_slice(&rest[eol + 2..eol + 2 + size]);
            rest = &rest[eol + 2 + size + 2..];
        }
        body = out;
    }
    Reply {
        status,
        headers,
        body,
    }
}

/// A TCP connection to 127.0.0.1:`port` bound to the local address `src` first. std cannot bind
/// before connecting, so this calls the C library std already links.
#[cfg(target_os = "linux")]
fn connect_from(src: [u8; 4], port: u16) -> std::io::Result<std::net::TcpStream> {
    use std::os::fd::FromRawFd;

    #[repr(C)]
    struct SockaddrIn {
        family: u16,
        port: [u8; 2],
        addr: [u8; 4],
        zero: [u8; 8],
    }
    extern "C" {
        fn socket(domain: i32, ty: i32, protocol: i32) -> i32;
        fn bind(fd: i32, addr: *const SockaddrIn, len: u32) -> i32;
        fn connect(fd: i32, addr: *const SockaddrIn, len: u32) -> i32;
        fn close(fd: i32) -> i32;
    }
    const AF_INET: i32 = 2;
    const SOCK_STREAM: i32 = 1;
    const SOCK_CLOEXEC: i32 = 0o2000000;
    let local = SockaddrIn {
        family: AF_INET as u16,
        port: [0, 0],
        addr: src,
        zero: [0; 8],
    };
    let remote = SockaddrIn {
        family: AF_INET as u16,
        port: port.to_be_bytes(),
        addr: [127, 0, 0, 1],
        zero: [0; 8],
    };
    let len = std::mem::size_of::<SockaddrIn>() as u32;
    // SAFETY: plain socket calls on a descriptor this function owns; the addresses outlive the
    // calls; on success the descriptor's ownership moves into the TcpStream.
    unsafe {
        let fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        if bind(fd, &local, len) != 0 || connect(fd, &remote, len) != 0 {
            let err = std::io::Error::last_os_error();
            close(fd);
            return Err(err);
        }
        Ok(std::net::TcpStream::from_raw_fd(fd))
    }
}

#[cfg(not(target_os = "linux"))]
fn connect_from(_src: [u8; 4], _port: u16) -> std::io::Result<std::net::TcpStream> {
    Err(std::io::Error::other(
        "connecting from another loopback address is only implemented on Linux",
    ))
}

// ---- the system user ----------------------------------------------------------------------

/// Spellings of the system user's name (`TikSpin`): case, Unicode compatibility forms,
/// separators and invisible characters must not make it registrable.
const SYSTEM_NAME_VARIANTS: [&str; 10] = [
    "TikSpin",
    "tikspin",
    "TIKSPIN",
    "ＴｉｋＳｐｉｎ",
    "𝐓𝐢𝐤𝐒𝐩𝐢𝐧",
    "Tik Spin",
    "tik_spin",
    "Tik\u{200B}Spin",
    "TİKSPİN",
    "ⓉⓘⓚⓈⓟⓘⓝ",
];

/// On a fresh host, before anything is seeded, nobody can register as the system user (not
/// even by racing), log in as it, or own the welcome video: the migration made the system user
/// before the first registration could, and the first feed's welcome video is its own.
#[test]
fn the_system_user_cannot_be_registered_or_logged_in_as_on_a_fresh_host() {
    let host = start_host();
    let c = &host.client;
    let other_reserved = ["admin", "Root", "SYSTEM"];
    for &name in SYSTEM_NAME_VARIANTS.iter().chain(&other_reserved) {
        let v = post_query(
            c,
            REGISTER,
            &[("username", name), ("password", "secret123")],
        );
        assert_err(
            &v,
            tikspin_core::api::USERNAME_RESERVED,
            &["reserved"],
            &format!("registering {name:?} on a fresh host"),
        );
        assert_no_session(&v, &format!("registering {name:?}"));
    }

    // A race of every variant at once: all refused.
    let barrier = Barrier::new(SYSTEM_NAME_VARIANTS.len());
    let answers: Vec<Value> = std::thread::scope(|s| {
        let handles: Vec<_> = SYSTEM_NAME_VARIANTS
            .iter()
            .map(|name| {
                let barrier = &barrier;
                s.spawn(move || {
                    barrier.wait();
                    post_query(
                        c,
                        REGISTER,
                        &[("username", name), ("password", "secret123")],
                    )
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (name, v) in SYSTEM_NAME_VARIANTS.iter().zip(&answers) {
        assert_err(
            v,
            tikspin_core::api::USERNAME_RESERVED,
            &["reserved"],
            &format!("racing to register {name:?}"),
        );
    }

    // Nobody logs in as the system user, whatever the password (the throttle aside: a few
    // tries stay under its free failures).
    for password in ["!", "secret123", "TikSpin"] {
        let v = login(c, "TikSpin", password);
        assert_err(
            &v,
            WRONG_CREDENTIALS,
            &["wrong username or password"],
            &format!("logging in as the system user with {password:?}"),
        );
        assert_no_session(&v, "logging in as the system user");
    }

    // An ordinary user, then the first feed: the welcome video's author is the system user.
    let (alice, _) = register(c, &fresh("alice"), "secret123");
    let feed = envelope(&c.get("/douyin/feed/"), 200);
    assert_eq!(code(&feed), SUCCESS, "{feed}");
    let videos = feed["video_list"].as_array().unwrap();
    assert_eq!(videos.len(), 1, "the welcome video: {feed}");
    let author = &videos[0]["author"];
    assert_eq!(author["name"], "TikSpin", "{author}");
    let system = author["id"].as_i64().unwrap();
    assert!(system > 0 && system != alice, "{author}");
    // Still refused now that the welcome video exists.
    let v = post_query(
        c,
        REGISTER,
        &[("username", "tikspin"), ("password", "secret123")],
    );
    assert_err(
        &v,
        tikspin_core::api::USERNAME_RESERVED,
        &["reserved"],
        "after the seed",
    );
}

// ---- the login throttle while its store is down --------------------------------------------

/// `redis-server`'s own PID, so it can be killed the hard way (SIGKILL, as a crash would).
fn redis_pid(redis: &tikspin_e2e::servers::RedisServer) -> u32 {
    let info = redis.cli(&["INFO", "server"]).unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix("process_id:"))
        .and_then(|pid| pid.trim().parse().ok())
        .unwrap_or_else(|| panic!("no process_id in INFO server: {info}"))
}

/// With the counters in Redis and Redis killed, a login is refused quickly in the envelope,
/// without its password being checked (the right one is refused too), while registration goes
/// on; once Redis is back on its port, logins work again without restarting the host.
#[test]
fn login_fails_closed_while_the_throttle_store_is_down() {
    let mut redis = tikspin_e2e::servers::RedisServer::start().expect("redis-server");
    let config_dir = tempfile::tempdir().unwrap();
    let variables = vec![
        ("jwt_secret".to_string(), JWT_SECRET.to_string()),
        ("redis_address".to_string(), redis.url()),
        ("seed_welcome_video".to_string(), "false".to_string()),
    ];
    let host = TestHost::start(HostConfig {
        manifest: tikspin_e2e::harness::manifest_for(&variables),
        // The production store layout: the throttle's counters on Redis.
        runtime_config: Some(redis.kv_runtime_config(config_dir.path())),
        variables,
        ..Default::default()
    });
    let c = &host.client;
    let name = fresh("outage");
    let (id, _) = register(c, &name, "secret123");
    assert_eq!(session(&login(c, &name, "secret123"), "Redis up").0, id);
    // A failure is counted in Redis: the counters really live there.
    assert_err(
        &login(c, &name, "wrong-password"),
        WRONG_CREDENTIALS,
        &[],
        "a wrong password with Redis up",
    );
    assert!(
        redis
            .cli(&["KEYS", "throttle:login:*"])
            .unwrap()
            .contains("throttle:login:"),
        "no throttle counter in Redis"
    );

    let pid = redis_pid(&redis);
    let killed = std::process::Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .unwrap();
    assert!(killed.success(), "kill -KILL {pid}");
    assert!(
        tikspin_e2e::wait_until(Duration::from_secs(5), || std::net::TcpStream::connect((
            "127.0.0.1",
            redis.port
        ))
        .is_err()),
        "Redis still answers after SIGKILL"
    );

    let outage = std::time::Instant::now();
    for password in ["secret123", "wrong-password", "secret123"] {
        let asked = std::time::Instant::now();
        let v = login(c, &name, password);
        let took = asked.elapsed();
        assert!(
            took < Duration::from_secs(3),
            "a login with Redis down took {took:?}: {v}"
        );
        assert_err(
            &v,
            tikspin_core::api::LOGIN_UNAVAILABLE,
            &["temporarily unavailable"],
            &format!("login with {password:?} while Redis is down"),
        );
        assert_no_session(&v, "login while Redis is down");
    }
    // Registration does not read the counters: it goes on.
    let (other, _) = register(c, &fresh("during-outage"), "secret123");
    assert!(other > id);

    redis
        .restart()
        .expect("redis-server restart on the same port");
    let mut last = Value::Null;
    let back = tikspin_e2e::wait_until(Duration::from_secs(10), || {
        last = login(c, &name, "secret123");
        code(&last) == SUCCESS
    });
    assert!(
        back,
        "login never worked again after Redis came back ({:?} after the kill): {last}\n{}",
        outage.elapsed(),
        host.log()
    );
    assert_eq!(session(&last, "Redis back").0, id);
    assert!(
        outage.elapsed() < Duration::from_secs(20),
        "the outage test ran {:?}",
        outage.elapsed()
    );
}
