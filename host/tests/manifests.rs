//! The repository's manifests: the derived ones are exactly what their base and overlay make
//! (`cargo run --release -p tikspin-manifests` rewrites them), and the merge only ever adds.

use std::path::Path;

use tikspin_manifests::{merge_documents, DERIVED};

fn root() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

fn read(p: &str) -> String {
    std::fs::read_to_string(root().join(p)).unwrap_or_else(|e| panic!("{p}: {e}"))
}

#[test]
fn derived_manifests_match_their_sources() {
    for d in DERIVED {
        let expected = d.render(&read(d.base), &read(d.overlay)).unwrap();
        assert!(
            read(d.output) == expected,
            "{} is out of date with {} + {}: run `cargo run --release -p tikspin-manifests`",
            d.output,
            d.base,
            d.overlay
        );
    }
}

#[test]
fn every_manifest_loads_in_the_host() {
    for path in ["spin.toml"]
        .into_iter()
        .chain(DERIVED.iter().map(|d| d.output))
    {
        tikspin_host::manifest::LoadedManifest::load(&root().join(path))
            .unwrap_or_else(|e| panic!("{path}: {e:#}"));
    }
}

#[test]
fn an_overlay_merges_tables_and_appends_arrays() {
    let out = merge_documents(
        "[variables]\na = { default = \"1\" }\n[component.x]\nhosts = [\"h1\"]\n[[trigger.http]]\nroute = \"/\"\n",
        "[variables]\nb = { default = \"2\" }\n[component.x]\nhosts = [\"h2\"]\n[component.y]\nsource = \"y\"\n[[trigger.http]]\nroute = \"/y\"\n",
    )
    .unwrap();
    let doc: toml::Table = toml::from_str(&out).unwrap();
    assert_eq!(doc["variables"]["a"]["default"].as_str(), Some("1"));
    assert_eq!(doc["variables"]["b"]["default"].as_str(), Some("2"));
    let hosts: Vec<&str> = doc["component"]["x"]["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(hosts, ["h1", "h2"]);
    assert_eq!(doc["component"]["y"]["source"].as_str(), Some("y"));
    assert_eq!(doc["trigger"]["http"].as_array().unwrap().len(), 2);
}

#[test]
fn an_overlay_cannot_change_what_the_base_says() {
    let e = merge_documents("[component.x]\nsource = \"a\"\n", "[component.x]\nsource = \"b\"\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("component.x.source"), "{e}");
    assert!(merge_documents(
        "[variables]\na = { default = \"1\" }\n",
        "[variables]\na = { required = true }\n"
    )
    .is_err());
}
