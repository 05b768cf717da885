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
use std::sync::Arc;

/// Connections and stores shared by all instances of the app.
pub struct Services {
    pub key_value: HashMap<String, Arc<key_value::KvStore>>,
    pub sqlite: HashMap<String, Arc<sqlite::SqlitePool>>,
    pub redis: redis::RedisClients,
    pub mysql: mysql::MysqlPools,
}
