//! TikSpin's domain core: the rules, the SQL and the JSON shapes of the 极简版抖音 API, with no
//! knowledge of Spin. It reaches the outside only through [`ports`]; the Spin adapters implement
//! them with spin-sdk, native tests implement them on real SQLite (`testing`, feature
//! `rusqlite`).
//!
//! A request flows the way an axum handler does: the adapter builds [`params::Params`] once,
//! a service function (e.g. [`accounts::register`]) takes an [`env::Env`] and the params and
//! returns `Result<Payload, ApiError>`, and [`api::Reply`] turns that into the JSON body once.
//!
//! No global state: everything a call needs comes through its arguments. The one exception is
//! `jsonwebtoken`'s process-wide crypto provider, which [`auth::jwt`] installs on first use.

pub mod accounts;
pub mod api;
pub mod auth;
pub mod cache;
pub mod chat;
pub mod comments;
pub mod db;
pub mod env;
pub mod favorites;
pub mod feed;
pub mod follows;
pub mod jobs;
pub mod json;
pub mod limits;
pub mod messages;
pub mod migrate;
pub mod model;
pub mod params;
pub mod ports;
pub mod publish;
pub mod schema;
pub mod social;
pub mod throttle;
pub mod time;
pub mod urls;
pub mod users;
pub mod videos;

#[cfg(feature = "rusqlite")]
pub mod testing;

pub use api::{ApiError, Reply};
pub use env::{Config, Env};
pub use params::Params;
pub use ports::{Dialect, Kv, Rows, Sql, SqlError, Value};
pub use urls::Urls;
