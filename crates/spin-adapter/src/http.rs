//! Request in, response out: the one place a Spin request becomes [`Params`] and a [`Reply`]
//! becomes a response. Business errors are HTTP 200 with a non-zero `status_code`; an unknown
//! path is 404 and a wrong method 405 (with the `Allow` header), both with the same JSON
//! envelope (API.md). Which is which comes from the component's table of [`Route`]s.
//!
//! Requests are read and responses written on `wasi:http` directly rather than through
//! spin-sdk's `Request`/`Response`: those build a URI string and parse it back, copy the headers
//! into a map, and poll for a body a GET does not have, which together cost more than an
//! indexed lookup does.

use spin_sdk::http::{
    Fields, IncomingRequest, Method, OutgoingBody, OutgoingResponse, ResponseOutparam,
};
use tikspin_core::api::{ApiError, Empty, Payload};
use tikspin_core::params::normalize_path;
use tikspin_core::{Env, Params, Reply};
use wasi::io::streams::{OutputStream, StreamError};

use crate::config::Settings;
use crate::kv::SpinKv;
use crate::sql::SpinSql;

type Run = Box<dyn Fn(Result<&Env<'_>, ApiError>, &Params) -> Reply>;

/// One endpoint of a component: the path without its trailing slash, its method, and what
/// serves it. A component's table of routes is the one truth about its endpoints: [`resolve`]
/// routes with it, and the `Allow` header of a wrong method's 405 is read off it.
///
/// The handler `H` is a core [`Service`] for [`serve`]; a component that serves some routes its
/// own way (a streamed upload, an async feed) declares its own handler type.
pub struct Route<H = Service> {
    pub path: &'static str,
    pub method: Method,
    handler: H,
}

impl<H> Route<H> {
    pub const fn to(method: Method, path: &'static str, handler: H) -> Self {
        Route {
            path,
            method,
            handler,
        }
    }
}

impl Route {
    pub fn new<P: Payload + 'static>(
        method: Method,
        path: &'static str,
        service: fn(&Env<'_>, &Params) -> Result<P, ApiError>,
    ) -> Self {
        Self::to(method, path, Service::new(service))
    }

    pub fn get<P: Payload + 'static>(
        path: &'static str,
        service: fn(&Env<'_>, &Params) -> Result<P, ApiError>,
    ) -> Self {
        Self::new(Method::Get, path, service)
    }

    pub fn post<P: Payload + 'static>(
        path: &'static str,
        service: fn(&Env<'_>, &Params) -> Result<P, ApiError>,
    ) -> Self {
        Self::new(Method::Post, path, service)
    }
}

/// A core service behind a route. Its payload type fixes the failure shape, so even a storage
/// outage answers register/login with `user_id: 0` and `token: ""`.
pub struct Service {
    run: Run,
}

impl Service {
    pub fn new<P: Payload + 'static>(
        service: fn(&Env<'_>, &Params) -> Result<P, ApiError>,
    ) -> Self {
        let run: Run = Box::new(move |env, params| match env {
            Ok(env) => Reply::from_result(service(env, params)),
            Err(e) => Reply::error::<P>(e),
        });
        Service { run }
    }

    /// Runs the service on a request whose head and (small) body were read already.
    pub fn respond(&self, head: &RequestHead, body: &[u8]) -> JsonResponse {
        let params = head.params(body);
        let mut retry_after = None;
        let reply = match Ports::open(head) {
            Ok(ports) => {
                let env = ports.env();
                // The abuse limits first: a refused request costs no SQL.
                match crate::limits::check_request(head, &env, &params) {
                    Ok(()) => (self.run)(Ok(&env), &params),
                    Err(refused) => {
                        retry_after = refused.retry_after;
                        (self.run)(Err(refused.error), &params)
                    }
                }
            }
            Err(e) => (self.run)(Err(e), &params),
        };
        JsonResponse {
            retry_after,
            ..json(200, reply)
        }
    }
}

/// The handler of the route for `method` on `path`; else the answer: 405 with `Allow` (the
/// methods the table has for that path, in table order) when the path is one of the table's,
/// 404 when it is not.
pub fn resolve<'a, H>(
    method: &Method,
    path: &str,
    routes: &'a [Route<H>],
) -> Result<&'a H, JsonResponse> {
    if let Some(route) = routes
        .iter()
        .find(|r| r.path == path && r.method == *method)
    {
        return Ok(&route.handler);
    }
    match allowed(path, routes) {
        Some(allow) => Err(method_not_allowed(allow)),
        None => Err(not_found()),
    }
}

