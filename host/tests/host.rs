//! The host running the test app's real `.wasm` components (`host/testapp/`), over HTTP.

use std::path::PathBuf;
use std::time::Duration;

use tikspin_e2e::harness::{HostConfig, TestHost};
use tikspin_e2e::servers::{MariaDb, RedisServer};
use tikspin_e2e::wait_until;

fn manifest() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testapp/spin.toml")
}

/// A copy of the test app's manifest, with `edit` applied and paths made absolute, in `dir`.
fn manifest_variant(dir: &std::path::Path, edit: impl FnOnce(String) -> String) -> PathBuf {
    let testapp = manifest().parent().unwrap().to_path_buf();
    let text = edit(std::fs::read_to_string(manifest()).unwrap())
        .replace(
            "../../target",
            &format!("{}/target", tikspin_e2e::workspace_root().display()),
        )
        .replace("workdir = \"../", &format!("workdir = \"{}/../", testapp.display()))
        .replace("workdir = \".\"", &format!("workdir = \"{}\"", testapp.display()));
    let m = dir.join("spin.toml");
    std::fs::write(&m, text).unwrap();
    m
}

/// The test app with its Redis trigger (`testapp/redis.overlay.toml` merged in).
fn redis_manifest(dir: &std::path::Path) -> PathBuf {
    let overlay = std::fs::read_to_string(manifest().with_file_name("redis.overlay.toml")).unwrap();
    manifest_variant(dir, |base| {
        tikspin_manifests::merge_documents(&base, &overlay).unwrap()
    })
}

/// `tikspin up` on `manifest` (a variant of the test app's, whose components are built) with
/// `args`, expected to stop: its stderr.
fn failed_start(manifest: &std::path::Path, args: &[&str]) -> String {
    tikspin_e2e::harness::build_once(&self::manifest());
    let state = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(tikspin_e2e::harness::host_binary())
        .args(["up", "--listen", "127.0.0.1:0", "--from"])
        .arg(manifest)
        .arg("--state-dir")
        .arg(state.path())
        .args(args)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "the start should fail: {err}");
    assert!(!err.contains("panicked"), "{err}");
    err
}

/// The test app, its required secret set unless `config` sets it or asks for a generated one.
fn host(mut config: HostConfig) -> TestHost {
    if !config.variables.iter().any(|(k, _)| k == "secret_token")
        && !config.extra_args.iter().any(|a| a == "--generate-missing-secrets")
    {
        config.variables.push(var("secret_token", "test-token"));
    }
    TestHost::start(HostConfig {
        manifest: Some(manifest()),
        ..config
    })
}

fn var(k: &str, v: &str) -> (String, String) {
    (k.to_string(), v.to_string())
}

fn header_lines(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|l| l.split_once(": "))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn header<'a>(lines: &'a [(String, String)], name: &str) -> Option<&'a str> {
    lines
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

#[test]
fn health_routes_and_spin_headers() {
    let h = host(HostConfig::default());
    assert_eq!(h.client.get("/.well-known/spin/health").status, 200);

    let r = h
        .client
        .get_with("/probe/headers?x=1", &[("spin-client-addr", "6.6.6.6:1")]);
    assert_eq!(r.status, 200, "{}", r.text());
    let lines = header_lines(&r.text());
    assert_eq!(header(&lines, "spin-path-info"), Some("/headers"));
    assert_eq!(header(&lines, "spin-matched-route"), Some("/probe/..."));
    assert_eq!(
        header(&lines, "spin-raw-component-route"),
        Some("/probe/...")
    );
    assert_eq!(header(&lines, "spin-component-route"), Some("/probe"));
    assert_eq!(header(&lines, "spin-base-path"), Some("/"));
    let full = header(&lines, "spin-full-url").unwrap();
    assert!(
        full.starts_with("http://127.0.0.1:") && full.ends_with("/probe/headers?x=1"),
        "{full}"
    );
    // Spin keeps a client-sent `spin-*` header and appends its own value after it
    // (crates/trigger-http/src/headers.rs, `prepare_request_headers`; wasi.rs, `prepare_request`
    // extends the cleared map, and `HeaderMap::extend` appends). The test app reads headers
    // through the SDK's `Request`, a map where the last value wins: the runtime's. (The app's
    // adapter reads the last value too; tests/tests/accounts.rs checks a forged one is ignored.)
    let client = header(&lines, "spin-client-addr").unwrap();
    assert!(
        client.starts_with("127.0.0.1:"),
        "the runtime's spin-client-addr must come last: {client}"
    );
    // An exact route beats the wildcard that also matches it.
    let lines = header_lines(&h.client.get("/exact").text());
    assert_eq!(header(&lines, "spin-matched-route"), Some("/exact"));
    assert_eq!(header(&lines, "spin-path-info"), Some(""));

    let lines = header_lines(&h.client.get("/users/42/headers").text());
    assert_eq!(header(&lines, "spin-path-match-id"), Some("42"));
    assert_eq!(header(&lines, "spin-path-info"), Some("/headers"));

    assert_eq!(h.client.get("/nothing/here").status, 404);
}

