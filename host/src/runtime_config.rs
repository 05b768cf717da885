//! `runtime-config.toml`: where the app's stores live, as `spin up --runtime-config-file` reads it
//! (Spin: `crates/runtime-config/src/lib.rs` and the resolvers it registers).
//!
//! Supported: `[key_value_store.<label>]` of type `spin` (a SQLite file) and `redis`,
//! `[sqlite_database.<label>]` of type `spin`, and `[[variables_provider]]` (or its older name
//! `[[config_provider]]`) of type `env`. Other keys and types Spin knows are refused by name as
//! unsupported here; keys Spin does not know are refused as Spin refuses them ("unused runtime
//! config key(s)").
//!
//! With no file, Spin's defaults apply: a `default` KV store and a `default` SQLite database
//! as files in the state directory. A `spin` store or database declared without a `path` is in
//! memory, as in Spin. Relative paths: a key-value store's against the file's directory, a
//! SQLite database's against the working directory — Spin resolves them so.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::Deserialize;

/// The path that stands for an in-memory SQLite database (what rusqlite opens for it).
pub const IN_MEMORY: &str = ":memory:";

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuntimeConfig {
    #[serde(default)]
    pub key_value_store: BTreeMap<String, KeyValueStoreConfig>,
    #[serde(default)]
    pub sqlite_database: BTreeMap<String, SqliteDatabaseConfig>,
    /// `[[variables_provider]]`, or `[[config_provider]]` (its earlier name) when there is none.
    #[serde(default, alias = "variables_provider")]
    pub config_provider: Vec<ConfigProvider>,
}

/// Spin: `crates/factor-key-value/src/runtime_config/spin.rs` (`StoreConfig`: a `type` and that
/// type's settings). The settings structs of the `spin` and `redis` types do not deny unknown
/// fields, so Spin ignores an unknown key there; so does this host (with a warning).
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type")]
pub enum KeyValueStoreConfig {
    #[serde(rename = "spin")]
    Spin {
        #[serde(default)]
        path: Option<PathBuf>,
    },
    #[serde(rename = "redis")]
    Redis { url: String },
}

/// Spin: `crates/sqlite/src/lib.rs` (`InProcDatabase`, which denies unknown fields).
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", deny_unknown_fields)]
pub enum SqliteDatabaseConfig {
    #[serde(rename = "spin")]
    Spin {
        #[serde(default)]
        path: Option<PathBuf>,
    },
}

/// Spin: `crates/variables/src/lib.rs`, `VariableProviderConfiguration`; `env` is
/// `crates/variables/src/env.rs`, `EnvVariablesConfig` (which denies unknown fields).
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
    /// A SQLite file, or [`IN_MEMORY`].
    Sqlite(PathBuf),
    Redis(String),
}

