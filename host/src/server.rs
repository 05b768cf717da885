//! A running app: the HTTP listener, the Redis subscriptions, and a way to stop them.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{Context, Result};

use crate::app::{App, Options};

pub struct RunningServer {
    pub addr: SocketAddr,
    pub app: Arc<App>,
    shutdown: tokio::sync::watch::Sender<bool>,
    http: tokio::task::JoinHandle<Result<()>>,
    redis: crate::redis_trigger::RedisTrigger,
    /// `--metrics-listen`: its address and task.
    pub metrics_addr: Option<SocketAddr>,
    metrics: Option<tokio::task::JoinHandle<Result<()>>>,
    otlp_metrics: Option<tokio::task::JoinHandle<()>>,
}

impl RunningServer {
    pub async fn start(opts: &Options, listen: SocketAddr) -> Result<Self> {
        let app = Arc::new(App::load(opts).await?);
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("cannot listen on {listen}"))?;
        let addr = listener.local_addr()?;
        let metrics_listener = match opts.metrics_listen {
            Some(m) => {
                crate::metrics::listener::check_address(m, addr)?;
                Some(crate::metrics::listener::bind(m).await?)
            }
            None => None,
        };
        let metrics_addr = match &metrics_listener {
            Some(l) => Some(l.local_addr()?),
            None => None,
        };
        let (shutdown, rx) = tokio::sync::watch::channel(false);
        // Every Redis trigger is subscribed before the app serves, as Spin starts its triggers.
        let redis = crate::redis_trigger::RedisTrigger::start(&app, rx.clone()).await?;
        let metrics = match (metrics_listener, &app.services.metrics) {
            (Some(l), Some(m)) => Some(tokio::spawn(crate::metrics::listener::serve(
                m.clone(),
                l,
                rx.clone(),
            ))),
            _ => None,
        };
        let otlp_metrics = match (&opts.metrics_otlp, &app.services.metrics) {
            (Some(config), Some(m)) => {
                Some(crate::metrics::otlp::start(m.clone(), config.clone(), rx.clone()).1)
            }
            _ => None,
        };
        let http = tokio::spawn(crate::http_trigger::serve(app.clone(), listener, rx));
        Ok(Self {
            addr,
            app,
            shutdown,
            http,
            redis,
            metrics_addr,
            metrics,
            otlp_metrics,
        })
    }

    pub async fn stop(self) -> Result<()> {
        let _ = self.shutdown.send(true);
        self.redis.join().await;
        if let Some(m) = self.metrics {
            m.await??;
        }
        // The last export, with what the app did until now.
        if let Some(t) = self.otlp_metrics {
            let _ = t.await;
        }
        self.http.await?
    }
}
