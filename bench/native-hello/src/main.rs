//! Benchmark reference: the native hello-world the host is measured against.
//! `tikspin-bench-native-hello --listen 127.0.0.1:PORT` serves 200 "hello" on every path,
//! HTTP/1.1 with keep-alive, on a multi-threaded tokio runtime (same stack as the host).

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;

fn main() {
    let mut listen: SocketAddr = "127.0.0.1:3001".parse().unwrap();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--listen" => {
                let v = args.next().expect("--listen needs ADDR");
                listen = v.parse().expect("--listen: not an ADDR:PORT");
            }
            other => {
                eprintln!("usage: tikspin-bench-native-hello [--listen ADDR]  (unknown argument {other:?})");
                std::process::exit(2);
            }
        }
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(serve(listen));
}

async fn hello(_: Request<hyper::body::Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let mut r = Response::new(Full::new(Bytes::from_static(b"hello")));
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/plain"),
    );
    Ok(r)
}

async fn serve(listen: SocketAddr) {
    let listener = tokio::net::TcpListener::bind(listen).await.expect("bind");
    println!("Serving http://{}", listener.local_addr().unwrap());
    loop {
        let (stream, _) = tokio::select! {
            a = listener.accept() => match a { Ok(a) => a, Err(_) => continue },
            _ = tokio::signal::ctrl_c() => return,
        };
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            let _ = hyper::server::conn::http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), hyper::service::service_fn(hello))
                .await;
        });
    }
}
