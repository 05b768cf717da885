//! The Redis trigger, as Spin 4 runs it (`crates/trigger-redis/src/lib.rs`): one subscriber per
//! server address, subscribed to every channel of that address before the app counts as
//! started (an unreachable server fails the start); messages are handled one at a time per
//! subscriber, each by every component on its channel, in a fresh instance.
//!
//! One extra over Spin, which ends `spin up` when a subscription drops: this host reconnects
//! with backoff, so a Redis restart does not end a long-running local server. Nothing in the
//! app depends on it: the sweep re-drives any job whose wake-up was lost.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use futures::StreamExt;

use crate::app::App;

/// Everything subscribed on one server: channel → components.
struct Subscriber {
    address: String,
    channels: BTreeMap<String, Vec<String>>,
}

/// The subscriptions of a running app. Dropping it does not unsubscribe; `shutdown` does.
pub struct RedisTrigger {
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl RedisTrigger {
    /// Connects and subscribes every declared trigger; an error here is a failed start.
    pub async fn start(
        app: &Arc<App>,
        shutdown: tokio::sync::watch::Receiver<bool>,
    ) -> anyhow::Result<Self> {
        let mut by_address: BTreeMap<String, Subscriber> = BTreeMap::new();
        for s in &app.redis_subscriptions {
            by_address
                .entry(s.address.clone())
                .or_insert_with(|| Subscriber {
                    address: s.address.clone(),
                    channels: BTreeMap::new(),
                })
                .channels
                .entry(s.channel.clone())
                .or_default()
                .push(s.component.clone());
        }
        let mut tasks = Vec::new();
        for subscriber in by_address.into_values() {
            let pubsub = subscriber.connect().await?;
            let subscriber = Arc::new(subscriber);
            let app = app.clone();
            let shutdown = shutdown.clone();
            tasks.push(tokio::spawn(async move {
                subscriber.run(app, pubsub, shutdown).await
            }));
        }
        Ok(Self { tasks })
    }

    pub async fn join(self) {
        for t in self.tasks {
            let _ = t.await;
        }
    }
}

impl Subscriber {
    fn server(&self) -> String {
        redis::Client::open(self.address.as_str())
            .map(|c| c.get_connection_info().addr().to_string())
            .unwrap_or_else(|_| self.address.clone())
    }

    async fn connect(&self) -> anyhow::Result<redis::aio::PubSub> {
        let server = self.server();
        let client = redis::Client::open(self.address.as_str())?;
        let mut pubsub = client
            .get_async_pubsub()
            .await
            .with_context(|| format!("Redis trigger failed to connect to {server}"))?;
        for channel in self.channels.keys() {
            pubsub.subscribe(channel).await.with_context(|| {
                format!("Redis trigger failed to subscribe to channel {channel:?} on {server}")
            })?;
        }
        for (channel, components) in &self.channels {
            eprintln!("redis trigger: {server}/{channel}: [{}]", components.join(","));
        }
        Ok(pubsub)
    }

    async fn run(
        self: Arc<Self>,
        app: Arc<App>,
        mut pubsub: redis::aio::PubSub,
        mut shutdown: tokio::sync::watch::Receiver<bool>,
    ) {
        let mut backoff = Duration::from_millis(100);
        loop {
            let listen = async {
                let mut messages = pubsub.on_message();
                // One message at a time, as Spin's subscriber loop awaits each handler.
                while let Some(msg) = messages.next().await {
                    self.handle(&app, msg.get_channel_name(), msg.get_payload_bytes())
                        .await;
                }
            };
            tokio::select! {
                _ = listen => {}
                _ = shutdown.changed() => return,
            }
            eprintln!(
                "redis trigger: disconnected from {}; reconnecting (an extra of this host: Spin would exit)",
                self.server()
            );
            pubsub = loop {
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = shutdown.changed() => return,
                }
                match self.connect().await {
                    Ok(p) => break p,
                    Err(e) => {
                        eprintln!("redis trigger: {e:#}; retrying in {backoff:?}");
                        backoff = (backoff * 2).min(Duration::from_secs(5));
                    }
                }
            };
            backoff = Duration::from_millis(100);
        }
    }

    /// One message, every component on its channel: Spin's span for it
    /// (crates/trigger-redis/src/lib.rs, `Subscriber::handle_message`).
    #[tracing::instrument(name = "spin_trigger_redis.handle_message", skip_all, fields(otel.name = format!("{channel} receive"), otel.kind = "consumer", messaging.operation = "receive", messaging.system = "redis"))]
    async fn handle(&self, app: &Arc<App>, channel: &str, payload: &[u8]) {
        crate::telemetry::link_message(payload);
        let Some(components) = self.channels.get(channel) else {
            return;
        };
        futures::future::join_all(
            components
                .iter()
                .map(|id| handle_message(app, id, channel, payload)),
        )
        .await;
    }
}

async fn handle_message(app: &App, component_id: &str, channel: &str, payload: &[u8]) {
    let component = &app.components[component_id];
    let Some(pre) = component.redis.clone() else {
        return;
    };
    let Ok(_slot) = app.instance_slots.clone().acquire_owned().await else {
        return;
    };
    let metrics = component.caps.metrics.as_deref();
    if let Some(m) = metrics {
        // As Spin's crates/trigger-redis (`dispatch_handler`): counted before instantiating.
        m.count_request(crate::metrics::Trigger::Redis);
    }
    let mut times = crate::metrics::InstanceTimes::start(metrics.is_some());
    let mut store = app.new_store(component);
    let run = async {
        let handler = pre.instantiate_async(&mut store).await?;
        times.instantiated();
        handler
            .fermyon_spin_inbound_redis()
            .call_handle_message(&mut store, &payload.to_vec())
            .await
    };
    let logs = &component.caps.logs;
    let ran = tokio::time::timeout(app.limits.request_timeout, run).await;
    if let Some(m) = metrics {
        times.record(m, crate::metrics::Trigger::Redis, &store);
        let ok = matches!(ran, Ok(Ok(Ok(()))));
        m.record_redis_message(ok);
        // A job id (not `sweep`) on the jobs channel is one cover job run by the worker
        // (docs/observability.md, "Cover job duration").
        if let (Some(app_metrics), Some(elapsed)) = (&app.services.metrics, times.elapsed()) {
            if crate::metrics::is_job_message(payload) {
                app_metrics.record_cover_job(ok, elapsed);
            }
        }
    }
    match ran {
        Ok(Ok(Ok(()))) => {}
        Ok(Ok(Err(e))) => logs.host_error(&format!(
            "message on {channel:?}: handler returned {e:?}"
        )),
        Ok(Err(e)) => logs.host_error(&format!("message on {channel:?} trapped: {e:?}")),
        Err(_) => logs.host_error(&format!("message on {channel:?} ran out of time")),
    }
}
