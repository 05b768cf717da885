//! Cache-aside in [`Kv`] for the hottest read: the feed's first page (ARCHITECTURE.md §3).
//!
//! What is cached: the *head* page (the newest ready videos, what a feed request without a
//! `latest_time`, or with one newer than the newest video, gets), rendered for an anonymous
//! viewer, one entry per [`MediaLinks::cache_scope`](crate::videos::MediaLinks::cache_scope)
//! (the URLs in it depend on the public base). Viewer-relative flags are never cached: a
//! logged-in request takes the anonymous page and sets `is_favorite` / `author.is_follow` with
//! one favorites query and one follows query. Older pages (`latest_time` from `next_time`) are
//! read from SQL.
//!
//! **Invalidation rule.** One key, the feed *generation*, names the current state of everything
//! a feed page shows. Every write that changes what a page shows replaces it with a fresh
//! unique value ([`feed_changed`]) AFTER its transaction commits: publish (the author's
//! `work_count`), a cover becoming ready (a new video), like/unlike that changed a row (video
//! `favorite_count`, the author's `total_favorited`, the liker's `favorite_count`), comment add
//! and delete (`comment_count`). A page entry records the generation it was built under and is
//! served only while the generation is unchanged. Because writers bump after commit and readers
//! read the generation before querying, an entry built from data older than some commit always
//! carries a generation that commit's bump has already replaced, so it is never served again;
//! generation values are unique (time + random), so an old value can never come back.
//!
//! Writes this module is not told about (follows move an author's `follow_count` /
//! `follower_count`; the social service may call [`feed_changed`] to make them immediate) and a
//! failed bump (a Kv outage, logged) are bounded by the entry's age: an entry older than
//! [`FEED_CACHE_MAX_AGE_MS`] is rebuilt. A Kv failure on read just means a SQL read.

use std::hash::{BuildHasher, Hasher};

use serde::{Deserialize, Serialize};

use crate::model::Video;
use crate::ports::Kv;

pub const FEED_GENERATION_KEY: &str = "tikspin:feed:generation";
const FEED_HEAD_PREFIX: &str = "tikspin:feed:head:";
/// The longest a cached page is served, whatever the generation says.
pub const FEED_CACHE_MAX_AGE_MS: i64 = 10_000;

/// Records that what a feed page shows has changed: the next feed request rebuilds. Call it
/// after the write's transaction committed. Never fails the request (a Kv error is logged; the
/// stale page then lives at most [`FEED_CACHE_MAX_AGE_MS`]).
pub fn feed_changed(kv: &dyn Kv, now_ms: i64) {
    let value = format!("{now_ms}-{:016x}", nonce(now_ms));
    if let Err(e) = kv.set(FEED_GENERATION_KEY, value.as_bytes()) {
        eprintln!("tikspin: cannot bump the feed cache generation: {e}");
    }
}

/// The current generation (`""` before the first write); `None` if Kv cannot say, in which case
/// nothing is cached or served from cache.
pub fn feed_generation(kv: &dyn Kv) -> Option<String> {
    match kv.get(FEED_GENERATION_KEY) {
        Ok(value) => Some(String::from_utf8_lossy(&value.unwrap_or_default()).into_owned()),
        Err(e) => {
            eprintln!("tikspin: feed cache unavailable: {e}");
            None
        }
    }
}

/// A cached head page: anonymous, for one link scope.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeadPage {
    pub generation: String,
    /// The request time it was built at; the page holds the newest ready videos before it.
    pub built_ms: i64,
    /// `created_at` of the newest video in it (`None`: there were no ready videos).
    pub newest: Option<i64>,
    /// `created_at` of the oldest video in it: the page's `next_time`.
    pub oldest: Option<i64>,
    pub videos: Vec<Video>,
}

impl HeadPage {
    /// Whether the entry may still be used: built under `generation` (the current one) and
    /// young enough.
    pub fn is_current(&self, generation: &str, now_ms: i64) -> bool {
        self.generation == generation && (now_ms - self.built_ms).abs() <= FEED_CACHE_MAX_AGE_MS
    }

    /// Whether it is the answer for `latest_time = before`: `before` is newer than every video
    /// in it (an older `before` asks for a later page).
    pub fn covers(&self, before: i64) -> bool {
        self.newest.is_none_or(|newest| before > newest)
    }
}

pub fn load_head(kv: &dyn Kv, scope: &str) -> Option<HeadPage> {
    let bytes = kv.get(&head_key(scope)).ok()??;
    serde_json::from_slice(&bytes).ok()
}

pub fn store_head(kv: &dyn Kv, scope: &str, page: &HeadPage) {
    match serde_json::to_vec(page) {
        Ok(bytes) => {
            if let Err(e) = kv.set(&head_key(scope), &bytes) {
                eprintln!("tikspin: cannot cache the feed page: {e}");
            }
        }
        Err(e) => eprintln!("tikspin: cannot serialize the feed page: {e}"),
    }
}

/// One key per scope: a scope is a URL base, hashed to keep keys short and free of `/` and `:`.
fn head_key(scope: &str) -> String {
    format!("{FEED_HEAD_PREFIX}{:016x}", fnv1a(scope.as_bytes()))
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// 64 random bits: std seeds `RandomState` from the OS (WASI `random` under Spin), and each
/// `RandomState` in a process differs from the previous one.
fn nonce(salt: i64) -> u64 {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_i64(salt);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generations_are_unique() {
        assert_ne!(nonce(1), nonce(1));
        assert_eq!(fnv1a(b"a"), fnv1a(b"a"));
        assert_ne!(head_key("http://a"), head_key("http://b"));
    }
}
