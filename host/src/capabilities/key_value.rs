//! `fermyon:spin/key-value`: stores of type `spin` (a SQLite file, Spin's own table layout) and
//! `redis`.

use std::path::Path;
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use wasmtime::component::Resource;

use crate::bindings::fermyon::spin2_0_0::key_value::{Error, Host, HostStore};
use crate::state::InstanceState;

pub enum KvStore {
    Sqlite {
        label: String,
        conn: Mutex<rusqlite::Connection>,
    },
    Redis {
        client: super::redis::SharedConnection,
    },
}

/// An open store handle held by an instance.
pub struct OpenStore(Arc<KvStore>);

impl KvStore {
    pub fn sqlite(label: &str, path: &Path) -> Result<Self> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let conn = rusqlite::Connection::open(path).with_context(|| {
            format!(
                "cannot open key-value store {label:?} at {}",
                path.display()
            )
        })?;
        // One connection serves every instance; WAL lets readers proceed beside the writer.
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.execute(
            "CREATE TABLE IF NOT EXISTS spin_key_value (store TEXT NOT NULL, key TEXT NOT NULL, value BLOB NOT NULL, PRIMARY KEY (store, key))",
            [],
        )?;
        Ok(Self::Sqlite {
            label: label.to_string(),
            conn: Mutex::new(conn),
        })
    }

    pub async fn redis(url: &str) -> Result<Self> {
        Ok(Self::Redis {
            client: super::redis::SharedConnection::connect(url).await?,
        })
    }

    fn with_sqlite<R>(
        label: &str,
        conn: &Mutex<rusqlite::Connection>,
        f: impl FnOnce(&rusqlite::Connection, &str) -> rusqlite::Result<R>,
    ) -> Result<R, Error> {
        // One short statement under the store's lock (WAL keeps it brief even beside writers).
        let conn = conn.lock().unwrap_or_else(|p| p.into_inner());
        f(&conn, label).map_err(|e| Error::Other(e.to_string()))
    }

    pub async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, Error> {
        match self {
            Self::Sqlite { label, conn } => Self::with_sqlite(label, conn, |c, store| {
                use rusqlite::OptionalExtension;
                c.prepare_cached("SELECT value FROM spin_key_value WHERE store = ?1 AND key = ?2")?
                    .query_row((store, key), |r| r.get(0))
                    .optional()
            }),
            Self::Redis { client } => client
                .query(redis::cmd("GET").arg(key))
                .await
                .map_err(redis_error),
        }
    }

    pub async fn set(&self, key: &str, value: &[u8]) -> Result<(), Error> {
        match self {
            Self::Sqlite { label, conn } => Self::with_sqlite(label, conn, |c, store| {
                c.prepare_cached(
                    "INSERT INTO spin_key_value (store, key, value) VALUES (?1, ?2, ?3)
                     ON CONFLICT (store, key) DO UPDATE SET value = excluded.value",
                )?
                .execute((store, key, value))
                .map(drop)
            }),
            Self::Redis { client } => client
                .query::<()>(redis::cmd("SET").arg(key).arg(value))
                .await
                .map_err(redis_error),
        }
    }

    pub async fn delete(&self, key: &str) -> Result<(), Error> {
        match self {
            Self::Sqlite { label, conn } => Self::with_sqlite(label, conn, |c, store| {
                c.prepare_cached("DELETE FROM spin_key_value WHERE store = ?1 AND key = ?2")?
                    .execute((store, key))
                    .map(drop)
            }),
            Self::Redis { client } => client
                .query::<()>(redis::cmd("DEL").arg(key))
                .await
                .map_err(redis_error),
        }
    }

    pub async fn exists(&self, key: &str) -> Result<bool, Error> {
        match self {
            Self::Sqlite { label, conn } => {
                Self::with_sqlite(label, conn, |c, store| {
                    c.prepare_cached("SELECT EXISTS (SELECT 1 FROM spin_key_value WHERE store = ?1 AND key = ?2)")?
                    .query_row((store, key), |r| r.get(0))
                })
            }
            Self::Redis { client } => client
                .query(redis::cmd("EXISTS").arg(key))
                .await
                .map_err(redis_error),
        }
    }

    pub async fn keys(&self) -> Result<Vec<String>, Error> {
        match self {
            Self::Sqlite { label, conn } => Self::with_sqlite(label, conn, |c, store| {
                c.prepare_cached("SELECT key FROM spin_key_value WHERE store = ?1")?
                    .query_map([store], |r| r.get(0))?
                    .collect()
            }),
            Self::Redis { client } => client
                .query(redis::cmd("KEYS").arg("*"))
                .await
                .map_err(redis_error),
        }
    }
}

fn redis_error(e: redis::RedisError) -> Error {
    Error::Other(format!("redis: {e}"))
}

impl Host for InstanceState {}

impl HostStore for InstanceState {
    async fn open(
        &mut self,
        label: String,
    ) -> wasmtime::Result<Result<Resource<OpenStore>, Error>> {
        if !self.caps.key_value_stores.contains(&label) {
            return Ok(Err(Error::AccessDenied));
        }
        let Some(store) = self.services.key_value.get(&label) else {
            return Ok(Err(Error::NoSuchStore));
        };
        Ok(Ok(self.table.push(OpenStore(store.clone()))?))
    }

    async fn get(
        &mut self,
        this: Resource<OpenStore>,
        key: String,
    ) -> wasmtime::Result<Result<Option<Vec<u8>>, Error>> {
        let store = self.table.get(&this)?.0.clone();
        Ok(store.get(&key).await)
    }

    async fn set(
        &mut self,
        this: Resource<OpenStore>,
        key: String,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<(), Error>> {
        let store = self.table.get(&this)?.0.clone();
        Ok(store.set(&key, &value).await)
    }

    async fn delete(
        &mut self,
        this: Resource<OpenStore>,
        key: String,
    ) -> wasmtime::Result<Result<(), Error>> {
        let store = self.table.get(&this)?.0.clone();
        Ok(store.delete(&key).await)
    }

    async fn exists(
        &mut self,
        this: Resource<OpenStore>,
        key: String,
    ) -> wasmtime::Result<Result<bool, Error>> {
        let store = self.table.get(&this)?.0.clone();
        Ok(store.exists(&key).await)
    }

    async fn get_keys(
        &mut self,
        this: Resource<OpenStore>,
    ) -> wasmtime::Result<Result<Vec<String>, Error>> {
        let store = self.table.get(&this)?.0.clone();
        Ok(store.keys().await)
    }

    async fn drop(&mut self, this: Resource<OpenStore>) -> wasmtime::Result<()> {
        self.table.delete(this)?;
        Ok(())
    }
}
