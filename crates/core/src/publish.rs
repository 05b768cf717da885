//! `publish/action` (the parts that are not I/O) and `publish/list`.
//!
//! The component owns the upload: it authenticates, parses the title with
//! [`PublishRequest::parse`] (before reading the file where the multipart order allows), streams
//! the `data` part into the blob store while sniffing it (MP4/MOV by content, size limit), then
//! calls [`record`] with what it stored. [`record`] writes the video (`processing`), its cover job
//! and the author's `work_count` in one transaction and returns the job id, which the component
//! hands to the worker (or runs inline); the worker calls [`cover_ready`] when the cover exists.
//! The error constructors below give every failure of that flow its 3xxx code and message.
//!
//! Title rules: surrounding whitespace is trimmed (and the trimmed title is what is stored);
//! what remains must be 1–[`TITLE_MAX_CHARS`] characters, counted as Unicode scalar values
//! (a CJK character or an emoji counts one), with no control characters (a title is one line;
//! a newline is refused rather than silently rewritten).

use crate::api::{self, ApiError};
use crate::auth;
use crate::cache;
use crate::db::transaction;
use crate::env::Env;
use crate::migrate::with_schema;
use crate::params::Params;
use crate::ports::Sql;
use crate::users;
use crate::videos::{self, Created, MediaLinks, VideoList};

pub const TITLE_MAX_CHARS: usize = 100;

/// The non-file fields of a publish request, validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublishRequest {
    /// Trimmed.
    pub title: String,
}

impl PublishRequest {
    pub fn parse(params: &Params) -> Result<Self, ApiError> {
        let title = params.get("title").unwrap_or("").trim();
        if title.is_empty() {
            return Err(ApiError::new(
                api::TITLE_MISSING,
                "please give the video a title",
            ));
        }
        let chars = title.chars().count();
        if chars > TITLE_MAX_CHARS {
            return Err(ApiError::new(
                api::TITLE_TOO_LONG,
                format!("the title must be at most {TITLE_MAX_CHARS} characters, got {chars}"),
            ));
        }
        if title.chars().any(char::is_control) {
            return Err(ApiError::bad_parameter(
                "the title must be a single line without control characters",
            ));
        }
        Ok(PublishRequest {
            title: title.to_owned(),
        })
    }
}

/// No `data` file part in the request.
pub fn video_missing() -> ApiError {
    ApiError::new(
        api::VIDEO_MISSING,
        "please attach the video as the `data` file",
    )
}

pub fn video_empty() -> ApiError {
    ApiError::new(api::VIDEO_EMPTY, "the video file is empty")
}

/// Not an MP4/MOV by its content; `detail` (e.g. "no ftyp box") is appended for the user.
pub fn not_a_video(detail: &str) -> ApiError {
    let msg = if detail.is_empty() {
        "the file is not an MP4 or MOV video".to_owned()
    } else {
        format!("the file is not an MP4 or MOV video: {detail}")
    };
    ApiError::new(api::NOT_A_VIDEO, msg)
}

pub fn video_truncated() -> ApiError {
    ApiError::new(
        api::VIDEO_TRUNCATED,
        "the video file is incomplete (cut short during upload?), please send it again",
    )
}

/// Over the configured size; the message states the limit in MB (rounded down, at least 1).
pub fn video_too_large(limit_bytes: u64) -> ApiError {
    let mb = (limit_bytes / (1024 * 1024)).max(1);
    ApiError::new(
        api::VIDEO_TOO_LARGE,
        format!("the video is too large: the limit is {mb} MB"),
    )
}

/// The blob store failed; the detail goes to the log only.
pub fn storage_failed(detail: impl std::fmt::Display) -> ApiError {
    eprintln!("tikspin: storing a video failed: {detail}");
    ApiError::new(
        api::STORAGE_FAILED,
        "the video could not be stored, please try again later",
    )
}

/// What the component stored for the upload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredVideo {
    /// The object key the blob layer chose (never derived from the client's filename).
    pub play_key: String,
    /// As sniffed (`video/mp4`, `video/quicktime`), not as the client claimed.
    pub content_type: String,
    pub size_bytes: i64,
}

