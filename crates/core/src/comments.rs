//! Comments: `comment/action` (add, delete) and `comment/list`, and the SQL for `comments`.
//!
//! - Add: token required, `video_id`, `comment_text`. The text is stored and returned exactly as
//!   sent (emoji, CJK, quotes and SQL-looking text round-trip unchanged; it only ever travels as
//!   a bound parameter). It must contain something besides whitespace and be at most
//!   [`COMMENT_MAX_CHARS`] characters, counted as Unicode scalar values over the text as stored.
//! - Delete: token required, `comment_id` (and `video_id`, which when sent must be the comment's
//!   video). Allowed to the comment's author and to the video's author; anyone else is
//!   forbidden. Deleting a comment that does not exist (or no longer does) is not found.
//! - The video's `comment_count` moves in the same transaction as the row, and only when a row
//!   was inserted or deleted, so it stays exact under concurrent adds and deletes.
//! - `create_date` is `"MM-DD"` in the deployment's zone (`Config::tz_offset_minutes`).
//!
//! Every refusal happens before any write: a failed request changes no row and no counter.

use std::collections::HashMap;

use serde::Serialize;

use crate::api::{self, ApiError, Payload};
use crate::auth;
use crate::cache;
use crate::db::{execute_counted, insert, transaction};
use crate::env::Env;
use crate::json::Object;
use crate::migrate::with_schema;
use crate::model::{Comment, User};
use crate::params::Params;
use crate::ports::{Sql, Value};
use crate::time::format_mm_dd;
use crate::users;
use crate::videos;

pub const COMMENT_MAX_CHARS: usize = 500;
/// The most comments a list returns (the API has no paging here), newest first.
pub const LIST_LIMIT: usize = 500;

pub const ADD: i64 = 1;
pub const DELETE: i64 = 2;

/// `comment/action`'s fields: the created comment on add, nothing on delete or failure.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CommentAction {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comment: Option<Comment>,
}

impl Payload for CommentAction {
    fn failed() -> Self {
        CommentAction { comment: None }
    }
}

/// `comment/list`'s fields: `comment_list`, `[]` on failure too.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CommentList {
    pub comment_list: Vec<Comment>,
}

impl Payload for CommentList {
    fn failed() -> Self {
        CommentList {
            comment_list: Vec::new(),
        }
    }

    fn write_fields(&self, reply: &mut Object<'_>) -> serde_json::Result<()> {
        reply.value("comment_list", self.comment_list.as_slice());
        Ok(())
    }
}

/// Checks `comment_text` (see the module doc) and returns it unchanged.
pub fn check_text(params: &Params) -> Result<&str, ApiError> {
    let Some(text) = params.get("comment_text") else {
        return Err(ApiError::new(
            api::COMMENT_EMPTY,
            "missing parameter `comment_text`: the comment is empty",
        ));
    };
    if text.trim().is_empty() {
        return Err(ApiError::new(
            api::COMMENT_EMPTY,
            "the comment is empty: write something besides spaces",
        ));
    }
    let chars = text.chars().count();
    if chars > COMMENT_MAX_CHARS {
        return Err(ApiError::new(
            api::COMMENT_TOO_LONG,
            format!("the comment must be at most {COMMENT_MAX_CHARS} characters, got {chars}"),
        ));
    }
    Ok(text)
}

pub fn comment_action(env: &Env<'_>, params: &Params) -> Result<CommentAction, ApiError> {
    let me = auth::verified_token_user(env, params)?;
    match params.required_choice("action_type", &[ADD, DELETE])? {
        ADD => add(env, params, me).map(|comment| CommentAction {
            comment: Some(comment),
        }),
        _ => delete(env, params, me).map(|()| CommentAction { comment: None }),
    }
}

fn add(env: &Env<'_>, params: &Params, me: i64) -> Result<Comment, ApiError> {
    let video_id = params.required_id("video_id")?;
    let text = check_text(params)?;
    let urls = env.urls();
    let (id, user) = with_schema(env.sql, || {
        let user =
            users::load_one(env.sql, me, Some(me), &urls)?.ok_or_else(ApiError::invalid_token)?;
        let id = transaction(env.sql, |tx| {
            if videos::author_of(tx, video_id)?.is_none() {
                return Err(ApiError::not_found(format!("video {video_id} not found")));
            }
            let id = insert(
                tx,
                "INSERT INTO comments (video_id, user_id, content, created_at) VALUES (?, ?, ?, ?)",
                &[video_id.into(), me.into(), text.into(), env.now_ms.into()],
            )?;
            tx.execute(
                "UPDATE videos SET comment_count = comment_count + 1 WHERE id = ?",
                &[video_id.into()],
            )?;
            Ok(id)
        })?;
        Ok::<_, ApiError>((id, user))
    })?;
    cache::feed_changed(env.kv, env.now_ms);
    Ok(Comment {
        id,
        user,
        content: text.to_owned(),
        create_date: format_mm_dd(env.now_ms, env.config.tz_offset_minutes),
    })
}

