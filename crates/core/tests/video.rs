mod common;
mod support;

use std::collections::{BTreeSet, HashSet};

use common::{params, World, BASE, NOW};
use serde_json::Value as Json;
use support::*;
use tikspin_core::api::{self, Reply};
use tikspin_core::cache;
use tikspin_core::db::transaction;
use tikspin_core::feed::FeedPage;
use tikspin_core::jobs::{self, CoverJob, Failed, Failure};
use tikspin_core::publish::{self, PublishRequest, StoredVideo};
use tikspin_core::testing::{CountingSql, MemKv};
use tikspin_core::videos::{self, MediaLinks};
use tikspin_core::{ApiError, Env, Sql, SqlError, Urls};

const SEC: i64 = 1_000;

/// Walks the feed from the top until the empty page; returns the pages.
fn walk(w: &World, tok: Option<&str>) -> Vec<FeedPage> {
    let mut pages = Vec::new();
    let mut latest: Option<String> = None;
    loop {
        let mut pairs: Vec<(&str, &str)> = Vec::new();
        if let Some(l) = &latest {
            pairs.push(("latest_time", l));
        }
        if let Some(t) = tok {
            pairs.push(("token", t));
        }
        let page = feed(w, &pairs);
        let empty = page.video_list.is_empty();
        latest = Some(page.next_time.to_string());
        pages.push(page);
        if empty || pages.len() > 10 {
            return pages;
        }
    }
}

#[test]
fn feed_pages_over_70_videos_without_repeats_or_gaps() {
    let w = world();
    let (a, _) = user(&w.sql, "alice");
    let (b, _) = user(&w.sql, "bob");
    let mut all = Vec::new();
    for i in 0..70 {
        // Interleaved authors, published one second apart, not in id order of time.
        let at = NOW - (70 - i) * SEC - if i % 3 == 0 { 500 } else { 0 };
        all.push(video(
            &w.sql,
            if i % 2 == 0 { a } else { b },
            &format!("v{i}"),
            at,
            true,
        ));
    }
    let pages = walk(&w, None);
    let sizes: Vec<usize> = pages.iter().map(|p| p.video_list.len()).collect();
    assert_eq!(sizes, vec![30, 30, 10, 0]);

    let seen: Vec<i64> = pages.iter().flat_map(|p| ids(&p.video_list)).collect();
    assert_eq!(seen.len(), 70);
    assert_eq!(seen.iter().collect::<HashSet<_>>().len(), 70, "no repeats");
    assert_eq!(
        seen.iter().copied().collect::<BTreeSet<_>>(),
        all.iter().copied().collect::<BTreeSet<_>>(),
        "no gaps"
    );
    // Newest first across pages, and next_time is the oldest of each page.
    let times = |id: i64| {
        scalar(
            &w.sql,
            "SELECT created_at FROM videos WHERE id = ?",
            &[id.into()],
        )
    };
    let stamps: Vec<i64> = seen.iter().map(|&id| times(id)).collect();
    assert!(stamps.windows(2).all(|p| p[0] > p[1]), "newest first");
    for page in &pages[..3] {
        assert_eq!(
            page.next_time,
            times(*ids(&page.video_list).last().unwrap())
        );
    }
    // The empty page says "now", and pulling from there starts over at the newest.
    assert_eq!(pages[3].next_time, NOW);
    let again = feed(&w, &[("latest_time", &pages[3].next_time.to_string())]);
    assert_eq!(ids(&again.video_list), ids(&pages[0].video_list));
    // Logged in, the same walk.
    let (_, t) = user(&w.sql, "carol");
    let logged: Vec<i64> = walk(&w, Some(&t))
        .iter()
        .flat_map(|p| ids(&p.video_list))
        .collect();
    assert_eq!(logged, seen);
}

#[test]
fn a_page_never_splits_videos_sharing_a_millisecond() {
    let w = world();
    let (a, _) = user(&w.sql, "alice");
    let mut all = BTreeSet::new();
    for i in 0..25 {
        all.insert(video(
            &w.sql,
            a,
            &format!("solo{i}"),
            NOW - (i + 1) * SEC,
            true,
        ));
    }
    let tied_at = NOW - 100 * SEC;
    for i in 0..10 {
        all.insert(video(&w.sql, a, &format!("tied{i}"), tied_at, true));
    }
    for i in 0..5 {
        all.insert(video(
            &w.sql,
            a,
            &format!("old{i}"),
            NOW - (200 + i) * SEC,
            true,
        ));
    }
    let pages = walk(&w, None);
    let sizes: Vec<usize> = pages.iter().map(|p| p.video_list.len()).collect();
    assert_eq!(
        sizes,
        vec![25, 15, 0],
        "the tied group moved whole to page 2"
    );
    let seen: BTreeSet<i64> = pages.iter().flat_map(|p| ids(&p.video_list)).collect();
    assert_eq!(seen, all);
}

