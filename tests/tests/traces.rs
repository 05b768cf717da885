//! End to end: the host's OTLP traces (issue 18), received and decoded by the harness's own
//! receiver ([`OtlpReceiver`]). The span names, kinds and attributes expected here are the ones
//! Spin 4's source gives the same calls; each constant cites the file.
//!
//! - A feed request: the server span (OTel HTTP semantic conventions, the matched manifest route),
//!   `execute_wasm_component video` under it, and the component's SQLite and variable calls
//!   under that; the caller's `traceparent` continued; no token in any attribute.
//! - A publish (embedded layout): the upload's key-value writes and the cover job's statements
//!   (run inline) in the same trace.
//! - Outbound HTTP (S3 mode, the endpoint pointed at the receiver): a client span per request,
//!   and the request carries a `traceparent` naming that span.
//! - A malformed `traceparent` starts a new trace; a collector that is down costs no request.
//! - The gRPC protocol (`OTEL_EXPORTER_OTLP_PROTOCOL=grpc`) delivers the same spans.

use std::time::Duration;

use tikspin_e2e::api::{enc, envelope, expect_ok, publish_form, register, User};
use tikspin_e2e::fixtures::{fixture_bytes, BEAR};
use tikspin_e2e::harness::{HostConfig, TestHost, TEST_JWT_SECRET};
use tikspin_e2e::otlp::{OtlpReceiver, SpanRecord};

/// crates/trigger-http/src/instrument.rs (`http_span!`, `finalize_http_span`): a server span
/// named `METHOD route` once a route matched.
const SERVER: &str = "SPAN_KIND_SERVER";
const CLIENT: &str = "SPAN_KIND_CLIENT";
/// crates/trigger-http/src/wasi.rs (`#[instrument(name = "spin_trigger_http.execute_wasm",
/// fields(otel.name = format!("execute_wasm_component {}", …)))]`).
const EXECUTE_WASM: &str = "execute_wasm_component";
/// crates/factor-sqlite/src/host.rs: `spin_sqlite.open`; `spin_sqlite.execute` is renamed to
/// its statement (`otel.name = query`), with the statement also in `query`.
const SQLITE_OPEN: &str = "spin_sqlite.open";
/// crates/factor-variables/src/host.rs.
const VARIABLES_GET: &str = "spin_variables.get";
/// crates/factor-key-value/src/host.rs: `spin_key_value.*` (and `wasi_key_value.*`).
const KV_PREFIXES: [&str; 3] = ["spin_key_value.", "wasi_key_value.", "wasi_key_value_cas."];

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER_SPAN: &str = "00f067aa0ba902b7";
const WAIT: Duration = Duration::from_secs(20);

fn traced_host(
    receiver: &OtlpReceiver,
    extra_env: &[(&str, &str)],
    variables: &[(&str, &str)],
) -> TestHost {
    let mut env = vec![
        (
            "OTEL_EXPORTER_OTLP_ENDPOINT".to_string(),
            receiver.endpoint(),
        ),
        // Export every 100 ms rather than the SDK's 5 s, so the tests do not wait.
        ("OTEL_BSP_SCHEDULE_DELAY".to_string(), "100".to_string()),
    ];
    env.extend(
        extra_env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string())),
    );
    TestHost::start(HostConfig {
        env,
        variables: variables
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..HostConfig::default()
    })
}

fn traceparent(trace_id: &str) -> String {
    format!("00-{trace_id}-{CALLER_SPAN}-01")
}

fn one<'a>(spans: &'a [SpanRecord], what: &str, f: impl Fn(&SpanRecord) -> bool) -> &'a SpanRecord {
    let found: Vec<&SpanRecord> = spans.iter().filter(|s| f(s)).collect();
    assert_eq!(found.len(), 1, "expected one {what} in {spans:#?}");
    found[0]
}

fn children<'a>(spans: &'a [SpanRecord], parent: &SpanRecord) -> Vec<&'a SpanRecord> {
    spans
        .iter()
        .filter(|s| s.parent_span_id == parent.span_id)
        .collect()
}

