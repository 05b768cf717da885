//! Request parameters, parsed once. The client sends parameters in the query string even on
//! POST, so the query wins; an `application/x-www-form-urlencoded` body fills in what the query
//! lacks, and the caller adds multipart text fields with [`Params::insert`].

use std::collections::HashMap;

use crate::api::ApiError;

/// IDs must survive a JavaScript client: JSON numbers are exact only below 2^53.
pub const MAX_ID: i64 = (1 << 53) - 1;

#[derive(Clone, Debug, Default)]
pub struct Params {
    values: HashMap<String, String>,
    bearer: Option<String>,
}

impl Params {
    pub fn from_query(query: &str) -> Self {
        let mut params = Params::default();
        params.extend_urlencoded(query.strip_prefix('?').unwrap_or(query).as_bytes());
        params
    }

    /// Query string, then the body if it is form-encoded (other bodies are left to the caller).
    pub fn from_request(query: &str, content_type: Option<&str>, body: &[u8]) -> Self {
        let mut params = Self::from_query(query);
        if content_type.is_some_and(is_form_urlencoded) {
            params.extend_urlencoded(body);
        }
        params
    }

    /// Remembers an `Authorization: Bearer <token>` header; the `token` parameter still wins.
    pub fn with_authorization(mut self, header: Option<&str>) -> Self {
        self.bearer = header.and_then(bearer_token).map(str::to_owned);
        self
    }

    /// Adds a value unless the name is already set: what came first (the query) wins.
    pub fn insert(&mut self, name: impl Into<String>, value: impl Into<String>) {
        self.values
            .entry(name.into())
            .or_insert_with(|| value.into());
    }

    fn extend_urlencoded(&mut self, input: &[u8]) {
        for (name, value) in form_urlencoded::parse(input) {
            self.insert(name, value);
        }
    }

    /// The raw value, empty or not.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    /// The value, with an empty one treated as absent (clients send `token=` when logged out).
    pub fn optional_str(&self, name: &str) -> Option<&str> {
        self.get(name).filter(|v| !v.is_empty())
    }

    pub fn required_str(&self, name: &str) -> Result<&str, ApiError> {
        match self.get(name) {
            None => Err(ApiError::bad_parameter(format!(
                "missing parameter `{name}`"
            ))),
            Some("") => Err(ApiError::bad_parameter(format!(
                "parameter `{name}` is empty"
            ))),
            Some(v) => Ok(v),
        }
    }

    pub fn optional_i64(&self, name: &str) -> Result<Option<i64>, ApiError> {
        self.optional_str(name)
            .map(|raw| parse_i64(name, raw))
            .transpose()
    }

    pub fn required_i64(&self, name: &str) -> Result<i64, ApiError> {
        parse_i64(name, self.required_str(name)?)
    }

    /// An integer that must be one of `allowed` (e.g. `action_type` 1 or 2).
    pub fn required_choice(&self, name: &str, allowed: &[i64]) -> Result<i64, ApiError> {
        let v = self.required_i64(name)?;
        if allowed.contains(&v) {
            Ok(v)
        } else {
            let list: Vec<String> = allowed.iter().map(i64::to_string).collect();
            Err(ApiError::bad_parameter(format!(
                "parameter `{name}` must be one of {}",
                list.join(", ")
            )))
        }
    }

    /// A positive id below 2^53.
    pub fn required_id(&self, name: &str) -> Result<i64, ApiError> {
        check_id(name, self.required_i64(name)?)
    }

    /// Like [`required_id`](Self::required_id), but absent, empty or `0` mean "none" (the client
    /// sends `user_id=0` for "myself").
    pub fn optional_id(&self, name: &str) -> Result<Option<i64>, ApiError> {
        match self.optional_i64(name)? {
            None | Some(0) => Ok(None),
            Some(v) => check_id(name, v).map(Some),
        }
    }

    /// The `token` parameter, else the bearer token from the `Authorization` header.
    pub fn token(&self) -> Option<&str> {
        self.optional_str("token").or(self.bearer.as_deref())
    }
}

