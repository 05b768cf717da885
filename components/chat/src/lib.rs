//! Route group `chat`: `/douyin/message/action/`, `/douyin/message/chat/`.

use spin_sdk::http::{IncomingRequest, ResponseOutparam};
use spin_sdk::http_component;
use tikspin_core::chat;
use tikspin_spin::http::{serve, Route};

// A fresh instance per request, bounded requests: small allocations need no freeing.
#[global_allocator]
static ALLOCATOR: tikspin_spin::arena::RequestArena = tikspin_spin::arena::RequestArena::new();

#[http_component]
fn chat(req: IncomingRequest, out: ResponseOutparam) {
    serve(
        req,
        out,
        &[
            Route::post("/douyin/message/action", chat::message_action),
            Route::get("/douyin/message/chat", chat::message_chat),
        ],
    )
}
