//! `spin.toml` (manifest version 2): the subset TikSpin uses, with Spin's meaning.
//!
//! Parsing is strict: an unknown key is an error naming the file and the key, because a key this
//! host ignored but `spin up` honoured (or the reverse) would make the two runtimes disagree.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::Deserialize;

/// Spin: `crates/manifest/src/schema/v2.rs`, `AppManifest`. `trigger` has no default there, so a
/// manifest without one is refused ("missing field `trigger`").
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub spin_manifest_version: u32,
    pub application: Application,
    #[serde(default)]
    pub variables: BTreeMap<String, VariableDecl>,
    pub trigger: Triggers,
    #[serde(default)]
    pub component: BTreeMap<String, Component>,
}

/// Spin: `crates/manifest/src/schema/v2/app_details.rs`, `AppDetails`.
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
    /// Deployment targets (`spin build`/`spin deploy` checks); `spin up` does not read them.
    #[serde(default)]
    pub targets: Vec<String>,
    #[serde(default)]
    pub trigger: ApplicationTriggers,
    /// Settings for other tools; Spin ignores them, and so does this host.
    #[serde(default)]
    pub tool: BTreeMap<String, toml::Table>,
}

#[derive(Debug, Default, Deserialize)]
pub struct ApplicationTriggers {
    #[serde(default)]
    pub http: Option<HttpAppConfig>,
    #[serde(default)]
    pub redis: Option<RedisAppConfig>,
    /// Global settings of trigger types the app has no trigger of: Spin keeps them as opaque
    /// metadata and nothing reads them. (A trigger of such a type is refused below.)
    #[serde(flatten)]
    pub other: BTreeMap<String, toml::Table>,
}

/// Spin: `crates/trigger-http/src/lib.rs`, `HttpTrigger::validate_app` (`TriggerMetadata`, with
/// `deny_unknown_fields`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpAppConfig {
    #[serde(default)]
    pub base: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedisAppConfig {
    /// May be a `{{ variable }}` template, resolved at start.
    pub address: String,
}

/// Spin: `crates/manifest/src/schema/common.rs`, `Variable`.
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

/// Spin: `crates/http/src/config.rs`, `HttpTriggerConfig` (plus the manifest's `id`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpTrigger {
    #[serde(default)]
    pub id: Option<String>,
    pub route: RouteDecl,
    pub component: String,
    #[serde(default)]
    pub executor: Option<Executor>,
    /// A response served without a component: Spin serves it; this host does not.
    #[serde(default)]
    pub static_response: Option<toml::Value>,
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

/// Spin: `crates/http/src/config.rs`, `HttpExecutorType`: `http` (alias `spin`) or `wagi`.
#[derive(Debug, Deserialize)]
pub struct Executor {
    #[serde(rename = "type")]
    pub kind: String,
    /// The wagi executor's `argv` and `entrypoint`.
    #[serde(flatten)]
    pub wagi: BTreeMap<String, toml::Value>,
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

/// Spin: `crates/manifest/src/schema/v2/component.rs`, `Component`. Keys this host has no
/// support for (`files`, `ai_models`, `dependencies`, a remote `source`, ...) are read so that
/// refusing them names what is unsupported rather than calling a valid Spin key unknown.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Component {
    pub source: ComponentSource,
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
    #[serde(default)]
    pub files: Vec<toml::Value>,
    #[serde(default)]
    pub exclude_files: Vec<String>,
    #[serde(default)]
    pub allowed_http_hosts: Vec<String>,
    #[serde(default)]
    pub ai_models: Vec<String>,
    #[serde(default)]
    pub targets: Option<Vec<String>>,
    #[serde(default)]
    pub tool: BTreeMap<String, toml::Table>,
    #[serde(default)]
    pub dependencies_inherit_configuration: Option<bool>,
    #[serde(default)]
    pub dependencies: BTreeMap<String, toml::Value>,
    /// Build profiles (`spin build/up --profile`): this host runs the default profile, which
    /// they do not change.
    #[serde(default)]
    pub profile: BTreeMap<String, ProfileOverride>,
}

/// Spin: `crates/manifest/src/schema/common.rs`, `ComponentSource`: a local path, or a URL or a
/// registry package (which this host does not fetch).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum ComponentSource {
    Local(String),
    Remote(toml::Table),
}

