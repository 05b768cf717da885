//! The Redis trigger: subscribe to each `[[trigger.redis]]` channel and run the component's
//! `fermyon:spin/inbound-redis` handler in a fresh instance per message. Unlike Spin, which
//! exits when its subscription drops, this host reconnects with backoff.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;

use crate::app::{App, RedisSubscription};

pub fn spawn_all(app: &Arc<App>, shutdown: tokio::sync::watch::Receiver<bool>) {
    for i in 0..app.redis_subscriptions.len() {
        let app = app.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move { subscribe_forever(app, i, shutdown).await });
    }
}

async fn subscribe_forever(
    app: Arc<App>,
    index: usize,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let sub: &RedisSubscription = &app.redis_subscriptions[index];
    let logs = app.components[&sub.component].caps.logs.clone();
    let mut backoff = Duration::from_millis(100);
    loop {
        let session = async {
            let client = redis::Client::open(sub.address.as_str())?;
            let mut pubsub = client.get_async_pubsub().await?;
            pubsub.subscribe(&sub.channel).await?;
            eprintln!(
                "redis trigger: {} subscribed to {:?}",
                sub.component, sub.channel
            );
            let mut messages = pubsub.on_message();
            while let Some(msg) = messages.next().await {
                let payload = msg.get_payload_bytes().to_vec();
                let app = app.clone();
                tokio::spawn(async move { handle_message(app, index, payload).await });
            }
            Ok::<_, redis::RedisError>(())
        };
        let outcome = tokio::select! {
            r = session => r,
            _ = shutdown.changed() => return,
        };
        match outcome {
            Ok(()) => {
                logs.host_error(&format!(
                    "redis subscription to {:?} closed; reconnecting",
                    sub.channel
                ));
                backoff = Duration::from_millis(100);
            }
            Err(e) => {
                logs.host_error(&format!(
                    "redis subscription to {:?} failed: {e}; retrying in {backoff:?}",
                    sub.channel
                ));
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = shutdown.changed() => return,
        }
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

async fn handle_message(app: Arc<App>, index: usize, payload: Vec<u8>) {
    let sub = &app.redis_subscriptions[index];
    let component = &app.components[&sub.component];
    let Some(pre) = component.redis.clone() else {
        return;
    };
    let Ok(_slot) = app.instance_slots.clone().acquire_owned().await else {
        return;
    };
    let mut store = app.new_store(component);
    let run = async {
        let handler = pre.instantiate_async(&mut store).await?;
        handler
            .fermyon_spin_inbound_redis()
            .call_handle_message(&mut store, &payload)
            .await
    };
    match tokio::time::timeout(app.limits.request_timeout, run).await {
        Ok(Ok(Ok(()))) => {}
        Ok(Ok(Err(e))) => component.caps.logs.host_error(&format!(
            "message on {:?}: handler returned {e:?}",
            sub.channel
        )),
        Ok(Err(e)) => component
            .caps
            .logs
            .host_error(&format!("message on {:?} trapped: {e:?}", sub.channel)),
        Err(_) => component
            .caps
            .logs
            .host_error(&format!("message on {:?} ran out of time", sub.channel)),
    }
}
