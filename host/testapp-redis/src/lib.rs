//! Stores every message it receives under `redis:last` in the default KV store, and counts them.

use bytes::Bytes;
use spin_sdk::redis_component;

#[redis_component]
fn on_message(message: Bytes) -> anyhow::Result<()> {
    let store = spin_sdk::key_value::Store::open_default()?;
    store.set("redis:last", &message)?;
    let n = store
        .get("redis:count")?
        .and_then(|v| String::from_utf8(v).ok())
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or(0);
    store.set("redis:count", (n + 1).to_string().as_bytes())?;
    Ok(())
}
