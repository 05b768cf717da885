//! The response envelope and the business error codes.
//!
//! Every response body is one JSON object: `status_code` (int32, 0 = success) and `status_msg`
//! (string), always, plus the endpoint's own fields at top level. Business errors travel with
//! HTTP 200 (the client treats any non-2xx as a network failure); the adapter picks the HTTP
//! status, which is 200 except for an unknown route (404) or method (405).
//!
//! | code | const | meaning |
//! |---:|---|---|
//! | 0 | [`SUCCESS`] | success |
//! | 1001 | [`BAD_PARAMETER`] | a parameter is missing, empty, malformed or out of range; the message names it |
//! | 1002 | [`AUTH_REQUIRED`] | the endpoint needs a token and none was sent |
//! | 1003 | [`INVALID_TOKEN`] | the token is malformed, forged, expired, not HS256, or its user no longer exists |
//! | 1004 | [`NOT_FOUND`] | the user/video/comment a parameter names does not exist |
//! | 1005 | [`FORBIDDEN`] | signed in but not allowed (e.g. deleting someone else's comment) |
//! | 1006 | [`PAYLOAD_TOO_LARGE`] | an upload over the configured size |
//! | 1007 | [`UNSUPPORTED_MEDIA`] | an upload that is not what the endpoint accepts |
//! | 1008 | [`TOO_MANY_ATTEMPTS`] | login throttled; the message says how long to wait |
//! | 1009 | [`NO_SUCH_ROUTE`] | unknown path (sent with HTTP 404) |
//! | 1010 | [`METHOD_NOT_ALLOWED`] | wrong method (sent with HTTP 405) |
//! | 1011 | [`RATE_LIMITED`] | an abuse limit ([`crate::limits`]): too many of this action from this user or address; the message and the `Retry-After` header say how many seconds until one is allowed (HTTP 200 like every business error) |
//! | 1500 | [`INTERNAL`] | anything unexpected; details go to the log, never to the client |
//! | 1501 | [`SCHEMA_MISSING`] | the schema was missing and migrating it failed |
//! | 1502 | [`MISCONFIGURED`] | a deployment variable has a value the component cannot use; the message names it (e.g. a limit that is not a number) |
//! | 1503 | [`BUSY`] | the database stayed locked through every retry; retrying later helps |
//! | 2001 | [`USERNAME_TAKEN`] | register: the username exists |
//! | 2002 | [`WRONG_CREDENTIALS`] | login: unknown username or wrong password (one message for both) |
//! | 2003 | [`USERNAME_RESERVED`] | register: the username is reserved (the system user's, or one that reads as the service's own; compared after NFKC and lower-casing, see [`crate::accounts::username_key`]) |
//! | 2004 | [`LOGIN_UNAVAILABLE`] | login: the throttle's counters cannot be read (the key-value store is down), so no password is checked; retrying shortly helps |
//! | 3000–3999 | | reserved: video (feed, publish) |
//! | 3001 | [`TITLE_MISSING`] | publish: no title, or only whitespace |
//! | 3002 | [`TITLE_TOO_LONG`] | publish: title over 100 characters |
//! | 3003 | [`VIDEO_EMPTY`] | publish: the file is empty |
//! | 3004 | [`NOT_A_VIDEO`] | publish: the file is not an MP4/MOV video (judged by content) |
//! | 3005 | [`VIDEO_TRUNCATED`] | publish: the file looks like a video but is cut short |
//! | 3006 | [`VIDEO_TOO_LARGE`] | publish: over the configured size; the message gives the limit in MB |
//! | 3007 | [`STORAGE_FAILED`] | publish: the video could not be stored; retrying later helps |
//! | 3008 | [`VIDEO_MISSING`] | publish: no `data` file part |
//! | 4000–4999 | | reserved: interaction (favorites, comments) |
//! | 4001 | [`COMMENT_EMPTY`] | comment: `comment_text` missing, empty or only whitespace |
//! | 4002 | [`COMMENT_TOO_LONG`] | comment: `comment_text` over 500 characters |
//! | 5000–5999 | | reserved: social (follows) |
//! | 5001 | [`CANNOT_FOLLOW_SELF`] | relation/action: `to_user_id` is the caller |
//! | 5002 | [`RELATION_USER_NOT_FOUND`] | relation: `to_user_id` / `user_id` names no user |
//! | 5003 | [`BAD_RELATION_ACTION`] | relation/action: `action_type` is not 1 (follow) or 2 (unfollow) |
//! | 6000–6999 | | reserved: chat (messages) |
//! | 6001 | [`MESSAGE_EMPTY`] | message/action: `content` missing, empty or only whitespace |
//! | 6002 | [`MESSAGE_TOO_LONG`] | message/action: `content` over 1000 characters |
//! | 6003 | [`CANNOT_MESSAGE_SELF`] | message: `to_user_id` is the caller |
//! | 6004 | [`MESSAGE_PEER_NOT_FOUND`] | message: `to_user_id` names no user |
//! | 6005 | [`BAD_MESSAGE_ACTION`] | message/action: `action_type` is not 1 (send) |
//! | 6006 | [`BAD_PRE_MSG_TIME`] | message/chat: `pre_msg_time` not an integer, negative, or more than 5 minutes ahead |