impl RuntimeConfig {
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read runtime config {}", path.display()))?;
        let mut config = parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        // Spin: a key-value store's relative path is relative to the runtime config's
        // directory (crates/runtime-config/src/lib.rs, `key_value_config_resolver`); a SQLite
        // database's is relative to the working directory (`sqlite_config_resolver`).
        let base = path.parent().unwrap_or(Path::new("."));
        for store in config.key_value_store.values_mut() {
            if let KeyValueStoreConfig::Spin { path: Some(p) } = store {
                *p = base.join(&*p);
            }
        }
        let cwd = std::env::current_dir().context("cannot read the working directory")?;
        for db in config.sqlite_database.values_mut() {
            if let SqliteDatabaseConfig::Spin { path: Some(p) } = db {
                *p = cwd.join(&*p);
            }
        }
        Ok(config)
    }

    /// Where the KV store `label` lives, or `None` if the app has no such store.
    pub fn kv_backend(&self, label: &str, state_dir: &Path) -> Option<KvBackend> {
        match self.key_value_store.get(label) {
            // Spin: crates/key-value-spin, `SpinKeyValueStore::make_store`: no path, in memory.
            Some(KeyValueStoreConfig::Spin { path }) => Some(KvBackend::Sqlite(
                path.clone().unwrap_or_else(|| PathBuf::from(IN_MEMORY)),
            )),
            Some(KeyValueStoreConfig::Redis { url }) => Some(KvBackend::Redis(url.clone())),
            // Spin's `default` store: `sqlite_key_value.db` in the state directory.
            None if label == "default" => {
                Some(KvBackend::Sqlite(state_dir.join("sqlite_key_value.db")))
            }
            None => None,
        }
    }

    /// The file of SQLite database `label` ([`IN_MEMORY`] for one declared without a path), or
    /// `None` if the app has no such database.
    pub fn sqlite_path(&self, label: &str, state_dir: &Path) -> Option<PathBuf> {
        match self.sqlite_database.get(label) {
            // Spin: crates/sqlite/src/lib.rs, `InProcDatabase::connection_creator`: no path,
            // in memory.
            Some(SqliteDatabaseConfig::Spin { path }) => {
                Some(path.clone().unwrap_or_else(|| PathBuf::from(IN_MEMORY)))
            }
            // Spin's `default` database: `sqlite_db.db` in the state directory.
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

/// Top-level keys Spin's runtime config reads that this host does not support.
const UNSUPPORTED_KEYS: &[(&str, &str)] = &[
    (
        "state_dir",
        "a state directory set in the runtime config (use --state-dir)",
    ),
    (
        "log_dir",
        "a log directory set in the runtime config (logs go to <state-dir>/logs)",
    ),
    ("llm_compute", "Serverless AI"),
    ("client_tls", "client TLS settings"),
    ("blob_store", "blob stores"),
    ("outbound_http", "outbound HTTP settings"),
];

/// Store and database types Spin registers that this host does not implement.
const UNSUPPORTED_TYPES: &[(&str, &str)] = &[
    ("key_value_store", "azure_cosmos"),
    ("key_value_store", "aws_dynamo"),
    ("sqlite_database", "libsql"),
    ("variables_provider", "static"),
    ("variables_provider", "vault"),
    ("variables_provider", "azure_key_vault"),
];

pub fn parse(text: &str) -> Result<RuntimeConfig> {
    let raw: toml::Table =
        toml::from_str(text).map_err(|e| anyhow::anyhow!("{}", e.to_string().trim()))?;
    check_keys_and_types(&raw)?;
    let config: RuntimeConfig =
        toml::from_str(text).map_err(|e| anyhow::anyhow!("{}", e.to_string().trim()))?;
    for (label, store) in &config.key_value_store {
        if let KeyValueStoreConfig::Redis { url } = store {
            check_redis_url(url).with_context(|| {
                format!("key_value_store.{label}.url: could not configure key-value store with label '{label}'")
            })?;
        }
    }
    Ok(config)
}

/// What Spin refuses before any store is opened, with the full key of the offender.
fn check_keys_and_types(raw: &toml::Table) -> Result<()> {
    // Spin: `TomlKeyTracker::validate_all_keys_used` (spin-factors). Spin reads
    // `variables_provider`, else `config_provider`: with both, the latter is never read.
    let mut unused: Vec<&str> = Vec::new();
    for key in raw.keys() {
        if let Some((_, what)) = UNSUPPORTED_KEYS.iter().find(|(k, _)| k == key) {
            bail!("{key}: {what} is not supported by this host");
        }
        let known = matches!(
            key.as_str(),
            "key_value_store" | "sqlite_database" | "variables_provider"
        ) || (key == "config_provider" && !raw.contains_key("variables_provider"));
        if !known {
            unused.push(key);
        }
    }
    if !unused.is_empty() {
        bail!("unused runtime config key(s): {}", unused.join(", "));
    }

    let providers = raw
        .get("variables_provider")
        .map(|p| ("variables_provider", p))
        .or_else(|| raw.get("config_provider").map(|p| ("config_provider", p)));
    if let Some((key, toml::Value::Array(list))) = providers {
        for (i, provider) in list.iter().enumerate() {
            let kind = provider.get("type").and_then(toml::Value::as_str);
            if let Some(kind) = kind.filter(|k| is_unsupported_type("variables_provider", k)) {
                bail!("{key}[{i}].type: the {kind:?} variables provider is not supported by this host (supported: env)");
            }
        }
    }

    for (section, supported) in [
        ("key_value_store", &["spin", "redis"][..]),
        ("sqlite_database", &["spin"][..]),
    ] {
        let Some(toml::Value::Table(stores)) = raw.get(section) else {
            continue;
        };
        for (label, store) in stores {
            let Some(kind) = store.get("type").and_then(toml::Value::as_str) else {
                bail!("{section}.{label}.type: missing field `type`");
            };
            if is_unsupported_type(section, kind) {
                bail!(
                    "{section}.{label}.type: {kind:?} is not supported by this host (supported: {})",
                    supported.join(", ")
                );
            }
            if !supported.contains(&kind) {
                // Spin's own messages for a type it does not know.
                match section {
                    "key_value_store" => bail!("{section}.{label}.type: could not configure key-value store with label '{label}': the store type '{kind}' was not registered with the config resolver"),
                    _ => bail!("{section}.{label}.type: Unknown database kind: {kind}"),
                }
            }
            if section == "key_value_store" {
                let allowed: &[&str] = if kind == "spin" {
                    &["type", "path"]
                } else {
                    &["type", "url"]
                };
                if let Some(table) = store.as_table() {
                    for key in table.keys().filter(|k| !allowed.contains(&k.as_str())) {
                        eprintln!(
                            "warning: {section}.{label}.{key} is ignored (Spin ignores it too)"
                        );
                    }
                }
            }
        }
    }
    Ok(())
}

fn is_unsupported_type(section: &str, kind: &str) -> bool {
    UNSUPPORTED_TYPES
        .iter()
        .any(|(s, t)| *s == section && *t == kind)
}

/// Spin: crates/key-value-redis, `KeyValueRedis::new` → redis-rs `parse_redis_url`: a URL of
/// scheme `redis`, `rediss`, `redis+unix` or `unix` ("Invalid Redis URL" otherwise). The
/// connection itself is made later.
fn check_redis_url(url: &str) -> Result<()> {
    match url.split_once("://").map(|(scheme, _)| scheme) {
        Some("redis" | "rediss" | "redis+unix" | "unix") => Ok(()),
        _ => bail!("Invalid Redis URL: {url:?}"),
    }
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

    fn err(text: &str) -> String {
        format!("{:#}", parse(text).unwrap_err())
    }

    /// Spin: crates/runtime-config/src/lib.rs, test `fails_to_resolve_with_unused_key`.
    #[test]
    fn unknown_top_level_keys_are_unused_keys() {
        assert_eq!(err("baz = \"/baz\"\n"), "unused runtime config key(s): baz");
        let e = err("state_dir = \"/s\"\n");
        assert!(
            e.contains("state_dir") && e.contains("not supported by this host"),
            "{e}"
        );
    }

    /// Spin: crates/variables/src/lib.rs, `runtime_config_from_toml`: `variables_provider`, or
    /// `config_provider` when there is none (with both, `config_provider` is an unused key).
    #[test]
    fn variables_provider_is_the_name_config_provider_the_old_one() {
        let c = parse("[[variables_provider]]\ntype = \"env\"\nprefix = \"APP\"\n").unwrap();
        assert_eq!(
            c.env_prefixes(),
            vec!["SPIN_VARIABLE".to_string(), "APP".to_string()]
        );
        let both = "[[variables_provider]]\ntype = \"env\"\n[[config_provider]]\ntype = \"env\"\n";
        assert_eq!(err(both), "unused runtime config key(s): config_provider");
        let e = err("[[variables_provider]]\ntype = \"vault\"\n");
        assert!(
            e.contains("variables_provider[0].type") && e.contains("vault"),
            "{e}"
        );
        let e = err("[[config_provider]]\ntype = \"env\"\nprefx = \"A\"\n");
        assert!(e.contains("prefx"), "{e}");
    }

    /// Spin: crates/factor-key-value/src/runtime_config/spin.rs (`store_manager_from_config`)
    /// and crates/sqlite/src/lib.rs (`get_connection_creator`): their messages for a type they do
    /// not know; types Spin knows but this host lacks are named as unsupported.
    #[test]
    fn store_types_spin_does_not_know_get_spins_message() {
        let e = err("[key_value_store.cache]\ntype = \"memcached\"\n");
        assert!(
            e.contains("key_value_store.cache.type")
                && e.contains("the store type 'memcached' was not registered"),
            "{e}"
        );
        let e = err("[sqlite_database.db]\ntype = \"postgres\"\n");
        assert!(
            e.contains("sqlite_database.db.type") && e.contains("Unknown database kind: postgres"),
            "{e}"
        );
        let e =
            err("[sqlite_database.db]\ntype = \"libsql\"\nurl = \"https://x\"\ntoken = \"t\"\n");
        assert!(
            e.contains("libsql") && e.contains("not supported by this host"),
            "{e}"
        );
        let e = err("[key_value_store.db]\npath = \"x\"\n");
        assert!(
            e.contains("key_value_store.db.type") && e.contains("missing"),
            "{e}"
        );
    }

    /// Spin: crates/key-value-spin (`SpinKeyValueRuntimeConfig` does not deny unknown fields)
    /// versus crates/sqlite/src/lib.rs (`InProcDatabase` does).
    #[test]
    fn unknown_store_settings_are_ignored_for_key_value_but_not_sqlite() {
        assert!(parse("[key_value_store.x]\ntype = \"spin\"\npth = \"x.db\"\n").is_ok());
        assert!(parse(
            "[key_value_store.x]\ntype = \"redis\"\nurl = \"redis://h\"\npassword = \"p\"\n"
        )
        .is_ok());
        assert!(err("[sqlite_database.x]\ntype = \"spin\"\npth = \"x.db\"\n").contains("pth"));
    }

    /// Spin: crates/key-value-spin (`make_store`) and crates/sqlite/src/lib.rs
    /// (`InProcDatabase::connection_creator`): a `spin` store or database without a path is in
    /// memory — the `default` one too, once the file declares it.
    #[test]
    fn spin_stores_without_a_path_are_in_memory() {
        let c = parse("[key_value_store.default]\ntype = \"spin\"\n[key_value_store.other]\ntype = \"spin\"\n[sqlite_database.default]\ntype = \"spin\"\n[sqlite_database.other]\ntype = \"spin\"\n").unwrap();
        let dir = Path::new("/s");
        for label in ["default", "other"] {
            assert_eq!(
                c.kv_backend(label, dir),
                Some(KvBackend::Sqlite(IN_MEMORY.into()))
            );
            assert_eq!(c.sqlite_path(label, dir), Some(PathBuf::from(IN_MEMORY)));
        }
    }

    /// Spin: crates/runtime-config/src/lib.rs: key-value paths are relative to the runtime
    /// config file, SQLite paths to the working directory.
    #[test]
    fn relative_paths_resolve_as_spin_resolves_them() {
        let dir = std::env::temp_dir().join(format!("tikspin-rc-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("rc.toml");
        std::fs::write(&file, "[key_value_store.kv]\ntype = \"spin\"\npath = \"kv.db\"\n[sqlite_database.db]\ntype = \"spin\"\npath = \"db.sqlite\"\n").unwrap();
        let c = RuntimeConfig::load(&file).unwrap();
        let state = Path::new("/s");
        assert_eq!(
            c.kv_backend("kv", state),
            Some(KvBackend::Sqlite(dir.join("kv.db")))
        );
        assert_eq!(
            c.sqlite_path("db", state),
            Some(std::env::current_dir().unwrap().join("db.sqlite"))
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// Spin: crates/factor-key-value/src/lib.rs (`configure_app`) and
    /// crates/factor-sqlite/src/lib.rs (`ensure_allowed_databases_are_configured`): a label is
    /// defined by the runtime config, or is `default`; anything else is refused at start.
    #[test]
    fn only_default_exists_without_a_declaration() {
        let c = RuntimeConfig::default();
        let dir = Path::new("/s");
        assert_eq!(c.kv_backend("cache", dir), None);
        assert_eq!(c.sqlite_path("analytics", dir), None);
    }

    /// Spin: crates/key-value-redis, `KeyValueRedis::new` (redis-rs `parse_redis_url`).
    #[test]
    fn redis_store_urls_are_checked_as_spin_checks_them() {
        for ok in [
            "redis://h:6379",
            "rediss://h",
            "unix:///tmp/r.sock",
            "redis+unix:///tmp/r.sock",
        ] {
            parse(&format!(
                "[key_value_store.c]\ntype = \"redis\"\nurl = \"{ok}\"\n"
            ))
            .unwrap();
        }
        let e = err("[key_value_store.c]\ntype = \"redis\"\nurl = \"http://x\"\n");
        assert!(
            e.contains("key_value_store.c.url") && e.contains("Invalid Redis URL"),
            "{e}"
        );
    }
}
