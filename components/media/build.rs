//! Renders the repository's `openapi.yaml` (the one source of the API description) as the JSON
//! this component serves at `/openapi.json`, so the served document can never drift from it.
//! A YAML that does not parse fails the build.

use std::path::PathBuf;

fn main() {
    let source =
        PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap()).join("../../openapi.yaml");
    println!("cargo:rerun-if-changed={}", source.display());
    let yaml = std::fs::read_to_string(&source)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", source.display()));
    let doc: serde_json::Value = serde_norway::from_str(&yaml)
        .unwrap_or_else(|e| panic!("{} is not valid YAML: {e}", source.display()));
    let json = serde_json::to_string(&doc).expect("JSON rendering");
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("openapi.json");
    std::fs::write(&out, json).unwrap_or_else(|e| panic!("cannot write {}: {e}", out.display()));
}
