//! SQL for the `follows` table: the idempotent follow/unfollow with the counters they move, the
//! ordered id lists behind follow/follower/friend lists, and the viewer's follows among a batch.
//!
//! Every list here is one statement on an index of `follows` (see [`crate::schema`]):
//! `follows_follower_time` / `follows_followee_time` for "newest first", `follows_pair` for the
//! mutual check and for [`followed_among`].

use std::collections::HashSet;

use crate::db::{execute_counted, insert_ignore, placeholders};
use crate::ports::{Sql, SqlError, Value};

/// Adds the follow if absent; when (and only when) a row was inserted, moves `follower`'s
/// `follow_count` and `followee`'s `follower_count` up by one. Returns whether anything changed.
/// Run it inside [`crate::db::transaction`], so the row and the counters move together.
pub fn follow(sql: &dyn Sql, follower: i64, followee: i64, now_ms: i64) -> Result<bool, SqlError> {
    let statement = format!(
        "{} INTO follows (follower_id, followee_id, created_at) VALUES (?, ?, ?)",
        insert_ignore(sql.dialect())
    );
    let inserted = execute_counted(
        sql,
        &statement,
        &[follower.into(), followee.into(), now_ms.into()],
    )? > 0;
    if inserted {
        move_counters(sql, follower, followee, 1)?;
    }
    Ok(inserted)
}

/// Removes the follow if present, and then only moves both counters down by one. Returns whether
/// anything changed. Run it inside a transaction, like [`follow`].
pub fn unfollow(sql: &dyn Sql, follower: i64, followee: i64) -> Result<bool, SqlError> {
    let deleted = execute_counted(
        sql,
        "DELETE FROM follows WHERE follower_id = ? AND followee_id = ?",
        &[follower.into(), followee.into()],
    )? > 0;
    if deleted {
        move_counters(sql, follower, followee, -1)?;
    }
    Ok(deleted)
}

/// One UPDATE for both users (relative, so concurrent transactions compose). InnoDB locks the
/// two rows in primary-key order whatever the follow's direction, so A→B and B→A cannot deadlock
/// on them.
fn move_counters(sql: &dyn Sql, follower: i64, followee: i64, delta: i64) -> Result<(), SqlError> {
    sql.execute(
        "UPDATE users SET \
           follow_count = follow_count + CASE WHEN id = ? THEN ? ELSE 0 END, \
           follower_count = follower_count + CASE WHEN id = ? THEN ? ELSE 0 END \
         WHERE id IN (?, ?)",
        &[
            follower.into(),
            delta.into(),
            followee.into(),
            delta.into(),
            follower.into(),
            followee.into(),
        ],
    )
}

/// The users `follower` follows, most recently followed first, at most `limit`.
pub fn followees(sql: &dyn Sql, follower: i64, limit: usize) -> Result<Vec<i64>, SqlError> {
    ids(
        sql,
        &format!(
            "SELECT followee_id FROM follows WHERE follower_id = ? \
             ORDER BY created_at DESC, id DESC LIMIT {limit}"
        ),
        follower,
    )
}

/// The users following `followee`, most recent follower first, at most `limit`.
pub fn followers(sql: &dyn Sql, followee: i64, limit: usize) -> Result<Vec<i64>, SqlError> {
    ids(
        sql,
        &format!(
            "SELECT follower_id FROM follows WHERE followee_id = ? \
             ORDER BY created_at DESC, id DESC LIMIT {limit}"
        ),
        followee,
    )
}

fn ids(sql: &dyn Sql, statement: &str, user: i64) -> Result<Vec<i64>, SqlError> {
    sql.query(statement, &[user.into()])?
        .iter()
        .map(|row| row.i64(0))
        .collect()
}

/// A friend of the list's owner, with the latest message between the viewer and that friend.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FriendRow {
    pub friend_id: i64,
    /// The friend's profile (`is_follow` false: the caller knows the viewer's follows).
    pub user: crate::model::User,
    /// Sender of the latest message between the viewer and this friend; `None` if they never
    /// exchanged one.
    pub last_from: Option<i64>,
    pub last_content: Option<String>,
}

/// The statement behind [`friends_with_previews`], public for the query-plan tests.
///
/// The owner's friends are a follow each way (`follows_pair` both times), newest friendship
/// first (the later of the two follows), cut at `limit`; each row joins the friend's profile
/// (`users`, so the list needs no `IN` lookup afterwards) and the latest message of the
/// (viewer, friend) conversation: its id from `messages_conversation_time` alone (equality on
/// (user_lo, user_hi), `ORDER BY create_time DESC LIMIT 1`: one seek of a covering index,
/// however long the history), then one lookup by id for sender and content.
///
/// One flat join, no derived table: SQLite would materialise one into a temporary b-tree and
/// sort it twice. The preview is therefore looked up for every friend before the cut, which
/// stays one index seek per friend. Portable: plain CASE instead of MIN/MAX/GREATEST, no window
/// functions.
///
/// Parameters: the viewer 4 times, then the owner.
pub fn friends_statement(limit: usize) -> String {
    format!(
        "SELECT m.from_user_id, m.content, {profile} \
           FROM follows a \
           JOIN follows b ON b.follower_id = a.followee_id AND b.followee_id = a.follower_id \
           JOIN users u ON u.id = a.followee_id \
           LEFT JOIN messages m ON m.id = \
                (SELECT x.id FROM messages x \
                  WHERE x.user_lo = CASE WHEN a.followee_id < ? THEN a.followee_id ELSE ? END \
                    AND x.user_hi = CASE WHEN a.followee_id < ? THEN ? ELSE a.followee_id END \
                  ORDER BY x.create_time DESC LIMIT 1) \
          WHERE a.follower_id = ? \
          ORDER BY CASE WHEN b.created_at > a.created_at THEN b.created_at ELSE a.created_at END DESC, \
                   CASE WHEN b.id > a.id THEN b.id ELSE a.id END DESC \
          LIMIT {limit}",
        profile = crate::users::profile_columns("u"),
    )
}

/// `owner`'s friends (mutual follows), newest friendship first, at most `limit`, each with the
/// latest message between `viewer` and that friend. One statement.
pub fn friends_with_previews(
    sql: &dyn Sql,
    owner: i64,
    viewer: i64,
    limit: usize,
    urls: &crate::urls::Urls,
) -> Result<Vec<FriendRow>, SqlError> {
    let mut params = vec![Value::Int(viewer); 4];
    params.push(Value::Int(owner));
    sql.query(&friends_statement(limit), &params)?
        .iter()
        .map(|row| {
            let user = crate::users::user_from_row(&row, 2, false, urls)?;
            Ok(FriendRow {
                friend_id: user.id,
                user,
                last_from: row.opt_i64(0)?,
                last_content: row.opt_text(1)?.map(str::to_owned),
            })
        })
        .collect()
}

/// Which of `ids` `follower` follows, in one query (an index range on `follows_pair`).
pub fn followed_among(sql: &dyn Sql, follower: i64, ids: &[i64]) -> Result<HashSet<i64>, SqlError> {
    if ids.is_empty() {
        return Ok(HashSet::new());
    }
    let statement = format!(
        "SELECT followee_id FROM follows WHERE follower_id = ? AND followee_id IN ({})",
        placeholders(ids.len())
    );
    let params: Vec<Value> = std::iter::once(Value::Int(follower))
        .chain(ids.iter().copied().map(Value::Int))
        .collect();
    sql.query(&statement, &params)?
        .iter()
        .map(|row| row.i64(0))
        .collect()
}
