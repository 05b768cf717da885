//! End to end: the `interaction` route group (`/douyin/favorite/...`, `/douyin/comment/...`) over
//! HTTP, against the whole app of `spin.toml` (user, video, interaction, social, ...) served by
//! the real host. The contract is `../shared/API.md`; the status codes are the table in
//! `crates/core/src/api.rs`.
//!
//! Counters are read the ways a client reads them (feed, publish list, user profile, favorite
//! and comment lists) and, when the host is local, checked against the rows themselves in
//! `<state_dir>/sqlite_db.db` (opened read-only).
//!
//! Most tests share one host ([`shared`]); each works on its own users and videos, so they can
//! run in parallel. The time-zone test starts hosts of its own.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::{Arc, Barrier, Mutex, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};
use tikspin_core::api::{
    AUTH_REQUIRED, BAD_PARAMETER, COMMENT_EMPTY, COMMENT_TOO_LONG, FORBIDDEN, INVALID_TOKEN,
    NOT_FOUND,
};
use tikspin_core::auth::jwt;
use tikspin_e2e::api::{
    assert_user_shape, enc, envelope, expect_ok, expect_refused, publish_form, query, register,
    User as U,
};
use tikspin_e2e::client::Client;
use tikspin_e2e::fixtures::fixture_bytes;
use tikspin_e2e::harness::{HostConfig, TestHost};
use tikspin_e2e::wait_until;

/// The HS256 key the local hosts run with, so tests can sign tokens of their own.
const JWT_SECRET: &str = "e2e-interaction-secret-8c1d4f0a93";

const FAV_ACTION: &str = "/douyin/favorite/action/";
const FAV_LIST: &str = "/douyin/favorite/list/";
const COMMENT_ACTION: &str = "/douyin/comment/action/";
const COMMENT_LIST: &str = "/douyin/comment/list/";

// ---- the app under test -------------------------------------------------------------------

struct App {
    host: TestHost,
    /// Whether we started the host (and so know its secret and its database file).
    local: bool,
}

impl App {
    fn start(variables: Vec<(String, String)>) -> App {
        if std::env::var_os("TIKSPIN_BASE_URL").is_some() {
            return App {
                host: TestHost::app(),
                local: false,
            };
        }
        let mut vars = vec![("jwt_secret".to_string(), JWT_SECRET.to_string())];
        vars.extend(variables);
        App {
            host: TestHost::start(HostConfig {
                variables: vars,
                ..Default::default()
            }),
            local: true,
        }
    }

    fn c(&self) -> &Client {
        &self.host.client
    }

    fn db(&self) -> Option<PathBuf> {
        self.local
            .then(|| self.host.state_path().join("sqlite_db.db"))
    }

    /// One integer from the app's own SQLite database (`None` when the host is not ours).
    fn db_int(&self, sql: &str, params: &[i64]) -> Option<i64> {
        let path = self.db()?;
        let conn = rusqlite::Connection::open_with_flags(
            &path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )
        .unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
        conn.busy_timeout(Duration::from_secs(10)).unwrap();
        Some(
            conn.query_row(sql, rusqlite::params_from_iter(params.iter()), |r| r.get(0))
                .unwrap(),
        )
    }

    fn fav_rows_for_video(&self, video: i64) -> Option<i64> {
        self.db_int(
            "SELECT COUNT(*) FROM favorites WHERE video_id = ?",
            &[video],
        )
    }

    fn fav_rows_for_user(&self, user: i64) -> Option<i64> {
        self.db_int("SELECT COUNT(*) FROM favorites WHERE user_id = ?", &[user])
    }

    fn comment_rows(&self, video: i64) -> Option<i64> {
        self.db_int("SELECT COUNT(*) FROM comments WHERE video_id = ?", &[video])
    }
}

/// One host for the tests that can share one; it stops when the last of them lets go.
fn shared() -> Arc<App> {
    static SHARED: Mutex<Weak<App>> = Mutex::new(Weak::new());
    let mut slot = SHARED.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(app) = slot.upgrade() {
        return app;
    }
    let app = Arc::new(App::start(Vec::new()));
    *slot = Arc::downgrade(&app);
    app
}

// ---- requests -------------------------------------------------------------------------------

#[track_caller]
fn refused_with(v: &Value, code: i32) {
    expect_refused(v);
    assert_eq!(v["status_code"], code, "wrong status_code: {v}");
}

fn post(c: &Client, path: &str, pairs: &[(&str, &str)]) -> Value {
    envelope(c.post_empty(&format!("{path}?{}", query(pairs))))
}

fn get(c: &Client, path: &str, pairs: &[(&str, &str)]) -> Value {
    envelope(c.get(&format!("{path}?{}", query(pairs))))
}

/// `n` users, registered a few at a time.
fn register_many(c: &Client, prefix: &str, n: usize) -> Vec<U> {
    let mut users = Vec::with_capacity(n);
    for chunk in (0..n).collect::<Vec<_>>().chunks(8) {
        std::thread::scope(|s| {
            let handles: Vec<_> = chunk
                .iter()
                .map(|_| s.spawn(|| register(c, prefix)))
                .collect();
            users.extend(handles.into_iter().map(|h| h.join().unwrap()));
        });
    }
    users
}

/// Publishes the small fixture as `author` and returns the new video's
/// id once the video is ready (in the anonymous feed).
fn publish(c: &Client, author: &U, title: &str) -> i64 {
    let before: BTreeSet<i64> = video_ids(&publish_list(c, author.id, None));
    let clip = fixture_bytes("landscape-2s-noaudio.mp4");
    let (ct, body) = publish_form(
        "----tikspin-e2e-interaction-7f3a9b",
        &author.token,
        title,
        "clip.mp4",
        &clip,
    );
    let v = envelope(c.post("/douyin/publish/action/", &ct, &body));
    expect_ok(&v);
    let after = video_ids(&publish_list(c, author.id, None));
    let new: Vec<i64> = after.difference(&before).copied().collect();
    assert_eq!(
        new.len(),
        1,
        "one new video expected in the publish list: {before:?} -> {after:?}"
    );
    let id = new[0];
    assert!(
        wait_until(Duration::from_secs(60), || feed_video(c, None, id)
            .is_some()),
        "video {id} never became ready (not in the feed)"
    );
    id
}

fn publish_list(c: &Client, user_id: i64, token: Option<&str>) -> Value {
    let id = user_id.to_string();
    let mut q = vec![("user_id", id.as_str())];
    if let Some(t) = token {
        q.push(("token", t));
    }
    let v = get(c, "/douyin/publish/list/", &q);
    expect_ok(&v);
    v
}

#[track_caller]
fn video_list(v: &Value) -> &Vec<Value> {
    v["video_list"]
        .as_array()
        .unwrap_or_else(|| panic!("video_list must be an array: {v}"))
}

fn video_ids(v: &Value) -> BTreeSet<i64> {
    video_list(v)
        .iter()
        .map(|x| x["id"].as_i64().unwrap())
        .collect()
}

fn ordered_ids(v: &Value) -> Vec<i64> {
    video_list(v)
        .iter()
        .map(|x| x["id"].as_i64().unwrap())
        .collect()
}

/// The video as the head of the feed shows it (to `token`, or anonymously).
fn feed_video(c: &Client, token: Option<&str>, video: i64) -> Option<Value> {
    let v = match token {
        Some(t) => get(c, "/douyin/feed/", &[("token", t)]),
        None => envelope(c.get("/douyin/feed/")),
    };
    expect_ok(&v);
    video_list(&v).iter().find(|x| x["id"] == video).cloned()
}