/// Spin: `crates/manifest/src/schema/v2/component.rs`, `ComponentProfileOverride`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileOverride {
    #[serde(default)]
    pub source: Option<ComponentSource>,
    #[serde(default)]
    pub environment: BTreeMap<String, String>,
    #[serde(default)]
    pub dependencies: BTreeMap<String, toml::Value>,
    #[serde(default)]
    pub build: Option<ProfileBuildOverride>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileBuildOverride {
    pub command: Commands,
}

/// Spin: `crates/manifest/src/schema/common.rs`, `ComponentBuildConfig`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BuildConfig {
    pub command: Commands,
    #[serde(default)]
    pub workdir: Option<String>,
    #[serde(default)]
    pub watch: Vec<String>,
}

/// One build command, or several run in order (Spin: `Commands`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum Commands {
    Single(String),
    Multiple(Vec<String>),
}

impl Commands {
    pub fn iter(&self) -> impl Iterator<Item = &String> {
        match self {
            Self::Single(c) => std::slice::from_ref(c).iter(),
            Self::Multiple(cs) => cs.iter(),
        }
    }
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
        let manifest = parse(&text).with_context(|| {
            format!(
                "Failed to load manifest from {:?}",
                path.display().to_string()
            )
        })?;
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
        match &component.source {
            ComponentSource::Local(path) => self.dir.join(path),
            // Refused by `validate`.
            ComponentSource::Remote(_) => PathBuf::new(),
        }
    }
}

/// Parses and validates manifest text; errors name the offending key.
pub fn parse(text: &str) -> Result<Manifest> {
    let table: toml::Table =
        toml::from_str(text).map_err(|e| anyhow::anyhow!("{}", e.message_with_key()))?;
    let manifest: Manifest = match normalize_inline_components(table)? {
        // Deserialize from the text where possible: its errors carry line and column.
        None => toml::from_str(text).map_err(|e| anyhow::anyhow!("{}", e.message_with_key()))?,
        Some(table) => toml::Value::Table(table)
            .try_into()
            .map_err(|e: toml::de::Error| anyhow::anyhow!("{}", e.message_with_key()))?,
    };
    validate(&manifest)?;
    Ok(manifest)
}

