//! The built components need nothing Spin 3.6 lacks (SpinKube's containerd-shim-spin runs Spin
//! 3.6): every interface a component imports, and every trigger export it offers, is checked
//! against `spin-3.6-interfaces.txt` beside this file, which says where its list was read and
//! which matching rule applies (the rule is [`check_import`] and [`check_export`]).
//!
//! The components are those named by the `source` keys of `spin.toml` and of every other
//! `spin*.toml` at the repository root (the production manifest adds the Redis-triggered
//! worker), built first through the harness as `cargo test` builds them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use wasmparser::{Parser, Payload};

const LIST: &str = include_str!("spin-3.6-interfaces.txt");

/// What Spin 3.6 provides (imports) and looks for (exports), as the list file spells them.
struct Spin36 {
    imports: Vec<String>,
    exports: Vec<String>,
}

fn spin36() -> Spin36 {
    let mut s = Spin36 {
        imports: Vec::new(),
        exports: Vec::new(),
    };
    for (n, line) in LIST.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (list, name) = match line.strip_prefix("export ") {
            Some(name) => (&mut s.exports, name.trim()),
            None => (&mut s.imports, line),
        };
        assert!(
            is_interface_name(name),
            "spin-3.6-interfaces.txt line {}: {line:?} is not `namespace:package/interface[@version]`",
            n + 1
        );
        list.push(name.to_string());
    }
    s
}

fn is_interface_name(name: &str) -> bool {
    let (path, version) = split(name);
    let word = |w: &str| !w.is_empty() && w.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    let well_formed = match path
        .split_once(':')
        .map(|(ns, rest)| (ns, rest.split_once('/')))
    {
        Some((ns, Some((pkg, iface)))) => word(ns) && word(pkg) && word(iface),
        _ => false,
    };
    well_formed && version.is_none_or(|v| Version::parse(v).is_some())
}

/// `ns:pkg/iface@1.2.3` → (`ns:pkg/iface`, Some(`1.2.3`)).
fn split(name: &str) -> (&str, Option<&str>) {
    match name.split_once('@') {
        Some((path, version)) => (path, Some(version)),
        None => (name, None),
    }
}

/// A semver version; build metadata is ignored, as in wasmtime's lookups.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Version {
    major: u64,
    minor: u64,
    patch: u64,
    pre: String,
}

impl Version {
    fn parse(s: &str) -> Option<Version> {
        let s = s.split('+').next()?;
        let (core, pre) = s.split_once('-').unwrap_or((s, ""));
        let mut parts = core.split('.').map(|p| p.parse::<u64>().ok());
        let v = Version {
            major: parts.next()??,
            minor: parts.next()??,
            patch: parts.next()??,
            pre: pre.to_string(),
        };
        parts.next().is_none().then_some(v)
    }

    /// The versions wasmtime's linker treats as one compatible track (its
    /// `alternate_lookup_key`): same major; same `0.minor` under 1.0; a pre-release, or a
    /// `0.0.x`, is a track of its own (`None`: exact match only).
    fn track(&self) -> Option<(u64, u64)> {
        if !self.pre.is_empty() {
            None
        } else if self.major != 0 {
            Some((self.major, u64::MAX))
        } else if self.minor != 0 {
            Some((0, self.minor))
        } else {
            None
        }
    }

    fn key(&self) -> (u64, u64, u64) {
        (self.major, self.minor, self.patch)
    }
}

