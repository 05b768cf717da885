//! End to end: object-storage mode (issue 7). The real host serves the real components with
//! `s3_endpoint` pointing at `s3s-fs` ([`S3sFs`]), a real S3 server that verifies SigV4 on every
//! request (header-signed and presigned), so a wrong signature, host or expiry is refused for
//! real. Objects are files under the server's bucket directory and its multipart state is files
//! in its root (`.upload-<id>.json`, `.upload_id-<id>.part-<n>`, `.tmp.*`), so "nothing was left
//! behind" is checked on disk, not assumed; the app's rows are read from
//! `<state_dir>/sqlite_db.db` (`videos`, `jobs`).
//!
//! - Every good fixture: stored in the bucket byte for byte, `play_url` a presigned URL on the
//!   endpoint that serves those bytes (whole and by `Range`), `cover_url` the app's stable URL
//!   that redirects to a presigned cover showing the video's first frame — made by the cover job
//!   from the video read back from S3 (inline here; in the worker through Redis in
//!   [`s3_cover_job_in_the_worker_reads_the_video_back_from_s3`], where a recording proxy shows
//!   the ranged GETs).
//! - `media_public_base_url`: plain `<base>/<key>` URLs.
//! - Faults (wrong secret, unreachable endpoint, a 500 in the middle of a multipart upload from a
//!   fault-injecting proxy [`Proxy`]): a clear error with no secrets, and no row, object or
//!   multipart upload left.
//! - Expiry: the URLs carry `X-Amz-Expires = presign_expiry_secs`; an expired URL is refused.
//! - The welcome video goes to the bucket too, and is seeded once the store is reachable.
//! - Figures: publish time and peak instance memory, S3 vs embedded (KV) mode, printed; the
//!   issue's bound (the 7.8 MB upload within 2x the memory of the 170 KB one) asserted.
//!
//! Needs `s3s-fs` (`cargo install s3s-fs@0.14.1 --features binary --locked`) and, for the worker
//! test, `redis-server`; missing either is a failure. Fixtures: `tests/fixtures`
//! (`TIKSPIN_FIXTURES`).

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;
use tikspin_core::api::STORAGE_FAILED;
use tikspin_e2e::api::{enc, envelope, expect_ok, publish_form, register, User as U};
use tikspin_e2e::client::{into_reply, Client, Reply};
use tikspin_e2e::fixtures::{
    decode_jpeg, fixture_bytes, Fixture, BEAR, LANDSCAPE, LARGE, MOV, PORTRAIT,
};
use tikspin_e2e::harness::{HostConfig, TestHost};
use tikspin_e2e::servers::{RedisServer, S3sFs};
use tikspin_e2e::{free_port, wait_until};
use tikspin_s3::{Credentials, S3Client, S3Config};

const JWT_SECRET: &str = "e2e-s3-secret-5be1d0c27a";
const PUBLISH: &str = "/douyin/publish/action/";
/// The S3 backend's part size (`crates/spin-adapter/src/blobs/s3.rs`).
const PART: usize = 5 * 1024 * 1024;

// ---- test isolation ---------------------------------------------------------------------------

/// The figures test runs alone (its timings would measure the other tests otherwise); the rest
/// share.
static LOCK: RwLock<()> = RwLock::new(());

fn shared() -> RwLockReadGuard<'static, ()> {
    LOCK.read().unwrap_or_else(|p| p.into_inner())
}

fn exclusive() -> RwLockWriteGuard<'static, ()> {
    LOCK.write().unwrap_or_else(|p| p.into_inner())
}

// ---- hosts and servers ----------------------------------------------------------------------

fn start_host(vars: &[(&str, &str)], extra_args: &[&str]) -> TestHost {
    let mut variables = vec![
        ("jwt_secret".to_string(), JWT_SECRET.to_string()),
        ("seed_welcome_video".to_string(), "false".to_string()),
    ];
    variables.extend(vars.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    TestHost::start(HostConfig {
        manifest: tikspin_e2e::harness::manifest_for(&variables),
        variables,
        extra_args: extra_args.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    })
}

fn s3_server() -> S3sFs {
    S3sFs::start().unwrap_or_else(|e| panic!("{e:#}"))
}

/// A host in S3 mode against `server` (through `endpoint` when given, e.g. a proxy), with the
/// server's keys unless `vars` override them.
fn s3_host(
    server: &S3sFs,
    endpoint: Option<&str>,
    vars: &[(&str, &str)],
    extra_args: &[&str],
) -> TestHost {
    let url = server.url();
    let mut all: Vec<(&str, &str)> = vec![
        ("s3_endpoint", endpoint.unwrap_or(&url)),
        ("s3_bucket", &server.bucket),
        ("s3_access_key", &server.access_key),
        ("s3_secret_key", &server.secret_key),
    ];
    for (k, v) in vars {
        all.retain(|(name, _)| name != k);
        all.push((k, v));
    }
    start_host(&all, extra_args)
}

// ---- the state files ------------------------------------------------------------------------

struct State {
    dir: PathBuf,
}

impl State {
    fn of(host: &TestHost) -> Self {
        State {
            dir: host.state_path().to_path_buf(),
        }
    }

    fn db(&self) -> rusqlite::Connection {
        let path = self.dir.join("sqlite_db.db");
        assert!(path.exists(), "{} does not exist yet", path.display());
        let conn = rusqlite::Connection::open(&path)
            .unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
        conn.busy_timeout(Duration::from_secs(10)).unwrap();
        conn
    }

    fn count(&self, sql: &str) -> i64 {
        self.db()
            .query_row(sql, [], |r| r.get(0))
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// (state, play_key, cover_key) of one video.
    fn video(&self, id: i64) -> (String, String, Option<String>) {
        self.db()
            .query_row(
                "SELECT state, play_key, cover_key FROM videos WHERE id = ?1",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .unwrap_or_else(|e| panic!("video {id}: {e}"))
    }

    /// The states of the cover jobs of video `id`.
    fn cover_jobs(&self, video_id: i64) -> Vec<String> {
        let db = self.db();
        let mut st = db
            .prepare("SELECT state, payload FROM jobs WHERE kind = 'cover'")
            .unwrap();
        let rows: Vec<(String, String)> = st
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        rows.into_iter()
            .filter(|(_, p)| {
                serde_json::from_str::<Value>(p)
                    .map(|v| v["video_id"] == video_id)
                    .unwrap_or(false)
            })
            .map(|(s, _)| s)
            .collect()
    }

    /// Keys of the KV blob backend (`blob:<key>:<n>`, `blob:<key>:meta`): none in S3 mode.
    fn kv_blob_keys(&self) -> Vec<String> {
        let path = self.dir.join("sqlite_key_value.db");
        if !path.exists() {
            return Vec::new();
        }
        let kv = rusqlite::Connection::open(&path).unwrap();
        kv.busy_timeout(Duration::from_secs(10)).unwrap();
        let mut st = kv
            .prepare("SELECT key FROM spin_key_value WHERE key LIKE 'blob:%' ORDER BY key")
            .unwrap();
        let keys = st
            .query_map([], |r| r.get::<_, String>(0))
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        keys
    }

    fn log(&self, file: &str) -> String {
        std::fs::read_to_string(self.dir.join("logs").join(file)).unwrap_or_default()
    }
}

/// Files under `dir`, recursively, as sorted relative paths (empty directories do not count).
fn files_under(dir: &Path) -> Vec<String> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(base, &p, out);
            } else {
                out.push(p.strip_prefix(base).unwrap().to_string_lossy().into_owned());
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// What s3s-fs keeps of unfinished multipart uploads: upload records, parts, temp files.
fn multipart_leftovers(server: &S3sFs) -> Vec<String> {
    std::fs::read_dir(server.root())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".upload") || n.starts_with(".tmp.") || n.contains(".upload-"))
        .collect()
}

/// Everything in the server's root but the bucket directory (metadata of objects included).
fn root_entries_besides_bucket(server: &S3sFs) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(server.root())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| *n != server.bucket)
        .collect();
    v.sort();
    v
}

