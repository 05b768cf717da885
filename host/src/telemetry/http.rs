//! The HTTP trigger's spans and W3C trace context, shaped as Spin 4's:
//! `crates/trigger-http/src/instrument.rs` (`http_span!`, `finalize_http_span`),
//! `crates/trigger-http/src/server.rs` (`instrumented_service_fn`, `handle`: the inbound
//! `traceparent` is the parent), `crates/trigger-http/src/wasi.rs` (`execute_wasm`), and
//! `crates/factor-outbound-http/src/wasi.rs` (`send_request`: a client span whose context goes
//! out as `traceparent`).
//!
//! One deliberate difference: Spin records `url.query` and `url.full` as they came, so a token in
//! the query (`/douyin/feed/?token=…`) lands in the trace. Here the value of every parameter
//! whose name says it is a credential is replaced by `REDACTED`, as the OpenTelemetry semantic
//! conventions ask of instrumentations (`url.query`, `url.full`).

use std::future::Future;
use std::net::SocketAddr;

use http::{HeaderMap, HeaderValue, Request, Response};
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator as _};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tracing::field::Empty;
use tracing::Instrument as _;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

/// Runs `handle` inside the request's server span when traces are on; otherwise just runs it.
pub async fn traced<B, R, F, Fut>(req: Request<B>, client: SocketAddr, handle: F) -> Response<R>
where
    F: FnOnce(Request<B>) -> Fut,
    Fut: Future<Output = Response<R>>,
{
    if !super::enabled() {
        return handle(req).await;
    }
    let method = req.method().as_str().to_string();
    let span = tracing::info_span!(
        "spin_trigger_http.handle_http_request",
        otel.kind = "server",
        http.request.method = %method,
        network.peer.address = %client.ip(),
        network.peer.port = %client.port(),
        network.protocol.name = "http",
        url.path = req.uri().path(),
        url.query = redact_query(req.uri().query().unwrap_or("")).as_ref(),
        url.scheme = req.uri().scheme_str().unwrap_or(""),
        client.address = req.headers().get("x-forwarded-for").and_then(|v| v.to_str().ok()),
        error.type = Empty,
        http.response.status_code = Empty,
        http.route = Empty,
        otel.name = %method,
    );
    // A malformed or absent `traceparent` extracts as an empty context: a new trace starts.
    let _ = span.set_parent(extract(req.headers()));
    let response = async {
        tracing::info!("Processing request on path '{}'", req.uri().path());
        let response = handle(req).await;
        tracing::info!(
            "Request finished, sending response with status code {}",
            response.status()
        );
        response
    }
    .instrument(span.clone())
    .await;
    span.record("http.response.status_code", response.status().as_u16());
    response
}

/// The matched manifest route on the current server span (`http.route`, and the span's name
/// `METHOD route`), as Spin's `finalize_http_span` does with its `MatchedRoute`.
pub fn record_route(method: &str, route: &str) {
    if !super::enabled() {
        return;
    }
    use opentelemetry::trace::TraceContextExt as _;
    let span = tracing::Span::current();
    span.record("http.route", route);
    // Renamed on the OpenTelemetry span itself: `tracing-opentelemetry` starts it when it is
    // first entered, after which a recorded `otel.name` no longer renames it.
    span.context()
        .span()
        .update_name(format!("{method} {route}"));
}

/// Why the instance failed, on the current server span (Spin's `instrument_error`).
pub fn record_error(why: &str) {
    if super::enabled() {
        tracing::Span::current().record("error.type", why);
    }
}

/// The span a component's instance runs in (its host calls are its children).
pub fn execute_wasm_span(component_id: &str) -> tracing::Span {
    if !super::enabled() {
        return tracing::Span::none();
    }
    tracing::info_span!(
        "spin_trigger_http.execute_wasm",
        otel.name = format!("execute_wasm_component {component_id}"),
    )
}