/// Records a stored upload for `author_id` (already authenticated by the component): the video
/// (`processing`), its cover job and `work_count + 1`, in one transaction. Bumps the feed cache
/// generation (the author's `work_count` may be on a cached page).
pub fn record(
    env: &Env<'_>,
    author_id: i64,
    request: &PublishRequest,
    stored: &StoredVideo,
) -> Result<Created, ApiError> {
    let created = with_schema(env.sql, || {
        if !users::exists(env.sql, author_id)? {
            return Err(ApiError::invalid_token());
        }
        transaction(env.sql, |tx| {
            create_processing(tx, env, author_id, request, stored)
        })
    })?;
    cache::feed_changed(env.kv, env.now_ms);
    Ok(created)
}

/// The video row (processing) and its cover job, inside the caller's transaction.
fn create_processing(
    tx: &dyn Sql,
    env: &Env<'_>,
    author_id: i64,
    request: &PublishRequest,
    stored: &StoredVideo,
) -> Result<Created, ApiError> {
    videos::create_processing(
        tx,
        author_id,
        &request.title,
        &stored.play_key,
        &stored.content_type,
        stored.size_bytes,
        env.now_ms,
    )
    .map_err(ApiError::from)
}

/// [`record`] for an author who must have exactly one video, the system user's welcome video:
/// records it unless the author has a video already, with the author's row locked
/// ([`users::lock`]) between the check and the insert, so of concurrent callers exactly one
/// records. `None`: another caller (or an earlier seed) recorded it, and the caller's stored
/// upload is not used. The author must exist.
pub fn record_first(
    env: &Env<'_>,
    author_id: i64,
    request: &PublishRequest,
    stored: &StoredVideo,
) -> Result<Option<Created>, ApiError> {
    let created = with_schema(env.sql, || {
        transaction(env.sql, |tx| {
            if !users::lock(tx, author_id)? {
                return Err(ApiError::internal_because(format!(
                    "user {author_id} does not exist"
                )));
            }
            if !videos::by_author(tx, author_id)?.is_empty() {
                return Ok(None);
            }
            create_processing(tx, env, author_id, request, stored).map(Some)
        })
    })?;
    if created.is_some() {
        cache::feed_changed(env.kv, env.now_ms);
    }
    Ok(created)
}

/// The cover job's last step: the video becomes ready with `cover_key`, and the feed cache is
/// invalidated so the next feed request shows it. Returns whether the video exists.
pub fn cover_ready(env: &Env<'_>, video_id: i64, cover_key: &str) -> Result<bool, ApiError> {
    let found = with_schema(env.sql, || {
        videos::mark_ready(env.sql, video_id, cover_key).map_err(ApiError::from)
    })?;
    if found {
        cache::feed_changed(env.kv, env.now_ms);
    }
    Ok(found)
}

/// `publish/list`: the author's videos, newest first, processing ones included (their cover URL
/// serves a placeholder until the cover exists). `user_id` absent or 0 means the viewer; an
/// unknown user is not found. Token optional (flags for the viewer).
///
/// Statements: one videos query and one users query (the author), plus for a viewer one follows
/// and one favorites query; an author with no videos costs one existence check instead.
pub fn publish_list(
    env: &Env<'_>,
    params: &Params,
    links: &dyn MediaLinks,
) -> Result<VideoList, ApiError> {
    let viewer = auth::viewer(env, params);
    let author_id = params
        .optional_id("user_id")?
        .or(viewer)
        .ok_or_else(|| ApiError::bad_parameter("missing parameter `user_id`"))?;
    let urls = env.urls();
    let video_list = with_schema(env.sql, || {
        let rows = videos::by_author(env.sql, author_id)?;
        if rows.is_empty() {
            return if users::exists(env.sql, author_id)? {
                Ok(Vec::new())
            } else {
                Err(ApiError::not_found(format!("user {author_id} not found")))
            };
        }
        videos::render(env.sql, &rows, viewer, links, &urls).map_err(ApiError::from)
    })?;
    Ok(VideoList { video_list })
}
