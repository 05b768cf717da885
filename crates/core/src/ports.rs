//! The narrow interfaces the core reaches the outside through. The Spin adapters implement them
//! with spin-sdk (`sqlite`, `mysql`, `key_value`); native tests with rusqlite (`crate::testing`).
//!
//! Both SQL dialects use `?` placeholders, and one call runs exactly one statement, because
//! Spin's SQLite interface runs one statement per call.

use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Mysql,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
}

impl Value {
    fn kind(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Int(_) => "integer",
            Value::Real(_) => "real",
            Value::Text(_) => "text",
            Value::Blob(_) => "blob",
        }
    }
}

impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Value::Int(v)
    }
}
impl From<i32> for Value {
    fn from(v: i32) -> Self {
        Value::Int(v.into())
    }
}
impl From<bool> for Value {
    fn from(v: bool) -> Self {
        Value::Int(v.into())
    }
}
impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Value::Text(v.to_owned())
    }
}
impl From<String> for Value {
    fn from(v: String) -> Self {
        Value::Text(v)
    }
}
impl From<Vec<u8>> for Value {
    fn from(v: Vec<u8>) -> Self {
        Value::Blob(v)
    }
}
impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Self {
        v.map_or(Value::Null, Into::into)
    }
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Rows {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Value>>,
}

impl Rows {
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = Row<'_>> {
        self.rows.iter().enumerate().map(|(index, values)| Row {
            rows: self,
            index,
            values,
        })
    }

    pub fn first(&self) -> Option<Row<'_>> {
        self.iter().next()
    }

    /// The integer in the first column of the first row: for `SELECT changes()` and friends.
    pub fn scalar_i64(&self) -> Result<i64, SqlError> {
        self.first()
            .ok_or_else(|| SqlError::Other("expected one row, the query returned none".into()))?
            .i64(0)
    }
}

/// One row of a [`Rows`], with typed getters by column index. A type mismatch is an error that
/// names the row, the column and both types, so a schema drift shows up as a readable message.
#[derive(Clone, Copy)]
pub struct Row<'a> {
    rows: &'a Rows,
    index: usize,
    values: &'a [Value],
}

impl<'a> Row<'a> {
    // The getters run once per column per row of every list; their failures are rare and
    // kept out of line.

    #[inline]
    pub fn value(&self, col: usize) -> Result<&'a Value, SqlError> {
        match self.values.get(col) {
            Some(value) => Ok(value),
            None => Err(self.no_such_column(col)),
        }
    }

    /// MySQL hands back `SUM`/`DECIMAL` results as text, hence the lenient parse.
    #[inline]
    pub fn i64(&self, col: usize) -> Result<i64, SqlError> {
        match self.value(col)? {
            Value::Int(v) => Ok(*v),
            other => self.i64_from_other(col, other),
        }
    }

    #[cold]
    fn i64_from_other(&self, col: usize, value: &Value) -> Result<i64, SqlError> {
        match value {
            Value::Text(s) => s.trim().parse().map_err(|_| self.mismatch(col, "integer")),
            _ => Err(self.mismatch(col, "integer")),
        }
    }

    #[inline]
    pub fn opt_i64(&self, col: usize) -> Result<Option<i64>, SqlError> {
        match self.value(col)? {
            Value::Null => Ok(None),
            _ => self.i64(col).map(Some),
        }
    }

    pub fn bool(&self, col: usize) -> Result<bool, SqlError> {
        self.i64(col).map(|v| v != 0)
    }

    #[inline]
    pub fn text(&self, col: usize) -> Result<&'a str, SqlError> {
        match self.value(col)? {
            Value::Text(s) => Ok(s),
            other => self.text_from_other(col, other),
        }
    }

    #[cold]
    fn text_from_other(&self, col: usize, value: &'a Value) -> Result<&'a str, SqlError> {
        match value {
            // MySQL VARBINARY/BLOB columns may arrive as bytes even when they hold UTF-8.
            Value::Blob(b) => std::str::from_utf8(b).map_err(|_| self.mismatch(col, "text")),
            _ => Err(self.mismatch(col, "text")),
        }
    }

    #[inline]
    pub fn opt_text(&self, col: usize) -> Result<Option<&'a str>, SqlError> {
        match self.value(col)? {
            Value::Null => Ok(None),
            _ => self.text(col).map(Some),
        }
    }

    pub fn blob(&self, col: usize) -> Result<&'a [u8], SqlError> {
        match self.value(col)? {
            Value::Blob(b) => Ok(b),
            Value::Text(s) => Ok(s.as_bytes()),
            _ => Err(self.mismatch(col, "blob")),
        }
    }

    #[cold]
    fn no_such_column(&self, col: usize) -> SqlError {
        SqlError::Other(format!(
            "row {} has {} columns, asked for column {col}",
            self.index,
            self.values.len()
        ))
    }

    #[cold]
    fn mismatch(&self, col: usize, wanted: &str) -> SqlError {
        let name = self
            .rows
            .columns
            .get(col)
            .map(String::as_str)
            .unwrap_or("?");
        let found = self.values.get(col).map(Value::kind).unwrap_or("nothing");
        SqlError::Other(format!(
            "row {}, column {col} ({name}): expected {wanted}, found {found}",
            self.index
        ))
    }
}

