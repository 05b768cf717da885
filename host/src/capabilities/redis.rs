//! `fermyon:spin/redis` (outbound): one multiplexed connection per address, shared by instances.

use std::collections::HashMap;
use std::sync::Arc;

use anyhow::Result;
use redis::aio::MultiplexedConnection;
use tokio::sync::Mutex;
use wasmtime::component::Resource;

use crate::bindings::fermyon::spin2_0_0::redis::{
    Error, Host, HostConnection, Payload, RedisParameter, RedisResult,
};
use crate::state::InstanceState;

/// A lazily reconnecting handle to one Redis address.
#[derive(Clone)]
pub struct SharedConnection {
    client: redis::Client,
    conn: Arc<Mutex<Option<MultiplexedConnection>>>,
}

impl SharedConnection {
    pub async fn connect(url: &str) -> Result<Self> {
        let client = redis::Client::open(url)?;
        let this = Self {
            client,
            conn: Arc::new(Mutex::new(None)),
        };
        this.connection().await?;
        Ok(this)
    }

    async fn connection(&self) -> redis::RedisResult<MultiplexedConnection> {
        let mut slot = self.conn.lock().await;
        if let Some(c) = slot.as_ref() {
            return Ok(c.clone());
        }
        let c = self.client.get_multiplexed_async_connection().await?;
        *slot = Some(c.clone());
        Ok(c)
    }

    /// A connection of its own (for `WATCH`, which belongs to a connection).
    pub async fn dedicated(&self) -> redis::RedisResult<MultiplexedConnection> {
        self.client.get_multiplexed_async_connection().await
    }

    /// The server's `host:port`, as Spin's `kv.backend` names a Redis store.
    pub fn address(&self) -> String {
        self.client.get_connection_info().addr().to_string()
    }

    pub async fn query<T: redis::FromRedisValue>(&self, cmd: &redis::Cmd) -> redis::RedisResult<T> {
        let mut conn = self.connection().await?;
        let result = cmd.query_async(&mut conn).await;
        if let Err(e) = &result {
            if e.is_io_error() || e.is_connection_dropped() {
                // Forget the broken connection; the next call reconnects.
                *self.conn.lock().await = None;
            }
        }
        result
    }
}

#[derive(Default)]
pub struct RedisClients(Mutex<HashMap<String, SharedConnection>>);

impl RedisClients {
    pub async fn get(&self, address: &str) -> Result<SharedConnection> {
        let mut map = self.0.lock().await;
        if let Some(c) = map.get(address) {
            return Ok(c.clone());
        }
        let c = SharedConnection::connect(address).await?;
        map.insert(address.to_string(), c.clone());
        Ok(c)
    }
}

pub struct OpenConnection(SharedConnection);

fn other(e: impl std::fmt::Display) -> Error {
    Error::Other(e.to_string())
}

fn type_error(e: redis::RedisError) -> Error {
    if e.kind() == redis::ErrorKind::UnexpectedReturnType {
        Error::TypeError
    } else {
        other(e)
    }
}

impl Host for InstanceState {}

// The spans are Spin's (crates/factor-outbound-redis/src/host.rs, `impl v2::HostConnection`),
// except that `execute` does not record its arguments: they are values, like SQL parameters.
impl HostConnection for InstanceState {
    #[tracing::instrument(name = "spin_outbound_redis.open_connection", skip(self, address), fields(otel.kind = "client", db.system.name = "redis", server.address = tracing::field::Empty, server.port = tracing::field::Empty, db.namespace = tracing::field::Empty))]
    async fn open(
        &mut self,
        address: String,
    ) -> wasmtime::Result<Result<Resource<OpenConnection>, Error>> {
        if !self.caps.allowed_hosts.allows_address(&address, "redis") {
            return Ok(Err(Error::InvalidAddress));
        }
        match self.services.redis.get(&address).await {
            Ok(c) => Ok(Ok(self.table.push(OpenConnection(c))?)),
            Err(e) => Ok(Err(other(e))),
        }
    }

    #[tracing::instrument(name = "spin_outbound_redis.publish", skip(self, this, payload), fields(otel.kind = "client", db.system.name = "redis", otel.name = format!("PUBLISH {channel}")))]
    async fn publish(
        &mut self,
        this: Resource<OpenConnection>,
        channel: String,
        payload: Payload,
    ) -> wasmtime::Result<Result<(), Error>> {
        let c = self.table.get(&this)?.0.clone();
        Ok(
            c.query::<i64>(redis::cmd("PUBLISH").arg(channel).arg(payload))
                .await
                .map(drop)
                .map_err(other),
        )
    }

