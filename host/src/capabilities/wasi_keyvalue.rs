//! `wasi:keyvalue/store` and `wasi:keyvalue/atomics` (`@0.2.0-draft2`), as Spin 3.x and 4 link
//! them (crates/factor-key-value/src/host.rs): on the same stores, with the same grants, as
//! `fermyon:spin/key-value` (a bucket is an [`OpenStore`]). `batch` is not linked: no TikSpin
//! component imports it.
//!
//! What each store does is in [`KvStore`]: `increment` (SQLite: one transaction under the
//! store's lock; Redis: `INCRBY`), and compare-and-swap (SQLite: `UPDATE … WHERE value = old`;
//! Redis: `WATCH`, then `MULTI SET EXEC` on a connection of the CAS's own), including the
//! cases where Spin's swap cannot tell that it lost a race (see [`KvStore::cas_swap`]).

use std::sync::Arc;

use wasmtime::component::Resource;

use super::key_value::{KvStore, OpenStore};
use crate::bindings::fermyon::spin2_0_0::key_value::Error as SpinError;
use crate::bindings::wasi::keyvalue::atomics::{self, CasError};
use crate::bindings::wasi::keyvalue::store::{self, Error, KeyResponse};
use crate::metrics::{Clock, KvOp};
use crate::state::InstanceState;

/// A compare-and-swap in progress: the key, what `current` saw, and (Redis) the connection the
/// key is `WATCH`ed on.
pub struct Cas {
    store: Arc<KvStore>,
    key: String,
    seen: Option<Vec<u8>>,
    conn: Option<redis::aio::MultiplexedConnection>,
}

/// Spin's `to_wasi_err`.
fn to_wasi(e: SpinError) -> Error {
    match e {
        SpinError::NoSuchStore => Error::NoSuchStore,
        SpinError::AccessDenied => Error::AccessDenied,
        SpinError::StoreTableFull => Error::Other("store table full".into()),
        SpinError::Other(msg) => Error::Other(msg),
    }
}

impl InstanceState {
    fn bucket(&self, bucket: &Resource<OpenStore>) -> wasmtime::Result<Arc<KvStore>> {
        Ok(self.table.get(bucket)?.0.clone())
    }

    async fn new_cas(&mut self, store: Arc<KvStore>, key: String) -> wasmtime::Result<Result<Resource<Cas>, Error>> {
        let conn = match store.new_cas().await {
            Ok(conn) => conn,
            Err(e) => return Ok(Err(to_wasi(e))),
        };
        Ok(Ok(self.table.push(Cas {
            store,
            key,
            seen: None,
            conn,
        })?))
    }
}

// The spans are Spin's (crates/factor-key-value/src/host.rs, the `wasi_keyvalue` impls).
impl store::Host for InstanceState {
    #[tracing::instrument(name = "wasi_key_value.open", skip_all, fields(otel.kind = "client"))]
    async fn open(&mut self, identifier: String) -> wasmtime::Result<Result<Resource<OpenStore>, Error>> {
        match self.open_key_value(&identifier) {
            Ok(store) => Ok(Ok(self.table.push(OpenStore(store))?)),
            Err(e) => Ok(Err(to_wasi(e))),
        }
    }
}

impl store::HostBucket for InstanceState {
    #[tracing::instrument(name = "wasi_key_value.get", skip_all, fields(otel.kind = "client"))]
    async fn get(&mut self, this: Resource<OpenStore>, key: String) -> wasmtime::Result<Result<Option<Vec<u8>>, Error>> {
        let store = self.bucket(&this)?;
        let clock = Clock::start(&self.caps.metrics);
        let r = store.get(&key).await;
        clock.kv(&self.caps.metrics, &store, KvOp::Get, &r);
        Ok(r.map_err(to_wasi))
    }

    #[tracing::instrument(name = "wasi_key_value.set", skip_all, fields(otel.kind = "client"))]
    async fn set(&mut self, this: Resource<OpenStore>, key: String, value: Vec<u8>) -> wasmtime::Result<Result<(), Error>> {
        let store = self.bucket(&this)?;
        let clock = Clock::start(&self.caps.metrics);
        let r = store.set(&key, &value).await;
        clock.kv(&self.caps.metrics, &store, KvOp::Set, &r);
        Ok(r.map_err(to_wasi))
    }

    #[tracing::instrument(name = "wasi_key_value.delete", skip_all, fields(otel.kind = "client"))]
    async fn delete(&mut self, this: Resource<OpenStore>, key: String) -> wasmtime::Result<Result<(), Error>> {
        let store = self.bucket(&this)?;
        let clock = Clock::start(&self.caps.metrics);
        let r = store.delete(&key).await;
        clock.kv(&self.caps.metrics, &store, KvOp::Delete, &r);
        Ok(r.map_err(to_wasi))
    }

