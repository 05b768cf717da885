//! Issue 18: `x-request-id` on every response of the host and the JSON access log in
//! `<state-dir>/logs/access.log` (host/src/access_log.rs), against the real host and app.

use std::io::{Read, Write};
use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use tikspin_e2e::api::{query, register};
use tikspin_e2e::harness::{HostConfig, TestHost};
use tikspin_e2e::wait_until;

/// Every access-log line so far, oldest first, across the rotated files.
fn lines(dir: &Path) -> Vec<Value> {
    let logs = dir.join("logs");
    let mut files: Vec<(usize, std::path::PathBuf)> = std::fs::read_dir(&logs)
        .unwrap()
        .filter_map(|e| {
            let path = e.ok()?.path();
            let name = path.file_name()?.to_str()?.to_string();
            let n = match name.strip_prefix("access.log") {
                Some("") => 0,
                Some(rest) => rest.strip_prefix('.')?.parse().ok()?,
                None => return None,
            };
            Some((n, path))
        })
        .collect();
    files.sort_by(|a, b| b.0.cmp(&a.0));
    files
        .iter()
        .flat_map(|(_, p)| {
            std::fs::read_to_string(p)
                .unwrap()
                .lines()
                .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
                .collect::<Vec<Value>>()
        })
        .collect()
}

/// The line with this request id, once the writer has written it.
fn line_for(dir: &Path, id: &str) -> Value {
    let mut found = None;
    wait_until(Duration::from_secs(10), || {
        found = lines(dir).into_iter().find(|l| l["request_id"] == id);
        found.is_some()
    });
    found.unwrap_or_else(|| panic!("no access-log line for {id}"))
}

