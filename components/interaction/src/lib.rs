//! Route group `interaction`: `/douyin/favorite/action/`, `/douyin/favorite/list/`,
//! `/douyin/comment/action/`, `/douyin/comment/list/`.

use spin_sdk::http::{IncomingRequest, ResponseOutparam};
use spin_sdk::http_component;
use tikspin_core::{comments, favorites, ApiError, Env, Params};
use tikspin_spin::blobs::{BlobStore, Links};
use tikspin_spin::http::{serve, Route};

// A fresh instance per request, bounded requests: small allocations need no freeing.
#[global_allocator]
static ALLOCATOR: tikspin_spin::arena::RequestArena = tikspin_spin::arena::RequestArena::new();

#[http_component]
fn interaction(req: IncomingRequest, out: ResponseOutparam) {
    serve(
        req,
        out,
        &[
            Route::post("/douyin/favorite/action", favorites::favorite_action),
            Route::get("/douyin/favorite/list", favorite_list),
            Route::post("/douyin/comment/action", comments::comment_action),
            Route::get("/douyin/comment/list", comments::comment_list),
        ],
    )
}

fn favorite_list(
    env: &Env<'_>,
    params: &Params,
) -> Result<tikspin_core::videos::VideoList, ApiError> {
    let store = BlobStore::open().map_err(tikspin_core::publish::storage_failed)?;
    favorites::favorite_list(
        env,
        params,
        &Links {
            urls: env.urls(),
            store: &store,
        },
    )
}
