//! Likes: `favorite/action` and `favorite/list`, and the SQL for the `favorites` table.
//!
//! A like is one `favorites` row (UNIQUE on user, video) and four counters, all moved in ONE
//! transaction: the row, the video's `favorite_count`, the author's `total_favorited` and the
//! liker's `favorite_count`. The counters move only when the row was actually inserted or
//! deleted (`INSERT OR IGNORE` / `DELETE`, then the engine's own changed-row count), so liking
//! twice counts once, unliking what was not liked changes nothing, and concurrent requests stay
//! exact: the UNIQUE index lets one insert through, and the write lock (SQLite `BEGIN
//! IMMEDIATE`, InnoDB row locks) orders the rest.

use std::collections::HashSet;

use crate::api::{ApiError, Empty};
use crate::auth;
use crate::cache;
use crate::db::{execute_counted, insert_ignore, placeholders, transaction};
use crate::env::Env;
use crate::migrate::with_schema;
use crate::params::Params;
use crate::ports::{Sql, SqlError, Value};
use crate::users;
use crate::videos::{self, MediaLinks, VideoList};

pub const LIKE: i64 = 1;
pub const UNLIKE: i64 = 2;

/// Which of `video_ids` `user_id` liked, in one query (an index range on `favorites_user_video`).
pub fn liked_among(
    sql: &dyn Sql,
    user_id: i64,
    video_ids: &[i64],
) -> Result<HashSet<i64>, SqlError> {
    if video_ids.is_empty() {
        return Ok(HashSet::new());
    }
    let statement = format!(
        "SELECT video_id FROM favorites WHERE user_id = ? AND video_id IN ({})",
        placeholders(video_ids.len())
    );
    let params: Vec<Value> = std::iter::once(Value::Int(user_id))
        .chain(video_ids.iter().copied().map(Value::Int))
        .collect();
    sql.query(&statement, &params)?
        .iter()
        .map(|row| row.i64(0))
        .collect()
}

/// `favorite/action`: token required, `video_id`, `action_type` 1 (like) or 2 (unlike).
/// Idempotent; an unknown video is [`crate::api::NOT_FOUND`] and changes nothing.
pub fn favorite_action(env: &Env<'_>, params: &Params) -> Result<Empty, ApiError> {
    let me = auth::verified_token_user(env, params)?;
    let video_id = params.required_id("video_id")?;
    let action = params.required_choice("action_type", &[LIKE, UNLIKE])?;
    let changed = with_schema(env.sql, || {
        if !users::exists(env.sql, me)? {
            return Err(ApiError::invalid_token());
        }
        transaction(env.sql, |tx| {
            set_like(tx, me, video_id, action == LIKE, env.now_ms)
        })
    })?;
    if changed {
        cache::feed_changed(env.kv, env.now_ms);
    }
    Ok(Empty {})
}

/// The transaction body of a like (`liked`) or unlike: returns whether anything changed.
fn set_like(
    tx: &dyn Sql,
    user_id: i64,
    video_id: i64,
    liked: bool,
    now_ms: i64,
) -> Result<bool, ApiError> {
    let author_id = videos::author_of(tx, video_id)?
        .ok_or_else(|| ApiError::not_found(format!("video {video_id} not found")))?;
    let rows = if liked {
        let statement = format!(
            "{} INTO favorites (user_id, video_id, created_at) VALUES (?, ?, ?)",
            insert_ignore(tx.dialect())
        );
        execute_counted(
            tx,
            &statement,
            &[user_id.into(), video_id.into(), now_ms.into()],
        )?
    } else {
        execute_counted(
            tx,
            "DELETE FROM favorites WHERE user_id = ? AND video_id = ?",
            &[user_id.into(), video_id.into()],
        )?
    };
    if rows == 0 {
        return Ok(false);
    }
    let delta: i64 = if liked { 1 } else { -1 };
    tx.execute(
        "UPDATE videos SET favorite_count = favorite_count + ? WHERE id = ?",
        &[delta.into(), video_id.into()],
    )?;
    // The author and the liker in one statement (they may be the same user).
    tx.execute(
        "UPDATE users SET \
           total_favorited = total_favorited + CASE WHEN id = ? THEN ? ELSE 0 END, \
           favorite_count = favorite_count + CASE WHEN id = ? THEN ? ELSE 0 END \
         WHERE id IN (?, ?)",
        &[
            author_id.into(),
            delta.into(),
            user_id.into(),
            delta.into(),
            author_id.into(),
            user_id.into(),
        ],
    )?;
    Ok(true)
}

/// `favorite/list`: the videos `user_id` liked, newest-liked first, rendered for the (optional)
/// viewer. `user_id` absent or 0 means the viewer. An unknown user is not found.
///
/// Statements: one (likes joined to videos) + one users + for a viewer one follows and one
/// favorites; plus one existence check only when the list is empty.
pub fn favorite_list(
    env: &Env<'_>,
    params: &Params,
    links: &dyn MediaLinks,
) -> Result<VideoList, ApiError> {
    let viewer = auth::viewer(env, params);
    let user_id = params
        .optional_id("user_id")?
        .or(viewer)
        .ok_or_else(|| ApiError::bad_parameter("missing parameter `user_id`"))?;
    let urls = env.urls();
    let video_list = with_schema(env.sql, || {
        let rows = videos::liked_by(env.sql, user_id)?;
        if rows.is_empty() && !users::exists(env.sql, user_id)? {
            return Err(ApiError::not_found(format!("user {user_id} not found")));
        }
        videos::render(env.sql, &rows, viewer, links, &urls).map_err(ApiError::from)
    })?;
    Ok(VideoList { video_list })
}