use std::fmt;

use serde::Serialize;

use crate::db::StorageError;
use crate::json::Object;
use crate::ports::SqlError;

pub const SUCCESS: i32 = 0;
pub const BAD_PARAMETER: i32 = 1001;
pub const AUTH_REQUIRED: i32 = 1002;
pub const INVALID_TOKEN: i32 = 1003;
pub const NOT_FOUND: i32 = 1004;
pub const FORBIDDEN: i32 = 1005;
pub const PAYLOAD_TOO_LARGE: i32 = 1006;
pub const UNSUPPORTED_MEDIA: i32 = 1007;
pub const TOO_MANY_ATTEMPTS: i32 = 1008;
pub const NO_SUCH_ROUTE: i32 = 1009;
pub const METHOD_NOT_ALLOWED: i32 = 1010;
pub const RATE_LIMITED: i32 = 1011;
pub const INTERNAL: i32 = 1500;
pub const SCHEMA_MISSING: i32 = 1501;
pub const MISCONFIGURED: i32 = 1502;
pub const BUSY: i32 = 1503;
pub const USERNAME_TAKEN: i32 = 2001;
pub const WRONG_CREDENTIALS: i32 = 2002;
pub const USERNAME_RESERVED: i32 = 2003;
pub const LOGIN_UNAVAILABLE: i32 = 2004;
pub const TITLE_MISSING: i32 = 3001;
pub const TITLE_TOO_LONG: i32 = 3002;
pub const VIDEO_EMPTY: i32 = 3003;
pub const NOT_A_VIDEO: i32 = 3004;
pub const VIDEO_TRUNCATED: i32 = 3005;
pub const VIDEO_TOO_LARGE: i32 = 3006;
pub const STORAGE_FAILED: i32 = 3007;
pub const VIDEO_MISSING: i32 = 3008;
pub const COMMENT_EMPTY: i32 = 4001;
pub const COMMENT_TOO_LONG: i32 = 4002;
pub const CANNOT_FOLLOW_SELF: i32 = 5001;
pub const RELATION_USER_NOT_FOUND: i32 = 5002;
pub const BAD_RELATION_ACTION: i32 = 5003;
pub const MESSAGE_EMPTY: i32 = 6001;
pub const MESSAGE_TOO_LONG: i32 = 6002;
pub const CANNOT_MESSAGE_SELF: i32 = 6003;
pub const MESSAGE_PEER_NOT_FOUND: i32 = 6004;
pub const BAD_MESSAGE_ACTION: i32 = 6005;
pub const BAD_PRE_MSG_TIME: i32 = 6006;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiError {
    pub code: i32,
    pub msg: String,
}

