//! The `Kv` port on Spin's key-value store `default`.

use spin_sdk::key_value::Store;
use tikspin_core::ports::Kv;

pub struct SpinKv(Store);

impl SpinKv {
    pub fn open_default() -> Result<Self, String> {
        Store::open_default().map(Self).map_err(|e| format!("key-value open: {e:?}"))
    }
}

impl Kv for SpinKv {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, String> {
        self.0.get(key).map_err(|e| format!("{e:?}"))
    }

    fn set(&self, key: &str, value: &[u8]) -> Result<(), String> {
        self.0.set(key, value).map_err(|e| format!("{e:?}"))
    }

    fn delete(&self, key: &str) -> Result<(), String> {
        self.0.delete(key).map_err(|e| format!("{e:?}"))
    }
}
