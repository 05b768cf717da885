//! OTLP metrics export, switched on as Spin switches it on (crates/telemetry/src/env.rs,
//! `otel_metrics_enabled`): `OTEL_EXPORTER_OTLP_ENDPOINT` or `OTEL_EXPORTER_OTLP_METRICS_ENDPOINT`
//! set and not empty, unless `OTEL_SDK_DISABLED` is. The protocol is
//! `OTEL_EXPORTER_OTLP_METRICS_PROTOCOL`, else `OTEL_EXPORTER_OTLP_PROTOCOL`, else
//! `http/protobuf` (`grpc` too; Spin refuses `http/json`, so does this host). Every
//! `OTEL_METRIC_EXPORT_INTERVAL` ms (the SDK's default, 60 000, which Spin's `PeriodicReader`
//! keeps) the registry is sent whole, cumulative, as Spin's periodic reader sends it.
//!
//! The request is built from the same walk as the Prometheus text (`Metrics::visit`), with the
//! OTLP names and units of docs/observability.md, so a Collector's Prometheus exporter derives
//! the very names `--metrics-listen` serves. An export runs on its own task and never touches a
//! request: a collector that is down costs a failed export per interval, counted, with one
//! warning at the first failure and a count every ten.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::metrics::v1::{
    metric::Data, number_data_point, AggregationTemporality, Gauge, Histogram as OtlpHistogram,
    HistogramDataPoint, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum,
};
use opentelemetry_proto::tonic::resource::v1::Resource;

use super::registry::{Family, Histogram, Kind, Labels, Visitor};
use super::Metrics;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    HttpProtobuf,
    Grpc,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// Where requests go: the full URL for `http/protobuf`, the server for `grpc`.
    pub endpoint: String,
    pub protocol: Protocol,
    pub interval: Duration,
    pub timeout: Duration,
    pub service_name: String,
}

impl Config {
    /// `None`: metrics export is off. Bad values are errors that name the variable.
    pub fn from_env(var: impl Fn(&str) -> Option<String>) -> Result<Option<Self>> {
        let set = |k: &str| var(k).filter(|v| !v.is_empty());
        if set("OTEL_SDK_DISABLED").is_some() {
            return Ok(None);
        }
        let specific = set("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT");
        let general = set("OTEL_EXPORTER_OTLP_ENDPOINT");
        if specific.is_none() && general.is_none() {
            return Ok(None);
        }
        let protocol = match set("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL")
            .or_else(|| set("OTEL_EXPORTER_OTLP_PROTOCOL"))
            .as_deref()
        {
            None | Some("http/protobuf") => Protocol::HttpProtobuf,
            Some("grpc") => Protocol::Grpc,
            Some("http/json") => bail!("OTEL_EXPORTER_OTLP_PROTOCOL: http/json is not supported (as in Spin): use http/protobuf or grpc"),
            Some(other) => bail!("OTEL_EXPORTER_OTLP_PROTOCOL: {other:?} is not an OTLP protocol (http/protobuf or grpc)"),
        };
        // The signal's own variable is used as given; the general one gets `/v1/metrics` (the
        // OTLP exporter specification), for HTTP only.
        let endpoint = match (specific, protocol) {
            (Some(url), _) => url,
            (None, Protocol::HttpProtobuf) => {
                format!("{}/v1/metrics", general.unwrap().trim_end_matches('/'))
            }
            (None, Protocol::Grpc) => general.unwrap(),
        };
        if !endpoint.starts_with("http://") {
            bail!("OTLP metrics endpoint {endpoint:?}: only plain http:// is supported (a Collector beside the host)");
        }
        let millis = |k: &str, default: u64| -> Result<Duration> {
            match set(k) {
                None => Ok(Duration::from_millis(default)),
                Some(v) => match v.parse::<u64>() {
                    Ok(n) if n > 0 => Ok(Duration::from_millis(n)),
                    _ => bail!("{k}: {v:?} is not a positive number of milliseconds"),
                },
            }
        };
        Ok(Some(Self {
            endpoint,
            protocol,
            interval: millis("OTEL_METRIC_EXPORT_INTERVAL", 60_000)?,
            timeout: millis("OTEL_METRIC_EXPORT_TIMEOUT", 30_000)?,
            // Spin's `SpinResourceDetector`: `OTEL_SERVICE_NAME`, else `spin`.
            service_name: set("OTEL_SERVICE_NAME").unwrap_or_else(|| "spin".into()),
        }))
    }
}