#[test]
fn bodies_stream_both_ways() {
    let h = host(HostConfig::default());
    let body: Vec<u8> = (0..(5 << 20)).map(|i| (i % 251) as u8).collect();
    let r = h
        .client
        .post("/probe/echo-body", "application/octet-stream", &body);
    assert_eq!(r.status, 200);
    assert_eq!(r.body.len(), body.len());
    assert!(r.body == body, "the echoed body differs");
}

#[test]
fn key_value_persists_across_requests_and_restarts() {
    let state = tempfile::tempdir().unwrap();
    let config = || HostConfig {
        state_dir: Some(state.path().to_path_buf()),
        ..Default::default()
    };
    {
        let h = host(config());
        assert_eq!(h.client.get("/probe/kv/get?key=k1").status, 404);
        assert_eq!(
            h.client.post_empty("/probe/kv/set?key=k1&value=v1").status,
            200
        );
        assert_eq!(h.client.get("/probe/kv/get?key=k1").text(), "v1");
    }
    let h = host(config());
    assert_eq!(h.client.get("/probe/kv/get?key=k1").text(), "v1");
}

#[test]
fn sqlite_transaction_spans_calls_and_rolls_back_on_drop() {
    let h = host(HostConfig::default());
    let r = h.client.get("/probe/sqlite/commit");
    assert_eq!(r.text(), "before=0 inside=2 after=2");
    let r = h.client.get("/probe/sqlite/rollback");
    assert_eq!(
        r.text(),
        "before=2 inside=4 after=2",
        "a dropped handle must roll back"
    );
}

#[test]
fn variables_resolve_from_defaults_cli_and_env() {
    let h = host(HostConfig {
        extra_args: vec!["--generate-missing-secrets".into()],
        ..Default::default()
    });
    assert_eq!(
        h.client.get("/probe/var?name=greeting").text(),
        "hello, world"
    );
    let secret = h.client.get("/probe/var?name=token").text();
    assert_eq!(
        secret.len(),
        64,
        "a required secret gets a generated value: {secret}"
    );
    assert!(
        h.log()
            .contains("secret variable \"secret_token\" had no value"),
        "{}",
        h.log()
    );
    assert_eq!(h.client.get("/probe/var?name=undeclared").status, 404);

    let h = host(HostConfig {
        variables: vec![var("greeting", "hi")],
        ..Default::default()
    });
    assert_eq!(h.client.get("/probe/var?name=greeting").text(), "hi, world");

    let h = host(HostConfig {
        env: vec![var("SPIN_VARIABLE_GREETING", "from env")],
        ..Default::default()
    });
    assert_eq!(
        h.client.get("/probe/var?name=greeting").text(),
        "from env, world"
    );
}

#[test]
fn a_required_variable_without_value_stops_the_start() {
    // Spin 4.0.2 with no jwt_secret: `Error: provider error: no provider resolved required
    // variable(s): [Key("jwt_secret")]`. Secrets included, unless the start asks otherwise.
    let dir = tempfile::tempdir().unwrap();
    let m = manifest_variant(dir.path(), |t| {
        t.replace(
            "greeting = { default = \"hello\" }",
            "greeting = { required = true }",
        )
    });
    let err = failed_start(&m, &[]);
    assert!(
        err.contains(
            "provider error: no provider resolved required variable(s): [Key(\"greeting\"), Key(\"secret_token\")]"
        ),
        "{err}"
    );
    let err = failed_start(&m, &["--generate-missing-secrets"]);
    assert!(
        err.contains("no provider resolved required variable(s): [Key(\"greeting\")]"),
        "{err}"
    );
}