/// The `Allow` value for `path`: its methods in table order; `None` for a path the table does
/// not have.
fn allowed<H>(path: &str, routes: &[Route<H>]) -> Option<String> {
    let mut methods = routes
        .iter()
        .filter(|r| r.path == path)
        .map(|r| r.method.to_string());
    let first = methods.next()?;
    Some(methods.fold(first, |allow, method| allow + ", " + method.as_str()))
}

/// The request line and headers, read before any body.
pub struct RequestHead {
    pub method: Method,
    /// Without the trailing slash (`/douyin/user/` and `/douyin/user` are one path).
    pub path: String,
    pub query: String,
    /// Lower-case names.
    pub headers: Vec<(String, String)>,
}

impl RequestHead {
    pub fn from_incoming(req: &IncomingRequest) -> Self {
        let path_with_query = req.path_with_query().unwrap_or_else(|| "/".into());
        let (path, query) = path_with_query
            .split_once('?')
            .unwrap_or((&path_with_query, ""));
        let headers = req
            .headers()
            .entries()
            .into_iter()
            .map(|(k, v)| {
                (
                    k.to_ascii_lowercase(),
                    String::from_utf8_lossy(&v).into_owned(),
                )
            })
            .collect();
        Self::new(req.method(), path, query, headers)
    }

    pub(crate) fn new(
        method: Method,
        path: &str,
        query: &str,
        headers: Vec<(String, String)>,
    ) -> Self {
        RequestHead {
            method,
            path: normalize_path(path).to_string(),
            query: query.to_string(),
            headers,
        }
    }

    /// For work with no request (the Redis-triggered worker): no headers, so URLs come from
    /// the `public_base_url` variable alone.
    pub fn background() -> Self {
        Self::new(Method::Other("JOB".into()), "/", "", Vec::new())
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// A header the runtime sets (`spin-*`): its last value. Spin appends its own value after
    /// any the client sent under the same name, so the first one may be forged.
    pub fn runtime_header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The scheme and authority the client used (from `spin-full-url`, else Host), so URLs
    /// handed to a phone on the LAN point where it can reach.
    pub fn base(&self) -> String {
        if let Some((scheme, rest)) = self
            .runtime_header("spin-full-url")
            .and_then(|u| u.split_once("://"))
        {
            let authority = rest.split('/').next().unwrap_or(rest);
            return format!("{scheme}://{authority}");
        }
        format!("http://{}", self.header("host").unwrap_or("localhost"))
    }

    pub fn client_addr(&self) -> &str {
        self.runtime_header("spin-client-addr").unwrap_or_default()
    }

    /// The query string, then a form body (urlencoded or multipart text fields), plus a bearer
    /// token.
    pub fn params(&self, body: &[u8]) -> Params {
        let content_type = self.header("content-type");
        let mut params = Params::from_request(&self.query, content_type, body)
            .with_authorization(self.header("authorization"));
        if let Some(boundary) = content_type.and_then(crate::form::boundary) {
            for (name, value) in crate::form::text_fields(body, &boundary) {
                params.insert(name, value);
            }
        }
        params
    }
}

/// The ports of one request, opened from the component's variables.
pub struct Ports {
    pub settings: Settings,
    pub sql: SpinSql,
    pub kv: SpinKv,
    pub client_addr: String,
}

impl Ports {
    pub fn open(head: &RequestHead) -> Result<Self, ApiError> {
        let settings = Settings::load(&head.base());
        let sql = SpinSql::open(&settings.database_url).map_err(ApiError::internal_because)?;
        let kv = SpinKv::lazy_default();
        Ok(Ports {
            settings,
            sql,
            kv,
            // The real client behind trusted proxies: the login throttle counts against it.
            client_addr: crate::client_ip::client_ip(head)
                .map(|ip| ip.to_string())
                .unwrap_or_default(),
        })
    }

    pub fn env(&self) -> Env<'_> {
        Env {
            sql: &self.sql,
            kv: &self.kv,
            config: &self.settings.core,
            now_ms: tikspin_core::time::now_ms(),
            client_addr: &self.client_addr,
        }
    }
}

/// An HTTP status and the JSON envelope that goes with it.
pub struct JsonResponse {
    pub status: u16,
    pub reply: Reply,
    /// The `Allow` header of a 405 (RFC 9110 §15.5.6).
    pub allow: Option<String>,
    /// The `Retry-After` header (seconds) of an abuse-limit refusal.
    pub retry_after: Option<u64>,
    /// The request's `Accept-Encoding` takes gzip ([`JsonResponse::negotiated`]); a large
    /// enough body then goes out compressed.
    pub accepts_gzip: bool,
}

impl JsonResponse {
    /// Takes the request's `Accept-Encoding` into account ([`crate::encoding`]).
    pub fn negotiated(mut self, head: &RequestHead) -> Self {
        self.accepts_gzip = crate::encoding::accepts_gzip(head.header("accept-encoding"));
        self
    }
}

