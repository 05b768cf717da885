//! SQL for the `follows` table: the idempotent follow/unfollow with the counters they move, the
//! ordered id lists behind follow/follower/friend lists, and the viewer's follows among a batch.
//!
//! Every list here is one statement on an index of `follows` (see [`crate::schema`]):
//! `follows_follower_time` / `follows_followee_time` for "newest first", `follows_friends`
//! for "newest friendship first", `follows_pair` for [`followed_among`].
//!
//! Two columns are kept for the friend list, each in the transaction that changes what it
//! reflects: `friend_since`, set on both rows of a mutual follow and NULL otherwise, by
//! [`follow`] and [`unfollow`]; `last_message_id`, the latest message between the row's two
//! users, by [`follow`] (a new row starts with it) and by [`message_sent`].

use std::collections::HashSet;

use crate::db::{execute_counted, insert_ignore, placeholders};
use crate::ports::{Dialect, Sql, SqlError, Value};

/// Adds the follow if absent; when (and only when) a row was inserted, moves `follower`'s
/// `follow_count` and `followee`'s `follower_count` up by one, and if `followee` follows back,
/// the two are friends from `now_ms` on. Returns whether anything changed.
/// Run it inside [`crate::db::transaction`], so the rows and the counters move together.
pub fn follow(sql: &dyn Sql, follower: i64, followee: i64, now_ms: i64) -> Result<bool, SqlError> {
    let statement = format!(
        "{} INTO follows (follower_id, followee_id, created_at, last_message_id) \
         VALUES (?, ?, ?, ({LATEST_MESSAGE_ID}))",
        insert_ignore(sql.dialect())
    );
    let (lo, hi) = crate::messages::conversation(follower, followee);
    let inserted = execute_counted(
        sql,
        &statement,
        &[
            follower.into(),
            followee.into(),
            now_ms.into(),
            lo.into(),
            hi.into(),
        ],
    )? > 0;
    if inserted {
        move_counters(sql, follower, followee, 1)?;
        // The reverse row changes only if it exists; then the two are friends from now on.
        let since = Value::Int(now_ms);
        let reverse = [since.clone(), followee.into(), follower.into()];
        if execute_counted(sql, SET_FRIEND_SINCE, &reverse)? > 0 {
            sql.execute(SET_FRIEND_SINCE, &[since, follower.into(), followee.into()])?;
        }
    }
    Ok(inserted)
}

/// Removes the follow if present, and then only moves both counters down by one and ends the
/// friendship, if there was one, on the reverse row. Returns whether anything changed. Run it
/// inside a transaction, like [`follow`].
pub fn unfollow(sql: &dyn Sql, follower: i64, followee: i64) -> Result<bool, SqlError> {
    let deleted = execute_counted(
        sql,
        "DELETE FROM follows WHERE follower_id = ? AND followee_id = ?",
        &[follower.into(), followee.into()],
    )? > 0;
    if deleted {
        move_counters(sql, follower, followee, -1)?;
        sql.execute(
            SET_FRIEND_SINCE,
            &[Value::Null, followee.into(), follower.into()],
        )?;
    }
    Ok(deleted)
}

const SET_FRIEND_SINCE: &str =
    "UPDATE follows SET friend_since = ? WHERE follower_id = ? AND followee_id = ?";

/// The id of the latest message of the conversation (user_lo, user_hi) = (?, ?): one seek of
/// the covering index `messages_conversation_time`.
const LATEST_MESSAGE_ID: &str =
    "SELECT x.id FROM messages x WHERE x.user_lo = ? AND x.user_hi = ? \
     ORDER BY x.create_time DESC LIMIT 1";

