//! The `Kv` port on Spin's key-value store `default`.

use std::cell::OnceCell;

use spin_sdk::key_value::Store;
use tikspin_core::ports::Kv;

/// Opened on first use: most requests never touch the key-value store, and an open is a host
/// call and a resource.
#[derive(Default)]
pub struct SpinKv(OnceCell<Store>);

impl SpinKv {
    pub fn lazy_default() -> Self {
        Self::default()
    }

    fn store(&self) -> Result<&Store, String> {
        if let Some(store) = self.0.get() {
            return Ok(store);
        }
        let store = Store::open_default().map_err(|e| format!("key-value open: {e:?}"))?;
        Ok(self.0.get_or_init(|| store))
    }
}

impl Kv for SpinKv {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, String> {
        self.store()?.get(key).map_err(|e| format!("{e:?}"))
    }

    fn set(&self, key: &str, value: &[u8]) -> Result<(), String> {
        self.store()?.set(key, value).map_err(|e| format!("{e:?}"))
    }

    fn delete(&self, key: &str) -> Result<(), String> {
        self.store()?.delete(key).map_err(|e| format!("{e:?}"))
    }
}
