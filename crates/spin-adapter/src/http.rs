//! Request in, response out: the one place a Spin request becomes [`Params`] and a [`Reply`]
//! becomes a response. Business errors are HTTP 200 with a non-zero `status_code`; an unknown
//! path is 404 and a wrong method 405, both with the same JSON envelope (API.md).

use spin_sdk::http::{IncomingRequest, Method, Request, Response};
use tikspin_core::api::{ApiError, Empty, Payload};
use tikspin_core::params::normalize_path;
use tikspin_core::{Env, Params, Reply};

use crate::config::Settings;
use crate::kv::SpinKv;
use crate::sql::SpinSql;

type Run = Box<dyn Fn(Result<&Env<'_>, ApiError>, &Params) -> Reply>;

/// One endpoint of a component: the path without its trailing slash, its method, and the core
/// service behind it. The service's payload type fixes the failure shape, so even a storage
/// outage answers register/login with `user_id: 0` and `token: ""`.
pub struct Route {
    pub path: &'static str,
    pub method: Method,
    run: Run,
}

impl Route {
    pub fn new<P: Payload + 'static>(
        method: Method,
        path: &'static str,
        service: fn(&Env<'_>, &Params) -> Result<P, ApiError>,
    ) -> Self {
        let run: Run = Box::new(move |env, params| match env {
            Ok(env) => Reply::from_result(service(env, params)),
            Err(e) => Reply::error::<P>(e),
        });
        Route { path, method, run }
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
    pub fn from_request(req: &Request) -> Self {
        Self::new(
            req.method().clone(),
            req.path(),
            req.query(),
            req.headers()
                .map(|(k, v)| (k.to_ascii_lowercase(), v.as_str().unwrap_or("").to_string()))
                .collect(),
        )
    }

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

    fn new(method: Method, path: &str, query: &str, headers: Vec<(String, String)>) -> Self {
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

    /// The scheme and authority the client used (from `spin-full-url`, else Host), so URLs
    /// handed to a phone on the LAN point where it can reach.
    pub fn base(&self) -> String {
        if let Some((scheme, rest)) = self
            .header("spin-full-url")
            .and_then(|u| u.split_once("://"))
        {
            let authority = rest.split('/').next().unwrap_or(rest);
            return format!("{scheme}://{authority}");
        }
        format!("http://{}", self.header("host").unwrap_or("localhost"))
    }

    pub fn client_addr(&self) -> &str {
        self.header("spin-client-addr").unwrap_or_default()
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
            client_addr: head.client_addr().to_string(),
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

pub fn json(http_status: u16, reply: Reply) -> Response {
    Response::builder()
        .status(http_status)
        .header("content-type", Reply::CONTENT_TYPE)
        .body(reply.into_body())
        .build()
}

pub fn not_found() -> Response {
    json(404, Reply::error::<Empty>(ApiError::no_such_route()))
}

pub fn method_not_allowed() -> Response {
    json(405, Reply::error::<Empty>(ApiError::method_not_allowed()))
}

/// Routes a buffered request to its service with the Spin-backed ports.
pub fn handle(req: Request, routes: &[Route]) -> Response {
    let head = RequestHead::from_request(&req);
    handle_head(&head, req.body(), routes)
}

/// Routes a request whose head and (small) body were read already.
pub fn handle_head(head: &RequestHead, body: &[u8], routes: &[Route]) -> Response {
    let Some(route) = find(head, routes) else {
        return if routes.iter().any(|r| r.path == head.path) {
            method_not_allowed()
        } else {
            not_found()
        };
    };
    let params = head.params(body);
    let reply = match Ports::open(head) {
        Ok(ports) => (route.run)(Ok(&ports.env()), &params),
        Err(e) => (route.run)(Err(e), &params),
    };
    json(200, reply)
}

fn find<'a>(head: &RequestHead, routes: &'a [Route]) -> Option<&'a Route> {
    routes
        .iter()
        .find(|r| r.path == head.path && r.method == head.method)
}
