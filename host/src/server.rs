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
}

impl RunningServer {
    pub async fn start(opts: &Options, listen: SocketAddr) -> Result<Self> {
        let app = Arc::new(App::load(opts).await?);
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("cannot listen on {listen}"))?;
        let addr = listener.local_addr()?;
        let (shutdown, rx) = tokio::sync::watch::channel(false);
        // Every Redis trigger is subscribed before the app serves, as Spin starts its triggers.
        let redis = crate::redis_trigger::RedisTrigger::start(&app, rx.clone()).await?;
        let http = tokio::spawn(crate::http_trigger::serve(app.clone(), listener, rx));
        Ok(Self {
            addr,
            app,
            shutdown,
            http,
            redis,
        })
    }

    pub async fn stop(self) -> Result<()> {
        let _ = self.shutdown.send(true);
        self.redis.join().await;
        self.http.await?
    }
}
