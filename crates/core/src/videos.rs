//! SQL for the `videos` table, the batch renderer every video list uses, and [`MediaLinks`], the
//! one place a stored video becomes URLs.
//!
//! A video is `processing` from publish until its cover job calls [`mark_ready`], then `ready`.
//! The feed shows only ready videos; the author's publish list shows both (the client lists a
//! video right after publishing it, with a placeholder cover under the same stable URL).
//!
//! `work_count` counts a video from the moment it is published (in [`create_processing`]'s
//! transaction), not from when it is ready: the publish list, which the client shows next to
//! that count, lists processing videos too, so counting at publish keeps the two consistent.

use std::collections::{HashMap, HashSet};

use serde::Serialize;

use crate::api::Payload;
use crate::db::{execute_counted, insert, placeholders};
use crate::favorites;
use crate::follows;
use crate::jobs::{self, CoverJob};
use crate::json::Object;
use crate::model::Video;
use crate::ports::{Row, Sql, SqlError, Value};
use crate::urls::Urls;
use crate::users;

/// The feed's page size (API.md: at most 30).
pub const FEED_PAGE: usize = 30;
/// The most videos a publish list or favorite list returns (the API has no paging there).
pub const LIST_LIMIT: usize = 500;

pub const PROCESSING: &str = "processing";
pub const READY: &str = "ready";

/// How stored videos become URLs the client can fetch. Every video URL the core renders goes
/// through the implementation the caller passes in, so the blob layer decides (the default,
/// [`Urls`], serves everything through this app's `media` component; an object-store layer may
/// hand out presigned URLs instead).
pub trait MediaLinks {
    /// Where the client plays the video stored under `play_key`.
    fn play_url(&self, video_id: i64, play_key: &str) -> String;

    /// The video's cover. Must be **stable**: the same URL from publish on, serving a placeholder
    /// while the video is processing and the real cover once it is ready (the client caches the
    /// list it got right after publishing).
    fn cover_url(&self, video_id: i64) -> String;

    /// A string that changes whenever the URLs this produces would change (the public base, a
    /// presigning window...). Rendered videos are cached per scope (`crate::cache`), so a cached
    /// page never hands out URLs of another host or expired signatures. Implementations with
    /// expiring URLs must rotate it well before the URLs expire.
    fn cache_scope(&self) -> String;
}

/// The default: `{public_base}/media/{play_key}` and `{public_base}/media/cover/{id}.jpg`; the
/// `media` component answers the cover URL with the stored cover, or a placeholder until then.
impl MediaLinks for Urls {
    fn play_url(&self, _video_id: i64, play_key: &str) -> String {
        self.media(play_key)
    }

    fn cover_url(&self, video_id: i64) -> String {
        format!("{}/media/cover/{video_id}.jpg", self.public_base)
    }

    fn cache_scope(&self) -> String {
        format!("media:{}", self.public_base)
    }
}

/// `video_list`: publish list and favorite list. Present (`[]`) on failure too.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct VideoList {
    pub video_list: Vec<Video>,
}

impl Payload for VideoList {
    fn failed() -> Self {
        VideoList {
            video_list: Vec::new(),
        }
    }

    fn write_fields(&self, reply: &mut Object<'_>) -> serde_json::Result<()> {
        reply.value("video_list", self.video_list.as_slice());
        Ok(())
    }
}

/// One `videos` row, as the renderers need it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VideoRow {
    pub id: i64,
    pub author_id: i64,
    pub title: String,
    pub state: String,
    pub play_key: String,
    pub cover_key: Option<String>,
    pub favorite_count: i64,
    pub comment_count: i64,
    pub created_at: i64,
}

/// The columns [`VideoRow`] reads, prefixed with a table alias (`v.` or empty).
fn columns(alias: &str) -> String {
    [
        "id",
        "author_id",
        "title",
        "state",
        "play_key",
        "cover_key",
        "favorite_count",
        "comment_count",
        "created_at",
    ]
    .iter()
    .map(|c| format!("{alias}{c}"))
    .collect::<Vec<_>>()
    .join(", ")
}

fn row_from(row: &Row<'_>) -> Result<VideoRow, SqlError> {
    Ok(VideoRow {
        id: row.i64(0)?,
        author_id: row.i64(1)?,
        title: row.text(2)?.to_owned(),
        state: row.text(3)?.to_owned(),
        play_key: row.text(4)?.to_owned(),
        cover_key: row.opt_text(5)?.map(str::to_owned),
        favorite_count: row.i64(6)?,
        comment_count: row.i64(7)?,
        created_at: row.i64(8)?,
    })
}

fn rows_from(sql: &dyn Sql, statement: &str, params: &[Value]) -> Result<Vec<VideoRow>, SqlError> {
    sql.query(statement, params)?
        .iter()
        .map(|r| row_from(&r))
        .collect()
}