#[test]
fn malformed_manifest_and_runtime_config_give_one_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let bad_manifest = dir.path().join("spin.toml");
    std::fs::write(
        &bad_manifest,
        "spin_manifest_version = 2\n[application]\nname = \"x\"\nbogus_key = 1\n",
    )
    .unwrap();
    let bad_rc = dir.path().join("rc.toml");
    std::fs::write(&bad_rc, "[key_value_store.default]\ntype = \"dynamo\"\n").unwrap();
    tikspin_e2e::harness::build_once(&manifest());
    let run = |args: &[&std::ffi::OsStr]| {
        let out = std::process::Command::new(tikspin_e2e::harness::host_binary())
            .args(["up", "--listen", "127.0.0.1:0", "--state-dir"])
            .arg(dir.path().join("state"))
            .args(args)
            .output()
            .unwrap();
        assert!(!out.status.success());
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let err = run(&["--from".as_ref(), bad_manifest.as_os_str()]);
    assert!(
        err.contains("spin.toml") && err.contains("bogus_key"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    let good = manifest();
    let err = run(&[
        "--from".as_ref(),
        good.as_os_str(),
        "--runtime-config-file".as_ref(),
        bad_rc.as_os_str(),
    ]);
    assert!(err.contains("rc.toml") && err.contains("dynamo"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

/// Spin: crates/trigger-redis/src/lib.rs (`Client::open(address)?`, "Redis trigger failed to
/// connect to …"): every declared Redis trigger is started, and one that cannot be fails the
/// start — an empty address and an unreachable server alike.
#[test]
fn a_redis_trigger_without_a_usable_server_fails_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let m = redis_manifest(dir.path());
    tikspin_e2e::harness::build_once(&m); // the listener component
    let err = failed_start(
        &m,
        &["--variable", "redis_address=", "--variable", "secret_token=t"],
    );
    assert!(
        err.contains("component `listener`") && err.contains("not a Redis URL"),
        "{err}"
    );
    let closed = tikspin_e2e::free_port();
    let err = failed_start(
        &m,
        &[
            "--variable",
            &format!("redis_address=redis://127.0.0.1:{closed}"),
            "--variable",
            "secret_token=t",
        ],
    );
    assert!(
        err.contains(&format!("Redis trigger failed to connect to 127.0.0.1:{closed}")),
        "{err}"
    );
}

/// Spin: crates/outbound-networking-config/src/allowed_hosts.rs (`PartialAllowedHostConfig::
/// validate`): a templated entry is checked with the variables' defaults when the manifest
/// loads, so no run-time value can rescue a default that makes an invalid host.
#[test]
fn an_allowed_host_template_invalid_with_its_default_fails_the_load() {
    let dir = tempfile::tempdir().unwrap();
    let m = manifest_variant(dir.path(), |t| {
        t.replace(
            "allowed_url = { default = \"http://127.0.0.1:1\" }",
            "allowed_url = { default = \"\" }",
        )
    });
    let err = failed_start(
        &m,
        &["--variable", "allowed_url=http://127.0.0.1:1", "--variable", "secret_token=t"],
    );
    for part in [
        "Failed to load manifest from",
        "Failed to load component `probe`",
        "allowed_outbound_hosts is malformed",
        "using default variable value(s) with template \"{{ allowed_url }}\" results in invalid config \"\"",
        "\"\" is not an allowed outbound host format",
    ] {
        assert!(err.contains(part), "missing {part:?} in: {err}");
    }
}

/// Spin resolves a component's allow-list with the run-time values on its first outbound call
/// and denies every call when that fails (crates/outbound-networking-config, `check_url`):
/// the start succeeds, the component reaches nothing, and the host says why once.
#[test]
fn an_invalid_run_time_allowed_host_denies_every_outbound_call() {
    let port = tikspin_e2e::free_port();
    let h = host(HostConfig {
        port: Some(port),
        variables: vec![var("allowed_url", "127.0.0.1")],
        ..Default::default()
    });
    let r = h.client.get(&format!(
        "/probe/outbound?url=http%3A%2F%2F127.0.0.1%3A{port}%2F.well-known%2Fspin%2Fhealth"
    ));
    assert!(r.text().contains("HttpRequestDenied"), "{}", r.text());
    assert!(
        h.log().contains("component `probe`: allowed_outbound_hosts does not resolve"),
        "{}",
        h.log()
    );
}

#[test]
fn outbound_http_only_to_allowed_hosts() {
    let port = tikspin_e2e::free_port();
    let allowed = format!("http://127.0.0.1:{port}");
    let h = host(HostConfig {
        port: Some(port),
        variables: vec![var("allowed_url", &allowed)],
        ..Default::default()
    });
    // Allowed: the host calling its own health check.
    let r = h.client.get(&format!(
        "/probe/outbound?url=http%3A%2F%2F127.0.0.1%3A{port}%2F.well-known%2Fspin%2Fhealth"
    ));
    assert_eq!(r.text(), "status=200");
    // Another port on the same host is not.
    let other = tikspin_e2e::free_port();
    let r = h.client.get(&format!(
        "/probe/outbound?url=http%3A%2F%2F127.0.0.1%3A{other}%2F"
    ));
    assert_eq!(r.status, 502, "{}", r.text());
    assert!(r.text().contains("HttpRequestDenied"), "{}", r.text());
}

#[test]
fn undeclared_stores_databases_and_hosts_are_refused() {
    let h = host(HostConfig::default());
    let r = h.client.get("/limited/kv/get?key=x");
    assert_eq!(r.status, 403);
    assert!(r.text().contains("AccessDenied"), "{}", r.text());
    assert_eq!(h.client.get("/limited/sqlite/commit").status, 500);
    let r = h
        .client
        .get("/limited/redis?address=redis%3A%2F%2F127.0.0.1%3A6379");
    assert!(r.text().contains("InvalidAddress"), "{}", r.text());
    let r = h
        .client
        .get("/limited/mysql?address=mysql%3A%2F%2Fu%3Ap%40127.0.0.1%3A3306%2Fdb");
    assert!(r.text().contains("not permitted"), "{}", r.text());
    let r = h
        .client
        .get("/limited/outbound?url=http%3A%2F%2F127.0.0.1%3A1%2F");
    assert!(r.text().contains("HttpRequestDenied"), "{}", r.text());
}

#[test]
fn a_trap_a_timeout_or_a_memory_hog_fails_only_its_request() {
    let mut h = host(HostConfig {
        extra_args: vec![
            "--request-timeout-secs".into(),
            "2".into(),
            "--max-instance-memory-mib".into(),
            "64".into(),
        ],
        ..Default::default()
    });
    assert_eq!(h.client.get("/probe/trap").status, 500);
    assert_eq!(h.client.get("/probe/headers").status, 200);
    let started = std::time::Instant::now();
    assert_eq!(h.client.get("/probe/spin").status, 500);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(h.client.get("/probe/headers").status, 200);
    let r = h.client.get("/probe/alloc?mib=128");
    assert_ne!(
        r.status, 200,
        "a 128 MiB allocation must fail under a 64 MiB limit"
    );
    assert_eq!(h.client.get("/probe/alloc?mib=8").status, 200);
    assert!(h.is_running());
    let log = std::fs::read_to_string(h.state_path().join("logs/probe_stderr.txt")).unwrap();
    assert!(
        log.contains("ran out of time") || log.contains("interrupt"),
        "{log}"
    );
}

/// Spin: crates/trigger-http/src/server.rs (`serve_connection`: hyper's defaults, no body
/// limit). A head above the old 64 KiB default and a body announced above the old 256 MiB
/// default are served; the limits exist only when asked for.
#[test]
fn request_limits_are_spins_unless_opted_in() {
    use std::io::{Read, Write};
    let status_line = |base: &str, head: String| {
        let mut conn = std::net::TcpStream::connect(base).unwrap();
        conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        conn.write_all(head.as_bytes()).unwrap();
        let mut answer = [0u8; 64];
        let n = conn.read(&mut answer).unwrap_or(0);
        String::from_utf8_lossy(&answer[..n]).into_owned()
    };
    let big = "x".repeat(100 << 10);

    let h = host(HostConfig::default());
    let r = h
        .client
        .get_with("/probe/headers", &[("x-big", big.as_str())]);
    assert_eq!(r.status, 200, "a 100 KiB head is within hyper's bound");
    let base = h.client.base.trim_start_matches("http://").to_string();
    let answer = status_line(
        &base,
        format!(
            "POST /probe/echo-body HTTP/1.1\r\nHost: {base}\r\nContent-Length: {}\r\n\r\n",
            300u64 << 20
        ),
    );
    assert!(!answer.starts_with("HTTP/1.1 413"), "{answer}");

    let mut h = host(HostConfig {
        extra_args: vec![
            "--max-request-body-mib".into(),
            "1".into(),
            "--max-request-head-kib".into(),
            "64".into(),
        ],
        ..Default::default()
    });
    let r = h
        .client
        .get_with("/probe/headers", &[("x-big", big.as_str())]);
    assert_eq!(r.status, 431);
    // The host answers from the head alone, before any of the body is sent.
    let base = h.client.base.trim_start_matches("http://").to_string();
    let answer = status_line(
        &base,
        format!(
            "POST /probe/echo-body HTTP/1.1\r\nHost: {base}\r\nContent-Length: {}\r\n\r\n",
            2 << 20
        ),
    );
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert_eq!(h.client.get("/probe/headers").status, 200);
    assert!(h.is_running());
}

#[test]
fn component_output_goes_to_the_log_files() {
    let h = host(HostConfig::default());
    assert_eq!(h.client.get("/probe/trap").status, 500);
    let log = std::fs::read_to_string(h.state_path().join("logs/probe_stderr.txt")).unwrap();
    assert!(
        log.contains("panicked"),
        "the guest's panic message should be logged: {log}"
    );
}

/// Also the host's one Redis extra: it resubscribes after Redis restarts (Spin would exit).
#[test]
fn redis_outbound_and_trigger_with_reconnect() {
    let mut redis = RedisServer::start().expect("redis-server");
    let dir = tempfile::tempdir().unwrap();
    let h = TestHost::start(HostConfig {
        manifest: Some(redis_manifest(dir.path())),
        variables: vec![
            var("redis_address", &redis.url()),
            var("secret_token", "test-token"),
        ],
        ..Default::default()
    });
    let r = h.client.get(&format!(
        "/probe/redis?address=redis%3A%2F%2F127.0.0.1%3A{}",
        redis.port
    ));
    assert_eq!(r.text(), "get=v1 incr=1");

    let received = |want: &str| {
        wait_until(Duration::from_secs(15), || {
            h.client.get("/probe/kv/get?key=redis:last").text() == want
        })
    };
    // The subscription may still be starting: publish until someone listens.
    assert!(wait_until(Duration::from_secs(15), || redis
        .cli(&["PUBLISH", "host-test", "first"])
        .unwrap()
        == "1"));
    assert!(received("first"));

    redis.stop();
    redis.restart().unwrap();
    assert!(
        wait_until(Duration::from_secs(20), || redis
            .cli(&["PUBLISH", "host-test", "after-restart"])
            .unwrap()
            == "1"),
        "the trigger did not resubscribe after Redis came back"
    );
    assert!(received("after-restart"));
}

#[test]
fn mysql_round_trip_against_mariadb() {
    let db = MariaDb::start().expect("mariadb");
    let h = host(HostConfig::default());
    let url = db
        .url()
        .replace(':', "%3A")
        .replace('/', "%2F")
        .replace('@', "%40");
    let r = h.client.get(&format!("/probe/mysql?address={url}"));
    assert_eq!(r.text(), "name=数据 🎬 n=42");
}

/// The default profile opens a SQLite connection per `open`, as Spin does; `--fast` hands a
/// pooled one back (a TEMP table, which lives on its connection, tells them apart).
#[test]
fn sqlite_connections_follow_the_profile() {
    let spin = host(HostConfig::default());
    assert_eq!(spin.client.get("/probe/sqlite/connection").text(), "fresh");
    let fast = host(HostConfig {
        extra_args: vec!["--fast".into()],
        ..Default::default()
    });
    assert_eq!(fast.client.get("/probe/sqlite/connection").text(), "reused");
    assert!(fast.log().contains("profile: fast"), "{}", fast.log());
}

/// The profiles change what a request costs, never what it answers.
#[test]
fn both_profiles_answer_alike() {
    let config = |extra: &[&str]| HostConfig {
        variables: vec![var("secret_token", "s3cret")],
        env: vec![var("SPIN_VARIABLE_GREETING", "from env")],
        extra_args: extra.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    };
    let spin = host(config(&[]));
    let fast = host(config(&["--profile", "fast"]));
    let answers = |h: &TestHost| -> Vec<(u16, String)> {
        let get = |path: &str| {
            let r = h.client.get(path);
            (r.status, r.text())
        };
        let post = |path: &str| {
            let r = h.client.post_empty(path);
            (r.status, r.text())
        };
        let headers: String = get("/users/7/headers?x=1")
            .1
            .lines()
            .filter(|l| !l.starts_with("spin-client-addr") && !l.starts_with("spin-full-url"))
            .collect::<Vec<_>>()
            .join("\n");
        let echo = h
            .client
            .post("/probe/echo-body", "text/plain", b"some body");
        vec![
            (200, headers),
            (echo.status, echo.text()),
            get("/probe/kv/get?key=k"),
            post("/probe/kv/set?key=k&value=v"),
            get("/probe/kv/get?key=k"),
            get("/probe/sqlite/commit"),
            get("/probe/sqlite/rollback"),
            get("/probe/var?name=greeting"),
            get("/probe/var?name=token"),
            get("/probe/var?name=undeclared"),
            get("/probe/var?name=Bad__name"),
            get("/limited/kv/get?key=x"),
            (get("/limited/sqlite/commit").0, String::new()),
            (get("/probe/trap").0, String::new()),
            get("/nothing/here"),
            (non_utf8_header_status(h), String::new()),
        ]
    };
    let from_spin = answers(&spin);
    assert_eq!(from_spin[7], (200, "from env, world".to_string()));
    assert_eq!(from_spin[8], (200, "s3cret".to_string()));
    // Spin copies every header value out as UTF-8 before it instantiates the component, and
    // answers a request with any other value 500 (crates/trigger-http/src/headers.rs,
    // `prepare_request_headers`, through `server.rs` `respond_wasm_component`).
    assert_eq!(from_spin.last().unwrap().0, 500);
    assert_eq!(from_spin, answers(&fast));
}

/// The status of a request whose `x-bin` header value is not UTF-8 (bytes a client library
/// refuses to send, so over a raw connection).
fn non_utf8_header_status(h: &TestHost) -> u16 {
    use std::io::{Read, Write};
    let base = h.client.base.trim_start_matches("http://").to_string();
    let mut conn = std::net::TcpStream::connect(&base).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    conn.write_all(
        b"GET /probe/headers HTTP/1.1\r\nHost: localhost\r\nx-bin: \xff\xfe\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    let mut raw = Vec::new();
    let _ = conn.read_to_end(&mut raw);
    let head = String::from_utf8_lossy(&raw);
    head.split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP response: {head:?}"))
}

/// The test app's manifest plus `extra` (TOML appended), with paths made absolute, in `dir`.
fn testapp_with(dir: &std::path::Path, extra: &str) -> PathBuf {
    let testapp = manifest().parent().unwrap().to_path_buf();
    let text = format!("{}\n{extra}", std::fs::read_to_string(manifest()).unwrap())
        .replace(
            "../../target",
            &format!("{}/target", tikspin_e2e::workspace_root().display()),
        )
        .replace("workdir = \"../", &format!("workdir = \"{}/../", testapp.display()))
        .replace("workdir = \".\"", &format!("workdir = \"{}\"", testapp.display()));
    let m = dir.join("spin.toml");
    std::fs::write(&m, text).unwrap();
    m
}

/// Spin: crates/http/src/routes.rs (`Router::build`: a route declared twice is not refused,
/// the last declaration wins) and crates/trigger-http/src/server.rs (`HttpServer::new` logs the
/// duplicates and routes under /.well-known/spin/; `handle` answers that prefix itself, with an
/// empty 404 for anything but `health` and `info`).
#[test]
fn duplicate_and_reserved_routes_start_as_in_spin() {
    let dir = tempfile::tempdir().unwrap();
    let m = testapp_with(
        dir.path(),
        r#"
[[trigger.http]]
route = "/dup/..."
component = "limited"

[[trigger.http]]
route = "/dup/..."
component = "probe"

[[trigger.http]]
route = "/.well-known/spin/mine"
component = "probe"

[[trigger.http]]
route = "/..."
component = "probe"
"#,
    );
    let h = TestHost::start(HostConfig {
        manifest: Some(m),
        variables: vec![var("secret_token", "test-token")],
        ..Default::default()
    });
    // The later declaration (`probe`, which may open the store) serves the route.
    let r = h.client.get("/dup/kv/get?key=nothing");
    assert_eq!((r.status, r.text().as_str()), (404, "missing"));
    let log = h.log();
    assert!(
        log.contains("duplicates and will never be used") && log.contains("limited: /dup/..."),
        "{log}"
    );
    assert!(log.contains("Routes under /.well-known/spin/ are handled by the Spin runtime"), "{log}");

    assert_eq!(h.client.get("/.well-known/spin/health").text(), "OK");
    for reserved in ["/.well-known/spin/mine", "/.well-known/spin/anything"] {
        let r = h.client.get(reserved);
        assert_eq!(r.status, 404, "{reserved}");
        assert!(r.body.is_empty(), "{reserved} reached a component: {}", r.text());
    }
    // Everything else reaches the catch-all.
    assert!(h.client.get("/elsewhere").text().contains("no probe"));
}

/// Spin: crates/trigger-http/src/server.rs (`serve_connection` uses hyper-util's `auto`
/// builder): HTTP/2 with prior knowledge is served on the same port as HTTP/1.1.
#[test]
fn http2_prior_knowledge_is_served() {
    use std::io::{Read, Write};
    let h = host(HostConfig::default());
    let base = h.client.base.trim_start_matches("http://").to_string();
    let mut conn = std::net::TcpStream::connect(&base).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    // The client preface, then an empty SETTINGS frame.
    conn.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0")
        .unwrap();
    let mut frame = [0u8; 9];
    conn.read_exact(&mut frame).unwrap();
    assert_eq!(frame[3], 0x04, "the server's first frame is SETTINGS: {frame:?}");
}

/// Spin refuses, before serving, a manifest whose component declares a store label that is
/// neither kebab-case nor snake_case (crates/manifest/src/schema/kebab_or_snake_case.rs) and a
/// runtime config with a key it does not use (crates/runtime-config/src/lib.rs,
/// `validate_all_keys_used`); the host's one-line error names the file, the component and the
/// key.
#[test]
fn a_manifest_or_runtime_config_spin_rejects_names_file_component_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let bad_manifest = testapp_with(dir.path(), "");
    let text = std::fs::read_to_string(&bad_manifest).unwrap().replacen(
        "key_value_stores = [\"default\"]",
        "key_value_stores = [\"default\", \"b@d\"]",
        1,
    );
    std::fs::write(&bad_manifest, text).unwrap();
    let rc = dir.path().join("rc.toml");
    std::fs::write(&rc, "bogus = 1\n").unwrap();
    tikspin_e2e::harness::build_once(&manifest());
    let run = |m: &std::path::Path, extra: &[&std::ffi::OsStr]| {
        let out = std::process::Command::new(tikspin_e2e::harness::host_binary())
            .args(["up", "--listen", "127.0.0.1:0", "--variable", "secret_token=t", "--from"])
            .arg(m)
            .arg("--state-dir")
            .arg(dir.path().join("state"))
            .args(extra)
            .output()
            .unwrap();
        assert!(!out.status.success());
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let err = run(&bad_manifest, &[]);
    assert!(
        err.contains("spin.toml")
            && err.contains("component.probe.key_value_stores[1]")
            && err.contains("expected kebab-case or snake_case"),
        "{err}"
    );
    std::fs::create_dir_all(dir.path().join("good")).unwrap();
    let good = testapp_with(&dir.path().join("good"), "");
    let err = run(&good, &["--runtime-config-file".as_ref(), rc.as_os_str()]);
    assert!(
        err.contains("rc.toml") && err.contains("unused runtime config key(s): bogus"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
}

/// `wasi:keyvalue/atomics` on the store `default`: `n` increments from concurrent instances,
/// each answered with the new value; every value from 1 to `n` comes back exactly once.
fn concurrent_increments_are_exact(h: &TestHost, key: &str, n: usize) {
    let mut seen: Vec<i64> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..n)
            .map(|_| s.spawn(|| h.client.post_empty(&format!("/probe/wasi-kv/increment?key={key}"))))
            .collect();
        handles
            .into_iter()
            .map(|t| {
                let r = t.join().unwrap();
                assert_eq!(r.status, 200, "{}", r.text());
                r.text().parse().unwrap()
            })
            .collect()
    });
    seen.sort();
    assert_eq!(seen, (1..=n as i64).collect::<Vec<_>>());
    let r = h.client.post_empty(&format!("/probe/wasi-kv/increment?key={key}&delta=-10"));
    assert_eq!(r.text(), (n as i64 - 10).to_string());
}

/// Compare-and-swap as Spin does it: a swap against an unchanged key lands; one whose key
/// changed after `current` fails with a fresh CAS that already sees the new value. The
/// `limited` component (no stores) is refused on the wasi interface too.
fn compare_and_swap_as_spin(h: &TestHost) {
    let c = &h.client;
    assert_eq!(c.post_empty("/probe/wasi-kv/cas?key=c&value=one").text(), "swapped -");
    assert_eq!(c.get("/probe/kv/get?key=c").text(), "one");
    assert_eq!(c.post_empty("/probe/wasi-kv/cas?key=c&value=two").text(), "swapped one");
    // A write lands between `current` and `swap`.
    std::thread::scope(|s| {
        let slow = s.spawn(|| c.post_empty("/probe/wasi-kv/cas?key=c&value=late&sleep_ms=700"));
        std::thread::sleep(Duration::from_millis(250));
        assert_eq!(c.post_empty("/probe/kv/set?key=c&value=other").status, 200);
        let r = slow.join().unwrap();
        assert_eq!((r.status, r.text()), (409, "cas-failed two now other".to_string()));
    });
    assert_eq!(c.get("/probe/kv/get?key=c").text(), "other");
    let r = c.post_empty("/limited/wasi-kv/increment?key=x");
    assert_eq!(r.status, 403, "{}", r.text());
    assert!(r.text().contains("AccessDenied"), "{}", r.text());
}

#[test]
fn wasi_keyvalue_atomics_on_the_sqlite_store() {
    let h = host(HostConfig::default());
    concurrent_increments_are_exact(&h, "counter", 48);
    compare_and_swap_as_spin(&h);
}

/// On Redis: `INCRBY`, and `WATCH`/`MULTI`/`EXEC` on a connection of the CAS's own. Spin's
/// swap reads a `WATCH`-aborted `EXEC` as success (redis-rs maps its nil reply to `()`), so
/// the raced swap reports success and writes nothing: the host does the same.
#[test]
fn wasi_keyvalue_atomics_on_redis() {
    let redis = RedisServer::start().expect("redis-server");
    let dir = tempfile::tempdir().unwrap();
    let rc = dir.path().join("runtime-config.toml");
    std::fs::write(
        &rc,
        format!("[key_value_store.default]\ntype = \"redis\"\nurl = \"{}\"\n", redis.url()),
    )
    .unwrap();
    let h = host(HostConfig {
        runtime_config: Some(rc),
        ..Default::default()
    });
    concurrent_increments_are_exact(&h, "counter", 48);
    assert_eq!(redis.cli(&["GET", "counter"]).unwrap(), "38");
    let c = &h.client;
    assert_eq!(c.post_empty("/probe/wasi-kv/cas?key=c&value=one").text(), "swapped -");
    assert_eq!(c.post_empty("/probe/wasi-kv/cas?key=c&value=two").text(), "swapped one");
    std::thread::scope(|s| {
        let slow = s.spawn(|| c.post_empty("/probe/wasi-kv/cas?key=c&value=late&sleep_ms=700"));
        std::thread::sleep(Duration::from_millis(250));
        assert_eq!(c.post_empty("/probe/kv/set?key=c&value=other").status, 200);
        assert_eq!(slow.join().unwrap().text(), "swapped two");
    });
    assert_eq!(redis.cli(&["GET", "c"]).unwrap(), "other", "the aborted EXEC wrote nothing");
}
