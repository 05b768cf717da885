//! deploy/observability/: the Grafana dashboard only queries metrics docs/observability.md
//! tables, and the Collector config's pipelines only name components it defines. Cheap checks
//! with no Grafana or Collector: a renamed metric or a typo in a pipeline fails here.

use serde_json::Value;
use tikspin_e2e::workspace_root;

fn read(path: &str) -> String {
    std::fs::read_to_string(workspace_root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Every `expr` of every panel target.
fn exprs(dashboard: &Value) -> Vec<String> {
    dashboard["panels"]
        .as_array()
        .expect("panels")
        .iter()
        .flat_map(|p| p["targets"].as_array().cloned().unwrap_or_default())
        .map(|t| {
            t["expr"]
                .as_str()
                .expect("a target with an expr")
                .to_string()
        })
        .collect()
}

/// The metric names in a PromQL expression: identifiers directly followed by a selector
/// (`{…}`) or a range (`[…]`). Labels are followed by `=`/`!=`/`=~`, `,` or `)`, functions by `(`.
fn metric_names(expr: &str) -> Vec<String> {
    let bytes = expr.as_bytes();
    let mut names = Vec::new();
    let mut i = 0;
    // Skip quoted label values: they may hold anything.
    let mut in_string = false;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'"' {
            in_string = !in_string;
            i += 1;
            continue;
        }
        if in_string || !(b.is_ascii_alphabetic() || b == b'_' || b == b'$') {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len()
            && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_' || bytes[i] == b'$')
        {
            i += 1;
        }
        let word = &expr[start..i];
        if matches!(bytes.get(i), Some(b'{') | Some(b'[')) && !word.starts_with('$') {
            names.push(word.to_string());
        }
    }
    names
}

#[test]
fn every_metric_of_the_dashboard_is_in_the_observability_table() {
    let dashboard: Value =
        serde_json::from_str(&read("deploy/observability/grafana-dashboard.json")).expect("JSON");
    let doc = read("docs/observability.md");
    let table: String = doc
        .lines()
        .filter(|l| l.starts_with('|'))
        .collect::<Vec<_>>()
        .join("\n");
    let exprs = exprs(&dashboard);
    assert!(exprs.len() >= 6, "{exprs:?}");
    let mut seen = Vec::new();
    for expr in &exprs {
        let names = metric_names(expr);
        assert!(!names.is_empty(), "no metric found in {expr}");
        for name in names {
            let base = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| name.strip_suffix(s))
                .unwrap_or(&name);
            assert!(
                table.contains(&format!("`{name}`"))
                    || table.contains(&format!("`{base}_"))
                    || table.contains(&format!("`{base}`")),
                "{name} (in {expr}) is not in docs/observability.md's tables"
            );
            seen.push(name);
        }
    }
    // The panels the issue asks for, by the metrics they need.
    for needed in [
        "http_server_request_duration_seconds_bucket",
        "http_server_request_duration_seconds_count",
        "tikspin_jobs",
        "tikspin_cover_job_duration_seconds_bucket",
        "tikspin_uploads_total",
    ] {
        assert!(seen.iter().any(|n| n == needed), "no panel uses {needed}");
    }
}

#[test]
fn the_metric_name_scanner_finds_metrics_not_labels() {
    assert_eq!(
        metric_names(
            r#"sum by (le, http_route) (rate(a_b_bucket{x="y{z}[1m]",service_name=~"$service"}[$__rate_interval]))"#
        ),
        ["a_b_bucket"]
    );
    assert_eq!(
        metric_names("tikspin_jobs{state=\"dead\"} / up[5m]"),
        ["tikspin_jobs", "up"]
    );
}

#[test]
fn the_collector_pipelines_name_only_defined_components() {
    let config: serde_json::Value =
        serde_norway::from_str(&read("deploy/observability/otel-collector.yaml")).expect("YAML");
    let defined = |kind: &str, name: &str| config[kind].get(name).is_some();
    let pipelines = config["service"]["pipelines"]
        .as_object()
        .expect("pipelines");
    for signal in ["traces", "metrics"] {
        assert!(pipelines.contains_key(signal), "no {signal} pipeline");
    }
    for (pipeline, p) in pipelines {
        for (field, kinds) in [
            ("receivers", &["receivers", "connectors"][..]),
            ("processors", &["processors"][..]),
            ("exporters", &["exporters", "connectors"][..]),
        ] {
            for name in p[field].as_array().cloned().unwrap_or_default() {
                let name = name.as_str().unwrap();
                assert!(
                    kinds.iter().any(|k| defined(k, name)),
                    "{pipeline}: {field} {name} is not defined"
                );
            }
        }
    }
    // Traces reach Jaeger and feed the span metrics; metrics reach Prometheus.
    let traces = pipelines["traces"]["exporters"].to_string();
    assert!(
        traces.contains("otlp/jaeger") && traces.contains("spanmetrics"),
        "{traces}"
    );
    assert!(pipelines["metrics"]["exporters"]
        .to_string()
        .contains("prometheus"));
}
