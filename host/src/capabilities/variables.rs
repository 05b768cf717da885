//! `fermyon:spin/variables`: the component's own `[component.x.variables]`.
//!
//! The value of a `get` is the same in both profiles: the component's template with every
//! `{{ name }}` replaced by the application variable's value, taken, highest priority first,
//! from `--variable`, the environment (each env-provider prefix, then its `.env` files), and the
//! manifest's default (or the host's generated secret), as `crate::variables` resolves them.
//! How it is found depends on the [`Profile`]:
//!
//! - `spin` ([`Resolver`]): as Spin's `ProviderResolver` (crates/expressions), on every call: the
//!   template is looked up, and each `{{ name }}` asks the providers in turn — the CLI values,
//!   then the environment through `tokio::task::block_in_place` (crates/variables-env does every
//!   lookup so: `std::env::var("SPIN_VARIABLE_NAME")`, then the `.env` file read once), then the
//!   default. Nothing is cached between calls.
//! - `fast`: the values rendered once at start (`ComponentCaps::variables`).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::OnceLock;

use anyhow::{bail, Result};

use crate::bindings::fermyon::spin2_0_0::variables::{Error, Host};
use crate::manifest::Manifest;
use crate::profile::Profile;
use crate::state::InstanceState;

impl Host for InstanceState {
    /// Spin's span: crates/factor-variables/src/host.rs, `impl v2::Host` (the name, never the value).
    #[tracing::instrument(name = "spin_variables.get", skip(self, name), fields(otel.kind = "client", key = name.as_str()))]
    async fn get(&mut self, name: String) -> wasmtime::Result<Result<String, Error>> {
        if let Err(reason) = validate_name(&name) {
            return Ok(Err(Error::InvalidName(format!("{name:?}: {reason}"))));
        }
        Ok(match self.services.profile {
            Profile::Spin => self.services.variables.resolve(&self.caps.id, &name),
            Profile::Fast => self
                .caps
                .variables
                .get(&name)
                .cloned()
                .ok_or_else(|| undefined(&self.caps.id, &name)),
        })
    }
}

fn undefined(component: &str, name: &str) -> Error {
    Error::Undefined(format!("no variable {name:?} for component {component:?}"))
}

/// Spin's rules for a variable name (`spin_expressions::Key::validate`).
fn validate_name(key: &str) -> Result<(), &'static str> {
    if key.is_empty() {
        Err("must not be empty")
    } else if !key
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    {
        Err("variable names may contain only lower-case letters, numbers, and underscores")
    } else if !key.as_bytes()[0].is_ascii_lowercase() {
        Err("must start with a lowercase ASCII letter")
    } else if !key.as_bytes()[key.len() - 1].is_ascii_alphanumeric() {
        Err("must end with a lowercase ASCII letter or digit")
    } else if key.contains("__") {
        Err("must not contain multiple consecutive underscores")
    } else {
        Ok(())
    }
}

enum Part {
    Lit(String),
    Expr(String),
}

/// Resolves component variables on every call, the way Spin does (see the module docs).
pub struct Resolver {
    /// component id → variable name → its template, parsed.
    templates: HashMap<String, HashMap<String, Vec<Part>>>,
    /// `--variable` values (Spin: a static provider, put first).
    cli: HashMap<String, String>,
    /// Env-provider prefixes, each a provider of its own.
    env_prefixes: Vec<String>,
    dotenv_paths: Vec<PathBuf>,
    /// The `.env` files, read at the first lookup that misses the environment (as Spin does).
    dotenv: OnceLock<HashMap<String, String>>,
    /// The value each application variable ends with when no provider has one: its default,
    /// or the host's generated secret (a required one without a value stopped the start).
    fallback: HashMap<String, String>,
}

impl Resolver {
    /// `values` is every application variable's value as resolved at start; a provider walk
    /// that finds nothing ends there.
    pub fn new(
        manifest: &Manifest,
        cli: &[(String, String)],
        env_prefixes: Vec<String>,
        dotenv_paths: Vec<PathBuf>,
        values: &HashMap<String, String>,
    ) -> Result<Self> {
        let mut templates = HashMap::new();
        for (id, c) in &manifest.component {
            let mut parsed = HashMap::new();
            for (key, template) in &c.variables {
                parsed.insert(key.clone(), parse_template(template)?);
            }
            templates.insert(id.clone(), parsed);
        }
        Ok(Self {
            templates,
            // Later `--variable`s win, as in Spin's merged map.
            cli: cli.iter().cloned().collect(),
            env_prefixes,
            dotenv_paths,
            dotenv: OnceLock::new(),
            fallback: values.clone(),
        })
    }