#[test]
fn feed_shows_only_ready_videos_and_publish_list_shows_processing_ones() {
    let w = world();
    let (a, ta) = user(&w.sql, "alice");
    let old = video(&w.sql, a, "old", NOW - 30 * SEC, true);
    let mid = video(&w.sql, a, "mid", NOW - 20 * SEC, true);
    let fresh = video(&w.sql, a, "fresh", NOW - 10 * SEC, false);

    assert_eq!(ids(&feed(&w, &[]).video_list), vec![mid, old]);
    let list = publish_list(&w, &[("user_id", &a.to_string())])
        .unwrap()
        .video_list;
    assert_eq!(
        ids(&list),
        vec![fresh, mid, old],
        "newest first, processing included"
    );
    let cover = format!("{BASE}/media/cover/{fresh}.jpg");
    assert_eq!(
        list[0].cover_url, cover,
        "a stable cover URL from the start"
    );
    assert_eq!(list[0].play_url, format!("{BASE}/media/videos/fresh.mp4"));
    // Own list without user_id, via the token; the author's work_count counts all three.
    let mine = publish_list(&w, &[("token", &ta)]).unwrap().video_list;
    assert_eq!(ids(&mine), vec![fresh, mid, old]);
    assert_eq!(mine[0].author.work_count, 3);

    // The cover job finishes: the video enters the (cached) feed at once, same cover URL.
    assert!(publish::cover_ready(&w.env(), fresh, "covers/fresh.jpg").unwrap());
    let now_feed = feed(&w, &[]).video_list;
    assert_eq!(ids(&now_feed), vec![fresh, mid, old]);
    assert_eq!(now_feed[0].cover_url, cover);
    assert!(!publish::cover_ready(&w.env(), 999_999, "covers/x.jpg").unwrap());

    // Unknown user, missing user_id.
    let err = publish_list(&w, &[("user_id", "999999")]).unwrap_err();
    assert_eq!(err.code, api::NOT_FOUND);
    let err = publish_list(&w, &[]).unwrap_err();
    assert!(err.code != 0 && err.msg.contains("user_id"), "{err}");
    let (nobody, _) = user(&w.sql, "nobody");
    assert!(publish_list(&w, &[("user_id", &nobody.to_string())])
        .unwrap()
        .video_list
        .is_empty());
}

#[test]
fn latest_time_accepts_seconds_and_ms_and_treats_nonsense_as_now() {
    let w = world();
    let (a, _) = user(&w.sql, "alice");
    let newer = video(&w.sql, a, "newer", NOW - 10 * SEC, true);
    let older = video(&w.sql, a, "older", NOW - 100 * SEC, true);
    let cut = NOW - 50 * SEC;
    for (raw, expected, what) in [
        ((cut / 1000).to_string(), vec![older], "seconds"),
        (cut.to_string(), vec![older], "milliseconds"),
        ((NOW - 10 * SEC).to_string(), vec![older], "strictly before"),
        (
            (NOW - 10 * SEC + 1).to_string(),
            vec![newer, older],
            "just after",
        ),
        ("0".into(), vec![newer, older], "zero"),
        ("-5".into(), vec![newer, older], "negative"),
        ((NOW + 3_600_000).to_string(), vec![newer, older], "future"),
        (
            ((NOW + 3_600_000) / 1000).to_string(),
            vec![newer, older],
            "future seconds",
        ),
        ("abc".into(), vec![newer, older], "garbage"),
        ("".into(), vec![newer, older], "empty"),
        ("1e12".into(), vec![newer, older], "float"),
    ] {
        let page = feed(&w, &[("latest_time", &raw)]);
        assert_eq!(ids(&page.video_list), expected, "{what}: {raw}");
    }
    let page = feed(
        &w,
        &[("latest_time", &((NOW - 200 * SEC) / 1000).to_string())],
    );
    assert!(page.video_list.is_empty());
    assert_eq!(page.next_time, NOW);
}