// ---- requests -------------------------------------------------------------------------------

fn pct_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

const BOUNDARY: &str = "----TikSpinE2eS3Boundary0xK3rQ";
/// The client's filename for the video; a path, which the server must not use as a key.
const FILENAME: &str = "../public/v.mp4";

/// POST publish/action; the answer and how long it took.
fn publish(c: &Client, user: &U, title: &str, bytes: &[u8]) -> (Value, Duration) {
    let (ct, body) = publish_form(BOUNDARY, &user.token, title, FILENAME, bytes);
    let start = Instant::now();
    let r = c.post(&format!("{PUBLISH}?token={}", enc(&user.token)), &ct, &body);
    let took = start.elapsed();
    (envelope(r), took)
}

#[track_caller]
fn publish_ok(c: &Client, user: &U, title: &str, bytes: &[u8]) -> Duration {
    let (v, took) = publish(c, user, title, bytes);
    expect_ok(&v);
    took
}

/// The author's videos, newest first.
fn publish_list(c: &Client, user_id: i64) -> Vec<Value> {
    let v = envelope(c.get(&format!("/douyin/publish/list/?user_id={user_id}")));
    expect_ok(&v);
    v["video_list"]
        .as_array()
        .unwrap_or_else(|| panic!("video_list must be an array: {v}"))
        .clone()
}

/// The video in the (anonymous) feed, if it is there.
fn find_in_feed(c: &Client, video_id: i64) -> Option<Value> {
    let mut latest: Option<i64> = None;
    for _ in 0..100 {
        let path = match latest {
            Some(t) => format!("/douyin/feed/?latest_time={t}"),
            None => "/douyin/feed/".to_string(),
        };
        let page = envelope(c.get(&path));
        expect_ok(&page);
        let list = page["video_list"].as_array().cloned().unwrap_or_default();
        if let Some(v) = list.iter().find(|v| v["id"] == video_id) {
            return Some(v.clone());
        }
        if list.is_empty() {
            return None;
        }
        latest = page["next_time"].as_i64();
    }
    panic!("the feed never ended");
}

