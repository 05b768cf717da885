//! SQL for the `users` table, and the batch loader every list endpoint uses to render authors,
//! commenters and followers.

use std::collections::HashMap;

use crate::db::{self, placeholders};
use crate::follows;
use crate::model::User;
use crate::ports::{Row, Sql, SqlError, Value};
use crate::urls::Urls;

const PROFILE_COLUMNS: &str = "id, name, avatar, background_image, signature, follow_count, \
                               follower_count, total_favorited, work_count, favorite_count";

/// Creates a user; a taken name surfaces as [`SqlError::Unique`] from the `users_name` index,
/// which is what makes two concurrent registrations of one name yield exactly one user.
pub fn insert(
    sql: &dyn Sql,
    name: &str,
    password_hash: &str,
    now_ms: i64,
) -> Result<i64, SqlError> {
    db::insert(
        sql,
        "INSERT INTO users (name, password_hash, created_at) VALUES (?, ?, ?)",
        &[name.into(), password_hash.into(), now_ms.into()],
    )
}

/// The system user: the welcome video's author. The schema migration (version 4) creates it
/// before any request is served, marked by `system_role` = [`SYSTEM_ROLE_WELCOME`] (a UNIQUE
/// column, NULL for everybody else) and with no usable password; code finds it by that mark,
/// never by name, and login never considers it ([`find_credentials`]).
pub const SYSTEM_ROLE_WELCOME: &str = "welcome";
/// The system user's name, reserved at registration ([`crate::accounts::RESERVED_USERNAMES`]).
pub const SYSTEM_USER_NAME: &str = "TikSpin";
/// Its name when an ordinary account registered [`SYSTEM_USER_NAME`] before it was reserved:
/// that account keeps its name and its password, and the system user takes this one, longer
/// than registration has ever allowed, so no account can hold it.
pub const SYSTEM_USER_FALLBACK_NAME: &str = "TikSpin (the app's own system account)";
/// The system user's `password_hash`: not a PHC string, so no password verifies against it (and
/// login does not even look at it). The welcome seed of earlier releases used the same value,
/// which is how the migration recognises that seed's user and adopts it.
pub const NO_PASSWORD: &str = "!";

/// The id of the user with `role` ([`SYSTEM_ROLE_WELCOME`]), if the migration made one.
pub fn system_user(sql: &dyn Sql, role: &str) -> Result<Option<i64>, SqlError> {
    let rows = sql.query("SELECT id FROM users WHERE system_role = ?", &[role.into()])?;
    rows.first().map(|row| row.i64(0)).transpose()
}

/// Inside a transaction: locks user `id`'s row until COMMIT (MySQL `FOR UPDATE`; SQLite's
/// `BEGIN IMMEDIATE` already holds the database's write lock), so that check-then-write
/// sequences on that user run one at a time. Returns whether the user exists.
pub fn lock(tx: &dyn Sql, id: i64) -> Result<bool, SqlError> {
    let statement = format!(
        "SELECT id FROM users WHERE id = ?{}",
        db::for_update(tx.dialect())
    );
    Ok(!tx.query(&statement, &[id.into()])?.is_empty())
}

pub struct Credentials {
    pub id: i64,
    pub password_hash: String,
}

/// The password hash of the ordinary user named `name`. System users are not found: nobody
/// logs in as one, whatever is in their `password_hash`.
pub fn find_credentials(sql: &dyn Sql, name: &str) -> Result<Option<Credentials>, SqlError> {
    let rows = sql.query(
        "SELECT id, password_hash FROM users WHERE name = ? AND system_role IS NULL",
        &[name.into()],
    )?;
    rows.first()
        .map(|row| {
            Ok(Credentials {
                id: row.i64(0)?,
                password_hash: row.text(1)?.to_owned(),
            })
        })
        .transpose()
}

pub fn exists(sql: &dyn Sql, id: i64) -> Result<bool, SqlError> {
    Ok(!sql
        .query("SELECT 1 FROM users WHERE id = ?", &[id.into()])?
        .is_empty())
}

/// The users among `ids` that exist, keyed by id, with `is_follow` relative to `viewer`.
///
/// Two queries at most whatever the number of ids: one `IN (...)` on users, and one on follows
/// for the viewer (skipped for anonymous viewers and when the viewer is the only one listed).
/// Duplicated ids are fine; missing ids are simply absent from the map.
pub fn load_many(
    sql: &dyn Sql,
    ids: &[i64],
    viewer: Option<i64>,
    urls: &Urls,
) -> Result<HashMap<i64, User>, SqlError> {
    let mut ids = ids.to_vec();
    ids.sort_unstable();
    ids.dedup();
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let statement = format!(
        "SELECT {PROFILE_COLUMNS} FROM users WHERE id IN ({})",
        placeholders(ids.len())
    );
    let params: Vec<Value> = ids.iter().copied().map(Value::Int).collect();
    let rows = sql.query(&statement, &params)?;

    let followed = match viewer {
        Some(viewer) => {
            let others: Vec<i64> = ids.iter().copied().filter(|&id| id != viewer).collect();
            follows::followed_among(sql, viewer, &others)?
        }
        None => Default::default(),
    };
    rows.iter()
        .map(|row| {
            let id = row.i64(0)?;
            Ok((id, user_from_row(&row, 0, followed.contains(&id), urls)?))
        })
        .collect()
}

pub fn load_one(
    sql: &dyn Sql,
    id: i64,
    viewer: Option<i64>,
    urls: &Urls,
) -> Result<Option<User>, SqlError> {
    Ok(load_many(sql, &[id], viewer, urls)?.remove(&id))
}

/// The profile columns qualified by `alias`, for a statement that joins `users` (the list
/// then needs no second, id-by-id lookup). Read them back with [`user_from_row`].
pub fn profile_columns(alias: &str) -> String {
    PROFILE_COLUMNS
        .split(',')
        .map(|c| format!("{alias}.{}", c.trim()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A `User` from the profile columns starting at column `at`.
pub fn user_from_row(
    row: &Row<'_>,
    at: usize,
    is_follow: bool,
    urls: &Urls,
) -> Result<User, SqlError> {
    let id = row.i64(at)?;
    let image = |col: usize, default: fn(&Urls, i64) -> String| -> Result<String, SqlError> {
        Ok(match row.opt_text(at + col)? {
            Some(stored) if !stored.is_empty() => urls.media(stored),
            _ => default(urls, id),
        })
    };
    Ok(User {
        id,
        name: row.text(at + 1)?.to_owned(),
        avatar: image(2, Urls::default_avatar)?,
        background_image: image(3, Urls::default_background)?,
        signature: row.text(at + 4)?.to_owned(),
        follow_count: row.i64(at + 5)?,
        follower_count: row.i64(at + 6)?,
        total_favorited: row.i64(at + 7)?,
        work_count: row.i64(at + 8)?,
        favorite_count: row.i64(at + 9)?,
        is_follow,
    })
}
