//! `bench/seed --check`: every denormalised column recomputed from the rows it reflects, on any
//! database (seeded or not), each drift reported with the row it is on.
//!
//! Aggregates are `GROUP BY` scans compared in memory, not a correlated subquery per row: there
//! is no index on `favorites.video_id` (nothing in the app reads by it), and a count per video
//! through a scan would never finish at a million videos.

use std::collections::HashMap;

use tikspin_core::ports::{Sql, SqlError};

fn counts(sql: &dyn Sql, statement: &str) -> Result<HashMap<i64, i64>, SqlError> {
    sql.query(statement, &[])?
        .iter()
        .map(|r| Ok((r.i64(0)?, r.i64(1)?)))
        .collect()
}

/// One line per drifted column: `table.column (id N): stored S, rows say R`. Empty: consistent.
pub fn check(sql: &dyn Sql) -> Result<Vec<String>, SqlError> {
    let mut drift = Vec::new();
    let mut compare = |what: &str, id: i64, stored: Option<i64>, actual: Option<i64>| {
        if stored != actual {
            let show = |v: Option<i64>| v.map_or("NULL".to_string(), |v| v.to_string());
            drift.push(format!(
                "{what} (id {id}): stored {}, rows say {}",
                show(stored),
                show(actual)
            ));
        }
    };

    // videos.favorite_count, videos.comment_count; and per author what users need.
    let likes = counts(sql, "SELECT video_id, COUNT(*) FROM favorites GROUP BY video_id")?;
    let comments = counts(sql, "SELECT video_id, COUNT(*) FROM comments GROUP BY video_id")?;
    let mut works: HashMap<i64, i64> = HashMap::new();
    let mut favorited: HashMap<i64, i64> = HashMap::new();
    for r in sql
        .query("SELECT id, author_id, favorite_count, comment_count FROM videos", &[])?
        .iter()
    {
        let (id, author) = (r.i64(0)?, r.i64(1)?);
        let liked = likes.get(&id).copied().unwrap_or(0);
        compare("videos.favorite_count", id, Some(r.i64(2)?), Some(liked));
        let commented = comments.get(&id).copied().unwrap_or(0);
        compare("videos.comment_count", id, Some(r.i64(3)?), Some(commented));
        *works.entry(author).or_default() += 1;
        *favorited.entry(author).or_default() += liked;
    }

    let follows = counts(sql, "SELECT follower_id, COUNT(*) FROM follows GROUP BY follower_id")?;
    let followers = counts(sql, "SELECT followee_id, COUNT(*) FROM follows GROUP BY followee_id")?;
    let liked = counts(sql, "SELECT user_id, COUNT(*) FROM favorites GROUP BY user_id")?;
    for r in sql
        .query(
            "SELECT id, follow_count, follower_count, total_favorited, work_count, favorite_count \
             FROM users",
            &[],
        )?
        .iter()
    {
        let id = r.i64(0)?;
        let of = |m: &HashMap<i64, i64>| Some(m.get(&id).copied().unwrap_or(0));
        compare("users.follow_count", id, Some(r.i64(1)?), of(&follows));
        compare("users.follower_count", id, Some(r.i64(2)?), of(&followers));
        compare("users.total_favorited", id, Some(r.i64(3)?), of(&favorited));
        compare("users.work_count", id, Some(r.i64(4)?), of(&works));
        compare("users.favorite_count", id, Some(r.i64(5)?), of(&liked));
    }

    // The latest message of each conversation (by create_time, then id, as the app orders).
    let mut latest: HashMap<(i64, i64), (i64, i64)> = HashMap::new();
    for r in sql
        .query("SELECT user_lo, user_hi, create_time, id FROM messages", &[])?
        .iter()
    {
        let key = (r.i64(0)?, r.i64(1)?);
        let at = (r.i64(2)?, r.i64(3)?);
        let slot = latest.entry(key).or_insert(at);
        if at > *slot {
            *slot = at;
        }
    }
    // follows.friend_since: the later of the two follows' times when the reverse follow exists.
    for r in sql
        .query(
            "SELECT f.id, f.follower_id, f.followee_id, f.created_at, f.friend_since, \
                    f.last_message_id, r.created_at \
               FROM follows f \
               LEFT JOIN follows r ON r.follower_id = f.followee_id AND r.followee_id = f.follower_id",
            &[],
        )?
        .iter()
    {
        let id = r.i64(0)?;
        let (a, b) = (r.i64(1)?, r.i64(2)?);
        let since = r.opt_i64(6)?.map(|back| back.max(r.i64(3).unwrap_or(0)));
        compare("follows.friend_since", id, r.opt_i64(4)?, since);
        let last = latest.get(&(a.min(b), a.max(b))).map(|&(_, id)| id);
        compare("follows.last_message_id", id, r.opt_i64(5)?, last);
    }
    Ok(drift)
}
