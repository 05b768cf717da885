//! The core's ports implemented with spin-sdk, and the glue every component shares.
//!
//! A component stays thin: [`http::serve`] parses the request into [`Params`] once, builds the
//! [`tikspin_core::Env`] from Spin's variables, SQL and key-value, calls the core's service for
//! the route, and turns the [`Reply`] into a response once.
//!
//! [`Params`]: tikspin_core::Params
//! [`Reply`]: tikspin_core::Reply

pub mod arena;
pub mod blobs;
pub mod client_ip;
pub mod config;
pub mod encoding;
pub mod form;
pub mod http;
pub mod jobs;
pub mod kv;
pub mod limits;
pub mod sql;
