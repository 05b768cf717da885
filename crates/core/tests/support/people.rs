//! Helpers shared by the social and chat tests: users with tokens, refusal tables, row counts,
//! reply bodies, and sending a message the way the client does.

use super::token;
use crate::common::params;
use serde_json::Value;
use tikspin_core::api::Reply;
use tikspin_core::chat;
use tikspin_core::{users, ApiError, Env, Sql};

/// Request parameters, the expected status code, and a phrase the message must contain.
pub type Case<'a> = (Pairs<'a>, i32, &'a str);
pub type Pairs<'a> = Vec<(&'a str, &'a str)>;

/// A user and their token, inserted directly (argon2 is not what these tests are about).
/// Unlike `support::user`, created at 0: the social and chat tests were written against that.
pub fn user(sql: &dyn Sql, name: &str) -> (i64, String) {
    let id = users::insert(sql, name, "$argon2id$unused", 0).unwrap();
    (id, token(id))
}

/// A user deleted right after being made: their token is well signed but names nobody.
pub fn deleted_user(sql: &dyn Sql, name: &str) -> (i64, String) {
    let (id, token) = user(sql, name);
    sql.execute("DELETE FROM users WHERE id = ?", &[id.into()])
        .unwrap();
    (id, token)
}

pub fn count(sql: &dyn Sql, statement: &str) -> i64 {
    sql.query(statement, &[]).unwrap().scalar_i64().unwrap()
}

/// The JSON a client would receive.
pub fn body(reply: Reply) -> Value {
    serde_json::from_slice(reply.body()).unwrap()
}

/// Sends `content` from the token's user to `to` (action_type 1).
pub fn send(env: &Env<'_>, token: &str, to: i64, content: &str) -> Result<(), ApiError> {
    chat::message_action(
        env,
        &params(&[
            ("token", token),
            ("to_user_id", &to.to_string()),
            ("action_type", "1"),
            ("content", content),
        ]),
    )
    .map(drop)
}