/// GET an absolute URL without following redirects.
fn fetch(url: &str, headers: &[(&str, &str)]) -> Reply {
    static AGENT: OnceLock<ureq::Agent> = OnceLock::new();
    let agent = AGENT.get_or_init(|| {
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .timeout_global(Some(Duration::from_secs(60)))
            .build()
            .new_agent()
    });
    let mut req = agent.get(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    into_reply(req.call().unwrap_or_else(|e| panic!("GET {url}: {e}")))
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// `YYYYMMDDTHHMMSSZ` → Unix seconds.
fn amz_date_secs(d: &str) -> u64 {
    assert!(
        d.len() == 16 && d.as_bytes()[8] == b'T' && d.ends_with('Z'),
        "X-Amz-Date {d:?}"
    );
    let n = |r: std::ops::Range<usize>| {
        d[r].parse::<i64>()
            .unwrap_or_else(|_| panic!("X-Amz-Date {d:?}"))
    };
    let (y, m, day) = (n(0..4), n(4..6), n(6..8));
    // Days from civil (Howard Hinnant).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146097 + doe - 719468;
    (days * 86400 + n(9..11) * 3600 + n(11..13) * 60 + n(13..15)) as u64
}

/// A presigned GET URL the app handed out, checked against `server`: on its endpoint (or
/// `endpoint`), path-style in its bucket, SigV4 query-signed with the server's access key and
/// `expires`, valid for at least half of it, and without the secret. Returns the object key.
#[track_caller]
fn check_presigned(url: &str, server: &S3sFs, endpoint: &str, expires: u64) -> String {
    let prefix = format!("{endpoint}/{}/", server.bucket);
    let rest = url
        .strip_prefix(&prefix)
        .unwrap_or_else(|| panic!("{url} is not a path-style URL on the object store {prefix}"));
    let (key, query) = rest
        .split_once('?')
        .unwrap_or_else(|| panic!("{url} is not presigned (no query)"));
    let params: BTreeMap<String, String> = query
        .split('&')
        .filter_map(|p| p.split_once('='))
        .map(|(k, v)| (k.to_string(), pct_decode(v)))
        .collect();
    let p = |name: &str| {
        params
            .get(name)
            .cloned()
            .unwrap_or_else(|| panic!("{url} has no {name}"))
    };
    assert_eq!(p("X-Amz-Algorithm"), "AWS4-HMAC-SHA256", "{url}");
    let cred = p("X-Amz-Credential");
    assert!(
        cred.starts_with(&format!("{}/", server.access_key))
            && cred.ends_with("/us-east-1/s3/aws4_request"),
        "credential scope {cred:?} in {url}"
    );
    assert_eq!(
        p("X-Amz-Expires"),
        expires.to_string(),
        "X-Amz-Expires must be presign_expiry_secs: {url}"
    );
    assert_eq!(p("X-Amz-SignedHeaders"), "host", "{url}");
    let sig = p("X-Amz-Signature");
    assert!(
        sig.len() == 64 && sig.bytes().all(|b| b.is_ascii_hexdigit()),
        "signature {sig:?}"
    );
    let signed_at = amz_date_secs(&p("X-Amz-Date"));
    let now = now_secs();
    assert!(signed_at <= now + 5, "{url} is signed in the future");
    assert!(
        signed_at + expires >= now + expires / 2 - 5,
        "{url} is valid for less than half of {expires} s"
    );
    assert!(
        !url.contains(&server.secret_key) && !url.contains(&enc(&server.secret_key)),
        "the secret key is in a URL: {url}"
    );
    key.to_string()
}

/// `videos/<24 hex>.mp4`: a fresh key that owes nothing to the client's filename.
#[track_caller]
fn check_video_key(key: &str) {
    let id = key
        .strip_prefix("videos/")
        .and_then(|k| k.strip_suffix(".mp4"))
        .unwrap_or_else(|| panic!("video key {key:?}"));
    assert!(
        id.len() == 24 && id.bytes().all(|b| b.is_ascii_hexdigit()),
        "video key {key:?}"
    );
}

// ---- images ---------------------------------------------------------------------------------

/// The cover shows the video's first frame (its 4×4 luma grid matches the fixture's) in the
/// video's orientation and aspect ratio, long side 240..=720.
#[track_caller]
fn assert_cover_of(jpeg: &[u8], f: &Fixture) {
    let cover = decode_jpeg(jpeg);
    let long = cover.width.max(cover.height);
    assert!(
        (240..=720).contains(&long),
        "the cover of {} is {}×{}",
        f.name,
        cover.width,
        cover.height
    );
    let (want, got) = (
        f.width as f64 / f.height as f64,
        cover.width as f64 / cover.height as f64,
    );
    assert!(
        ((got - want) / want).abs() < 0.02,
        "the cover of {} is {}×{}, the video {}×{}",
        f.name,
        cover.width,
        cover.height,
        f.width,
        f.height
    );
    let (mut sums, mut counts) = ([0.0; 16], [0u32; 16]);
    for y in 0..cover.height {
        for x in 0..cover.width {
            let g = (y * 4 / cover.height) as usize * 4 + (x * 4 / cover.width) as usize;
            sums[g] += cover.luma[(y * cover.width + x) as usize];
            counts[g] += 1;
        }
    }
    let diffs: Vec<f64> = (0..16)
        .map(|i| (sums[i] / counts[i] as f64 - f.fingerprint[i] as f64).abs())
        .collect();
    let mean = diffs.iter().sum::<f64>() / 16.0;
    let max = diffs.iter().cloned().fold(0.0, f64::max);
    assert!(
        mean <= 6.0 && max <= 20.0,
        "the cover of {} does not show its first frame (mean diff {mean:.1}, max {max:.1})",
        f.name
    );
}

// ---- a recording, fault-injecting proxy -------------------------------------------------------

/// One request the proxy saw.
#[derive(Clone, Debug)]
struct Seen {
    method: String,
    /// Path and query.
    target: String,
    range: Option<String>,
    /// What the client got: the server's status, or 500 when injected (0: no answer).
    status: u16,
    injected: bool,
}

impl Seen {
    fn query_has(&self, param: &str) -> bool {
        self.target.split_once('?').is_some_and(|(_, q)| {
            q.split('&')
                .any(|p| p == param || p.starts_with(&format!("{param}=")))
        })
    }
}

type Fault = fn(&str, &str) -> bool;

/// An HTTP/1.1 proxy on `127.0.0.1:<port>` in front of s3s-fs: forwards each request unchanged
/// (the `Host` header too, so the SigV4 signature made for the proxy's address is what the
/// server checks), one request per connection, and records it; requests `fault` picks get a
/// 500 with an S3 error body instead (after their body was read, as a server would).
struct Proxy {
    port: u16,
    seen: Arc<Mutex<Vec<Seen>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Proxy {
    fn start(upstream: u16, fault: Fault) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (s, st) = (seen.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if st.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(conn) = conn else { continue };
                let s = s.clone();
                std::thread::spawn(move || Self::serve(conn, upstream, fault, &s));
            }
        });
        Proxy {
            port,
            seen,
            stop,
            thread: Some(thread),
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
        head.lines()
            .skip(1)
            .filter_map(|l| l.split_once(':'))
            .find(|(k, _)| k.trim().eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim())
    }

    /// Reads up to the end of the head; returns (head, what was read after it).
    fn read_head(s: &mut TcpStream) -> Option<(String, Vec<u8>)> {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 16 * 1024];
        loop {
            if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let rest = buf[end + 4..].to_vec();
                return Some((String::from_utf8_lossy(&buf[..end]).into_owned(), rest));
            }
            match s.read(&mut chunk) {
                Ok(0) | Err(_) => return None,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
    }

    fn serve(mut client: TcpStream, upstream: u16, fault: Fault, seen: &Mutex<Vec<Seen>>) {
        let _ = client.set_read_timeout(Some(Duration::from_secs(60)));
        let Some((head, mut body)) = Self::read_head(&mut client) else {
            return;
        };
        let mut first = head.lines().next().unwrap_or("").split_whitespace();
        let (method, target) = (
            first.next().unwrap_or("").to_string(),
            first.next().unwrap_or("").to_string(),
        );
        let range = Self::header(&head, "range").map(str::to_string);
        // Logged in arrival order; the outcome is filled in when known.
        let index = {
            let mut seen = seen.lock().unwrap();
            seen.push(Seen {
                method: method.clone(),
                target: target.clone(),
                range,
                status: 0,
                injected: false,
            });
            seen.len() - 1
        };
        let record = |status: u16, injected: bool| {
            let mut seen = seen.lock().unwrap();
            seen[index].status = status;
            seen[index].injected = injected;
        };
        if Self::header(&head, "transfer-encoding")
            .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"))
        {
            record(0, false); // unsupported here: shows up as status 0 (a failure below)
            return;
        }
        if Self::header(&head, "expect").is_some_and(|v| v.eq_ignore_ascii_case("100-continue")) {
            let _ = client.write_all(b"HTTP/1.1 100 Continue\r\n\r\n");
        }
        let len: usize = Self::header(&head, "content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        while body.len() < len {
            let mut chunk = vec![0u8; (len - body.len()).min(256 * 1024)];
            match client.read(&mut chunk) {
                Ok(0) | Err(_) => return,
                Ok(n) => body.extend_from_slice(&chunk[..n]),
            }
        }
        if fault(&method, &target) {
            let xml = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>InternalError</Code>\
                       <Message>We encountered an internal error. Please try again.</Message></Error>";
            let answer = format!(
                "HTTP/1.1 500 Internal Server Error\r\ncontent-type: application/xml\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{xml}",
                xml.len()
            );
            record(500, true); // before answering, so whoever saw the answer sees the record
            let _ = client.write_all(answer.as_bytes());
            return;
        }
        // Forward: same head (Host included) except `Connection`, which becomes `close`.
        let mut forwarded: Vec<String> = head
            .split("\r\n")
            .filter(|l| !l.to_ascii_lowercase().starts_with("connection:"))
            .map(str::to_string)
            .collect();
        forwarded.push("connection: close".into());
        let Ok(mut up) = TcpStream::connect(("127.0.0.1", upstream)) else {
            record(0, false);
            return;
        };
        let _ = up.write_all(format!("{}\r\n\r\n", forwarded.join("\r\n")).as_bytes());
        let _ = up.write_all(&body);
        let mut resp = Vec::new();
        let _ = up.read_to_end(&mut resp);
        let Some(end) = resp.windows(4).position(|w| w == b"\r\n\r\n") else {
            record(0, false);
            return;
        };
        let resp_head = String::from_utf8_lossy(&resp[..end]).into_owned();
        let status = resp_head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        // One request per connection: tell the client so it does not reuse this one.
        let mut lines: Vec<&str> = resp_head
            .split("\r\n")
            .filter(|l| !l.to_ascii_lowercase().starts_with("connection:"))
            .collect();
        lines.push("connection: close");
        record(status, false);
        let _ = client.write_all(format!("{}\r\n\r\n", lines.join("\r\n")).as_bytes());
        let _ = client.write_all(&resp[end + 4..]);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

// ---- good uploads -----------------------------------------------------------------------------

/// `play_url` serves exactly `bytes`, whole and by ranges (206), straight from the object store.
#[track_caller]
fn check_object_url(url: &str, bytes: &[u8], content_type: &str) {
    let n = bytes.len();
    let whole = fetch(url, &[]);
    assert_eq!(whole.status, 200, "GET {url}: {}", whole.text());
    assert!(
        whole.body == bytes,
        "{url} must serve exactly the uploaded bytes ({} served, {n} uploaded)",
        whole.body.len()
    );
    assert_eq!(
        whole.header("content-length"),
        Some(n.to_string().as_str()),
        "{url} content length"
    );
    assert_eq!(
        whole.header("content-type"),
        Some(content_type),
        "{url} content type"
    );
    let mut ranges = vec![(0, 99), (n - 100, n - 1), (100, n - 1), (n / 2, n / 2)];
    if n > PART + 200 {
        ranges.push((PART - 100, PART + 100)); // across the multipart boundary
    }
    for (start, end) in ranges {
        let spec = format!("bytes={start}-{end}");
        let r = fetch(url, &[("range", &spec)]);
        assert_eq!(r.status, 206, "Range {spec} on {url}: {}", r.text());
        assert_eq!(
            r.header("content-range"),
            Some(format!("bytes {start}-{end}/{n}").as_str()),
            "Range {spec}"
        );
        assert!(
            r.body == bytes[start..=end],
            "Range {spec}: wrong bytes ({} served)",
            r.body.len()
        );
    }
    let r = fetch(url, &[("range", "bytes=-100")]);
    assert_eq!(r.status, 206, "suffix range");
    assert!(r.body == bytes[n - 100..], "suffix range bytes");
}

/// Publishes `f` as a fresh user on an S3-mode host and checks the bucket, the URLs, the bytes
/// and the cover. Returns the video id.
fn publish_good_fixture(host: &TestHost, server: &S3sFs, f: &Fixture) -> i64 {
    let c = &host.client;
    let state = State::of(host);
    let bytes = fixture_bytes(f.name);
    let user = register(c, "s3");
    let title = format!("{} in S3", f.name);
    let took = publish_ok(c, &user, &title, &bytes);
    eprintln!("S3 publish {} ({} bytes): {took:?}", f.name, bytes.len());

    let list = publish_list(c, user.id);
    assert_eq!(list.len(), 1, "{list:?}");
    let video = &list[0];
    assert_eq!(video["title"], title.as_str());
    let id = video["id"].as_i64().unwrap();
    let play_url = video["play_url"].as_str().unwrap().to_string();
    let cover_url = video["cover_url"].as_str().unwrap().to_string();

    // The row: ready (the inline cover job ran), keys in the bucket's namespace.
    let (db_state, play_key, cover_key) = state.video(id);
    assert_eq!(db_state, "ready", "video {id}");
    assert_eq!(
        state.cover_jobs(id),
        vec!["done".to_string()],
        "the cover job of video {id}"
    );
    check_video_key(&play_key);
    let cover_key = cover_key.unwrap_or_else(|| panic!("video {id} is ready without a cover"));
    assert_eq!(cover_key, format!("covers/{id}.jpg"));

    // The objects are in the bucket, byte for byte.
    let stored = std::fs::read(server.bucket_dir().join(&play_key))
        .unwrap_or_else(|e| panic!("{play_key} is not in the bucket ({e})"));
    assert!(
        stored == bytes,
        "the object {play_key} in the bucket differs from the upload ({} vs {} bytes)",
        stored.len(),
        bytes.len()
    );
    let stored_cover = std::fs::read(server.bucket_dir().join(&cover_key))
        .unwrap_or_else(|e| panic!("{cover_key} is not in the bucket ({e})"));

    // play_url: presigned, on the endpoint, for that key; it serves the bytes.
    let key = check_presigned(&play_url, server, &server.url(), 3600);
    assert_eq!(key, play_key, "play_url names the stored key");
    check_object_url(&play_url, &bytes, f.content_type);
    // The app's own video URL sends players to the store too.
    let r = fetch(&format!("{}/media/{play_key}", c.base), &[]);
    assert_eq!(r.status, 302, "/media/{play_key} in S3 mode");
    assert_eq!(
        check_presigned(
            r.header("location").unwrap_or(""),
            server,
            &server.url(),
            3600
        ),
        play_key
    );

    // cover_url: the app's stable URL, redirecting to a presigned cover that shows the video.
    assert_eq!(
        cover_url,
        format!("{}/media/cover/{id}.jpg", c.base),
        "cover_url is the app's stable URL"
    );
    let r = fetch(&cover_url, &[]);
    assert_eq!(
        r.status,
        302,
        "cover_url in S3 mode redirects: {}",
        r.text()
    );
    let location = r
        .header("location")
        .unwrap_or_else(|| panic!("302 without Location"))
        .to_string();
    assert_eq!(
        check_presigned(&location, server, &server.url(), 3600),
        cover_key
    );
    let cc = r.header("cache-control").unwrap_or("");
    assert!(
        cc.contains("max-age=") && !cc.contains("immutable"),
        "the redirect to an expiring URL must not be cached for long: {cc:?}"
    );
    let cover = fetch(&location, &[]);
    assert_eq!(cover.status, 200, "GET the cover: {}", cover.text());
    assert_eq!(cover.header("content-type"), Some("image/jpeg"));
    assert!(
        cover.body == stored_cover,
        "the cover URL serves the stored cover"
    );
    assert_cover_of(&cover.body, f);

    // The feed shows it, with the same URLs (same presigning window).
    let in_feed = find_in_feed(c, id).unwrap_or_else(|| panic!("video {id} is not in the feed"));
    assert_eq!(in_feed["play_url"], play_url.as_str());
    assert_eq!(in_feed["cover_url"], cover_url.as_str());
    id
}

/// Every good fixture in S3 mode. The cover job (inline) can only have read the video back from
/// S3: the KV store holds no blob at all, and the cover shows the video's first frame.
#[test]
fn s3_publish_every_good_fixture() {
    let _g = shared();
    let server = s3_server();
    let host = s3_host(&server, None, &[], &[]);
    let state = State::of(&host);
    let mut ids = Vec::new();
    for f in [&PORTRAIT, &LANDSCAPE, &LARGE, &BEAR, &MOV] {
        ids.push(publish_good_fixture(&host, &server, f));
    }
    assert_eq!(
        state.kv_blob_keys(),
        Vec::<String>::new(),
        "in S3 mode nothing is stored in the KV blob backend"
    );
    // Exactly the five videos and their covers; no multipart upload left open.
    let files = files_under(&server.bucket_dir());
    assert_eq!(files.len(), 10, "the bucket: {files:?}");
    for id in &ids {
        assert!(files.contains(&format!("covers/{id}.jpg")), "{files:?}");
    }
    assert_eq!(
        files.iter().filter(|f| f.starts_with("videos/")).count(),
        5,
        "{files:?}"
    );
    assert_eq!(
        multipart_leftovers(&server),
        Vec::<String>::new(),
        "completed uploads left multipart state"
    );
}

/// `media_public_base_url` set: plain `<base>/<key>` URLs (s3s-fs serves no anonymous GETs, so
/// the object is checked in the bucket).
#[test]
fn s3_public_base_url_gives_plain_object_urls() {
    let _g = shared();
    let server = s3_server();
    let base = "http://cdn.e2e.invalid/tikspin";
    let host = s3_host(
        &server,
        None,
        &[("media_public_base_url", &format!("{base}/"))],
        &[],
    );
    let c = &host.client;
    let state = State::of(&host);
    let user = register(c, "cdn");
    let bytes = fixture_bytes(PORTRAIT.name);
    publish_ok(c, &user, "behind a CDN", &bytes);
    let video = publish_list(c, user.id).remove(0);
    let id = video["id"].as_i64().unwrap();
    let (_, play_key, cover_key) = state.video(id);
    check_video_key(&play_key);
    assert_eq!(
        video["play_url"],
        format!("{base}/{play_key}").as_str(),
        "play_url is the public base + key, nothing else"
    );
    assert!(
        std::fs::read(server.bucket_dir().join(&play_key)).unwrap() == bytes,
        "the object is in the bucket"
    );
    let cover_key = cover_key.expect("a cover");
    let r = fetch(video["cover_url"].as_str().unwrap(), &[]);
    assert_eq!(r.status, 302, "cover_url redirects");
    assert_eq!(
        r.header("location"),
        Some(format!("{base}/{cover_key}").as_str())
    );
    assert_cover_of(
        &std::fs::read(server.bucket_dir().join(&cover_key)).unwrap(),
        &PORTRAIT,
    );
}

// ---- faults ---------------------------------------------------------------------------------

/// POST as a client that writes the whole body before reading the answer (ureq, OkHttp), but
/// still reads an answer the server sent early. `Err` says why no answer arrived.
fn post_whole_body(
    base: &str,
    path: &str,
    content_type: &str,
    body: &[u8],
) -> Result<Reply, String> {
    let addr = base.strip_prefix("http://").unwrap();
    let mut s = TcpStream::connect(addr).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let head = format!("POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len());
    let mut write_error = None;
    for chunk in std::iter::once(head.as_bytes()).chain(body.chunks(64 * 1024)) {
        if let Err(e) = s.write_all(chunk) {
            write_error = Some(e);
            break;
        }
    }
    let mut raw = Vec::new();
    let mut buf = [0u8; 64 * 1024];
    let read_error = loop {
        match s.read(&mut buf) {
            Ok(0) => break None,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
            Err(e) => break Some(e),
        }
        // Stop at the end of a Content-Length answer (the connection may stay open).
        if let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&raw[..end]).to_lowercase();
            let len = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok());
            if len.is_some_and(|n| raw.len() >= end + 4 + n) {
                break None;
            }
        }
    };
    let no_answer = || {
        format!(
            "no answer: writing the body: {write_error:?}; reading: {read_error:?} after {} bytes",
            raw.len()
        )
    };
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(no_answer)?;
    let head = String::from_utf8_lossy(&raw[..end]).into_owned();
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(no_answer)?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_lowercase(), v.trim().to_string()))
        .collect();
    let mut body = raw[end + 4..].to_vec();
    if headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"))
    {
        let (mut out, mut rest) = (Vec::new(), &body[..]);
        while let Some(eol) = rest.windows(2).position(|w| w == b"\r\n") {
            let size = usize::from_str_radix(String::from_utf8_lossy(&rest[..eol]).trim(), 16)
                .unwrap_or(0);
            if size == 0 || rest.len() < eol + 2 + size {
                break;
            }
            out.extend_from_slice(&rest[eol + 2..eol + 2 + size]);
            rest = &rest[(eol + 4 + size).min(rest.len())..];
        }
        body = out;
    }
    Ok(Reply {
        status,
        headers,
        body,
    })
}