#[track_caller]
fn feed_video_present(c: &Client, token: Option<&str>, video: i64) -> Value {
    feed_video(c, token, video)
        .unwrap_or_else(|| panic!("video {video} is not on the feed's first page"))
}

/// The video as its author's publish list shows it (anonymously).
fn listed_video(c: &Client, author: i64, video: i64) -> Value {
    let v = publish_list(c, author, None);
    video_list(&v)
        .iter()
        .find(|x| x["id"] == video)
        .cloned()
        .unwrap_or_else(|| panic!("video {video} missing from the publish list of {author}: {v}"))
}

fn profile(c: &Client, user: i64, viewer_token: &str) -> Value {
    let v = get(
        c,
        "/douyin/user/",
        &[("user_id", &user.to_string()), ("token", viewer_token)],
    );
    expect_ok(&v);
    v["user"].clone()
}

fn like(c: &Client, who: &U, video: i64, action: i64) -> Value {
    post(
        c,
        FAV_ACTION,
        &[
            ("token", &who.token),
            ("video_id", &video.to_string()),
            ("action_type", &action.to_string()),
        ],
    )
}

fn fav_list(c: &Client, user: i64, token: Option<&str>) -> Value {
    let id = user.to_string();
    let mut q = vec![("user_id", id.as_str())];
    if let Some(t) = token {
        q.push(("token", t));
    }
    get(c, FAV_LIST, &q)
}

fn add_comment(c: &Client, who: &U, video: i64, text: &str) -> Value {
    post(
        c,
        COMMENT_ACTION,
        &[
            ("token", &who.token),
            ("video_id", &video.to_string()),
            ("action_type", "1"),
            ("comment_text", text),
        ],
    )
}

fn delete_comment(c: &Client, who: &U, video: i64, comment: i64) -> Value {
    post(
        c,
        COMMENT_ACTION,
        &[
            ("token", &who.token),
            ("video_id", &video.to_string()),
            ("action_type", "2"),
            ("comment_id", &comment.to_string()),
        ],
    )
}

fn comment_list(c: &Client, video: i64, token: Option<&str>) -> Value {
    let id = video.to_string();
    let mut q = vec![("video_id", id.as_str())];
    if let Some(t) = token {
        q.push(("token", t));
    }
    get(c, COMMENT_LIST, &q)
}

#[track_caller]
fn comments(v: &Value) -> &Vec<Value> {
    v["comment_list"]
        .as_array()
        .unwrap_or_else(|| panic!("comment_list must be an array: {v}"))
}

fn comment_ids(v: &Value) -> Vec<i64> {
    comments(v)
        .iter()
        .map(|x| x["id"].as_i64().unwrap())
        .collect()
}

fn follow(c: &Client, who: &U, whom: i64) {
    let v = post(
        c,
        "/douyin/relation/action/",
        &[
            ("token", &who.token),
            ("to_user_id", &whom.to_string()),
            ("action_type", "1"),
        ],
    );
    expect_ok(&v);
}