fn is_fresh_id(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A request with a header value `ureq` will not send (non-ASCII bytes), over a bare socket.
fn raw_get(base: &str, path: &str, request_id: &[u8]) -> String {
    let addr = base.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    let mut req =
        format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nX-Request-Id: ")
            .into_bytes();
    req.extend_from_slice(request_id);
    req.extend_from_slice(b"\r\n\r\n");
    s.write_all(&req).unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn every_response_has_a_request_id_and_one_access_log_line() {
    let host = TestHost::start(HostConfig {
        // Rotate after 1 KiB (three or four lines) and keep every file, so all lines are read.
        extra_args: ["--access-log-max-kib", "1", "--access-log-keep", "100"]
            .map(String::from)
            .to_vec(),
        ..HostConfig::default()
    });
    let c = &host.client;
    let dir = host.state_path();

    // The host's own answers carry an id too.
    let health = c.get("/.well-known/spin/health");
    let id = health.header("x-request-id").unwrap().to_string();
    assert!(is_fresh_id(&id), "{id}");
    let line = line_for(dir, &id);
    assert_eq!(line["path"], "/.well-known/spin/health");
    assert_eq!(line["status"], 200);
    assert_eq!(line["bytes_out"], 2);
    assert!(line.get("route").is_none(), "{line}");
    let missing = c.get_with("/.well-known/spin/nothing", &[("x-request-id", "kept-404")]);
    assert_eq!(missing.status, 404);
    assert_eq!(missing.header("x-request-id"), Some("kept-404"));
    assert_eq!(line_for(dir, "kept-404")["status"], 404);

    // An app request: the inbound id kept, the path without its query (the token).
    let user = register(c, "alog");
    let path = format!(
        "/douyin/user/?{}",
        query(&[("user_id", &user.id.to_string()), ("token", &user.token)])
    );
    let r = c.get_with(
        &path,
        &[("x-request-id", "0f8fad5b-d9cb-469f-a165-70867728950e")],
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.header("tikspin-status-code"), Some("0"));
    assert_eq!(
        r.header("x-request-id"),
        Some("0f8fad5b-d9cb-469f-a165-70867728950e")
    );
    let line = line_for(dir, "0f8fad5b-d9cb-469f-a165-70867728950e");
    assert_eq!(line["method"], "GET");
    assert_eq!(line["path"], "/douyin/user/");
    assert_eq!(line["route"], "/douyin/user/...");
    assert_eq!(line["component"], "user");
    assert_eq!(line["status"], 200);
    assert!(
        line.get("status_code").is_none(),
        "success has no status_code: {line}"
    );
    assert_eq!(line["bytes_out"], r.body.len() as u64);
    assert!(
        line["client"].as_str().unwrap().starts_with("127.0.0.1:"),
        "{line}"
    );
    assert!(line["duration_ms"].as_f64().unwrap() > 0.0, "{line}");
    let time = line["time"].as_str().unwrap();
    assert!(
        time.ends_with('Z') && time.len() == 24,
        "RFC 3339 UTC, ms: {time}"
    );

    // A business error: HTTP 200 and the envelope's code.
    let refused = c.get_with(
        &format!("/douyin/user/?user_id={}", user.id),
        &[("x-request-id", "no-token")],
    );
    let code: i64 = refused.json()["status_code"].as_i64().unwrap();
    assert_ne!(code, 0);
    assert_eq!(
        refused.header("tikspin-status-code"),
        Some(code.to_string().as_str())
    );
    assert_eq!(line_for(dir, "no-token")["status_code"], code);

    // A POST with a body: its declared length is bytes_in.
    let body = b"username=x&password=y";
    let posted = c.post_with(
        "/douyin/user/login/",
        &[
            ("content-type", "application/x-www-form-urlencoded"),
            ("x-request-id", "login-1"),
        ],
        body,
    );
    assert_eq!(posted.status, 200);
    assert_eq!(line_for(dir, "login-1")["bytes_in"], body.len() as u64);

    // Malformed ids are replaced, and never reach a log.
    let long = "a".repeat(129);
    for bad in [long.as_str(), "two words", "quote\"d"] {
        let r = c.get_with("/.well-known/spin/health", &[("x-request-id", bad)]);
        let id = r.header("x-request-id").unwrap();
        assert!(is_fresh_id(id), "{bad:?} was answered with {id:?}");
        line_for(dir, id);
    }
    let raw = raw_get(
        &c.base,
        "/.well-known/spin/health",
        "caf\u{e9}-\u{1f600}".as_bytes(),
    );
    let id = raw
        .lines()
        .find_map(|l| l.strip_prefix("x-request-id: "))
        .unwrap_or_else(|| panic!("no x-request-id in {raw}"))
        .trim();
    assert!(is_fresh_id(id), "{id:?}");
    line_for(dir, id);
    let every_log: String = std::fs::read_dir(dir.join("logs"))
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap_or_default())
        .collect::<String>()
        + &host.log();
    for secret in [
        long.as_str(),
        "two words",
        "\u{e9}",
        "\u{1f600}",
        &user.token,
        "token=",
    ] {
        assert!(!every_log.contains(secret), "{secret:?} is in a log");
    }

    // One line per request: every id answered appears once.
    let all = lines(dir);
    for id in ["kept-404", "no-token", "login-1"] {
        assert_eq!(
            all.iter().filter(|l| l["request_id"] == id).count(),
            1,
            "{id}"
        );
    }

    // Rotated at 1 KiB: several files, none past the limit but by a single line.
    let rotated: Vec<u64> = std::fs::read_dir(dir.join("logs"))
        .unwrap()
        .filter_map(|e| {
            let e = e.ok()?;
            let name = e.file_name().into_string().ok()?;
            name.starts_with("access.log.")
                .then(|| e.metadata().unwrap().len())
        })
        .collect();
    assert!(rotated.len() >= 2, "{rotated:?}");
    let longest = all
        .iter()
        .map(|l| l.to_string().len() as u64 + 1)
        .max()
        .unwrap();
    assert!(
        rotated.iter().all(|&n| n <= 1024 || n <= longest),
        "{rotated:?}"
    );
}

#[test]
fn the_access_log_can_be_turned_off() {
    let host = TestHost::start(HostConfig {
        extra_args: ["--access-log", "off"].map(String::from).to_vec(),
        ..HostConfig::default()
    });
    let r = host.client.get("/.well-known/spin/health");
    assert!(is_fresh_id(r.header("x-request-id").unwrap()));
    std::thread::sleep(Duration::from_millis(300));
    assert!(!host.state_path().join("logs/access.log").exists());
}
