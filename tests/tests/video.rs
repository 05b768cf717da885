//! End to end: the `video` route group (`/douyin/feed/`, `/douyin/publish/action/`,
//! `/douyin/publish/list/`), the `media` component that serves what its URLs point at, and the
//! cover job (inline, or in the `worker` component through Redis). The whole app of `spin.toml`
//! runs in the real host; the contract is `../shared/API.md`, the codes `crates/core/src/api.rs`.
//!
//! Hosts: the tests that only look at their own users' videos share one host
//! ([`shared_host`]); the ones that count everything in the state files (bad uploads), page the
//! whole feed, need a fresh deployment (welcome seed) or Redis start their own.
//!
//! The state files are read directly (`<state_dir>/sqlite_db.db`: tables `videos`, `jobs`;
//! `<state_dir>/sqlite_key_value.db`: `spin_key_value`, where an object `K` is the chunks
//! `blob:K:<n>` and `blob:K:meta`), so "nothing was left behind" is checked, not assumed.
//!
//! Covers are compared with the fixtures' first frames by fingerprint (`tikspin_e2e::fixtures`).
//! Fixtures live in `tests/fixtures` (override with `TIKSPIN_FIXTURES`).

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;
use tikspin_core::api::{
    AUTH_REQUIRED, BAD_PARAMETER, INVALID_TOKEN, METHOD_NOT_ALLOWED, NOT_A_VIDEO, TITLE_MISSING,
    TITLE_TOO_LONG, VIDEO_EMPTY, VIDEO_MISSING, VIDEO_TOO_LARGE, VIDEO_TRUNCATED,
};
use tikspin_core::auth::jwt;
use tikspin_e2e::api::{envelope, expect_ok, multipart, query, register, Part, User as U};
use tikspin_e2e::client::{Client, Reply};
use tikspin_e2e::fixtures::{
    decode_jpeg, fixture_bytes, Fixture, Jpeg, BEAR, LANDSCAPE, LARGE, MOV, PORTRAIT,
};
use tikspin_e2e::harness::{HostConfig, TestHost};
use tikspin_e2e::servers::RedisServer;
use tikspin_e2e::wait_until;

/// The HS256 key the hosts run with, so the tests can forge and expire tokens.
const JWT_SECRET: &str = "e2e-video-secret-3c9e0a71f4";

const PUBLISH: &str = "/douyin/publish/action/";
const PUBLISH_LIST: &str = "/douyin/publish/list/";
const FEED: &str = "/douyin/feed/";
/// The blob layer's chunk size (`crates/spin-adapter/src/blobs.rs`): ranges across it are read
/// from two chunks.
const CHUNK: usize = 512 * 1024;
const DAY_MS: i64 = 86_400_000;

// ---- fixtures -------------------------------------------------------------------------------

/// The bundled welcome clip (`assets/welcome.mp4`): a portrait 360×640 clip.
const WELCOME_FINGERPRINT: [u8; 16] = [
    92, 194, 56, 153, 100, 199, 58, 148, 100, 199, 59, 155, 100, 199, 60, 156,
];

// ---- hosts ----------------------------------------------------------------------------------