/// The server span and its `execute_wasm_component` child, checked against Spin's shape.
fn server_and_exec<'a>(
    spans: &'a [SpanRecord],
    method: &str,
    route: &str,
    path: &str,
    component: &str,
) -> (&'a SpanRecord, &'a SpanRecord) {
    let server = one(spans, "server span", |s| s.kind == SERVER);
    assert_eq!(server.name, format!("{method} {route}"));
    assert_eq!(server.service_name, "spin");
    assert_eq!(server.attr("http.request.method"), Some(method));
    assert_eq!(server.attr("http.route"), Some(route));
    assert_eq!(server.attr("http.response.status_code"), Some("200"));
    assert_eq!(server.attr("url.path"), Some(path));
    assert_eq!(server.attr("network.protocol.name"), Some("http"));
    assert_eq!(server.attr("network.peer.address"), Some("127.0.0.1"));
    assert!(server.attr("network.peer.port").is_some());
    let exec = one(spans, "execute_wasm span", |s| {
        s.name == format!("{EXECUTE_WASM} {component}")
    });
    assert_eq!(exec.parent_span_id, server.span_id);
    (server, exec)
}

/// No attribute anywhere holds one of `secrets`.
fn assert_no_secrets(spans: &[SpanRecord], secrets: &[&str]) {
    for s in spans {
        for (k, v) in &s.attributes {
            for secret in secrets {
                assert!(
                    !v.contains(secret) && !s.name.contains(secret),
                    "span {:?} attribute {k} = {v:?} holds a secret",
                    s.name
                );
            }
        }
    }
}

#[test]
fn a_feed_request_is_a_span_tree_shaped_like_spins_and_continues_the_callers_trace() {
    let receiver = OtlpReceiver::start();
    let host = traced_host(&receiver, &[], &[]);
    let user = register(&host.client, "traces");
    let path = format!("/douyin/feed/?token={}", enc(&user.token));
    let r = host
        .client
        .get_with(&path, &[("traceparent", &traceparent(TRACE_ID))]);
    expect_ok(&envelope(r));

    let spans = receiver
        .wait_for_trace(TRACE_ID, WAIT, |spans| {
            spans.iter().any(|s| s.kind == SERVER) && spans.len() > 3
        })
        .unwrap_or_else(|| panic!("no feed trace arrived; host log:\n{}", host.log()));
    let (server, exec) =
        server_and_exec(&spans, "GET", "/douyin/feed/...", "/douyin/feed/", "video");
    // The caller's span is the parent: the trace continues.
    assert_eq!(server.parent_span_id, CALLER_SPAN);
    // The token in the query is redacted (Spin records `url.query` as it came).
    assert_eq!(server.attr("url.query"), Some("token=REDACTED"));

    let calls = children(&spans, exec);
    let open = calls
        .iter()
        .find(|s| s.name == SQLITE_OPEN)
        .unwrap_or_else(|| panic!("no {SQLITE_OPEN} under {exec:#?}: {calls:#?}"));
    assert_eq!(open.kind, CLIENT);
    assert_eq!(open.attr("db.system.name"), Some("sqlite"));
    assert_eq!(open.attr("database"), Some("default"));
    let statements: Vec<&&SpanRecord> = calls
        .iter()
        .filter(|s| s.attr("db.system.name") == Some("sqlite") && s.name != SQLITE_OPEN)
        .collect();
    assert!(!statements.is_empty(), "no statements: {calls:#?}");
    for s in &statements {
        assert_eq!(s.kind, CLIENT);
        assert_eq!(s.attr("query"), Some(s.name.as_str()), "{s:#?}");
        let backend = s.attr("sqlite.backend").unwrap_or_default();
        assert!(
            backend.starts_with('"') && backend.ends_with("sqlite_db.db\""),
            "{s:#?}"
        );
        // The statement and nothing else: no parameter values.
        let mut keys: Vec<&str> = s.attributes.keys().map(String::as_str).collect();
        keys.retain(|k| !["busy_ns", "idle_ns", "target"].contains(k) && !k.starts_with("code."));
        assert_eq!(
            keys,
            ["db.system.name", "query", "sqlite.backend"],
            "{s:#?}"
        );
    }
    assert!(
        statements.iter().any(|s| s.name.contains("FROM videos")),
        "{statements:#?}"
    );
    let variable = calls
        .iter()
        .find(|s| s.name == VARIABLES_GET)
        .unwrap_or_else(|| panic!("no {VARIABLES_GET}: {calls:#?}"));
    assert_eq!(variable.kind, CLIENT);
    assert!(variable.attr("key").is_some());

    assert_no_secrets(
        &receiver.spans(),
        &[&user.token, TEST_JWT_SECRET, "secret123"],
    );
}

