//! Issue 20, item 5 (the CI half): every manifest in `deploy/spinkube/` is valid against the
//! schema the cluster would hold it to, so a misspelt field fails here and not at deploy time.
//!
//! - `SpinApp` (core.spinkube.dev/v1alpha1): the spin-operator v0.6.1 CRD's
//!   `openAPIV3Schema` (`deploy/spinkube/schemas/core.spinkube.dev_spinapps.yaml`), made strict
//!   the way the API server's strict field validation is (`kubectl apply` defaults to
//!   `--validate=strict`): an object that lists its properties and does not preserve unknown
//!   fields refuses any other field.
//! - ConfigMap, Secret, batch/v1 CronJob: the Kubernetes v1.37.0 strict JSON schemas vendored by
//!   `deploy/spinkube/schemas/vendor.py` (from PyPI `kubernetes-validate` 1.37.0).
//! - The Kustomization lists files that exist, and every manifest but the Secret template.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

fn dir() -> PathBuf {
    tikspin_e2e::workspace_root().join("deploy/spinkube")
}

fn yaml_documents(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap();
    serde_norway::Deserializer::from_str(&text)
        .map(|doc| {
            serde::Deserialize::deserialize(doc)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        })
        .filter(|v: &Value| !v.is_null())
        .collect()
}

/// Adds `additionalProperties: false` to every object schema that lists properties, allows no
/// other (no `additionalProperties`) and does not preserve unknown fields.
fn strict(node: &mut Value) {
    match node {
        Value::Object(map) => {
            if map.contains_key("properties")
                && !map.contains_key("additionalProperties")
                && map.get("x-kubernetes-preserve-unknown-fields") != Some(&json!(true))
            {
                map.insert("additionalProperties".into(), json!(false));
            }
            map.values_mut().for_each(strict);
        }
        Value::Array(items) => items.iter_mut().for_each(strict),
        _ => {}
    }
}

fn spinapp_schema() -> Value {
    let crd = &yaml_documents(&dir().join("schemas/core.spinkube.dev_spinapps.yaml"))[0];
    assert_eq!(crd["spec"]["group"], "core.spinkube.dev");
    let version = crd["spec"]["versions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "v1alpha1")
        .expect("the CRD serves v1alpha1");
    let mut schema = version["schema"]["openAPIV3Schema"].clone();
    strict(&mut schema);
    schema
}

fn kubernetes_schema(file: &str) -> Value {
    let text = std::fs::read_to_string(dir().join("schemas").join(file)).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// The schema for a manifest's apiVersion and kind; a kind without one fails the test, so a
/// new manifest comes with its schema.
fn schema_for(doc: &Value) -> Value {
    match (doc["apiVersion"].as_str(), doc["kind"].as_str()) {
        (Some("core.spinkube.dev/v1alpha1"), Some("SpinApp")) => spinapp_schema(),
        (Some("v1"), Some("ConfigMap")) => kubernetes_schema("configmap-v1.json"),
        (Some("v1"), Some("Secret")) => kubernetes_schema("secret-v1.json"),
        (Some("batch/v1"), Some("CronJob")) => kubernetes_schema("cronjob-batch-v1.json"),
        other => panic!("no schema for {other:?}: vendor one in deploy/spinkube/schemas"),
    }
}

fn errors(schema: &Value, doc: &Value) -> Vec<String> {
    let validator = jsonschema::draft202012::options()
        .build(schema)
        .unwrap_or_else(|e| panic!("schema does not compile: {e}"));
    validator
        .iter_errors(doc)
        .map(|e| format!("at {}: {e}", e.instance_path()))
        .collect()
}

fn manifests() -> Vec<(PathBuf, Value)> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    files
        .into_iter()
        .flat_map(|p| yaml_documents(&p).into_iter().map(move |d| (p.clone(), d)))
        .collect()
}

#[test]
fn every_spinkube_manifest_matches_its_schema() {
    let mut checked = Vec::new();
    for (path, doc) in manifests() {
        if doc["kind"] == "Kustomization" {
            continue;
        }
        let errs = errors(&schema_for(&doc), &doc);
        assert!(errs.is_empty(), "{}:\n{}", path.display(), errs.join("\n"));
        checked.push(doc["kind"].as_str().unwrap().to_owned());
    }
    checked.sort();
    assert_eq!(
        checked,
        ["ConfigMap", "CronJob", "Secret", "SpinApp", "SpinApp"],
        "the manifests this test knows"
    );
}

#[test]
fn the_kustomization_lists_every_manifest_but_the_secret_template() {
    let kustomization = &yaml_documents(&dir().join("kustomization.yaml"))[0];
    let mut listed: Vec<&str> = kustomization["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap())
        .collect();
    listed.sort_unstable();
    for file in &listed {
        assert!(dir().join(file).exists(), "{file} is listed but missing");
    }
    let mut expected: Vec<String> = manifests()
        .into_iter()
        .filter(|(_, d)| d["kind"] != "Kustomization" && d["kind"] != "Secret")
        .map(|(p, _)| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    expected.sort();
    expected.dedup();
    assert_eq!(listed, expected);
}

/// The schemas catch typos: a misspelt field at each level the manifests use fails.
#[test]
fn a_misspelt_field_fails_validation() {
    let docs = manifests();
    let find = |kind: &str| {
        docs.iter()
            .find(|(_, d)| d["kind"] == kind)
            .map(|(_, d)| d.clone())
            .unwrap()
    };
    let typos: Vec<(&str, Box<dyn Fn(&mut Value)>)> = vec![
        ("SpinApp", Box::new(|d| d["spec"]["replica"] = json!(3))),
        ("SpinApp", Box::new(|d| {
            d["spec"]["checks"]["readiness"]["httpGett"] = json!({"path": "/"})
        })),
        ("SpinApp", Box::new(|d| d["spec"]["replicas"] = json!("three"))),
        ("ConfigMap", Box::new(|d| d["dat"] = json!({"a": "b"}))),
        ("ConfigMap", Box::new(|d| d["metadata"]["nmae"] = json!("x"))),
        ("Secret", Box::new(|d| d["stringdata"] = json!({"a": "b"}))),
        ("CronJob", Box::new(|d| d["spec"]["schedul"] = json!("* * * * *"))),
        ("CronJob", Box::new(|d| {
            d["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["imagee"] =
                json!("x")
        })),
    ];
    for (kind, typo) in typos {
        let mut doc = find(kind);
        assert!(errors(&schema_for(&doc), &doc).is_empty());
        typo(&mut doc);
        assert!(
            !errors(&schema_for(&doc), &doc).is_empty(),
            "{kind}: a typo passed validation: {doc}"
        );
    }
}