/// Whether Spin 3.6 satisfies a component's import of `import`; `Err` says why not.
///
/// The rule: an import listed verbatim is provided. Otherwise, a versioned import is provided
/// when the list has the same interface on the same semver track (see [`Version::track`]) at
/// the same or a later version: wasmtime's linker resolves `wasi:io/poll@0.2.3` to the host's
/// `0.2.6`, and everything 0.2.3 defines is in 0.2.6. A later version than the host's (0.2.7
/// against 0.2.6) is refused, although wasmtime's lookup goes that way too, because it works
/// only while the component calls nothing added after 0.2.6, which this test does not check
/// function by function. Pre-release versions (drafts, RCs) and unversioned names must match
/// exactly.
fn check_import(import: &str, provided: &[String]) -> Result<(), String> {
    if provided.iter().any(|p| p == import) {
        return Ok(());
    }
    let (path, version) = split(import);
    let same: Vec<&str> = provided
        .iter()
        .filter(|p| split(p).0 == path)
        .map(|p| p.as_str())
        .collect();
    if same.is_empty() {
        return Err(format!("Spin 3.6 provides no `{path}` at any version"));
    }
    let have = same.join(", ");
    let Some(v) = version.and_then(Version::parse) else {
        return Err(format!(
            "not provided: unversioned names match exactly, and Spin 3.6 has {have}"
        ));
    };
    let Some(track) = v.track() else {
        return Err(format!(
            "not provided: a pre-release or 0.0.x version matches exactly, and Spin 3.6 has {have}"
        ));
    };
    let satisfied = same.iter().any(|p| {
        split(p)
            .1
            .and_then(Version::parse)
            .is_some_and(|pv| pv.track() == Some(track) && pv.key() >= v.key())
    });
    if satisfied {
        Ok(())
    } else {
        Err(format!(
            "not provided: Spin 3.6 has {have}; this import needs the same semver track at \
             {}.{}.{} or later",
            v.major, v.minor, v.patch
        ))
    }
}

/// Whether a Spin 3.6 trigger finds the component's export `export`; `Err` says why not.
///
/// Exports run the other way (the host calls into them), so any version on the track of a
/// listed export will do: Spin's HTTP trigger takes every `wasi:http/incoming-handler@0.2.*`.
/// Exports that are not trigger entry points (none today) would fail here as unknown.
fn check_export(export: &str, expected: &[String]) -> Result<(), String> {
    if expected.iter().any(|e| e == export) {
        return Ok(());
    }
    let (path, version) = split(export);
    let track = version.and_then(Version::parse).and_then(|v| v.track());
    let found = track.is_some()
        && expected.iter().any(|e| {
            let (epath, ev) = split(e);
            epath == path && ev.and_then(Version::parse).and_then(|v| v.track()) == track
        });
    if found {
        Ok(())
    } else {
        Err(format!(
            "no Spin 3.6 trigger looks for it (they look for {})",
            expected.join(", ")
        ))
    }
}

/// The top-level import and export names of a component binary.
fn component_interfaces(wasm: &[u8]) -> Result<(Vec<String>, Vec<String>), String> {
    let (mut imports, mut exports) = (Vec::new(), Vec::new());
    let mut depth = 0usize;
    let mut is_component = false;
    for payload in Parser::new(0).parse_all(wasm) {
        match payload.map_err(|e| format!("unreadable: {e}"))? {
            Payload::Version { encoding, .. } if depth == 0 => {
                is_component = encoding == wasmparser::Encoding::Component;
            }
            // Nested modules and components come inline, each closed by its own `End`.
            Payload::ModuleSection { .. } | Payload::ComponentSection { .. } => depth += 1,
            Payload::End(_) if depth > 0 => depth -= 1,
            Payload::End(_) => break,
            Payload::ComponentImportSection(reader) if depth == 0 => {
                for import in reader {
                    let import = import.map_err(|e| format!("unreadable import: {e}"))?;
                    imports.push(import.name.name.to_string());
                }
            }
            Payload::ComponentExportSection(reader) if depth == 0 => {
                for export in reader {
                    let export = export.map_err(|e| format!("unreadable export: {e}"))?;
                    exports.push(export.name.name.to_string());
                }
            }
            _ => {}
        }
    }
    if !is_component {
        return Err("not a component (a core module)".into());
    }
    Ok((imports, exports))
}

/// `spin.toml`, then every other `spin*.toml` at the root.
fn manifests(root: &Path) -> Vec<PathBuf> {
    let mut others: Vec<PathBuf> = std::fs::read_dir(root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            name.starts_with("spin") && name.ends_with(".toml") && name != "spin.toml"
        })
        .collect();
    others.sort();
    let mut all = vec![root.join("spin.toml")];
    all.extend(others);
    all
}

