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

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

/// Connections and stores shared by all instances of the app.
pub struct Services {
    pub key_value: HashMap<String, Arc<key_value::KvStore>>,
    pub sqlite: HashMap<String, PathBuf>,
    pub redis: redis::RedisClients,
    pub mysql: mysql::MysqlPools,
}

/// Runs blocking work (SQLite) without stalling the async executor's other tasks.
pub(crate) fn blocking<R>(f: impl FnOnce() -> R) -> R {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        _ => f(),
    }
}