#[derive(Debug)]
pub enum SqlError {
    /// Lock contention: worth retrying the whole transaction.
    Busy(String),
    /// A UNIQUE index refused the write.
    Unique(String),
    /// The schema is missing or older than the code (a fresh database, or one without a column
    /// a later migration adds): [`crate::migrate::with_schema`] migrates.
    MissingSchema(String),
    Other(String),
}

impl fmt::Display for SqlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SqlError::Busy(m) => write!(f, "database busy: {m}"),
            SqlError::Unique(m) => write!(f, "unique constraint: {m}"),
            SqlError::MissingSchema(m) => write!(f, "schema not migrated: {m}"),
            SqlError::Other(m) => write!(f, "sql error: {m}"),
        }
    }
}

impl std::error::Error for SqlError {}

pub trait Sql {
    fn dialect(&self) -> Dialect;
    /// Runs one statement; any rows it returns are discarded.
    fn execute(&self, sql: &str, params: &[Value]) -> Result<(), SqlError>;
    fn query(&self, sql: &str, params: &[Value]) -> Result<Rows, SqlError>;
}

pub trait Kv {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, String>;
    fn set(&self, key: &str, value: &[u8]) -> Result<(), String>;
    fn delete(&self, key: &str) -> Result<(), String>;
}

/// Atomic increments on the key-value store (`wasi:keyvalue/atomics` under Spin 3+), for
/// state that concurrent requests move forward ([`crate::limits`]).
pub trait Atomics {
    /// A plain read.
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, String>;
    /// Adds `delta` to the key's number (absent: 0) in one atomic step; the sum.
    fn increment(&self, key: &str, delta: i64) -> Result<i64, String>;
}

/// Classifies a SQLite error message (from rusqlite or from Spin's `sqlite::Error`), so every
/// adapter maps errors the same way.
pub fn classify_sqlite_error(msg: impl Into<String>) -> SqlError {
    let msg = msg.into();
    let lower = msg.to_ascii_lowercase();
    if lower.contains("unique constraint failed") {
        SqlError::Unique(msg)
    } else if lower.contains("no such table")
        || lower.contains("no such column")
        || lower.contains("no such index")
    {
        SqlError::MissingSchema(msg)
    } else if lower.contains("database is locked")
        || lower.contains("database table is locked")
        || lower.contains("busy")
    {
        SqlError::Busy(msg)
    } else {
        SqlError::Other(msg)
    }
}

