//! `fermyon:spin/key-value`: stores of type `spin` (a SQLite file, Spin's own table layout) and
//! `redis`.
//!
//! A `spin` store is one SQLite connection shared by every instance. What it costs depends on
//! the [`Profile`]:
//!
//! - `spin` (Spin's crates/key-value-spin): the connection is opened at the first `open` with
//!   rusqlite's defaults (the journal mode left alone); `open` and every operation run through
//!   `tokio::task::block_in_place`, and `exists` reads the value.
//! - `fast`: the connection is opened at start in WAL mode with `synchronous = NORMAL`, and
//!   operations run inline.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use anyhow::{Context, Result};
use wasmtime::component::Resource;

use crate::bindings::fermyon::spin2_0_0::key_value::{Error, Host, HostStore};
use crate::capabilities::block_in_place;
use crate::metrics::{Clock, KvOp};
use crate::profile::Profile;
use crate::state::InstanceState;

pub enum KvStore {
    Sqlite(SqliteKv),
    Redis {
        client: super::redis::SharedConnection,
    },
}

/// A store of type `spin`: Spin's `spin_key_value` table in a SQLite file.
pub struct SqliteKv {
    label: String,
    path: PathBuf,
    profile: Profile,
    conn: OnceLock<Mutex<rusqlite::Connection>>,
}

/// An open store handle held by an instance.
pub struct OpenStore(pub(crate) Arc<KvStore>);

const CREATE_TABLE: &str = "CREATE TABLE IF NOT EXISTS spin_key_value (store TEXT NOT NULL, key TEXT NOT NULL, value BLOB NOT NULL, PRIMARY KEY (store, key))";

