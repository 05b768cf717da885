//! Route group `video`: `/douyin/feed/`, `/douyin/publish/action/`, `/douyin/publish/list/`.

mod publish;
mod welcome;

use spin_sdk::http::{IncomingRequest, Method, ResponseOutparam};
use spin_sdk::http_component;
use tikspin_core::{feed, publish as core_publish, ApiError, Env, Params, Reply};
use tikspin_spin::blobs::{BlobStore, Links};
use tikspin_spin::http::{
    handle_head, json, method_not_allowed, read_body, send_json, JsonResponse, Ports, RequestHead,
    Route,
};

const PUBLISH_ACTION: &str = "/douyin/publish/action";
const FEED: &str = "/douyin/feed";

#[http_component]
async fn video(req: IncomingRequest, out: ResponseOutparam) {
    send_json(out, route(req).await);
}

async fn route(req: IncomingRequest) -> JsonResponse {
    let head = RequestHead::from_incoming(&req);
    if head.path == PUBLISH_ACTION {
        // The upload is streamed: never buffer the body of this route.
        return if head.method == Method::Post {
            json(200, publish::publish(&head, req).await)
        } else {
            method_not_allowed()
        };
    }
    let body = read_body(&head, req).unwrap_or_default();
    if head.path == FEED && head.method == Method::Get {
        // Async because a fresh deployment's first feed seeds the welcome video.
        return json(200, feed_page(&head, &head.params(&body)).await);
    }
    handle_head(
        &head,
        &body,
        &[Route::get("/douyin/publish/list", publish_list)],
    )
}

async fn feed_page(head: &RequestHead, params: &Params) -> Reply {
    let (ports, store) = match Ports::open(head).and_then(|p| Ok((p, open_store()?))) {
        Ok(opened) => opened,
        Err(e) => return Reply::error::<feed::FeedPage>(e),
    };
    welcome::seed_once(&ports.env()).await;
    // "Now" is taken after seeding, which may have waited for another request's seed.
    let env = ports.env();
    Reply::from_result(feed::feed(
        &env,
        params,
        &Links {
            urls: env.urls(),
            store: &store,
        },
    ))
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