fn start_host(vars: &[(&str, &str)]) -> TestHost {
    let mut variables = vec![("jwt_secret".to_string(), JWT_SECRET.to_string())];
    variables.extend(vars.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    // The whole app: publish needs `user`, likes `interaction`, follows `social`, URLs `media`.
    let host = TestHost::start(HostConfig {
        manifest: tikspin_e2e::harness::manifest_for(&variables),
        variables,
        ..Default::default()
    });
    STATE_DIRS
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push((host.client.base.clone(), host.state_path().to_path_buf()));
    host
}

/// Each started host's base URL and state dir, so a failed request can show the host's logs.
static STATE_DIRS: Mutex<Vec<(String, PathBuf)>> = Mutex::new(Vec::new());

/// The console log and the video and media components' stderr of the host behind `c`.
fn host_logs(c: &Client) -> String {
    let dirs = STATE_DIRS.lock().unwrap_or_else(|p| p.into_inner());
    let Some((_, dir)) = dirs.iter().find(|(base, _)| *base == c.base) else {
        return String::new();
    };
    let read = |p: PathBuf| std::fs::read_to_string(p).unwrap_or_default();
    format!(
        "--- host.log\n{}\n--- video stderr\n{}\n--- media stderr\n{}",
        read(dir.join("host.log")),
        read(dir.join("logs/video_stderr.txt")),
        read(dir.join("logs/media_stderr.txt"))
    )
}

/// One host for the tests that only look at their own users' videos; it stops when the last of
/// them lets go.
fn shared_host() -> Arc<TestHost> {
    static SHARED: Mutex<Weak<TestHost>> = Mutex::new(Weak::new());
    let mut slot = SHARED.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(host) = slot.upgrade() {
        return host;
    }
    let host = Arc::new(start_host(&[]));
    *slot = Arc::downgrade(&host);
    host
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

    fn open(&self, file: &str) -> rusqlite::Connection {
        let path = self.dir.join(file);
        assert!(path.exists(), "{} does not exist yet", path.display());
        let conn = rusqlite::Connection::open(&path)
            .unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
        conn.busy_timeout(Duration::from_secs(10)).unwrap();
        conn
    }

    fn db(&self) -> rusqlite::Connection {
        self.open("sqlite_db.db")
    }

    fn count(&self, sql: &str) -> i64 {
        self.db()
            .query_row(sql, [], |r| r.get(0))
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    fn videos(&self) -> i64 {
        self.count("SELECT COUNT(*) FROM videos")
    }

    fn jobs(&self) -> i64 {
        self.count("SELECT COUNT(*) FROM jobs")
    }

    /// Every key of the blob layer (chunks and meta records), sorted.
    fn blob_keys(&self) -> Vec<String> {
        let kv = self.open("sqlite_key_value.db");
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

    /// (state, play_key, cover_key, created_at) of one video.
    fn video(&self, id: i64) -> (String, String, Option<String>, i64) {
        self.db()
            .query_row(
                "SELECT state, play_key, cover_key, created_at FROM videos WHERE id = ?1",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .unwrap_or_else(|e| panic!("video {id}: {e}"))
    }

    /// (job id, state) of the cover job of video `id`: the one job whose payload names it.
    fn cover_job(&self, video_id: i64) -> (i64, String) {
        let db = self.db();
        let mut st = db
            .prepare("SELECT id, state, payload FROM jobs WHERE kind = 'cover'")
            .unwrap();
        let rows: Vec<(i64, String, String)> = st
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let mine: Vec<_> = rows
            .into_iter()
            .filter(|(_, _, p)| {
                serde_json::from_str::<Value>(p)
                    .map(|v| v["video_id"] == video_id)
                    .unwrap_or(false)
            })
            .collect();
        assert_eq!(
            mine.len(),
            1,
            "video {video_id} must have exactly one cover job: {mine:?}"
        );
        (mine[0].0, mine[0].1.clone())
    }

    /// (id, created_at) of the ready videos, newest first: what the feed should page through.
    fn ready_newest_first(&self) -> Vec<(i64, i64)> {
        let db = self.db();
        let mut st =
            db.prepare("SELECT id, created_at FROM videos WHERE state = 'ready' ORDER BY created_at DESC, id DESC").unwrap();
        let rows = st
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        rows
    }

    fn component_log(&self, component: &str) -> String {
        std::fs::read_to_string(
            self.dir
                .join("logs")
                .join(format!("{component}_stderr.txt")),
        )
        .unwrap_or_default()
    }
}

// ---- requests -------------------------------------------------------------------------------

#[track_caller]
fn video_list(v: &Value) -> &Vec<Value> {
    v["video_list"]
        .as_array()
        .unwrap_or_else(|| panic!("video_list must be an array: {v}"))
}

#[track_caller]
fn ids(v: &Value) -> Vec<i64> {
    video_list(v)
        .iter()
        .map(|x| x["id"].as_i64().expect("Video.id is a number"))
        .collect()
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

const BOUNDARY: &str = "----TikSpinE2eBoundary7MA4YWxkTrZu0gW";

/// POST publish/action with `parts`, the token in the query when given; with the time it took.
fn publish_raw(c: &Client, query_token: Option<&str>, parts: &[Part<'_>]) -> (Value, Duration) {
    let (ct, body) = multipart(BOUNDARY, parts);
    let path = match query_token {
        Some(t) => format!("{PUBLISH}?{}", query(&[("token", t)])),
        None => PUBLISH.to_string(),
    };
    let start = Instant::now();
    let r = c.post(&path, &ct, &body);
    (envelope(r), start.elapsed())
}

/// Publishes `bytes` the way the client does (token and title as form fields, token in the
/// query too) and expects success.
#[track_caller]
fn publish_ok(c: &Client, user: &U, title: &str, filename: &str, bytes: &[u8]) -> Duration {
    let (v, took) = publish_raw(
        c,
        Some(&user.token),
        &[
            Part::Text("token", &user.token),
            Part::Text("title", title),
            Part::File(filename, bytes),
        ],
    );
    assert_eq!(
        v["status_code"],
        0,
        "publishing {filename} ({} bytes) failed after {took:?}: {v}\n{}",
        bytes.len(),
        host_logs(c)
    );
    took
}

fn publish_list(c: &Client, user_id: i64, token: Option<&str>) -> Value {
    let id = user_id.to_string();
    let mut pairs = vec![("user_id", id.as_str())];
    if let Some(t) = token {
        pairs.push(("token", t));
    }
    let v = envelope(c.get(&format!("{PUBLISH_LIST}?{}", query(&pairs))));
    expect_ok(&v);
    v
}

fn feed(c: &Client, pairs: &[(&str, &str)]) -> Value {
    let path = if pairs.is_empty() {
        FEED.to_string()
    } else {
        format!("{FEED}?{}", query(pairs))
    };
    let v = envelope(c.get(&path));
    expect_ok(&v);
    assert!(v["next_time"].is_i64(), "next_time must be an integer: {v}");
    video_list(&v);
    v
}

/// Pages through the whole feed (as `token`, if any) looking for `video_id`.
fn find_in_feed(c: &Client, token: Option<&str>, video_id: i64) -> Option<Value> {
    let mut latest: Option<String> = None;
    for _ in 0..100 {
        let mut pairs: Vec<(&str, &str)> = Vec::new();
        if let Some(t) = &latest {
            pairs.push(("latest_time", t));
        }
        if let Some(t) = token {
            pairs.push(("token", t));
        }
        let page = feed(c, &pairs);
        if let Some(v) = video_list(&page).iter().find(|v| v["id"] == video_id) {
            return Some(v.clone());
        }
        if video_list(&page).is_empty() {
            return None;
        }
        latest = Some(page["next_time"].as_i64().unwrap().to_string());
    }
    panic!("the feed never ended");
}

/// The path of an absolute URL this host serves (it must start with the client's base).
#[track_caller]
fn local_path<'a>(c: &Client, url: &'a str) -> &'a str {
    url.strip_prefix(&c.base)
        .unwrap_or_else(|| panic!("URL {url:?} is not under the host's base {}", c.base))
}

// ---- images ---------------------------------------------------------------------------------

/// The cover shows the video's first frame: its grid matches the fixture's fingerprint.
#[track_caller]
fn assert_shows(cover: &Jpeg, fingerprint: &[u8; 16], what: &str) {
    let grid = cover.grid();
    let diffs: Vec<f64> = grid
        .iter()
        .zip(fingerprint)
        .map(|(g, f)| (g - *f as f64).abs())
        .collect();
    let mean = diffs.iter().sum::<f64>() / 16.0;
    let max = diffs.iter().cloned().fold(0.0, f64::max);
    assert!(
        mean <= 6.0 && max <= 20.0,
        "the cover of {what} does not show the video's first frame: grid {:?} vs expected {fingerprint:?} (mean diff {mean:.1}, max {max:.1})",
        grid.iter().map(|g| g.round() as i64).collect::<Vec<_>>()
    );
}

/// A cover of a `w`×`h` video: same orientation and aspect ratio, long side at most 720.
#[track_caller]
fn assert_cover_geometry(cover: &Jpeg, w: u32, h: u32, what: &str) {
    let long = cover.width.max(cover.height);
    assert!(
        long <= 720,
        "the cover of {what} is {}×{}: long side over 720",
        cover.width,
        cover.height
    );
    assert!(
        long >= 240,
        "the cover of {what} is {}×{}: too small to be a cover",
        cover.width,
        cover.height
    );
    assert_eq!(
        cover.width > cover.height,
        w > h,
        "the cover of {what} ({}×{}) must have the orientation of the video ({w}×{h})",
        cover.width,
        cover.height
    );
    let want = w as f64 / h as f64;
    let got = cover.width as f64 / cover.height as f64;
    assert!(
        ((got - want) / want).abs() < 0.02,
        "the cover of {what} is {}×{} (aspect {got:.3}), the video {w}×{h} (aspect {want:.3})",
        cover.width,
        cover.height
    );
}

/// GET a cover URL: 200, `image/jpeg`, `Content-Length` right; returns the bytes.
#[track_caller]
fn fetch_cover(c: &Client, url: &str) -> (Vec<u8>, Reply) {
    let r = c.get(local_path(c, url));
    assert_eq!(r.status, 200, "cover {url}: {}", r.text());
    assert_eq!(
        r.header("content-type"),
        Some("image/jpeg"),
        "cover {url} content type"
    );
    assert_eq!(
        r.header("content-length")
            .and_then(|v| v.parse::<usize>().ok()),
        Some(r.body.len()),
        "cover {url} content length"
    );
    (r.body.clone(), r)
}

// ---- the good fixtures ----------------------------------------------------------------------

/// Byte ranges, conditional requests and whole-object GETs on a stored video.
#[track_caller]
fn check_play_url(c: &Client, url: &str, bytes: &[u8], content_type: &str) {
    let path = local_path(c, url);
    let n = bytes.len();
    let whole = c.get(path);
    assert_eq!(whole.status, 200, "play_url {url}: {}", whole.status);
    assert!(
        whole.body == bytes,
        "play_url {url} must serve exactly the uploaded bytes ({} served, {n} uploaded)",
        whole.body.len()
    );
    assert_eq!(
        whole.header("content-type"),
        Some(content_type),
        "play_url content type"
    );
    assert_eq!(
        whole.header("content-length"),
        Some(n.to_string().as_str()),
        "play_url content length"
    );
    assert_eq!(whole.header("accept-ranges"), Some("bytes"));
    let etag = whole
        .header("etag")
        .unwrap_or_else(|| panic!("play_url {url} has no ETag"))
        .to_string();
    assert!(
        etag.len() > 2 && etag.starts_with('"') && etag.ends_with('"'),
        "a strong ETag is quoted: {etag}"
    );

    let range = |spec: &str| c.get_with(path, &[("range", spec)]);
    let expect_206 = |spec: &str, start: usize, end: usize| {
        let r = range(spec);
        assert_eq!(r.status, 206, "Range {spec}: {}", r.status);
        assert_eq!(
            r.header("content-range"),
            Some(format!("bytes {start}-{end}/{n}").as_str()),
            "Range {spec}"
        );
        assert_eq!(
            r.header("content-length"),
            Some((end - start + 1).to_string().as_str()),
            "Range {spec}"
        );
        assert_eq!(r.header("content-type"), Some(content_type), "Range {spec}");
        assert!(
            r.body == bytes[start..=end],
            "Range {spec}: wrong bytes ({} served)",
            r.body.len()
        );
    };
    expect_206("bytes=0-99", 0, 99);
    expect_206("bytes=-100", n - 100, n - 1);
    expect_206("bytes=100-", 100, n - 1);
    expect_206(&format!("bytes={}-{}", n - 10, n + 1000), n - 10, n - 1);
    if n > CHUNK + 200 {
        // Across the blob layer's chunk boundary.
        expect_206(
            &format!("bytes={}-{}", CHUNK - 100, CHUNK + 100),
            CHUNK - 100,
            CHUNK + 100,
        );
    }
    for bad in [
        format!("bytes={n}-"),
        format!("bytes={}-", n + 5),
        "bytes=50-10".to_string(),
    ] {
        let r = range(&bad);
        assert_eq!(
            r.status, 416,
            "Range {bad} on {n} bytes must be unsatisfiable"
        );
        assert_eq!(
            r.header("content-range"),
            Some(format!("bytes */{n}").as_str()),
            "416 for {bad}"
        );
    }

    let r = c.get_with(path, &[("if-none-match", &etag)]);
    assert_eq!(r.status, 304, "If-None-Match with the current ETag");
    assert!(r.body.is_empty(), "a 304 has no body");
    assert_eq!(r.header("etag"), Some(etag.as_str()));
    let r = c.get_with(path, &[("if-none-match", "\"not-the-etag\"")]);
    assert_eq!(r.status, 200, "If-None-Match with another ETag");
    assert!(r.body == bytes);
}

/// Publish one good fixture as a fresh user and check everything a client then sees.
fn publish_good_fixture(f: &Fixture) {
    let host = shared_host();
    let c = &host.client;
    let state = State::of(&host);
    let bytes = fixture_bytes(f.name);
    let user = register(c, "pub");
    let title = format!("{} 视频 🎬", f.name);

    // The Android client sends `../public/<name>` as the filename: never a storage key.
    let took = publish_ok(c, &user, &title, &format!("../public/{}", f.name), &bytes);
    assert!(
        took < Duration::from_secs(5),
        "publishing {} took {took:?}: the client gives up after about 5 s",
        f.name
    );
    eprintln!("publish {} ({} bytes): {took:?}", f.name, bytes.len());

    // Listed at once, with absolute URLs.
    let list = publish_list(c, user.id, Some(&user.token));
    let videos = video_list(&list);
    assert_eq!(
        videos.len(),
        1,
        "the author's list right after publishing: {list}"
    );
    let listed = &videos[0];
    assert_eq!(listed["title"], title.as_str(), "the title round-trips");
    assert_eq!(listed["author"]["id"], user.id);
    assert_eq!(
        listed["author"]["work_count"], 1,
        "work_count counts the new video: {listed}"
    );
    assert_eq!(listed["favorite_count"], 0);
    assert_eq!(listed["comment_count"], 0);
    assert_eq!(listed["is_favorite"], false);
    let cover_url = listed["cover_url"]
        .as_str()
        .expect("cover_url is a string")
        .to_string();
    let play_url = listed["play_url"]
        .as_str()
        .expect("play_url is a string")
        .to_string();
    for url in [&cover_url, &play_url] {
        assert!(
            url.starts_with(&format!("{}/", c.base)),
            "URLs are absolute, under the host the client reached: {url}"
        );
    }
    assert!(
        !play_url.contains("public") && !play_url.contains(".."),
        "the client's filename leaked into the storage key: {play_url}"
    );
    let video_id = listed["id"].as_i64().unwrap();

    // The cover job ran inline, before publish answered: the video is in the feed right away
    // (no waiting out a cache), with the same URLs.
    let in_feed = find_in_feed(c, None, video_id).unwrap_or_else(|| {
        panic!(
            "video {video_id} ({}) is not in the feed right after publish",
            f.name
        )
    });
    assert_eq!(
        in_feed["cover_url"],
        cover_url.as_str(),
        "cover_url must be stable from publish on"
    );
    assert_eq!(in_feed["play_url"], play_url.as_str());
    assert_eq!(in_feed["title"], title.as_str());
    let (db_state, _, cover_key, _) = state.video(video_id);
    assert_eq!(db_state, "ready");
    assert!(cover_key.is_some(), "a ready video has a cover");
    assert_eq!(state.cover_job(video_id).1, "done", "the cover job is done");
    let again = publish_list(c, user.id, None);
    assert_eq!(
        video_list(&again)[0]["cover_url"],
        cover_url.as_str(),
        "cover_url is stable in publish/list too"
    );

    // The cover is the video's first frame, upright, at most 720 on its long side.
    let (jpeg, r) = fetch_cover(c, &cover_url);
    assert_ne!(
        r.header("cache-control"),
        Some("no-cache"),
        "a real cover may be cached (the placeholder may not)"
    );
    let cover_etag = r
        .header("etag")
        .unwrap_or_else(|| panic!("the cover of {} has no ETag", f.name));
    assert_eq!(
        c.get_with(local_path(c, &cover_url), &[("if-none-match", cover_etag)])
            .status,
        304,
        "cover If-None-Match"
    );
    let cover = decode_jpeg(&jpeg);
    assert_cover_geometry(&cover, f.width, f.height, f.name);
    assert_shows(&cover, &f.fingerprint, f.name);

    check_play_url(c, &play_url, &bytes, f.content_type);
}

#[test]
fn publish_portrait_mp4() {
    publish_good_fixture(&PORTRAIT);
}

#[test]
fn publish_landscape_mp4_without_audio() {
    publish_good_fixture(&LANDSCAPE);
}

#[test]
fn publish_large_20s_mp4() {
    publish_good_fixture(&LARGE);
}

#[test]
fn publish_bear_mp4() {
    publish_good_fixture(&BEAR);
}

#[test]
fn publish_not_faststart_mov() {
    publish_good_fixture(&MOV);
}

// ---- the form ---------------------------------------------------------------------------------

/// The part order does not matter, and the token may come in the form, the query or a bearer
/// header; the list is newest first.
#[test]
fn publish_accepts_any_part_order_and_token_placement() {
    let host = shared_host();
    let c = &host.client;
    let user = register(c, "form");
    let clip = fixture_bytes(LANDSCAPE.name);

    // Data first, token only in the form (after the file).
    let (v, _) = publish_raw(
        c,
        None,
        &[
            Part::File("a.mp4", &clip),
            Part::Text("title", "data first"),
            Part::Text("token", &user.token),
        ],
    );
    expect_ok(&v);
    // Data last, token only in the query.
    let (v, _) = publish_raw(
        c,
        Some(&user.token),
        &[Part::Text("title", "data last"), Part::File("b.bin", &clip)],
    );
    expect_ok(&v);
    // Data in the middle, token only as `Authorization: Bearer`.
    let (ct, body) = multipart(
        BOUNDARY,
        &[
            Part::Text("title", "  bearer, trimmed  "),
            Part::File("c", &clip),
            Part::Text("extra", "ignored"),
        ],
    );
    // (And the path without its trailing slash.)
    let r = c.post_with(
        PUBLISH.trim_end_matches('/'),
        &[
            ("content-type", &ct),
            ("authorization", &format!("Bearer {}", user.token)),
        ],
        &body,
    );
    expect_ok(&envelope(r));

    let list = publish_list(c, user.id, None);
    let titles: Vec<&str> = video_list(&list)
        .iter()
        .map(|v| v["title"].as_str().unwrap())
        .collect();
    assert_eq!(
        titles,
        ["bearer, trimmed", "data last", "data first"],
        "newest first, titles trimmed: {list}"
    );
    let vids = ids(&list);
    assert!(
        vids.windows(2).all(|w| w[0] > w[1]),
        "newest first: {vids:?}"
    );
    assert_eq!(video_list(&list)[0]["author"]["work_count"], 3);
    // An unknown author is an error, not an empty list.
    let v = envelope(c.get(&format!("{PUBLISH_LIST}?user_id=999999999")));
    assert_ne!(v["status_code"], 0, "{v}");
    assert_eq!(
        v["video_list"],
        serde_json::json!([]),
        "video_list is present on failure: {v}"
    );
    // publish/list without user_id but with a token: the viewer's own list.
    let own = envelope(c.get(&format!(
        "{PUBLISH_LIST}?{}",
        query(&[("token", &user.token)])
    )));
    expect_ok(&own);
    assert_eq!(ids(&own), vids);
}

/// A title is 1–100 characters counted as characters (CJK and emoji count one).
#[test]
fn publish_title_of_100_characters_round_trips() {
    let host = shared_host();
    let c = &host.client;
    let user = register(c, "title");
    let clip = fixture_bytes(LANDSCAPE.name);
    let title: String = "抖音🎵".repeat(33) + "好"; // 100 characters, 299 bytes
    assert_eq!(title.chars().count(), 100);
    publish_ok(c, &user, &title, "t.mp4", &clip);
    let list = publish_list(c, user.id, None);
    assert_eq!(video_list(&list)[0]["title"], title.as_str());

    let long = title.clone() + "!";
    let (v, _) = publish_raw(
        c,
        Some(&user.token),
        &[Part::Text("title", &long), Part::File("t.mp4", &clip)],
    );
    assert_eq!(v["status_code"], TITLE_TOO_LONG, "{v}");
    assert_eq!(
        ids(&publish_list(c, user.id, None)).len(),
        1,
        "the refused publish must not be listed"
    );
}

// ---- viewer-relative flags ------------------------------------------------------------------

#[test]
fn feed_flags_follow_the_viewer_and_a_bad_token_is_anonymous() {
    let host = shared_host();
    let c = &host.client;
    let author = register(c, "auth");
    let fan = register(c, "fan");
    let clip = fixture_bytes(LANDSCAPE.name);
    publish_ok(c, &author, "flags", "f.mp4", &clip);
    let video_id = ids(&publish_list(c, author.id, None))[0];

    // Before: nothing liked, nobody followed.
    let before = find_in_feed(c, Some(&fan.token), video_id).expect("the video is in the feed");
    assert_eq!(before["is_favorite"], false);
    assert_eq!(before["author"]["is_follow"], false);

    let like = envelope(c.post_empty(&format!(
        "/douyin/favorite/action/?{}",
        query(&[
            ("token", &fan.token),
            ("video_id", &video_id.to_string()),
            ("action_type", "1")
        ])
    )));
    expect_ok(&like);
    let follow = envelope(c.post_empty(&format!(
        "/douyin/relation/action/?{}",
        query(&[
            ("token", &fan.token),
            ("to_user_id", &author.id.to_string()),
            ("action_type", "1")
        ])
    )));
    expect_ok(&follow);

    let seen = find_in_feed(c, Some(&fan.token), video_id).expect("the video is in the feed");
    assert_eq!(seen["is_favorite"], true, "the fan liked it: {seen}");
    assert_eq!(
        seen["author"]["is_follow"], true,
        "the fan follows its author: {seen}"
    );
    assert_eq!(seen["favorite_count"], 1, "{seen}");
    // The same through the bearer header.
    let r = c.get_with(FEED, &[("authorization", &format!("Bearer {}", fan.token))]);
    let page = envelope(r);
    // (The shared host holds far fewer than 30 videos, so the newest page has it.)
    let v = video_list(&page)
        .iter()
        .find(|v| v["id"] == video_id)
        .expect("the video is on the first page");
    assert_eq!(v["is_favorite"], true, "bearer viewer: {v}");
    assert_eq!(v["author"]["is_follow"], true, "bearer viewer: {v}");
    // publish/list carries the viewer's flags too.
    let listed = &publish_list(c, author.id, Some(&fan.token))["video_list"][0];
    assert_eq!(listed["is_favorite"], true, "{listed}");
    assert_eq!(listed["author"]["is_follow"], true, "{listed}");

    // The author sees their own video: not liked by them, and one does not follow oneself.
    let own = find_in_feed(c, Some(&author.token), video_id).unwrap();
    assert_eq!(own["is_favorite"], false, "{own}");
    assert_eq!(own["author"]["is_follow"], false, "{own}");
    assert_eq!(own["favorite_count"], 1);

    // Anonymous, and every kind of bad token: served, flags false, same videos.
    let anonymous = find_in_feed(c, None, video_id).unwrap();
    assert_eq!(anonymous["is_favorite"], false);
    assert_eq!(anonymous["author"]["is_follow"], false);
    let now = now_ms();
    let bad_tokens = [
        ("garbage", "not-a-token".to_string()),
        (
            "forged",
            jwt::issue("some-other-secret", fan.id, now).unwrap(),
        ),
        (
            "expired",
            jwt::issue(JWT_SECRET, fan.id, now - 400 * DAY_MS).unwrap(),
        ),
        ("truncated", fan.token[..fan.token.len() - 5].to_string()),
    ];
    for (what, token) in &bad_tokens {
        let v = find_in_feed(c, Some(token), video_id)
            .unwrap_or_else(|| panic!("a {what} token blanked the feed"));
        assert_eq!(v["is_favorite"], false, "{what} token: {v}");
        assert_eq!(v["author"]["is_follow"], false, "{what} token: {v}");
        let first = feed(c, &[("token", token)]);
        assert!(
            !video_list(&first).is_empty(),
            "a {what} token must not blank the feed"
        );
    }
}

// ---- media errors ---------------------------------------------------------------------------

#[test]
fn media_and_publish_routes_refuse_what_does_not_exist() {
    let host = shared_host();
    let c = &host.client;
    for path in [
        "/media/cover/999999999.jpg",
        "/media/cover/abc.jpg",
        "/media/videos/0123456789abcdef01234567.mp4",
        "/media/covers/999999999.jpg",
    ] {
        let r = c.get(path);
        assert_eq!(r.status, 404, "{path}");
        let v = r.json();
        assert_ne!(v["status_code"], 0, "{path}: {v}");
    }
    // A wrong method is a 405 with the envelope, never an upload.
    let r = c.get(PUBLISH);
    assert_eq!(r.status, 405);
    assert_eq!(r.json()["status_code"], METHOD_NOT_ALLOWED);
    // Without the trailing slash too (no redirect).
    let r = c.get("/douyin/feed");
    assert_eq!(r.status, 200);
    expect_ok(&r.json());
}

// ---- welcome seed ---------------------------------------------------------------------------

/// A fresh deployment's first feed shows one welcome video by a system user, under the
/// configured public base URL.
#[test]
fn fresh_deployment_feed_has_the_welcome_video() {
    let base = "http://tikspin.test:8080";
    let host = start_host(&[("public_base_url", base)]);
    let c = &host.client;
    let first = feed(c, &[]);
    let videos = video_list(&first);
    assert_eq!(
        videos.len(),
        1,
        "a fresh deployment's first feed has exactly the welcome video: {first}"
    );
    let welcome = &videos[0];
    assert!(!welcome["title"].as_str().unwrap().is_empty());
    let author = &welcome["author"];
    assert!(
        author["id"].as_i64().unwrap() > 0 && !author["name"].as_str().unwrap().is_empty(),
        "{welcome}"
    );
    // The system user the schema migration made (`users::SYSTEM_USER_NAME`), whose name no
    // registration may take.
    assert_eq!(author["name"], "TikSpin", "{welcome}");
    let v = envelope(c.post_empty(&format!(
        "/douyin/user/register/?{}",
        query(&[("username", "tikspin"), ("password", "secret123")])
    )));
    assert_eq!(
        v["status_code"],
        tikspin_core::api::USERNAME_RESERVED,
        "the system user's name is reserved: {v}"
    );
    assert_eq!(
        first["next_time"].as_i64(),
        Some(State::of(&host).video(welcome["id"].as_i64().unwrap()).3),
        "next_time is its publish time"
    );

    // URLs use public_base_url; fetch them through the host we can reach.
    let rebase = |url: &str| -> String {
        let rest = url
            .strip_prefix(base)
            .unwrap_or_else(|| panic!("{url} does not use public_base_url {base}"));
        format!("{}{rest}", c.base)
    };
    let play = rebase(welcome["play_url"].as_str().unwrap());
    let r = c.get(local_path(c, &play));
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("video/mp4"));
    assert!(
        r.body.len() > 1000 && &r.body[4..8] == b"ftyp",
        "the welcome clip is an MP4"
    );
    let (jpeg, _) = fetch_cover(c, &rebase(welcome["cover_url"].as_str().unwrap()));
    let cover = decode_jpeg(&jpeg);
    assert_cover_geometry(&cover, 360, 640, "the welcome clip");
    assert_shows(&cover, &WELCOME_FINGERPRINT, "the welcome clip");

    // Seeded once: later feeds and a restart-free second look do not add another.
    for _ in 0..3 {
        assert_eq!(ids(&feed(c, &[])), vec![welcome["id"].as_i64().unwrap()]);
    }
    let state = State::of(&host);
    assert_eq!(state.videos(), 1);
    // The author's publish list has it, and the system user cannot be logged in as.
    let list = publish_list(c, author["id"].as_i64().unwrap(), None);
    assert_eq!(ids(&list), vec![welcome["id"].as_i64().unwrap()]);
    for password in ["", "!", "password", "TikSpin"] {
        let v = envelope(c.post_empty(&format!(
            "/douyin/user/login/?{}",
            query(&[
                ("username", author["name"].as_str().unwrap()),
                ("password", password)
            ])
        )));
        assert_ne!(
            v["status_code"], 0,
            "logged in as the system user with {password:?}: {v}"
        );
    }
}

/// Several clients launching at once on a fresh deployment each get a non-empty first feed,
/// and the seed still happens once.
#[test]
fn concurrent_first_feeds_of_a_fresh_deployment_all_show_the_welcome_video() {
    let host = start_host(&[]);
    let c = &host.client;
    let firsts: Vec<Value> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8).map(|_| s.spawn(|| feed(c, &[]))).collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let empty = firsts
        .iter()
        .filter(|page| video_list(page).is_empty())
        .count();
    let state = State::of(&host);
    assert_eq!(state.videos(), 1, "seeded exactly once");
    assert_eq!(
        empty, 0,
        "{empty} of 8 concurrent first feeds of a fresh deployment were empty"
    );
    for page in &firsts {
        assert_eq!(ids(page).len(), 1, "{page}");
    }
}

// ---- paging ---------------------------------------------------------------------------------

/// Seed off: an empty first feed. Then 70 videos paged through by `next_time`, and every form
/// of `latest_time`.
#[test]
fn feed_pages_through_70_videos_and_accepts_any_latest_time() {
    let host = start_host(&[("seed_welcome_video", "false")]);
    let c = &host.client;
    let state = State::of(&host);

    let empty = feed(c, &[]);
    assert!(
        video_list(&empty).is_empty(),
        "seed_welcome_video=false: the first feed is empty: {empty}"
    );
    let t = empty["next_time"].as_i64().unwrap();
    assert!(
        (t - now_ms()).abs() < 10_000,
        "an empty page's next_time is now: {t} vs {}",
        now_ms()
    );

    let clip = fixture_bytes(LANDSCAPE.name);
    let authors = [register(c, "pg_a"), register(c, "pg_b")];
    let mut published = Vec::new();
    for i in 0..70 {
        if i == 35 {
            // Cross a whole-second boundary so a `latest_time` in seconds splits the set.
            let ms = now_ms();
            std::thread::sleep(Duration::from_millis((1000 - ms % 1000 + 50) as u64));
        }
        let author = &authors[i % 2];
        publish_ok(c, author, &format!("page video {i}"), "p.mp4", &clip);
        published.push(i);
    }
    let all = state.ready_newest_first();
    assert_eq!(all.len(), 70, "70 ready videos");
    let newest: Vec<i64> = all.iter().map(|(id, _)| *id).collect();

    // Follow next_time: pages of at most 30, newest first, each video once, no gaps.
    let mut seen = Vec::new();
    let mut latest: Option<String> = None;
    let mut pages = 0;
    let end = loop {
        let mut pairs = Vec::new();
        if let Some(t) = &latest {
            pairs.push(("latest_time", t.as_str()));
        }
        let page = feed(c, &pairs);
        let page_ids = ids(&page);
        if page_ids.is_empty() {
            break page;
        }
        pages += 1;
        assert!(pages <= 10, "the feed does not end");
        assert!(
            page_ids.len() <= 30,
            "a page has at most 30 videos: {}",
            page_ids.len()
        );
        let oldest = page_ids.last().unwrap();
        let created = all.iter().find(|(id, _)| id == oldest).unwrap().1;
        assert_eq!(
            page["next_time"].as_i64(),
            Some(created),
            "next_time is the oldest video's publish time"
        );
        for v in video_list(&page) {
            assert!(v["cover_url"].as_str().is_some_and(|u| !u.is_empty()));
            assert!(v["author"]["id"] == authors[0].id || v["author"]["id"] == authors[1].id);
            assert_eq!(
                v["author"]["work_count"], 35,
                "each author published 35: {v}"
            );
        }
        seen.extend(page_ids);
        latest = Some(created.to_string());
    };
    assert_eq!(
        seen, newest,
        "paging gives every video once, newest first, without gaps"
    );
    assert_eq!(pages, 3, "70 videos are 3 pages (30 + 30 + 10)");
    let t = end["next_time"].as_i64().unwrap();
    assert!(
        (t - now_ms()).abs() < 10_000,
        "past the oldest: next_time is now, got {t}"
    );
    // The client's next pull with that next_time starts again from the newest.
    let again = feed(c, &[("latest_time", &t.to_string())]);
    assert_eq!(
        ids(&again),
        newest[..30].to_vec(),
        "looping back from the empty page's next_time"
    );

    // latest_time in ms: strictly before it.
    let tenth = all[9].1;
    assert_eq!(
        ids(&feed(c, &[("latest_time", &tenth.to_string())])),
        newest[10..40].to_vec(),
        "latest_time in ms"
    );
    let oldest = all[69].1;
    let past = feed(c, &[("latest_time", &oldest.to_string())]);
    assert!(
        video_list(&past).is_empty(),
        "nothing is older than the oldest video"
    );

    // latest_time in seconds (10 digits): the second of the 36th video, which started a new
    // second after the pause.
    let second = all[34].1 / 1000; // all[34] is the 36th published (index 35)
    let bound = second * 1000;
    let want: Vec<i64> = all
        .iter()
        .filter(|(_, t)| *t < bound)
        .map(|(id, _)| *id)
        .take(30)
        .collect();
    assert!(
        !want.is_empty() && want.len() < 70,
        "the pause split the set: {} before {bound}",
        want.len()
    );
    assert_ne!(want, newest[..30].to_vec());
    assert_eq!(
        ids(&feed(c, &[("latest_time", &second.to_string())])),
        want,
        "latest_time {second} in seconds"
    );

    // Missing, zero, negative, future, not a number: "now", never an error.
    let head = newest[..30].to_vec();
    let future_ms = (now_ms() + DAY_MS).to_string();
    let future_s = ((now_ms() + DAY_MS) / 1000).to_string();
    for raw in [
        "0",
        "-1",
        "-1700000000000",
        &future_ms,
        &future_s,
        "9999999999999999",
        "abc",
        "",
        "1.7e12",
        "12abc",
    ] {
        let page = feed(c, &[("latest_time", raw)]);
        assert_eq!(ids(&page), head, "latest_time={raw:?} means now");
        assert_eq!(
            page["next_time"].as_i64(),
            Some(all[29].1),
            "latest_time={raw:?}"
        );
    }
    let page = envelope(c.get(&format!("{FEED}?latest_time=99999999999999999999999")));
    expect_ok(&page);
    assert_eq!(ids(&page), head, "an out-of-range latest_time means now");
}

// ---- bad input ------------------------------------------------------------------------------

/// Every refused upload answers a clear business error and leaves no video row, no job row and
/// no stored object (chunks or meta) behind, with the file before or after the fields.
#[test]
fn bad_uploads_are_refused_and_leave_nothing_behind() {
    let host = start_host(&[("max_upload_mb", "1"), ("seed_welcome_video", "false")]);
    let c = &host.client;
    let state = State::of(&host);
    let user = register(c, "bad");
    let _ = publish_list(c, user.id, None); // the schema exists from here on
    let good = fixture_bytes(LANDSCAPE.name);
    let not_video = fixture_bytes("not-a-video.mp4");
    let truncated = fixture_bytes("truncated.mp4");
    let large = fixture_bytes("large-20s.mp4");
    // Over 1 MB but under the size the request head is refused at: found while streaming.
    let over_limit_streamed = &large[..1_200_000];
    let long_title = "x".repeat(101);
    let forged = jwt::issue("another-secret", user.id, now_ms()).unwrap();
    let ghost = jwt::issue(JWT_SECRET, user.id + 10_000, now_ms()).unwrap();
    let tok = user.token.as_str();

    struct Case<'a> {
        what: &'static str,
        query_token: Option<&'a str>,
        fields: Vec<(&'static str, &'a str)>,
        file: Option<&'a [u8]>,
        code: i32,
        msg: &'static str,
    }
    let cases: Vec<Case<'_>> = vec![
        Case {
            what: "missing token",
            query_token: None,
            fields: vec![("title", "t")],
            file: Some(&good),
            code: AUTH_REQUIRED,
            msg: "token",
        },
        Case {
            what: "invalid token in the form",
            query_token: None,
            fields: vec![("token", "bogus"), ("title", "t")],
            file: Some(&good),
            code: INVALID_TOKEN,
            msg: "token",
        },
        Case {
            what: "invalid token in the query",
            query_token: Some("bogus"),
            fields: vec![("title", "t")],
            file: Some(&good),
            code: INVALID_TOKEN,
            msg: "token",
        },
        Case {
            what: "forged token",
            query_token: None,
            fields: vec![("token", forged.as_str()), ("title", "t")],
            file: Some(&good),
            code: INVALID_TOKEN,
            msg: "token",
        },
        Case {
            what: "token of no user",
            query_token: None,
            fields: vec![("token", ghost.as_str()), ("title", "t")],
            file: Some(&good),
            code: INVALID_TOKEN,
            msg: "token",
        },
        Case {
            what: "missing title",
            query_token: None,
            fields: vec![("token", tok)],
            file: Some(&good),
            code: TITLE_MISSING,
            msg: "title",
        },
        Case {
            what: "blank title",
            query_token: None,
            fields: vec![("token", tok), ("title", "   ")],
            file: Some(&good),
            code: TITLE_MISSING,
            msg: "title",
        },
        Case {
            what: "title over 100 characters",
            query_token: None,
            fields: vec![("token", tok), ("title", long_title.as_str())],
            file: Some(&good),
            code: TITLE_TOO_LONG,
            msg: "100",
        },
        Case {
            what: "title with a newline",
            query_token: None,
            fields: vec![("token", tok), ("title", "two\nlines")],
            file: Some(&good),
            code: BAD_PARAMETER,
            msg: "title",
        },
        Case {
            what: "missing data part",
            query_token: None,
            fields: vec![("token", tok), ("title", "t")],
            file: None,
            code: VIDEO_MISSING,
            msg: "data",
        },
        Case {
            what: "empty file",
            query_token: None,
            fields: vec![("token", tok), ("title", "t")],
            file: Some(b""),
            code: VIDEO_EMPTY,
            msg: "empty",
        },
        Case {
            what: "not a video",
            query_token: None,
            fields: vec![("token", tok), ("title", "t")],
            file: Some(&not_video),
            code: NOT_A_VIDEO,
            msg: "video",
        },
        Case {
            what: "truncated video",
            query_token: None,
            fields: vec![("token", tok), ("title", "t")],
            file: Some(&truncated),
            code: VIDEO_TRUNCATED,
            msg: "incomplete",
        },
        Case {
            what: "over max_upload_mb (found streaming)",
            query_token: None,
            fields: vec![("token", tok), ("title", "t")],
            file: Some(over_limit_streamed),
            code: VIDEO_TOO_LARGE,
            msg: "1 MB",
        },
    ];
    for case in &cases {
        for data_first in [true, false] {
            let mut parts: Vec<Part<'_>> =
                case.fields.iter().map(|(k, v)| Part::Text(k, v)).collect();
            if let Some(file) = case.file {
                let p = Part::File("../public/x.mp4", file);
                if data_first {
                    parts.insert(0, p);
                } else {
                    parts.push(p);
                }
            }
            let order = if data_first {
                "data first"
            } else {
                "data last"
            };
            let (v, _) = publish_raw(c, case.query_token, &parts);
            assert_eq!(v["status_code"], case.code, "{} ({order}): {v}", case.what);
            let msg = v["status_msg"].as_str().unwrap();
            assert!(
                msg.to_lowercase().contains(&case.msg.to_lowercase()),
                "{} ({order}): status_msg {msg:?} should mention {:?}",
                case.what,
                case.msg
            );
            assert_eq!(
                state.videos(),
                0,
                "{} ({order}) left a video row",
                case.what
            );
            assert_eq!(state.jobs(), 0, "{} ({order}) left a job row", case.what);
            assert_eq!(
                state.blob_keys(),
                Vec::<String>::new(),
                "{} ({order}) left stored chunks",
                case.what
            );
        }
    }

    // Not a form at all.
    let v = envelope(c.post(
        &format!("{PUBLISH}?{}", query(&[("token", tok), ("title", "t")])),
        "application/octet-stream",
        &good,
    ));
    assert_ne!(v["status_code"], 0, "a raw body is not a publish: {v}");
    // The whole 7.8 MB file against a 1 MB limit: refused (the declared size already says so).
    let (ct, body) = multipart(
        BOUNDARY,
        &[
            Part::Text("token", tok),
            Part::Text("title", "big"),
            Part::File("big.mp4", &large),
        ],
    );
    let r = post_tolerant(
        c,
        &format!("{PUBLISH}?{}", query(&[("token", tok)])),
        &ct,
        &body,
    );
    let v = envelope(r);
    assert_eq!(v["status_code"], VIDEO_TOO_LARGE, "{v}");
    assert!(
        v["status_msg"].as_str().unwrap().contains("1 MB"),
        "the message gives the limit: {v}"
    );
    assert_eq!(
        (state.videos(), state.jobs(), state.blob_keys().len()),
        (0, 0, 0),
        "the large upload left something"
    );

    // Control: the same host, user and checks see a good upload (so the checks above can fail).
    publish_ok(c, &user, "the good one", "g.mp4", &good);
    assert_eq!(state.videos(), 1);
    assert_eq!(state.jobs(), 1);
    let id = ids(&publish_list(c, user.id, None))[0];
    let (_, play_key, cover_key, _) = state.video(id);
    let keys: BTreeSet<String> = state.blob_keys().into_iter().collect();
    let cover_key = cover_key.expect("inline cover job made the cover");
    for key in [&play_key, &cover_key] {
        assert!(
            keys.contains(&format!("blob:{key}:meta")),
            "{key} stored: {keys:?}"
        );
        assert!(
            keys.contains(&format!("blob:{key}:0")),
            "{key} stored: {keys:?}"
        );
    }
    assert_eq!(
        keys.len(),
        4,
        "exactly the video and its cover, one chunk each: {keys:?}"
    );
}

