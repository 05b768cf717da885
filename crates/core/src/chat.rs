//! The `message` route group: send a message, read a conversation.
//!
//! The client polls message/chat about once a second and never de-duplicates, so the read is
//! built around one rule: **`create_time` is a per-conversation cursor.** The sender stamps
//! `max(now, latest + 1)` ms inside a transaction that serializes the conversation's senders
//! (SQLite: `BEGIN IMMEDIATE`; MySQL: the two users' rows locked first, see
//! [`messages::lock_users`]), so stamps are strictly increasing and commit in order. A poll for
//! `create_time > pre_msg_time` therefore never skips a message and never repeats one. Two
//! messages sent in the same millisecond are both kept, one ms apart, in the order they were
//! sent.
//!
//! Decisions (for the API notes):
//! - `pre_msg_time` absent, empty or 0: the whole conversation, both directions, oldest first
//!   (capped at the newest [`CHAT_LIMIT`] messages). `> 0`: only messages *from the peer to the
//!   viewer* with `create_time` strictly greater, oldest first, at most [`CHAT_LIMIT`] (the next
//!   poll continues from the last one). A value below 10^12 is read as seconds.
//! - `pre_msg_time` that is not an integer, is negative, or lies more than
//!   [`MAX_AHEAD_MS`] (5 minutes) past the server's clock is refused with [`BAD_PRE_MSG_TIME`].
//!   A little ahead is accepted: stamps run ahead of the clock during bursts (`latest + 1`), and
//!   servers' clocks differ a little.
//! - Friendship is not required to send. The recipient must exist and not be the sender; content
//!   is 1–1000 characters (Unicode scalar values, not bytes) and not only whitespace; it is
//!   stored as sent.
//! - message/chat checks the token's signature and expiry only (no user lookup: it is the hottest
//!   call); an unknown `to_user_id` is refused ([`MESSAGE_PEER_NOT_FOUND`]) at no extra cost.
//!   message/action refuses a token whose user no longer exists.
//!
//! SQL statements per request:
//! | endpoint | statements |
//! |---|---|
//! | message/action | 6: BEGIN, users (locked on MySQL), latest create_time, INSERT, the pair's follow rows' `last_message_id`, COMMIT (and `PRAGMA synchronous` on SQLite) |
//! | message/chat | exactly 1, empty or not, poll or full history |

use serde::Serialize;

use crate::api::{
    ApiError, Empty, Payload, BAD_MESSAGE_ACTION, BAD_PRE_MSG_TIME, BUSY, CANNOT_MESSAGE_SELF,
    MESSAGE_EMPTY, MESSAGE_PEER_NOT_FOUND, MESSAGE_TOO_LONG,
};
use crate::auth;
use crate::db::{transaction, StorageError};
use crate::env::Env;
use crate::follows;
use crate::json::Object;
use crate::messages::{self, ChatRead};
use crate::migrate::with_schema;
use crate::model::Message;
use crate::params::Params;
use crate::ports::{Sql, SqlError};
use crate::time::normalize_epoch;

pub const CONTENT_MAX_CHARS: usize = 1000;
/// The most messages one message/chat answer carries.
pub const CHAT_LIMIT: usize = 1000;
/// How far past the server's clock a `pre_msg_time` may lie.
pub const MAX_AHEAD_MS: i64 = 5 * 60 * 1000;
/// Sends re-stamped after a (conversation, create_time) collision before giving up. Collisions
/// need a writer that bypassed the serialization above, so one retry is already generous.
const STAMP_ATTEMPTS: u32 = 3;

pub const ACTION_SEND: i64 = 1;

/// message/chat's fields: `message_list`, `[]` on failure.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct MessageList {
    pub message_list: Vec<Message>,
}

impl Payload for MessageList {
    fn failed() -> Self {
        MessageList::default()
    }

    fn write_fields(&self, reply: &mut Object<'_>) -> serde_json::Result<()> {
        reply.value("message_list", self.message_list.as_slice());
        Ok(())
    }
}

pub fn cannot_message_self() -> ApiError {
    ApiError::new(CANNOT_MESSAGE_SELF, "you cannot send messages to yourself")
}

pub fn peer_not_found(id: i64) -> ApiError {
    ApiError::new(MESSAGE_PEER_NOT_FOUND, format!("user {id} does not exist"))
}