#[test]
fn viewer_flags_are_relative_and_a_bad_token_is_anonymous() {
    let w = world();
    let (a, ta) = user(&w.sql, "alice");
    let (b, _) = user(&w.sql, "bob");
    let (v, tv) = user(&w.sql, "viewer");
    let va = video(&w.sql, a, "by-a", NOW - 3 * SEC, true);
    let vb = video(&w.sql, b, "by-b", NOW - 2 * SEC, true);
    let vv = video(&w.sql, v, "by-viewer", NOW - SEC, true);
    // Prime the anonymous cache first: flags must not leak either way.
    let anon = feed(&w, &[]);
    like(&w, &tv, va, 1).unwrap();
    w.sql
        .execute(
            "INSERT INTO follows (follower_id, followee_id, created_at) VALUES (?, ?, 0)",
            &[v.into(), a.into()],
        )
        .unwrap();
    let page = feed(&w, &[("token", &tv)]).video_list;
    let by_id = |list: &[tikspin_core::model::Video], id: i64| {
        list.iter().find(|x| x.id == id).unwrap().clone()
    };
    assert!(by_id(&page, va).is_favorite && by_id(&page, va).author.is_follow);
    assert!(!by_id(&page, vb).is_favorite && !by_id(&page, vb).author.is_follow);
    assert!(
        !by_id(&page, vv).is_favorite && !by_id(&page, vv).author.is_follow,
        "never following oneself"
    );
    assert_eq!(by_id(&page, va).favorite_count, 1);

    for pairs in [
        vec![],
        vec![("token", "not-a-jwt")],
        vec![("token", "")],
        vec![("token", &ta[..ta.len() - 2])],
    ] {
        let page = feed_at(&w.env(), &pairs).expect("a bad token never fails the feed");
        assert_eq!(page.video_list.len(), 3);
        assert!(
            page.video_list
                .iter()
                .all(|x| !x.is_favorite && !x.author.is_follow),
            "{pairs:?}"
        );
    }
    assert_eq!(anon.video_list.len(), 3);
    // Another viewer on the cached page gets their own flags (alice follows nobody, liked nothing).
    assert!(feed(&w, &[("token", &ta)])
        .video_list
        .iter()
        .all(|x| !x.is_favorite && !x.author.is_follow));
    // The same via the older-page (SQL) path.
    let older = feed(
        &w,
        &[("token", &tv), ("latest_time", &(NOW - SEC).to_string())],
    )
    .video_list;
    assert_eq!(ids(&older), vec![vb, va]);
    assert!(by_id(&older, va).is_favorite && by_id(&older, va).author.is_follow);
}

#[test]
fn video_json_has_every_field() {
    let w = world();
    let (a, _) = user(&w.sql, "alice");
    let id = video(&w.sql, a, "标题 😀 'quoted'", NOW - SEC, true);
    let reply = Reply::from_result(tikspin_core::feed::feed(&w.env(), &params(&[]), &links()));
    let body: Json = serde_json::from_slice(reply.body()).unwrap();
    assert_eq!(body["status_code"], 0);
    assert_eq!(body["next_time"], NOW - SEC);
    let v = &body["video_list"][0];
    let keys: BTreeSet<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "id",
            "author",
            "play_url",
            "cover_url",
            "favorite_count",
            "comment_count",
            "is_favorite",
            "title"
        ]
        .into()
    );
    assert_eq!(v["id"], id);
    assert_eq!(v["title"], "标题 😀 'quoted'");
    assert_eq!(v["author"]["id"], a);
    assert_eq!(v["author"]["work_count"], 1);
    assert_eq!(v["favorite_count"], 0);
    assert_eq!(v["is_favorite"], false);
    assert_eq!(
        v["play_url"],
        format!("{BASE}/media/videos/标题 😀 'quoted'.mp4")
    );

    let failed: Json =
        serde_json::from_slice(Reply::error::<FeedPage>(ApiError::internal()).body()).unwrap();
    assert_eq!(failed["video_list"], serde_json::json!([]));
    assert!(failed["next_time"].is_i64());
}

/// Statement counts through `CountingSql`, with a fresh Kv (cache miss) or a shared one (hit).
fn count_feed(sql: &dyn Sql, kv: &MemKv, w: &World, pairs: &[(&str, &str)]) -> (usize, usize) {
    let counting = CountingSql::new(sql);
    let env = Env {
        sql: &counting,
        kv,
        config: &w.config,
        now_ms: w.now_ms,
        client_addr: "",
    };
    let page = feed_at(&env, pairs).unwrap();
    (counting.calls(), page.video_list.len())
}