/// POST that still reads the answer if the server answers before taking the whole body (a
/// server may refuse an upload by its declared size and close).
fn post_tolerant(c: &Client, path: &str, content_type: &str, body: &[u8]) -> Reply {
    let addr = c.base.strip_prefix("http://").unwrap();
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    for chunk in body.chunks(64 * 1024) {
        if s.write_all(chunk).is_err() {
            break; // the server answered early and closed: read what it said
        }
    }
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no HTTP answer: {:?}", String::from_utf8_lossy(&raw)));
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let mut lines = head.lines();
    let status: u16 = lines
        .next()
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_lowercase(), v.trim().to_string()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    if headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"))
    {
        body = dechunk(&body);
    }
    Reply {
        status,
        headers,
        body,
    }
}

fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = raw.windows(2).position(|w| w == b"\r\n") {
        let size =
            usize::from_str_radix(String::from_utf8_lossy(&raw[..eol]).trim(), 16).unwrap_or(0);
        if size == 0 {
            break;
        }
        out.extend_from_slice(&raw[eol + 2..eol + 2 + size]);
        raw = &raw[eol + 2 + size + 2..];
    }
    out
}

// ---- jobs through Redis ---------------------------------------------------------------------

/// `PUBSUB NUMSUB channel`.
fn subscribers(redis: &RedisServer, channel: &str) -> i64 {
    let out = redis.cli(&["PUBSUB", "NUMSUB", channel]).unwrap();
    out.lines()
        .last()
        .and_then(|l| l.trim().parse().ok())
        .unwrap_or_else(|| panic!("PUBSUB NUMSUB said {out:?}"))
}