#[test]
fn a_publish_traces_the_upload_its_storage_and_the_cover_job() {
    let receiver = OtlpReceiver::start();
    let host = traced_host(&receiver, &[], &[]);
    let user = register(&host.client, "traces-pub");
    let trace = "5bf92f3577b34da6a3ce929d0e0e4737";
    publish(&host, &user, trace);

    let spans = receiver
        .wait_for_trace(trace, WAIT, |spans| {
            spans.iter().any(|s| s.kind == SERVER) && spans.iter().any(|s| s.name.contains("jobs"))
        })
        .unwrap_or_else(|| panic!("no publish trace; host log:\n{}", host.log()));
    let (_, exec) = server_and_exec(
        &spans,
        "POST",
        "/douyin/publish/...",
        "/douyin/publish/action/",
        "video",
    );
    let calls = children(&spans, exec);
    // The upload's chunks go to the key-value store.
    let kv_writes: Vec<_> = calls
        .iter()
        .filter(|s| KV_PREFIXES.iter().any(|p| s.name.starts_with(p)) && s.name.ends_with(".set"))
        .collect();
    assert!(!kv_writes.is_empty(), "no key-value writes: {calls:#?}");
    assert!(kv_writes.iter().all(|s| s.kind == CLIENT));
    // The cover job (inline in this layout): its claim and its finish are statements on `jobs`.
    let job_statements = calls
        .iter()
        .filter(|s| s.attr("db.system.name") == Some("sqlite") && s.name.contains("jobs"))
        .count();
    assert!(job_statements >= 2, "{calls:#?}");
    assert_no_secrets(&receiver.spans(), &[&user.token, TEST_JWT_SECRET]);
}

fn publish(host: &TestHost, user: &User, trace: &str) -> serde_json::Value {
    let (ct, body) = publish_form(
        "traceboundary",
        &user.token,
        "traced",
        "v.mp4",
        &fixture_bytes(BEAR.name),
    );
    let r = host.client.post_with(
        &format!("/douyin/publish/action/?token={}", enc(&user.token)),
        &[("content-type", &ct), ("traceparent", &traceparent(trace))],
        &body,
    );
    envelope(r)
}

