//! `fermyon:spin/mysql`: a real MySQL/MariaDB client (mysql_async) underneath.
//!
//! Spin opens a fresh TCP connection for every `open`; this host keeps a small pool per
//! address instead (connections are reset before reuse), so MySQL figures measured under it
//! are a little kinder than under Spin. An open handle owns one connection for its lifetime,
//! so `START TRANSACTION … COMMIT` across calls on one handle is one transaction.

use std::collections::HashMap;

use mysql_async::consts::{ColumnFlags, ColumnType};
use mysql_async::prelude::Queryable;
use tokio::sync::Mutex;
use wasmtime::component::Resource;

use crate::bindings::fermyon::spin2_0_0::mysql::{Host, HostConnection};
use crate::bindings::fermyon::spin2_0_0::rdbms_types::{
    Column, DbDataType, DbValue, Error, ParameterValue, RowSet,
};
use crate::state::InstanceState;

#[derive(Default)]
pub struct MysqlPools(Mutex<HashMap<String, mysql_async::Pool>>);

impl MysqlPools {
    async fn get(&self, address: &str) -> Result<mysql_async::Pool, Error> {
        let mut pools = self.0.lock().await;
        if let Some(p) = pools.get(address) {
            return Ok(p.clone());
        }
        let opts = mysql_async::Opts::from_url(address)
            .map_err(|e| Error::ConnectionFailed(format!("invalid address: {e}")))?;
        let pool = mysql_async::Pool::new(opts);
        pools.insert(address.to_string(), pool.clone());
        Ok(pool)
    }
}

pub struct OpenConnection(mysql_async::Conn);

impl Host for InstanceState {}
impl crate::bindings::fermyon::spin2_0_0::rdbms_types::Host for InstanceState {}

// The spans are Spin's (crates/factor-outbound-mysql/src/host.rs, `impl v2::HostConnection`).
impl HostConnection for InstanceState {
    #[tracing::instrument(name = "spin_outbound_mysql.open", skip(self, address), fields(otel.kind = "client", db.system.name = "mysql", server.address = tracing::field::Empty, server.port = tracing::field::Empty, db.namespace = tracing::field::Empty))]
    async fn open(
        &mut self,
        address: String,
    ) -> wasmtime::Result<Result<Resource<OpenConnection>, Error>> {
        crate::telemetry::record_address_fields(&address);
        if !self.caps.allowed_hosts.allows_address(&address, "mysql") {
            return Ok(Err(Error::ConnectionFailed(format!(
                "address is not permitted: add it to the component's allowed_outbound_hosts"
            ))));
        }
        let pool = match self.services.mysql.get(&address).await {
            Ok(p) => p,
            Err(e) => return Ok(Err(e)),
        };
        match pool.get_conn().await {
            Ok(conn) => Ok(Ok(self.table.push(OpenConnection(conn))?)),
            Err(e) => Ok(Err(Error::ConnectionFailed(e.to_string()))),
        }
    }

    #[tracing::instrument(name = "spin_outbound_mysql.query", skip(self, this, params), fields(otel.kind = "client", db.system.name = "mysql", otel.name = statement.as_str()))]
    async fn query(
        &mut self,
        this: Resource<OpenConnection>,
        statement: String,
        params: Vec<ParameterValue>,
    ) -> wasmtime::Result<Result<RowSet, Error>> {
        let clock = crate::metrics::SqlClock::start(&self.caps.metrics, &statement);
        let conn = &mut self.table.get_mut(&this)?.0;
        let r = run(conn, &statement, params).await;
        clock.done(&self.caps.metrics, crate::metrics::DbSystem::Mysql, &r);
        Ok(r)
    }

    #[tracing::instrument(name = "spin_outbound_mysql.execute", skip(self, this, params), fields(otel.kind = "client", db.system.name = "mysql", otel.name = statement.as_str()))]
    async fn execute(
        &mut self,
        this: Resource<OpenConnection>,
        statement: String,
        params: Vec<ParameterValue>,
    ) -> wasmtime::Result<Result<(), Error>> {
        let clock = crate::metrics::SqlClock::start(&self.caps.metrics, &statement);
        let conn = &mut self.table.get_mut(&this)?.0;
        let r = run(conn, &statement, params).await.map(drop);
        clock.done(&self.caps.metrics, crate::metrics::DbSystem::Mysql, &r);
        Ok(r)
    }

    async fn drop(&mut self, this: Resource<OpenConnection>) -> wasmtime::Result<()> {
        // Dropping a pooled mysql_async connection rolls back an open transaction before reuse.
        self.table.delete(this)?;
        Ok(())
    }
}

async fn run(
    conn: &mut mysql_async::Conn,
    statement: &str,
    params: Vec<ParameterValue>,
) -> Result<RowSet, Error> {
    let query_failed = |e: mysql_async::Error| Error::QueryFailed(e.to_string());
    // Statements without parameters go over the text protocol, which accepts every statement
    // (transaction control included); the rest are prepared.
    if params.is_empty() {
        read(conn.query_iter(statement).await.map_err(query_failed)?).await
    } else {
        let params: Vec<mysql_async::Value> = params.into_iter().map(to_mysql).collect();
        read(
            conn.exec_iter(statement, mysql_async::Params::Positional(params))
                .await
                .map_err(query_failed)?,
        )
        .await
    }
}

