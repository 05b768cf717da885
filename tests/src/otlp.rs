//! A real OTLP trace receiver for the tests: `POST /v1/traces` (http/protobuf) and the gRPC
//! `TraceService/Export` (h2c) on one loopback port, decoding every `ExportTraceServiceRequest`
//! with `opentelemetry-proto`'s own messages. Any other request is recorded with its headers
//! (so a test can point an outbound HTTP client here and see the `traceparent` it sent) and
//! answered 502.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Buf, Bytes};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use prost::Message;

/// One received span, flattened.
#[derive(Debug, Clone)]
pub struct SpanRecord {
    pub trace_id: String,
    pub span_id: String,
    /// Empty for a root span.
    pub parent_span_id: String,
    pub name: String,
    /// `SPAN_KIND_SERVER`, `SPAN_KIND_CLIENT`, …
    pub kind: String,
    pub attributes: BTreeMap<String, String>,
    /// `(trace id, span id)` of each link.
    pub links: Vec<(String, String)>,
    /// The resource's `service.name`.
    pub service_name: String,
    /// `http/protobuf` or `grpc`: how it came.
    pub protocol: &'static str,
}

impl SpanRecord {
    pub fn attr(&self, key: &str) -> Option<&str> {
        self.attributes.get(key).map(String::as_str)
    }
}

/// A request that was not an export.
#[derive(Debug, Clone)]
pub struct OtherRequest {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
}

#[derive(Default)]
struct Received {
    /// Keep the spans (tests), or only count them (the benchmark's sink, which would otherwise
    /// hold every span of a run).
    keep: bool,
    count: u64,
    spans: Vec<SpanRecord>,
    other: Vec<OtherRequest>,
}

pub struct OtlpReceiver {
    pub addr: SocketAddr,
    received: Arc<Mutex<Received>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl OtlpReceiver {
    pub fn start() -> Self {
        Self::start_on("127.0.0.1:0", true)
    }

    /// A receiver that counts spans and keeps none (`bench/run.sh telemetry`).
    pub fn start_counting(addr: &str) -> Self {
        Self::start_on(addr, false)
    }

    fn start_on(addr: &str, keep: bool) -> Self {
        let listener = std::net::TcpListener::bind(addr).expect("bind the receiver");
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let received = Arc::new(Mutex::new(Received {
            keep,
            ..Received::default()
        }));
        let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
        let shared = received.clone();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                loop {
                    let (stream, _) = tokio::select! {
                        a = listener.accept() => match a { Ok(a) => a, Err(_) => continue },
                        _ = &mut stopped => return,
                    };
                    let shared = shared.clone();
                    tokio::spawn(async move {
                        let svc = hyper::service::service_fn(move |req| {
                            let shared = shared.clone();
                            async move { Ok::<_, Infallible>(serve(req, &shared).await) }
                        });
                        let _ = hyper_util::server::conn::auto::Builder::new(
                            hyper_util::rt::TokioExecutor::new(),
                        )
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                        .await;
                    });
                }
            });
        });
        Self {
            addr,
            received,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// The base URL to give as `OTEL_EXPORTER_OTLP_ENDPOINT`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn spans(&self) -> Vec<SpanRecord> {
        self.received.lock().unwrap().spans.clone()
    }

    /// Spans received so far, kept or not.
    pub fn count(&self) -> u64 {
        self.received.lock().unwrap().count
    }

    pub fn other_requests(&self) -> Vec<OtherRequest> {
        self.received.lock().unwrap().other.clone()
    }

    /// The spans of one trace, once `done` says they are all there (or `None` after `timeout`).
    pub fn wait_for_trace(
        &self,
        trace_id: &str,
        timeout: Duration,
        done: impl Fn(&[SpanRecord]) -> bool,
    ) -> Option<Vec<SpanRecord>> {
        let mut found = None;
        crate::wait_until(timeout, || {
            let spans: Vec<SpanRecord> = self
                .spans()
                .into_iter()
                .filter(|s| s.trace_id == trace_id)
                .collect();
            let ok = done(&spans);
            if ok {
                found = Some(spans);
            }
            ok
        });
        found
    }
}