/// Publishing `f` fails with a clear, secret-free message that reaches the client, and leaves no
/// row and nothing in the object store (objects, parts, upload records). The state is checked
/// even when the answer got lost, so both problems show.
#[track_caller]
fn assert_publish_fails_cleanly(host: &TestHost, server: &S3sFs, f: &Fixture, what: &str) {
    let c = &host.client;
    let state = State::of(host);
    let user = register(c, "fault");
    let _ = publish_list(c, user.id); // the schema exists from here on
    let (ct, body) = publish_form(
        BOUNDARY,
        &user.token,
        what,
        FILENAME,
        &fixture_bytes(f.name),
    );
    let start = Instant::now();
    let answer = post_whole_body(
        &c.base,
        &format!("{PUBLISH}?token={}", enc(&user.token)),
        &ct,
        &body,
    );
    eprintln!(
        "{what}, {}: {:?} in {:?}",
        f.name,
        answer.as_ref().map(|r| r.text()),
        start.elapsed()
    );
    if let Ok(r) = answer.as_ref() {
        assert_eq!(
            r.status,
            200,
            "{what}: business answers are HTTP 200: {}",
            r.text()
        );
        let v = r.json();
        assert_eq!(v["status_code"], STORAGE_FAILED, "{what}, {}: {v}", f.name);
        let msg = v["status_msg"]
            .as_str()
            .unwrap_or_else(|| panic!("status_msg missing: {v}"));
        assert!(
            msg.contains("could not be stored"),
            "{what}: the message should say the video could not be stored: {msg:?}"
        );
        let lower = msg.to_lowercase();
        for secret in [
            server.secret_key.as_str(),
            server.access_key.as_str(),
            "wrong-secret",
        ] {
            assert!(
                !msg.contains(secret),
                "{what}: status_msg leaks a key: {msg:?}"
            );
        }
        for word in ["x-amz", "signature", "aws4", "credential"] {
            assert!(
                !lower.contains(word),
                "{what}: status_msg leaks signing details ({word}): {msg:?}"
            );
        }
    }
    // After a lost answer the host may still be cleaning up: give it a moment.
    let clean = || {
        state.count("SELECT COUNT(*) FROM videos") == 0
            && state.count("SELECT COUNT(*) FROM jobs") == 0
            && files_under(&server.bucket_dir()).is_empty()
            && root_entries_besides_bucket(server).is_empty()
    };
    wait_until(Duration::from_secs(10), clean);
    assert_eq!(
        state.count("SELECT COUNT(*) FROM videos"),
        0,
        "{what}, {}: a video row was left",
        f.name
    );
    assert_eq!(
        state.count("SELECT COUNT(*) FROM jobs"),
        0,
        "{what}, {}: a job row was left",
        f.name
    );
    assert_eq!(
        files_under(&server.bucket_dir()),
        Vec::<String>::new(),
        "{what}, {}: objects were left in the bucket",
        f.name
    );
    assert_eq!(
        root_entries_besides_bucket(server),
        Vec::<String>::new(),
        "{what}, {}: multipart uploads or metadata were left",
        f.name
    );
    assert!(
        !state.log("video_stderr.txt").contains(&server.secret_key),
        "{what}: the secret key is in the video component's log"
    );
    if let Err(e) = answer {
        panic!(
            "{what}, {} ({} bytes): the client never got the answer ({e}): the host stopped reading the upload and closed \
             the connection after the component answered early, so a client that sends the whole body first gets a \
             broken pipe/reset instead of the storage error",
            f.name,
            body.len()
        );
    }
}

