//! Route group `video`: `/douyin/feed/`, `/douyin/publish/action/`, `/douyin/publish/list/`.

mod publish;
mod welcome;

use spin_sdk::http::{IncomingRequest, Method, Response};
use spin_sdk::http_component;
use tikspin_core::{feed, publish as core_publish, ApiError, Env, Params};
use tikspin_spin::http::{handle_head, json, method_not_allowed, RequestHead, Route};

const PUBLISH_ACTION: &str = "/douyin/publish/action";

#[http_component]
async fn video(req: IncomingRequest) -> Response {
    let head = RequestHead::from_incoming(&req);
    if head.path == PUBLISH_ACTION {
        // The upload is streamed: never buffer the body of this route.
        return if head.method == Method::Post { json(200, publish::publish(&head, req).await) } else { method_not_allowed() };
    }
    let body = req.into_body().await.unwrap_or_default();
    handle_head(
        &head,
        &body,
        &[Route::get("/douyin/feed", feed_page), Route::get("/douyin/publish/list", publish_list)],
    )
}

fn feed_page(env: &Env<'_>, params: &Params) -> Result<feed::FeedPage, ApiError> {
    welcome::seed_once(env);
    feed::feed(env, params, &env.urls())
}

fn publish_list(env: &Env<'_>, params: &Params) -> Result<tikspin_core::videos::VideoList, ApiError> {
    core_publish::publish_list(env, params, &env.urls())
}
