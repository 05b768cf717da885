//! The `Sql` port on Spin's SQLite and MySQL interfaces. Which one runs is a deployment choice
//! (the `database_url` variable), not a rebuild.

use spin_sdk::{mysql, sqlite};
use tikspin_core::ports::{
    classify_mysql_error, classify_sqlite_error, Dialect, Rows, Sql, SqlError, Value,
};

/// One open handle for the whole request: transactions span `execute` calls on it.
pub enum SpinSql {
    Sqlite(sqlite::Connection),
    Mysql(mysql::Connection),
}

impl SpinSql {
    /// `database_url` empty → Spin's `default` SQLite database; `mysql://…` → MySQL.
    pub fn open(database_url: &str) -> Result<Self, SqlError> {
        if database_url.is_empty() {
            // `PRAGMA synchronous = NORMAL` is set by the core's write transactions
            // (`db::transaction`), so read-only requests skip that statement.
            let conn = sqlite::Connection::open_default()
                .map_err(|e| SqlError::Other(format!("sqlite open: {e:?}")))?;
            Ok(Self::Sqlite(conn))
        } else if database_url.starts_with("mysql://") {
            let conn = mysql::Connection::open(database_url)
                .map_err(|e| SqlError::Other(format!("mysql open: {}", mysql_message(&e))))?;
            Ok(Self::Mysql(conn))
        } else {
            Err(SqlError::Other(
                "database_url must be empty (SQLite) or a mysql:// URL".into(),
            ))
        }
    }
}

fn mysql_message(e: &mysql::MysqlError) -> String {
    match e {
        mysql::MysqlError::ConnectionFailed(m)
        | mysql::MysqlError::BadParameter(m)
        | mysql::MysqlError::QueryFailed(m)
        | mysql::MysqlError::ValueConversionFailed(m)
        | mysql::MysqlError::Other(m) => m.clone(),
    }
}

fn sqlite_error(e: sqlite::Error) -> SqlError {
    match e {
        sqlite::Error::Io(m) => classify_sqlite_error(&m),
        other => SqlError::Other(format!("{other:?}")),
    }
}

fn to_sqlite(v: &Value) -> sqlite::Value {
    match v {
        Value::Null => sqlite::Value::Null,
        Value::Int(n) => sqlite::Value::Integer(*n),
        Value::Real(f) => sqlite::Value::Real(*f),
        Value::Text(s) => sqlite::Value::Text(s.clone()),
        Value::Blob(b) => sqlite::Value::Blob(b.clone()),
    }
}

fn from_sqlite(v: sqlite::Value) -> Value {
    match v {
        sqlite::Value::Null => Value::Null,
        sqlite::Value::Integer(n) => Value::Int(n),
        sqlite::Value::Real(f) => Value::Real(f),
        sqlite::Value::Text(s) => Value::Text(s),
        sqlite::Value::Blob(b) => Value::Blob(b),
    }
}

fn to_mysql(v: &Value) -> mysql::ParameterValue {
    match v {
        Value::Null => mysql::ParameterValue::DbNull,
        Value::Int(n) => mysql::ParameterValue::Int64(*n),
        Value::Real(f) => mysql::ParameterValue::Floating64(*f),
        Value::Text(s) => mysql::ParameterValue::Str(s.clone()),
        Value::Blob(b) => mysql::ParameterValue::Binary(b.clone()),
    }
}

fn from_mysql(v: mysql::DbValue) -> Value {
    use mysql::DbValue as D;
    match v {
        D::Boolean(b) => Value::Int(b as i64),
        D::Int8(n) => Value::Int(n.into()),
        D::Int16(n) => Value::Int(n.into()),
        D::Int32(n) => Value::Int(n.into()),
        D::Int64(n) => Value::Int(n),
        D::Uint8(n) => Value::Int(n.into()),
        D::Uint16(n) => Value::Int(n.into()),
        D::Uint32(n) => Value::Int(n.into()),
        // IDs and counters stay far below 2^63.
        D::Uint64(n) => Value::Int(n as i64),
        D::Floating32(f) => Value::Real(f.into()),
        D::Floating64(f) => Value::Real(f),
        D::Str(s) => Value::Text(s),
        D::Binary(b) => Value::Blob(b),
        D::DbNull | D::Unsupported => Value::Null,
    }
}

impl Sql for SpinSql {
    fn dialect(&self) -> Dialect {
        match self {
            Self::Sqlite(_) => Dialect::Sqlite,
            Self::Mysql(_) => Dialect::Mysql,
        }
    }

    fn execute(&self, sql: &str, params: &[Value]) -> Result<(), SqlError> {
        match self {
            Self::Sqlite(c) => {
                let params: Vec<_> = params.iter().map(to_sqlite).collect();
                c.execute(sql, &params).map(drop).map_err(sqlite_error)
            }
            Self::Mysql(c) => {
                let params: Vec<_> = params.iter().map(to_mysql).collect();
                c.execute(sql, &params)
                    .map_err(|e| classify_mysql_error(mysql_message(&e)))
            }
        }
    }

    fn query(&self, sql: &str, params: &[Value]) -> Result<Rows, SqlError> {
        match self {
            Self::Sqlite(c) => {
                let params: Vec<_> = params.iter().map(to_sqlite).collect();
                let r = c.execute(sql, &params).map_err(sqlite_error)?;
                Ok(Rows {
                    columns: r.columns,
                    rows: r
                        .rows
                        .into_iter()
                        .map(|row| row.values.into_iter().map(from_sqlite).collect())
                        .collect(),
                })
            }
            Self::Mysql(c) => {
                let params: Vec<_> = params.iter().map(to_mysql).collect();
                let r = c
                    .query(sql, &params)
                    .map_err(|e| classify_mysql_error(mysql_message(&e)))?;
                Ok(Rows {
                    columns: r.columns.into_iter().map(|c| c.name).collect(),
                    rows: r
                        .rows
                        .into_iter()
                        .map(|row| row.into_iter().map(from_mysql).collect())
                        .collect(),
                })
            }
        }
    }
}
