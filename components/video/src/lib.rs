//! Route group `video`: `/douyin/feed/`, `/douyin/publish/action/`, `/douyin/publish/list/`.

mod publish;
mod welcome;

use spin_sdk::http::{IncomingRequest, Method, ResponseOutparam};
use spin_sdk::http_component;
use tikspin_core::{feed, publish as core_publish, ApiError, Env, Params, Reply};
use tikspin_spin::blobs::{BlobStore, Links};
use tikspin_spin::config::var;
use tikspin_spin::http::{
    json, read_body, resolve, send_json, JsonResponse, Ports, RequestHead, Route, Service,
};
use tikspin_spin::jobs;
use tikspin_spin::limits;

/// How a route of this group is served.
enum Endpoint {
    /// Async: a fresh deployment's first feed seeds the welcome video.
    Feed,
    /// The upload is streamed: the body of this route is never buffered.
    Publish,
    Service(Service),
}

#[http_component]
async fn video(req: IncomingRequest, out: ResponseOutparam) {
    send_json(out, answer(req).await);
}

async fn answer(req: IncomingRequest) -> JsonResponse {
    let routes = [
        Route::to(Method::Get, "/douyin/feed", Endpoint::Feed),
        Route::to(Method::Post, "/douyin/publish/action", Endpoint::Publish),
        Route::to(
            Method::Get,
            "/douyin/publish/list",
            Endpoint::Service(Service::new(publish_list)),
        ),
    ];
    let head = RequestHead::from_incoming(&req);
    let endpoint = match resolve(&head.method, &head.path, &routes) {
        Ok(endpoint) => endpoint,
        Err(refused) => return refused,
    };
    // Negotiated here, where the head is: the feed can be large (gzip, encoding.rs).
    let response = match endpoint {
        Endpoint::Publish => publish::publish(&head, req).await,
        Endpoint::Feed => {
            let body = read_body(&head, req).unwrap_or_default();
            feed_page(&head, &head.params(&body)).await
        }
        Endpoint::Service(service) => {
            let body = read_body(&head, req).unwrap_or_default();
            service.respond(&head, &body)
        }
    };
    response.negotiated(&head)
}

async fn feed_page(head: &RequestHead, params: &Params) -> JsonResponse {
    let (ports, store) = match Ports::open(head).and_then(|p| Ok((p, open_store()?))) {
        Ok(opened) => opened,
        Err(e) => return json(200, Reply::error::<feed::FeedPage>(e)),
    };
    if let Err(refused) = limits::check_request(head, &ports.env(), params) {
        return refused.response::<feed::FeedPage>();
    }
    welcome::seed_once(&ports.env()).await;
    // "Now" is taken after seeding, which may have waited for another request's seed.
    let env = ports.env();
    // The feed is what every client polls: it is where stranded cover jobs get noticed.
    jobs::redrive_stranded(&env, &store, &var("redis_address"), &var("jobs_channel")).await;
    json(
        200,
        Reply::from_result(feed::feed(
            &env,
            params,
            &Links {
                urls: env.urls(),
                store: &store,
            },
        )),
    )
}

fn open_store() -> Result<BlobStore, ApiError> {
    BlobStore::open().map_err(core_publish::storage_failed)
}

fn publish_list(
    env: &Env<'_>,
    params: &Params,
) -> Result<tikspin_core::videos::VideoList, ApiError> {
    let store = open_store()?;
    core_publish::publish_list(
        env,
        params,
        &Links {
            urls: env.urls(),
            store: &store,
        },
    )
}
