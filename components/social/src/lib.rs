//! Route group `social`: `/douyin/relation/action/`, `/douyin/relation/follow/list/`,
//! `/douyin/relation/follower/list/`, `/douyin/relation/friend/list/`.

use spin_sdk::http::{Request, Response};
use spin_sdk::http_component;
use tikspin_core::social;
use tikspin_spin::http::{handle, Route};

#[http_component]
fn social(req: Request) -> Response {
    handle(
        req,
        &[
            Route::post("/douyin/relation/action", social::relation_action),
            Route::get("/douyin/relation/follow/list", social::follow_list),
            Route::get("/douyin/relation/follower/list", social::follower_list),
            Route::get("/douyin/relation/friend/list", social::friend_list),
        ],
    )
}
