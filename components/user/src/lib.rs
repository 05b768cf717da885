//! Route group `user`: `/douyin/user/register/`, `/douyin/user/login/`, `/douyin/user/`.

use spin_sdk::http::{IncomingRequest, ResponseOutparam};
use spin_sdk::http_component;
use tikspin_core::accounts;
use tikspin_spin::http::{serve, Route};

// A fresh instance per request, bounded requests: small allocations need no freeing.
#[global_allocator]
static ALLOCATOR: tikspin_spin::arena::RequestArena = tikspin_spin::arena::RequestArena::new();

#[http_component]
fn user(req: IncomingRequest, out: ResponseOutparam) {
    serve(
        req,
        out,
        &[
            Route::post("/douyin/user/register", accounts::register),
            Route::post("/douyin/user/login", accounts::login),
            Route::get("/douyin/user", accounts::profile),
        ],
    )
}
