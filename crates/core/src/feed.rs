//! `GET /douyin/feed/`: ready videos published strictly before `latest_time`, newest first, at
//! most 30, with viewer-relative flags for a logged-in viewer.
//!
//! - `latest_time`: epoch ms, or seconds (below 10^12); missing, empty, zero, negative, future or
//!   not a number all mean "now" ([`time::latest_time`]).
//! - `token`: optional; a missing, malformed, forged or expired token is an anonymous viewer,
//!   never an error (a stale token must not blank the feed).
//! - `next_time`: `created_at` of the oldest video of the page; on an empty page, "now", so the
//!   client's next pull starts again from the newest.
//!
//! The first page comes from the Kv cache when it is current (see [`crate::cache`] for what is
//! cached and the invalidation rule).
//!
//! SQL statements per request, whatever the page size: anonymous head page from cache 0; from
//! SQL 2 (videos, authors); an older page 2, plus 2 more when the cache must be rebuilt at the
//! same time; a logged-in viewer adds 2 (their likes and follows among the page).

use serde::Serialize;

use crate::api::{ApiError, Payload};
use crate::auth;
use crate::cache::{self, HeadPage};
use crate::env::Env;
use crate::json::Object;
use crate::migrate::with_schema;
use crate::model::Video;
use crate::params::Params;
use crate::ports::SqlError;
use crate::time;
use crate::urls::Urls;
use crate::videos::{self, MediaLinks};

/// The feed's fields: both always present.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FeedPage {
    pub video_list: Vec<Video>,
    pub next_time: i64,
}

impl Payload for FeedPage {
    fn failed() -> Self {
        // 0 is "now" to the client, so even a failed pull leaves it in a sane state.
        FeedPage {
            video_list: Vec::new(),
            next_time: 0,
        }
    }

    fn write_fields(&self, reply: &mut Object<'_>) -> serde_json::Result<()> {
        reply.value("video_list", self.video_list.as_slice());
        reply.int("next_time", self.next_time);
        Ok(())
    }
}

pub fn feed(env: &Env<'_>, params: &Params, links: &dyn MediaLinks) -> Result<FeedPage, ApiError> {
    let viewer = auth::viewer(env, params);
    let before = time::latest_time(params.get("latest_time"), env.now_ms);
    let urls = env.urls();
    let scope = format!("{}\n{}", urls.public_base, links.cache_scope());

    let generation = cache::feed_generation(env.kv);
    let current = generation.as_deref().and_then(|generation| {
        cache::load_head(env.kv, &scope).filter(|head| head.is_current(generation, env.now_ms))
    });

    let (video_list, oldest) = with_schema(env.sql, || {
        let (mut video_list, oldest) = match (&current, &generation) {
            (Some(head), _) if head.covers(before) => (head.videos.clone(), head.oldest),
            (Some(_), _) | (None, None) => page(env, before, links, &urls)?,
            (None, Some(generation)) => {
                let head = build_head(env, generation, links, &urls)?;
                cache::store_head(env.kv, &scope, &head);
                if head.covers(before) {
                    (head.videos, head.oldest)
                } else {
                    page(env, before, links, &urls)?
                }
            }
        };
        videos::apply_viewer(env.sql, &mut video_list, viewer)?;
        Ok::<_, ApiError>((video_list, oldest))
    })?;
    Ok(FeedPage {
        next_time: if video_list.is_empty() {
            env.now_ms
        } else {
            oldest.unwrap_or(env.now_ms)
        },
        video_list,
    })
}

/// The page before `before`, rendered anonymously, and its oldest `created_at`.
fn page(
    env: &Env<'_>,
    before: i64,
    links: &dyn MediaLinks,
    urls: &Urls,
) -> Result<(Vec<Video>, Option<i64>), SqlError> {
    let rows = videos::feed_rows(env.sql, before)?;
    let oldest = rows.last().map(|r| r.created_at);
    Ok((videos::render(env.sql, &rows, None, links, urls)?, oldest))
}

/// The head page (the newest ready videos before now), anonymous, tagged with `generation`.
fn build_head(
    env: &Env<'_>,
    generation: &str,
    links: &dyn MediaLinks,
    urls: &Urls,
) -> Result<HeadPage, SqlError> {
    let rows = videos::feed_rows(env.sql, env.now_ms)?;
    Ok(HeadPage {
        generation: generation.to_owned(),
        built_ms: env.now_ms,
        newest: rows.first().map(|r| r.created_at),
        oldest: rows.last().map(|r| r.created_at),
        videos: videos::render(env.sql, &rows, None, links, urls)?,
    })
}
