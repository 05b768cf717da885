//! Spin's host capabilities, one module each, behind the interfaces generated from `wit/`.
//!
//! Each module implements one `fermyon:spin@2.0.0` interface for [`InstanceState`] and checks
//! the component's grants first: a store, database or address it did not declare is refused
//! the way Spin refuses it.
//!
//! [`InstanceState`]: crate::state::InstanceState

pub mod http;
pub mod key_value;
pub mod mysql;
pub mod redis;
pub mod sqlite;
pub mod variables;
pub mod wasi_keyvalue;

use std::collections::HashMap;
use std::sync::Arc;

/// Connections and stores shared by all instances of the app.
pub struct Services {
    /// Which costs the capabilities pay (see [`crate::profile`]).
    pub profile: crate::profile::Profile,
    pub key_value: HashMap<String, Arc<key_value::KvStore>>,
    pub sqlite: HashMap<String, Arc<sqlite::Database>>,
    pub redis: redis::RedisClients,
    pub mysql: mysql::MysqlPools,
    /// Per-call variable resolution (the `spin` profile).
    pub variables: variables::Resolver,
    /// The app's metrics, when `--metrics-listen` (or OTLP metrics) is on.
    pub metrics: Option<Arc<crate::metrics::Metrics>>,
}

/// Runs blocking work the way Spin's providers and key-value store do: in
/// `tokio::task::block_in_place`, which hands this worker's other tasks to another thread
/// first. Off a multi-threaded runtime (where that is not allowed) it just runs `f`.
pub fn block_in_place<R>(f: impl FnOnce() -> R) -> R {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current() {
        Ok(h) if h.runtime_flavor() == RuntimeFlavor::MultiThread => tokio::task::block_in_place(f),
        _ => f(),
    }
}