/// A trigger's `component` may be written inline (`component = { source = "..." }`). Spin moves
/// such a component into `[component]` under a generated id and refers to it by that id
/// (Spin: `crates/manifest/src/normalize.rs`, `normalize_trigger_ids` and
/// `normalize_inline_components`); this does the same, before the typed parse. Returns `None`
/// when the manifest has no inline component.
fn normalize_inline_components(mut table: toml::Table) -> Result<Option<toml::Table>> {
    let Some(toml::Value::Table(triggers)) = table.get("trigger") else {
        return Ok(None);
    };
    let is_inline = |t: &toml::Value| t.get("component").is_some_and(toml::Value::is_table);
    if !triggers
        .values()
        .filter_map(toml::Value::as_array)
        .flatten()
        .any(is_inline)
    {
        return Ok(None);
    }
    // Trigger ids first: an explicit `id`, else `<component>-<type>-trigger` for a reference,
    // else `<type>-trigger<n>`.
    let mut taken: std::collections::HashSet<String> = triggers
        .values()
        .filter_map(toml::Value::as_array)
        .flatten()
        .filter_map(|t| t.get("id").and_then(toml::Value::as_str))
        .map(str::to_string)
        .collect();
    let mut ids: Vec<(String, usize, String)> = Vec::new();
    for (kind, list) in triggers {
        let Some(list) = list.as_array() else {
            continue;
        };
        let mut counter = 1;
        for (i, t) in list.iter().enumerate() {
            if let Some(id) = t.get("id").and_then(toml::Value::as_str) {
                if !id.is_empty() {
                    ids.push((kind.clone(), i, id.to_string()));
                    continue;
                }
            }
            if let Some(component) = t.get("component").and_then(toml::Value::as_str) {
                let candidate = format!("{component}-{kind}-trigger");
                if taken.insert(candidate.clone()) {
                    ids.push((kind.clone(), i, candidate));
                    continue;
                }
            }
            let id = loop {
                let id = format!("{kind}-trigger{counter}");
                if taken.insert(id.clone()) {
                    break id;
                }
                counter += 1;
            };
            ids.push((kind.clone(), i, id));
        }
    }
    let mut components = match table.remove("component") {
        None => toml::Table::new(),
        Some(toml::Value::Table(c)) => c,
        Some(_) => bail!("component: expected a table of components"),
    };
    let Some(toml::Value::Table(triggers)) = table.get_mut("trigger") else {
        unreachable!("checked above");
    };
    for (kind, i, trigger_id) in ids {
        let Some(t) = triggers
            .get_mut(&kind)
            .and_then(toml::Value::as_array_mut)
            .and_then(|l| l.get_mut(i))
            .and_then(toml::Value::as_table_mut)
        else {
            continue;
        };
        if !t.get("component").is_some_and(toml::Value::is_table) {
            continue;
        }
        let mut id = format!("{trigger_id}-component");
        if check_component_id(&id).is_err() || components.contains_key(&id) {
            let mut counter = 1;
            id = loop {
                let id = format!("inline-component{counter}");
                if !components.contains_key(&id) {
                    break id;
                }
                counter += 1;
            };
        }
        let inline = t.insert("component".into(), toml::Value::String(id.clone()));
        components.insert(id, inline.expect("checked above"));
    }
    table.insert("component".into(), toml::Value::Table(components));
    Ok(Some(table))
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
        // Spin: crates/loader/src/local.rs, `locked_variable`.
        if decl.required == decl.default.is_some() {
            bail!("variables.{name}: must be `required` OR have a `default`");
        }
    }
    check_application_triggers(&m.application.trigger)?;
    for (i, t) in m.trigger.http.iter().enumerate() {
        let trigger_id = trigger_id(t.id.as_deref(), &t.component, "http");
        check_trigger_component(m, &format!("trigger.http[{i}]"), &t.component, &trigger_id)?;
        if t.static_response.is_some() {
            bail!("trigger.http[{i}].static_response: static responses are not supported by this host (Spin serves them); route to a component instead");
        }
        if let Some(e) = &t.executor {
            check_executor(e).with_context(|| format!("trigger.http[{i}].executor"))?;
        }
        match &t.route {
            RouteDecl::Path(p) => {
                crate::routes::RoutePattern::parse(p)
                    .with_context(|| format!("trigger.http[{i}].route"))?;
            }
            // Spin: crates/http/src/routes.rs, `Router::build`.
            RouteDecl::Private(p) if !p.private => {
                bail!("trigger.http[{i}].route: route must be a string pattern or '{{ private = true }}': component '{}' has {{ private = false }}", t.component)
            }
            RouteDecl::Private(_) => {}
        }
    }
    for (i, t) in m.trigger.redis.iter().enumerate() {
        let trigger_id = trigger_id(t.id.as_deref(), &t.component, "redis");
        check_trigger_component(m, &format!("trigger.redis[{i}]"), &t.component, &trigger_id)?;
        if t.address.is_none() && m.application.trigger.redis.is_none() {
            bail!(
                "trigger.redis[{i}].address: no address, and no [application.trigger.redis] address to fall back on"
            );
        }
    }
    for (id, c) in &m.component {
        check_component_id(id).with_context(|| format!("component.{id}"))?;
        // Spin words it "Failed to load component `x`" → "`allowed_outbound_hosts` is malformed".
        crate::outbound::validate(&c.allowed_outbound_hosts, &m.variables).with_context(|| {
            format!("Failed to load component `{id}`: component.{id}.allowed_outbound_hosts is malformed")
        })?;
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
        check_component_keys(id, c)?;
    }
    Ok(())
}

/// Spin checks a variable name twice: as a manifest key (`LowerSnakeId`, crates/serde/src/id.rs)
/// and as a resolver key (crates/expressions/src/lib.rs, `Key::validate`). Together: lowercase
/// letters, digits and single underscores, starting with a letter and not ending with `_`.
fn check_variable_name(name: &str) -> Result<()> {
    check_id(name, '_', true).map_err(anyhow::Error::msg)?;
    let reason = if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_'))
    {
        format!("invalid character {c:?}. Variable names may contain only lower-case letters, numbers, and underscores.")
    } else if !name.ends_with(|c: char| c.is_ascii_alphanumeric()) {
        "must end with a lowercase ASCII letter or digit".to_string()
    } else if name.contains("__") {
        "must not contain multiple consecutive underscores".to_string()
    } else {
        return Ok(());
    };
    bail!("invalid variable name: {name:?}: {reason}")
}

