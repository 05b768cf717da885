//! The `user` route group: register, login, profile.
//!
//! Each service takes the request's [`Env`] and [`Params`] and returns its payload or an
//! [`ApiError`]; the component wraps the result with [`crate::api::Reply::from_result`]. Each
//! runs its SQL under [`with_schema`], so a fresh database is migrated by the first request.

use serde::Serialize;
use unicode_normalization::UnicodeNormalization;

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
    // Before the password is hashed: a refused name costs no argon2id.
    if is_reserved_username(username) {
        return Err(ApiError::username_reserved());
    }
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

/// Names nobody may register, as [`username_key`]s: the system user's (the welcome video's
/// author, [`users::SYSTEM_USER_NAME`]) and a few that read as the service speaking. Refusing
/// them at registration is what keeps anyone from passing as the system user; the system user
/// itself is created by the schema migration, never by registration.
pub const RESERVED_USERNAMES: &[&str] = &["tikspin", "system", "admin", "administrator", "root"];

/// Whether `username` is one of [`RESERVED_USERNAMES`] once normalised: "TikSpin", "TIKSPIN",
/// fullwidth "ＴｉｋＳｐｉｎ", "Tik Spin", "tik_spin" and "Tik\u{200B}Spin" are all "tikspin".
pub fn is_reserved_username(username: &str) -> bool {
    let key = username_key(username);
    RESERVED_USERNAMES.iter().any(|reserved| *reserved == key)
}

/// The form two usernames are compared in when one must not pass for the other: NFKC (so
/// fullwidth, circled, mathematical-bold and other compatibility forms become the plain letter),
/// lower-cased (full Unicode case mapping), NFKC again (lower-casing can leave a decomposed
/// sequence, e.g. "İ" → "i\u{307}"), then only letters and digits kept: spaces, punctuation,
/// symbols, combining marks left over and invisible format characters (zero-width space, joiners,
/// bidi controls, soft hyphen) all drop out, since none of them makes a name read differently.
///
/// Only the reserved-name rule uses it: stored usernames stay exactly as registered (unique
/// byte for byte). Look-alikes from other scripts (Cyrillic "Т" for Latin "T") are not folded;
/// that needs Unicode's confusables table (UTS #39), which this rule does not carry.
pub fn username_key(username: &str) -> String {
    let lowered: String = username.nfkc().flat_map(char::to_lowercase).collect();
    lowered.nfkc().filter(|c| c.is_alphanumeric()).collect()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_system_user_and_its_variants_are_reserved() {
        for name in [
            "TikSpin",
            "tikspin",
            "TIKSPIN",
            "tIkSpIn",
            "ＴｉｋＳｐｉｎ", // fullwidth
            "𝐓𝐢𝐤𝐒𝐩𝐢𝐧",        // mathematical bold
            "ⓉⓘⓚⓈⓟⓘⓝ",        // circled
            "Tik Spin",
            "tik_spin",
            "Tik-Spin.",
            "Tik\u{200B}Spin",        // zero-width space
            "Tik\u{00AD}Spin",        // soft hyphen
            "\u{202E}TikSpin",        // a bidi override
            "TİKSPİN",                // dotted capital I lower-cases to i + U+0307
            "TikSpin\u{0332}",        // a combining underline
            "ｔｉｋｓｐｉｎ\u{3000}", // an ideographic space is whitespace too
            "Admin",
            "ROOT",
            "System",
            "administrator",
        ] {
            assert!(is_reserved_username(name), "{name:?} must be reserved");
        }
    }

    #[test]
    fn ordinary_names_are_not_reserved() {
        for name in [
            "TikSpin2",
            "TikSpinFan",
            "tiks",
            "adminx",
            "rooted",
            "alice",
            "张伟",
            "🦀",
            "Tíkspin", // another letter, not a variant
            "Тikspin", // Cyrillic Т: a look-alike this rule does not fold (see username_key)
        ] {
            assert!(!is_reserved_username(name), "{name:?} is not reserved");
        }
    }

    #[test]
    fn keys_fold_compatibility_forms_and_case() {
        assert_eq!(username_key("ＴｉｋＳｐｉｎ"), "tikspin");
        assert_eq!(username_key("ﬁsh"), "fish"); // the fi ligature
        assert_eq!(username_key("Straße"), "straße");
        assert_eq!(username_key("张伟"), "张伟");
        assert_eq!(username_key("🦀"), "");
    }

    #[test]
    fn the_system_users_names_are_reserved_or_unregistrable() {
        assert!(is_reserved_username(users::SYSTEM_USER_NAME));
        // The fallback (used when an ordinary account took the name before it was reserved) is
        // longer than any registration may be, so no account can hold it either.
        assert!(users::SYSTEM_USER_FALLBACK_NAME.chars().count() > USERNAME_MAX_CHARS);
        assert!(check_username(users::SYSTEM_USER_FALLBACK_NAME).is_err());
    }
}