#[test]
fn feed_statements_do_not_grow_with_the_page() {
    let mut calls = Vec::new();
    for n in [1_i64, 30] {
        let w = world();
        let (viewer, tv) = user(&w.sql, "viewer");
        let (top_author, _) = user(&w.sql, "top");
        // One newest video, then n older ones by n authors: the head page holds 1 + n (capped
        // at 30), the page before the newest holds exactly n.
        let top = video(&w.sql, top_author, "top", NOW - SEC / 2, true);
        let top_at = (NOW - SEC / 2).to_string();
        for i in 0..n {
            let (a, _) = user(&w.sql, &format!("author{i}"));
            let id = video(&w.sql, a, &format!("v{i}"), NOW - (i + 1) * SEC, true);
            if i % 2 == 0 {
                like(&w, &tv, id, 1).unwrap();
            }
            if i % 3 == 0 {
                w.sql
                    .execute(
                        "INSERT INTO follows (follower_id, followee_id, created_at) VALUES (?, ?, 0)",
                        &[viewer.into(), a.into()],
                    )
                    .unwrap();
            }
        }
        like(&w, &tv, top, 1).unwrap();
        let shared = MemKv::new();
        let runs = [
            count_feed(&w.sql, &MemKv::new(), &w, &[]), // anonymous, miss
            count_feed(&w.sql, &MemKv::new(), &w, &[("token", &tv)]), // viewer, miss
            count_feed(&w.sql, &shared, &w, &[]),       // fills the cache
            count_feed(&w.sql, &shared, &w, &[]),       // anonymous, hit
            count_feed(&w.sql, &shared, &w, &[("token", &tv)]), // viewer, hit
            count_feed(&w.sql, &shared, &w, &[("latest_time", &top_at)]), // older page
            count_feed(
                &w.sql,
                &shared,
                &w,
                &[("latest_time", &top_at), ("token", &tv)],
            ),
            count_feed(
                &w.sql,
                &MemKv::new(),
                &w,
                &[("latest_time", &top_at), ("token", &tv)],
            ),
        ];
        let sizes: Vec<usize> = runs.iter().map(|r| r.1).collect();
        let head = (1 + n).min(30) as usize;
        let n = n as usize;
        assert_eq!(sizes, vec![head, head, head, head, head, n, n, n]);
        calls.push(runs.iter().map(|r| r.0).collect::<Vec<_>>());
    }
    assert_eq!(
        calls[0], calls[1],
        "a page of 1 and a page of 30 cost the same statements"
    );
    // anonymous 2 (videos, authors); a viewer adds 2 (their likes, their follows); from the
    // cache 0 and 2; an older page 2 (+2 for a viewer), +2 when the head is rebuilt on the way.
    assert_eq!(calls[1], vec![2, 4, 2, 0, 2, 2, 4, 6]);
}

#[test]
fn the_cached_feed_is_invalidated_by_every_write_it_shows() {
    let w = world();
    let (a, ta) = user(&w.sql, "alice");
    let (_, tb) = user(&w.sql, "bob");
    let v1 = video(&w.sql, a, "one", NOW - 2 * SEC, true);
    let count = |page: &FeedPage| {
        (
            page.video_list[0].favorite_count,
            page.video_list[0].comment_count,
        )
    };
    assert_eq!(count(&feed(&w, &[])), (0, 0));

    // Proof that the page is cached: a change behind the service's back is not seen...
    w.sql
        .execute(
            "UPDATE videos SET title = 'sneaky' WHERE id = ?",
            &[v1.into()],
        )
        .unwrap();
    assert_eq!(
        feed(&w, &[]).video_list[0].title,
        "one",
        "served from the cache"
    );

    // ...but every write through the services is, on the very next request.
    like(&w, &tb, v1, 1).unwrap();
    let page = feed(&w, &[]);
    assert_eq!(
        count(&page),
        (1, 0),
        "after a like, the next feed shows the new count"
    );
    assert_eq!(page.video_list[0].title, "sneaky");
    assert_eq!(page.video_list[0].author.total_favorited, 1);
    let c = add_comment(&w, &tb, v1, "hi").unwrap();
    assert_eq!(count(&feed(&w, &[])), (1, 1));
    delete_comment(&w, &ta, v1, c).unwrap();
    assert_eq!(count(&feed(&w, &[])), (1, 0));
    like(&w, &tb, v1, 2).unwrap();
    assert_eq!(count(&feed(&w, &[])), (0, 0));
    // A publish moves the author's work_count; the cover job adds the video.
    let req = PublishRequest::parse(&params(&[("title", "two")])).unwrap();
    let stored = StoredVideo {
        play_key: "videos/two.mp4".into(),
        content_type: "video/mp4".into(),
        size_bytes: 10,
    };
    let mut w2 = w;
    w2.now_ms = NOW - SEC;
    let created = publish::record(&w2.env(), a, &req, &stored).unwrap();
    w2.now_ms = NOW;
    let page = feed(&w2, &[]);
    assert_eq!(ids(&page.video_list), vec![v1]);
    assert_eq!(page.video_list[0].author.work_count, 2);
    publish::cover_ready(&w2.env(), created.video_id, "covers/two.jpg").unwrap();
    assert_eq!(ids(&feed(&w2, &[]).video_list), vec![created.video_id, v1]);

    // Writes the feed is not told about show up after the entry's maximum age.
    w2.sql
        .execute(
            "UPDATE videos SET title = 'late' WHERE id = ?",
            &[v1.into()],
        )
        .unwrap();
    assert_eq!(feed(&w2, &[]).video_list[1].title, "sneaky");
    w2.now_ms = NOW + cache::FEED_CACHE_MAX_AGE_MS + 1;
    assert_eq!(feed(&w2, &[]).video_list[1].title, "late");
}

