//! The `relation` route group: follow/unfollow, and the follow, follower and friend lists.
//!
//! Decisions (for the API notes):
//! - **Lists are capped at the newest [`LIST_LIMIT`] relations** (the client has no paging
//!   parameters and renders the whole list): follow/follower lists by when the follow was made,
//!   the friend list by when the friendship became mutual, newest first, ties by row id.
//! - **relation/action** is idempotent: following twice counts once, unfollowing what is not
//!   followed succeeds and changes nothing; row and both counters move in one transaction, and
//!   only when a row was actually inserted or deleted. Following yourself ([`CANNOT_FOLLOW_SELF`])
//!   and an unknown `to_user_id` ([`RELATION_USER_NOT_FOUND`]) are refused, for unfollow too.
//! - **friend/list** requires a token. `user_id` names whose friends are listed (the client
//!   always sends its own id; another user's friends are public anyway, through the follow and
//!   follower lists); `is_follow`, `message` and `msgType` are relative to the token's user,
//!   so a viewer only ever sees previews of their own conversations. With no message exchanged,
//!   `message` is `""` and `msgType` is 0.
//!
//! SQL statements per request (every list is constant, whatever its length):
//! | endpoint | statements |
//! |---|---|
//! | relation/action | a follow 8 (BEGIN, users, insert, changes(), counters, the reverse row's `friend_since`, changes(), COMMIT) and a 9th for its own `friend_since` when it makes a friendship; an unfollow 7 (delete, changes(), counters, the reverse row's `friend_since`); 5 when nothing changes; plus `PRAGMA synchronous` on SQLite |
//! | follow/list, follower/list | at most 3: ids, users (the owner included, so an unknown owner costs nothing extra), the viewer's follows |
//! | friend/list | 2 for one's own list (friends with their message previews, users: owner and viewer), 3 for another's (and the viewer's follows) |

use serde::Serialize;

use crate::api::{
    ApiError, Empty, Payload, BAD_RELATION_ACTION, CANNOT_FOLLOW_SELF, RELATION_USER_NOT_FOUND,
};
use crate::auth;
use crate::db::transaction;
use crate::env::Env;
use crate::follows::{self, FriendRow, Previews};
use crate::json::Object;
use crate::messages;
use crate::migrate::with_schema;
use crate::model::{FriendUser, User};
use crate::params::Params;
use crate::ports::{Sql, SqlError};
use crate::users;

/// The most relations a follow, follower or friend list returns (the newest ones).
pub const LIST_LIMIT: usize = 1000;

pub const ACTION_FOLLOW: i64 = 1;
pub const ACTION_UNFOLLOW: i64 = 2;

/// follow/list and follower/list's fields: `user_list`, `[]` on failure.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct UserList {
    pub user_list: Vec<User>,
}

impl Payload for UserList {
    fn failed() -> Self {
        UserList::default()
    }

    fn write_fields(&self, reply: &mut Object<'_>) -> serde_json::Result<()> {
        reply.value("user_list", self.user_list.as_slice());
        Ok(())
    }
}

/// friend/list's fields: `user_list` of [`FriendUser`], `[]` on failure.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct FriendList {
    pub user_list: Vec<FriendUser>,
}

impl Payload for FriendList {
    fn failed() -> Self {
        FriendList::default()
    }

    fn write_fields(&self, reply: &mut Object<'_>) -> serde_json::Result<()> {
        reply.value("user_list", self.user_list.as_slice());
        Ok(())
    }
}

pub fn cannot_follow_self() -> ApiError {
    ApiError::new(CANNOT_FOLLOW_SELF, "you cannot follow yourself")
}

pub fn user_not_found(id: i64) -> ApiError {
    ApiError::new(RELATION_USER_NOT_FOUND, format!("user {id} does not exist"))
}

