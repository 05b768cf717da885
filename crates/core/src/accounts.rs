//! The `user` route group: register, login, profile.
//!
//! Each service takes the request's [`Env`] and [`Params`] and returns its payload or an
//! [`ApiError`]; the component wraps the result with [`crate::api::Reply::from_result`]. Each
//! runs its SQL under [`with_schema`], so a fresh database is migrated by the first request.

use serde::Serialize;

use crate::api::{ApiError, Payload};
use crate::auth::{self, password};
use crate::env::Env;
use crate::json::Object;
use crate::migrate::with_schema;
use crate::model::User;
use crate::params::Params;
use crate::ports::SqlError;
use crate::throttle::LoginThrottle;
use crate::users;

pub const USERNAME_MAX_CHARS: usize = 32;
pub const PASSWORD_MIN_CHARS: usize = 6;
pub const PASSWORD_MAX_CHARS: usize = 32;

/// register/login's fields: on failure still present, as `user_id: 0, token: ""`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Session {
    pub user_id: i64,
    pub token: String,
}

impl Payload for Session {
    fn failed() -> Self {
        Session {
            user_id: 0,
            token: String::new(),
        }
    }
}

/// `user/`'s fields: the user, absent on failure.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Profile {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<User>,
}

impl Payload for Profile {
    fn failed() -> Self {
        Profile { user: None }
    }

    fn write_fields(&self, reply: &mut Object<'_>) -> serde_json::Result<()> {
        if let Some(user) = &self.user {
            reply.value("user", user);
        }
        Ok(())
    }
}

/// Creates the account and logs it in. Two concurrent registrations of one name both pass the
/// checks; the UNIQUE index lets exactly one insert through.
pub fn register(env: &Env<'_>, params: &Params) -> Result<Session, ApiError> {
    let username = params.required_str("username")?;
    let password = params.required_str("password")?;
    check_username(username)?;
    check_password(password)?;
    let hash = password::hash(password)?;
    let user_id = with_schema(env.sql, || {
        users::insert(env.sql, username, &hash, env.now_ms).map_err(|e| match e {
            SqlError::Unique(_) => ApiError::username_taken(),
            other => ApiError::from(other),
        })
    })?;
    Ok(Session {
        user_id,
        token: auth::issue_token(env, user_id)?,
    })
}

/// Unknown username and wrong password give the same error, in about the same time.
pub fn login(env: &Env<'_>, params: &Params) -> Result<Session, ApiError> {
    let username = params.required_str("username")?;
    let password = params.required_str("password")?;
    let throttle = LoginThrottle::check(env.kv, env.now_ms, username, env.client_addr)?;
    let credentials = with_schema(env.sql, || {
        users::find_credentials(env.sql, username).map_err(ApiError::from)
    })?;
    let verified = match credentials {
        Some(c) => password::verify(password, &c.password_hash).then_some(c.id),
        None => {
            password::verify_nothing(password);
            None
        }
    };
    match verified {
        Some(user_id) => {
            throttle.succeeded();
            Ok(Session {
                user_id,
                token: auth::issue_token(env, user_id)?,
            })
        }
        None => {
            throttle.failed();
            Err(ApiError::wrong_credentials())
        }
    }
}

/// `user_id` absent or 0 means the caller. The token's user must still exist (else the token is
/// invalid); an unknown `user_id` is not found. One users query, at most one follows query.
pub fn profile(env: &Env<'_>, params: &Params) -> Result<Profile, ApiError> {
    let me = auth::verified_token_user(env, params)?;
    let target = params.optional_id("user_id")?.unwrap_or(me);
    let urls = env.urls();
    let mut found = with_schema(env.sql, || {
        users::load_many(env.sql, &[me, target], Some(me), &urls).map_err(ApiError::from)
    })?;
    if !found.contains_key(&me) {
        return Err(ApiError::invalid_token());
    }
    let user = found
        .remove(&target)
        .ok_or_else(|| ApiError::not_found("user not found"))?;
    Ok(Profile { user: Some(user) })
}

/// 1–32 characters (characters, not bytes: CJK and emoji count one each), no control characters,
/// no leading or trailing whitespace (two names that look alike must not differ by a space).
pub fn check_username(username: &str) -> Result<(), ApiError> {
    let chars = username.chars().count();
    if chars == 0 || chars > USERNAME_MAX_CHARS {
        return Err(ApiError::bad_parameter(format!(
            "username must be 1-{USERNAME_MAX_CHARS} characters, got {chars}"
        )));
    }
    if username.chars().any(char::is_control) {
        return Err(ApiError::bad_parameter(
            "username must not contain control characters",
        ));
    }
    if username.trim() != username {
        return Err(ApiError::bad_parameter(
            "username must not start or end with whitespace",
        ));
    }
    Ok(())
}

pub fn check_password(password: &str) -> Result<(), ApiError> {
    let chars = password.chars().count();
    if !(PASSWORD_MIN_CHARS..=PASSWORD_MAX_CHARS).contains(&chars) {
        return Err(ApiError::bad_parameter(format!(
            "password must be {PASSWORD_MIN_CHARS}-{PASSWORD_MAX_CHARS} characters, got {chars}"
        )));
    }
    Ok(())
}
