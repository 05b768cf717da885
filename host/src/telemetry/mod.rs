//! Traces, as Spin 4 makes them (spinframework/spin `crates/telemetry`): `tracing` spans bridged
//! to OpenTelemetry by `tracing-opentelemetry` and exported over OTLP by the SDK's batch span
//! processor on tokio, switched on by the standard variables and nothing else.
//!
//! - Which variables turn traces on, and the protocol: [`Config::from_env`] (Spin's `env.rs`).
//! - The exporter, the processor and the `service.name` resource: [`init`] (Spin's `traces.rs`,
//!   `detector.rs`); the counting of what is dropped: [`export`].
//! - The spans of the HTTP trigger and W3C `traceparent` in and out: [`http`].
//!
//! Off (no variable set): no subscriber is installed, so every `#[instrument]` callsite in the
//! host is disabled once and a span costs a relaxed load; the HTTP trigger checks [`enabled`]
//! before it reads a header. `host/src/profile.rs` says why this is what Spin pays.

pub mod export;
pub mod http;

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{bail, Context as _};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig as _;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::layer::SubscriberExt as _;

const OTEL_EXPORTER_OTLP_ENDPOINT: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";
const OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: &str = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT";
const OTEL_EXPORTER_OTLP_PROTOCOL: &str = "OTEL_EXPORTER_OTLP_PROTOCOL";
const OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: &str = "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL";
const OTEL_SDK_DISABLED: &str = "OTEL_SDK_DISABLED";
const OTEL_SERVICE_NAME: &str = "OTEL_SERVICE_NAME";

/// Spans waiting for export at most; more are dropped and counted (the SDK's default, 2048).
pub const MAX_QUEUED_SPANS: usize = 2048;

static ENABLED: AtomicBool = AtomicBool::new(false);

/// Whether spans are being exported: the one check the request path makes when they are not.
#[inline]
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// The OTLP wire format (Spin's `OtlpProtocol`; `http/json` is refused there too).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    HttpProtobuf,
    Grpc,
}

/// What the environment asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub protocol: Protocol,
    /// Where spans go: the traces endpoint as given, or the general one (the exporter appends
    /// `/v1/traces` to it for http/protobuf).
    pub endpoint: String,
}

impl Config {
    /// Spin's rule (`crates/telemetry/src/env.rs`, `otel_tracing_enabled`): traces are on when
    /// `OTEL_EXPORTER_OTLP_ENDPOINT` or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` is set and not
    /// empty, unless `OTEL_SDK_DISABLED` is set and not empty. The protocol is
    /// `OTEL_EXPORTER_OTLP_TRACES_PROTOCOL`, else `OTEL_EXPORTER_OTLP_PROTOCOL`, else
    /// `http/protobuf`. Where Spin warns and falls back on an unknown protocol, this host stops
    /// with an error: a typo should not silently pick another wire format.
    pub fn from_env(var: impl Fn(&str) -> Option<String>) -> anyhow::Result<Option<Self>> {
        let set = |k: &str| var(k).filter(|v| !v.is_empty());
        if set(OTEL_SDK_DISABLED).is_some() {
            return Ok(None);
        }
        let endpoint = match (
            set(OTEL_EXPORTER_OTLP_TRACES_ENDPOINT),
            set(OTEL_EXPORTER_OTLP_ENDPOINT),
        ) {
            (Some(traces), _) => traces,
            (None, Some(general)) => general,
            (None, None) => return Ok(None),
        };
        let protocol = match var(OTEL_EXPORTER_OTLP_TRACES_PROTOCOL)
            .or_else(|| var(OTEL_EXPORTER_OTLP_PROTOCOL))
            .as_deref()
        {
            None | Some("http/protobuf") => Protocol::HttpProtobuf,
            Some("grpc") => Protocol::Grpc,
            Some("http/json") => bail!("the http/json OTLP protocol is not supported (as in Spin): use http/protobuf or grpc"),
            Some(other) => bail!("{other:?} is not an OTLP protocol: use http/protobuf or grpc"),
        };
        let url = url::Url::parse(&endpoint)
            .with_context(|| format!("the OTLP endpoint {endpoint:?} is not a URL"))?;
        if url.scheme() != "http" {
            bail!(
                "the OTLP endpoint {endpoint:?} is not http://: this host's exporter speaks plain \
                 HTTP (run an OpenTelemetry Collector beside it for TLS)"
            );
        }
        Ok(Some(Self { protocol, endpoint }))
    }
}

/// The running exporter; [`Telemetry::shutdown`] flushes what is queued.
pub struct Telemetry {
    provider: SdkTracerProvider,
    stats: std::sync::Arc<export::Stats>,
    reporter: tokio::task::JoinHandle<()>,
}