/// The client span of one outbound request: opened by [`outbound_span`], the request's
/// `traceparent` set from it, and its status recorded when the response head comes.
pub fn outbound_span<B>(request: &mut Request<B>) -> tracing::Span {
    if !super::enabled() {
        return tracing::Span::none();
    }
    let uri = request.uri();
    let span = tracing::info_span!(
        "spin_outbound_http.send_request",
        otel.kind = "client",
        url.full = redact_url(&uri.to_string()).as_ref(),
        http.request.method = %request.method(),
        otel.name = %request.method(),
        http.response.status_code = Empty,
        server.address = Empty,
        server.port = Empty,
    );
    if let Some(authority) = uri.authority() {
        span.record("server.address", authority.host());
        if let Some(port) = authority.port_u16() {
            span.record("server.port", port);
        }
    }
    inject(&span.context(), request.headers_mut());
    span
}

fn extract(headers: &HeaderMap) -> opentelemetry::Context {
    TraceContextPropagator::new().extract(&HeaderExtractor(headers))
}

fn inject(cx: &opentelemetry::Context, headers: &mut HeaderMap) {
    TraceContextPropagator::new().inject_context(cx, &mut HeaderInjector(headers));
}

struct HeaderExtractor<'a>(&'a HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}

struct HeaderInjector<'a>(&'a mut HeaderMap);

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(name), Ok(value)) = (
            http::HeaderName::from_bytes(key.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            self.0.insert(name, value);
        }
    }
}

/// Whether a query parameter's value is a credential: the app's `token`, and the names the
/// semantic conventions list (`AWSAccessKeyId`, `Signature`, `sig`, `X-Goog-Signature`), with
/// SigV4's presigned ones.
fn is_secret_param(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    name == "sig"
        || [
            "token",
            "signature",
            "secret",
            "password",
            "credential",
            "accesskey",
        ]
        .iter()
        .any(|word| name.contains(word))
}

/// The query with every credential's value replaced by `REDACTED`; untouched (and not copied)
/// when it has none.
pub fn redact_query(query: &str) -> std::borrow::Cow<'_, str> {
    let secret = |pair: &str| is_secret_param(pair.split('=').next().unwrap_or(""));
    if !query.split('&').any(secret) {
        return query.into();
    }
    query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((name, _)) if secret(pair) => format!("{name}=REDACTED"),
            _ => pair.to_string(),
        })
        .collect::<Vec<_>>()
        .join("&")
        .into()
}

fn redact_url(url: &str) -> std::borrow::Cow<'_, str> {
    match url.split_once('?') {
        Some((base, query)) => match redact_query(query) {
            std::borrow::Cow::Borrowed(_) => url.into(),
            std::borrow::Cow::Owned(q) => format!("{base}?{q}").into(),
        },
        None => url.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_in_queries_are_redacted() {
        assert_eq!(redact_query(""), "");
        assert_eq!(redact_query("latest_time=5"), "latest_time=5");
        assert_eq!(
            redact_query("token=eyJ.a.b&latest_time=5"),
            "token=REDACTED&latest_time=5"
        );
        assert_eq!(
            redact_query("X-Amz-Credential=AK%2F1&X-Amz-Signature=abc&partNumber=1"),
            "X-Amz-Credential=REDACTED&X-Amz-Signature=REDACTED&partNumber=1"
        );
        assert_eq!(redact_query("sig=1&signal=2"), "sig=REDACTED&signal=2");
        assert_eq!(
            redact_url("http://h:9/b/k?uploadId=7&X-Amz-Security-Token=s"),
            "http://h:9/b/k?uploadId=7&X-Amz-Security-Token=REDACTED"
        );
        assert_eq!(redact_url("http://h/p"), "http://h/p");
    }

    /// A malformed `traceparent` is ignored: the extracted context has no span, so the server
    /// span starts a trace of its own.
    #[test]
    fn malformed_traceparent_is_ignored() {
        use opentelemetry::trace::TraceContextExt as _;
        let mut headers = HeaderMap::new();
        for bad in [
            "garbage",
            "00-00000000000000000000000000000000-0000000000000000-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "zz-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ] {
            headers.insert("traceparent", HeaderValue::from_static(bad));
            assert!(!extract(&headers).span().span_context().is_valid(), "{bad}");
        }
        headers.insert(
            "traceparent",
            HeaderValue::from_static("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
        );
        let cx = extract(&headers);
        assert_eq!(
            cx.span().span_context().trace_id().to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
    }
}