impl KvStore {
    pub fn sqlite(label: &str, path: &Path, profile: Profile) -> Result<Self> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let kv = SqliteKv {
            label: label.to_string(),
            path: path.to_path_buf(),
            profile,
            conn: OnceLock::new(),
        };
        let context = || {
            format!(
                "cannot open key-value store {label:?} at {}",
                path.display()
            )
        };
        // Either way a bad path is a start error here; Spin would report it at the first `open`.
        let conn = kv.connect().with_context(context)?;
        match profile {
            Profile::Spin => drop(conn),
            Profile::Fast => {
                // One connection serves every instance; WAL lets readers proceed beside the
                // writer.
                conn.pragma_update(None, "journal_mode", "WAL")?;
                conn.pragma_update(None, "synchronous", "NORMAL")?;
                let _ = kv.conn.set(Mutex::new(conn));
            }
        }
        Ok(Self::Sqlite(kv))
    }

    pub async fn redis(url: &str) -> Result<Self> {
        Ok(Self::Redis {
            client: super::redis::SharedConnection::connect(url).await?,
        })
    }

    /// What an `open` of this store costs: Spin's `StoreManager::get` makes sure of the
    /// connection in `block_in_place`, every time.
    fn attach(&self) -> Result<(), Error> {
        match self {
            Self::Sqlite(kv) if kv.profile == Profile::Spin => {
                block_in_place(|| kv.connection().map(drop))
            }
            _ => Ok(()),
        }
    }

    pub async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, Error> {
        match self {
            Self::Sqlite(kv) => kv.run(|c, store| {
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
            Self::Sqlite(kv) => kv.run(|c, store| {
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
            Self::Sqlite(kv) => kv.run(|c, store| {
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
            // Spin's `exists` is its `get`.
            Self::Sqlite(kv) if kv.profile == Profile::Spin => Ok(self.get(key).await?.is_some()),
            Self::Sqlite(kv) => kv.run(|c, store| {
                c.prepare_cached(
                    "SELECT EXISTS (SELECT 1 FROM spin_key_value WHERE store = ?1 AND key = ?2)",
                )?
                .query_row((store, key), |r| r.get(0))
            }),
            Self::Redis { client } => client
                .query(redis::cmd("EXISTS").arg(key))
                .await
                .map_err(redis_error),
        }
    }

    /// `wasi:keyvalue/atomics.increment` as Spin's stores do it: SQLite reads the value as an
    /// 8-byte little-endian i64 (absent is 0) and writes the sum back in one transaction under
    /// the store's lock; Redis runs `INCRBY` (its value is the decimal text Redis keeps).
    /// Spin's SQLite store panics on a value that is not 8 bytes; here that is an error.
    pub async fn increment(&self, key: &str, delta: i64) -> Result<i64, Error> {
        match self {
            Self::Sqlite(kv) => {
                let mut result = Ok(0);
                kv.run_mut(|c, store| {
                    let tx = c.transaction()?;
                    let old: Option<Vec<u8>> = {
                        use rusqlite::OptionalExtension;
                        tx.prepare_cached(
                            "SELECT value FROM spin_key_value WHERE store = ?1 AND key = ?2",
                        )?
                        .query_row((store, key), |r| r.get(0))
                        .optional()?
                    };
                    let old = match old.map(<[u8; 8]>::try_from) {
                        None => 0,
                        Some(Ok(bytes)) => i64::from_le_bytes(bytes),
                        Some(Err(v)) => {
                            result = Err(Error::Other(format!(
                                "increment: the value of {key:?} is {} bytes, not an 8-byte integer",
                                v.len()
                            )));
                            return Ok(());
                        }
                    };
                    let new = old.wrapping_add(delta);
                    tx.prepare_cached(
                        "INSERT INTO spin_key_value (store, key, value) VALUES (?1, ?2, ?3)
                         ON CONFLICT (store, key) DO UPDATE SET value = excluded.value",
                    )?
                    .execute((store, key, new.to_le_bytes()))?;
                    tx.commit()?;
                    result = Ok(new);
                    Ok(())
                })?;
                result
            }
            Self::Redis { client } => client
                .query(redis::cmd("INCRBY").arg(key).arg(delta))
                .await
                .map_err(redis_error),
        }
    }

    /// A compare-and-swap on `key` (Spin's `new_compare_and_swap`): Redis gets a connection of
    /// its own, since `WATCH` belongs to the connection.
    pub async fn new_cas(&self) -> Result<Option<redis::aio::MultiplexedConnection>, Error> {
        match self {
            Self::Sqlite(_) => Ok(None),
            Self::Redis { client } => client.dedicated().await.map(Some).map_err(redis_error),
        }
    }

    /// The CAS's `current`: SQLite reads the value (remembered for the swap); Redis `WATCH`es
    /// the key on the CAS's connection, then reads it.
    pub async fn cas_current(
        &self,
        key: &str,
        conn: Option<&mut redis::aio::MultiplexedConnection>,
    ) -> Result<Option<Vec<u8>>, Error> {
        match (self, conn) {
            (Self::Redis { .. }, Some(conn)) => {
                redis::cmd("WATCH")
                    .arg(key)
                    .exec_async(conn)
                    .await
                    .map_err(redis_error)?;
                redis::cmd("GET")
                    .arg(key)
                    .query_async(conn)
                    .await
                    .map_err(redis_error)
            }
            _ => self.get(key).await,
        }
    }

    /// The CAS's `swap`, as Spin's stores do it. `Ok(false)`: the value changed since
    /// `current` (SQLite: the `UPDATE … WHERE value = old` changed no row).
    ///
    /// Spin's own gaps, kept so the app is tested against what production does: when
    /// `current` saw no value, SQLite inserts with `ON CONFLICT DO UPDATE` (a key created
    /// meanwhile is overwritten, not a failure); Redis runs `MULTI SET EXEC` and reads the
    /// reply as `()`, which a nil reply (a transaction `WATCH` aborted) also satisfies, so a
    /// lost race reports success (redis-rs `Pipeline::complete_request`).
    pub async fn cas_swap(
        &self,
        key: &str,
        seen: Option<&[u8]>,
        conn: Option<&mut redis::aio::MultiplexedConnection>,
        value: &[u8],
    ) -> Result<bool, Error> {
        match (self, conn) {
            (Self::Sqlite(kv), _) => kv.run_mut(|c, store| match seen {
                Some(old) => c
                    .prepare_cached(
                        "UPDATE spin_key_value SET value = ?3 WHERE store = ?1 AND key = ?2 AND value = ?4",
                    )?
                    .execute((store, key, value, old))
                    .map(|n| n == 1),
                None => {
                    let tx = c.transaction()?;
                    let n = tx
                        .prepare_cached(
                            "INSERT INTO spin_key_value (store, key, value) VALUES (?1, ?2, ?3)
                             ON CONFLICT (store, key) DO UPDATE SET value = excluded.value",
                        )?
                        .execute((store, key, value))?;
                    tx.commit()?;
                    Ok(n == 1)
                }
            }),
            (Self::Redis { .. }, Some(conn)) => {
                let res: redis::RedisResult<()> = redis::pipe()
                    .atomic()
                    .set(key, value)
                    .query_async(conn)
                    .await;
                redis::cmd("UNWATCH")
                    .exec_async(conn)
                    .await
                    .map_err(redis_error)?;
                res.map(|()| true).map_err(redis_error)
            }
            (Self::Redis { .. }, None) => Err(Error::Other("redis: no CAS connection".into())),
        }
    }

    pub async fn keys(&self) -> Result<Vec<String>, Error> {
        match self {
            Self::Sqlite(kv) => kv.run(|c, store| {
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

impl SqliteKv {
    fn connect(&self) -> rusqlite::Result<rusqlite::Connection> {
        let conn = rusqlite::Connection::open(&self.path)?;
        conn.execute(CREATE_TABLE, [])?;
        Ok(conn)
    }

    /// The store's connection, opened now if nobody has yet (Spin's `KeyValueSqlite`).
    fn connection(&self) -> Result<&Mutex<rusqlite::Connection>, Error> {
        if let Some(c) = self.conn.get() {
            return Ok(c);
        }
        let new = self.connect().map_err(|e| Error::Other(e.to_string()))?;
        Ok(self.conn.get_or_init(|| Mutex::new(new)))
    }

    /// [`Self::run`] with the connection mutable (for a transaction).
    fn run_mut<R>(
        &self,
        f: impl FnOnce(&mut rusqlite::Connection, &str) -> rusqlite::Result<R>,
    ) -> Result<R, Error> {
        let go = || {
            let mut conn = self.connection()?.lock().unwrap_or_else(|p| p.into_inner());
            f(&mut conn, &self.label).map_err(|e| Error::Other(e.to_string()))
        };
        match self.profile {
            Profile::Spin => block_in_place(go),
            Profile::Fast => go(),
        }
    }

    /// One short statement under the store's lock: inline (fast), or in `block_in_place` as
    /// Spin runs each of its store operations.
    fn run<R>(
        &self,
        f: impl FnOnce(&rusqlite::Connection, &str) -> rusqlite::Result<R>,
    ) -> Result<R, Error> {
        let go = || {
            let conn = self.connection()?.lock().unwrap_or_else(|p| p.into_inner());
            f(&conn, &self.label).map_err(|e| Error::Other(e.to_string()))
        };
        match self.profile {
            Profile::Spin => block_in_place(go),
            Profile::Fast => go(),
        }
    }
}

fn redis_error(e: redis::RedisError) -> Error {
    Error::Other(format!("redis: {e}"))
}

impl InstanceState {
    /// A store the component was granted (Spin's `KeyValueDispatch::open`, shared by
    /// `fermyon:spin/key-value` and `wasi:keyvalue/store`).
    pub(crate) fn open_key_value(&self, label: &str) -> Result<Arc<KvStore>, Error> {
        if !self.caps.key_value_stores.contains(label) {
            return Err(Error::AccessDenied);
        }
        let Some(store) = self.services.key_value.get(label) else {
            return Err(Error::NoSuchStore);
        };
        store.attach()?;
        Ok(store.clone())
    }
}

impl Host for InstanceState {}

impl InstanceState {
    /// Spin's `kv.backend`: the store manager's summary (`key-value-spin`: the file's path in
    /// quotes; `key-value-redis`: `Redis at ADDR`), `unknown` for a store not configured.
    fn key_value_backend(&self, label: &str) -> String {
        match self.services.key_value.get(label).map(|s| &**s) {
            Some(KvStore::Sqlite(kv)) => format!("\"{}\"", kv.path.display()),
            Some(KvStore::Redis { client }) => format!("Redis at {}", client.address()),
            None => "unknown".into(),
        }
    }
}

// The spans are Spin's (crates/factor-key-value/src/host.rs, `impl key_value::HostStore`).
impl HostStore for InstanceState {
    #[tracing::instrument(name = "spin_key_value.open", skip(self, label), fields(otel.kind = "client", name = label.as_str(), kv.backend = self.key_value_backend(&label)))]
    async fn open(
        &mut self,
        label: String,
    ) -> wasmtime::Result<Result<Resource<OpenStore>, Error>> {
        match self.open_key_value(&label) {
            Ok(store) => Ok(Ok(self.table.push(OpenStore(store))?)),
            Err(e) => Ok(Err(e)),
        }
    }

    #[tracing::instrument(name = "spin_key_value.get", skip_all, fields(otel.kind = "client"))]
    async fn get(
        &mut self,
        this: Resource<OpenStore>,
        key: String,
    ) -> wasmtime::Result<Result<Option<Vec<u8>>, Error>> {
        let store = self.table.get(&this)?.0.clone();
        let clock = Clock::start(&self.caps.metrics);
        let r = store.get(&key).await;
        clock.kv(&self.caps.metrics, &store, KvOp::Get, &r);
        Ok(r)
    }

    #[tracing::instrument(name = "spin_key_value.set", skip_all, fields(otel.kind = "client"))]
    async fn set(
        &mut self,
        this: Resource<OpenStore>,
        key: String,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<(), Error>> {
        let store = self.table.get(&this)?.0.clone();
        let clock = Clock::start(&self.caps.metrics);
        let r = store.set(&key, &value).await;
        clock.kv(&self.caps.metrics, &store, KvOp::Set, &r);
        Ok(r)
    }

    #[tracing::instrument(name = "spin_key_value.delete", skip_all, fields(otel.kind = "client"))]
    async fn delete(
        &mut self,
        this: Resource<OpenStore>,
        key: String,
    ) -> wasmtime::Result<Result<(), Error>> {
        let store = self.table.get(&this)?.0.clone();
        let clock = Clock::start(&self.caps.metrics);
        let r = store.delete(&key).await;
        clock.kv(&self.caps.metrics, &store, KvOp::Delete, &r);
        Ok(r)
    }

    #[tracing::instrument(name = "spin_key_value.exists", skip_all, fields(otel.kind = "client"))]
    async fn exists(
        &mut self,
        this: Resource<OpenStore>,
        key: String,
    ) -> wasmtime::Result<Result<bool, Error>> {
        let store = self.table.get(&this)?.0.clone();
        let clock = Clock::start(&self.caps.metrics);
        let r = store.exists(&key).await;
        clock.kv(&self.caps.metrics, &store, KvOp::Exists, &r);
        Ok(r)
    }

    #[tracing::instrument(name = "spin_key_value.get_keys", skip_all, fields(otel.kind = "client"))]
    async fn get_keys(
        &mut self,
        this: Resource<OpenStore>,
    ) -> wasmtime::Result<Result<Vec<String>, Error>> {
        let store = self.table.get(&this)?.0.clone();
        let clock = Clock::start(&self.caps.metrics);
        let r = store.keys().await;
        clock.kv(&self.caps.metrics, &store, KvOp::GetKeys, &r);
        Ok(r)
    }

    async fn drop(&mut self, this: Resource<OpenStore>) -> wasmtime::Result<()> {
        self.table.delete(this)?;
        Ok(())
    }
}