impl Telemetry {
    /// Spans given to the exporter so far, dropped so far (counts for tests and logs).
    pub fn stats(&self) -> &export::Stats {
        &self.stats
    }

    /// Exports what is queued (bounded by the exporter's timeout) and stops.
    pub fn shutdown(self) {
        self.reporter.abort();
        let _ = self.provider.shutdown_with_timeout(Duration::from_secs(5));
        self.stats.report();
    }
}

/// Starts exporting if the environment asks for it (must run inside the tokio runtime). Installs
/// the process-wide subscriber, so it is called once, by `tikspin up`.
pub fn init(service_version: &str) -> anyhow::Result<Option<Telemetry>> {
    let Some(config) = Config::from_env(|k| std::env::var(k).ok())? else {
        return Ok(None);
    };
    let exporter = match config.protocol {
        Protocol::HttpProtobuf => opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_endpoint(http_traces_url(&config))
            .build()?,
        Protocol::Grpc => opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .with_endpoint(config.endpoint.clone())
            .build()?,
    };
    let stats = std::sync::Arc::new(export::Stats::default());
    let processor = export::processor(exporter, stats.clone());
    let provider = SdkTracerProvider::builder()
        .with_resource(resource(service_version))
        .with_span_processor(processor)
        .build();
    // Spin filters the layer with `SPIN_OTEL_TRACING_LEVEL` (default `info`) over every crate;
    // the host's spans are all its own, so only its target passes (wasmtime, hyper and the
    // exporter's own client never make spans of their own here).
    let filter = tracing_subscriber::filter::Targets::new()
        .with_target(env!("CARGO_CRATE_NAME"), tracing::Level::INFO);
    let layer = tracing_opentelemetry::layer()
        .with_tracer(provider.tracer("spin"))
        .with_threads(false);
    let subscriber =
        tracing_subscriber::registry().with(tracing_subscriber::Layer::with_filter(layer, filter));
    tracing::subscriber::set_global_default(subscriber)
        .context("a tracing subscriber was already installed")?;
    ENABLED.store(true, Ordering::Relaxed);
    let reporter = export::start_reporting(&config, stats.clone());
    eprintln!(
        "telemetry: exporting traces over OTLP ({}) to {}",
        match config.protocol {
            Protocol::HttpProtobuf => "http/protobuf",
            Protocol::Grpc => "grpc",
        },
        config.endpoint
    );
    Ok(Some(Telemetry {
        provider,
        stats,
        reporter,
    }))
}

/// `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` is used as given; the general endpoint gets the signal's
/// path, `/v1/traces` (the OTLP exporter specification, which Spin gets from the SDK's env reading).
fn http_traces_url(config: &Config) -> String {
    let specific = std::env::var(OTEL_EXPORTER_OTLP_TRACES_ENDPOINT)
        .ok()
        .filter(|v| !v.is_empty());
    match specific {
        Some(url) => url,
        None => format!("{}/v1/traces", config.endpoint.trim_end_matches('/')),
    }
}

/// `service.name`: `OTEL_SERVICE_NAME`, else `OTEL_RESOURCE_ATTRIBUTES`' `service.name`, else
/// `spin`, as Spin's `SpinResourceDetector` (`crates/telemetry/src/detector.rs`), so a dashboard
/// that selects `service.name="spin"` finds both runtimes; `service.version` is this host's.
fn resource(service_version: &str) -> opentelemetry_sdk::Resource {
    use opentelemetry::{Key, KeyValue};
    use opentelemetry_sdk::resource::{EnvResourceDetector, ResourceDetector as _};
    let from_env = EnvResourceDetector::new().detect();
    let name = std::env::var(OTEL_SERVICE_NAME)
        .ok()
        .filter(|s| !s.is_empty())
        .map(opentelemetry::Value::from)
        .or_else(|| from_env.get(&Key::new("service.name")))
        .unwrap_or_else(|| "spin".into());
    opentelemetry_sdk::Resource::builder()
        .with_detectors(&[
            Box::new(EnvResourceDetector::new()),
            Box::new(opentelemetry_sdk::resource::TelemetryResourceDetector),
        ])
        .with_attributes([
            KeyValue::new("service.name", name),
            KeyValue::new("service.version", format!("tikspin-host {service_version}")),
        ])
        .build()
}

/// The current request's trace id (32 hex digits), when a trace is being recorded: what the
/// access log and `x-request-id` use. `None` with telemetry off, at the cost of one load.
pub fn current_trace_id() -> Option<String> {
    if !enabled() {
        return None;
    }
    use opentelemetry::trace::TraceContextExt as _;
    use tracing_opentelemetry::OpenTelemetrySpanExt as _;
    let cx = tracing::Span::current().context();
    let span = cx.span();
    let sc = span.span_context();
    sc.is_valid().then(|| sc.trace_id().to_string())
}