/// POST message/action: `token`, `to_user_id`, `action_type` 1, `content`.
pub fn message_action(env: &Env<'_>, params: &Params) -> Result<Empty, ApiError> {
    let me = auth::verified_token_user(env, params)?;
    let peer = params.required_id("to_user_id")?;
    match params.get("action_type").map(str::trim) {
        Some("1") => {}
        other => {
            return Err(ApiError::new(
                BAD_MESSAGE_ACTION,
                format!(
                    "action_type must be 1 (send), got {}",
                    other.map_or_else(|| "nothing".to_owned(), |v| format!("{v:?}"))
                ),
            ))
        }
    }
    let content = check_content(params.get("content"))?;
    if peer == me {
        return Err(cannot_message_self());
    }
    let mut attempt = 1;
    loop {
        let sent = with_schema(env.sql, || {
            transaction(env.sql, |tx| send_once(tx, me, peer, content, env.now_ms))
        });
        match sent {
            Ok(()) => return Ok(Empty {}),
            Err(SendError::Api(e)) => return Err(e),
            Err(SendError::Taken) if attempt < STAMP_ATTEMPTS => attempt += 1,
            Err(SendError::Taken) => {
                eprintln!("tikspin: message stamp still taken after {attempt} attempts");
                return Err(ApiError::new(BUSY, "the server is busy, please try again"));
            }
        }
    }
}

fn send_once(
    tx: &dyn Sql,
    me: i64,
    peer: i64,
    content: &str,
    now_ms: i64,
) -> Result<(), SendError> {
    let existing = messages::lock_users(tx, me, peer)?;
    if !existing.contains(&me) {
        return Err(SendError::Api(ApiError::invalid_token()));
    }
    if !existing.contains(&peer) {
        return Err(SendError::Api(peer_not_found(peer)));
    }
    let (lo, hi) = messages::conversation(me, peer);
    let latest = messages::latest_create_time(tx, lo, hi)?;
    let create_time = messages::next_create_time(now_ms, latest);
    messages::insert(tx, me, peer, content, create_time)?;
    follows::message_sent(tx, me, peer, create_time)?;
    Ok(())
}

/// A send's failure: an [`ApiError`], or the stamp taken by a concurrent sender (retry).
enum SendError {
    Api(ApiError),
    Taken,
}

impl From<SqlError> for SendError {
    fn from(err: SqlError) -> Self {
        match err {
            SqlError::Unique(_) => SendError::Taken,
            other => SendError::Api(other.into()),
        }
    }
}

impl StorageError for SendError {
    fn is_busy(&self) -> bool {
        matches!(self, SendError::Api(e) if e.is_busy())
    }
    fn is_missing_schema(&self) -> bool {
        matches!(self, SendError::Api(e) if e.is_missing_schema())
    }
}

/// 1–[`CONTENT_MAX_CHARS`] characters, not only whitespace.
pub fn check_content(raw: Option<&str>) -> Result<&str, ApiError> {
    let content = raw.unwrap_or("");
    if content.trim().is_empty() {
        return Err(ApiError::new(
            MESSAGE_EMPTY,
            "message content is empty: write something first",
        ));
    }
    let chars = content.chars().count();
    if chars > CONTENT_MAX_CHARS {
        return Err(ApiError::new(
            MESSAGE_TOO_LONG,
            format!("message content must be at most {CONTENT_MAX_CHARS} characters, got {chars}"),
        ));
    }
    Ok(content)
}

/// GET message/chat: `token`, `to_user_id`, `pre_msg_time`. See the module doc for the rules.
pub fn message_chat(env: &Env<'_>, params: &Params) -> Result<MessageList, ApiError> {
    let me = auth::verified_token_user(env, params)?;
    let peer = params.required_id("to_user_id")?;
    if peer == me {
        return Err(cannot_message_self());
    }
    let read = parse_pre_msg_time(params.get("pre_msg_time"), env.now_ms)?;
    let found = with_schema(env.sql, || {
        messages::read_chat(env.sql, me, peer, read, CHAT_LIMIT).map_err(ApiError::from)
    })?;
    let message_list = found.ok_or_else(|| peer_not_found(peer))?;
    Ok(MessageList { message_list })
}

/// `pre_msg_time` as a [`ChatRead`]: absent, empty or 0 → the history; a positive value (ms, or
/// seconds below 10^12) → the peer's messages after it; anything else → [`BAD_PRE_MSG_TIME`].
pub fn parse_pre_msg_time(raw: Option<&str>, now_ms: i64) -> Result<ChatRead, ApiError> {
    let raw = raw.map(str::trim).unwrap_or("");
    if raw.is_empty() {
        return Ok(ChatRead::History);
    }
    let bad =
        |why: &str| ApiError::new(BAD_PRE_MSG_TIME, format!("pre_msg_time {why}, got {raw:?}"));
    let value: i64 = raw
        .parse()
        .map_err(|_| bad("must be an integer (epoch milliseconds)"))?;
    if value < 0 {
        return Err(bad("must not be negative"));
    }
    if value == 0 {
        return Ok(ChatRead::History);
    }
    let at = normalize_epoch(value);
    if at > now_ms.saturating_add(MAX_AHEAD_MS) {
        return Err(bad("is in the future"));
    }
    Ok(ChatRead::FromPeerAfter(at))
}
