//! What a service call gets besides its parameters: the ports, the configuration, and the
//! request's clock and client address (passed in, so tests can pin them).

use crate::ports::{Kv, Sql};
use crate::time::DEFAULT_TZ_OFFSET_MINUTES;
use crate::urls::Urls;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// HS256 key for session tokens; required (an empty secret refuses to sign or verify).
    pub jwt_secret: String,
    /// The absolute base the client reaches this app at, e.g. `http://192.168.1.5:3000`. The
    /// adapter fills it from the `public_base_url` variable, else from the request's Host, so
    /// media URLs never say `localhost` to a phone.
    pub public_base_url: String,
    /// The deployment's time zone for `"MM-DD"` dates, in minutes east of UTC.
    pub tz_offset_minutes: i32,
}

impl Config {
    pub fn new(jwt_secret: impl Into<String>, public_base_url: impl Into<String>) -> Self {
        Config {
            jwt_secret: jwt_secret.into(),
            public_base_url: public_base_url.into(),
            tz_offset_minutes: DEFAULT_TZ_OFFSET_MINUTES,
        }
    }
}

#[derive(Clone, Copy)]
pub struct Env<'a> {
    pub sql: &'a dyn Sql,
    pub kv: &'a dyn Kv,
    pub config: &'a Config,
    /// The request's "now", epoch ms.
    pub now_ms: i64,
    /// The client's address, for throttling: the real client behind the `trusted_proxies`
    /// (the adapter's `client_ip`), else the direct peer; may be empty when unknown.
    pub client_addr: &'a str,
}

impl Env<'_> {
    pub fn urls(&self) -> Urls {
        Urls::new(&self.config.public_base_url)
    }
}
