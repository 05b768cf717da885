//! SQL for the `messages` table: stamping and storing a message, and reading a conversation.
//!
//! A conversation is keyed by the sorted pair (user_lo, user_hi), one key for both directions.
//! Every read and the stamping run on the UNIQUE index `messages_conversation_time`
//! (user_lo, user_hi, create_time); see [`crate::schema`] for why `create_time` is strictly
//! increasing within a conversation and what that buys the chat poll.

use crate::model::Message;
use crate::ports::{Dialect, Sql, SqlError, Value};

/// The conversation key of two users: the pair sorted.
pub fn conversation(a: i64, b: i64) -> (i64, i64) {
    (a.min(b), a.max(b))
}

/// The `create_time` for a new message: now, or one past the conversation's latest message if
/// that is not earlier (several messages in one millisecond, or a clock that stepped back), so
/// times stay strictly increasing and the poll's `create_time > pre_msg_time` is exact.
pub fn next_create_time(now_ms: i64, latest: Option<i64>) -> i64 {
    match latest {
        Some(t) if t >= now_ms => t + 1,
        _ => now_ms,
    }
}

/// Which of `a` and `b` exist, and on MySQL locks their rows until the transaction ends.
///
/// The lock is what keeps a conversation's stamps in commit order on MySQL: every sender into
/// (lo, hi) locks both users first, so the read of the latest `create_time` that follows sees
/// every earlier sender's committed message, and no later stamp can commit before an earlier
/// one (which would let a poll move its cursor past a message not yet visible). InnoDB takes the
/// locks in primary-key order, so two senders cannot deadlock on them. SQLite needs no lock
/// clause: `BEGIN IMMEDIATE` already serializes writers.
pub fn lock_users(sql: &dyn Sql, a: i64, b: i64) -> Result<Vec<i64>, SqlError> {
    let statement = match sql.dialect() {
        Dialect::Sqlite => "SELECT id FROM users WHERE id IN (?, ?)",
        Dialect::Mysql => "SELECT id FROM users WHERE id IN (?, ?) FOR UPDATE",
    };
    sql.query(statement, &[a.into(), b.into()])?
        .iter()
        .map(|row| row.i64(0))
        .collect()
}

/// The conversation's latest `create_time`: one seek on `messages_conversation_time`.
pub fn latest_create_time(sql: &dyn Sql, lo: i64, hi: i64) -> Result<Option<i64>, SqlError> {
    sql.query(
        "SELECT MAX(create_time) FROM messages WHERE user_lo = ? AND user_hi = ?",
        &[lo.into(), hi.into()],
    )?
    .first()
    .map(|row| row.opt_i64(0))
    .transpose()
    .map(Option::flatten)
}

/// Stores a message with the given `create_time`. A taken (conversation, create_time) surfaces
/// as [`SqlError::Unique`]: the caller stamps again and retries.
pub fn insert(
    sql: &dyn Sql,
    from: i64,
    to: i64,
    content: &str,
    create_time: i64,
) -> Result<(), SqlError> {
    let (lo, hi) = conversation(from, to);
    sql.execute(
        "INSERT INTO messages (user_lo, user_hi, from_user_id, to_user_id, content, create_time) \
         VALUES (?, ?, ?, ?, ?, ?)",
        &[
            lo.into(),
            hi.into(),
            from.into(),
            to.into(),
            content.into(),
            create_time.into(),
        ],
    )
}

/// What a chat read asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChatRead {
    /// The whole conversation, both directions (the newest `limit` messages of it).
    History,
    /// Only messages from the peer to the viewer with `create_time` strictly greater than this
    /// (the first `limit` of them; the next poll continues from the last one returned).
    FromPeerAfter(i64),
}

/// The statement behind [`read_chat`], public for the query-plan tests.
///
/// The messages are LEFT JOINed to the peer's `users` row, so one statement answers both "does
/// the peer exist" (no row at all) and "what is new" (one all-NULL row when nothing is). Both
/// read an index range on `messages_conversation_time`:
/// - a poll joins `messages` directly: the range after the cursor, already in ascending order,
///   so the usual empty poll reads no message row and needs no temporary table;
/// - the history takes the newest `limit` in a derived table (descending), then re-sorts them
///   oldest first.
///
/// Parameters: user_lo, user_hi, then (for a poll) the cursor and the peer, then the peer.
pub fn chat_statement(read: ChatRead, limit: usize) -> String {
    const COLUMNS: &str = "m.id, m.from_user_id, m.to_user_id, m.content, m.create_time";
    match read {
        ChatRead::FromPeerAfter(_) => format!(
            "SELECT {COLUMNS} \
             FROM users u \
             LEFT JOIN messages m ON m.user_lo = ? AND m.user_hi = ? \
                                 AND m.create_time > ? AND m.from_user_id = ? \
             WHERE u.id = ? \
             ORDER BY m.create_time ASC LIMIT {limit}"
        ),
        ChatRead::History => format!(
            "SELECT {COLUMNS} \
             FROM users u \
             LEFT JOIN (SELECT id, from_user_id, to_user_id, content, create_time FROM messages \
                         WHERE user_lo = ? AND user_hi = ? \
                         ORDER BY create_time DESC LIMIT {limit}) m ON 1 = 1 \
             WHERE u.id = ? \
             ORDER BY m.create_time ASC"
        ),
    }
}

/// The viewer's view of the conversation with `peer`, oldest first; `None` if `peer` is not a
/// user. One statement.
pub fn read_chat(
    sql: &dyn Sql,
    viewer: i64,
    peer: i64,
    read: ChatRead,
    limit: usize,
) -> Result<Option<Vec<Message>>, SqlError> {
    let (lo, hi) = conversation(viewer, peer);
    let mut params: Vec<Value> = vec![lo.into(), hi.into()];
    if let ChatRead::FromPeerAfter(cursor) = read {
        params.push(cursor.into());
        params.push(peer.into());
    }
    params.push(peer.into());
    let rows = sql.query(&chat_statement(read, limit), &params)?;
    if rows.is_empty() {
        return Ok(None);
    }
    let mut messages = Vec::with_capacity(rows.len());
    for row in rows.iter() {
        let Some(id) = row.opt_i64(0)? else {
            continue; // the LEFT JOIN's placeholder row: the peer exists, nothing matched
        };
        messages.push(Message {
            id,
            from_user_id: row.i64(1)?,
            to_user_id: row.i64(2)?,
            content: row.text(3)?.to_owned(),
            create_time: row.i64(4)?,
        });
    }
    Ok(Some(messages))
}