    #[tracing::instrument(name = "wasi_key_value.exists", skip_all, fields(otel.kind = "client"))]
    async fn exists(&mut self, this: Resource<OpenStore>, key: String) -> wasmtime::Result<Result<bool, Error>> {
        let store = self.bucket(&this)?;
        let clock = Clock::start(&self.caps.metrics);
        let r = store.exists(&key).await;
        clock.kv(&self.caps.metrics, &store, KvOp::Exists, &r);
        Ok(r.map_err(to_wasi))
    }

    #[tracing::instrument(name = "wasi_key_value.list_keys", skip_all, fields(otel.kind = "client"))]
    async fn list_keys(
        &mut self,
        this: Resource<OpenStore>,
        cursor: Option<String>,
    ) -> wasmtime::Result<Result<KeyResponse, Error>> {
        // Spin pages nothing: a cursor is an error, and every key comes back at once.
        if cursor.is_some() {
            return Ok(Err(Error::Other("list_keys: cursor not supported".into())));
        }
        let store = self.bucket(&this)?;
        let clock = Clock::start(&self.caps.metrics);
        let keys = store.keys().await;
        clock.kv(&self.caps.metrics, &store, KvOp::GetKeys, &keys);
        let keys = keys.map_err(to_wasi);
        Ok(keys.map(|keys| KeyResponse { keys, cursor: None }))
    }

    async fn drop(&mut self, this: Resource<OpenStore>) -> wasmtime::Result<()> {
        self.table.delete(this)?;
        Ok(())
    }
}

impl atomics::HostCas for InstanceState {
    #[tracing::instrument(name = "wasi_key_value_cas.new", skip_all, fields(otel.kind = "client"))]
    async fn new(&mut self, bucket: Resource<OpenStore>, key: String) -> wasmtime::Result<Result<Resource<Cas>, Error>> {
        let store = self.bucket(&bucket)?;
        self.new_cas(store, key).await
    }

    #[tracing::instrument(name = "wasi_key_value_cas.current", skip_all, fields(otel.kind = "client"))]
    async fn current(&mut self, this: Resource<Cas>) -> wasmtime::Result<Result<Option<Vec<u8>>, Error>> {
        let cas = self.table.get_mut(&this)?;
        let store = cas.store.clone();
        let clock = Clock::start(&self.caps.metrics);
        let value = store.cas_current(&cas.key, cas.conn.as_mut()).await;
        clock.kv(&self.caps.metrics, &store, KvOp::CasCurrent, &value);
        let value = match value {
            Ok(v) => v,
            Err(e) => return Ok(Err(to_wasi(e))),
        };
        cas.seen.clone_from(&value);
        Ok(Ok(value))
    }

    async fn drop(&mut self, this: Resource<Cas>) -> wasmtime::Result<()> {
        self.table.delete(this)?;
        Ok(())
    }
}

impl atomics::Host for InstanceState {
    #[tracing::instrument(name = "spin_key_value.increment", skip_all, fields(otel.kind = "client"))]
    async fn increment(
        &mut self,
        bucket: Resource<OpenStore>,
        key: String,
        delta: i64,
    ) -> wasmtime::Result<Result<i64, Error>> {
        let store = self.bucket(&bucket)?;
        let clock = Clock::start(&self.caps.metrics);
        let r = store.increment(&key, delta).await;
        clock.kv(&self.caps.metrics, &store, KvOp::Increment, &r);
        Ok(r.map_err(to_wasi))
    }

    /// Spin's `swap`: on a lost race, a fresh CAS on the same key, with `current` already read,
    /// comes back inside `cas-failed` for the retry.
    #[tracing::instrument(name = "spin_key_value.swap", skip_all, fields(otel.kind = "client"))]
    async fn swap(&mut self, this: Resource<Cas>, value: Vec<u8>) -> wasmtime::Result<Result<(), CasError>> {
        let mut cas = self.table.delete(this)?;
        let clock = Clock::start(&self.caps.metrics);
        let swapped = cas
            .store
            .cas_swap(&cas.key, cas.seen.as_deref(), cas.conn.as_mut(), &value)
            .await;
        clock.kv(&self.caps.metrics, &cas.store, KvOp::CasSwap, &swapped);
        match swapped {
            Ok(true) => Ok(Ok(())),
            Err(e) => Ok(Err(CasError::StoreError(to_wasi(e)))),
            Ok(false) => {
                let fresh = match self.new_cas(cas.store.clone(), cas.key.clone()).await? {
                    Ok(fresh) => fresh,
                    Err(e) => return Ok(Err(CasError::StoreError(e))),
                };
                let fresh_rep = Resource::<Cas>::new_own(fresh.rep());
                if let Err(e) = atomics::HostCas::current(self, fresh_rep).await? {
                    return Ok(Err(CasError::StoreError(e)));
                }
                Ok(Err(CasError::CasFailed(fresh)))
            }
        }
    }
}