/// A raw RESP subscriber: sees what the app publishes on the jobs channel.
struct Spy {
    stream: TcpStream,
    seen: Vec<u8>,
}

impl Spy {
    fn subscribe(port: u16, channel: &str) -> Self {
        Self::connect(port, format!("SUBSCRIBE {channel}\r\n"))
    }

    /// Subscribes as ACL user `user` (created `nopass`).
    fn subscribe_as(port: u16, user: &str, channel: &str) -> Self {
        Self::connect(port, format!("AUTH {user} x\r\nSUBSCRIBE {channel}\r\n"))
    }

    fn connect(port: u16, commands: String) -> Self {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        stream.write_all(commands.as_bytes()).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        Spy {
            stream,
            seen: Vec::new(),
        }
    }

    /// Whether a message with exactly `payload` arrived within `timeout`.
    fn saw(&mut self, payload: &str, timeout: Duration) -> bool {
        let needle = format!("\r\n${}\r\n{payload}\r\n", payload.len());
        let start = Instant::now();
        loop {
            if String::from_utf8_lossy(&self.seen).contains(&needle) {
                return true;
            }
            if start.elapsed() > timeout {
                return false;
            }
            let mut buf = [0u8; 4096];
            match self.stream.read(&mut buf) {
                Ok(0) => return String::from_utf8_lossy(&self.seen).contains(&needle),
                Ok(n) => self.seen.extend_from_slice(&buf[..n]),
                Err(_) => {}
            }
        }
    }
}