#[test]
fn cache_entries_are_per_public_base() {
    let w = world();
    let (a, _) = user(&w.sql, "alice");
    let id = video(&w.sql, a, "x", NOW - SEC, true);
    let phone = feed(&w, &[]);
    let mut lan = World::with_sql(tikspin_core::testing::SqliteSql::memory());
    lan.config.public_base_url = "http://192.168.1.5:3000".into();
    let env = Env {
        sql: &w.sql,
        kv: &w.kv,
        ..lan.env()
    };
    let other = tikspin_core::feed::feed(&env, &params(&[]), &Urls::new("http://192.168.1.5:3000"))
        .unwrap();
    assert_eq!(
        phone.video_list[0].cover_url,
        format!("{BASE}/media/cover/{id}.jpg")
    );
    assert_eq!(
        other.video_list[0].cover_url,
        format!("http://192.168.1.5:3000/media/cover/{id}.jpg")
    );
    assert!(other.video_list[0]
        .author
        .avatar
        .starts_with("http://192.168.1.5:3000/"));
}

/// A `MediaLinks` of the blob layer's kind: the core routes every video URL through it.
struct Presigned;
impl MediaLinks for Presigned {
    fn play_url(&self, video_id: i64, play_key: &str) -> String {
        format!("https://s3.example/{play_key}?sig={video_id}")
    }
    fn cover_url(&self, video_id: i64) -> String {
        format!("https://cdn.example/cover/{video_id}.jpg")
    }
    fn cache_scope(&self) -> String {
        "s3:window-1".into()
    }
}

#[test]
fn every_video_url_comes_from_the_links_passed_in() {
    let w = world();
    let (a, _) = user(&w.sql, "alice");
    let id = video(&w.sql, a, "x", NOW - SEC, true);
    let _ = feed(&w, &[]); // cache the default scope first
    let page = tikspin_core::feed::feed(&w.env(), &params(&[]), &Presigned).unwrap();
    assert_eq!(
        page.video_list[0].play_url,
        format!("https://s3.example/videos/x.mp4?sig={id}")
    );
    assert_eq!(
        page.video_list[0].cover_url,
        format!("https://cdn.example/cover/{id}.jpg")
    );
    let map = videos::load_many(
        &w.sql,
        &[id, id, 424242],
        None,
        &Presigned,
        &Urls::new(BASE),
    )
    .unwrap();
    assert_eq!(map.len(), 1);
    assert_eq!(
        map[&id].cover_url,
        format!("https://cdn.example/cover/{id}.jpg")
    );
}

#[test]
fn load_many_runs_a_constant_number_of_statements() {
    let w = world();
    let (viewer, _) = user(&w.sql, "viewer");
    let mut ids = Vec::new();
    for i in 0..40 {
        let (a, _) = user(&w.sql, &format!("a{i}"));
        ids.push(video(&w.sql, a, &format!("v{i}"), NOW - SEC, i % 2 == 0));
    }
    let counting = CountingSql::new(&w.sql);
    let urls = Urls::new(BASE);
    let one = videos::load_many(&counting, &ids[..1], Some(viewer), &urls, &urls).unwrap();
    let for_one = counting.calls();
    counting.reset();
    let all = videos::load_many(&counting, &ids, Some(viewer), &urls, &urls).unwrap();
    assert_eq!(
        (one.len(), all.len()),
        (1, 40),
        "processing videos load too"
    );
    assert_eq!(counting.calls(), for_one);
    assert_eq!(for_one, 4, "videos, users, follows, favorites");
    counting.reset();
    videos::load_many(&counting, &ids, None, &urls, &urls).unwrap();
    assert_eq!(counting.calls(), 2, "anonymous: videos, users");
}