/// Classifies a MySQL/MariaDB error message by its server error number (1062 duplicate key,
/// 1146 no such table, 1054 unknown column, 1176 no such index, 1205 lock wait timeout, 1213
/// deadlock), falling back to the server's English text when a driver drops the number.
pub fn classify_mysql_error(msg: impl Into<String>) -> SqlError {
    let msg = msg.into();
    let lower = msg.to_ascii_lowercase();
    let has = |code: &str| contains_number(&msg, code);
    if has("1062") || lower.contains("duplicate entry") {
        SqlError::Unique(msg)
    } else if has("1146")
        || has("1054")
        || has("1176")
        || (lower.contains("table") && lower.contains("doesn't exist"))
        || lower.contains("unknown column")
        || (lower.contains("key") && lower.contains("doesn't exist in table"))
    {
        SqlError::MissingSchema(msg)
    } else if has("1205")
        || has("1213")
        || lower.contains("deadlock found")
        || lower.contains("lock wait timeout")
    {
        SqlError::Busy(msg)
    } else {
        SqlError::Other(msg)
    }
}

/// `code` as a whole number in `msg`: "ERROR 1062 (23000)" matches 1062, "id 110625" does not.
fn contains_number(msg: &str, code: &str) -> bool {
    let bytes = msg.as_bytes();
    msg.match_indices(code).any(|(at, _)| {
        let before = at.checked_sub(1).map(|i| bytes[i]);
        let after = bytes.get(at + code.len()).copied();
        !before.is_some_and(|b| b.is_ascii_digit()) && !after.is_some_and(|b| b.is_ascii_digit())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_errors_are_classified() {
        assert!(matches!(
            classify_sqlite_error("database is locked"),
            SqlError::Busy(_)
        ));
        assert!(matches!(
            classify_sqlite_error("UNIQUE constraint failed: users.name"),
            SqlError::Unique(_)
        ));
        assert!(matches!(
            classify_sqlite_error("no such table: users"),
            SqlError::MissingSchema(_)
        ));
        assert!(matches!(
            classify_sqlite_error("no such column: a.friend_since"),
            SqlError::MissingSchema(_)
        ));
        assert!(matches!(
            classify_sqlite_error("no such index: follows_friend_time"),
            SqlError::MissingSchema(_)
        ));
        assert!(matches!(
            classify_sqlite_error("near \"SELEC\": syntax error"),
            SqlError::Other(_)
        ));
    }

    #[test]
    fn mysql_errors_are_classified() {
        let dup = "ERROR 1062 (23000): Duplicate entry 'bob' for key 'users_name'";
        assert!(matches!(classify_mysql_error(dup), SqlError::Unique(_)));
        let missing = "ERROR 1146 (42S02): Table 'tikspin.users' doesn't exist";
        assert!(matches!(
            classify_mysql_error(missing),
            SqlError::MissingSchema(_)
        ));
        let column = "ERROR 1054 (42S22): Unknown column 'a.friend_since' in 'where clause'";
        assert!(matches!(
            classify_mysql_error(column),
            SqlError::MissingSchema(_)
        ));
        let index = "ERROR 1176 (42000): Key 'follows_friend_time' doesn't exist in table 'a'";
        assert!(matches!(
            classify_mysql_error(index),
            SqlError::MissingSchema(_)
        ));
        assert!(matches!(
            classify_mysql_error("Server error 1213: deadlock"),
            SqlError::Busy(_)
        ));
        assert!(matches!(
            classify_mysql_error("ERROR 1205 (HY000): x"),
            SqlError::Busy(_)
        ));
        assert!(matches!(
            classify_mysql_error("bad value 110625"),
            SqlError::Other(_)
        ));
    }

    #[test]
    fn typed_getters_name_the_column_on_mismatch() {
        let rows = Rows {
            columns: vec!["id".into(), "name".into()],
            rows: vec![vec![Value::Int(7), Value::Text("bob".into())]],
        };
        let row = rows.first().unwrap();
        assert_eq!(row.i64(0).unwrap(), 7);
        assert_eq!(row.text(1).unwrap(), "bob");
        let err = row.i64(1).unwrap_err().to_string();
        assert!(
            err.contains("column 1 (name)") && err.contains("expected integer"),
            "{err}"
        );
        assert!(row.text(5).is_err());
        assert_eq!(rows.scalar_i64().unwrap(), 7);
    }
}
