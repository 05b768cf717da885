//! SQL for the `follows` table.

use std::collections::HashSet;

use crate::db::placeholders;
use crate::ports::{Sql, SqlError, Value};

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