#[test]
fn publish_title_rules_and_error_table() {
    let parse = |title: Option<&str>| {
        let p = match title {
            Some(t) => params(&[("title", t)]),
            None => params(&[]),
        };
        PublishRequest::parse(&p)
    };
    assert_eq!(parse(None).unwrap_err().code, api::TITLE_MISSING);
    assert_eq!(parse(Some("")).unwrap_err().code, api::TITLE_MISSING);
    assert_eq!(parse(Some(" \t ")).unwrap_err().code, api::TITLE_MISSING);
    assert_eq!(parse(Some("  hello  ")).unwrap().title, "hello");
    let hundred_cjk = "视".repeat(100);
    assert_eq!(
        parse(Some(&hundred_cjk)).unwrap().title,
        hundred_cjk,
        "characters, not bytes"
    );
    assert_eq!(
        parse(Some(&"😀".repeat(100)))
            .unwrap()
            .title
            .chars()
            .count(),
        100
    );
    let err = parse(Some(&"a".repeat(101))).unwrap_err();
    assert_eq!(err.code, api::TITLE_TOO_LONG);
    assert!(
        err.msg.contains("100") && err.msg.contains("101"),
        "{}",
        err.msg
    );
    assert!(parse(Some("two\nlines")).unwrap_err().code != 0);

    let too_large = publish::video_too_large(200 * 1024 * 1024);
    assert_eq!(too_large.code, api::VIDEO_TOO_LARGE);
    assert!(too_large.msg.contains("200 MB"), "{}", too_large.msg);
    let codes = [
        publish::video_missing().code,
        publish::video_empty().code,
        publish::not_a_video("no ftyp box").code,
        publish::video_truncated().code,
        too_large.code,
        publish::storage_failed("s3 said 503").code,
    ];
    assert_eq!(
        codes,
        [
            api::VIDEO_MISSING,
            api::VIDEO_EMPTY,
            api::NOT_A_VIDEO,
            api::VIDEO_TRUNCATED,
            api::VIDEO_TOO_LARGE,
            api::STORAGE_FAILED
        ]
    );
    assert!(codes.iter().all(|c| (3000..4000).contains(c)));
    assert!(publish::not_a_video("no ftyp box")
        .msg
        .contains("no ftyp box"));
    assert!(!publish::storage_failed("secret-bucket")
        .msg
        .contains("secret-bucket"));
}

#[test]
fn publish_records_video_job_and_work_count_together() {
    let w = world();
    let (a, _) = user(&w.sql, "alice");
    let req = PublishRequest::parse(&params(&[("title", " 第一条 ")])).unwrap();
    let stored = StoredVideo {
        play_key: "videos/abc.mp4".into(),
        content_type: "video/mp4".into(),
        size_bytes: 4096,
    };
    let created = publish::record(&w.env(), a, &req, &stored).unwrap();
    let state = |id: i64| -> String {
        w.sql
            .query(
                "SELECT state || ':' || title FROM videos WHERE id = ?",
                &[id.into()],
            )
            .unwrap()
            .first()
            .unwrap()
            .text(0)
            .unwrap()
            .to_owned()
    };
    assert_eq!(state(created.video_id), "processing:第一条");
    assert_eq!(
        jobs::state(&w.sql, created.job_id).unwrap().as_deref(),
        Some("pending")
    );
    assert_eq!(
        scalar(
            &w.sql,
            "SELECT work_count FROM users WHERE id = ?",
            &[a.into()]
        ),
        1
    );
    let job = jobs::claim(&w.sql, created.job_id, NOW, 1_000)
        .unwrap()
        .unwrap();
    assert_eq!(job.kind, jobs::COVER);
    assert_eq!(
        job.payload_as::<CoverJob>().unwrap(),
        CoverJob {
            video_id: created.video_id,
            play_key: "videos/abc.mp4".into()
        }
    );
    let media = videos::stored_media(&w.sql, created.video_id)
        .unwrap()
        .unwrap();
    assert_eq!((media.cover_key, media.size_bytes), (None, 4096));
    // A token whose user is gone records nothing.
    let before = snapshot(&w.sql);
    assert_eq!(
        publish::record(&w.env(), 999_999, &req, &stored)
            .unwrap_err()
            .code,
        api::INVALID_TOKEN
    );
    assert_eq!(snapshot(&w.sql), before);
}

#[test]
fn a_rolled_back_publish_leaves_neither_video_nor_job() {
    let w = world();
    let (a, _) = user(&w.sql, "alice");
    let before = snapshot(&w.sql);
    let r: Result<(), SqlError> = transaction(&w.sql, |tx| {
        let created = videos::create_processing(tx, a, "t", "videos/t.mp4", "video/mp4", 1, NOW)?;
        assert!(created.video_id > 0 && created.job_id > 0);
        Err(SqlError::Other("the upload failed after all".into()))
    });
    assert!(r.is_err());
    assert_eq!(snapshot(&w.sql), before, "no video, no job, no work_count");
    assert_eq!(scalar(&w.sql, "SELECT COUNT(*) FROM jobs", &[]), 0);
}