impl ApiError {
    pub fn new(code: i32, msg: impl Into<String>) -> Self {
        ApiError {
            code,
            msg: msg.into(),
        }
    }
    pub fn bad_parameter(msg: impl Into<String>) -> Self {
        Self::new(BAD_PARAMETER, msg)
    }
    pub fn auth_required() -> Self {
        Self::new(AUTH_REQUIRED, "please log in: this request needs a token")
    }
    pub fn invalid_token() -> Self {
        Self::new(
            INVALID_TOKEN,
            "invalid or expired token, please log in again",
        )
    }
    pub fn not_found(what: impl Into<String>) -> Self {
        Self::new(NOT_FOUND, what)
    }
    pub fn forbidden(msg: impl Into<String>) -> Self {
        Self::new(FORBIDDEN, msg)
    }
    pub fn payload_too_large(msg: impl Into<String>) -> Self {
        Self::new(PAYLOAD_TOO_LARGE, msg)
    }
    pub fn unsupported_media(msg: impl Into<String>) -> Self {
        Self::new(UNSUPPORTED_MEDIA, msg)
    }
    pub fn too_many_attempts(retry_after_secs: u64) -> Self {
        Self::new(
            TOO_MANY_ATTEMPTS,
            format!("too many attempts, try again in {retry_after_secs} s"),
        )
    }
    pub fn no_such_route() -> Self {
        Self::new(NO_SUCH_ROUTE, "no such endpoint")
    }
    pub fn method_not_allowed() -> Self {
        Self::new(METHOD_NOT_ALLOWED, "method not allowed")
    }
    pub fn internal() -> Self {
        Self::new(INTERNAL, "internal error, please try again later")
    }
    pub fn username_taken() -> Self {
        Self::new(USERNAME_TAKEN, "username already taken")
    }
    pub fn wrong_credentials() -> Self {
        Self::new(WRONG_CREDENTIALS, "wrong username or password")
    }
    pub fn username_reserved() -> Self {
        Self::new(
            USERNAME_RESERVED,
            "this username is reserved, please choose another",
        )
    }
    pub fn login_unavailable() -> Self {
        Self::new(
            LOGIN_UNAVAILABLE,
            "login is temporarily unavailable, try again shortly",
        )
    }

    /// An unexpected failure: the detail goes to stderr (the component's log under Spin), the
    /// client gets the generic message.
    pub fn internal_because(detail: impl fmt::Display) -> Self {
        eprintln!("tikspin: internal error: {detail}");
        Self::internal()
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.msg, self.code)
    }
}

impl std::error::Error for ApiError {}

impl From<SqlError> for ApiError {
    fn from(err: SqlError) -> Self {
        match err {
            // Keeps its own code so `with_schema` can still recognise it after the conversion.
            SqlError::MissingSchema(_) => {
                eprintln!("tikspin: {err}");
                Self::new(
                    SCHEMA_MISSING,
                    "the service is starting up, please try again",
                )
            }
            SqlError::Busy(_) => {
                eprintln!("tikspin: {err}");
                Self::new(BUSY, "the server is busy, please try again")
            }
            other => Self::internal_because(other),
        }
    }
}

impl StorageError for ApiError {
    fn is_busy(&self) -> bool {
        self.code == BUSY
    }
    fn is_missing_schema(&self) -> bool {
        self.code == SCHEMA_MISSING
    }
}

/// An endpoint's own top-level fields. `failed()` is the shape the endpoint still carries when
/// it fails, so a failure can never drop a field the client relies on (register/login's
/// `user_id: 0, token: ""`, a list's `[]`).
pub trait Payload: Serialize {
    fn failed() -> Self;

    /// Writes the payload's fields into the reply's object, after `status_code` and
    /// `status_msg`. serde_json writes them unless the payload lists wire models, which write
    /// themselves ([`crate::json`]).
    fn write_fields(&self, reply: &mut Object<'_>) -> serde_json::Result<()> {
        reply.serde_fields(self)
    }
}