pub fn json(status: u16, reply: Reply) -> JsonResponse {
    JsonResponse {
        status,
        reply,
        allow: None,
        retry_after: None,
        accepts_gzip: false,
    }
}

pub fn not_found() -> JsonResponse {
    json(404, Reply::error::<Empty>(ApiError::no_such_route()))
}

/// A wrong method, with the methods the target accepts (`"GET"`, `"GET, HEAD"`).
pub fn method_not_allowed(allow: String) -> JsonResponse {
    JsonResponse {
        allow: Some(allow),
        ..json(405, Reply::error::<Empty>(ApiError::method_not_allowed()))
    }
}

/// Serves a route group whose requests are small: reads the head, routes it, reads the body
/// (not for a 404 or 405), runs the service with the Spin-backed ports, and sends the reply.
pub fn serve(req: IncomingRequest, out: ResponseOutparam, routes: &[Route]) {
    let head = RequestHead::from_incoming(&req);
    let response = match resolve(&head.method, &head.path, routes) {
        Ok(service) => match read_body(&head, req) {
            Ok(body) => service.respond(&head, &body),
            Err(e) => json(
                400,
                Reply::error::<Empty>(ApiError::bad_parameter(format!(
                    "could not read the request body: {e}"
                ))),
            ),
        },
        Err(refused) => refused,
    };
    send_json(out, response.negotiated(&head));
}

/// The whole request body. A request with neither `content-length` nor `transfer-encoding`
/// has none in HTTP/1.1 (RFC 9112 §6.3); for GET and HEAD that is taken as read without
/// asking the host, other methods are read (an HTTP/2 body may come without a length).
pub fn read_body(head: &RequestHead, req: IncomingRequest) -> Result<Vec<u8>, String> {
    let declared = head.header("content-length");
    if declared.is_some_and(|n| n.trim() == "0")
        || (declared.is_none()
            && head.header("transfer-encoding").is_none()
            && matches!(head.method, Method::Get | Method::Head))
    {
        return Ok(Vec::new());
    }
    let incoming = req
        .consume()
        .map_err(|()| "the body was taken already".to_string())?;
    let stream = incoming
        .stream()
        .map_err(|()| "the body stream was taken already".to_string())?;
    let mut body = Vec::new();
    loop {
        match stream.blocking_read(READ_CHUNK) {
            Ok(chunk) => body.extend_from_slice(&chunk),
            Err(StreamError::Closed) => return Ok(body),
            Err(StreamError::LastOperationFailed(e)) => return Err(e.to_debug_string()),
        }
    }
}

const READ_CHUNK: u64 = 64 * 1024;

/// The response header every JSON envelope carries with its `status_code` (`0` on success).
pub const STATUS_CODE_HEADER: &str = "tikspin-status-code";

/// Sends a JSON envelope as the response, with its length (no chunked framing) and its
/// `status_code` in [`STATUS_CODE_HEADER`].
pub fn send_json(out: ResponseOutparam, response: JsonResponse) {
    let plain = response.reply.body();
    // A body this large is sent gzipped to a client that takes it, so its representation
    // depends on Accept-Encoding (Vary, RFC 9110 §12.5.5) whichever way it goes out.
    let varies = plain.len() >= crate::encoding::MIN_GZIP_BYTES;
    let gzipped = (varies && response.accepts_gzip)
        .then(|| crate::encoding::gzip(plain))
        .flatten();
    let body = gzipped.as_deref().unwrap_or(plain);
    let mut length = itoa::Buffer::new();
    let mut retry = itoa::Buffer::new();
    let mut code = itoa::Buffer::new();
    let mut headers = vec![
        ("content-type", Reply::CONTENT_TYPE.as_bytes()),
        ("content-length", length.format(body.len()).as_bytes()),
        // The envelope's code where a runtime can see it without reading (or gunzipping) the
        // body: the host's access log and metrics count business errors by it, and so can a
        // proxy in front of real Spin (docs/api-decisions.md, "The status header").
        (
            STATUS_CODE_HEADER,
            code.format(response.reply.status_code()).as_bytes(),
        ),
    ];
    if gzipped.is_some() {
        headers.push(("content-encoding", b"gzip"));
    }
    if varies {
        headers.push(("vary", b"accept-encoding"));
    }
    // `Allow` only on a 405, `Retry-After` only on a limit's refusal.
    if let Some(allow) = response.allow.as_deref() {
        headers.push(("allow", allow.as_bytes()));
    }
    if let Some(secs) = response.retry_after {
        headers.push(("retry-after", retry.format(secs).as_bytes()));
    }
    send(out, response.status, &headers, body);
}

