//! The HTTP trigger: one fresh instance per request, Spin's routing and `spin-*` headers,
//! streaming bodies both ways, and a 500 for a request whose instance traps or runs out of time.
//!
//! As Spin's (`crates/trigger-http/src/server.rs`): HTTP/1.1 and HTTP/2 (prior knowledge) on
//! one port, no limit on the request body, hyper's own bound on the request head; paths under
//! `/.well-known/spin/` are the runtime's; 404 and 500 have empty bodies. The body and head
//! limits of [`crate::app::Limits`] are opt-in extras (`--max-request-body-mib`,
//! `--max-request-head-kib`).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Result;
use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode};
use http_body_util::{BodyExt, Empty, Full, Limited};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;
use wasmtime_wasi_http::WasiHttpView;

use crate::app::App;
use crate::routes::RouteMatch;

pub const HEALTH_PATH: &str = "/.well-known/spin/health";

pub async fn serve(
    app: Arc<App>,
    listener: TcpListener,
    shutdown: tokio::sync::watch::Receiver<bool>,
) -> Result<()> {
    report_unreachable_routes(&app.router);
    loop {
        let mut stop = shutdown.clone();
        let (stream, client) = tokio::select! {
            accepted = listener.accept() => accepted?,
            _ = stop.changed() => return Ok(()),
        };
        // Spin leaves Nagle's algorithm on for accepted connections (server.rs, `serve_http`
        // and `serve_connection` never call `set_nodelay`); a response whose head and body go
        // out in separate writes then waits for the client's ACK. The fast profile turns it off.
        if app.services.profile == crate::profile::Profile::Fast {
            let _ = stream.set_nodelay(true);
        }
        let app = app.clone();
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req| {
                let app = app.clone();
                // The server span (when traces are on) wraps everything, as Spin's
                // `instrumented_service_fn`.
                let handled = crate::telemetry::http::traced(req, client, move |req| {
                    handle(app, req, client)
                });
                async move { Ok::<_, Infallible>(handled.await) }
            });
            // hyper's own read-buffer cap (~400 KiB, then 431) bounds the head, as in Spin; an
            // opt-in smaller head limit is checked per request in `handle`.
            let _ =
                hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
        });
    }
}

/// Spin starts an app whose routes shadow each other and logs what can never be reached
/// (crates/trigger-http/src/server.rs, `HttpServer::new`); so does this host.
pub fn report_unreachable_routes(router: &crate::routes::Router<String>) {
    let duplicates = router.duplicates();
    if !duplicates.is_empty() {
        eprintln!("error: The following component routes are duplicates and will never be used:");
        for d in duplicates {
            eprintln!(
                "error:   {}: {} (duplicate of {})",
                d.replaced, d.route, d.effective
            );
        }
    }
    if router.contains_reserved_route() {
        eprintln!(
            "error: Routes under {} are handled by the Spin runtime and will never be reached",
            crate::routes::WELL_KNOWN_PREFIX
        );
    }
}

/// A response with no body, as Spin sends its 404 and 500.
fn empty(status: StatusCode) -> Response<HyperOutgoingBody> {
    let mut r = Response::new(Empty::new().map_err(|e| match e {}).boxed_unsync());
    *r.status_mut() = status;
    r
}

fn plain(status: StatusCode, body: &'static str) -> Response<HyperOutgoingBody> {
    let mut r = Response::new(
        Full::new(Bytes::from_static(body.as_bytes()))
            .map_err(|e| match e {})
            .boxed_unsync(),
    );
    *r.status_mut() = status;
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain"),
    );
    r
}

/// One request's context, filled in by [`respond`] as it learns things.
#[derive(Default)]
pub struct RequestContext {
    pub metrics: crate::metrics::HttpRequest,
    /// `x-request-id` of the response and of every log line about the request.
    pub request_id: String,
    /// The access log's line, while the log is on; [`respond`] adds the route and component.
    pub access: Option<crate::access_log::Entry>,
}

async fn handle(
    app: Arc<App>,
    req: Request<Incoming>,
    client: SocketAddr,
) -> Response<HyperOutgoingBody> {
    let trace_id = crate::telemetry::current_trace_id();
    let request_id = crate::access_log::request_id(req.headers(), trace_id.as_deref());
    let access_log = app.access_log.clone();
    let access = access_log
        .as_ref()
        .map(|_| crate::access_log::Entry::start(&req, client, &request_id, trace_id));
    let mut cx = RequestContext {
        request_id,
        access,
        ..RequestContext::default()
    };
    let mut resp = match app.services.metrics.clone() {
        None => respond(app, req, client, &mut cx).await,
        Some(metrics) => {
            cx.metrics = metrics.start_http(req.method(), req.uri().path());
            let resp = respond(app, req, client, &mut cx).await;
            let code = crate::metrics::business::envelope_code(resp.headers());
            metrics.record_http(&cx.metrics, resp.status().as_u16(), code);
            resp
        }
    };
    // Valid ids are token characters, fresh ones hex: always a valid header value.
    if let Ok(id) = HeaderValue::from_str(&cx.request_id) {
        resp.headers_mut()
            .insert(crate::access_log::REQUEST_ID_HEADER, id);
    }
    match (access_log, cx.access) {
        (Some(log), Some(entry)) => {
            crate::access_log::wrap(log, entry, resp).map(|body| body.boxed_unsync())
        }
        _ => resp,
    }
}