/// For endpoints with no fields besides the envelope.
#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct Empty {}

impl Payload for Empty {
    fn failed() -> Self {
        Empty {}
    }
}

/// A serialized response body. HTTP status and headers are the adapter's job.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    status_code: i32,
    body: Vec<u8>,
}

impl Reply {
    pub const CONTENT_TYPE: &'static str = "application/json; charset=utf-8";

    pub fn ok<P: Payload>(payload: P) -> Self {
        Self::build(SUCCESS, "success", &payload)
    }

    /// A failure, shaped by the endpoint's payload type: `Reply::error::<Session>(e)`.
    pub fn error<P: Payload>(err: ApiError) -> Self {
        let code = if err.code == SUCCESS {
            INTERNAL
        } else {
            err.code
        };
        Self::build(code, &err.msg, &P::failed())
    }

    pub fn from_result<P: Payload>(result: Result<P, ApiError>) -> Self {
        match result {
            Ok(payload) => Self::ok(payload),
            Err(err) => Self::error::<P>(err),
        }
    }

    fn build<P: Payload>(status_code: i32, status_msg: &str, payload: &P) -> Self {
        let mut body = Vec::new();
        let mut reply = Object::begin(&mut body);
        reply.int("status_code", status_code.into());
        reply.str("status_msg", status_msg);
        match payload.write_fields(&mut reply) {
            Ok(()) => {
                reply.end();
                Reply { status_code, body }
            }
            Err(e) => {
                eprintln!("tikspin: cannot serialize a reply: {e}");
                let body = format!(
                    r#"{{"status_code":{INTERNAL},"status_msg":"internal error, please try again later"}}"#
                );
                Reply {
                    status_code: INTERNAL,
                    body: body.into_bytes(),
                }
            }
        }
    }

    pub fn status_code(&self) -> i32 {
        self.status_code
    }

    pub fn body(&self) -> &[u8] {
        &self.body
    }

    pub fn into_body(self) -> Vec<u8> {
        self.body
    }
}

impl<P: Payload> From<Result<P, ApiError>> for Reply {
    fn from(result: Result<P, ApiError>) -> Self {
        Self::from_result(result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    #[derive(Serialize)]
    struct List {
        video_list: Vec<i64>,
        next_time: i64,
    }
    impl Payload for List {
        fn failed() -> Self {
            List {
                video_list: Vec::new(),
                next_time: 0,
            }
        }
    }

    fn parse(reply: &Reply) -> Value {
        serde_json::from_slice(reply.body()).unwrap()
    }

    #[test]
    fn success_has_envelope_and_top_level_fields() {
        let reply = Reply::ok(List {
            video_list: vec![1, 2],
            next_time: 5,
        });
        assert_eq!(
            parse(&reply),
            json!({"status_code": 0, "status_msg": "success", "video_list": [1, 2], "next_time": 5})
        );
    }

    #[test]
    fn failure_keeps_the_endpoint_fields() {
        let reply = Reply::from_result::<List>(Err(ApiError::not_found("no such user")));
        assert_eq!(reply.status_code(), NOT_FOUND);
        assert_eq!(
            parse(&reply),
            json!({"status_code": 1004, "status_msg": "no such user", "video_list": [], "next_time": 0})
        );
        let empty = Reply::error::<Empty>(ApiError::no_such_route());
        assert_eq!(
            parse(&empty),
            json!({"status_code": 1009, "status_msg": "no such endpoint"})
        );
    }

    #[test]
    fn sql_errors_do_not_leak_details() {
        let err = ApiError::from(SqlError::Other("near \"users\": syntax error".into()));
        assert_eq!(err.code, INTERNAL);
        assert!(!err.msg.contains("users"));
        assert!(ApiError::from(SqlError::MissingSchema("x".into())).is_missing_schema());
        assert!(ApiError::from(SqlError::Busy("x".into())).is_busy());
    }
}