// ---- time -----------------------------------------------------------------------------------

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// `"MM-DD"` of `ms` in the zone `offset_min` east of UTC, by walking the calendar (independent
/// of the product's arithmetic).
fn mm_dd(ms: i64, offset_min: i64) -> String {
    let mut days = (ms + offset_min * 60_000).div_euclid(86_400_000);
    let mut year = 1970;
    let leap = |y: i64| (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    loop {
        let len = if leap(year) { 366 } else { 365 };
        if days < len {
            break;
        }
        days -= len;
        year += 1;
    }
    let months = [
        31,
        if leap(year) { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    let mut month = 0;
    while days >= months[month] {
        days -= months[month];
        month += 1;
    }
    format!("{:02}-{:02}", month + 1, days + 1)
}

/// The dates a request made between `before` and `after` may carry.
#[track_caller]
fn assert_date(date: &Value, before: i64, after: i64, offset_min: i64) {
    let allowed = [mm_dd(before, offset_min), mm_dd(after, offset_min)];
    let date = date
        .as_str()
        .unwrap_or_else(|| panic!("create_date must be a string: {date}"));
    assert!(
        allowed.iter().any(|a| a == date),
        "create_date {date:?}, expected {:?} (UTC{offset_min:+} min)",
        allowed[0]
    );
}

// ---- "nothing changed" ----------------------------------------------------------------------

/// Everything a bad request could have touched, read over HTTP (and from the rows when local).
fn snapshot(app: &App, videos: &[(i64, i64)], users: &[&U]) -> Value {
    let c = app.c();
    let viewer = &users[0].token;
    let mut out = serde_json::Map::new();
    for &(author, video) in videos {
        let v = listed_video(c, author, video);
        out.insert(
            format!("video {video}"),
            json!({
                "favorite_count": v["favorite_count"],
                "comment_count": v["comment_count"],
                "comments": comment_ids(&comment_list(c, video, None)),
                "fav_rows": app.fav_rows_for_video(video),
                "comment_rows": app.comment_rows(video),
            }),
        );
    }
    for u in users {
        let p = profile(c, u.id, viewer);
        out.insert(
            format!("user {}", u.id),
            json!({
                "total_favorited": p["total_favorited"],
                "favorite_count": p["favorite_count"],
                "work_count": p["work_count"],
                "favorites": ordered_ids(&fav_list(c, u.id, None)),
                "fav_rows": app.fav_rows_for_user(u.id),
            }),
        );
    }
    Value::Object(out)
}

// ---- favorites ------------------------------------------------------------------------------

#[test]
fn like_and_unlike_are_idempotent_and_move_every_counter() {
    let app = shared();
    let c = app.c();
    let author = register(c, "fa");
    let fan = register(c, "ff");
    let video = publish(c, &author, "like me");

    let counts = |expect: i64, why: &str| {
        let listed = listed_video(c, author.id, video);
        assert_eq!(
            listed["favorite_count"], expect,
            "{why}: publish list favorite_count: {listed}"
        );
        let fed = feed_video_present(c, None, video);
        assert_eq!(
            fed["favorite_count"], expect,
            "{why}: feed favorite_count: {fed}"
        );
        assert_eq!(
            fed["author"]["total_favorited"], expect,
            "{why}: feed author.total_favorited: {fed}"
        );
        let fan_feed = feed_video_present(c, Some(&fan.token), video);
        assert_eq!(
            fan_feed["is_favorite"],
            expect == 1,
            "{why}: the fan's feed is_favorite: {fan_feed}"
        );
        assert_eq!(
            fan_feed["favorite_count"], expect,
            "{why}: the fan's feed favorite_count: {fan_feed}"
        );
        assert_eq!(
            profile(c, author.id, &fan.token)["total_favorited"],
            expect,
            "{why}: author total_favorited"
        );
        assert_eq!(
            profile(c, author.id, &author.token)["favorite_count"],
            0,
            "{why}: the author liked nothing"
        );
        assert_eq!(
            profile(c, fan.id, &fan.token)["favorite_count"],
            expect,
            "{why}: fan favorite_count"
        );
        assert_eq!(
            profile(c, fan.id, &fan.token)["total_favorited"],
            0,
            "{why}: the fan has no videos"
        );
        let list = fav_list(c, fan.id, Some(&fan.token));
        expect_ok(&list);
        assert_eq!(
            ordered_ids(&list),
            if expect == 1 { vec![video] } else { vec![] },
            "{why}: favorite list {list}"
        );
        if let Some(rows) = app.fav_rows_for_video(video) {
            assert_eq!(rows, expect, "{why}: favorites rows");
        }
    };

    counts(0, "before any like");
    expect_ok(&like(c, &fan, video, 1));
    counts(1, "after a like");
    expect_ok(&like(c, &fan, video, 1));
    counts(1, "after liking twice");
    // The same action without the trailing slash, the token in the Authorization header.
    let r = envelope(c.post(
        "/douyin/favorite/action",
        "application/x-www-form-urlencoded",
        format!("token={}&video_id={video}&action_type=1", enc(&fan.token)).as_bytes(),
    ));
    expect_ok(&r);
    counts(1, "after a third like (form body, no trailing slash)");
    expect_ok(&like(c, &fan, video, 2));
    counts(0, "after an unlike");
    expect_ok(&like(c, &fan, video, 2));
    counts(0, "after unliking twice");
    // No token at all: refused, nothing moved.
    refused_with(
        &envelope(c.post_empty(&format!("{FAV_ACTION}?video_id={video}&action_type=1"))),
        AUTH_REQUIRED,
    );
    counts(0, "after a like without a token");

    // Liking one's own video: the same user is both author and liker.
    expect_ok(&like(c, &author, video, 1));
    let me = profile(c, author.id, &author.token);
    assert_eq!(
        (
            me["total_favorited"].as_i64(),
            me["favorite_count"].as_i64()
        ),
        (Some(1), Some(1)),
        "self-like: {me}"
    );
    assert_eq!(listed_video(c, author.id, video)["favorite_count"], 1);
    expect_ok(&like(c, &author, video, 2));
    let me = profile(c, author.id, &author.token);
    assert_eq!(
        (
            me["total_favorited"].as_i64(),
            me["favorite_count"].as_i64()
        ),
        (Some(0), Some(0)),
        "self-unlike: {me}"
    );
}

#[test]
fn favorite_list_is_newest_liked_first_and_viewer_relative() {
    let app = shared();
    let c = app.c();
    let a = register(c, "la");
    let b = register(c, "lb");
    let fan = register(c, "lf");
    let watcher = register(c, "lw");
    let v1 = publish(c, &a, "one");
    let v2 = publish(c, &a, "two");
    let v3 = publish(c, &a, "three");
    let v4 = publish(c, &b, "four");
    for v in [v2, v1, v4, v3] {
        expect_ok(&like(c, &fan, v, 1));
        std::thread::sleep(Duration::from_millis(3));
    }
    // Re-liking an old one does not move it to the front (it is the same like).
    expect_ok(&like(c, &fan, v2, 1));
    let newest_first = vec![v3, v4, v1, v2];

    // The fan's own view: every video liked.
    let own = fav_list(c, fan.id, Some(&fan.token));
    expect_ok(&own);
    assert_eq!(ordered_ids(&own), newest_first, "newest-liked first: {own}");
    for v in video_list(&own) {
        assert_eq!(
            v["is_favorite"], true,
            "the fan liked every video of their list: {v}"
        );
        assert_user_shape(&v["author"]);
        assert_eq!(
            v["author"]["is_follow"], false,
            "the fan follows nobody: {v}"
        );
        assert_eq!(v["favorite_count"], 1, "{v}");
        assert!(
            v["play_url"]
                .as_str()
                .is_some_and(|u| u.starts_with("http")),
            "{v}"
        );
        assert!(
            v["cover_url"]
                .as_str()
                .is_some_and(|u| u.starts_with("http")),
            "{v}"
        );
    }
    let titles: Vec<&str> = video_list(&own)
        .iter()
        .map(|v| v["title"].as_str().unwrap())
        .collect();
    assert_eq!(titles, ["three", "four", "one", "two"]);
    let authors: Vec<i64> = video_list(&own)
        .iter()
        .map(|v| v["author"]["id"].as_i64().unwrap())
        .collect();
    assert_eq!(authors, [a.id, b.id, a.id, a.id]);
    assert_eq!(
        video_list(&own)[0]["author"]["total_favorited"],
        3,
        "a's videos have 3 likes"
    );
    assert_eq!(
        video_list(&own)[1]["author"]["total_favorited"],
        1,
        "b's video has 1 like"
    );

    // Anonymous (no token, an empty token, a token that does not verify): readable, no flags.
    for token in [None, Some(""), Some("not-a-token")] {
        let anon = fav_list(c, fan.id, token);
        expect_ok(&anon);
        assert_eq!(
            ordered_ids(&anon),
            newest_first,
            "anonymous ({token:?}): {anon}"
        );
        for v in video_list(&anon) {
            assert_eq!(
                v["is_favorite"], false,
                "anonymous viewers like nothing: {v}"
            );
            assert_eq!(
                v["author"]["is_follow"], false,
                "anonymous viewers follow nobody: {v}"
            );
        }
    }

    // Another viewer who liked v1 only and follows a.
    expect_ok(&like(c, &watcher, v1, 1));
    follow(c, &watcher, a.id);
    let seen = fav_list(c, fan.id, Some(&watcher.token));
    expect_ok(&seen);
    assert_eq!(ordered_ids(&seen), newest_first);
    for v in video_list(&seen) {
        let id = v["id"].as_i64().unwrap();
        assert_eq!(v["is_favorite"], id == v1, "the watcher liked v1 only: {v}");
        assert_eq!(
            v["author"]["is_follow"],
            v["author"]["id"] == a.id,
            "the watcher follows a only: {v}"
        );
    }
    assert_eq!(
        video_list(&seen)[2]["favorite_count"],
        2,
        "v1 now has two likes: {seen}"
    );

    // The author a, viewing: follows nobody, liked nothing; is_follow of oneself is false.
    let by_a = fav_list(c, fan.id, Some(&a.token));
    for v in video_list(&by_a) {
        assert_eq!(v["is_favorite"], false, "{v}");
        assert_eq!(v["author"]["is_follow"], false, "{v}");
    }

    // Without user_id (or with 0), the token's own list.
    for q in [
        format!("{FAV_LIST}?token={}", enc(&fan.token)),
        format!("{FAV_LIST}?user_id=0&token={}", enc(&fan.token)),
    ] {
        let mine = envelope(c.get(&q));
        expect_ok(&mine);
        assert_eq!(ordered_ids(&mine), newest_first, "{q}: {mine}");
    }

    // Unliking removes from the list and keeps the order of the rest.
    expect_ok(&like(c, &fan, v4, 2));
    assert_eq!(ordered_ids(&fav_list(c, fan.id, None)), vec![v3, v1, v2]);
    assert_eq!(profile(c, fan.id, &fan.token)["favorite_count"], 3);
    assert_eq!(profile(c, b.id, &fan.token)["total_favorited"], 0);
    // Liking again puts it first: it is the newest like now.
    expect_ok(&like(c, &fan, v4, 1));
    assert_eq!(
        ordered_ids(&fav_list(c, fan.id, None)),
        vec![v4, v3, v1, v2]
    );
    if let Some(rows) = app.fav_rows_for_user(fan.id) {
        assert_eq!(rows, 4);
    }
}

// ---- comments -------------------------------------------------------------------------------

#[test]
fn comments_are_returned_whole_listed_newest_first_and_counted() {
    let app = shared();
    let c = app.c();
    let author = register(c, "ca");
    let u = register(c, "cu");
    let w = register(c, "cw");
    let viewer = register(c, "cv");
    let video = publish(c, &author, "talk about me");
    follow(c, &viewer, u.id);

    let mut added = Vec::new();
    for (who, text) in [
        (&u, "first!"),
        (&author, "thanks for watching"),
        (&w, "third one"),
    ] {
        let before = now_ms();
        let v = add_comment(c, who, video, text);
        let after = now_ms();
        expect_ok(&v);
        let cm = &v["comment"];
        assert!(
            cm["id"].as_i64().is_some_and(|id| id > 0),
            "comment.id: {v}"
        );
        assert_eq!(cm["content"], text, "{v}");
        assert_user_shape(&cm["user"]);
        assert_eq!(cm["user"]["id"], who.id, "{v}");
        assert_eq!(
            cm["user"]["name"],
            who.name.as_str(),
            "comment.user.name is the username: {v}"
        );
        assert_eq!(
            cm["user"]["is_follow"], false,
            "is_follow of oneself is false: {v}"
        );
        assert_date(&cm["create_date"], before, after, 480);
        added.push((
            cm["id"].as_i64().unwrap(),
            who.id,
            text,
            cm["create_date"].clone(),
        ));
        std::thread::sleep(Duration::from_millis(3));
    }
    let ids: Vec<i64> = added.iter().map(|a| a.0).collect();
    assert_eq!(
        ids.iter().collect::<BTreeSet<_>>().len(),
        3,
        "distinct ids: {ids:?}"
    );
    let newest_first: Vec<i64> = ids.iter().rev().copied().collect();

    // The count, everywhere a client reads it.
    assert_eq!(listed_video(c, author.id, video)["comment_count"], 3);
    assert_eq!(feed_video_present(c, None, video)["comment_count"], 3);
    assert_eq!(
        feed_video_present(c, Some(&u.token), video)["comment_count"],
        3
    );
    if let Some(rows) = app.comment_rows(video) {
        assert_eq!(rows, 3);
    }

    // Anonymous: readable, newest first, nobody followed.
    let anon = comment_list(c, video, None);
    expect_ok(&anon);
    assert_eq!(comment_ids(&anon), newest_first, "newest first: {anon}");
    for cm in comments(&anon) {
        let (_, user, text, date) = added.iter().find(|a| a.0 == cm["id"]).unwrap();
        assert_eq!(cm["user"]["id"], *user, "{cm}");
        assert_eq!(cm["content"], *text, "{cm}");
        assert_eq!(
            &cm["create_date"], date,
            "the list's date is the add's: {cm}"
        );
        assert_user_shape(&cm["user"]);
        assert_eq!(cm["user"]["is_follow"], false, "anonymous: {cm}");
    }
    // A token that does not verify reads anonymously too.
    let stale = comment_list(c, video, Some("stale.token.value"));
    expect_ok(&stale);
    assert_eq!(comment_ids(&stale), newest_first);

    // The viewer follows u: only u's comment says so.
    let seen = comment_list(c, video, Some(&viewer.token));
    expect_ok(&seen);
    assert_eq!(comment_ids(&seen), newest_first);
    for cm in comments(&seen) {
        assert_eq!(
            cm["user"]["is_follow"],
            cm["user"]["id"] == u.id,
            "viewer follows u only: {cm}"
        );
    }
    // The same viewer through `Authorization: Bearer`.
    let bearer = envelope(c.get_with(
        &format!("{COMMENT_LIST}?video_id={video}"),
        &[("authorization", &format!("Bearer {}", viewer.token))],
    ));
    expect_ok(&bearer);
    for cm in comments(&bearer) {
        assert_eq!(
            cm["user"]["is_follow"],
            cm["user"]["id"] == u.id,
            "bearer viewer follows u only: {cm}"
        );
    }
    let u_entry = comments(&seen)
        .iter()
        .find(|cm| cm["user"]["id"] == u.id)
        .unwrap();
    assert_eq!(u_entry["user"]["follower_count"], 1, "{u_entry}");
    // u reads: is_follow of oneself is false.
    for cm in comments(&comment_list(c, video, Some(&u.token))) {
        assert_eq!(cm["user"]["is_follow"], false, "u follows nobody: {cm}");
    }

    // A second video's comments are its own.
    let other = publish(c, &author, "quiet video");
    let empty = comment_list(c, other, None);
    expect_ok(&empty);
    assert_eq!(comments(&empty).len(), 0);
    assert_eq!(listed_video(c, author.id, other)["comment_count"], 0);
}

#[test]
fn only_the_commenter_or_the_video_author_may_delete() {
    let app = shared();
    let c = app.c();
    let author = register(c, "da");
    let u = register(c, "du");
    let w = register(c, "dw");
    let stranger = register(c, "ds");
    let video = publish(c, &author, "moderated");
    let other_video = publish(c, &stranger, "elsewhere");
    let id = |v: &Value| {
        expect_ok(v);
        v["comment"]["id"].as_i64().unwrap()
    };
    let c1 = id(&add_comment(c, &u, video, "u one"));
    let c2 = id(&add_comment(c, &u, video, "u two"));
    let c3 = id(&add_comment(c, &w, video, "w three"));
    let watch = [(author.id, video), (stranger.id, other_video)];
    let people = [&author, &u, &w, &stranger];

    // Someone else's comment: refused, nothing changes.
    for (who, comment) in [(&stranger, c1), (&w, c1), (&u, c3), (&stranger, c3)] {
        let before = snapshot(&app, &watch, &people);
        let v = delete_comment(c, who, video, comment);
        refused_with(&v, FORBIDDEN);
        assert_eq!(
            snapshot(&app, &watch, &people),
            before,
            "a refused delete changed something: {v}"
        );
    }
    // The right comment id with another video's id: refused, nothing changes.
    let before = snapshot(&app, &watch, &people);
    expect_refused(&delete_comment(c, &u, other_video, c1));
    assert_eq!(snapshot(&app, &watch, &people), before);

    assert_eq!(comment_ids(&comment_list(c, video, None)), vec![c3, c2, c1]);
    // The commenter deletes their own.
    expect_ok(&delete_comment(c, &u, video, c1));
    assert_eq!(comment_ids(&comment_list(c, video, None)), vec![c3, c2]);
    assert_eq!(listed_video(c, author.id, video)["comment_count"], 2);
    // The video's author deletes someone else's comment on their video.
    expect_ok(&delete_comment(c, &author, video, c3));
    assert_eq!(comment_ids(&comment_list(c, video, None)), vec![c2]);
    assert_eq!(listed_video(c, author.id, video)["comment_count"], 1);
    assert_eq!(feed_video_present(c, None, video)["comment_count"], 1);
    if let Some(rows) = app.comment_rows(video) {
        assert_eq!(rows, 1);
    }

    // Deleting again, or a comment that never existed: not found, nothing changes.
    for (who, comment) in [
        (&u, c1),
        (&author, c3),
        (&author, 9_000_000_000_000),
        (&u, c3 + 1_000_000),
    ] {
        let before = snapshot(&app, &watch, &people);
        let v = delete_comment(c, who, video, comment);
        refused_with(&v, NOT_FOUND);
        assert_eq!(snapshot(&app, &watch, &people), before, "{v}");
    }
    // Without video_id (the contract makes it optional on delete) the commenter still may.
    expect_ok(&post(
        c,
        COMMENT_ACTION,
        &[
            ("token", &u.token),
            ("action_type", "2"),
            ("comment_id", &c2.to_string()),
        ],
    ));
    assert!(comment_ids(&comment_list(c, video, None)).is_empty());
    assert_eq!(listed_video(c, author.id, video)["comment_count"], 0);
    assert_eq!(feed_video_present(c, None, video)["comment_count"], 0);
}

#[test]
fn comment_dates_follow_the_deployment_time_zone() {
    if std::env::var_os("TIKSPIN_BASE_URL").is_some() {
        eprintln!("skipped: needs hosts of its own");
        return;
    }
    // UTC-12 and UTC+14 are 26 hours apart: their dates always differ, so a host that ignored
    // the variable would fail at least one of them (and UTC+0 covers the plain case).
    let offsets = [-720i64, 840, 0];
    std::thread::scope(|s| {
        for offset in offsets {
            s.spawn(move || {
                let app = App::start(vec![
                    ("tz_offset_minutes".into(), offset.to_string()),
                    ("seed_welcome_video".into(), "false".into()),
                ]);
                let c = app.c();
                let author = register(c, "tz");
                let video = publish(c, &author, "what day is it");
                let before = now_ms();
                let v = add_comment(c, &author, video, "today");
                let after = now_ms();
                expect_ok(&v);
                assert_date(&v["comment"]["create_date"], before, after, offset);
                let list = comment_list(c, video, None);
                expect_ok(&list);
                assert_eq!(comments(&list).len(), 1);
                assert_date(&comments(&list)[0]["create_date"], before, after, offset);
            });
        }
    });
}

// ---- caches -------------------------------------------------------------------------------

#[test]
fn the_next_feed_shows_every_like_and_comment() {
    let app = shared();
    let c = app.c();
    let author = register(c, "ka");
    let fan = register(c, "kf");
    let other = register(c, "ko");
    let video = publish(c, &author, "cached");
    // The fan is an author on the feed too: their `favorite_count` shows there as well.
    let fans_video = publish(c, &fan, "the fan's own");
    for round in 0..3 {
        // Prime the cache, then change, then read at once.
        assert_eq!(
            feed_video_present(c, None, video)["favorite_count"],
            0,
            "round {round}"
        );
        assert_eq!(
            feed_video_present(c, Some(&fan.token), video)["is_favorite"],
            false
        );
        expect_ok(&like(c, &fan, video, 1));
        let v = feed_video_present(c, None, video);
        assert_eq!(
            v["favorite_count"], 1,
            "round {round}: the feed right after a like: {v}"
        );
        assert_eq!(v["author"]["total_favorited"], 1, "round {round}: {v}");
        assert_eq!(v["is_favorite"], false, "anonymous: {v}");
        let v = feed_video_present(c, Some(&fan.token), video);
        assert_eq!(
            (v["favorite_count"].as_i64(), v["is_favorite"].as_bool()),
            (Some(1), Some(true)),
            "round {round}: {v}"
        );
        assert_eq!(
            feed_video_present(c, Some(&other.token), video)["is_favorite"],
            false
        );
        expect_ok(&like(c, &other, video, 1));
        assert_eq!(
            feed_video_present(c, Some(&fan.token), video)["favorite_count"],
            2,
            "round {round}: second like"
        );
        expect_ok(&like(c, &fan, video, 2));
        let v = feed_video_present(c, Some(&fan.token), video);
        assert_eq!(
            (v["favorite_count"].as_i64(), v["is_favorite"].as_bool()),
            (Some(1), Some(false)),
            "round {round}: {v}"
        );
        expect_ok(&like(c, &other, video, 2));
        assert_eq!(
            feed_video_present(c, None, video)["favorite_count"],
            0,
            "round {round}: after both unlikes"
        );
        expect_ok(&like(c, &fan, video, 1));
        let v = feed_video_present(c, None, fans_video);
        assert_eq!(
            v["author"]["favorite_count"], 1,
            "round {round}: the liker's favorite_count on the feed: {v}"
        );
        expect_ok(&like(c, &fan, video, 2));
        let v = feed_video_present(c, None, fans_video);
        assert_eq!(
            v["author"]["favorite_count"], 0,
            "round {round}: the liker's favorite_count on the feed: {v}"
        );

        assert_eq!(feed_video_present(c, None, video)["comment_count"], 0);
        let added = add_comment(c, &fan, video, "cache me if you can");
        expect_ok(&added);
        assert_eq!(
            feed_video_present(c, None, video)["comment_count"],
            1,
            "round {round}: the feed right after a comment"
        );
        let id = added["comment"]["id"].as_i64().unwrap();
        expect_ok(&delete_comment(c, &author, video, id));
        assert_eq!(
            feed_video_present(c, None, video)["comment_count"],
            0,
            "round {round}: the feed right after a delete"
        );
        assert_eq!(
            feed_video_present(c, Some(&fan.token), video)["comment_count"],
            0
        );
    }
}

// ---- concurrency ---------------------------------------------------------------------------

#[test]
fn fifty_users_liking_one_video_at_once_count_fifty() {
    let app = shared();
    let c = app.c();
    let author = register(c, "ma");
    let video = publish(c, &author, "popular");
    let fans = register_many(c, "mf", 50);
    let barrier = Barrier::new(fans.len());
    let replies: Vec<Value> = std::thread::scope(|s| {
        let handles: Vec<_> = fans
            .iter()
            .map(|f| {
                let barrier = &barrier;
                s.spawn(move || {
                    barrier.wait();
                    like(c, f, video, 1)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for r in &replies {
        expect_ok(r);
    }
    assert_eq!(listed_video(c, author.id, video)["favorite_count"], 50);
    let fed = feed_video_present(c, None, video);
    assert_eq!(fed["favorite_count"], 50, "{fed}");
    assert_eq!(fed["author"]["total_favorited"], 50, "{fed}");
    assert_eq!(profile(c, author.id, &author.token)["total_favorited"], 50);
    for f in &fans {
        assert_eq!(
            ordered_ids(&fav_list(c, f.id, None)),
            vec![video],
            "fan {}",
            f.id
        );
        assert_eq!(
            profile(c, f.id, &f.token)["favorite_count"],
            1,
            "fan {}",
            f.id
        );
    }
    if let Some(rows) = app.fav_rows_for_video(video) {
        assert_eq!(rows, 50);
    }
}

#[test]
fn twenty_concurrent_likes_by_one_user_count_once() {
    let app = shared();
    let c = app.c();
    let author = register(c, "oa");
    let fan = register(c, "of");
    let video = publish(c, &author, "click click click");
    for (action, expect) in [(1, 1), (2, 0), (1, 1)] {
        let barrier = Barrier::new(20);
        std::thread::scope(|s| {
            for _ in 0..20 {
                let (barrier, fan) = (&barrier, &fan);
                s.spawn(move || {
                    barrier.wait();
                    expect_ok(&like(c, fan, video, action));
                });
            }
        });
        assert_eq!(
            listed_video(c, author.id, video)["favorite_count"],
            expect,
            "after 20 x action {action}"
        );
        assert_eq!(
            feed_video_present(c, None, video)["favorite_count"],
            expect,
            "after 20 x action {action}"
        );
        assert_eq!(profile(c, author.id, &fan.token)["total_favorited"], expect);
        assert_eq!(profile(c, fan.id, &fan.token)["favorite_count"], expect);
        assert_eq!(video_list(&fav_list(c, fan.id, None)).len() as i64, expect);
        if let Some(rows) = app.fav_rows_for_video(video) {
            assert_eq!(rows, expect);
        }
    }
}

#[test]
fn concurrent_like_unlike_pairs_leave_counts_equal_to_rows() {
    let app = shared();
    let c = app.c();
    let author = register(c, "pa");
    let video = publish(c, &author, "yes no yes no");
    let fans = register_many(c, "pf", 20);
    // Each fan sends a like and an unlike at the same moment, three times over; some start
    // liked, so both orders happen.
    for f in fans.iter().step_by(2) {
        expect_ok(&like(c, f, video, 1));
    }
    for round in 0..3 {
        let barrier = Barrier::new(fans.len() * 2);
        std::thread::scope(|s| {
            for f in &fans {
                for action in [1, 2] {
                    let barrier = &barrier;
                    s.spawn(move || {
                        barrier.wait();
                        let r = like(c, f, video, action);
                        assert_eq!(r["status_code"], 0, "round {round}: {r}");
                    });
                }
            }
        });
        let likers: Vec<&U> = fans
            .iter()
            .filter(|f| {
                let list = ordered_ids(&fav_list(c, f.id, None));
                assert!(list.is_empty() || list == [video], "{list:?}");
                let count = profile(c, f.id, &f.token)["favorite_count"]
                    .as_i64()
                    .unwrap();
                assert_eq!(
                    count,
                    list.len() as i64,
                    "round {round}: fan {} favorite_count vs list",
                    f.id
                );
                !list.is_empty()
            })
            .collect();
        let n = likers.len() as i64;
        assert_eq!(
            listed_video(c, author.id, video)["favorite_count"],
            n,
            "round {round}: favorite_count vs lists"
        );
        assert_eq!(
            feed_video_present(c, None, video)["favorite_count"],
            n,
            "round {round}"
        );
        assert_eq!(
            profile(c, author.id, &author.token)["total_favorited"],
            n,
            "round {round}"
        );
        if let Some(rows) = app.fav_rows_for_video(video) {
            assert_eq!(rows, n, "round {round}: rows vs lists");
        }
        eprintln!("round {round}: {n} of {} fans end up liking", fans.len());
    }
}

#[test]
fn concurrent_comment_adds_and_deletes_keep_comment_count_exact() {
    let app = shared();
    let c = app.c();
    let author = register(c, "xa");
    let video = publish(c, &author, "busy thread");
    let people = register_many(c, "xu", 10);
    let old: Vec<(usize, i64)> = (0..10)
        .map(|i| {
            let v = add_comment(c, &people[i], video, &format!("old {i}"));
            expect_ok(&v);
            (i, v["comment"]["id"].as_i64().unwrap())
        })
        .collect();
    assert_eq!(listed_video(c, author.id, video)["comment_count"], 10);

    // 20 adds and 10 deletes at once; comments 0..5 are deleted by their author AND the video's
    // author at the same moment: exactly one of each pair may succeed.
    let raced: BTreeSet<i64> = old[..5].iter().map(|o| o.1).collect();
    let barrier = Barrier::new(20 + 10 + 5);
    let results: Mutex<Vec<(i64, Value)>> = Mutex::new(Vec::new());
    let new_ids: Mutex<Vec<i64>> = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for i in 0..20 {
            let (barrier, new_ids, who) = (&barrier, &new_ids, &people[i % 10]);
            s.spawn(move || {
                barrier.wait();
                let v = add_comment(c, who, video, &format!("new {i}"));
                expect_ok(&v);
                new_ids
                    .lock()
                    .unwrap()
                    .push(v["comment"]["id"].as_i64().unwrap());
            });
        }
        for &(i, id) in &old {
            let (barrier, results, who) = (&barrier, &results, &people[i]);
            s.spawn(move || {
                barrier.wait();
                let v = delete_comment(c, who, video, id);
                results.lock().unwrap().push((id, v));
            });
        }
        for &id in &raced {
            let (barrier, results, author) = (&barrier, &results, &author);
            s.spawn(move || {
                barrier.wait();
                let v = delete_comment(c, author, video, id);
                results.lock().unwrap().push((id, v));
            });
        }
    });
    let results = results.into_inner().unwrap();
    let mut succeeded: BTreeMap<i64, usize> = BTreeMap::new();
    for (id, v) in &results {
        if v["status_code"] == 0 {
            *succeeded.entry(*id).or_default() += 1;
        } else {
            assert!(raced.contains(id), "an uncontested delete failed: {v}");
            refused_with(v, NOT_FOUND);
        }
    }
    for &(_, id) in &old {
        assert_eq!(
            succeeded.get(&id),
            Some(&1),
            "comment {id} must be deleted exactly once: {results:?}"
        );
    }
    let new_ids: BTreeSet<i64> = new_ids.into_inner().unwrap().into_iter().collect();
    assert_eq!(new_ids.len(), 20, "20 distinct new comments");

    let list = comment_list(c, video, None);
    expect_ok(&list);
    let listed: BTreeSet<i64> = comment_ids(&list).into_iter().collect();
    assert_eq!(listed, new_ids, "the list holds exactly the new comments");
    assert_eq!(comments(&list).len(), 20);
    assert_eq!(
        listed_video(c, author.id, video)["comment_count"],
        20,
        "comment_count vs the list"
    );
    assert_eq!(feed_video_present(c, None, video)["comment_count"], 20);
    if let Some(rows) = app.comment_rows(video) {
        assert_eq!(rows, 20);
    }
}

// ---- bad input ------------------------------------------------------------------------------

#[test]
fn bad_favorite_requests_change_nothing() {
    let app = shared();
    let c = app.c();
    let author = register(c, "ba");
    let fan = register(c, "bf");
    let video = publish(c, &author, "leave me alone");
    expect_ok(&like(c, &author, video, 1)); // a non-zero starting point
    let watch = [(author.id, video)];
    let people = [&author, &fan];
    let vid = video.to_string();
    let t = fan.token.as_str();

    let mut cases: Vec<(&str, Vec<(&str, String)>, Option<i32>)> = vec![
        (
            "unknown video",
            vec![
                ("token", t.into()),
                ("video_id", "987654321".into()),
                ("action_type", "1".into()),
            ],
            Some(NOT_FOUND),
        ),
        (
            "non-numeric video_id",
            vec![
                ("token", t.into()),
                ("video_id", "abc".into()),
                ("action_type", "1".into()),
            ],
            Some(BAD_PARAMETER),
        ),
        (
            "video_id 1.5",
            vec![
                ("token", t.into()),
                ("video_id", format!("{video}.5")),
                ("action_type", "1".into()),
            ],
            Some(BAD_PARAMETER),
        ),
        (
            "zero video_id",
            vec![
                ("token", t.into()),
                ("video_id", "0".into()),
                ("action_type", "1".into()),
            ],
            None,
        ),
        (
            "negative video_id",
            vec![
                ("token", t.into()),
                ("video_id", format!("-{video}")),
                ("action_type", "1".into()),
            ],
            None,
        ),
        (
            "video_id past 2^53",
            vec![
                ("token", t.into()),
                ("video_id", "9007199254740993".into()),
                ("action_type", "1".into()),
            ],
            None,
        ),
        (
            "missing video_id",
            vec![("token", t.into()), ("action_type", "1".into())],
            Some(BAD_PARAMETER),
        ),
        (
            "empty video_id",
            vec![
                ("token", t.into()),
                ("video_id", "".into()),
                ("action_type", "1".into()),
            ],
            Some(BAD_PARAMETER),
        ),
        (
            "action_type 3",
            vec![
                ("token", t.into()),
                ("video_id", vid.clone()),
                ("action_type", "3".into()),
            ],
            Some(BAD_PARAMETER),
        ),
        (
            "action_type 0",
            vec![
                ("token", t.into()),
                ("video_id", vid.clone()),
                ("action_type", "0".into()),
            ],
            Some(BAD_PARAMETER),
        ),
        (
            "action_type like",
            vec![
                ("token", t.into()),
                ("video_id", vid.clone()),
                ("action_type", "like".into()),
            ],
            Some(BAD_PARAMETER),
        ),
        (
            "missing action_type",
            vec![("token", t.into()), ("video_id", vid.clone())],
            Some(BAD_PARAMETER),
        ),
        (
            "missing token",
            vec![("video_id", vid.clone()), ("action_type", "1".into())],
            Some(AUTH_REQUIRED),
        ),
        (
            "empty token",
            vec![
                ("token", "".into()),
                ("video_id", vid.clone()),
                ("action_type", "1".into()),
            ],
            Some(AUTH_REQUIRED),
        ),
        (
            "garbage token",
            vec![
                ("token", "garbage".into()),
                ("video_id", vid.clone()),
                ("action_type", "1".into()),
            ],
            Some(INVALID_TOKEN),
        ),
        (
            "tampered token",
            vec![
                ("token", format!("{t}x")),
                ("video_id", vid.clone()),
                ("action_type", "1".into()),
            ],
            Some(INVALID_TOKEN),
        ),
        // Unliking with a bad token must not unlike the author's own like either.
        (
            "unlike, garbage token",
            vec![
                ("token", "garbage".into()),
                ("video_id", vid.clone()),
                ("action_type", "2".into()),
            ],
            Some(INVALID_TOKEN),
        ),
    ];
    if app.local {
        let now = now_ms();
        cases.push((
            "token signed with another key",
            vec![
                ("token", jwt::issue("not-the-secret", fan.id, now).unwrap()),
                ("video_id", vid.clone()),
                ("action_type", "1".into()),
            ],
            Some(INVALID_TOKEN),
        ));
        cases.push((
            "expired token",
            vec![
                (
                    "token",
                    jwt::issue(JWT_SECRET, fan.id, now - 400 * 86_400_000).unwrap(),
                ),
                ("video_id", vid.clone()),
                ("action_type", "1".into()),
            ],
            Some(INVALID_TOKEN),
        ));
        cases.push((
            "token of a user that does not exist",
            vec![
                (
                    "token",
                    jwt::issue(JWT_SECRET, fan.id + 5_000_000, now).unwrap(),
                ),
                ("video_id", vid.clone()),
                ("action_type", "1".into()),
            ],
            Some(INVALID_TOKEN),
        ));
    }
    for (what, pairs, code) in &cases {
        let before = snapshot(&app, &watch, &people);
        let q: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let v = post(c, FAV_ACTION, &q);
        expect_refused(&v);
        if let Some(code) = code {
            assert_eq!(v["status_code"], *code, "{what}: {v}");
        }
        assert_eq!(
            snapshot(&app, &watch, &people),
            before,
            "{what} changed something: {v}"
        );
    }
    // And it all still works afterwards.
    expect_ok(&like(c, &fan, video, 1));
    assert_eq!(listed_video(c, author.id, video)["favorite_count"], 2);
}

#[test]
fn bad_comment_requests_change_nothing() {
    let app = shared();
    let c = app.c();
    let author = register(c, "ea");
    let u = register(c, "eu");
    let stranger = register(c, "es");
    let video = publish(c, &author, "careful");
    let first = add_comment(c, &u, video, "keep me");
    expect_ok(&first);
    let kept = first["comment"]["id"].as_i64().unwrap();
    let watch = [(author.id, video)];
    let people = [&author, &u, &stranger];
    let vid = video.to_string();
    let t = u.token.as_str();
    let add = |text: &str| {
        vec![
            ("token", t.to_string()),
            ("video_id", vid.clone()),
            ("action_type", "1".into()),
            ("comment_text", text.to_string()),
        ]
    };

    let mut cases: Vec<(String, Vec<(&str, String)>, Option<i32>)> = vec![
        (
            "unknown video".into(),
            vec![
                ("token", t.into()),
                ("video_id", "987654321".into()),
                ("action_type", "1".into()),
                ("comment_text", "hi".into()),
            ],
            Some(NOT_FOUND),
        ),
        (
            "non-numeric video_id".into(),
            vec![
                ("token", t.into()),
                ("video_id", "v1".into()),
                ("action_type", "1".into()),
                ("comment_text", "hi".into()),
            ],
            Some(BAD_PARAMETER),
        ),
        (
            "missing video_id".into(),
            vec![
                ("token", t.into()),
                ("action_type", "1".into()),
                ("comment_text", "hi".into()),
            ],
            Some(BAD_PARAMETER),
        ),
        (
            "action_type 3".into(),
            vec![
                ("token", t.into()),
                ("video_id", vid.clone()),
                ("action_type", "3".into()),
                ("comment_text", "hi".into()),
            ],
            Some(BAD_PARAMETER),
        ),
        (
            "action_type add".into(),
            vec![
                ("token", t.into()),
                ("video_id", vid.clone()),
                ("action_type", "add".into()),
                ("comment_text", "hi".into()),
            ],
            Some(BAD_PARAMETER),
        ),
        (
            "missing action_type".into(),
            vec![
                ("token", t.into()),
                ("video_id", vid.clone()),
                ("comment_text", "hi".into()),
            ],
            Some(BAD_PARAMETER),
        ),
        (
            "missing comment_text".into(),
            vec![
                ("token", t.into()),
                ("video_id", vid.clone()),
                ("action_type", "1".into()),
            ],
            Some(COMMENT_EMPTY),
        ),
        ("empty comment".into(), add(""), Some(COMMENT_EMPTY)),
        (
            "spaces-only comment".into(),
            add("     "),
            Some(COMMENT_EMPTY),
        ),
        (
            "whitespace-only comment".into(),
            add(" \t\n\r\u{3000} "),
            Some(COMMENT_EMPTY),
        ),
        (
            "501 ASCII".into(),
            add(&"a".repeat(501)),
            Some(COMMENT_TOO_LONG),
        ),
        (
            "501 CJK".into(),
            add(&"评".repeat(501)),
            Some(COMMENT_TOO_LONG),
        ),
        (
            "501 emoji".into(),
            add(&"😀".repeat(501)),
            Some(COMMENT_TOO_LONG),
        ),
        (
            "5000 chars".into(),
            add(&"long ".repeat(1000)),
            Some(COMMENT_TOO_LONG),
        ),
        (
            "missing token".into(),
            vec![
                ("video_id", vid.clone()),
                ("action_type", "1".into()),
                ("comment_text", "hi".into()),
            ],
            Some(AUTH_REQUIRED),
        ),
        (
            "garbage token".into(),
            vec![
                ("token", "garbage".into()),
                ("video_id", vid.clone()),
                ("action_type", "1".into()),
                ("comment_text", "hi".into()),
            ],
            Some(INVALID_TOKEN),
        ),
        // Deletes.
        (
            "delete without comment_id".into(),
            vec![
                ("token", t.into()),
                ("video_id", vid.clone()),
                ("action_type", "2".into()),
            ],
            Some(BAD_PARAMETER),
        ),
        (
            "delete non-numeric comment_id".into(),
            vec![
                ("token", t.into()),
                ("video_id", vid.clone()),
                ("action_type", "2".into()),
                ("comment_id", "first".into()),
            ],
            Some(BAD_PARAMETER),
        ),
        (
            "delete a comment that does not exist".into(),
            vec![
                ("token", t.into()),
                ("video_id", vid.clone()),
                ("action_type", "2".into()),
                ("comment_id", (kept + 777_777).to_string()),
            ],
            Some(NOT_FOUND),
        ),
        (
            "delete someone else's comment".into(),
            vec![
                ("token", stranger.token.clone()),
                ("video_id", vid.clone()),
                ("action_type", "2".into()),
                ("comment_id", kept.to_string()),
            ],
            Some(FORBIDDEN),
        ),
        (
            "delete without a token".into(),
            vec![
                ("video_id", vid.clone()),
                ("action_type", "2".into()),
                ("comment_id", kept.to_string()),
            ],
            Some(AUTH_REQUIRED),
        ),
        (
            "delete with a garbage token".into(),
            vec![
                ("token", "x.y.z".into()),
                ("video_id", vid.clone()),
                ("action_type", "2".into()),
                ("comment_id", kept.to_string()),
            ],
            Some(INVALID_TOKEN),
        ),
    ];
    if app.local {
        let ghost = jwt::issue(JWT_SECRET, u.id + 5_000_000, now_ms()).unwrap();
        cases.push((
            "add as a user that does not exist".into(),
            vec![
                ("token", ghost.clone()),
                ("video_id", vid.clone()),
                ("action_type", "1".into()),
                ("comment_text", "boo".into()),
            ],
            Some(INVALID_TOKEN),
        ));
        cases.push((
            "delete as a user that does not exist".into(),
            vec![
                ("token", ghost),
                ("video_id", vid.clone()),
                ("action_type", "2".into()),
                ("comment_id", kept.to_string()),
            ],
            Some(INVALID_TOKEN),
        ));
    }
    for (what, pairs, code) in &cases {
        let before = snapshot(&app, &watch, &people);
        let q: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let v = post(c, COMMENT_ACTION, &q);
        expect_refused(&v);
        if let Some(code) = code {
            assert_eq!(v["status_code"], *code, "{what}: {v}");
        }
        assert!(
            v.get("comment").is_none_or(Value::is_null),
            "{what}: no comment on a refusal: {v}"
        );
        assert_eq!(
            snapshot(&app, &watch, &people),
            before,
            "{what} changed something: {v}"
        );
    }

    // Exactly 500 characters is accepted, counted in characters (not bytes).
    let mut expect = vec![kept];
    for text in [
        "a".repeat(500),
        "评".repeat(500),
        "😀".repeat(500),
        format!("{}{}", "ab好😀".repeat(124), "好😀评a"),
    ] {
        assert_eq!(text.chars().count(), 500);
        let v = add_comment(c, &u, video, &text);
        expect_ok(&v);
        assert_eq!(
            v["comment"]["content"].as_str(),
            Some(text.as_str()),
            "500 chars round-trip"
        );
        expect.insert(0, v["comment"]["id"].as_i64().unwrap());
        let list = comment_list(c, video, None);
        assert_eq!(comments(&list)[0]["content"].as_str(), Some(text.as_str()));
    }
    assert_eq!(comment_ids(&comment_list(c, video, None)), expect);
    assert_eq!(listed_video(c, author.id, video)["comment_count"], 5);
}

#[test]
fn comment_text_round_trips_unchanged() {
    let app = shared();
    let c = app.c();
    let author = register(c, "ra");
    let u = register(c, "ru");
    let video = publish(c, &author, "say anything");
    let texts = [
        "好看！这个视频太棒了",
        "👍🔥😂 nice 🇨🇳 👨‍👩‍👧",
        "'); DROP TABLE users; --",
        "Robert'); DELETE FROM comments WHERE 1=1; --",
        "\" OR \"1\"=\"1",
        "a&b=c+d %20 #frag ?x=y",
        "<script>alert('x')</script>",
        "  leading and trailing spaces  ",
        "line one\nline two",
        "\\ back\\slash \\n not a newline",
    ];
    let mut ids = Vec::new();
    for text in texts {
        let v = add_comment(c, &u, video, text);
        expect_ok(&v);
        assert_eq!(
            v["comment"]["content"].as_str(),
            Some(text),
            "add returns the text as sent: {v}"
        );
        ids.push(v["comment"]["id"].as_i64().unwrap());
    }
    // A form-encoded body and the Authorization header carry it too.
    let via_body = "表单 body ✓ 'quoted'";
    let r = envelope(c.post(
        &format!("{COMMENT_ACTION}?video_id={video}&action_type=1"),
        "application/x-www-form-urlencoded",
        format!("comment_text={}&token={}", enc(via_body), enc(&u.token)).as_bytes(),
    ));
    expect_ok(&r);
    assert_eq!(r["comment"]["content"].as_str(), Some(via_body));
    ids.push(r["comment"]["id"].as_i64().unwrap());
    // Without any token the same request is refused.
    let r = envelope(c.post(
        &format!("{COMMENT_ACTION}?video_id={video}&action_type=1"),
        "application/x-www-form-urlencoded",
        format!("comment_text={}", enc(via_body)).as_bytes(),
    ));
    refused_with(&r, AUTH_REQUIRED);

    let list = comment_list(c, video, Some(&author.token));
    expect_ok(&list);
    let got: Vec<&str> = comments(&list)
        .iter()
        .map(|x| x["content"].as_str().unwrap())
        .collect();
    let mut want: Vec<&str> = texts.to_vec();
    want.push(via_body);
    want.reverse();
    assert_eq!(
        got, want,
        "the list returns every text unchanged, newest first"
    );
    ids.reverse();
    assert_eq!(comment_ids(&list), ids);
    assert_eq!(
        listed_video(c, author.id, video)["comment_count"],
        texts.len() as i64 + 1
    );
    // The tables are still there.
    let again = register(c, "rz");
    assert_eq!(profile(c, u.id, &again.token)["name"], u.name.as_str());
    if let Some(rows) = app.comment_rows(video) {
        assert_eq!(rows, texts.len() as i64 + 1);
    }
}

#[test]
fn declared_lists_are_arrays_even_on_errors() {
    let app = shared();
    let c = app.c();
    let author = register(c, "ya");
    let lonely = register(c, "yl");
    let video = publish(c, &author, "nobody talks");

    for (what, path) in [
        ("missing video_id", COMMENT_LIST.to_string()),
        (
            "non-numeric video_id",
            format!("{COMMENT_LIST}?video_id=abc"),
        ),
        (
            "unknown video",
            format!("{COMMENT_LIST}?video_id=987654321"),
        ),
        ("negative video_id", format!("{COMMENT_LIST}?video_id=-3")),
        (
            "unknown video, with a token",
            format!(
                "{COMMENT_LIST}?video_id=987654321&token={}",
                enc(&author.token)
            ),
        ),
    ] {
        let v = envelope(c.get(&path));
        expect_refused(&v);
        assert_eq!(
            v["comment_list"],
            json!([]),
            "{what}: comment_list must be []: {v}"
        );
    }
    for (what, path) in [
        ("non-numeric user_id", format!("{FAV_LIST}?user_id=abc")),
        ("unknown user", format!("{FAV_LIST}?user_id=987654321")),
        (
            "unknown user, with a token",
            format!("{FAV_LIST}?user_id=987654321&token={}", enc(&author.token)),
        ),
        ("no user_id and no token", FAV_LIST.to_string()),
    ] {
        let v = envelope(c.get(&path));
        expect_refused(&v);
        assert_eq!(
            v["video_list"],
            json!([]),
            "{what}: video_list must be []: {v}"
        );
    }
    // Success with nothing in it: [] too, readable anonymously.
    let v = comment_list(c, video, None);
    expect_ok(&v);
    assert_eq!(v["comment_list"], json!([]));
    let v = fav_list(c, lonely.id, None);
    expect_ok(&v);
    assert_eq!(v["video_list"], json!([]));
    // The same paths without the trailing slash.
    let v = envelope(c.get(&format!("/douyin/comment/list?video_id={video}")));
    expect_ok(&v);
    assert_eq!(v["comment_list"], json!([]));
    let v = envelope(c.get(&format!("/douyin/favorite/list?user_id={}", lonely.id)));
    expect_ok(&v);
    assert_eq!(v["video_list"], json!([]));
}