/// (a) The host signs with another secret than the server's: every request is refused.
#[test]
fn s3_wrong_secret_key_fails_cleanly() {
    let _g = shared();
    let server = s3_server();
    let host = s3_host(
        &server,
        None,
        &[("s3_secret_key", "wrong-secret/0123456789abcdefABCDEFGHIJKL")],
        &[],
    );
    assert_publish_fails_cleanly(&host, &server, &PORTRAIT, "wrong secret key (PutObject)");
    assert_publish_fails_cleanly(&host, &server, &LARGE, "wrong secret key (multipart)");
    let log = State::of(&host).log("video_stderr.txt");
    assert!(
        log.contains("SignatureDoesNotMatch") || log.contains("403"),
        "the log should say why the store refused:\n{log}"
    );
}

/// (b) Nothing listens at the endpoint.
#[test]
fn s3_unreachable_endpoint_fails_cleanly() {
    let _g = shared();
    let server = s3_server();
    let nowhere = format!("http://127.0.0.1:{}", free_port());
    let host = s3_host(&server, Some(&nowhere), &[], &[]);
    assert_publish_fails_cleanly(
        &host,
        &server,
        &PORTRAIT,
        "unreachable endpoint (PutObject)",
    );
    assert_publish_fails_cleanly(&host, &server, &LARGE, "unreachable endpoint (multipart)");
}