/// Spin: a component id is a `KebabId` (crates/serde/src/id.rs).
fn check_component_id(id: &str) -> Result<()> {
    check_id(id, '-', false).map_err(anyhow::Error::msg)
}

/// Spin: crates/serde/src/id.rs, `Id::<DELIM, LOWER>::try_from`, with its messages: words of
/// ASCII letters and digits (`:` allowed inside a word) joined by `delim`; the first word starts
/// with a letter; each word is all lowercase or all UPPERCASE (all lowercase if `lower`).
fn check_id(id: &str, delim: char, lower: bool) -> std::result::Result<(), String> {
    if id.is_empty() {
        return Err("empty".into());
    }
    let wrong = match delim {
        '_' => Some('-'),
        '-' => Some('_'),
        _ => None,
    };
    if let Some(wrong) = wrong.filter(|w| id.contains(*w)) {
        return Err(format!(
            "words must be separated with {delim:?}, not {wrong:?}"
        ));
    }
    for (i, word) in id.split(delim).enumerate() {
        let mut chars = word.chars();
        let Some(first) = chars.next() else {
            return Err(format!("{delim:?}-separated words must not be empty"));
        };
        if !(first.is_ascii_alphabetic() || (i > 0 && first.is_ascii_digit())) {
            return Err(format!(
                "{delim:?}-separated words must start with an ASCII letter or digit; got {first:?}"
            ));
        }
        let upper = first.is_ascii_uppercase();
        for ch in chars {
            if ch.is_ascii_digit() || ch == ':' {
            } else if !ch.is_ascii_alphanumeric() {
                return Err(format!(
                    "{delim:?}-separated words may only contain alphanumeric ASCII (plus ':' inside words); got {ch:?}"
                ));
            } else if ch.is_ascii_uppercase() != upper {
                return Err(format!(
                    "{delim:?}-separated words must be all lowercase or all UPPERCASE; got {word:?}"
                ));
            }
        }
        if lower && upper {
            return Err(format!(
                "Lower-case identifiers must be all lowercase; got {id:?}"
            ));
        }
    }
    Ok(())
}

/// Spin: crates/manifest/src/schema/kebab_or_snake_case.rs: a store or database label is a
/// `KebabId` or a `SnakeId`.
fn check_label(label: &str) -> Result<()> {
    if check_id(label, '-', false).is_ok() || check_id(label, '_', false).is_ok() {
        Ok(())
    } else {
        bail!("{label:?}: expected kebab-case or snake_case")
    }
}

/// The id Spin gives a trigger without one (crates/manifest/src/normalize.rs,
/// `normalize_trigger_ids`), for messages.
fn trigger_id(id: Option<&str>, component: &str, kind: &str) -> String {
    match id {
        Some(id) if !id.is_empty() => id.to_string(),
        _ => format!("{component}-{kind}-trigger"),
    }
}

/// A trigger's `component` is a `KebabId` (crates/manifest/src/schema/v2/trigger.rs,
/// `ComponentSpec`) naming a `[component.<id>]` (crates/app/src/lib.rs, `AppTrigger::component`).
fn check_trigger_component(
    m: &Manifest,
    key: &str,
    component: &str,
    trigger_id: &str,
) -> Result<()> {
    check_component_id(component).with_context(|| format!("{key}.component"))?;
    if !m.component.contains_key(component) {
        bail!("{key}.component: missing component {component:?} configured for trigger {trigger_id:?}");
    }
    Ok(())
}

/// Spin: crates/http/src/config.rs, `HttpExecutorType` (`type = "http"`, alias `"spin"`, or
/// `"wagi"` with `argv`/`entrypoint`; nothing else).
fn check_executor(e: &Executor) -> Result<()> {
    match e.kind.as_str() {
        "http" | "spin" => {
            if let Some(key) = e.wagi.keys().next() {
                bail!("{key}: unknown field `{key}`, expected `type`");
            }
            Ok(())
        }
        "wagi" => {
            if let Some(key) = e.wagi.keys().find(|k| *k != "argv" && *k != "entrypoint") {
                bail!("{key}: unknown field `{key}`, expected `type`, `entrypoint` or `argv`");
            }
            bail!("type: the wagi executor is not supported by this host")
        }
        other => bail!("type: unknown variant `{other}`, expected `http` or `wagi`"),
    }
}

