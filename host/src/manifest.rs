//! `spin.toml` (manifest version 2): the subset TikSpin uses, with Spin's meaning.
//!
//! Parsing is strict: an unknown key is an error naming the file and the key, because a key this
//! host ignored but `spin up` honoured (or the reverse) would make the two runtimes disagree.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub spin_manifest_version: u32,
    pub application: Application,
    #[serde(default)]
    pub variables: BTreeMap<String, VariableDecl>,
    #[serde(default)]
    pub trigger: Triggers,
    #[serde(default)]
    pub component: BTreeMap<String, Component>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Application {
    pub name: String,
    #[serde(default)]
    pub version: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub authors: Vec<String>,
    #[serde(default)]
    pub trigger: ApplicationTriggers,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApplicationTriggers {
    #[serde(default)]
    pub redis: Option<RedisAppConfig>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedisAppConfig {
    /// May be a `{{ variable }}` template, resolved at start.
    pub address: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VariableDecl {
    #[serde(default)]
    pub default: Option<String>,
    #[serde(default)]
    pub required: bool,
    #[serde(default)]
    pub secret: bool,
    #[serde(default)]
    pub description: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Triggers {
    #[serde(default)]
    pub http: Vec<HttpTrigger>,
    #[serde(default)]
    pub redis: Vec<RedisTrigger>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpTrigger {
    #[serde(default)]
    pub id: Option<String>,
    pub route: RouteDecl,
    pub component: String,
    #[serde(default)]
    pub executor: Option<Executor>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum RouteDecl {
    Path(String),
    Private(PrivateRoute),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrivateRoute {
    pub private: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Executor {
    #[serde(rename = "type")]
    pub kind: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedisTrigger {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub address: Option<String>,
    pub channel: String,
    pub component: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Component {
    pub source: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub allowed_outbound_hosts: Vec<String>,
    #[serde(default)]
    pub key_value_stores: Vec<String>,
    #[serde(default)]
    pub sqlite_databases: Vec<String>,
    #[serde(default)]
    pub variables: BTreeMap<String, String>,
    #[serde(default)]
    pub environment: BTreeMap<String, String>,
    #[serde(default)]
    pub build: Option<BuildConfig>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BuildConfig {
    pub command: String,
    #[serde(default)]
    pub workdir: Option<String>,
    #[serde(default)]
    pub watch: Vec<String>,
}

/// A manifest together with the directory its relative paths are resolved against.
pub struct LoadedManifest {
    pub manifest: Manifest,
    pub path: PathBuf,
    pub dir: PathBuf,
}

impl LoadedManifest {
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read manifest {}", path.display()))?;
        let manifest = parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        let dir = path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        let dir = if dir.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            dir
        };
        Ok(Self {
            manifest,
            path: path.to_path_buf(),
            dir,
        })
    }

    pub fn source_path(&self, component: &Component) -> PathBuf {
        self.dir.join(&component.source)
    }
}

/// Parses and validates manifest text; errors name the offending key.
pub fn parse(text: &str) -> Result<Manifest> {
    let manifest: Manifest =
        toml::from_str(text).map_err(|e| anyhow::anyhow!("{}", e.message_with_key()))?;
    validate(&manifest)?;
    Ok(manifest)
}

trait MessageWithKey {
    fn message_with_key(&self) -> String;
}

impl MessageWithKey for toml::de::Error {
    // toml reports the key path in its Display but not in `message`; keep the Display, which
    // names the line, the key and what was wrong, minus the source snippet noise.
    fn message_with_key(&self) -> String {
        self.to_string().trim().to_string()
    }
}

fn validate(m: &Manifest) -> Result<()> {
    if m.spin_manifest_version != 2 {
        bail!(
            "spin_manifest_version: {} is not supported (this host reads version 2)",
            m.spin_manifest_version
        );
    }
    for (name, decl) in &m.variables {
        check_variable_name(name).with_context(|| format!("variables.{name}"))?;
        if decl.required && decl.default.is_some() {
            bail!("variables.{name}: a variable cannot be both required and have a default");
        }
    }
    for (i, t) in m.trigger.http.iter().enumerate() {
        if !m.component.contains_key(&t.component) {
            bail!(
                "trigger.http[{i}].component: no component named {:?}",
                t.component
            );
        }
        if let Some(e) = &t.executor {
            if e.kind != "spin" && e.kind != "wagi" {
                bail!(
                    "trigger.http[{i}].executor.type: unknown executor {:?}",
                    e.kind
                );
            }
            if e.kind == "wagi" {
                bail!("trigger.http[{i}].executor.type: the wagi executor is not supported by this host");
            }
        }
        match &t.route {
            RouteDecl::Path(p) => {
                crate::routes::RoutePattern::parse(p)
                    .with_context(|| format!("trigger.http[{i}].route"))?;
            }
            RouteDecl::Private(p) if !p.private => {
                bail!("trigger.http[{i}].route: `private = false` is not a route")
            }
            RouteDecl::Private(_) => {}
        }
    }
    for (i, t) in m.trigger.redis.iter().enumerate() {
        if !m.component.contains_key(&t.component) {
            bail!(
                "trigger.redis[{i}].component: no component named {:?}",
                t.component
            );
        }
        if t.address.is_none() && m.application.trigger.redis.is_none() {
            bail!(
                "trigger.redis[{i}].address: no address, and no [application.trigger.redis] address to fall back on"
            );
        }
    }
    for (id, c) in &m.component {
        check_component_id(id).with_context(|| format!("component.{id}"))?;
        for (i, host) in c.allowed_outbound_hosts.iter().enumerate() {
            crate::outbound::AllowedHost::parse_template(host)
                .with_context(|| format!("component.{id}.allowed_outbound_hosts[{i}]"))?;
        }
        for name in c.variables.keys() {
            check_variable_name(name)
                .with_context(|| format!("component.{id}.variables.{name}"))?;
        }
        for (name, value) in &c.variables {
            for used in crate::variables::template_references(value)
                .with_context(|| format!("component.{id}.variables.{name}"))?
            {
                if !m.variables.contains_key(&used) {
                    bail!(
                        "component.{id}.variables.{name}: refers to {{{{ {used} }}}}, which is not declared in [variables]"
                    );
                }
            }
        }
    }
    Ok(())
}

fn check_variable_name(name: &str) -> Result<()> {
    // Spin: lowercase letters, digits and underscores, starting with a letter.
    let ok = name.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && !name.ends_with('_')
        && !name.contains("__");
    if !ok {
        bail!("invalid variable name {name:?}: use lowercase letters, digits and single underscores, starting with a letter");
    }
    Ok(())
}

fn check_component_id(id: &str) -> Result<()> {
    // Spin: kebab-case identifiers.
    let ok = id.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !id.ends_with('-');
    if !ok {
        bail!("invalid component id {id:?}: use lowercase letters, digits and dashes (kebab-case)");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
spin_manifest_version = 2
[application]
name = "t"
[variables]
secret = { required = true, secret = true }
[[trigger.http]]
route = "/a/..."
component = "a"
[component.a]
source = "a.wasm"
[component.a.variables]
secret = "{{ secret }}"
"#;

    #[test]
    fn minimal_manifest_parses() {
        let m = parse(MINIMAL).unwrap();
        assert_eq!(m.trigger.http.len(), 1);
        assert!(m.variables["secret"].secret);
    }

    fn err(text: &str) -> String {
        format!("{:#}", parse(text).unwrap_err())
    }

    #[test]
    fn unknown_keys_are_named() {
        let e = err(&MINIMAL.replace("source = \"a.wasm\"", "source = \"a.wasm\"\nsorce = 1"));
        assert!(e.contains("sorce"), "{e}");
        let e = err(&MINIMAL.replace("name = \"t\"", "name = \"t\"\nflavour = \"x\""));
        assert!(e.contains("flavour"), "{e}");
    }

    #[test]
    fn wrong_version_is_refused() {
        let e = err(&MINIMAL.replace("spin_manifest_version = 2", "spin_manifest_version = 1"));
        assert!(e.contains("spin_manifest_version"), "{e}");
    }

    #[test]
    fn trigger_for_missing_component_is_refused() {
        let e = err(&MINIMAL.replace("component = \"a\"", "component = \"b\""));
        assert!(e.contains("trigger.http[0].component"), "{e}");
    }

    #[test]
    fn undeclared_variable_reference_is_refused() {
        let e = err(&MINIMAL.replace("\"{{ secret }}\"", "\"{{ other }}\""));
        assert!(
            e.contains("component.a.variables.secret") && e.contains("other"),
            "{e}"
        );
    }

    #[test]
    fn bad_route_and_host_are_named() {
        let e = err(&MINIMAL.replace("/a/...", "a/..."));
        assert!(e.contains("trigger.http[0].route"), "{e}");
        let e = err(&MINIMAL.replace(
            "source = \"a.wasm\"",
            "source = \"a.wasm\"\nallowed_outbound_hosts = [\"nohost\"]",
        ));
        assert!(e.contains("allowed_outbound_hosts[0]"), "{e}");
    }

    #[test]
    fn malformed_toml_is_one_error() {
        let e = err("spin_manifest_version = 2\n[application\nname=");
        assert!(!e.is_empty());
    }
}