/// (c) The store fails in the middle of a multipart upload: a proxy answers 500 to the second
/// UploadPart. The upload must be aborted on the server (no parts, no upload record, no object).
#[test]
fn s3_failure_in_the_middle_of_a_multipart_upload_aborts_it() {
    let _g = shared();
    let server = s3_server();
    let proxy = Proxy::start(server.port, |method, target| {
        method == "PUT" && target.contains("partNumber=2") && target.contains("uploadId=")
    });
    let host = s3_host(&server, Some(&proxy.url()), &[], &[]);
    assert_publish_fails_cleanly(&host, &server, &LARGE, "500 on UploadPart 2");
    let seen = proxy.seen();
    let summary: Vec<String> = seen
        .iter()
        .map(|s| {
            format!(
                "{} {} -> {}{}",
                s.method,
                s.target,
                s.status,
                if s.injected { " (injected)" } else { "" }
            )
        })
        .collect();
    let find = |pred: &dyn Fn(&Seen) -> bool, what: &str| {
        seen.iter()
            .position(|s| pred(s))
            .unwrap_or_else(|| panic!("the proxy never saw {what}: {summary:#?}"))
    };
    let create = find(
        &|s| s.method == "POST" && s.query_has("uploads") && s.status == 200,
        "CreateMultipartUpload answered 200",
    );
    let part1 = find(
        &|s| {
            s.method == "PUT"
                && s.query_has("partNumber")
                && s.target.contains("partNumber=1")
                && s.status == 200
        },
        "UploadPart 1 answered 200",
    );
    let part2 = find(
        &|s| s.injected && s.status == 500,
        "the injected 500 on UploadPart 2",
    );
    let abort = find(
        &|s| s.method == "DELETE" && s.query_has("uploadId") && (200..300).contains(&s.status),
        "AbortMultipartUpload accepted by the server",
    );
    assert!(
        create < part1 && part1 < part2 && part2 < abort,
        "out of order: {summary:#?}"
    );
    assert!(
        !seen
            .iter()
            .any(|s| s.method == "POST" && s.query_has("uploadId")),
        "CompleteMultipartUpload after a failed part: {summary:#?}"
    );
    assert!(
        !seen.iter().any(|s| !s.injected && s.status == 0),
        "the proxy failed to forward something: {summary:#?}"
    );
    // The proxy forwarded the Host header unchanged and the server accepted the signatures (the
    // 200s above); with the proxy out of the way the same host publishes fine.
    let c = &host.client;
    let user = register(c, "after");
    let (v, _) = publish(c, &user, "after the fault", &fixture_bytes(PORTRAIT.name));
    expect_ok(&v);
    assert_eq!(
        files_under(&server.bucket_dir()).len(),
        2,
        "the control upload and its cover: {:?}",
        files_under(&server.bucket_dir())
    );
}