    async fn get(
        &mut self,
        this: Resource<OpenConnection>,
        key: String,
    ) -> wasmtime::Result<Result<Option<Payload>, Error>> {
        let c = self.table.get(&this)?.0.clone();
        Ok(c.query(redis::cmd("GET").arg(key))
            .await
            .map_err(type_error))
    }

    async fn set(
        &mut self,
        this: Resource<OpenConnection>,
        key: String,
        value: Payload,
    ) -> wasmtime::Result<Result<(), Error>> {
        let c = self.table.get(&this)?.0.clone();
        Ok(c.query::<()>(redis::cmd("SET").arg(key).arg(value))
            .await
            .map_err(other))
    }

    async fn incr(
        &mut self,
        this: Resource<OpenConnection>,
        key: String,
    ) -> wasmtime::Result<Result<i64, Error>> {
        let c = self.table.get(&this)?.0.clone();
        Ok(c.query(redis::cmd("INCR").arg(key))
            .await
            .map_err(type_error))
    }

    async fn del(
        &mut self,
        this: Resource<OpenConnection>,
        keys: Vec<String>,
    ) -> wasmtime::Result<Result<u32, Error>> {
        let c = self.table.get(&this)?.0.clone();
        Ok(c.query(redis::cmd("DEL").arg(keys)).await.map_err(other))
    }

    async fn sadd(
        &mut self,
        this: Resource<OpenConnection>,
        key: String,
        values: Vec<String>,
    ) -> wasmtime::Result<Result<u32, Error>> {
        let c = self.table.get(&this)?.0.clone();
        Ok(c.query(redis::cmd("SADD").arg(key).arg(values))
            .await
            .map_err(type_error))
    }

    async fn smembers(
        &mut self,
        this: Resource<OpenConnection>,
        key: String,
    ) -> wasmtime::Result<Result<Vec<String>, Error>> {
        let c = self.table.get(&this)?.0.clone();
        Ok(c.query(redis::cmd("SMEMBERS").arg(key))
            .await
            .map_err(type_error))
    }

    async fn srem(
        &mut self,
        this: Resource<OpenConnection>,
        key: String,
        values: Vec<String>,
    ) -> wasmtime::Result<Result<u32, Error>> {
        let c = self.table.get(&this)?.0.clone();
        Ok(c.query(redis::cmd("SREM").arg(key).arg(values))
            .await
            .map_err(type_error))
    }

    #[tracing::instrument(name = "spin_outbound_redis.execute", skip(self, this, arguments), fields(otel.kind = "client", db.system.name = "redis", otel.name = command.as_str()))]
    async fn execute(
        &mut self,
        this: Resource<OpenConnection>,
        command: String,
        arguments: Vec<RedisParameter>,
    ) -> wasmtime::Result<Result<Vec<RedisResult>, Error>> {
        let c = self.table.get(&this)?.0.clone();
        let mut cmd = redis::cmd(&command);
        for a in arguments {
            match a {
                RedisParameter::Int64(n) => cmd.arg(n),
                RedisParameter::Binary(b) => cmd.arg(b),
            };
        }
        Ok(c.query::<redis::Value>(&cmd)
            .await
            .map(flatten)
            .map_err(other))
    }

    async fn drop(&mut self, this: Resource<OpenConnection>) -> wasmtime::Result<()> {
        self.table.delete(this)?;
        Ok(())
    }
}

/// Spin returns a flat list: arrays are spread, scalars become one element.
fn flatten(v: redis::Value) -> Vec<RedisResult> {
    match v {
        redis::Value::Array(items) | redis::Value::Set(items) => {
            items.into_iter().flat_map(flatten).collect()
        }
        other => vec![scalar(other)],
    }
}

fn scalar(v: redis::Value) -> RedisResult {
    match v {
        redis::Value::Nil => RedisResult::Nil,
        redis::Value::Int(n) => RedisResult::Int64(n),
        redis::Value::BulkString(b) => RedisResult::Binary(b),
        redis::Value::SimpleString(s) => RedisResult::Status(s),
        redis::Value::Okay => RedisResult::Status("OK".into()),
        redis::Value::Double(d) => RedisResult::Binary(d.to_string().into_bytes()),
        redis::Value::Boolean(b) => RedisResult::Int64(b as i64),
        other => RedisResult::Binary(format!("{other:?}").into_bytes()),
    }
}