/// Exports so far, for the warnings.
#[derive(Default)]
pub struct Stats {
    pub sent: AtomicU64,
    pub failed: AtomicU64,
}

/// Exports every interval until `shutdown`, then once more.
pub fn start(
    metrics: Arc<Metrics>,
    config: Config,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) -> (Arc<Stats>, tokio::task::JoinHandle<()>) {
    let stats = Arc::new(Stats::default());
    let s = stats.clone();
    let task = tokio::spawn(async move {
        let started = unix_nanos();
        let mut tick = tokio::time::interval(config.interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            let last = tokio::select! {
                _ = tick.tick() => false,
                _ = shutdown.changed() => true,
            };
            let m = metrics.clone();
            let name = config.service_name.clone();
            // The walk reads the jobs table: off the async workers.
            let request =
                tokio::task::spawn_blocking(move || build_request(&m, &name, started)).await;
            let sent = match request {
                Ok(r) => tokio::time::timeout(config.timeout, send(&config, r))
                    .await
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("timed out"))),
                Err(e) => Err(e.into()),
            };
            match sent {
                Ok(()) => {
                    s.sent.fetch_add(1, Relaxed);
                }
                Err(e) => {
                    let n = s.failed.fetch_add(1, Relaxed) + 1;
                    if n == 1 || n % 10 == 0 {
                        eprintln!(
                            "warning: OTLP metrics export to {} failed ({n} so far, those data dropped): {e:#}",
                            config.endpoint
                        );
                    }
                }
            }
            if last {
                return;
            }
        }
    });
    (stats, task)
}

fn unix_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// The whole registry as one cumulative export.
pub fn build_request(metrics: &Metrics, service_name: &str, start: u64) -> ExportMetricsServiceRequest {
    let mut b = Builder {
        out: Vec::new(),
        start,
        now: unix_nanos(),
    };
    metrics.visit(&mut b);
    b.out.retain(|m| match &m.data {
        Some(Data::Sum(s)) => !s.data_points.is_empty(),
        Some(Data::Gauge(g)) => !g.data_points.is_empty(),
        Some(Data::Histogram(h)) => !h.data_points.is_empty(),
        _ => false,
    });
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(Resource {
                attributes: vec![
                    kv("service.name", service_name),
                    kv(
                        "service.version",
                        &format!("tikspin-host {}", env!("CARGO_PKG_VERSION")),
                    ),
                ],
                ..Default::default()
            }),
            scope_metrics: vec![ScopeMetrics {
                scope: Some(InstrumentationScope {
                    name: "tikspin-host".into(),
                    ..Default::default()
                }),
                metrics: b.out,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

fn kv(k: &str, v: &str) -> KeyValue {
    KeyValue {
        key: k.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(v.into())),
        }),
        ..Default::default()
    }
}

fn attributes(labels: Labels<'_>) -> Vec<KeyValue> {
    labels.iter().map(|(k, v)| kv(k, v)).collect()
}

struct Builder {
    out: Vec<Metric>,
    start: u64,
    now: u64,
}

impl Visitor for Builder {
    fn family(&mut self, f: &'static Family) {
        let cumulative = AggregationTemporality::Cumulative as i32;
        let data = match f.kind {
            Kind::Counter => Data::Sum(Sum {
                data_points: Vec::new(),
                aggregation_temporality: cumulative,
                is_monotonic: true,
            }),
            Kind::Gauge => Data::Gauge(Gauge {
                data_points: Vec::new(),
            }),
            Kind::Histogram => Data::Histogram(OtlpHistogram {
                data_points: Vec::new(),
                aggregation_temporality: cumulative,
            }),
        };
        self.out.push(Metric {
            name: f.otel.into(),
            description: f.help.into(),
            unit: f.unit.into(),
            data: Some(data),
            ..Default::default()
        });
    }