/// (d) Presigned URLs carry `X-Amz-Expires = presign_expiry_secs`, and an expired one is refused
/// by the server (signed here with tikspin-s3, an hour in the past).
#[test]
fn s3_presigned_urls_carry_the_expiry_and_expired_ones_are_refused() {
    let _g = shared();
    let server = s3_server();
    let host = s3_host(&server, None, &[("presign_expiry_secs", "60")], &[]);
    let c = &host.client;
    let user = register(c, "expiry");
    let bytes = fixture_bytes(PORTRAIT.name);
    publish_ok(c, &user, "short-lived URLs", &bytes);
    let video = publish_list(c, user.id).remove(0);
    let play_url = video["play_url"].as_str().unwrap();
    let key = check_presigned(play_url, &server, &server.url(), 60);
    let r = fetch(video["cover_url"].as_str().unwrap(), &[]);
    assert_eq!(r.status, 302);
    check_presigned(
        r.header("location").unwrap_or(""),
        &server,
        &server.url(),
        60,
    );
    assert_eq!(
        fetch(play_url, &[]).status,
        200,
        "the host's URL works while fresh"
    );

    let signer = S3Client::new(S3Config {
        endpoint: server.url(),
        bucket: server.bucket.clone(),
        region: "us-east-1".into(),
        credentials: Credentials::new(server.access_key.clone(), server.secret_key.clone()),
    })
    .unwrap();
    let fresh = signer.presign_get(&key, 60, now_secs()).unwrap();
    let r = fetch(&fresh, &[]);
    assert_eq!(
        r.status,
        200,
        "control: a fresh URL signed here is accepted: {}",
        r.text()
    );
    assert!(r.body == bytes);
    let expired = signer.presign_get(&key, 60, now_secs() - 3600).unwrap();
    let r = fetch(&expired, &[]);
    assert_eq!(
        r.status,
        403,
        "an expired presigned URL must be refused: {} {}",
        r.status,
        r.text()
    );
    eprintln!("expired URL: {} {}", r.status, r.text());
}

