//! Route group `social`: `/douyin/relation/action/`, `/douyin/relation/follow/list/`,
//! `/douyin/relation/follower/list/`, `/douyin/relation/friend/list/`.

use spin_sdk::http::{IncomingRequest, ResponseOutparam};
use spin_sdk::http_component;
use tikspin_core::social;
use tikspin_spin::http::{serve, Route};

// A fresh instance per request, bounded requests: small allocations need no freeing.
#[global_allocator]
static ALLOCATOR: tikspin_spin::arena::RequestArena = tikspin_spin::arena::RequestArena::new();

#[http_component]
fn social(req: IncomingRequest, out: ResponseOutparam) {
    serve(
        req,
        out,
        &[
            Route::post("/douyin/relation/action", social::relation_action),
            Route::get("/douyin/relation/follow/list", social::follow_list),
            Route::get("/douyin/relation/follower/list", social::follower_list),
            Route::get("/douyin/relation/friend/list", social::friend_list),
        ],
    )
}