#[test]
fn outbound_http_is_a_client_span_whose_context_the_request_carries() {
    let receiver = OtlpReceiver::start();
    let s3_secret = "traces-s3-secret-9f8e7d";
    let endpoint = receiver.endpoint();
    let host = traced_host(
        &receiver,
        &[],
        &[
            ("s3_endpoint", &endpoint),
            ("s3_bucket", "traced"),
            ("s3_access_key", "traces-access"),
            ("s3_secret_key", s3_secret),
        ],
    );
    let user = register(&host.client, "traces-s3");
    let trace = "6bf92f3577b34da6a3ce929d0e0e4738";
    // The "S3 server" is the receiver, which answers 502: the publish fails, after its requests.
    let _ = publish(&host, &user, trace);

    let sent = receiver.other_requests();
    assert!(!sent.is_empty(), "the app sent no S3 request");
    let spans = receiver
        .wait_for_trace(trace, WAIT, |spans| {
            spans.iter().filter(|s| s.name == sent[0].method).count() >= 1
        })
        .unwrap_or_else(|| panic!("no outbound span; host log:\n{}", host.log()));
    let (_, exec) = server_and_exec_any_status(&spans);
    for request in &sent {
        let tp = request
            .headers
            .iter()
            .find(|(k, _)| k == "traceparent")
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("no traceparent on {request:?}"));
        let parts: Vec<&str> = tp.split('-').collect();
        assert_eq!(parts.len(), 4, "{tp}");
        assert_eq!(
            parts[1], trace,
            "the S3 request continues the publish's trace"
        );
        let span = one(&spans, "outbound span", |s| s.span_id == parts[2]);
        // crates/factor-outbound-http/src/wasi.rs (`spin_outbound_http.send_request`, named by
        // its method).
        assert_eq!(span.name, request.method);
        assert_eq!(span.kind, CLIENT);
        assert_eq!(span.parent_span_id, exec.span_id);
        assert_eq!(
            span.attr("http.request.method"),
            Some(request.method.as_str())
        );
        assert!(
            span.attr("url.full")
                .unwrap_or_default()
                .starts_with(&endpoint),
            "{span:#?}"
        );
        assert_eq!(span.attr("server.address"), Some("127.0.0.1"));
        assert_eq!(
            span.attr("server.port"),
            Some(receiver.addr.port().to_string().as_str())
        );
        assert_eq!(span.attr("http.response.status_code"), Some("502"));
    }
    assert_no_secrets(
        &receiver.spans(),
        &[&user.token, s3_secret, TEST_JWT_SECRET],
    );
}

fn server_and_exec_any_status(spans: &[SpanRecord]) -> (&SpanRecord, &SpanRecord) {
    let server = one(spans, "server span", |s| s.kind == SERVER);
    let exec = one(spans, "execute_wasm span", |s| {
        s.name.starts_with(EXECUTE_WASM)
    });
    assert_eq!(exec.parent_span_id, server.span_id);
    (server, exec)
}

#[test]
fn a_malformed_traceparent_is_ignored_and_a_new_trace_starts() {
    let receiver = OtlpReceiver::start();
    let host = traced_host(&receiver, &[], &[]);
    for (i, bad) in [
        "garbage",
        "00-xyz-00f067aa0ba902b7-01",
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
    ]
    .iter()
    .enumerate()
    {
        let marker = format!("latest_time={}", 1_700_000_000_000i64 + i as i64);
        let r = host
            .client
            .get_with(&format!("/douyin/feed/?{marker}"), &[("traceparent", bad)]);
        expect_ok(&envelope(r));
        let mut found = None;
        assert!(
            tikspin_e2e::wait_until(WAIT, || {
                found = receiver
                    .spans()
                    .into_iter()
                    .find(|s| s.kind == SERVER && s.attr("url.query") == Some(marker.as_str()));
                found.is_some()
            }),
            "no server span for {bad:?}"
        );
        let server = found.unwrap();
        assert_eq!(server.parent_span_id, "", "{bad:?} became a parent");
        assert_eq!(server.trace_id.len(), 32);
        assert_ne!(server.trace_id, "0".repeat(32));
    }
}

#[test]
fn a_collector_that_is_down_costs_no_request_and_one_warning() {
    let port = tikspin_e2e::free_port();
    let host = TestHost::start(HostConfig {
        env: vec![
            (
                "OTEL_EXPORTER_OTLP_ENDPOINT".into(),
                format!("http://127.0.0.1:{port}"),
            ),
            ("OTEL_BSP_SCHEDULE_DELAY".into(), "50".into()),
        ],
        ..HostConfig::default()
    });
    let user = register(&host.client, "traces-down");
    for _ in 0..20 {
        let started = std::time::Instant::now();
        let r = host
            .client
            .get(&format!("/douyin/feed/?token={}", enc(&user.token)));
        expect_ok(&envelope(r));
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "a request waited on the collector"
        );
    }
    std::thread::sleep(Duration::from_millis(500));
    let log = host.log();
    assert_eq!(log.matches("is not reachable").count(), 1, "{log}");
}