impl Drop for OtlpReceiver {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

const GRPC_EXPORT: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";

type Body = BoxBody<Bytes, Infallible>;

async fn serve(req: Request<Incoming>, received: &Mutex<Received>) -> Response<Body> {
    let path = req.uri().path().to_string();
    let method = req.method().to_string();
    let headers: Vec<(String, String)> = req
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let body = match req.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return status(400),
    };
    match (method.as_str(), path.as_str()) {
        ("POST", "/v1/traces") => match ExportTraceServiceRequest::decode(body) {
            Ok(export) => {
                record(received, export, "http/protobuf");
                // An empty ExportTraceServiceResponse.
                let mut r = Response::new(Full::new(Bytes::new()).boxed());
                r.headers_mut()
                    .insert("content-type", "application/x-protobuf".parse().unwrap());
                r
            }
            Err(_) => status(400),
        },
        ("POST", GRPC_EXPORT) => {
            // One length-prefixed message: a compression flag (0) and a big-endian length.
            let mut frame = body;
            if frame.len() < 5 || frame[0] != 0 {
                return status(400);
            }
            frame.advance(1);
            let len = frame.get_u32() as usize;
            match ExportTraceServiceRequest::decode(frame.slice(..len.min(frame.len()))) {
                Ok(export) => {
                    record(received, export, "grpc");
                    grpc_ok()
                }
                Err(_) => status(400),
            }
        }
        _ => {
            received.lock().unwrap().other.push(OtherRequest {
                method,
                path,
                headers,
            });
            status(502)
        }
    }
}

fn status(code: u16) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::new()).boxed());
    *r.status_mut() = hyper::StatusCode::from_u16(code).unwrap();
    r
}

/// gRPC success: an empty `ExportTraceServiceResponse`, then `grpc-status: 0` in the trailers.
fn grpc_ok() -> Response<Body> {
    let mut trailers = hyper::HeaderMap::new();
    trailers.insert("grpc-status", "0".parse().unwrap());
    let body = Full::new(Bytes::from_static(&[0, 0, 0, 0, 0]))
        .with_trailers(async move { Some(Ok(trailers)) })
        .boxed();
    let mut r = Response::new(body);
    r.headers_mut()
        .insert("content-type", "application/grpc".parse().unwrap());
    r
}

fn record(received: &Mutex<Received>, export: ExportTraceServiceRequest, protocol: &'static str) {
    let mut out = received.lock().unwrap();
    if !out.keep {
        let n: usize = export
            .resource_spans
            .iter()
            .flat_map(|rs| &rs.scope_spans)
            .map(|ss| ss.spans.len())
            .sum();
        out.count += n as u64;
        return;
    }
    for rs in export.resource_spans {
        let service_name = rs
            .resource
            .as_ref()
            .and_then(|r| r.attributes.iter().find(|kv| kv.key == "service.name"))
            .map(value_text)
            .unwrap_or_default();
        for ss in rs.scope_spans {
            for s in ss.spans {
                let kind = opentelemetry_proto::tonic::trace::v1::span::SpanKind::try_from(s.kind)
                    .map(|k| k.as_str_name().to_string())
                    .unwrap_or_else(|_| s.kind.to_string());
                out.count += 1;
                out.spans.push(SpanRecord {
                    trace_id: hex(&s.trace_id),
                    span_id: hex(&s.span_id),
                    parent_span_id: hex(&s.parent_span_id),
                    name: s.name,
                    kind,
                    attributes: s
                        .attributes
                        .iter()
                        .map(|kv| (kv.key.clone(), value_text(kv)))
                        .collect(),
                    links: s
                        .links
                        .iter()
                        .map(|l| (hex(&l.trace_id), hex(&l.span_id)))
                        .collect(),
                    service_name: service_name.clone(),
                    protocol,
                });
            }
        }
    }
}

fn value_text(kv: &KeyValue) -> String {
    match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
        Some(AnyValue::StringValue(s)) => s.clone(),
        Some(AnyValue::IntValue(n)) => n.to_string(),
        Some(AnyValue::BoolValue(b)) => b.to_string(),
        Some(AnyValue::DoubleValue(f)) => f.to_string(),
        Some(other) => format!("{other:?}"),
        None => String::new(),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
