//! Outbound `wasi:http`: allowed only to the component's `allowed_outbound_hosts`.

use std::future::Future;
use std::sync::Arc;

use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

use crate::outbound::AllowedHosts;

pub struct OutboundHooks {
    allowed: Arc<AllowedHosts>,
}

impl OutboundHooks {
    pub fn new(allowed: Arc<AllowedHosts>) -> Self {
        Self { allowed }
    }
}

type Pending = Box<dyn Future<Output = Result<(), Error>> + Send>;

impl WasiHttpHooks for OutboundHooks {
    fn send_request(
        &mut self,
        mut request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        fut: Pending,
    ) -> Box<dyn Future<Output = Result<(http::Response<WasiBody>, Pending), Error>> + Send> {
        drop(fut);
        let uri = request.uri();
        let allowed = match (uri.scheme_str(), uri.host()) {
            (Some(scheme), Some(host)) => {
                self.allowed
                    .allows(scheme, host.trim_matches(['[', ']']), uri.port_u16())
            }
            _ => false,
        };
        if !allowed {
            return Box::new(async { Err(Error::HttpRequestDenied) });
        }
        // Spin's client span, its context sent on as `traceparent`
        // (crates/factor-outbound-http/src/wasi.rs, `send_request` and `RequestSender::send`).
        let span = crate::telemetry::http::outbound_span(&mut request);
        Box::new(tracing::Instrument::instrument(
            async move {
                use http_body_util::BodyExt;
                let (res, io) = wasmtime_wasi_http::default_send_request(request, options).await?;
                tracing::Span::current().record("http.response.status_code", res.status().as_u16());
                Ok((res.map(BodyExt::boxed_unsync), Box::new(io) as Pending))
            },
            span,
        ))
    }
}