/// Spin: crates/trigger-http/src/lib.rs, `HttpTrigger::validate_app`: the removed `base` is
/// tolerated only as `"/"`.
fn check_application_triggers(t: &ApplicationTriggers) -> Result<()> {
    if let Some(base) = t.http.as_ref().and_then(|h| h.base.as_deref()) {
        if base == "/" {
            eprintln!("warning: This application has the deprecated trigger 'base' set to the default value '/'. This may be an error in the future!");
        } else {
            bail!("application.trigger.http.base: This application is using the deprecated trigger 'base' field. The base must be prepended to each [[trigger.http]]'s 'route'.");
        }
    }
    Ok(())
}

/// What a component may declare: Spin's keys, minus the ones this host cannot honour, which are
/// refused by name rather than ignored (a component relying on them would misbehave here).
fn check_component_keys(id: &str, c: &Component) -> Result<()> {
    let unsupported = |key: &str, what: &str| {
        anyhow::anyhow!("component.{id}.{key}: {what} is not supported by this host")
    };
    if let ComponentSource::Remote(_) = c.source {
        return Err(unsupported(
            "source",
            "a URL or registry source (only a local file path)",
        ));
    }
    for (key, labels) in [
        ("key_value_stores", &c.key_value_stores),
        ("sqlite_databases", &c.sqlite_databases),
    ] {
        for (i, label) in labels.iter().enumerate() {
            check_label(label).with_context(|| format!("component.{id}.{key}[{i}]"))?;
        }
    }
    if !c.files.is_empty() {
        return Err(unsupported("files", "mounting files"));
    }
    if !c.allowed_http_hosts.is_empty() {
        return Err(unsupported(
            "allowed_http_hosts",
            "the deprecated `allowed_http_hosts` (use `allowed_outbound_hosts`)",
        ));
    }
    if !c.ai_models.is_empty() {
        return Err(unsupported("ai_models", "Serverless AI"));
    }
    if !c.dependencies.is_empty() {
        return Err(unsupported(
            "dependencies",
            "composing component dependencies",
        ));
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
        let e = err(&MINIMAL.replace("/a/...", "/a/.../b"));
        assert!(e.contains("trigger.http[0].route"), "{e}");
        let e = err(&MINIMAL.replace(
            "source = \"a.wasm\"",
            "source = \"a.wasm\"\nallowed_outbound_hosts = [\"nohost\"]",
        ));
        assert!(
            e.contains("component.a.allowed_outbound_hosts is malformed"),
            "{e}"
        );
    }

    #[test]
    fn malformed_toml_is_one_error() {
        let e = err("spin_manifest_version = 2\n[application\nname=");
        assert!(!e.is_empty());
    }

    fn with(from: &str, to: &str) -> String {
        assert!(MINIMAL.contains(from), "{from}");
        MINIMAL.replace(from, to)
    }

    /// Spin: crates/manifest/src/schema/v2.rs, `AppManifest` (`trigger` has no default).
    #[test]
    fn a_manifest_without_triggers_is_refused() {
        let text = "spin_manifest_version = 2\n[application]\nname = \"t\"\n";
        assert!(
            err(text).contains("missing field `trigger`"),
            "{}",
            err(text)
        );
    }

    /// Spin: crates/loader/src/local.rs, `locked_variable`: exactly one of `required` and
    /// `default`.
    #[test]
    fn a_variable_is_required_or_has_a_default() {
        let msg = "must be `required` OR have a `default`";
        let e = err(&with(
            "{ required = true, secret = true }",
            "{ secret = true }",
        ));
        assert!(e.contains("variables.secret") && e.contains(msg), "{e}");
        let e = err(&with(
            "{ required = true, secret = true }",
            "{ required = true, default = \"x\" }",
        ));
        assert!(e.contains("variables.secret") && e.contains(msg), "{e}");
    }

    /// Spin: crates/serde/src/id.rs (`LowerSnakeId`) and crates/expressions/src/lib.rs
    /// (`Key::validate`, its tests `keys_good` / `keys_bad`).
    #[test]
    fn variable_names_follow_spin() {
        for good in ["a", "abc", "a1b2c3", "a_1", "a_1_b_3"] {
            check_variable_name(good).unwrap();
        }
        for bad in ["", "aX", "1bc", "_x", "x.y", "x_", "a__b", "x-y", "a:b"] {
            assert!(check_variable_name(bad).is_err(), "{bad}");
        }
        let e = check_variable_name("bad+name").unwrap_err().to_string();
        assert_eq!(e, "'_'-separated words may only contain alphanumeric ASCII (plus ':' inside words); got '+'");
        let e = check_variable_name("a:b").unwrap_err().to_string();
        assert!(
            e.starts_with("invalid variable name: \"a:b\": invalid character ':'"),
            "{e}"
        );
    }

    /// Spin: crates/serde/src/id.rs, `KebabId` (and crates/manifest/tests/ui/invalid/
    /// bad_kebab_component_ref.err).
    #[test]
    fn component_ids_are_kebab_ids() {
        for good in [
            "a", "api", "a-1", "my-api-2", "API", "API-v2", "a:b", "x-1a",
        ] {
            check_component_id(good).unwrap();
        }
        for bad in ["", "1-2-3", "a--b", "a-", "-a", "a_b", "Api", "a.b", "a b"] {
            assert!(check_component_id(bad).is_err(), "{bad}");
        }
        assert_eq!(
            check_component_id("1-2-3").unwrap_err().to_string(),
            "'-'-separated words must start with an ASCII letter or digit; got '1'"
        );
        let e = err(&with("component = \"a\"", "component = \"1-2-3\""));
        assert!(
            e.contains("trigger.http[0].component") && e.contains("got '1'"),
            "{e}"
        );
        let e = err(&MINIMAL
            .replace("component.a", "component.my_api")
            .replace("component = \"a\"", "component = \"my_api\""));
        assert!(
            e.contains("words must be separated with '-', not '_'"),
            "{e}"
        );
    }

    /// Spin: crates/app/src/lib.rs, `AppTrigger::component`.
    #[test]
    fn a_trigger_names_a_declared_component() {
        let e = err(&with("component = \"a\"", "component = \"b\""));
        assert!(
            e.contains("trigger.http[0].component: missing component \"b\" configured for trigger \"b-http-trigger\""),
            "{e}"
        );
    }

    /// Spin: crates/manifest/src/schema/kebab_or_snake_case.rs (and v2.rs tests
    /// `deserializing_labels` / `deserializing_labels_fails_for_non_kebab_or_snake`).
    #[test]
    fn store_and_database_labels_are_kebab_or_snake() {
        let ok = with(
            "source = \"a.wasm\"",
            "source = \"a.wasm\"\nkey_value_stores = [\"default\", \"snake_case\", \"kebab-case\", \"mixed_CASE_words\"]\nsqlite_databases = [\"default\", \"snake_case\", \"kebab-case\"]",
        );
        parse(&ok).unwrap();
        for (key, label) in [
            ("key_value_stores", "b@dlabel"),
            ("sqlite_databases", "camelCase"),
        ] {
            let e = err(&with(
                "source = \"a.wasm\"",
                &format!("source = \"a.wasm\"\n{key} = [\"{label}\"]"),
            ));
            assert!(
                e.contains(&format!("component.a.{key}[0]"))
                    && e.contains("expected kebab-case or snake_case"),
                "{e}"
            );
        }
    }

    /// Spin: crates/http/src/config.rs, `HttpExecutorType`: `http` (alias `spin`) or `wagi`.
    #[test]
    fn executors_are_spins() {
        parse(&with(
            "component = \"a\"",
            "component = \"a\"\nexecutor = { type = \"http\" }",
        ))
        .unwrap();
        parse(&with(
            "component = \"a\"",
            "component = \"a\"\nexecutor = { type = \"spin\" }",
        ))
        .unwrap();
        let e = err(&with(
            "component = \"a\"",
            "component = \"a\"\nexecutor = { type = \"cgi\" }",
        ));
        assert!(
            e.contains("trigger.http[0].executor") && e.contains("unknown variant `cgi`"),
            "{e}"
        );
        let e = err(&with(
            "component = \"a\"",
            "component = \"a\"\nexecutor = { type = \"http\", argv = \"x\" }",
        ));
        assert!(e.contains("unknown field `argv`"), "{e}");
        let e = err(&with(
            "component = \"a\"",
            "component = \"a\"\nexecutor = { type = \"wagi\" }",
        ));
        assert!(e.contains("not supported by this host"), "{e}");
    }

    /// Spin: crates/http/src/routes.rs, `Router::build` (`{ private = false }` is refused).
    #[test]
    fn private_false_is_refused_with_spins_message() {
        let e = err(&with("route = \"/a/...\"", "route = { private = false }"));
        assert!(
            e.contains("route must be a string pattern or '{ private = true }'"),
            "{e}"
        );
        parse(&with("route = \"/a/...\"", "route = { private = true }")).unwrap();
    }

    /// Spin: crates/trigger-http/src/lib.rs, `HttpTrigger::validate_app`.
    #[test]
    fn the_removed_http_base_is_tolerated_only_as_slash() {
        parse(&with(
            "name = \"t\"",
            "name = \"t\"\n[application.trigger.http]\nbase = \"/\"",
        ))
        .unwrap();
        let e = err(&with(
            "name = \"t\"",
            "name = \"t\"\n[application.trigger.http]\nbase = \"/api\"",
        ));
        assert!(
            e.contains("application.trigger.http.base") && e.contains("deprecated trigger 'base'"),
            "{e}"
        );
    }

    /// Spin: crates/manifest/src/schema/v2/app_details.rs and v2/component.rs: `tool` tables,
    /// `targets` and build `profile`s are Spin keys `spin up` does not act on; several build
    /// commands are a list.
    #[test]
    fn keys_spin_up_ignores_are_accepted() {
        let text = with("name = \"t\"", "name = \"t\"\ntargets = [\"spin-up:3.3\"]\n[application.tool.lint]\nlevel = \"savage\"")
            .replace(
                "source = \"a.wasm\"",
                "source = \"a.wasm\"\ntargets = [\"spin-up:3.3\"]\nbuild = { command = [\"npm install\", \"npm run build\"] }\n[component.a.tool.clean]\ncommand = \"cargo clean\"\n[component.a.profile.debug]\nsource = \"debug.wasm\"\nbuild.command = \"cargo build\"",
            );
        let m = parse(&text).unwrap();
        let build = m.component["a"].build.as_ref().unwrap();
        assert_eq!(
            build.command.iter().collect::<Vec<_>>(),
            ["npm install", "npm run build"]
        );
    }

    /// Keys Spin honours and this host cannot are refused by name, not as unknown.
    #[test]
    fn unsupported_spin_keys_are_named() {
        for (extra, key) in [
            ("files = [\"assets/*\"]", "component.a.files"),
            ("ai_models = [\"llama2-chat\"]", "component.a.ai_models"),
            (
                "allowed_http_hosts = [\"example.com\"]",
                "component.a.allowed_http_hosts",
            ),
            (
                "dependencies = { \"a:b/c\" = \"0.1.0\" }",
                "component.a.dependencies",
            ),
        ] {
            let e = err(&with(
                "source = \"a.wasm\"",
                &format!("source = \"a.wasm\"\n{extra}"),
            ));
            assert!(
                e.contains(key) && e.contains("not supported by this host"),
                "{e}"
            );
        }
        let e = err(&with(
            "source = \"a.wasm\"",
            "source = { url = \"https://x/a.wasm\", digest = \"sha256:0\" }",
        ));
        assert!(
            e.contains("component.a.source") && e.contains("not supported"),
            "{e}"
        );
        let e = err(&with(
            "component = \"a\"",
            "component = \"a\"\nstatic_response = { status_code = 204 }",
        ));
        assert!(e.contains("trigger.http[0].static_response"), "{e}");
    }

    /// Spin: crates/manifest/src/normalize.rs (`normalize_trigger_ids`,
    /// `normalize_inline_components`): an inline component becomes
    /// `[component.<trigger-id>-component]`, or `inline-component<n>`.
    #[test]
    fn inline_components_are_moved_under_generated_ids() {
        let text = r#"
spin_manifest_version = 2
[application]
name = "t"
[[trigger.http]]
id = "web"
route = "/..."
component = { source = "web.wasm", key_value_stores = ["default"] }
[[trigger.http]]
route = "/api/..."
component = { source = "api.wasm" }
[[trigger.http]]
route = "/b/..."
component = "b"
[component.b]
source = "b.wasm"
"#;
        let m = parse(text).unwrap();
        assert_eq!(m.trigger.http[0].component, "web-component");
        assert_eq!(m.trigger.http[1].component, "http-trigger1-component");
        assert_eq!(m.trigger.http[2].component, "b");
        assert_eq!(m.component["web-component"].key_value_stores, ["default"]);
        let e = err(&text.replace("source = \"web.wasm\"", "sorce = \"web.wasm\""));
        assert!(e.contains("sorce"), "{e}");
    }
}
