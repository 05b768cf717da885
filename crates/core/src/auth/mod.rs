//! Who is calling: session tokens ([`jwt`]), password hashes ([`password`]), and the two ways an
//! endpoint asks for the caller.

pub mod jwt;
pub mod password;

use crate::api::ApiError;
use crate::env::Env;
use crate::params::Params;
use crate::users;

/// The caller of an endpoint that requires a token: missing → [`ApiError::auth_required`];
/// malformed, forged, expired, or for a user that no longer exists → [`ApiError::invalid_token`].
/// Costs one primary-key lookup, so a token outliving its account cannot write anything.
pub fn authenticate(env: &Env<'_>, params: &Params) -> Result<i64, ApiError> {
    let user_id = verified_token_user(env, params)?;
    if users::exists(env.sql, user_id)? {
        Ok(user_id)
    } else {
        Err(ApiError::invalid_token())
    }
}

/// The caller of an endpoint where the token is optional: any failure means anonymous, so a
/// stale token kept by the client never blanks the feed. No SQL: a token of a deleted user only
/// computes viewer flags that are all false anyway.
pub fn viewer(env: &Env<'_>, params: &Params) -> Option<i64> {
    let token = params.token()?;
    jwt::verify(&env.config.jwt_secret, token, env.now_ms).ok()
}

/// Checks the token's signature, algorithm and expiry (not the user's existence).
pub fn verified_token_user(env: &Env<'_>, params: &Params) -> Result<i64, ApiError> {
    let token = params.token().ok_or_else(ApiError::auth_required)?;
    jwt::verify(&env.config.jwt_secret, token, env.now_ms).map_err(ApiError::from)
}

pub fn issue_token(env: &Env<'_>, user_id: i64) -> Result<String, ApiError> {
    jwt::issue(&env.config.jwt_secret, user_id, env.now_ms).map_err(ApiError::from)
}
