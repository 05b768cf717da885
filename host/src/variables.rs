//! Application variables with Spin's semantics.
//!
//! Values come from, highest priority first: `--variable k=v`, the environment
//! (`SPIN_VARIABLE_<NAME>` and any extra env-provider prefixes), `.env` files named by the
//! runtime config, and the manifest's default. A required variable with no value stops the start
//! with Spin's own error (`provider error: no provider resolved required variable(s):
//! [Key("jwt_secret")]`, from `crates/variables`' provider resolution), unless the start asked
//! for `--generate-missing-secrets` (what bare `tikspin`, i.e. `cargo run`, does): then a
//! required *secret* gets a random value, generated once and kept in
//! `<state-dir>/generated-secrets.json`, and a notice says so. `tikspin up` never does that by
//! itself, so no production start runs on a generated secret.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use anyhow::{bail, Context, Result};

use crate::manifest::Manifest;

/// The names a template refers to, e.g. `"http://{{ host }}:{{port}}"` → `[host, port]`.
pub fn template_references(template: &str) -> Result<Vec<String>> {
    let mut names = Vec::new();
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            bail!("unclosed '{{{{' in {template:?}");
        };
        let name = after[..end].trim();
        if name.is_empty() {
            bail!("empty '{{{{ }}}}' in {template:?}");
        }
        names.push(name.to_string());
        rest = &after[end + 2..];
    }
    if rest.contains("}}") {
        bail!("stray '}}}}' in {template:?}");
    }
    Ok(names)
}

pub fn render(template: &str, values: &HashMap<String, String>) -> Result<String> {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after.find("}}").context("unclosed template")?;
        let name = after[..end].trim();
        let value = values
            .get(name)
            .with_context(|| format!("variable {name:?} has no value"))?;
        out.push_str(value);
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Where values come from besides the manifest.
pub struct Sources<'a> {
    pub cli: &'a [(String, String)],
    pub env_prefixes: Vec<String>,
    pub dotenv: HashMap<String, String>,
    pub state_dir: &'a Path,
    /// Give a required secret with no value a generated one (a local convenience, not Spin's).
    pub generate_missing_secrets: bool,
}

/// Every application variable's value, resolved once at start.
pub fn resolve_app_variables(
    manifest: &Manifest,
    sources: &Sources<'_>,
) -> Result<HashMap<String, String>> {
    for (name, _) in sources.cli {
        if !manifest.variables.contains_key(name) {
            bail!("--variable {name}: the manifest declares no variable {name:?}");
        }
    }
    let mut generated = GeneratedSecrets::load(sources.state_dir)?;
    let mut values = HashMap::new();
    let mut missing = Vec::new();
    for (name, decl) in &manifest.variables {
        let from_cli = sources
            .cli
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone());
        let from_env = sources.env_prefixes.iter().find_map(|prefix| {
            let key = format!("{prefix}_{}", name.to_ascii_uppercase());
            std::env::var(&key)
                .ok()
                .or_else(|| sources.dotenv.get(&key).cloned())
        });
        let value = match from_cli.or(from_env).or_else(|| decl.default.clone()) {
            Some(v) => v,
            None if decl.required && decl.secret && sources.generate_missing_secrets => {
                generated.get_or_create(name)?
            }
            None if decl.required => {
                missing.push(name.as_str());
                continue;
            }
            None => String::new(),
        };
        values.insert(name.clone(), value);
    }
    if !missing.is_empty() {
        let keys: Vec<String> = missing.iter().map(|n| format!("Key({n:?})")).collect();
        let how: Vec<String> = missing
            .iter()
            .map(|n| format!("SPIN_VARIABLE_{}=… (or --variable {n}=…)", n.to_ascii_uppercase()))
            .collect();
        bail!(
            "provider error: no provider resolved required variable(s): [{}]\nset {}",
            keys.join(", "),
            how.join(", ")
        );
    }
    Ok(values)
}

/// Reads `KEY=VALUE` lines, as Spin's env provider does with `dotenv_path`.
pub fn read_dotenv(path: &Path) -> Result<HashMap<String, String>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().trim_matches('"').to_string()))
        .collect())
}

/// Secrets generated for a zero-setup local run, kept so tokens survive restarts.
struct GeneratedSecrets {
    path: std::path::PathBuf,
    values: BTreeMap<String, String>,
}