/// With `redis_address` set, publish puts the job id on `jobs_channel` and the worker makes the
/// cover. A message nobody hears (0 receivers) is run by the publish request itself; a message
/// lost on the way is not a lost job: the row stays pending (the cover URL serves the
/// placeholder, the feed hides the video) until a request re-drives it (`jobs::redrive_stranded`).
#[test]
fn cover_jobs_run_in_the_worker_and_unheard_or_lost_wake_ups_recover_without_a_cron() {
    let mut redis = RedisServer::start().expect("redis-server");
    let channel = "e2e-video-jobs";
    let host = start_host(&[
        ("redis_address", &redis.url()),
        ("jobs_channel", channel),
        ("seed_welcome_video", "false"),
    ]);
    let c = &host.client;
    let state = State::of(&host);
    assert!(
        wait_until(Duration::from_secs(20), || subscribers(&redis, channel)
            >= 1),
        "the worker never subscribed to {channel}:\n{}",
        host.log()
    );
    let mut spy = Spy::subscribe(redis.port, channel);
    assert!(
        wait_until(Duration::from_secs(5), || subscribers(&redis, channel) >= 2),
        "the spy did not subscribe"
    );

    // 1. The normal path: published to Redis, run by the worker.
    let user = register(c, "redis");
    let took = publish_ok(
        c,
        &user,
        "through redis",
        "r.mp4",
        &fixture_bytes(PORTRAIT.name),
    );
    assert!(took < Duration::from_secs(5), "publish took {took:?}");
    let first = ids(&publish_list(c, user.id, None))[0];
    let (job, _) = state.cover_job(first);
    assert!(
        spy.saw(&job.to_string(), Duration::from_secs(10)),
        "job {job} was not published on {channel}"
    );
    assert!(
        wait_until(Duration::from_secs(30), || find_in_feed(c, None, first)
            .is_some()),
        "the worker never made the cover of video {first}: {:?}\n{}",
        state.cover_job(first),
        state.component_log("worker")
    );
    // The worker marks the video ready, then the job done.
    assert!(
        wait_until(Duration::from_secs(10), || state.cover_job(first).1
            == "done"),
        "job of video {first}: {:?}",
        state.cover_job(first)
    );
    assert!(
        !state.component_log("video").contains("running it inline"),
        "the job ran inline, not in the worker:\n{}",
        state.component_log("video")
    );
    let listed = &publish_list(c, user.id, None)["video_list"][0];
    let (jpeg, _) = fetch_cover(c, listed["cover_url"].as_str().unwrap());
    let cover = decode_jpeg(&jpeg);
    assert_cover_geometry(
        &cover,
        PORTRAIT.width,
        PORTRAIT.height,
        "the worker's cover",
    );
    assert_shows(&cover, &PORTRAIT.fingerprint, "the worker's cover");

    // 2. Nobody listening (an ACL keeps the worker from subscribing): Redis answers 0
    //    receivers, and the publish request runs the job itself, so its cover is not late.
    redis
        .cli(&[
            "ACL",
            "SETUSER",
            "default",
            "-subscribe",
            "-psubscribe",
            "-ssubscribe",
        ])
        .unwrap();
    redis.cli(&["CLIENT", "KILL", "TYPE", "pubsub"]).unwrap();
    assert!(
        wait_until(Duration::from_secs(5), || subscribers(&redis, channel) == 0),
        "the subscribers are still there"
    );
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        subscribers(&redis, channel),
        0,
        "the worker re-subscribed despite the ACL"
    );
    publish_ok(c, &user, "unheard", "u.mp4", &fixture_bytes(PORTRAIT.name));
    let unheard = ids(&publish_list(c, user.id, None))[0];
    assert_eq!(
        state.cover_job(unheard).1,
        "done",
        "a job nobody hears runs in the publish request"
    );
    assert!(
        state
            .component_log("video")
            .contains("no worker is listening"),
        "{}",
        state.component_log("video")
    );

    // 3. A lost message: a listener that drops it (a spy under its own ACL user) makes Redis
    //    say "received", so the job stays pending (its cover URL serves a placeholder) until a
    //    re-drive reaches a worker — no cron and no sweep message: the feed requests clients
    //    make anyway notice it.
    redis
        .cli(&["ACL", "SETUSER", "spy", "on", "nopass", "+@all", "~*", "&*"])
        .unwrap();
    let _spy = Spy::subscribe_as(redis.port, "spy", channel);
    assert!(
        wait_until(Duration::from_secs(5), || subscribers(&redis, channel) == 1),
        "the spy did not subscribe"
    );
    publish_ok(
        c,
        &user,
        "lost message",
        "l.mp4",
        &fixture_bytes(LANDSCAPE.name),
    );
    let lost = ids(&publish_list(c, user.id, None))[0];
    assert_ne!(lost, unheard);
    std::thread::sleep(Duration::from_millis(1000));
    let (lost_job, job_state) = state.cover_job(lost);
    assert_eq!(
        job_state, "pending",
        "only the spy received job {lost_job}, so nobody may have run it"
    );
    assert_eq!(state.video(lost).0, "processing");
    assert!(
        find_in_feed(c, None, lost).is_none(),
        "a processing video is not in the feed"
    );
    // Listed with its stable cover URL, which serves a placeholder JPEG meanwhile.
    let listed = publish_list(c, user.id, None);
    let processing = &video_list(&listed)[0];
    assert_eq!(processing["id"], lost);
    let cover_url = processing["cover_url"].as_str().unwrap().to_string();
    assert!(!cover_url.is_empty());
    let (placeholder, r) = fetch_cover(c, &cover_url);
    assert_eq!(
        r.header("cache-control"),
        Some("no-cache"),
        "the placeholder must not be cached"
    );
    decode_jpeg(&placeholder);

    // The worker may listen again: a later feed request re-drives the job to it.
    redis.cli(&["ACL", "SETUSER", "default", "+@all"]).unwrap();
    assert!(
        wait_until(Duration::from_secs(20), || subscribers(&redis, channel)
            >= 2),
        "the worker did not re-subscribe:\n{}",
        host.log()
    );
    let listening = Instant::now();
    assert!(
        wait_until(Duration::from_secs(30), || find_in_feed(c, None, lost)
            .is_some()),
        "no re-drive ran job {lost_job}: {:?}\n{}",
        state.cover_job(lost),
        state.component_log("worker")
    );
    eprintln!(
        "lost wake-up: cover ready {:.1} s after the worker listened again",
        listening.elapsed().as_secs_f64()
    );
    // The worker marks the video ready, then the job done.
    assert!(
        wait_until(Duration::from_secs(10), || state.cover_job(lost).1
            == "done"),
        "job of video {lost}: {:?}",
        state.cover_job(lost)
    );
    let later = publish_list(c, user.id, None);
    assert_eq!(
        video_list(&later)[0]["cover_url"],
        cover_url.as_str(),
        "the cover URL did not change when the cover arrived"
    );
    let (real, r) = fetch_cover(c, &cover_url);
    assert_ne!(real, placeholder, "the same URL now serves the real cover");
    assert_ne!(r.header("cache-control"), Some("no-cache"));
    let cover = decode_jpeg(&real);
    assert_cover_geometry(
        &cover,
        LANDSCAPE.width,
        LANDSCAPE.height,
        "the re-driven cover",
    );
    assert_shows(&cover, &LANDSCAPE.fingerprint, "the re-driven cover");

    // 3. Redis down: publish still works (falls back to running the job inline).
    redis.stop();
    publish_ok(
        c,
        &user,
        "redis down",
        "d.mp4",
        &fixture_bytes(LANDSCAPE.name),
    );
    let down = ids(&publish_list(c, user.id, None))[0];
    assert!(
        find_in_feed(c, None, down).is_some(),
        "with Redis down the job runs inline"
    );
    assert_eq!(state.cover_job(down).1, "done");

    // Redis back: the worker subscribes again by itself.
    redis.restart().expect("restart redis");
    assert!(
        wait_until(Duration::from_secs(20), || subscribers(&redis, channel)
            >= 1),
        "the worker did not come back after a Redis restart"
    );
}

