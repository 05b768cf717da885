//! Benchmark: the smallest useful Spin HTTP component. Answers every request with 200 "hello".

use spin_sdk::http::{Request, Response};
use spin_sdk::http_component;

#[http_component]
fn hello(_: Request) -> Response {
    Response::builder()
        .status(200)
        .header("content-type", "text/plain")
        .body("hello")
        .build()
}