/// (component id, `.wasm` path) for every `[component.x]` of the manifest.
fn component_sources(manifest: &Path) -> Vec<(String, Result<PathBuf, String>)> {
    let text = std::fs::read_to_string(manifest).unwrap();
    let doc: toml::Table =
        toml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", manifest.display()));
    let dir = manifest.parent().unwrap();
    let Some(components) = doc.get("component").and_then(|c| c.as_table()) else {
        return Vec::new();
    };
    components
        .iter()
        .map(|(id, c)| {
            let source = match c.get("source") {
                Some(toml::Value::String(path)) => Ok(dir.join(path)),
                other => Err(format!("`source` is not a local file path: {other:?}")),
            };
            (id.clone(), source)
        })
        .collect()
}

#[test]
fn built_components_need_nothing_spin_3_6_lacks() {
    let spin = spin36();
    // This file's own checkout (not the e2e crate's `workspace_root`, which a target dir shared
    // with another checkout may have compiled with that checkout's path).
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf();
    let mut failures = Vec::new();
    // Each .wasm once, with every manifest component that names it.
    let mut seen: BTreeMap<PathBuf, Vec<String>> = BTreeMap::new();
    for manifest in manifests(&root) {
        tikspin_e2e::harness::build_once(&manifest);
        let mname = manifest.file_name().unwrap().to_string_lossy().into_owned();
        for (id, source) in component_sources(&manifest) {
            let who = format!("{mname}: component `{id}`");
            let wasm = match source {
                Ok(path) => path,
                Err(why) => {
                    failures.push(format!("{who}: {why}"));
                    continue;
                }
            };
            if let Some(named) = seen.get_mut(&wasm) {
                named.push(who);
                continue;
            }
            seen.insert(wasm.clone(), vec![who.clone()]);
            let bytes = match std::fs::read(&wasm) {
                Ok(b) => b,
                Err(e) => {
                    failures.push(format!("{who}: {} unreadable ({e})", wasm.display()));
                    continue;
                }
            };
            let (imports, exports) = match component_interfaces(&bytes) {
                Ok(x) => x,
                Err(why) => {
                    failures.push(format!("{who}: {}: {why}", wasm.display()));
                    continue;
                }
            };
            println!("{who} ({})", wasm.display());
            for import in &imports {
                let verdict = check_import(import, &spin.imports);
                println!(
                    "  import {import}{}",
                    if verdict.is_ok() { "" } else { "  <- MISSING" }
                );
                if let Err(why) = verdict {
                    failures.push(format!("{who} imports `{import}`: {why}"));
                }
            }
            for export in &exports {
                let verdict = check_export(export, &spin.exports);
                println!(
                    "  export {export}{}",
                    if verdict.is_ok() { "" } else { "  <- UNKNOWN" }
                );
                if let Err(why) = verdict {
                    failures.push(format!("{who} exports `{export}`: {why}"));
                }
            }
            if exports.is_empty() {
                failures.push(format!("{who} exports nothing a trigger could call"));
            }
        }
    }
    assert!(
        !seen.is_empty() || !failures.is_empty(),
        "no component found in {}",
        root.display()
    );
    assert!(
        failures.is_empty(),
        "components need what Spin 3.6 (SpinKube's shim) lacks \
         (list and rule: host/tests/spin-3.6-interfaces.txt):\n{}",
        failures.join("\n")
    );
}

#[test]
fn the_list_is_well_formed_and_names_what_the_app_relies_on() {
    let spin = spin36();
    for needed in [
        "wasi:http/types@0.2.6",
        "wasi:http/outgoing-handler@0.2.6",
        "wasi:io/streams@0.2.6",
        "fermyon:spin/key-value@2.0.0",
        "fermyon:spin/sqlite@2.0.0",
        "fermyon:spin/mysql@2.0.0",
        "fermyon:spin/rdbms-types@2.0.0",
        "fermyon:spin/redis@2.0.0",
        "fermyon:spin/variables@2.0.0",
    ] {
        assert!(
            spin.imports.iter().any(|i| i == needed),
            "{needed} not listed"
        );
    }
    assert!(spin
        .exports
        .iter()
        .any(|e| e == "fermyon:spin/inbound-redis"));
}

