//! Test support shared by the host's integration tests and the end-to-end suite.
//!
//! - [`servers`]: throwaway `redis-server` and MariaDB instances on free loopback ports, started
//!   and stopped (by PID) by the tests themselves.
//! - [`client`]: a small HTTP client that never treats a status code as an error.
//! - [`harness`]: builds the components and the host, starts `tikspin up` on a free port with a
//!   fresh state dir, waits for health, and stops it on drop; or, with `TIKSPIN_BASE_URL` set,
//!   points the tests at that server instead (for example a real `spin up`).
//! - [`otlp`]: an OTLP trace receiver (http/protobuf and gRPC) that decodes what the host exports.
//! - [`api`]: the requests every suite makes alike (envelope checks, registering, multipart).
//! - [`fixtures`]: the test videos (`tests/fixtures`) and a JPEG decoder for their covers.
//! - [`soak`]: the long mixed-load run (`bench/soak`, and a short one in CI).
//! - [`seed`]: the large data set (`bench/seed`) and its counter check.
//! - [`viral`]: one video everybody likes and unlikes at once (`bench/viral`, briefly in CI).

pub mod api;
pub mod client;
pub mod fixtures;
pub mod harness;
pub mod otlp;
pub mod seed;
pub mod servers;
pub mod soak;
pub mod viral;

/// The workspace root (this crate lives in `<root>/tests`).
pub fn workspace_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// A loopback port nobody is listening on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Polls `f` until it returns true or `timeout` passes.
pub fn wait_until(timeout: std::time::Duration, mut f: impl FnMut() -> bool) -> bool {
    let start = std::time::Instant::now();
    while start.elapsed() < timeout {
        if f() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    false
}
