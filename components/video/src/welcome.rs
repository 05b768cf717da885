//! A fresh deployment's feed is never empty: the first feed request seeds one welcome video by
//! a system user, so a client's first launch (and the official demo's test) sees a working
//! feed. `seed_welcome_video = "false"` switches it off.

use tikspin_core::migrate::with_schema;
use tikspin_core::publish::{self, PublishRequest, StoredVideo};
use tikspin_core::{users, videos, Env, SqlError};
use tikspin_spin::blobs::{new_key, BlobStore};
use tikspin_spin::config::var;
use tikspin_spin::jobs;

/// A small bundled clip (the repository's `assets/welcome.mp4`).
const WELCOME_CLIP: &[u8] = include_bytes!("../../../assets/welcome.mp4");
const SYSTEM_USER: &str = "TikSpin";
const TITLE: &str = "Welcome to TikSpin 👋";
/// Set once the seed is done, so later feeds skip even the check.
const SEEDED: &str = "tikspin:welcome:seeded";
/// Not a PHC string: no password verifies against it, so nobody can log in as the system user.
const NO_PASSWORD: &str = "!";

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

/// Concurrent first feeds lose the race for the system user; they wait for the winner's
/// video to become ready (milliseconds), so every first feed shows it and none seeds twice.
fn wait_for_welcome(env: &Env<'_>, author: i64) -> Result<Welcome, String> {
    const PATIENCE: std::time::Duration = std::time::Duration::from_secs(5);
    let started = std::time::Instant::now();
    loop {
        let rows = videos::by_author(env.sql, author).map_err(|e| e.to_string())?;
        let state = match rows.first() {
            Some(row) if row.state == videos::READY => return Ok(Welcome::Ready),
            Some(_) => Welcome::Processing,
            None => Welcome::Missing,
        };
        if started.elapsed() >= PATIENCE {
            return Ok(state);
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

async fn seed(env: &Env<'_>) -> Result<(), String> {
    // Creating the system user is the lock: of concurrent first requests, only the one whose
    // insert wins seeds the video. If the user exists without a video, an earlier seed failed
    // half-way (say the object store was down): try again.
    let author = match with_schema(env.sql, || {
        users::insert(env.sql, SYSTEM_USER, NO_PASSWORD, env.now_ms)
    }) {
        Ok(id) => id,
        Err(SqlError::Unique(_)) => {
            let existing =
                users::find_credentials(env.sql, SYSTEM_USER).map_err(|e| e.to_string())?;
            let author = existing.map(|c| c.id).ok_or("the system user vanished")?;
            match wait_for_welcome(env, author)? {
                Welcome::Ready => return env.kv.set(SEEDED, b"1"),
                // Still processing after the wait: this feed goes without it; a later one sees it.
                Welcome::Processing => return Ok(()),
                // The seeding request died before recording the video: take over.
                Welcome::Missing => author,
            }
        }
        Err(e) => return Err(e.to_string()),
    };
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
    let created = publish::record(env, author, &request, &stored).map_err(|e| e.msg)?;
    // Inline, so the very feed request that seeded shows the video.
    jobs::run_job(env, &blobs, created.job_id).await?;
    env.kv.set(SEEDED, b"1")
}