    fn value(&mut self, labels: Labels<'_>, v: f64) {
        let (start, now) = (self.start, self.now);
        let Some(m) = self.out.last_mut() else { return };
        let point = NumberDataPoint {
            attributes: attributes(labels),
            start_time_unix_nano: start,
            time_unix_nano: now,
            value: Some(number_data_point::Value::AsInt(v as i64)),
            ..Default::default()
        };
        match &mut m.data {
            Some(Data::Sum(s)) => s.data_points.push(point),
            Some(Data::Gauge(g)) => g.data_points.push(NumberDataPoint {
                start_time_unix_nano: 0,
                ..point
            }),
            _ => {}
        }
    }

    fn histogram(&mut self, labels: Labels<'_>, h: &Histogram) {
        let (start, now) = (self.start, self.now);
        let Some(Metric {
            data: Some(Data::Histogram(hist)),
            ..
        }) = self.out.last_mut()
        else {
            return;
        };
        let buckets = h.bucket_counts();
        hist.data_points.push(HistogramDataPoint {
            attributes: attributes(labels),
            start_time_unix_nano: start,
            time_unix_nano: now,
            count: buckets.iter().sum(),
            sum: Some(h.sum()),
            bucket_counts: buckets,
            explicit_bounds: h.bounds().to_vec(),
            ..Default::default()
        });
    }
}