/// Renders rows as wire videos, in order: ONE users query for the authors (plus one follows
/// query for a viewer, inside [`users::load_many`]) and ONE favorites query for the viewer's
/// likes among them. Rows whose author no longer exists are dropped.
pub fn render(
    sql: &dyn Sql,
    rows: &[VideoRow],
    viewer: Option<i64>,
    links: &dyn MediaLinks,
    urls: &Urls,
) -> Result<Vec<Video>, SqlError> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let author_ids: Vec<i64> = rows.iter().map(|r| r.author_id).collect();
    let authors = users::load_many(sql, &author_ids, viewer, urls)?;
    let liked = match viewer {
        Some(viewer) => {
            let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
            favorites::liked_among(sql, viewer, &ids)?
        }
        None => HashSet::new(),
    };
    Ok(rows
        .iter()
        .filter_map(|row| {
            let author = authors.get(&row.author_id)?.clone();
            Some(Video {
                id: row.id,
                author,
                play_url: links.play_url(row.id, &row.play_key),
                cover_url: links.cover_url(row.id),
                favorite_count: row.favorite_count,
                comment_count: row.comment_count,
                is_favorite: liked.contains(&row.id),
                title: row.title.clone(),
            })
        })
        .collect())
}

/// Sets the viewer-relative flags (`is_favorite`, `author.is_follow`) on videos rendered for
/// someone else (an anonymous cached page): one favorites query and at most one follows query,
/// whatever the number of videos. `None` clears them.
pub fn apply_viewer(
    sql: &dyn Sql,
    videos: &mut [Video],
    viewer: Option<i64>,
) -> Result<(), SqlError> {
    let (liked, followed) = match viewer {
        Some(viewer) if !videos.is_empty() => {
            let ids: Vec<i64> = videos.iter().map(|v| v.id).collect();
            let mut authors: Vec<i64> = videos
                .iter()
                .map(|v| v.author.id)
                .filter(|&a| a != viewer)
                .collect();
            authors.sort_unstable();
            authors.dedup();
            (
                favorites::liked_among(sql, viewer, &ids)?,
                follows::followed_among(sql, viewer, &authors)?,
            )
        }
        _ => Default::default(),
    };
    for video in videos {
        video.is_favorite = liked.contains(&video.id);
        video.author.is_follow = followed.contains(&video.author.id);
    }
    Ok(())
}

/// The videos among `ids` that exist (any state), rendered for `viewer`: a constant number of
/// statements (videos, users, follows for a viewer, favorites for a viewer).
pub fn load_many(
    sql: &dyn Sql,
    ids: &[i64],
    viewer: Option<i64>,
    links: &dyn MediaLinks,
    urls: &Urls,
) -> Result<HashMap<i64, Video>, SqlError> {
    let mut ids = ids.to_vec();
    ids.sort_unstable();
    ids.dedup();
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let statement = format!(
        "SELECT {} FROM videos WHERE id IN ({})",
        columns(""),
        placeholders(ids.len())
    );
    let params: Vec<Value> = ids.iter().copied().map(Value::Int).collect();
    let rows = rows_from(sql, &statement, &params)?;
    Ok(render(sql, &rows, viewer, links, urls)?
        .into_iter()
        .map(|v| (v.id, v))
        .collect())
}

/// One feed page: ready videos published strictly before `before` (epoch ms), newest first, at
/// most [`FEED_PAGE`]. One statement.
///
/// Paging is by time only (`next_time` = the oldest's `created_at`), so a page must never end in
/// the middle of a group of videos sharing one millisecond: the next page (`created_at <
/// next_time`) would skip the rest of the group. The query reads one row more than a page; if
/// that row ties with the page's last, the whole tied group is left for the next page (unless
/// the group fills the page by itself, which only a bulk import could produce).
pub fn feed_rows(sql: &dyn Sql, before: i64) -> Result<Vec<VideoRow>, SqlError> {
    let statement = format!(
        "SELECT {} FROM videos WHERE state = 'ready' AND created_at < ? \
         ORDER BY created_at DESC, id DESC LIMIT ?",
        columns("")
    );
    let mut rows = rows_from(
        sql,
        &statement,
        &[before.into(), Value::Int(FEED_PAGE as i64 + 1)],
    )?;
    if rows.len() > FEED_PAGE {
        let boundary = rows[FEED_PAGE - 1].created_at;
        let tied = rows[FEED_PAGE].created_at == boundary;
        rows.truncate(FEED_PAGE);
        if tied {
            let kept = rows.iter().take_while(|r| r.created_at != boundary).count();
            if kept > 0 {
                rows.truncate(kept);
            }
        }
    }
    Ok(rows)
}

