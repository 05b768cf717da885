//! A fresh deployment's feed is never empty: the first feed request seeds one welcome video by
//! the system user, so a client's first launch (and the official demo's test) sees a working
//! feed. `seed_welcome_video = "false"` switches it off.
//!
//! The system user is not made here: the schema migration creates it (no usable password,
//! marked by `users.system_role`), and it is found by that mark, never by name, so no account
//! registered under its name can end up owning the welcome video.

use tikspin_core::migrate::with_schema;
use tikspin_core::publish::{self, PublishRequest, StoredVideo};
use tikspin_core::{users, videos, Env};
use tikspin_spin::blobs::{new_key, BlobStore};
use tikspin_spin::config::var;
use tikspin_spin::jobs;

/// A small bundled clip (the repository's `assets/welcome.mp4`).
const WELCOME_CLIP: &[u8] = include_bytes!("../../../assets/welcome.mp4");
const TITLE: &str = "Welcome to TikSpin 👋";
/// Set once the seed is done, so later feeds skip even the check.
const SEEDED: &str = "tikspin:welcome:seeded";

pub async fn seed_once(env: &Env<'_>) {
    if var("seed_welcome_video")
        .trim()
        .eq_ignore_ascii_case("false")
    {
        return;
    }
    if matches!(env.kv.get(SEEDED), Ok(Some(_))) {
        return;
    }
    // Published a millisecond before this request's "now", so the feed that seeded it (videos
    // strictly before now) shows it.
    let earlier = Env {
        now_ms: env.now_ms - 1,
        ..*env
    };
    if let Err(e) = seed(&earlier).await {
        eprintln!("welcome video not seeded: {e}");
    }
}

enum Welcome {
    Ready,
    Processing,
    Missing,
}

fn welcome_state(env: &Env<'_>, author: i64) -> Result<Welcome, String> {
    let rows =
        with_schema(env.sql, || videos::by_author(env.sql, author)).map_err(|e| e.to_string())?;
    Ok(match rows.first() {
        Some(row) if row.state == videos::READY => Welcome::Ready,
        Some(_) => Welcome::Processing,
        None => Welcome::Missing,
    })
}

/// Concurrent first feeds that did not record the video wait for the one that did to make it
/// ready (milliseconds), so every first feed shows it.
fn wait_for_welcome(env: &Env<'_>, author: i64) -> Result<Welcome, String> {
    const PATIENCE: std::time::Duration = std::time::Duration::from_secs(5);
    let started = std::time::Instant::now();
    loop {
        let state = welcome_state(env, author)?;
        if matches!(state, Welcome::Ready) || started.elapsed() >= PATIENCE {
            return Ok(state);
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

async fn seed(env: &Env<'_>) -> Result<(), String> {
    let author = with_schema(env.sql, || {
        users::system_user(env.sql, users::SYSTEM_ROLE_WELCOME)
    })
    .map_err(|e| e.to_string())?
    .ok_or("the schema has no system user")?;
    match welcome_state(env, author)? {
        Welcome::Ready => return env.kv.set(SEEDED, b"1"),
        // Another request recorded it and is making its cover right now: wait for it, so this
        // first feed shows it too. Still processing after the wait (or its seeder died, and the
        // cover job's lease hands it to the next run): this feed goes without it.
        Welcome::Processing => {
            return match wait_for_welcome(env, author)? {
                Welcome::Ready => env.kv.set(SEEDED, b"1"),
                _ => Ok(()),
            }
        }
        // Nobody seeded it yet, or an earlier seed failed before recording it (say the object
        // store was down): seed it.
        Welcome::Missing => {}
    }
    let blobs = BlobStore::open().map_err(|e| e.0)?;
    let key = new_key("videos", "mp4");
    let meta = blobs
        .put(&key, WELCOME_CLIP, "video/mp4")
        .await
        .map_err(|e| e.0)?;
    let stored = StoredVideo {
        play_key: key,
        content_type: meta.content_type,
        size_bytes: meta.size as i64,
    };
    let request = PublishRequest {
        title: TITLE.to_string(),
    };
    // Recording is the lock: of concurrent first feeds that all stored the clip, exactly one
    // records it (the system user's row is locked between the check and the insert).
    let Some(created) = publish::record_first(env, author, &request, &stored).map_err(|e| e.msg)?
    else {
        if let Err(e) = blobs.delete(&stored.play_key).await {
            eprintln!("welcome video: cannot delete an unused copy: {}", e.0);
        }
        return match wait_for_welcome(env, author)? {
            Welcome::Ready => env.kv.set(SEEDED, b"1"),
            _ => Ok(()),
        };
    };
    // Inline, so the very feed request that seeded shows the video.
    jobs::run_job(env, &blobs, created.job_id).await?;
    env.kv.set(SEEDED, b"1")
}