/// A host killed (SIGKILL) while its worker holds a cover job's lease: the next host started
/// on the same state finishes the job by itself — no cron, no sweep message — once the dead
/// worker's lease is over, and the job ran twice, not once or never.
#[test]
fn a_cover_job_orphaned_by_a_killed_host_is_finished_by_the_next_host() {
    let redis = RedisServer::start().expect("redis-server");
    let channel = "e2e-orphaned-jobs";
    let dir = tempfile::tempdir().unwrap();
    let port = tikspin_e2e::free_port();
    let mut variables = vec![("jwt_secret".to_string(), JWT_SECRET.to_string())];
    for (k, v) in [
        ("redis_address", redis.url()),
        ("jobs_channel", channel.to_string()),
        ("seed_welcome_video", "false".to_string()),
    ] {
        variables.push((k.to_string(), v));
    }
    let start = || {
        TestHost::start(HostConfig {
            manifest: tikspin_e2e::harness::manifest_for(&variables),
            variables: variables.clone(),
            port: Some(port),
            state_dir: Some(dir.path().to_path_buf()),
            ..Default::default()
        })
    };
    let state = State {
        dir: dir.path().to_path_buf(),
    };
    let mut host = start();
    assert!(
        wait_until(Duration::from_secs(20), || subscribers(&redis, channel)
            >= 1),
        "the worker never subscribed"
    );
    let user = register(&host.client, "orphan");
    let large = fixture_bytes(LARGE.name);
    // Kill the host the moment the worker has claimed a cover job; a job that finished before
    // the kill could land is no orphan, so try again with another upload.
    let mut orphan = None;
    for attempt in 0..5 {
        publish_ok(
            &host.client,
            &user,
            &format!("orphan {attempt}"),
            "o.mp4",
            &large,
        );
        let video = ids(&publish_list(&host.client, user.id, None))[0];
        let mut job_state = String::new();
        wait_until(Duration::from_secs(10), || {
            job_state = state.cover_job(video).1;
            job_state != "pending"
        });
        if job_state == "running" {
            host.kill();
            orphan = Some(video);
            break;
        }
    }
    let video = orphan.expect("no cover job was still running when the host was killed");
    let killed = Instant::now();
    let (job, job_state) = state.cover_job(video);
    assert_eq!(
        job_state, "running",
        "job {job} was orphaned under its lease"
    );

    let host = start();
    let back = Instant::now();
    // Clients keep polling the feed, as the app's would.
    assert!(
        wait_until(Duration::from_secs(60), || find_in_feed(
            &host.client,
            None,
            video
        )
        .is_some()),
        "job {job} of video {video} never finished: {:?}\n{}",
        state.cover_job(video),
        state.component_log("worker")
    );
    let ready = back.elapsed();
    eprintln!(
        "orphaned cover job: ready {:.1} s after the next host served ({:.1} s after the kill; \
         lease {} s)",
        ready.as_secs_f64(),
        killed.elapsed().as_secs_f64(),
        tikspin_core::jobs::DEFAULT_LEASE_MS / 1000
    );
    // Bounded by the lease, the re-drive interval and the job itself: a generous bound for a
    // loaded machine (the figure above is what to read).
    assert!(
        ready < Duration::from_secs(30),
        "the orphaned job took {ready:?} after the restart"
    );
    let attempts: i64 = state
        .db()
        .query_row("SELECT attempts FROM jobs WHERE id = ?1", [job], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(
        attempts, 2,
        "claimed by the dead worker, then by the new one"
    );
    let listed = &publish_list(&host.client, user.id, None)["video_list"][0];
    let (jpeg, _) = fetch_cover(&host.client, listed["cover_url"].as_str().unwrap());
    let cover = decode_jpeg(&jpeg);
    assert_shows(&cover, &LARGE.fingerprint, "the re-driven cover");
}