/// A message whose last word is a W3C `traceparent` (the app sends `<job id> <traceparent>`)
/// gets a link from the current span (the Redis trigger's) to that trace. An extra of this host:
/// Spin's trigger never reads a payload, and its components cannot see their own trace context
/// without `--experimental-wasi-otel`, so under Spin the worker's span stands alone. A link, not
/// a parent, as the messaging conventions have it for a consumer.
pub fn link_message(payload: &[u8]) {
    if !enabled() {
        return;
    }
    use opentelemetry::propagation::TextMapPropagator as _;
    use opentelemetry::trace::TraceContextExt as _;
    use tracing_opentelemetry::OpenTelemetrySpanExt as _;
    let Some(last) = std::str::from_utf8(payload)
        .ok()
        .and_then(|text| text.split_whitespace().last())
    else {
        return;
    };
    let carrier = std::collections::HashMap::from([("traceparent".to_string(), last.to_string())]);
    let cx = opentelemetry_sdk::propagation::TraceContextPropagator::new().extract(&carrier);
    let linked = cx.span().span_context().clone();
    if linked.is_valid() {
        tracing::Span::current().add_link(linked);
    }
}

/// `server.address`, `server.port` and `db.namespace` of a database URL on the current span, as
/// Spin's `record_address_fields` (crates/factor-outbound-networking): never the user or the
/// password.
pub fn record_address_fields(address: &str) {
    if !enabled() {
        return;
    }
    let Ok(url) = url::Url::parse(address) else {
        return;
    };
    let span = tracing::Span::current();
    span.record("server.address", url.host_str().unwrap_or_default());
    span.record("server.port", url.port().unwrap_or_default());
    span.record("db.namespace", url.path().trim_start_matches('/'));
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(vars: &[(&str, &str)]) -> anyhow::Result<Option<Config>> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_env(|k| vars.get(k).cloned())
    }

    /// Spin's `otel_tracing_enabled` and `traces_protocol_from_env`.
    #[test]
    fn the_variables_turn_traces_on_as_in_spin() {
        assert_eq!(config(&[]).unwrap(), None);
        assert_eq!(config(&[(OTEL_EXPORTER_OTLP_ENDPOINT, "")]).unwrap(), None);
        let on = config(&[(OTEL_EXPORTER_OTLP_ENDPOINT, "http://127.0.0.1:4318")])
            .unwrap()
            .unwrap();
        assert_eq!(on.protocol, Protocol::HttpProtobuf);
        assert_eq!(
            config(&[
                (OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, "http://127.0.0.1:4317"),
                (OTEL_EXPORTER_OTLP_PROTOCOL, "grpc"),
            ])
            .unwrap()
            .unwrap()
            .protocol,
            Protocol::Grpc
        );
        assert_eq!(
            config(&[
                (OTEL_EXPORTER_OTLP_ENDPOINT, "http://127.0.0.1:4318"),
                (OTEL_SDK_DISABLED, "true"),
            ])
            .unwrap(),
            None
        );
        // The traces-specific protocol wins over the general one.
        assert_eq!(
            config(&[
                (OTEL_EXPORTER_OTLP_ENDPOINT, "http://127.0.0.1:4317"),
                (OTEL_EXPORTER_OTLP_PROTOCOL, "http/protobuf"),
                (OTEL_EXPORTER_OTLP_TRACES_PROTOCOL, "grpc"),
            ])
            .unwrap()
            .unwrap()
            .protocol,
            Protocol::Grpc
        );
    }

    #[test]
    fn bad_settings_are_clear_errors() {
        let e = |vars: &[(&str, &str)]| config(vars).unwrap_err().to_string();
        assert!(e(&[
            (OTEL_EXPORTER_OTLP_ENDPOINT, "http://127.0.0.1:4318"),
            (OTEL_EXPORTER_OTLP_PROTOCOL, "http/json")
        ])
        .contains("not supported"));
        assert!(e(&[
            (OTEL_EXPORTER_OTLP_ENDPOINT, "http://127.0.0.1:4318"),
            (OTEL_EXPORTER_OTLP_PROTOCOL, "thrift")
        ])
        .contains("not an OTLP protocol"));
        assert!(e(&[(OTEL_EXPORTER_OTLP_ENDPOINT, "collector:4318")]).contains("http://"));
        assert!(e(&[(OTEL_EXPORTER_OTLP_ENDPOINT, "https://collector:4318")]).contains("TLS"));
    }
}