#[test]
fn the_check_refuses_what_spin_3_6_lacks() {
    let spin = spin36();
    let ok = |name: &str| check_import(name, &spin.imports);
    // Provided: listed, or an older patch on the same track.
    for name in [
        "wasi:http/outgoing-handler@0.2.0",
        "wasi:http/types@0.2.4",
        "wasi:cli/environment@0.2.6",
        "wasi:io/poll@0.2.1+build.7",
        "fermyon:spin/key-value@2.0.0",
        "fermyon:spin/key-value",
        "spin:postgres/postgres@4.0.0",
        "wasi:keyvalue/store@0.2.0-draft2",
        "wasi:config/store@0.2.0-draft-2024-09-27",
    ] {
        assert_eq!(ok(name), Ok(()), "{name}");
    }
    // Not provided, each for its own reason.
    let refused = [
        (
            "spin:postgres/postgres@5.0.0",
            "needs the same semver track",
        ),
        ("wasi:http/types@0.3.0", "needs the same semver track"),
        ("wasi:random/random@0.2.12", "at 0.2.12 or later"),
        (
            "fermyon:spin/key-value@3.0.0",
            "needs the same semver track",
        ),
        (
            "wasi:http/handler@0.3.0-rc-2026-01-06",
            "provides no `wasi:http/handler`",
        ),
        ("wasi:http/types@0.3.0-rc-2026-01-06", "pre-release"),
        ("wasi:keyvalue/store@0.2.0-draft3", "pre-release"),
        (
            "wasi:clocks/timezone@0.2.6",
            "provides no `wasi:clocks/timezone`",
        ),
        ("wasi:otel/tracing@0.2.0-rc.2", "provides no"),
        ("fermyon:spin/mqtt", "unversioned names match exactly"),
        ("tikspin:app/anything@0.1.0", "provides no"),
        ("a-plain-function", "provides no"),
    ];
    for (name, why) in refused {
        let err = ok(name).expect_err(name);
        assert!(err.contains(why), "{name}: {err}");
    }

    let export = |name: &str| check_export(name, &spin.exports);
    assert_eq!(export("wasi:http/incoming-handler@0.2.0"), Ok(()));
    assert_eq!(export("wasi:http/incoming-handler@0.2.9"), Ok(()));
    assert_eq!(export("fermyon:spin/inbound-redis"), Ok(()));
    assert!(export("wasi:http/handler@0.3.0-rc-2026-01-06").is_err());
    assert!(export("wasi:http/incoming-handler@0.3.0").is_err());
    assert!(export("fermyon:spin/inbound-redis@3.0.0").is_err());
}

#[test]
fn reads_the_top_level_names_of_a_component_only() {
    // The nested core module's import and the instance's inner export are not the
    // component's own names.
    let wasm = wat::parse_str(
        r#"(component
            (import "wasi:io/poll@0.2.6" (instance))
            (import "fermyon:spin/variables@2.0.0" (instance))
            (core module $m (import "env" "nested-only" (func)))
            (component $inner
                (import "wasi:http/types@0.3.0" (instance))
            )
            (instance $redis (export "handle-message" (core module $m)))
            (export "fermyon:spin/inbound-redis" (instance $redis))
        )"#,
    )
    .unwrap();
    let (imports, exports) = component_interfaces(&wasm).unwrap();
    assert_eq!(
        imports,
        ["wasi:io/poll@0.2.6", "fermyon:spin/variables@2.0.0"]
    );
    assert_eq!(exports, ["fermyon:spin/inbound-redis"]);

    let module = wat::parse_str(r#"(module (import "wasi:io/poll@0.2.6" "poll" (func)))"#).unwrap();
    assert!(component_interfaces(&module)
        .unwrap_err()
        .contains("not a component"));
}
