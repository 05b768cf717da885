//! Metrics end to end (issue 18, docs/observability.md): the host serves `--metrics-listen`, a
//! real Prometheus (`/usr/bin/prometheus`, apt's `prometheus`) scrapes it every second, and
//! PromQL over Prometheus' HTTP API must count exactly the requests this test made.
//!
//! The app's own requests are known here, so every expected figure is exact: the test owns the
//! host (a fresh state directory) and nothing else talks to it.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use tikspin_e2e::api::{enc, envelope, expect_ok, publish_form, query, register, unique_name};
use tikspin_e2e::client::Client;
use tikspin_e2e::fixtures::fixture_bytes;
use tikspin_e2e::harness::{build_once, host_binary, manifest_for, HostConfig, TestHost};
use tikspin_e2e::servers::{MariaDb, RedisServer, S3sFs};
use tikspin_e2e::{free_port, wait_until, workspace_root};

const PROMETHEUS: &str = "/usr/bin/prometheus";

/// A Prometheus server of this test's, stopped by its PID when dropped.
struct Prometheus {
    child: Child,
    api: Client,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    /// Starts Prometheus scraping `target` (`host:port`) every second.
    fn start(target: &str) -> Self {
        assert!(
            Path::new(PROMETHEUS).exists(),
            "{PROMETHEUS} is missing: `apt-get install prometheus` (.ci/run installs it)"
        );
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
                 scrape_configs:\n  - job_name: tikspin\n    scrape_interval: 1s\n    \
                 static_configs:\n      - targets: ['{target}']\n"
            ),
        )
        .unwrap();
        let port = free_port();
        let log = std::fs::File::create(dir.path().join("prometheus.log")).unwrap();
        let child = Command::new(PROMETHEUS)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", dir.path().join("data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("cannot start prometheus");
        let api = Client::new(&format!("http://127.0.0.1:{port}"));
        let mut p = Self {
            child,
            api,
            _dir: dir,
        };
        let ready = wait_until(Duration::from_secs(60), || {
            matches!(p.child.try_wait(), Ok(Some(_)))
                || (std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
                    && p.api.get("/-/ready").status == 200)
        });
        assert!(
            ready && matches!(p.child.try_wait(), Ok(None)),
            "prometheus did not become ready:\n{}",
            p.log()
        );
        p
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self._dir.path().join("prometheus.log")).unwrap_or_default()
    }

    /// The single value of an instant PromQL query, `None` when it has no result.
    fn value(&self, promql: &str) -> Option<f64> {
        let r = self.api.get(&format!("/api/v1/query?query={}", enc(promql)));
        assert_eq!(r.status, 200, "{promql}: {}", r.text());
        let v: Value = r.json();
        assert_eq!(v["status"], "success", "{promql}: {v}");
        let result = v["data"]["result"].as_array().unwrap();
        assert!(result.len() <= 1, "{promql}: more than one series: {v}");
        result
            .first()
            .map(|s| s["value"][1].as_str().unwrap().parse().unwrap())
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        if !wait_until(Duration::from_secs(10), || {
            matches!(self.child.try_wait(), Ok(Some(_)))
        }) {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

fn login(c: &Client, name: &str, password: &str) -> Value {
    envelope(c.post_empty(&format!(
        "/douyin/user/login/?{}",
        query(&[("username", name), ("password", password)])
    )))
}

#[test]
fn prometheus_counts_what_the_test_sent() {
    let metrics_port = free_port();
    let host = TestHost::start(HostConfig {
        extra_args: vec![
            "--metrics-listen".into(),
            format!("127.0.0.1:{metrics_port}"),
        ],
        ..Default::default()
    });
    let c = &host.client;
    let prometheus = Prometheus::start(&format!("127.0.0.1:{metrics_port}"));

    // The requests, each kind a known number of times.
    let users: Vec<_> = (0..3).map(|_| register(c, "prom")).collect();
    let taken = envelope(c.post_empty(&format!(
        "/douyin/user/register/?{}",
        query(&[("username", &users[0].name), ("password", "secret123")])
    )));
    assert_eq!(taken["status_code"], 2001, "{taken}");
    for u in &users[..2] {
        expect_ok(&login(c, &u.name, "secret123"));
    }
    for _ in 0..2 {
        let v = login(c, &unique_name("nobody"), "secret123");
        assert_eq!(v["status_code"], 2002, "{v}");
    }
    for _ in 0..3 {
        assert_eq!(c.get("/douyin/feed/").status, 200);
    }
    let video = fixture_bytes("portrait-3s.mp4");
    let (ct, body) = publish_form(
        "----TikSpinPromBoundary",
        &users[0].token,
        "metrics",
        "clip.mp4",
        &video,
    );
    expect_ok(&envelope(c.post("/douyin/publish/action/", &ct, &body)));
    let user_requests = 3 + 1 + 2 + 2;

    // Wait for a scrape that saw all of them (the publish is the last).
    let scraped = wait_until(Duration::from_secs(30), || {
        prometheus.value("tikspin_uploads_total{outcome=\"ok\"}") == Some(1.0)
    });
    assert!(scraped, "no scrape saw the upload:\n{}", prometheus.log());

    let expect = |promql: &str, want: f64| {
        assert_eq!(prometheus.value(promql), Some(want), "{promql}");
    };
    expect("up{job=\"tikspin\"}", 1.0);
    // Spin's own counter, under the name the Collector's Prometheus exporter gives it.
    expect(
        "spin_request_count_total{app_id=\"tikspin\",component_id=\"user\",trigger_type=\"http\"}",
        user_requests as f64,
    );
    expect(
        "sum(http_server_request_duration_seconds_count{component_id=\"user\",http_route=\"/douyin/user/...\",http_request_method=\"POST\",http_response_status_code=\"200\"})",
        user_requests as f64,
    );
    expect(
        "http_server_request_duration_seconds_count{http_route=\"/douyin/feed/...\",http_request_method=\"GET\",http_response_status_code=\"200\"}",
        3.0,
    );
    expect(
        "http_server_request_duration_seconds_bucket{http_route=\"/douyin/feed/...\",http_request_method=\"GET\",le=\"+Inf\"}",
        3.0,
    );
    expect(
        "sum(http_server_request_duration_seconds_count{http_route=\"/douyin/publish/...\"})",
        1.0,
    );
    // Every routed request started one instance.
    expect(
        "sum(tikspin_component_instantiate_duration_seconds_count{trigger_type=\"http\"})",
        (user_requests + 3 + 1) as f64,
    );
    expect("tikspin_registrations_total{outcome=\"ok\"}", 3.0);
    expect("tikspin_registrations_total{outcome=\"refused\"}", 1.0);
    expect("tikspin_logins_total{outcome=\"ok\"}", 2.0);
    expect("tikspin_logins_total{outcome=\"refused\"}", 2.0);
    expect("tikspin_logins_total{outcome=\"throttled\"}", 0.0);
    expect("tikspin_upload_bytes_total", body.len() as f64);
    // Statements ran and were counted by operation, never by text.
    let selects = prometheus
        .value("sum(tikspin_sql_statement_duration_seconds_count{db_system=\"sqlite\",db_operation=\"SELECT\"})")
        .unwrap_or(0.0);
    assert!(selects >= user_requests as f64, "{selects}");
    let kv = prometheus
        .value("sum(tikspin_kv_operation_duration_seconds_count{store=\"default\"})")
        .unwrap_or(0.0);
    assert!(kv > 0.0, "{kv}");
    // The publish's cover job ran inline (embedded layout): none is left pending or dead.
    let finished = wait_until(Duration::from_secs(20), || {
        prometheus.value("sum(tikspin_jobs{state=~\"pending|running\"})")
            == Some(0.0)
    });
    assert!(finished, "jobs still pending");
    expect("tikspin_jobs{state=\"dead\"}", 0.0);
    assert!(prometheus.value("tikspin_jobs{state=\"done\"}").unwrap() >= 1.0);
    // A latency quantile is computable from the buckets, as the dashboard computes it.
    let p99 = prometheus
        .value("histogram_quantile(0.99, sum by (le) (http_server_request_duration_seconds_bucket{http_route=\"/douyin/user/...\"}))")
        .unwrap();
    assert!(p99 > 0.0 && p99 <= 10.0, "{p99}");

    // The exposition itself passes Prometheus' own checker.
    let text = Client::new(&format!("http://127.0.0.1:{metrics_port}"))
        .get("/metrics")
        .text();
    let mut check = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool");
    use std::io::Write;
    check.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = check.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // No secret or parameter reaches a label.
    assert!(!text.contains(&users[0].token), "a token in the metrics");
    assert!(!text.contains(&users[0].name), "a username in the metrics");
}

#[test]
fn the_metrics_listener_serves_only_metrics() {
    let metrics_port = free_port();
    let host = TestHost::start(HostConfig {
        extra_args: vec![
            "--metrics-listen".into(),
            format!("127.0.0.1:{metrics_port}"),
        ],
        ..Default::default()
    });
    let m = Client::new(&format!("http://127.0.0.1:{metrics_port}"));
    let r = m.get("/metrics");
    assert_eq!(r.status, 200);
    assert!(
        r.header("content-type").unwrap().starts_with("text/plain; version=0.0.4"),
        "{:?}",
        r.header("content-type")
    );
    assert_eq!(m.get("/").status, 404);
    assert_eq!(m.get("/douyin/feed/").status, 404);
    // And the app's port does not serve them.
    assert_ne!(host.client.get("/metrics").header("content-type"), r.header("content-type"));
}

#[test]
fn metrics_on_the_apps_own_address_are_refused() {
    let port = free_port();
    let state = tempfile::tempdir().unwrap();
    build_once(&workspace_root().join("spin.toml"));
    let out = Command::new(host_binary())
        .args(["up", "--quiet", "--from"])
        .arg(workspace_root().join("spin.toml"))
        .arg("--state-dir")
        .arg(state.path())
        .arg("--compile-cache")
        .arg(host_binary().parent().unwrap().join("tikspin-compile-cache"))
        .args(["--variable", "jwt_secret=prometheus-suite-secret-0123456789abcdef"])
        .arg("--listen")
        .arg(format!("127.0.0.1:{port}"))
        .arg("--metrics-listen")
        .arg(format!("127.0.0.1:{port}"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--metrics-listen") && err.contains("app's address"), "{err}");
}

/// The sum of the values of every sample line that starts with `prefix` (a name and the first
/// labels, in the order the host writes them).
fn sum_of(text: &str, prefix: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(prefix))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
        .sum()
}

/// The production layout (MariaDB, Redis key-value store and job queue, S3): the Redis trigger,
/// the cover job the worker runs, MySQL statements and the S3 requests are counted.
#[test]
fn the_production_layout_counts_the_worker_mysql_and_s3() {
    let redis = RedisServer::start().expect("redis-server");
    let db = MariaDb::start().expect("mariadb");
    let s3 = S3sFs::start().unwrap_or_else(|e| panic!("{e:#}"));
    let config_dir = tempfile::tempdir().unwrap();
    let variables: Vec<(String, String)> = [
        ("seed_welcome_video", "false".to_string()),
        ("database_url", db.url()),
        ("database_host", format!("mysql://127.0.0.1:{}", db.port)),
        ("redis_address", redis.url()),
        ("s3_endpoint", s3.url()),
        ("s3_bucket", s3.bucket.clone()),
        ("s3_access_key", s3.access_key.clone()),
        ("s3_secret_key", s3.secret_key.clone()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let metrics_port = free_port();
    let host = TestHost::start(HostConfig {
        manifest: manifest_for(&variables),
        runtime_config: Some(redis.kv_runtime_config(config_dir.path())),
        variables,
        extra_args: vec![
            "--metrics-listen".into(),
            format!("127.0.0.1:{metrics_port}"),
        ],
        ..Default::default()
    });
    let c = &host.client;
    let m = Client::new(&format!("http://127.0.0.1:{metrics_port}"));
    let user = register(c, "promprod");
    let (ct, body) = publish_form(
        "----TikSpinPromProdBoundary",
        &user.token,
        "metrics in production",
        "clip.mp4",
        &fixture_bytes("portrait-3s.mp4"),
    );
    expect_ok(&envelope(c.post("/douyin/publish/action/", &ct, &body)));

    let mut text = String::new();
    let ran = wait_until(Duration::from_secs(30), || {
        text = m.get("/metrics").text();
        sum_of(&text, "tikspin_cover_job_duration_seconds_count{outcome=\"ok\"}") == 1.0
    });
    assert!(ran, "the worker's cover job was not counted:\n{text}\n{}", host.log());
    let at_least: [(&str, f64); 8] = [
        ("spin_request_count_total{app_id=\"tikspin\",component_id=\"worker\",trigger_type=\"redis\"}", 1.0),
        ("tikspin_redis_messages_total{component_id=\"worker\",outcome=\"ok\"}", 1.0),
        ("tikspin_component_execution_duration_seconds_count{component_id=\"worker\",trigger_type=\"redis\"}", 1.0),
        ("tikspin_sql_statement_duration_seconds_count{component_id=\"user\",db_system=\"mysql\",db_operation=\"INSERT\",outcome=\"ok\"}", 1.0),
        ("tikspin_kv_operation_duration_seconds_count{component_id=\"video\",store=\"default\",", 1.0),
        // The upload went to S3 (answered 200), and the worker read it back (a range, 206) and
        // stored the cover.
        ("tikspin_outbound_http_request_duration_seconds_count{component_id=\"video\",server_address=\"127.0.0.1\",http_response_status_code=\"200\"}", 1.0),
        ("tikspin_outbound_http_request_duration_seconds_count{component_id=\"worker\",server_address=\"127.0.0.1\",", 2.0),
        // MySQL's `START TRANSACTION` is an operation of its own, not OTHER.
        ("tikspin_sql_statement_duration_seconds_count{component_id=\"video\",db_system=\"mysql\",db_operation=\"START\",outcome=\"ok\"}", 1.0),
    ];
    for (series, min) in at_least {
        assert!(sum_of(&text, series) >= min, "{series} < {min}:\n{text}");
    }
    assert_eq!(sum_of(&text, "tikspin_sql_statement_duration_seconds_count{component_id=\"user\",db_system=\"sqlite\""), 0.0);
    assert_eq!(sum_of(&text, "tikspin_uploads_total{outcome=\"ok\"}"), 1.0);
    // The jobs live in MySQL here: the SQLite backlog collector reports nothing rather than 0.
    assert!(!text.contains("tikspin_jobs{"), "{text}");
}