async fn send(config: &Config, request: ExportMetricsServiceRequest) -> Result<()> {
    match config.protocol {
        Protocol::Grpc => {
            use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_client::MetricsServiceClient;
            let mut client = MetricsServiceClient::connect(config.endpoint.clone())
                .await
                .context("connecting")?;
            client.export(request).await.context("export")?;
            Ok(())
        }
        Protocol::HttpProtobuf => {
            use http_body_util::BodyExt;
            use prost::Message;
            let uri: http::Uri = config.endpoint.parse().context("the endpoint")?;
            let authority = uri.authority().context("the endpoint has no host")?.clone();
            let port = authority.port_u16().unwrap_or(80);
            let stream = tokio::net::TcpStream::connect((authority.host(), port))
                .await
                .with_context(|| format!("connecting to {authority}"))?;
            let (mut sender, conn) =
                hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                    .await?;
            tokio::spawn(conn);
            let req = http::Request::post(uri.clone())
                .header(http::header::HOST, authority.as_str())
                .header(http::header::CONTENT_TYPE, "application/x-protobuf")
                .body(http_body_util::Full::new(bytes::Bytes::from(
                    request.encode_to_vec(),
                )))?;
            let resp = sender.send_request(req).await?;
            let status = resp.status();
            let _ = resp.into_body().collect().await;
            if !status.is_success() {
                bail!("the collector answered {status}");
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(vars: &[(&str, &str)]) -> Result<Option<Config>> {
        let vars: Vec<(String, String)> =
            vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Config::from_env(|k| vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()))
    }

    #[test]
    fn the_variables_turn_metrics_on_as_in_spin() {
        assert_eq!(config(&[]).unwrap(), None);
        assert_eq!(config(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "")]).unwrap(), None);
        assert_eq!(
            config(&[("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://127.0.0.1:4318")]).unwrap(),
            None
        );
        let on = config(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318/")])
            .unwrap()
            .unwrap();
        assert_eq!(on.endpoint, "http://127.0.0.1:4318/v1/metrics");
        assert_eq!(on.protocol, Protocol::HttpProtobuf);
        assert_eq!(on.interval, Duration::from_secs(60));
        assert_eq!(on.service_name, "spin");
        let specific = config(&[
            ("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "http://127.0.0.1:9/m"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318"),
            ("OTEL_METRIC_EXPORT_INTERVAL", "1000"),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(specific.endpoint, "http://127.0.0.1:9/m");
        assert_eq!(specific.interval, Duration::from_secs(1));
        let grpc = config(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4317"),
            ("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL", "grpc"),
        ])
        .unwrap()
        .unwrap();
        assert_eq!((grpc.protocol, grpc.endpoint.as_str()), (Protocol::Grpc, "http://127.0.0.1:4317"));
        assert_eq!(
            config(&[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318"),
                ("OTEL_SDK_DISABLED", "true")
            ])
            .unwrap(),
            None
        );
    }

    #[test]
    fn bad_settings_are_clear_errors() {
        let err = |vars: &[(&str, &str)]| config(vars).unwrap_err().to_string();
        let e = err(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"),
        ]);
        assert!(e.contains("http/json"), "{e}");
        let e = err(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318"),
            ("OTEL_METRIC_EXPORT_INTERVAL", "soon"),
        ]);
        assert!(e.contains("OTEL_METRIC_EXPORT_INTERVAL"), "{e}");
        let e = err(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "https://collector:4318")]);
        assert!(e.contains("http://"), "{e}");
    }

    /// One export over http/protobuf to a receiver of this test's, decoded with the OTLP types.
    #[tokio::test]
    async fn an_export_carries_the_otlp_names_and_values() {
        use http_body_util::BodyExt;
        use prost::Message;
        let metrics = Arc::new(Metrics::new(
            "tikspin",
            vec![super::super::ComponentPlan {
                id: "user",
                routes: vec!["/douyin/user/...".into()],
                kv_stores: vec![],
            }],
            None,
        ));
        let c = metrics.component("user").unwrap();
        let mut req = metrics.start_http(&http::Method::POST, "/douyin/user/login");
        req.routed(&c, "/douyin/user/...");
        metrics.record_http(&req, 200, Some(0));

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (got, mut got_rx) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            let (stream, _) = listener.accept().await.unwrap();
            let svc = hyper::service::service_fn(move |r: http::Request<hyper::body::Incoming>| {
                let got = got.clone();
                async move {
                    let path = r.uri().path().to_string();
                    let body = r.into_body().collect().await.unwrap().to_bytes();
                    let _ = got.send((path, body));
                    Ok::<_, std::convert::Infallible>(http::Response::new(
                        http_body_util::Full::new(bytes::Bytes::new()),
                    ))
                }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                .await;
        });
        let config = config(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &format!("http://{addr}")),
            ("OTEL_SERVICE_NAME", "tikspin-test"),
        ])
        .unwrap()
        .unwrap();
        let request = build_request(&metrics, &config.service_name, 1);
        send(&config, request).await.unwrap();
        let (path, body) = got_rx.recv().await.unwrap();
        assert_eq!(path, "/v1/metrics");
        let decoded = ExportMetricsServiceRequest::decode(body).unwrap();
        let rm = &decoded.resource_metrics[0];
        let service = &rm.resource.as_ref().unwrap().attributes[0];
        assert_eq!(service.key, "service.name");
        let all = &rm.scope_metrics[0].metrics;
        let by_name = |n: &str| all.iter().find(|m| m.name == n).unwrap_or_else(|| panic!("{n} missing"));
        let Some(Data::Sum(count)) = &by_name("spin.request_count").data else {
            panic!("spin.request_count is not a sum")
        };
        assert!(count.is_monotonic);
        let point = &count.data_points[0];
        assert_eq!(point.value, Some(number_data_point::Value::AsInt(1)));
        let attrs: Vec<_> = point.attributes.iter().map(|a| a.key.as_str()).collect();
        assert_eq!(attrs, ["app_id", "component_id", "trigger_type"]);
        let duration = by_name("http.server.request.duration");
        assert_eq!(duration.unit, "s");
        let Some(Data::Histogram(h)) = &duration.data else { panic!("not a histogram") };
        assert_eq!(h.data_points[0].count, 1);
        assert_eq!(h.data_points[0].bucket_counts.len(), h.data_points[0].explicit_bounds.len() + 1);
        let Some(Data::Sum(logins)) = &by_name("tikspin.logins").data else { panic!() };
        assert_eq!(logins.data_points.len(), 4);
        // Families without a series are left out.
        assert!(all.iter().all(|m| m.name != "tikspin.redis_messages"));
    }
}