impl GeneratedSecrets {
    fn load(state_dir: &Path) -> Result<Self> {
        let path = state_dir.join("generated-secrets.json");
        let values = match std::fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str(&text)
                .with_context(|| format!("{} is corrupt", path.display()))?,
            Err(_) => BTreeMap::new(),
        };
        Ok(Self { path, values })
    }

    fn get_or_create(&mut self, name: &str) -> Result<String> {
        if let Some(v) = self.values.get(name) {
            return Ok(v.clone());
        }
        use rand::Rng;
        let bytes: [u8; 32] = rand::rng().random();
        let value: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        self.values.insert(name.to_string(), value.clone());
        std::fs::create_dir_all(self.path.parent().unwrap())?;
        std::fs::write(&self.path, serde_json::to_string_pretty(&self.values)?)
            .with_context(|| format!("cannot write {}", self.path.display()))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(&self.path, std::fs::Permissions::from_mode(0o600));
        }
        eprintln!(
            "notice: secret variable {name:?} had no value; generated a random one for this local run and kept it in {} \
             (a real deployment must set SPIN_VARIABLE_{})",
            self.path.display(),
            name.to_ascii_uppercase()
        );
        Ok(value)
    }
}

/// A component's view: its own `[component.x.variables]`, rendered.
pub fn resolve_component_variables(
    templates: &BTreeMap<String, String>,
    app: &HashMap<String, String>,
) -> Result<HashMap<String, String>> {
    templates
        .iter()
        .map(|(k, t)| {
            Ok((
                k.clone(),
                render(t, app).with_context(|| format!("variables.{k}"))?,
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_and_render() {
        assert_eq!(
            template_references("a{{ x }}b{{y}}").unwrap(),
            vec!["x", "y"]
        );
        assert!(template_references("{{ x").is_err());
        assert!(template_references("{{ }}").is_err());
        let vals = HashMap::from([("x".to_string(), "1".to_string())]);
        assert_eq!(render("http://{{ x }}:80", &vals).unwrap(), "http://1:80");
        assert!(render("{{ y }}", &vals).is_err());
    }

    #[test]
    fn priority_and_required() {
        let m = crate::manifest::parse(
            r#"
spin_manifest_version = 2
[application]
name = "t"
[trigger]
[variables]
a = { default = "from-default" }
b = { default = "from-default" }
c = { required = true }
s = { required = true, secret = true }
"#,
        )
        .unwrap();
        let dir = tempdir();
        let cli = vec![
            ("a".to_string(), "from-cli".to_string()),
            ("c".to_string(), "set".to_string()),
        ];
        let src = Sources {
            cli: &cli,
            env_prefixes: vec!["TIKSPIN_TEST_PRIO".into()],
            dotenv: HashMap::new(),
            state_dir: &dir,
            generate_missing_secrets: true,
        };
        std::env::set_var("TIKSPIN_TEST_PRIO_B", "from-env");
        let v = resolve_app_variables(&m, &src).unwrap();
        assert_eq!(v["a"], "from-cli");
        assert_eq!(v["b"], "from-env");
        assert_eq!(v["s"].len(), 64);
        // The generated secret is stable across starts.
        assert_eq!(resolve_app_variables(&m, &src).unwrap()["s"], v["s"]);

        let src = Sources {
            cli: &[],
            env_prefixes: vec![],
            dotenv: HashMap::new(),
            state_dir: &dir,
            generate_missing_secrets: true,
        };
        let e = resolve_app_variables(&m, &src).unwrap_err().to_string();
        assert!(
            e.contains("no provider resolved required variable(s): [Key(\"c\")]"),
            "{e}"
        );

        // Without the local convenience a required secret is missing like any other (Spin).
        let src = Sources {
            cli: &cli,
            env_prefixes: vec![],
            dotenv: HashMap::new(),
            state_dir: &tempdir(),
            generate_missing_secrets: false,
        };
        let e = resolve_app_variables(&m, &src).unwrap_err().to_string();
        assert!(
            e.starts_with("provider error: no provider resolved required variable(s): [Key(\"s\")]"),
            "{e}"
        );

        let unknown = vec![("zzz".to_string(), "1".to_string())];
        let src = Sources {
            cli: &unknown,
            env_prefixes: vec![],
            dotenv: HashMap::new(),
            state_dir: &dir,
            generate_missing_secrets: true,
        };
        assert!(resolve_app_variables(&m, &src)
            .unwrap_err()
            .to_string()
            .contains("zzz"));
    }

    fn tempdir() -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!(
            "tikspin-vars-{}-{}",
            std::process::id(),
            rand::random::<u32>()
        ));
        std::fs::create_dir_all(&d).unwrap();
        d
    }
}
