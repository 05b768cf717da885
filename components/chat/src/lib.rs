//! Route group `chat`: `/douyin/message/action/`, `/douyin/message/chat/`.

use spin_sdk::http::{Request, Response};
use spin_sdk::http_component;
use tikspin_core::chat;
use tikspin_spin::http::{handle, Route};

#[http_component]
fn chat(req: Request) -> Response {
    handle(
        req,
        &[
            Route::post("/douyin/message/action", chat::message_action),
            Route::get("/douyin/message/chat", chat::message_chat),
        ],
    )
}
