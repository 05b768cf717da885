//! `runtime-config.toml`: where the app's stores live, as `spin up --runtime-config-file` reads it.
//!
//! Supported: `[key_value_store.<label>]` of type `spin` (a SQLite file) and `redis`,
//! `[sqlite_database.<label>]` of type `spin`, and `[[config_provider]]` of type `env`.
//! With no file, Spin's defaults apply: a `default` KV store and a `default` SQLite database
//! as files in the state directory.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuntimeConfig {
    #[serde(default)]
    pub key_value_store: BTreeMap<String, KeyValueStoreConfig>,
    #[serde(default)]
    pub sqlite_database: BTreeMap<String, SqliteDatabaseConfig>,
    #[serde(default)]
    pub config_provider: Vec<ConfigProvider>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", deny_unknown_fields)]
pub enum KeyValueStoreConfig {
    #[serde(rename = "spin")]
    Spin {
        #[serde(default)]
        path: Option<PathBuf>,
    },
    #[serde(rename = "redis")]
    Redis { url: String },
}

#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", deny_unknown_fields)]
pub enum SqliteDatabaseConfig {
    #[serde(rename = "spin")]
    Spin {
        #[serde(default)]
        path: Option<PathBuf>,
    },
}

#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", deny_unknown_fields)]
pub enum ConfigProvider {
    #[serde(rename = "env")]
    Env {
        #[serde(default)]
        prefix: Option<String>,
        #[serde(default)]
        dotenv_path: Option<PathBuf>,
    },
}

/// A resolved store location.
#[derive(Debug, Clone, PartialEq)]
pub enum KvBackend {
    Sqlite(PathBuf),
    Redis(String),
}

impl RuntimeConfig {
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read runtime config {}", path.display()))?;
        let mut config = parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        // Relative paths in a runtime config are relative to the file, as in Spin.
        let base = path.parent().unwrap_or(Path::new("."));
        for store in config.key_value_store.values_mut() {
            if let KeyValueStoreConfig::Spin { path: Some(p) } = store {
                *p = base.join(&*p);
            }
        }
        for db in config.sqlite_database.values_mut() {
            let SqliteDatabaseConfig::Spin { path: Some(p) } = db else {
                continue;
            };
            *p = base.join(&*p);
        }
        Ok(config)
    }

    /// Where the KV store `label` lives, or `None` if the app has no such store.
    pub fn kv_backend(&self, label: &str, state_dir: &Path) -> Option<KvBackend> {
        // Spin keeps every `spin`-type store without a path in one file, one table keyed by label.
        let default_file = || state_dir.join("sqlite_key_value.db");
        match self.key_value_store.get(label) {
            Some(KeyValueStoreConfig::Spin { path }) => {
                Some(KvBackend::Sqlite(path.clone().unwrap_or_else(default_file)))
            }
            Some(KeyValueStoreConfig::Redis { url }) => Some(KvBackend::Redis(url.clone())),
            None if label == "default" => Some(KvBackend::Sqlite(default_file())),
            None => None,
        }
    }

    /// The file of SQLite database `label`, or `None` if the app has no such database.
    pub fn sqlite_path(&self, label: &str, state_dir: &Path) -> Option<PathBuf> {
        match self.sqlite_database.get(label) {
            Some(SqliteDatabaseConfig::Spin { path }) => Some(path.clone().unwrap_or_else(|| {
                if label == "default" {
                    state_dir.join("sqlite_db.db")
                } else {
                    state_dir.join(format!("{label}.db"))
                }
            })),
            None if label == "default" => Some(state_dir.join("sqlite_db.db")),
            None => None,
        }
    }

    /// The env-variable prefixes to consult, highest priority first. Spin always consults
    /// `SPIN_VARIABLE_` first, whatever the file says.
    pub fn env_prefixes(&self) -> Vec<String> {
        let mut prefixes = vec!["SPIN_VARIABLE".to_string()];
        for p in &self.config_provider {
            let ConfigProvider::Env { prefix, .. } = p;
            if let Some(prefix) = prefix {
                if !prefixes.contains(prefix) {
                    prefixes.push(prefix.clone());
                }
            }
        }
        prefixes
    }

    pub fn dotenv_paths(&self) -> Vec<PathBuf> {
        self.config_provider
            .iter()
            .filter_map(|p| {
                let ConfigProvider::Env { dotenv_path, .. } = p;
                dotenv_path.clone()
            })
            .collect()
    }
}

pub fn parse(text: &str) -> Result<RuntimeConfig> {
    // Name the store's full key for the commonest mistake, an unsupported type, before serde
    // reports it without the table it sits in.
    let raw: toml::Table =
        toml::from_str(text).map_err(|e| anyhow::anyhow!("{}", e.to_string().trim()))?;
    for (section, supported) in [
        ("key_value_store", &["spin", "redis"][..]),
        ("sqlite_database", &["spin"][..]),
    ] {
        let Some(toml::Value::Table(stores)) = raw.get(section) else {
            continue;
        };
        for (label, store) in stores {
            match store.get("type").and_then(toml::Value::as_str) {
                None => bail!(
                    "{section}.{label}.type: missing (supported: {})",
                    supported.join(", ")
                ),
                Some(t) if !supported.contains(&t) => {
                    bail!("{section}.{label}.type: {t:?} is not supported by this host (supported: {})", supported.join(", "))
                }
                Some(_) => {}
            }
        }
    }
    let config: RuntimeConfig =
        toml::from_str(text).map_err(|e| anyhow::anyhow!("{}", e.to_string().trim()))?;
    for (label, store) in &config.key_value_store {
        if let KeyValueStoreConfig::Redis { url } = store {
            if !(url.starts_with("redis://") || url.starts_with("rediss://")) {
                bail!("key_value_store.{label}.url: expected a redis:// URL, got {url:?}");
            }
        }
    }
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_live_in_the_state_dir() {
        let c = RuntimeConfig::default();
        let dir = Path::new("/s");
        assert_eq!(
            c.kv_backend("default", dir),
            Some(KvBackend::Sqlite("/s/sqlite_key_value.db".into()))
        );
        assert_eq!(
            c.sqlite_path("default", dir),
            Some(PathBuf::from("/s/sqlite_db.db"))
        );
        assert_eq!(c.kv_backend("other", dir), None);
    }

    #[test]
    fn stores_of_both_types_parse() {
        let c = parse(
            r#"
[key_value_store.default]
type = "redis"
url = "redis://127.0.0.1:6379"
[key_value_store.files]
type = "spin"
path = "kv.db"
[sqlite_database.default]
type = "spin"
path = "db.sqlite"
[[config_provider]]
type = "env"
prefix = "TIKSPIN"
"#,
        )
        .unwrap();
        assert_eq!(
            c.kv_backend("default", Path::new("/s")),
            Some(KvBackend::Redis("redis://127.0.0.1:6379".into()))
        );
        assert_eq!(
            c.env_prefixes(),
            vec!["SPIN_VARIABLE".to_string(), "TIKSPIN".to_string()]
        );
    }

    #[test]
    fn unknown_type_and_key_are_named() {
        let e = parse("[key_value_store.default]\ntype = \"azure_cosmos\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("key_value_store.default.type") && e.contains("azure_cosmos"),
            "{e}"
        );
        let e = parse("[sqlite_database.default]\ntype = \"spin\"\npth = \"x\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("pth"), "{e}");
        let e = parse("[key_value_store.c]\ntype = \"redis\"\nurl = \"http://x\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("key_value_store.c.url"), "{e}");
    }
}