async fn respond(
    app: Arc<App>,
    mut req: Request<Incoming>,
    client: SocketAddr,
    cx: &mut RequestContext,
) -> Response<HyperOutgoingBody> {
    let path = req.uri().path().to_string();
    let method_name = req.method().to_string();
    // Spin answers everything under /.well-known/spin/ itself, whatever the routes say:
    // `health`, `info` (the app's name and version, which this host does not keep), else 404.
    if let Some(well_known) = path.strip_prefix(crate::routes::WELL_KNOWN_PREFIX) {
        return match well_known {
            "health" => Response::new(
                Full::new(Bytes::from_static(b"OK"))
                    .map_err(|e| match e {})
                    .boxed_unsync(),
            ),
            _ => empty(StatusCode::NOT_FOUND),
        };
    }
    if app
        .limits
        .max_request_head
        .is_some_and(|limit| head_size(&req) > limit)
    {
        return plain(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "Request Header Fields Too Large",
        );
    }
    let Some((component_id, matched)) = app.router.route(&path) else {
        return empty(StatusCode::NOT_FOUND);
    };
    if let Some(m) = &app.components[component_id].caps.metrics {
        cx.metrics.routed(m, &matched.raw_route);
    }
    if let Some(entry) = cx.access.as_mut() {
        entry.route = Some(matched.raw_route.clone());
        entry.component = Some(component_id.to_string());
    }
    crate::telemetry::http::record_route(&method_name, &matched.raw_route);
    let content_length = req
        .headers()
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    cx.metrics.request_bytes = content_length;
    let body_limit = app.limits.max_request_body;
    if content_length.is_some_and(|n| body_limit.is_some_and(|limit| n > limit)) {
        return plain(StatusCode::PAYLOAD_TOO_LARGE, "Payload Too Large");
    }
    // Spin copies every header value out as UTF-8 before it instantiates anything, and a value
    // that is not fails the request with its 500 (headers.rs, `prepare_request_headers`).
    if req
        .headers()
        .values()
        .any(|v| std::str::from_utf8(v.as_bytes()).is_err())
    {
        return empty(StatusCode::INTERNAL_SERVER_ERROR);
    }
    let component = &app.components[component_id];
    let Some(pre) = component.http.clone() else {
        return empty(StatusCode::INTERNAL_SERVER_ERROR);
    };
    set_spin_headers(&mut req, &matched, client, app.services.profile);

    let Ok(_slot) = app.instance_slots.clone().acquire_owned().await else {
        return plain(StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable");
    };
    let req = req.map(|body| match body_limit {
        // As Spin's `instrumented_service_fn`: the body as it comes, its errors mapped.
        None => body.map_err(wasmtime_wasi_http::Error::from).boxed_unsync(),
        Some(limit) => Limited::new(body, usize::try_from(limit).unwrap_or(usize::MAX))
            .map_err(move |e| {
                if e.is::<http_body_util::LengthLimitError>() {
                    wasmtime_wasi_http::Error::HttpRequestBodySize(Some(limit))
                } else {
                    wasmtime_wasi_http::Error::InternalError(Some(e.to_string()))
                }
            })
            .boxed_unsync(),
    });

    let mut store = app.new_store(component);
    let (sender, receiver) = tokio::sync::oneshot::channel();
    let prepared = (|| -> wasmtime::Result<_> {
        let r = store
            .data_mut()
            .http()
            .new_incoming_request(Scheme::Http, req)?;
        let o = store.data_mut().http().new_response_outparam(sender)?;
        Ok((r, o))
    })();
    let Ok((wasi_req, out)) = prepared else {
        return plain(StatusCode::BAD_REQUEST, "Bad Request");
    };
    let logs = component.caps.logs.clone();
    let timeout = app.limits.request_timeout;
    let report_memory = app.limits.report_instance_memory.then(|| {
        (
            logs.clone(),
            format!("{method_name} {path} [{}]", cx.request_id),
        )
    });
    let metrics = component.caps.metrics.clone();
    let exec_span = crate::telemetry::http::execute_wasm_span(component_id);
    let task = tokio::spawn(tracing::Instrument::instrument(async move {
        let _slot = _slot;
        let mut times = crate::metrics::InstanceTimes::start(metrics.is_some());
        let run = async {
            let proxy = pre.instantiate_async(&mut store).await?;
            times.instantiated();
            proxy
                .wasi_http_incoming_handler()
                .call_handle(&mut store, wasi_req, out)
                .await
        };
        let result = match tokio::time::timeout(timeout, run).await {
            Ok(r) => r,
            Err(_) => Err(wasmtime::Error::msg("the request ran out of time")),
        };
        if let Some(m) = &metrics {
            times.record(m, crate::metrics::Trigger::Http, &store);
        }
        if let Some((logs, what)) = report_memory {
            logs.host_note(&format!(
                "{what}: peak linear memory {} KiB, {} µs in the guest",
                store.data().limits.peak_memory / 1024,
                store.data().guest_time.elapsed.as_micros()
            ));
        }
        result
    }, exec_span));
    match receiver.await {
        Ok(Ok(resp)) => resp,
        Ok(Err(_)) => empty(StatusCode::INTERNAL_SERVER_ERROR),
        Err(_) => {
            // The instance never set a response: it trapped, timed out or returned early.
            let why = match task.await {
                Ok(Ok(())) => "the component returned without setting a response".to_string(),
                Ok(Err(e)) => format!("{e:?}"),
                Err(e) => format!("{e}"),
            };
            crate::telemetry::http::record_error(&why);
            logs.host_error(&format!(
                "request {path} [{id}] failed: {why}",
                id = cx.request_id
            ));
            empty(StatusCode::INTERNAL_SERVER_ERROR)
        }
    }
}

/// The request line and headers as they came over the wire, roughly.
fn head_size<B>(req: &Request<B>) -> usize {
    let line = req.method().as_str().len() + req.uri().to_string().len() + 12;
    line + req
        .headers()
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len() + 4)
        .sum::<usize>()
}