fn parse_i64(name: &str, raw: &str) -> Result<i64, ApiError> {
    raw.trim().parse().map_err(|_| {
        ApiError::bad_parameter(format!(
            "parameter `{name}` must be an integer, got {raw:?}"
        ))
    })
}

fn check_id(name: &str, v: i64) -> Result<i64, ApiError> {
    if v <= 0 {
        Err(ApiError::bad_parameter(format!(
            "parameter `{name}` must be a positive id, got {v}"
        )))
    } else if v > MAX_ID {
        Err(ApiError::bad_parameter(format!(
            "parameter `{name}` is out of range"
        )))
    } else {
        Ok(v)
    }
}

fn is_form_urlencoded(content_type: &str) -> bool {
    content_type.split(';').next().is_some_and(|mime| {
        mime.trim()
            .eq_ignore_ascii_case("application/x-www-form-urlencoded")
    })
}

fn bearer_token(header: &str) -> Option<&str> {
    let (scheme, token) = header.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// The route key of a path: the same with or without a trailing slash, so `/douyin/feed/` and
/// `/douyin/feed` match one route without a redirect (a redirected POST loses its body).
pub fn normalize_path(path: &str) -> &str {
    let path = path.split(['?', '#']).next().unwrap_or(path);
    let trimmed = path.trim_end_matches('/');
    if trimmed.is_empty() {
        "/"
    } else {
        trimmed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::BAD_PARAMETER;

    #[test]
    fn query_wins_over_body_and_insert() {
        let mut p = Params::from_request(
            "username=q&x=%E4%BD%A0%F0%9F%98%80",
            Some("application/x-www-form-urlencoded; charset=utf-8"),
            b"username=b&password=secret+1",
        );
        p.insert("username", "multipart");
        p.insert("title", "t");
        assert_eq!(p.get("username"), Some("q"));
        assert_eq!(p.get("password"), Some("secret 1"));
        assert_eq!(p.get("x"), Some("你😀"));
        assert_eq!(p.get("title"), Some("t"));
        let json_body = Params::from_request("", Some("application/json"), b"password=x");
        assert_eq!(json_body.get("password"), None);
    }

    #[test]
    fn ids_are_checked_with_the_parameter_named() {
        let p = Params::from_query("a=12&b=abc&c=-3&d=0&e=9007199254740992&f=&g=%2012");
        assert_eq!(p.required_id("a").unwrap(), 12);
        for (name, needle) in [
            ("b", "integer"),
            ("c", "positive"),
            ("d", "positive"),
            ("e", "range"),
            ("f", "empty"),
            ("z", "missing"),
        ] {
            let err = p.required_id(name).unwrap_err();
            assert_eq!(err.code, BAD_PARAMETER);
            assert!(
                err.msg.contains(&format!("`{name}`")) && err.msg.contains(needle),
                "{name}: {}",
                err.msg
            );
        }
        assert_eq!(p.optional_id("d").unwrap(), None);
        assert_eq!(p.optional_id("f").unwrap(), None);
        assert_eq!(p.optional_id("g").unwrap(), Some(12));
        assert!(p.optional_id("c").is_err());
        assert!(p.required_choice("a", &[1, 2]).is_err());
    }

    #[test]
    fn token_from_parameter_or_bearer() {
        let p = Params::from_query("token=abc").with_authorization(Some("Bearer xyz"));
        assert_eq!(p.token(), Some("abc"));
        let p = Params::from_query("token=").with_authorization(Some("bearer  xyz "));
        assert_eq!(p.token(), Some("xyz"));
        let p = Params::from_query("").with_authorization(Some("Basic Zm9v"));
        assert_eq!(p.token(), None);
    }

    #[test]
    fn paths_match_with_or_without_trailing_slash() {
        assert_eq!(normalize_path("/douyin/feed/"), "/douyin/feed");
        assert_eq!(normalize_path("/douyin/feed"), "/douyin/feed");
        assert_eq!(normalize_path("/douyin/user/?x=1"), "/douyin/user");
        assert_eq!(normalize_path("/"), "/");
    }
}