async fn read<P: mysql_async::prelude::Protocol>(
    mut result: mysql_async::QueryResult<'_, '_, P>,
) -> Result<RowSet, Error> {
    let query_failed = |e: mysql_async::Error| Error::QueryFailed(e.to_string());
    let columns: Vec<(String, ColumnType, bool, bool)> = result
        .columns_ref()
        .iter()
        .map(|c| {
            (
                c.name_str().into_owned(),
                c.column_type(),
                c.flags().contains(ColumnFlags::UNSIGNED_FLAG),
                c.character_set() == 63,
            )
        })
        .collect();
    let rows: Vec<mysql_async::Row> = result.collect().await.map_err(query_failed)?;
    let mut out_rows = Vec::with_capacity(rows.len());
    for row in rows {
        let values = row.unwrap();
        let mut out = Vec::with_capacity(values.len());
        for (v, (_, ty, unsigned, binary)) in values.into_iter().zip(&columns) {
            out.push(from_mysql(v, *ty, *unsigned, *binary)?);
        }
        out_rows.push(out);
    }
    Ok(RowSet {
        columns: columns
            .iter()
            .map(|(name, ty, unsigned, binary)| Column {
                name: name.clone(),
                data_type: data_type(*ty, *unsigned, *binary),
            })
            .collect(),
        rows: out_rows,
    })
}

fn to_mysql(p: ParameterValue) -> mysql_async::Value {
    use mysql_async::Value as V;
    match p {
        ParameterValue::Boolean(b) => V::Int(b as i64),
        ParameterValue::Int8(n) => V::Int(n.into()),
        ParameterValue::Int16(n) => V::Int(n.into()),
        ParameterValue::Int32(n) => V::Int(n.into()),
        ParameterValue::Int64(n) => V::Int(n),
        ParameterValue::Uint8(n) => V::UInt(n.into()),
        ParameterValue::Uint16(n) => V::UInt(n.into()),
        ParameterValue::Uint32(n) => V::UInt(n.into()),
        ParameterValue::Uint64(n) => V::UInt(n),
        ParameterValue::Floating32(f) => V::Float(f),
        ParameterValue::Floating64(f) => V::Double(f),
        ParameterValue::Str(s) => V::Bytes(s.into_bytes()),
        ParameterValue::Binary(b) => V::Bytes(b),
        ParameterValue::DbNull => V::NULL,
    }
}

fn is_integer(ty: ColumnType) -> bool {
    use ColumnType::*;
    matches!(
        ty,
        MYSQL_TYPE_TINY
            | MYSQL_TYPE_SHORT
            | MYSQL_TYPE_LONG
            | MYSQL_TYPE_LONGLONG
            | MYSQL_TYPE_INT24
            | MYSQL_TYPE_YEAR
    )
}

fn is_float(ty: ColumnType) -> bool {
    use ColumnType::*;
    matches!(
        ty,
        MYSQL_TYPE_FLOAT | MYSQL_TYPE_DOUBLE | MYSQL_TYPE_DECIMAL | MYSQL_TYPE_NEWDECIMAL
    )
}

fn data_type(ty: ColumnType, unsigned: bool, binary: bool) -> DbDataType {
    match ty {
        _ if is_integer(ty) && unsigned => DbDataType::Uint64,
        _ if is_integer(ty) => DbDataType::Int64,
        _ if is_float(ty) => DbDataType::Floating64,
        _ if binary => DbDataType::Binary,
        _ => DbDataType::Str,
    }
}

fn from_mysql(
    v: mysql_async::Value,
    ty: ColumnType,
    unsigned: bool,
    binary: bool,
) -> Result<DbValue, Error> {
    use mysql_async::Value as V;
    let conversion =
        |what: &str| Error::ValueConversionFailed(format!("cannot read {what} as {ty:?}"));
    Ok(match v {
        V::NULL => DbValue::DbNull,
        V::Int(n) => DbValue::Int64(n),
        V::UInt(n) => DbValue::Uint64(n),
        V::Float(f) => DbValue::Floating64(f.into()),
        V::Double(f) => DbValue::Floating64(f),
        // The text protocol sends every value as bytes; the column type says what they mean.
        V::Bytes(b) if is_integer(ty) => {
            let s = std::str::from_utf8(&b).map_err(|_| conversion("bytes"))?;
            if unsigned {
                DbValue::Uint64(s.parse().map_err(|_| conversion(s))?)
            } else {
                DbValue::Int64(s.parse().map_err(|_| conversion(s))?)
            }
        }
        V::Bytes(b) if is_float(ty) => {
            let s = std::str::from_utf8(&b).map_err(|_| conversion("bytes"))?;
            DbValue::Floating64(s.parse().map_err(|_| conversion(s))?)
        }
        V::Bytes(b) if binary => DbValue::Binary(b),
        V::Bytes(b) => {
            DbValue::Str(String::from_utf8(b).map_err(|_| conversion("non-UTF-8 text"))?)
        }
        other @ (V::Date(..) | V::Time(..)) => {
            DbValue::Str(other.as_sql(true).trim_matches('\'').to_string())
        }
    })
}
