//! Exporting never waits on the collector: spans go through the SDK's batch processor on tokio
//! (as Spin's `traces.rs`), behind a bounded count of spans in flight, and what cannot be
//! queued or sent is dropped and counted. A collector that is down costs one warning at start
//! and a count of dropped spans now and then, never a request's time or unbounded memory.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use opentelemetry::Context;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{
    span_processor_with_async_runtime::BatchSpanProcessor, BatchConfigBuilder, Span, SpanData,
    SpanExporter, SpanProcessor,
};

use super::{Config, MAX_QUEUED_SPANS};

/// How often a growing count of dropped spans is logged.
const REPORT_EVERY: Duration = Duration::from_secs(30);

#[derive(Debug, Default)]
pub struct Stats {
    /// Spans ended and not yet exported or dropped.
    in_flight: AtomicUsize,
    pub exported: AtomicU64,
    /// Dropped because `MAX_QUEUED_SPANS` were already waiting.
    pub dropped_queue_full: AtomicU64,
    /// Dropped because the collector refused them or did not answer.
    pub dropped_export_failed: AtomicU64,
    reported: AtomicU64,
}

impl Stats {
    pub fn dropped(&self) -> u64 {
        self.dropped_queue_full.load(Ordering::Relaxed)
            + self.dropped_export_failed.load(Ordering::Relaxed)
    }

    /// Logs the spans dropped since the last report, if any.
    pub fn report(&self) {
        let dropped = self.dropped();
        let before = self.reported.swap(dropped, Ordering::Relaxed);
        if dropped > before {
            eprintln!(
                "telemetry: {} spans dropped in the last interval ({} in all: {} with the queue \
                 full, {} the collector did not take); requests are not affected",
                dropped - before,
                dropped,
                self.dropped_queue_full.load(Ordering::Relaxed),
                self.dropped_export_failed.load(Ordering::Relaxed),
            );
        }
    }
}

/// The SDK's async-runtime batch processor (what Spin builds), its queue never the one that
/// fills: [`Bounded`] refuses spans first, so every drop is counted here.
pub fn processor<E: SpanExporter + 'static>(exporter: E, stats: Arc<Stats>) -> Bounded {
    let exporter = Counting {
        inner: exporter,
        stats: stats.clone(),
    };
    let inner = BatchSpanProcessor::builder(exporter, opentelemetry_sdk::runtime::Tokio)
        .with_batch_config(
            BatchConfigBuilder::default()
                // Room for the flush and shutdown messages that share the channel.
                .with_max_queue_size(MAX_QUEUED_SPANS + 16)
                .with_max_export_timeout(Duration::from_secs(10))
                .build(),
        )
        .build();
    Bounded { inner, stats }
}

#[derive(Debug)]
pub struct Bounded {
    inner: BatchSpanProcessor<opentelemetry_sdk::runtime::Tokio>,
    stats: Arc<Stats>,
}

impl SpanProcessor for Bounded {
    fn on_start(&self, span: &mut Span, cx: &Context) {
        self.inner.on_start(span, cx);
    }

    fn on_end(&self, span: SpanData) {
        if self.stats.in_flight.fetch_add(1, Ordering::Relaxed) >= MAX_QUEUED_SPANS {
            self.stats.in_flight.fetch_sub(1, Ordering::Relaxed);
            self.stats
                .dropped_queue_full
                .fetch_add(1, Ordering::Relaxed);
            return;
        }
        self.inner.on_end(span);
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn set_resource(&mut self, resource: &opentelemetry_sdk::Resource) {
        self.inner.set_resource(resource);
    }
}

/// The OTLP exporter, counting each batch as exported or dropped.
#[derive(Debug)]
struct Counting<E> {
    inner: E,
    stats: Arc<Stats>,
}

impl<E: SpanExporter> SpanExporter for Counting<E> {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let n = batch.len();
        let result = self.inner.export(batch).await;
        self.stats.in_flight.fetch_sub(n, Ordering::Relaxed);
        let counter = match result {
            Ok(()) => &self.stats.exported,
            Err(_) => &self.stats.dropped_export_failed,
        };
        counter.fetch_add(n as u64, Ordering::Relaxed);
        result
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn set_resource(&mut self, resource: &opentelemetry_sdk::Resource) {
        self.inner.set_resource(resource);
    }
}

/// One warning if the collector cannot be reached at start, then the dropped count every
/// [`REPORT_EVERY`] while it grows.
pub fn start_reporting(config: &Config, stats: Arc<Stats>) -> tokio::task::JoinHandle<()> {
    let target = url::Url::parse(&config.endpoint).ok().and_then(|u| {
        let host = u.host_str()?.trim_matches(['[', ']']).to_string();
        Some((host, u.port_or_known_default()?))
    });
    let endpoint = config.endpoint.clone();
    tokio::spawn(async move {
        if let Some((host, port)) = target {
            let connect = tokio::net::TcpStream::connect((host.as_str(), port));
            match tokio::time::timeout(Duration::from_secs(2), connect).await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => eprintln!(
                    "warning: telemetry: the OTLP collector at {endpoint} is not reachable ({e}); \
                     spans will be dropped and counted until it is"
                ),
                Err(_) => eprintln!(
                    "warning: telemetry: the OTLP collector at {endpoint} did not answer in 2 s; \
                     spans will be dropped and counted until it does"
                ),
            }
        }
        let mut every = tokio::time::interval(REPORT_EVERY);
        every.tick().await;
        loop {
            every.tick().await;
            stats.report();
        }
    })
}