#[test]
fn grpc_delivers_the_same_spans() {
    let receiver = OtlpReceiver::start();
    let host = traced_host(&receiver, &[("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")], &[]);
    let trace = "7bf92f3577b34da6a3ce929d0e0e4739";
    let r = host
        .client
        .get_with("/douyin/feed/", &[("traceparent", &traceparent(trace))]);
    expect_ok(&envelope(r));
    let spans = receiver
        .wait_for_trace(trace, WAIT, |spans| spans.iter().any(|s| s.kind == SERVER))
        .unwrap_or_else(|| panic!("nothing came over gRPC; host log:\n{}", host.log()));
    assert!(spans.iter().all(|s| s.protocol == "grpc"));
    server_and_exec(&spans, "GET", "/douyin/feed/...", "/douyin/feed/", "video");
}

/// crates/trigger-redis/src/lib.rs (`spin_trigger_redis.handle_message`, renamed
/// `<channel> receive`, a consumer span with `messaging.*`).
const REDIS_MESSAGE_KIND: &str = "SPAN_KIND_CONSUMER";

#[test]
fn the_workers_span_for_a_cover_job_links_to_the_publishing_request() {
    use tikspin_e2e::harness::manifest_for;
    use tikspin_e2e::servers::RedisServer;
    let receiver = OtlpReceiver::start();
    let redis = RedisServer::start().expect("redis-server");
    let channel = "traced-jobs";
    let variables = [
        ("redis_address", redis.url()),
        ("jobs_channel", channel.to_string()),
    ];
    let variables: Vec<(String, String)> = variables
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    let host = TestHost::start(HostConfig {
        manifest: manifest_for(&variables),
        variables,
        env: vec![
            ("OTEL_EXPORTER_OTLP_ENDPOINT".into(), receiver.endpoint()),
            ("OTEL_BSP_SCHEDULE_DELAY".into(), "100".into()),
        ],
        ..HostConfig::default()
    });
    let user = register(&host.client, "traces-job");
    let trace = "8bf92f3577b34da6a3ce929d0e0e473a";
    expect_ok(&publish(&host, &user, trace));

    // The publish's own trace shows the job going out: the app's `PUBLISH` through
    // `spin_outbound_redis.execute` (crates/factor-outbound-redis/src/host.rs, named by its command).
    let spans = receiver
        .wait_for_trace(trace, WAIT, |spans| {
            spans.iter().any(|s| s.name == "PUBLISH")
        })
        .unwrap_or_else(|| panic!("no PUBLISH span; host log:\n{}", host.log()));
    let publish_span = one(&spans, "PUBLISH span", |s| s.name == "PUBLISH");
    assert_eq!(publish_span.kind, CLIENT);
    assert_eq!(publish_span.attr("db.system.name"), Some("redis"));
    assert_eq!(publish_span.attr("command"), Some("PUBLISH"));
    assert!(
        publish_span.attr("arguments").is_none(),
        "values are not recorded"
    );

    // The worker's message: a trace of its own, linked to the caller of the publish.
    let mut worker = None;
    assert!(
        tikspin_e2e::wait_until(WAIT, || {
            worker = receiver
                .spans()
                .into_iter()
                .find(|s| s.kind == REDIS_MESSAGE_KIND && s.name == format!("{channel} receive"));
            worker.is_some()
        }),
        "no worker span; host log:\n{}",
        host.log()
    );
    let worker = worker.unwrap();
    assert_eq!(worker.attr("messaging.system"), Some("redis"));
    assert_eq!(worker.attr("messaging.operation"), Some("receive"));
    assert_eq!(
        worker.links,
        vec![(trace.to_string(), CALLER_SPAN.to_string())]
    );
    // Its own host calls (the cover job's statements) are under it.
    let worker_trace = worker.trace_id.clone();
    let calls = receiver
        .wait_for_trace(&worker_trace, WAIT, |spans| {
            spans
                .iter()
                .any(|s| s.name.contains("jobs") && s.attr("db.system.name") == Some("sqlite"))
        })
        .unwrap_or_else(|| panic!("the cover job's statements are not in the worker's trace"));
    assert!(calls
        .iter()
        .filter(|s| s.span_id != worker.span_id)
        .all(|s| !s.parent_span_id.is_empty()));
}