/// A message between `from` and `to` was just stored with `create_time`: it is the latest of
/// their conversation, so it becomes `last_message_id` of their follow rows, if any. Run it
/// in the send's transaction, after the insert.
pub fn message_sent(sql: &dyn Sql, from: i64, to: i64, create_time: i64) -> Result<(), SqlError> {
    let (lo, hi) = crate::messages::conversation(from, to);
    sql.execute(
        "UPDATE follows SET last_message_id = \
           (SELECT x.id FROM messages x \
             WHERE x.user_lo = ? AND x.user_hi = ? AND x.create_time = ?) \
         WHERE follower_id = ? AND followee_id = ? OR follower_id = ? AND followee_id = ?",
        &[
            lo.into(),
            hi.into(),
            create_time.into(),
            from.into(),
            to.into(),
            to.into(),
            from.into(),
        ],
    )
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
    /// The friend's profile (`is_follow` false: the caller knows the viewer's follows).
    pub user: crate::model::User,
    /// Sender of the latest message between the viewer and this friend; `None` if they never
    /// exchanged one.
    pub last_from: Option<i64>,
    pub last_content: Option<String>,
}

/// Whose conversations a friend list previews: the owner's own (what the client shows), or
/// another viewer's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Previews {
    Own,
    Viewer(i64),
}

/// The statement behind [`friends_with_previews`], public for the query-plan tests.
///
/// The owner's friends are the owner's follows with a `friend_since`, newest friendship first
/// (ties: the owner's newer follow first), cut at `limit`: a backward range of the covering
/// index `follows_friends`, no sort. Each row joins the friend's profile (`users`, so the list
/// needs no `IN` lookup afterwards) and the latest message of the preview's conversation:
/// for the owner's own, by the row's `last_message_id` (a lookup by id); for another viewer's,
/// its id searched in `messages_conversation_time` (equality on (user_lo, user_hi),
/// `ORDER BY create_time DESC LIMIT 1`: one seek of a covering index, however long the
/// history), then the lookup by id.
///
/// One flat join, no derived table: SQLite would materialise one into a temporary b-tree.
/// Portable: plain CASE instead of MIN/MAX/GREATEST, no window functions.
///
/// Parameters: the owner; for [`Previews::Viewer`], the viewer 4 times before it.
pub fn friends_statement(dialect: Dialect, limit: usize, previews: Previews) -> String {
    // Naming the index also makes it the migration's last word: a database whose migration
    // was cut short (MySQL commits DDL statement by statement) lacks it, and this statement's
    // "no such index" sends the request through the migration again.
    let by_friendship = match dialect {
        Dialect::Sqlite => "INDEXED BY follows_friends",
        Dialect::Mysql => "FORCE INDEX (follows_friends)",
    };
    let latest = match previews {
        Previews::Own => "a.last_message_id",
        Previews::Viewer(_) => {
            "(SELECT x.id FROM messages x \
               WHERE x.user_lo = CASE WHEN a.followee_id < ? THEN a.followee_id ELSE ? END \
                 AND x.user_hi = CASE WHEN a.followee_id < ? THEN ? ELSE a.followee_id END \
               ORDER BY x.create_time DESC LIMIT 1)"
        }
    };
    format!(
        "SELECT m.from_user_id, m.content, {profile} \
           FROM follows a {by_friendship} \
           JOIN users u ON u.id = a.followee_id \
           LEFT JOIN messages m ON m.id = {latest} \
          WHERE a.follower_id = ? AND a.friend_since IS NOT NULL \
          ORDER BY a.friend_since DESC, a.id DESC \
          LIMIT {limit}",
        profile = crate::users::profile_columns("u"),
    )
}

/// `owner`'s friends (mutual follows), newest friendship first, at most `limit`, each with the
/// latest message of the conversation `previews` names. One statement.
pub fn friends_with_previews(
    sql: &dyn Sql,
    owner: i64,
    previews: Previews,
    limit: usize,
    urls: &crate::urls::Urls,
) -> Result<Vec<FriendRow>, SqlError> {
    let mut params = match previews {
        Previews::Own => Vec::with_capacity(1),
        Previews::Viewer(viewer) => vec![Value::Int(viewer); 4],
    };
    params.push(Value::Int(owner));
    sql.query(&friends_statement(sql.dialect(), limit, previews), &params)?
        .iter()
        .map(|row| {
            Ok(FriendRow {
                user: crate::users::user_from_row(&row, 2, false, urls)?,
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