/// The author's videos, newest first, processing ones included, at most [`LIST_LIMIT`].
pub fn by_author(sql: &dyn Sql, author_id: i64) -> Result<Vec<VideoRow>, SqlError> {
    let statement = format!(
        "SELECT {} FROM videos WHERE author_id = ? ORDER BY created_at DESC, id DESC LIMIT ?",
        columns("")
    );
    rows_from(
        sql,
        &statement,
        &[author_id.into(), Value::Int(LIST_LIMIT as i64)],
    )
}

/// The videos `user_id` liked, newest-liked first, at most [`LIST_LIMIT`]. One statement.
pub fn liked_by(sql: &dyn Sql, user_id: i64) -> Result<Vec<VideoRow>, SqlError> {
    let statement = format!(
        "SELECT {} FROM favorites f JOIN videos v ON v.id = f.video_id \
         WHERE f.user_id = ? ORDER BY f.created_at DESC, f.id DESC LIMIT ?",
        columns("v.")
    );
    rows_from(
        sql,
        &statement,
        &[user_id.into(), Value::Int(LIST_LIMIT as i64)],
    )
}

/// A video's author, `None` if the video does not exist.
pub fn author_of(sql: &dyn Sql, video_id: i64) -> Result<Option<i64>, SqlError> {
    sql.query(
        "SELECT author_id FROM videos WHERE id = ?",
        &[video_id.into()],
    )?
    .first()
    .map(|r| r.i64(0))
    .transpose()
}

/// What the media component needs to serve a video and its stable cover URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredMedia {
    pub state: String,
    pub play_key: String,
    pub content_type: String,
    pub size_bytes: i64,
    /// `None` while processing: serve a placeholder under the cover URL.
    pub cover_key: Option<String>,
}

pub fn stored_media(sql: &dyn Sql, video_id: i64) -> Result<Option<StoredMedia>, SqlError> {
    let rows = sql.query(
        "SELECT state, play_key, content_type, size_bytes, cover_key FROM videos WHERE id = ?",
        &[video_id.into()],
    )?;
    rows.first()
        .map(|r| {
            Ok(StoredMedia {
                state: r.text(0)?.to_owned(),
                play_key: r.text(1)?.to_owned(),
                content_type: r.text(2)?.to_owned(),
                size_bytes: r.i64(3)?,
                cover_key: r.opt_text(4)?.map(str::to_owned),
            })
        })
        .transpose()
}

/// What [`create_processing`] created.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Created {
    pub video_id: i64,
    /// The [`jobs::COVER`] job that will make the cover and mark the video ready.
    pub job_id: i64,
}

/// Records a stored upload: the video row (`processing`), its cover job, and the author's
/// `work_count + 1`. Call it inside a transaction ([`crate::db::transaction`]): the three
/// commit together or not at all.
pub fn create_processing(
    tx: &dyn Sql,
    author_id: i64,
    title: &str,
    play_key: &str,
    content_type: &str,
    size_bytes: i64,
    now_ms: i64,
) -> Result<Created, SqlError> {
    let video_id = insert(
        tx,
        "INSERT INTO videos (author_id, title, state, play_key, content_type, size_bytes, created_at) \
         VALUES (?, ?, 'processing', ?, ?, ?, ?)",
        &[
            author_id.into(),
            title.into(),
            play_key.into(),
            content_type.into(),
            size_bytes.into(),
            now_ms.into(),
        ],
    )?;
    let payload = serde_json::to_string(&CoverJob {
        video_id,
        play_key: play_key.to_owned(),
    })
    .map_err(|e| SqlError::Other(format!("cover job payload: {e}")))?;
    let job_id = jobs::enqueue(tx, jobs::COVER, &payload, now_ms)?;
    tx.execute(
        "UPDATE users SET work_count = work_count + 1 WHERE id = ?",
        &[author_id.into()],
    )?;
    Ok(Created { video_id, job_id })
}

/// The cover exists: the video becomes `ready` (visible in the feed) with `cover_key`.
/// Idempotent; returns whether the video exists. Callers that serve a cached feed must also call
/// [`crate::cache::feed_changed`] (or use [`crate::publish::cover_ready`], which does both).
pub fn mark_ready(sql: &dyn Sql, video_id: i64, cover_key: &str) -> Result<bool, SqlError> {
    // MySQL counts changed rows, not matched ones: a repeated call changes nothing, so ask
    // whether the row exists instead of trusting the count.
    let changed = execute_counted(
        sql,
        "UPDATE videos SET state = 'ready', cover_key = ? WHERE id = ?",
        &[cover_key.into(), video_id.into()],
    )?;
    Ok(changed > 0 || author_of(sql, video_id)?.is_some())
}