#[test]
fn jobs_claim_complete_fail_backoff_and_lease_expiry() {
    let w = world();
    let sql: &dyn Sql = &w.sql;
    let t0 = NOW;
    let id = transaction(sql, |tx| {
        jobs::enqueue(tx, "cover", r#"{"video_id":1}"#, t0)
    })
    .unwrap();
    assert!(
        jobs::claim(sql, id, t0 - 1, 1_000).unwrap().is_none(),
        "not due yet"
    );
    let job = jobs::claim(sql, id, t0, 1_000).unwrap().unwrap();
    assert_eq!((job.attempt, job.locked_until), (1, t0 + 1_000));
    assert!(
        jobs::claim(sql, id, t0 + 10, 1_000).unwrap().is_none(),
        "held by its lease"
    );
    assert!(jobs::claim_due(sql, t0 + 10, 10, 1_000).unwrap().is_empty());

    // First failure: back to pending after the first backoff.
    assert_eq!(
        jobs::fail(sql, id, "decoder said no", Failure::Permanent, t0 + 100).unwrap(),
        Failed::Retry {
            run_at: t0 + 100 + jobs::FIRST_BACKOFF_MS
        }
    );
    assert_eq!(
        jobs::fail(sql, id, "again", Failure::Permanent, t0 + 100).unwrap(),
        Failed::Ignored,
        "not running"
    );
    assert!(
        jobs::claim(sql, id, t0 + 100 + jobs::FIRST_BACKOFF_MS - 1, 1_000)
            .unwrap()
            .is_none()
    );
    let retry_at = t0 + 100 + jobs::FIRST_BACKOFF_MS;
    let job = jobs::claim_due(sql, retry_at, 10, 1_000).unwrap();
    assert_eq!(job.len(), 1);
    assert_eq!(job[0].attempt, 2);
    // Second failure waits twice as long.
    assert_eq!(
        jobs::fail(sql, id, "x", Failure::Permanent, retry_at).unwrap(),
        Failed::Retry {
            run_at: retry_at + 2 * jobs::FIRST_BACKOFF_MS
        }
    );

    // The worker dies mid-job: the lease expires and the sweep re-drives it.
    let t1 = retry_at + 2 * jobs::FIRST_BACKOFF_MS;
    assert!(jobs::claim(sql, id, t1, 500).unwrap().is_some());
    assert!(jobs::claim_due(sql, t1 + 499, 10, 500).unwrap().is_empty());
    let redriven = jobs::claim_due(sql, t1 + 500, 10, 500).unwrap();
    assert_eq!(redriven.len(), 1);
    assert_eq!(redriven[0].attempt, 4);
    assert!(jobs::complete(sql, id).unwrap());
    assert!(
        !jobs::complete(sql, id).unwrap(),
        "completing twice is harmless"
    );
    assert_eq!(jobs::state(sql, id).unwrap().as_deref(), Some("done"));
    assert_eq!(
        jobs::fail(sql, id, "late", Failure::Permanent, t1 + 600).unwrap(),
        Failed::Ignored
    );
    assert!(
        jobs::claim(sql, id, t1 + 1_000_000, 500).unwrap().is_none(),
        "done stays done"
    );
    assert!(!jobs::complete(sql, 987_654).unwrap());
}

#[test]
fn jobs_die_after_max_attempts_even_when_the_worker_never_reports() {
    let w = world();
    let sql: &dyn Sql = &w.sql;
    let failing = jobs::enqueue(sql, "cover", "{}", NOW).unwrap();
    let mut t = NOW;
    for attempt in 1..=jobs::MAX_ATTEMPTS {
        let job = jobs::claim(sql, failing, t, 1_000).unwrap().expect("due");
        assert_eq!(job.attempt, attempt);
        match jobs::fail(sql, failing, "bad video", Failure::Permanent, t).unwrap() {
            Failed::Retry { run_at } => {
                assert!(attempt < jobs::MAX_ATTEMPTS);
                assert_eq!(run_at, t + jobs::backoff_ms(attempt));
                t = run_at;
            }
            Failed::Dead => assert_eq!(attempt, jobs::MAX_ATTEMPTS),
            Failed::Ignored => panic!("the job was running"),
        }
    }
    assert_eq!(jobs::state(sql, failing).unwrap().as_deref(), Some("dead"));
    assert!(jobs::claim_due(sql, t + 100_000_000, 10, 1_000)
        .unwrap()
        .is_empty());

    // A poison job that kills its worker every time is buried by the sweep after its last lease.
    let poison = jobs::enqueue(sql, "cover", "{}", NOW).unwrap();
    let mut t = NOW;
    for _ in 0..jobs::MAX_ATTEMPTS {
        assert_eq!(jobs::claim_due(sql, t, 10, 1_000).unwrap().len(), 1);
        t += 1_000;
    }
    assert!(jobs::claim_due(sql, t, 10, 1_000).unwrap().is_empty());
    assert_eq!(jobs::state(sql, poison).unwrap().as_deref(), Some("dead"));
}

#[test]
fn two_workers_woken_for_one_job_run_it_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jobs.db");
    let w = world_on(&path);
    tikspin_core::migrate::migrate(&w.sql).unwrap();
    let id = jobs::enqueue(&w.sql, "cover", "{}", NOW).unwrap();
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(8));
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let path = path.clone();
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                let sql = tikspin_core::testing::SqliteSql::open(&path).unwrap();
                barrier.wait();
                jobs::claim(&sql, id, NOW, 60_000).unwrap().is_some()
            })
        })
        .collect();
    let won = handles
        .into_iter()
        .filter(|_| true)
        .map(|h| h.join().unwrap())
        .filter(|&x| x)
        .count();
    assert_eq!(won, 1);
}