fn delete(env: &Env<'_>, params: &Params, me: i64) -> Result<(), ApiError> {
    let comment_id = params.required_id("comment_id")?;
    let video_param = params.optional_id("video_id")?;
    with_schema(env.sql, || {
        if !users::exists(env.sql, me)? {
            return Err(ApiError::invalid_token());
        }
        transaction(env.sql, |tx| delete_in(tx, me, comment_id, video_param))
    })?;
    cache::feed_changed(env.kv, env.now_ms);
    Ok(())
}

fn delete_in(
    tx: &dyn Sql,
    me: i64,
    comment_id: i64,
    video_param: Option<i64>,
) -> Result<(), ApiError> {
    let not_found = || ApiError::not_found(format!("comment {comment_id} not found"));
    let rows = tx.query(
        "SELECT c.user_id, c.video_id, v.author_id FROM comments c \
         JOIN videos v ON v.id = c.video_id WHERE c.id = ?",
        &[comment_id.into()],
    )?;
    let row = rows.first().ok_or_else(not_found)?;
    let (commenter, video_id, author) = (row.i64(0)?, row.i64(1)?, row.i64(2)?);
    if video_param.is_some_and(|v| v != video_id) {
        return Err(ApiError::not_found(format!(
            "comment {comment_id} is not on video {}",
            video_param.unwrap_or_default()
        )));
    }
    if me != commenter && me != author {
        return Err(ApiError::forbidden(
            "only the comment's author or the video's author may delete it",
        ));
    }
    let deleted = execute_counted(
        tx,
        "DELETE FROM comments WHERE id = ?",
        &[comment_id.into()],
    )?;
    if deleted == 0 {
        return Err(not_found());
    }
    tx.execute(
        "UPDATE videos SET comment_count = comment_count - 1 WHERE id = ?",
        &[video_id.into()],
    )?;
    Ok(())
}

/// `comment/list`: the video's comments, newest first, commenters rendered for the (optional)
/// viewer. An unknown video is not found.
///
/// Statements, whatever the number of comments: one comments query, one users query for the
/// commenters, one follows query for a viewer; a video without comments costs one existence
/// check instead of the users query.
pub fn comment_list(env: &Env<'_>, params: &Params) -> Result<CommentList, ApiError> {
    let viewer = auth::viewer(env, params);
    let video_id = params.required_id("video_id")?;
    let urls = env.urls();
    let tz = env.config.tz_offset_minutes;
    let comment_list = with_schema(env.sql, || {
        let rows = env.sql.query(
            "SELECT id, user_id, content, created_at FROM comments WHERE video_id = ? \
             ORDER BY created_at DESC, id DESC LIMIT ?",
            &[video_id.into(), Value::Int(LIST_LIMIT as i64)],
        )?;
        if rows.is_empty() {
            return if videos::author_of(env.sql, video_id)?.is_some() {
                Ok(Vec::new())
            } else {
                Err(ApiError::not_found(format!("video {video_id} not found")))
            };
        }
        let user_ids = rows
            .iter()
            .map(|r| r.i64(1))
            .collect::<Result<Vec<_>, _>>()?;
        let commenters: HashMap<i64, User> = users::load_many(env.sql, &user_ids, viewer, &urls)?;
        let mut list = Vec::with_capacity(rows.len());
        for row in rows.iter() {
            let Some(user) = commenters.get(&row.i64(1)?) else {
                continue; // the commenter's account is gone
            };
            list.push(Comment {
                id: row.i64(0)?,
                user: user.clone(),
                content: row.text(2)?.to_owned(),
                create_date: format_mm_dd(row.i64(3)?, tz),
            });
        }
        Ok::<_, ApiError>(list)
    })?;
    Ok(CommentList { comment_list })
}
