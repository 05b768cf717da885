//! Outbound `wasi:http`: allowed only to the component's `allowed_outbound_hosts`.

use std::future::Future;
use std::sync::Arc;

use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

use crate::outbound::AllowedHosts;

pub struct OutboundHooks {
    pub(crate) allowed: Arc<AllowedHosts>,
    /// The component's series, when metrics are on.
    pub metrics: Option<Arc<crate::metrics::ComponentMetrics>>,
}

impl OutboundHooks {
    pub fn new(allowed: Arc<AllowedHosts>) -> Self {
        Self {
            allowed,
            metrics: None,
        }
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
        let metered = self.metrics.clone().map(|m| {
            let host = request.uri().host().unwrap_or_default().to_string();
            (m, host, std::time::Instant::now())
        });
        Box::new(tracing::Instrument::instrument(
            async move {
                use http_body_util::BodyExt;
                let sent = wasmtime_wasi_http::default_send_request(request, options).await;
                if let Some((m, host, start)) = metered {
                    let status = sent.as_ref().map_or(0, |(res, _)| res.status().as_u16());
                    m.record_outbound(&host, status, start.elapsed());
                }
                let (res, io) = sent?;
                tracing::Span::current().record("http.response.status_code", res.status().as_u16());
                Ok((res.map(BodyExt::boxed_unsync), Box::new(io) as Pending))
            },
            span,
        ))
    }
}