#[test]
fn jobs_failing_on_a_dependency_are_retried_for_their_window_not_their_attempts() {
    let w = world();
    let sql: &dyn Sql = &w.sql;
    let id = jobs::enqueue(sql, "cover", "{}", NOW).unwrap();
    let mut t = NOW;
    // Many more failures than MAX_ATTEMPTS, each a storage outage: always retried, and never
    // waiting more than MAX_BACKOFF_MS.
    for attempt in 1..=jobs::MAX_ATTEMPTS + 5 {
        let job = jobs::claim(sql, id, t, 1_000).unwrap().expect("due");
        assert_eq!(job.attempt, attempt);
        match jobs::fail(sql, id, "storage unavailable", Failure::Transient, t).unwrap() {
            Failed::Retry { run_at } => {
                assert!(run_at - t <= jobs::MAX_BACKOFF_MS);
                t = run_at;
            }
            other => panic!("attempt {attempt}: {other:?}"),
        }
    }
    // A runner killed under its lease after all those: taken again, not buried as a crasher.
    assert!(jobs::claim(sql, id, t, 1_000).unwrap().is_some());
    let again = jobs::claim_due(sql, t + 1_000, 10, 1_000).unwrap();
    assert_eq!(again.len(), 1, "re-driven after its lease expired");
    // Once the window is over, the next failure is the last.
    let late = NOW + jobs::TRANSIENT_RETRY_WINDOW_MS;
    assert_eq!(
        jobs::fail(sql, id, "storage unavailable", Failure::Transient, late).unwrap(),
        Failed::Dead
    );
}

#[test]
fn stranded_jobs_are_the_unheard_the_due_and_the_orphaned_and_are_not_claimed() {
    let w = world();
    let sql: &dyn Sql = &w.sql;
    let fresh = jobs::enqueue(sql, "cover", "{}", NOW).unwrap();
    // Just published: its worker has REDRIVE_GRACE_MS to claim it.
    assert!(jobs::stranded(sql, NOW + jobs::REDRIVE_GRACE_MS - 1, 10)
        .unwrap()
        .is_empty());
    let unheard = NOW + jobs::REDRIVE_GRACE_MS;
    assert_eq!(jobs::stranded(sql, unheard, 10).unwrap(), vec![fresh]);
    assert_eq!(
        jobs::stranded(sql, unheard, 10).unwrap(),
        vec![fresh],
        "looking claims nothing"
    );
    // Claimed by a worker that then dies: stranded once its lease is over, not before.
    jobs::claim(sql, fresh, unheard, jobs::DEFAULT_LEASE_MS)
        .unwrap()
        .unwrap();
    let expiry = unheard + jobs::DEFAULT_LEASE_MS;
    assert!(jobs::stranded(sql, expiry - 1, 10).unwrap().is_empty());
    assert_eq!(jobs::stranded(sql, expiry, 10).unwrap(), vec![fresh]);
    jobs::claim(sql, fresh, expiry, jobs::DEFAULT_LEASE_MS)
        .unwrap()
        .unwrap();
    assert!(jobs::complete(sql, fresh).unwrap());
    assert!(
        jobs::stranded(sql, expiry + 10 * jobs::DEFAULT_LEASE_MS, 10)
            .unwrap()
            .is_empty()
    );
}