/// POST relation/action: `token`, `to_user_id`, `action_type` 1 (follow) or 2 (unfollow).
pub fn relation_action(env: &Env<'_>, params: &Params) -> Result<Empty, ApiError> {
    let me = auth::verified_token_user(env, params)?;
    let target = params.required_id("to_user_id")?;
    let action = parse_action(params)?;
    if target == me {
        return Err(cannot_follow_self());
    }
    with_schema(env.sql, || {
        transaction(env.sql, |tx| {
            // Inside the transaction: a token outliving its account cannot write, and the target
            // cannot vanish between the check and the insert (on MySQL the rows are locked, in
            // primary-key order, as the counter UPDATE would lock them anyway).
            let existing = messages::lock_users(tx, me, target)?;
            if !existing.contains(&me) {
                return Err(ApiError::invalid_token());
            }
            if !existing.contains(&target) {
                return Err(user_not_found(target));
            }
            match action {
                ACTION_FOLLOW => follows::follow(tx, me, target, env.now_ms)?,
                _ => follows::unfollow(tx, me, target)?,
            };
            Ok(Empty {})
        })
    })
}

fn parse_action(params: &Params) -> Result<i64, ApiError> {
    match params.get("action_type").map(str::trim) {
        Some("1") => Ok(ACTION_FOLLOW),
        Some("2") => Ok(ACTION_UNFOLLOW),
        other => Err(ApiError::new(
            BAD_RELATION_ACTION,
            format!(
                "action_type must be 1 (follow) or 2 (unfollow), got {}",
                other.map_or_else(|| "nothing".to_owned(), |v| format!("{v:?}"))
            ),
        )),
    }
}

/// GET relation/follow/list: the users `user_id` follows, most recently followed first.
pub fn follow_list(env: &Env<'_>, params: &Params) -> Result<UserList, ApiError> {
    list(env, params, follows::followees)
}

/// GET relation/follower/list: the users following `user_id`, most recent first.
pub fn follower_list(env: &Env<'_>, params: &Params) -> Result<UserList, ApiError> {
    list(env, params, follows::followers)
}

/// [`follows::followees`] or [`follows::followers`].
type IdsOf = fn(&dyn Sql, i64, usize) -> Result<Vec<i64>, SqlError>;

fn list(env: &Env<'_>, params: &Params, ids_of: IdsOf) -> Result<UserList, ApiError> {
    let owner = params.required_id("user_id")?;
    let viewer = auth::viewer(env, params);
    let urls = env.urls();
    with_schema(env.sql, || {
        let ids = ids_of(env.sql, owner, LIST_LIMIT)?;
        let mut wanted = ids.clone();
        wanted.push(owner);
        let mut found = users::load_many(env.sql, &wanted, viewer, &urls)?;
        if !found.contains_key(&owner) {
            return Err(user_not_found(owner));
        }
        // A dangling row (its user gone) is skipped rather than failing the whole list.
        let user_list = ids.iter().filter_map(|id| found.remove(id)).collect();
        Ok(UserList { user_list })
    })
}

/// GET relation/friend/list: `user_id`'s mutual follows, newest friendship first, each with the
/// latest message between the token's user and that friend.
pub fn friend_list(env: &Env<'_>, params: &Params) -> Result<FriendList, ApiError> {
    let viewer = auth::verified_token_user(env, params)?;
    let owner = params.required_id("user_id")?;
    let urls = env.urls();
    let own_list = viewer == owner;
    let previews = if own_list {
        Previews::Own
    } else {
        Previews::Viewer(viewer)
    };
    with_schema(env.sql, || {
        let friends = follows::friends_with_previews(env.sql, owner, previews, LIST_LIMIT, &urls)?;
        // Only existence: the friends' profiles came with the list.
        let found = users::load_many(env.sql, &[owner, viewer], None, &urls)?;
        if !found.contains_key(&viewer) {
            return Err(ApiError::invalid_token());
        }
        if !found.contains_key(&owner) {
            return Err(user_not_found(owner));
        }
        // Reading one's own friends, every friend is followed by the viewer (that is what a
        // friend is), so only another's list needs the follows lookup.
        let followed = if own_list {
            Default::default()
        } else {
            let ids: Vec<i64> = friends
                .iter()
                .map(|f| f.user.id)
                .filter(|&id| id != viewer)
                .collect();
            follows::followed_among(env.sql, viewer, &ids)?
        };
        let user_list = friends
            .into_iter()
            .map(|row| {
                let FriendRow {
                    mut user,
                    last_from,
                    last_content,
                } = row;
                user.is_follow = user.id != viewer && (own_list || followed.contains(&user.id));
                FriendUser {
                    user,
                    message: last_content.unwrap_or_default(),
                    msg_type: i64::from(last_from == Some(viewer)),
                }
            })
            .collect();
        Ok(FriendList { user_list })
    })
}