/// Spin's request headers, added after the client's own as Spin adds them
/// (crates/trigger-http/src/headers.rs, `prepare_request_headers`, then `HeaderMap::extend`,
/// which appends): a client-sent `spin-client-addr` is kept and the runtime's value comes after
/// it, so a component must read the *last* value of a `spin-*` header (the app's adapter does).
///
/// The `spin` profile also pays for it as Spin does: every header copied out into owned
/// strings, the map cleared, and every header parsed back in (crates/trigger-http/src/wasi.rs,
/// `prepare_request`); the fast profile appends in place.
fn set_spin_headers(
    req: &mut Request<Incoming>,
    m: &RouteMatch,
    client: SocketAddr,
    profile: crate::profile::Profile,
) {
    let host = req
        .headers()
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    let full_url = format!(
        "http://{host}{}",
        req.uri()
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/")
    );
    let mut runtime: Vec<(String, String)> = vec![
        ("spin-path-info".into(), m.path_info.clone()),
        ("spin-full-url".into(), full_url),
        ("spin-matched-route".into(), m.matched_route.clone()),
        ("spin-base-path".into(), "/".into()),
        ("spin-raw-component-route".into(), m.raw_route.clone()),
        ("spin-component-route".into(), m.component_route.clone()),
        ("spin-client-addr".into(), client.to_string()),
    ];
    runtime.extend(
        m.params
            .iter()
            .map(|(name, value)| (path_match_header(name), value.clone())),
    );
    let headers = req.headers_mut();
    let all = match profile {
        crate::profile::Profile::Spin => {
            // Values are UTF-8 here: `handle` answered any other request with Spin's 500.
            let mut all: Vec<(String, String)> = headers
                .iter()
                .map(|(n, v)| {
                    let value = std::str::from_utf8(v.as_bytes()).unwrap_or_default();
                    (n.to_string(), value.to_string())
                })
                .collect();
            all.extend(runtime);
            headers.clear();
            all
        }
        crate::profile::Profile::Fast => runtime,
    };
    for (name, value) in all {
        if let (Ok(n), Ok(v)) = (
            http::HeaderName::try_from(name),
            HeaderValue::try_from(value),
        ) {
            headers.append(n, v);
        }
    }
}

/// Spin names a capture's header `SPIN_PATH_MATCH_<NAME>` and turns it into a header name by
/// lowercasing and replacing `_` with `-` (crates/trigger-http/src/headers.rs,
/// `compute_default_headers` and `prepare_header_key`).
fn path_match_header(name: &str) -> String {
    format!(
        "spin-path-match-{}",
        name.to_ascii_lowercase().replace('_', "-")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Spin: crates/trigger-http/src/headers.rs, `prepare_header_key`.
    #[test]
    fn path_match_headers_are_named_as_spin_names_them() {
        assert_eq!(path_match_header("id"), "spin-path-match-id");
        assert_eq!(path_match_header("user_id"), "spin-path-match-user-id");
        assert_eq!(path_match_header("userId"), "spin-path-match-userid");
    }
}