    /// The component's variable `name`, resolved now.
    pub fn resolve(&self, component: &str, name: &str) -> Result<String, Error> {
        let template = self
            .templates
            .get(component)
            .and_then(|t| t.get(name))
            .ok_or_else(|| undefined(component, name))?;
        let mut out = String::new();
        for part in template {
            match part {
                Part::Lit(s) => out.push_str(s),
                Part::Expr(var) => out.push_str(&self.resolve_variable(var)?),
            }
        }
        Ok(out)
    }

    fn resolve_variable(&self, var: &str) -> Result<String, Error> {
        if let Some(v) = self.cli.get(var) {
            return Ok(v.clone());
        }
        for prefix in &self.env_prefixes {
            if let Some(v) = crate::capabilities::block_in_place(|| self.lookup_env(prefix, var)) {
                return Ok(v);
            }
        }
        self.fallback
            .get(var)
            .cloned()
            .ok_or_else(|| Error::Provider(format!("no provider resolved variable {var:?}")))
    }

    /// Spin's `EnvVariablesProvider::get_sync`: the environment, then the `.env` files.
    fn lookup_env(&self, prefix: &str, var: &str) -> Option<String> {
        let key = format!("{prefix}_{}", var.to_ascii_uppercase());
        match std::env::var(&key) {
            Ok(v) => Some(v),
            Err(_) => self
                .dotenv
                .get_or_init(|| {
                    let mut all = HashMap::new();
                    for p in &self.dotenv_paths {
                        // Read and checked at start; a file gone since has nothing to add.
                        all.extend(crate::variables::read_dotenv(p).unwrap_or_default());
                    }
                    all
                })
                .get(&key)
                .cloned(),
        }
    }
}

fn parse_template(template: &str) -> Result<Vec<Part>> {
    let mut parts = Vec::new();
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        if start > 0 {
            parts.push(Part::Lit(rest[..start].to_string()));
        }
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            bail!("unclosed '{{{{' in {template:?}");
        };
        parts.push(Part::Expr(after[..end].trim().to_string()));
        rest = &after[end + 2..];
    }
    if !rest.is_empty() {
        parts.push(Part::Lit(rest.to_string()));
    }
    Ok(parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolver(cli: &[(&str, &str)], prefixes: &[&str]) -> Resolver {
        let manifest = crate::manifest::parse(
            r#"
spin_manifest_version = 2
[application]
name = "t"
[variables]
greeting = { default = "hello" }
who = { default = "world" }
[[trigger.http]]
route = "/..."
component = "c"
[component.c]
source = "c.wasm"
[component.c.variables]
plain = "literal"
mixed = "{{ greeting }}, {{who}}!"
"#,
        )
        .unwrap();
        let values = HashMap::from([
            ("greeting".to_string(), "hello".to_string()),
            ("who".to_string(), "world".to_string()),
        ]);
        let cli: Vec<(String, String)> = cli
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Resolver::new(
            &manifest,
            &cli,
            prefixes.iter().map(|p| p.to_string()).collect(),
            vec![],
            &values,
        )
        .unwrap()
    }

    #[test]
    fn templates_resolve_through_the_providers_in_order() {
        let r = resolver(&[], &["TIKSPIN_TEST_RESOLVER_A"]);
        assert_eq!(r.resolve("c", "plain").unwrap(), "literal");
        assert_eq!(r.resolve("c", "mixed").unwrap(), "hello, world!");
        std::env::set_var("TIKSPIN_TEST_RESOLVER_A_WHO", "env");
        assert_eq!(r.resolve("c", "mixed").unwrap(), "hello, env!");
        let r = resolver(
            &[("who", "a"), ("who", "cli")],
            &["TIKSPIN_TEST_RESOLVER_A"],
        );
        assert_eq!(r.resolve("c", "mixed").unwrap(), "hello, cli!");
        assert!(matches!(r.resolve("c", "nope"), Err(Error::Undefined(_))));
        assert!(matches!(
            r.resolve("other", "plain"),
            Err(Error::Undefined(_))
        ));
    }

    #[test]
    fn names_follow_spins_rules() {
        for ok in ["a", "abc", "a1b2c3", "a_1", "a_1_b_3"] {
            assert!(validate_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", "aX", "1bc", "_x", "x.y", "x_", "a__b", "x-y"] {
            assert!(validate_name(bad).is_err(), "{bad}");
        }
    }
}
