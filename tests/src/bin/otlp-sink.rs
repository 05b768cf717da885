//! A throwaway OTLP collector for `bench/run.sh telemetry`: the harness's receiver in counting
//! mode (http/protobuf and gRPC on one port), printing `Serving http://ADDR` when ready and the
//! spans it took when stopped (SIGTERM or Ctrl-C).

use tikspin_e2e::otlp::OtlpReceiver;

fn main() {
    let listen = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:0".to_string());
    let receiver = OtlpReceiver::start_counting(&listen);
    println!("Serving {}", receiver.endpoint());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).unwrap();
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    });
    println!("otlp-sink: {} spans received", receiver.count());
}
