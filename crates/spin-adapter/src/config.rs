//! Deployment settings from Spin variables (declared in `spin.toml`, set per deployment).

use spin_sdk::variables;
use tikspin_core::Config;

/// A variable the component declared; an undeclared or unset one reads as empty.
pub fn var(name: &str) -> String {
    variables::get(name).unwrap_or_default()
}

/// Settings every API component needs.
pub struct Settings {
    pub core: Config,
    /// Empty: Spin's SQLite `default`; `mysql://…`: MySQL.
    pub database_url: String,
}

impl Settings {
    /// `request_base` is the scheme and authority the request came in on, used when no
    /// `public_base_url` is configured (so a phone on the LAN gets URLs it can reach).
    pub fn load(request_base: &str) -> Settings {
        let public = var("public_base_url");
        let base = if public.is_empty() {
            request_base.to_string()
        } else {
            public
        };
        let mut core = Config::new(var("jwt_secret"), base);
        if let Ok(offset) = var("tz_offset_minutes").trim().parse::<i32>() {
            core.tz_offset_minutes = offset;
        }
        Settings {
            core,
            database_url: var("database_url"),
        }
    }
}
