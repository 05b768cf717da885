//! The requests every suite makes the same way: query strings, the JSON envelope, registering
//! a user, and hand-built `multipart/form-data` bodies (built by hand so the tests control every
//! byte the server sees, as the Android client sends them).

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::Value;

use crate::client::{Client, Reply};

/// Percent-encodes everything but the unreserved characters (UTF-8 bytes for the rest).
pub fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `k1=v1&k2=v2`, the values percent-encoded (the keys are plain ASCII in every test).
pub fn query(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={}", enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// A response's JSON, after checking the HTTP status is 200 and the envelope is there.
#[track_caller]
pub fn envelope(r: Reply) -> Value {
    assert_eq!(r.status, 200, "business answers are HTTP 200: {}", r.text());
    let v = r.json();
    assert!(v["status_code"].is_i64(), "status_code missing: {v}");
    assert!(v["status_msg"].is_string(), "status_msg missing: {v}");
    v
}

/// Checks `status_code` is 0; returns `v` so a field can be read off the checked answer.
#[track_caller]
pub fn expect_ok(v: &Value) -> &Value {
    assert_eq!(v["status_code"], 0, "expected success: {v}");
    v
}

/// A refusal: a non-zero `status_code` and a real `status_msg`.
#[track_caller]
pub fn expect_refused(v: &Value) {
    assert_ne!(v["status_code"], 0, "expected a refusal: {v}");
    assert!(
        !v["status_msg"].as_str().unwrap().trim().is_empty(),
        "a refusal needs a status_msg: {v}"
    );
}

/// A username nobody has used yet: unique in this process and, by a per-run salt, across runs
/// against a long-lived server (`TIKSPIN_BASE_URL`).
pub fn unique_name(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    static RUN: OnceLock<u32> = OnceLock::new();
    let run = RUN.get_or_init(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .subsec_nanos()
            ^ std::process::id()
    });
    format!("{prefix}_{run:08x}_{}", N.fetch_add(1, Ordering::Relaxed))
}

/// The shape of API.md's `User`: every field there, with its JSON type.
#[track_caller]
pub fn assert_user_shape(u: &Value) {
    for k in [
        "id",
        "follow_count",
        "follower_count",
        "total_favorited",
        "work_count",
        "favorite_count",
    ] {
        assert!(u[k].is_i64(), "User.{k} must be a number: {u}");
    }
    for k in ["name", "avatar", "background_image", "signature"] {
        assert!(u[k].is_string(), "User.{k} must be a string: {u}");
    }
    assert!(
        u["is_follow"].is_boolean(),
        "User.is_follow must be a boolean: {u}"
    );
}

/// A registered user.
#[derive(Clone, Debug)]
pub struct User {
    pub id: i64,
    pub token: String,
    pub name: String,
}

/// Registers a fresh user (named after `prefix`) and expects success.
#[track_caller]
pub fn register(c: &Client, prefix: &str) -> User {
    let name = unique_name(prefix);
    let v = envelope(c.post_empty(&format!(
        "/douyin/user/register/?{}",
        query(&[("username", &name), ("password", "secret123")])
    )));
    expect_ok(&v);
    let id = v["user_id"].as_i64().unwrap();
    assert!(id > 0, "{v}");
    User {
        id,
        token: v["token"].as_str().unwrap().to_string(),
        name,
    }
}

/// One part of a hand-built `multipart/form-data` body.
pub enum Part<'a> {
    Text(&'a str, &'a str),
    /// The `data` file as the Android client sends it: `application/octet-stream`, with a
    /// filename the server must not use.
    File(&'a str, &'a [u8]),
}

/// `(content type, body)` of a `multipart/form-data` body with `parts` in order.
pub fn multipart(boundary: &str, parts: &[Part<'_>]) -> (String, Vec<u8>) {
    let mut body = Vec::new();
    for part in parts {
        match part {
            Part::Text(name, value) => {
                body.extend_from_slice(
                    format!(
                        "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n"
                    )
                    .as_bytes(),
                );
                body.extend_from_slice(value.as_bytes());
            }
            Part::File(filename, bytes) => {
                body.extend_from_slice(
                    format!(
                        "--{boundary}\r\nContent-Disposition: form-data; name=\"data\"; filename=\"{filename}\"\r\n\
                         Content-Type: application/octet-stream\r\n\r\n"
                    )
                    .as_bytes(),
                );
                body.extend_from_slice(bytes);
            }
        }
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// The publish form as the Android client sends it: `token`, `title`, then the `data` file.
pub fn publish_form(
    boundary: &str,
    token: &str,
    title: &str,
    filename: &str,
    bytes: &[u8],
) -> (String, Vec<u8>) {
    multipart(
        boundary,
        &[
            Part::Text("token", token),
            Part::Text("title", title),
            Part::File(filename, bytes),
        ],
    )
}