/// Sends a whole response. A client that went away is not an error worth reporting: there is
/// no one left to report it to.
pub fn send(out: ResponseOutparam, status: u16, headers: &[(&str, &[u8])], body: &[u8]) {
    let response = outgoing_response(status, headers);
    let outgoing = response.body().expect("a fresh response has a body");
    out.set(response);
    let stream = outgoing.write().expect("a fresh body has a stream");
    let written = write_all(&stream, body);
    drop(stream);
    if written.is_ok() {
        let _ = OutgoingBody::finish(outgoing, None);
    }
}

/// A response head, for [`send`] or for a body streamed by the caller.
pub fn outgoing_response(status: u16, headers: &[(&str, &[u8])]) -> OutgoingResponse {
    let fields: Vec<(String, Vec<u8>)> = headers
        .iter()
        .map(|(name, value)| ((*name).to_owned(), value.to_vec()))
        .collect();
    let response = OutgoingResponse::new(Fields::from_list(&fields).expect("valid header names"));
    response
        .set_status_code(status)
        .expect("a valid status code");
    response
}

/// The host takes at most this much per `blocking-write-and-flush` (wasi:io/streams).
const WRITE_AND_FLUSH_MAX: usize = 4096;

fn write_all(stream: &OutputStream, mut bytes: &[u8]) -> Result<(), StreamError> {
    if bytes.len() <= WRITE_AND_FLUSH_MAX {
        // The common reply: one call.
        return stream.blocking_write_and_flush(bytes);
    }
    while !bytes.is_empty() {
        let permitted = stream.check_write()? as usize;
        if permitted == 0 {
            stream.subscribe().block();
            continue;
        }
        let (now, rest) = bytes.split_at(permitted.min(bytes.len()));
        stream.write(now)?;
        bytes = rest;
    }
    stream.blocking_flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROUTES: [Route<u8>; 4] = [
        Route::to(Method::Get, "/a", 1),
        Route::to(Method::Post, "/b", 2),
        Route::to(Method::Get, "/c", 3),
        Route::to(Method::Head, "/c", 4),
    ];

    fn refused(method: Method, path: &str) -> JsonResponse {
        match resolve(&method, path, &ROUTES) {
            Ok(h) => panic!("{method} {path} routed to {h}"),
            Err(refused) => refused,
        }
    }

    #[test]
    fn routes_by_path_and_method() {
        assert_eq!(resolve(&Method::Get, "/a", &ROUTES).ok(), Some(&1));
        assert_eq!(resolve(&Method::Post, "/b", &ROUTES).ok(), Some(&2));
        assert_eq!(resolve(&Method::Head, "/c", &ROUTES).ok(), Some(&4));
    }

    #[test]
    fn a_wrong_method_is_405_allowing_the_tables_methods_for_that_path() {
        for (method, path, allow) in [
            (Method::Post, "/a", "GET"),
            (Method::Head, "/a", "GET"),
            (Method::Options, "/b", "POST"),
            (Method::Get, "/b", "POST"),
            (Method::Delete, "/c", "GET, HEAD"),
            (Method::Other("BREW".into()), "/c", "GET, HEAD"),
        ] {
            let r = refused(method.clone(), path);
            assert_eq!(r.status, 405, "{method} {path}");
            assert_eq!(r.allow.as_deref(), Some(allow), "{method} {path}");
            assert_eq!(r.reply.status_code(), tikspin_core::api::METHOD_NOT_ALLOWED);
        }
    }

    #[test]
    fn an_unknown_path_is_404_whatever_the_method() {
        for method in [Method::Get, Method::Post, Method::Options] {
            for path in ["/", "/d", "/a/b", ""] {
                let r = refused(method.clone(), path);
                assert_eq!(r.status, 404, "{method} {path}");
                assert_eq!(r.allow, None, "{method} {path}");
                assert_eq!(r.reply.status_code(), tikspin_core::api::NO_SUCH_ROUTE);
            }
        }
    }

    /// A client that sends its own `spin-client-addr` (or `spin-full-url`) reaches the component
    /// with Spin's value after it: the adapter believes the runtime's.
    #[test]
    fn runtime_headers_are_read_from_their_last_value() {
        let head = RequestHead::new(
            Method::Post,
            "/douyin/user/login/",
            "",
            vec![
                ("spin-client-addr".into(), "10.9.8.7:1".into()),
                ("spin-full-url".into(), "https://evil.example/x".into()),
                ("host".into(), "127.0.0.1:3000".into()),
                ("spin-full-url".into(), "http://127.0.0.1:3000/douyin/user/login/".into()),
                ("spin-client-addr".into(), "127.0.0.1:5555".into()),
            ],
        );
        assert_eq!(head.client_addr(), "127.0.0.1:5555");
        assert_eq!(head.base(), "http://127.0.0.1:3000");
    }
}
