//! The core's [`Sql`] port on a MySQL/MariaDB connection (`mysql_async`, the crate the host's own
//! MySQL interface uses), driven synchronously like Spin's: the seed tool and the query-plan
//! tests call the core's migrations and statements through it, so they run the app's own SQL.

use std::cell::RefCell;

use mysql_async::prelude::Queryable;
use tikspin_core::ports::{classify_mysql_error, Dialect, Rows, Sql, SqlError, Value};

pub struct MysqlSql {
    rt: tokio::runtime::Runtime,
    // `None` only while dropping (disconnect takes the connection by value).
    conn: RefCell<Option<mysql_async::Conn>>,
}

fn to_sql_error(e: impl std::fmt::Display) -> SqlError {
    classify_mysql_error(e.to_string())
}

impl MysqlSql {
    /// `url`: `mysql://user:password@host:port/database`.
    pub fn connect(url: &str) -> Result<Self, SqlError> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(to_sql_error)?;
        let opts = mysql_async::Opts::from_url(url).map_err(to_sql_error)?;
        let conn = rt
            .block_on(mysql_async::Conn::new(opts))
            .map_err(to_sql_error)?;
        Ok(MysqlSql {
            rt,
            conn: RefCell::new(Some(conn)),
        })
    }
}

impl Drop for MysqlSql {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.borrow_mut().take() {
            let _ = self.rt.block_on(conn.disconnect());
        }
    }
}

fn to_param(v: &Value) -> mysql_async::Value {
    match v {
        Value::Null => mysql_async::Value::NULL,
        Value::Int(i) => mysql_async::Value::Int(*i),
        Value::Real(f) => mysql_async::Value::Double(*f),
        Value::Text(s) => mysql_async::Value::Bytes(s.as_bytes().to_vec()),
        Value::Blob(b) => mysql_async::Value::Bytes(b.clone()),
    }
}

/// The text protocol (statements without parameters) hands every value back as bytes; the
/// core's row getters parse integers from text, so bytes that are UTF-8 become text.
fn from_mysql(v: mysql_async::Value) -> Value {
    match v {
        mysql_async::Value::NULL => Value::Null,
        mysql_async::Value::Int(i) => Value::Int(i),
        mysql_async::Value::UInt(u) => Value::Int(u as i64),
        mysql_async::Value::Float(f) => Value::Real(f.into()),
        mysql_async::Value::Double(f) => Value::Real(f),
        mysql_async::Value::Bytes(b) => match String::from_utf8(b) {
            Ok(s) => Value::Text(s),
            Err(e) => Value::Blob(e.into_bytes()),
        },
        other => Value::Text(other.as_sql(true)),
    }
}

impl Sql for MysqlSql {
    fn dialect(&self) -> Dialect {
        Dialect::Mysql
    }

    fn execute(&self, sql: &str, params: &[Value]) -> Result<(), SqlError> {
        self.query(sql, params).map(drop)
    }

    fn query(&self, sql: &str, params: &[Value]) -> Result<Rows, SqlError> {
        let mut guard = self.conn.borrow_mut();
        let conn = guard
            .as_mut()
            .ok_or_else(|| SqlError::Other("connection closed".into()))?;
        let rows: Vec<mysql_async::Row> = self
            .rt
            .block_on(async {
                if params.is_empty() {
                    // Text protocol: BEGIN/COMMIT and DDL cannot all be prepared.
                    conn.query(sql).await
                } else {
                    let params: Vec<_> = params.iter().map(to_param).collect();
                    conn.exec(sql, params).await
                }
            })
            .map_err(to_sql_error)?;
        let columns = rows
            .first()
            .map(|r| {
                r.columns_ref()
                    .iter()
                    .map(|c| c.name_str().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        let rows = rows
            .into_iter()
            .map(|r| r.unwrap().into_iter().map(from_mysql).collect())
            .collect();
        Ok(Rows { columns, rows })
    }
}