/// The welcome video of a fresh deployment goes to the object store too; when the store is down
/// on the first feed, the seed is retried once it is back (a restart with the same state).
#[test]
fn s3_welcome_video_is_seeded_once_the_store_is_reachable() {
    let _g = shared();
    let server = s3_server();
    let state_dir = tempfile::tempdir().unwrap();
    let config = |endpoint: &str| {
        let vars = [
            ("jwt_secret", JWT_SECRET),
            ("seed_welcome_video", "true"),
            ("s3_endpoint", endpoint),
            ("s3_bucket", &server.bucket),
            ("s3_access_key", &server.access_key),
            ("s3_secret_key", &server.secret_key),
        ];
        HostConfig {
            variables: vars
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            state_dir: Some(state_dir.path().to_path_buf()),
            ..Default::default()
        }
    };
    let welcome = |c: &Client| {
        let page = envelope(c.get("/douyin/feed/"));
        expect_ok(&page);
        page["video_list"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .find(|v| {
                v["title"]
                    .as_str()
                    .is_some_and(|t| t.starts_with("Welcome"))
            })
    };
    {
        let down = TestHost::start(config(&format!("http://127.0.0.1:{}", free_port())));
        assert!(
            welcome(&down.client).is_none(),
            "no store, no welcome video"
        );
        assert!(files_under(&server.bucket_dir()).is_empty());
    }
    // Control: a fresh deployment with the store up seeds it on the first feed.
    {
        let fresh = TestHost::start(HostConfig {
            state_dir: None,
            ..config(&server.url())
        });
        let video =
            welcome(&fresh.client).expect("a fresh deployment in S3 mode shows the welcome video");
        let key = check_presigned(
            video["play_url"].as_str().unwrap(),
            &server,
            &server.url(),
            3600,
        );
        assert!(
            server.bucket_dir().join(&key).is_file(),
            "{key} is not in the bucket"
        );
    }
    let up = TestHost::start(config(&server.url()));
    let video = welcome(&up.client).unwrap_or_else(|| {
        panic!(
            "the welcome video was never seeded after the store came back; bucket: {:?}; video log:\n{}",
            files_under(&server.bucket_dir()),
            std::fs::read_to_string(state_dir.path().join("logs/video_stderr.txt")).unwrap_or_default()
        )
    });
    let key = check_presigned(
        video["play_url"].as_str().unwrap(),
        &server,
        &server.url(),
        3600,
    );
    assert!(
        server.bucket_dir().join(&key).is_file(),
        "{key} is not in the bucket"
    );
}

// ---- the worker -------------------------------------------------------------------------------

fn subscribers(redis: &RedisServer, channel: &str) -> i64 {
    let out = redis.cli(&["PUBSUB", "NUMSUB", channel]).unwrap();
    out.lines()
        .last()
        .and_then(|l| l.trim().parse().ok())
        .unwrap_or(0)
}

/// With Redis, the worker makes the cover: it reads the video back from S3 by ranged GETs (seen
/// by a recording proxy in front of s3s-fs; nothing else in the app reads a video in S3 mode)
/// and stores the cover there.
#[test]
fn s3_cover_job_in_the_worker_reads_the_video_back_from_s3() {
    let _g = shared();
    let server = s3_server();
    let proxy = Proxy::start(server.port, |_, _| false);
    let redis = RedisServer::start().expect("redis-server");
    let channel = "e2e-s3-jobs";
    let host = s3_host(
        &server,
        Some(&proxy.url()),
        &[("redis_address", &redis.url()), ("jobs_channel", channel)],
        &[],
    );
    assert!(
        wait_until(Duration::from_secs(20), || subscribers(&redis, channel)
            >= 1),
        "the worker never subscribed:\n{}",
        host.log()
    );
    let c = &host.client;
    let state = State::of(&host);
    let user = register(c, "worker");
    let bytes = fixture_bytes(LARGE.name);
    publish_ok(c, &user, "cover by the worker", &bytes);
    let id = publish_list(c, user.id)[0]["id"].as_i64().unwrap();
    assert!(
        wait_until(Duration::from_secs(60), || state.video(id).0 == "ready"),
        "the worker never made the cover of video {id}: {:?}\n{}",
        state.cover_jobs(id),
        state.log("worker_stderr.txt")
    );
    assert!(
        !state.log("video_stderr.txt").contains("running it inline"),
        "the job ran inline:\n{}",
        state.log("video_stderr.txt")
    );
    let (_, play_key, cover_key) = state.video(id);
    let object = format!("/{}/{play_key}", server.bucket);
    let seen = proxy.seen();
    let ranged: Vec<&Seen> = seen
        .iter()
        .filter(|s| {
            s.method == "GET"
                && s.target.split('?').next() == Some(object.as_str())
                && s.range.is_some()
        })
        .collect();
    assert!(
        !ranged.is_empty() && ranged.iter().all(|s| s.status == 206),
        "the cover job did not read {object} by ranges: {seen:#?}"
    );
    let fetched: usize = ranged.len();
    assert!(fetched < 10, "{fetched} ranged reads for one cover");
    assert!(
        !seen.iter().any(|s| s.method == "GET"
            && s.target.split('?').next() == Some(object.as_str())
            && s.range.is_none()),
        "the whole video was downloaded for the cover"
    );
    let cover_key = cover_key.expect("a cover");
    assert!(
        seen.iter().any(|s| s.method == "PUT"
            && s.target == format!("/{}/{cover_key}", server.bucket)
            && s.status == 200),
        "the cover was not PUT: {seen:#?}"
    );
    assert_cover_of(
        &std::fs::read(server.bucket_dir().join(&cover_key)).unwrap(),
        &LARGE,
    );
    // Its URLs point at the configured endpoint (the proxy, which forwards them unchanged).
    let video = publish_list(c, user.id).remove(0);
    check_presigned(
        video["play_url"].as_str().unwrap(),
        &server,
        &proxy.url(),
        3600,
    );
    assert!(
        fetch(
            video["play_url"].as_str().unwrap(),
            &[("range", "bytes=0-99")]
        )
        .body
            == bytes[..100]
    );
    eprintln!(
        "worker: {fetched} ranged GETs: {:?}",
        ranged
            .iter()
            .map(|s| s.range.clone().unwrap())
            .collect::<Vec<_>>()
    );
}

// ---- figures ------------------------------------------------------------------------------------

/// The peak linear memory (KiB) of every finished publish request so far, in order.
fn publish_peaks(state: &State) -> Vec<u64> {
    state
        .log("video_stdout.txt")
        .lines()
        .filter(|l| l.contains("POST /douyin/publish/action/") && l.contains("peak linear memory"))
        .filter_map(|l| {
            l.rsplit_once("peak linear memory ")
                .and_then(|(_, r)| r.split_once(" KiB"))
                .map(|(n, _)| n)
                .and_then(|n| n.trim().parse().ok())
        })
        .collect()
}

/// Publishes `f` and returns (time, peak KiB of that request).
fn measured_publish(host: &TestHost, user: &U, f: &Fixture, bytes: &[u8]) -> (Duration, u64) {
    let state = State::of(host);
    let before = publish_peaks(&state).len();
    let took = publish_ok(&host.client, user, f.name, bytes);
    assert!(
        wait_until(Duration::from_secs(10), || publish_peaks(&state).len()
            > before),
        "no memory report for the publish:\n{}",
        state.log("video_stdout.txt")
    );
    (took, publish_peaks(&state)[before])
}

fn median<T: Ord + Copy>(mut v: Vec<T>) -> T {
    v.sort();
    v[v.len() / 2]
}

/// Publish time and peak instance memory, S3 vs embedded (KV) mode, printed; and the issue's
/// bound: the upload of the 7.8 MB video peaks at most 2x the memory of the 170 KB one. The
/// bound is checked on hosts with Redis, where the publish request does the upload and nothing
/// else (the cover job, whose frame decoding grows with the resolution, runs in the worker).
/// With `TIKSPIN_S3_FIGURES=all` the default inline-cover hosts are measured too and printed
/// (figures only, no bound: decoding the 20 s video's covers six times was most of this
/// suite's time in CI). Both modes: KV promises the same.
#[test]
fn s3_upload_memory_is_bounded_and_figures() {
    let _g = exclusive();
    let server = s3_server();
    let redis = RedisServer::start().expect("redis-server");
    let mem = ["--report-instance-memory"];
    let all = std::env::var("TIKSPIN_S3_FIGURES").is_ok_and(|v| v == "all");
    let inline_s3 = all.then(|| s3_host(&server, None, &[], &mem));
    let inline_kv = all.then(|| start_host(&[], &mem));
    let queued = [
        ("redis_address", redis.url()),
        ("jobs_channel", "e2e-s3-figures-s3".to_string()),
    ];
    let queued: Vec<(&str, &str)> = queued.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let upload_s3 = s3_host(&server, None, &queued, &mem);
    let upload_kv = start_host(
        &[
            ("redis_address", &redis.url()),
            ("jobs_channel", "e2e-s3-figures-kv"),
        ],
        &mem,
    );
    let (small, large) = (fixture_bytes(PORTRAIT.name), fixture_bytes(LARGE.name));
    let mut failures = Vec::new();
    let hosts = [
        ("S3, inline cover", inline_s3.as_ref(), false),
        ("KV, inline cover", inline_kv.as_ref(), false),
        ("S3, upload only (cover in the worker)", Some(&upload_s3), true),
        ("KV, upload only (cover in the worker)", Some(&upload_kv), true),
    ];
    for (what, host, bounded) in hosts {
        let Some(host) = host else { continue };
        let user = register(&host.client, "fig");
        let (mut t_small, mut t_large, mut m_small, mut m_large) = (vec![], vec![], vec![], vec![]);
        for _ in 0..3 {
            let (t, m) = measured_publish(host, &user, &PORTRAIT, &small);
            t_small.push(t);
            m_small.push(m);
            let (t, m) = measured_publish(host, &user, &LARGE, &large);
            t_large.push(t);
            m_large.push(m);
        }
        let (ms, ml) = (median(m_small.clone()), median(m_large.clone()));
        println!(
            "FIGURE {what}: publish large-20s.mp4 median {:?} (runs {t_large:?}), portrait-3s.mp4 median {:?}; \
             peak linear memory KiB: large {m_large:?} (median {ml}), portrait {m_small:?} (median {ms}), ratio {:.2}",
            median(t_large.clone()),
            median(t_small.clone()),
            ml as f64 / ms as f64
        );
        if bounded && ml > 2 * ms {
            failures.push(format!("{what}: publishing large-20s.mp4 (7.8 MB) peaked at {ml} KiB, over 2x portrait-3s.mp4's (170 KB) {ms} KiB"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
