//! A test world: real SQLite, an in-memory Kv, a pinned clock.
#![allow(dead_code)]

use tikspin_core::accounts::{self, Session};
use tikspin_core::testing::{MemKv, SqliteSql};
use tikspin_core::{ApiError, Config, Env, Params};

pub const SECRET: &str = "test-secret-for-hs256";
pub const BASE: &str = "http://10.0.2.2:3000";
/// 2023-11-14T22:13:20Z
pub const NOW: i64 = 1_700_000_000_000;

pub struct World {
    pub sql: SqliteSql,
    pub kv: MemKv,
    pub config: Config,
    pub now_ms: i64,
    pub addr: String,
}

impl World {
    /// A fresh, unmigrated in-memory database: the first request must migrate it by itself.
    pub fn new() -> Self {
        Self::with_sql(SqliteSql::memory())
    }

    pub fn with_sql(sql: SqliteSql) -> Self {
        World {
            sql,
            kv: MemKv::new(),
            config: Config::new(SECRET, format!("{BASE}/")),
            now_ms: NOW,
            addr: "192.0.2.7:40000".into(),
        }
    }

    pub fn env(&self) -> Env<'_> {
        Env {
            sql: &self.sql,
            kv: &self.kv,
            config: &self.config,
            now_ms: self.now_ms,
            client_addr: &self.addr,
        }
    }

    pub fn register(&self, username: &str, password: &str) -> Result<Session, ApiError> {
        accounts::register(
            &self.env(),
            &params(&[("username", username), ("password", password)]),
        )
    }

    pub fn login(&self, username: &str, password: &str) -> Result<Session, ApiError> {
        accounts::login(
            &self.env(),
            &params(&[("username", username), ("password", password)]),
        )
    }
}

pub fn params(pairs: &[(&str, &str)]) -> Params {
    let mut p = Params::default();
    for (k, v) in pairs {
        p.insert(*k, *v);
    }
    p
}

pub fn b64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}
