//! The request id of every response (`x-request-id`) and the access log: one JSON line per
//! request, on the console (unless `--quiet`) and in `<state-dir>/logs/access.log`, rotated by
//! size. An extra of this host: Spin 4 writes no access log and adds no request id
//! (crates/trigger-http/src/server.rs logs nothing per request but its trace events).
//!
//! The request path only fills an [`Entry`] and hands it to a bounded channel with `try_send`;
//! a thread of its own formats and writes it. A full channel (a disk or console slower than the
//! traffic) drops the line and counts it, and the writer reports the count: the log never makes
//! a request wait.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use anyhow::{Context, Result};
use http::HeaderMap;
use serde::Serialize;

/// The request header a caller's id comes in, and the response header every answer carries.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// The longest inbound request id kept (bytes). Longer ones are replaced.
pub const MAX_REQUEST_ID_LEN: usize = 128;

/// An inbound id is kept when it is 1 to [`MAX_REQUEST_ID_LEN`] bytes of RFC 9110 token
/// characters (`tchar`) plus `/`, `=` and `:` (so UUIDs, base64 and `Root=…`-free vendor ids
/// pass). Anything else (spaces, quotes, control characters, non-ASCII) is replaced: it would
/// otherwise be echoed into logs and into a header verbatim.
pub fn valid_request_id(id: &[u8]) -> bool {
    (1..=MAX_REQUEST_ID_LEN).contains(&id.len())
        && id
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~/=:".contains(&b))
}

/// The id of this request: the caller's first `x-request-id` when it is sane, else the trace
/// id when a trace is being recorded (so the log line and the trace are found by one id), else
/// a fresh random one (128 bits as 32 hex digits, the shape of a trace id).
/// `trace_id` is [`crate::telemetry::current_trace_id`], read once by the caller.
pub fn request_id(headers: &HeaderMap, trace_id: Option<&str>) -> String {
    if let Some(inbound) = headers.get(REQUEST_ID_HEADER) {
        if valid_request_id(inbound.as_bytes()) {
            // Valid bytes are ASCII, so this is the same text.
            return String::from_utf8_lossy(inbound.as_bytes()).into_owned();
        }
    }
    if let Some(trace) = trace_id {
        return trace.to_string();
    }
    format!("{:032x}", rand::random::<u128>())
}

/// `--access-log` and its rotation.
#[derive(Clone, Debug)]
pub struct Config {
    pub enabled: bool,
    /// Echo each line on stdout (off with `--quiet`).
    pub console: bool,
    /// `access.log` is rotated when the next line would take it past this size.
    pub max_bytes: u64,
    /// Rotated files kept (`access.log.1` is the newest); 0 keeps none.
    pub keep: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            enabled: true,
            console: true,
            max_bytes: 64 << 20,
            keep: 4,
        }
    }
}

/// Lines waiting for the writer; past this, lines are dropped (and counted).
const QUEUE: usize = 8192;

/// What the request path knows of one request; the writer turns it into a JSON line.
#[derive(Serialize)]
pub struct Entry {
    #[serde(serialize_with = "rfc3339")]
    pub time: SystemTime,
    pub request_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trace_id: Option<String>,
    pub method: String,
    /// The path alone: the query carries the token (`/douyin/feed/?token=…`).
    pub path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub route: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub component: Option<String>,
    pub status: u16,
    /// The envelope's `status_code` (the `tikspin-status-code` header) when it is not 0.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_code: Option<i64>,
    pub duration_ms: f64,
    /// The request's declared `content-length` (absent for a chunked or empty body).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes_in: Option<u64>,
    /// Response body bytes sent.
    pub bytes_out: u64,
    pub client: String,
    /// The response body ended early (the client went away or the component failed mid-body).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub incomplete: bool,
    #[serde(skip)]
    pub start: Option<Instant>,
}

fn rfc3339<S: serde::Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
    let t: chrono::DateTime<chrono::Utc> = (*t).into();
    s.serialize_str(&t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
}

impl Entry {
    /// What is known before the request is handled.
    pub fn start<B>(
        req: &http::Request<B>,
        client: std::net::SocketAddr,
        request_id: &str,
        trace_id: Option<String>,
    ) -> Self {
        Entry {
            time: SystemTime::now(),
            request_id: request_id.to_string(),
            trace_id,
            method: req.method().as_str().to_string(),
            path: req.uri().path().to_string(),
            route: None,
            component: None,
            status: 0,
            status_code: None,
            duration_ms: 0.0,
            bytes_in: req
                .headers()
                .get(http::header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse().ok()),
            bytes_out: 0,
            client: client.to_string(),
            incomplete: false,
            start: Some(Instant::now()),
        }
    }
}

/// The response whose body, when it ends or is dropped, writes `entry`.
pub fn wrap<B: hyper::body::Body>(
    log: Arc<AccessLog>,
    mut entry: Entry,
    response: http::Response<B>,
) -> http::Response<Logged<B>> {
    entry.status = response.status().as_u16();
    entry.status_code = response
        .headers()
        .get(STATUS_CODE_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .filter(|&code| code != 0);
    response.map(|inner| Logged {
        inner,
        entry: Some(entry),
        log,
    })
}

/// Set by the app's adapter on every JSON envelope (crates/spin-adapter/src/http.rs).
const STATUS_CODE_HEADER: &str = "tikspin-status-code";

/// A response body that counts what it sends and logs the request when it is done.
pub struct Logged<B: hyper::body::Body> {
    inner: B,
    entry: Option<Entry>,
    log: Arc<AccessLog>,
}

impl<B: hyper::body::Body> Logged<B> {
    fn finish(&mut self, incomplete: bool) {
        if let Some(mut entry) = self.entry.take() {
            entry.incomplete = incomplete;
            if let Some(start) = entry.start {
                entry.duration_ms = start.elapsed().as_secs_f64() * 1e3;
            }
            self.log.log(entry);
        }
    }
}

impl<B> hyper::body::Body for Logged<B>
where
    B: hyper::body::Body<Data = bytes::Bytes> + Unpin,
{
    type Data = bytes::Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        use std::task::Poll;
        let this = &mut *self;
        let polled = std::pin::Pin::new(&mut this.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let (Some(data), Some(entry)) = (frame.data_ref(), this.entry.as_mut()) {
                    entry.bytes_out += data.len() as u64;
                }
                // hyper stops polling a body of known length once it says it has ended.
                if this.inner.is_end_stream() {
                    this.finish(false);
                }
            }
            Poll::Ready(None) => this.finish(false),
            Poll::Ready(Some(Err(_))) => this.finish(true),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}

impl<B: hyper::body::Body> Drop for Logged<B> {
    fn drop(&mut self) {
        // An empty body may never be polled; a body dropped before its end was cut short.
        let ended = self.inner.is_end_stream();
        self.finish(!ended);
    }
}

pub struct AccessLog {
    sender: SyncSender<Entry>,
    dropped: Arc<AtomicU64>,
}

impl AccessLog {
    /// Starts the writer; `None` when the log is off.
    pub fn start(config: &Config, log_dir: &Path) -> Result<Option<Arc<Self>>> {
        if !config.enabled {
            return Ok(None);
        }
        std::fs::create_dir_all(log_dir)
            .with_context(|| format!("cannot create {}", log_dir.display()))?;
        let file = RotatingFile::open(log_dir.join("access.log"), config.max_bytes, config.keep)?;
        let (sender, receiver) = sync_channel(QUEUE);
        let dropped = Arc::new(AtomicU64::new(0));
        let console = config.console;
        let counted = dropped.clone();
        std::thread::Builder::new()
            .name("access-log".into())
            .spawn(move || write_lines(receiver, file, console, counted))
            .context("cannot start the access-log writer")?;
        Ok(Some(Arc::new(AccessLog { sender, dropped })))
    }

    /// Queues a line; never waits.
    pub fn log(&self, entry: Entry) {
        match self.sender.try_send(entry) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Lines dropped so far because the writer was behind.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

fn write_lines(
    receiver: Receiver<Entry>,
    mut file: RotatingFile,
    console: bool,
    dropped: Arc<AtomicU64>,
) {
    let mut reported = 0;
    let stdout = std::io::stdout();
    let mut console_lines = Vec::new();
    // The writer wakes on a timer and takes whatever lines are waiting, with one write (and one
    // console write) for them all: blocking on the channel instead woke this thread for every
    // request, a context switch on the cores the requests run on (~10% of a trivial
    // component's throughput, measured).
    let mut open = true;
    while open {
        std::thread::sleep(WAKE_EVERY);
        let mut batch = Vec::new();
        loop {
            match receiver.try_recv() {
                Ok(entry) => batch.push(entry),
                Err(std::sync::mpsc::TryRecvError::Empty) => break,
                Err(std::sync::mpsc::TryRecvError::Disconnected) => {
                    open = false;
                    break;
                }
            }
        }
        for entry in batch {
            let Ok(mut line) = serde_json::to_vec(&entry) else {
                continue;
            };
            line.push(b'\n');
            if let Err(e) = file.write(&line) {
                eprintln!("warning: access log: {e}");
            }
            if console {
                console_lines.extend_from_slice(&line);
            }
        }
        if let Err(e) = file.flush() {
            eprintln!("warning: access log: {e}");
        }
        if !console_lines.is_empty() {
            let _ = stdout.lock().write_all(&console_lines);
            console_lines.clear();
        }
        let now = dropped.load(Ordering::Relaxed);
        if now != reported {
            eprintln!(
                "warning: access log: {} lines dropped (writer behind)",
                now - reported
            );
            reported = now;
        }
    }
}

/// How often the writer takes the waiting lines (the delay before a line reaches the log).
const WAKE_EVERY: std::time::Duration = std::time::Duration::from_millis(50);

/// `access.log`, renamed to `access.log.1` (and older ones shifted, the oldest beyond `keep`
/// deleted) when the next line would take it past `max_bytes`.
struct RotatingFile {
    path: PathBuf,
    file: File,
    /// Lines not yet written: [`RotatingFile::flush`] writes them in one call.
    pending: Vec<u8>,
    size: u64,
    max_bytes: u64,
    keep: usize,
}

impl RotatingFile {
    fn open(path: PathBuf, max_bytes: u64, keep: usize) -> Result<Self> {
        let file = open_append(&path)?;
        let size = file.metadata()?.len();
        Ok(RotatingFile {
            path,
            file,
            pending: Vec::new(),
            size,
            max_bytes,
            keep,
        })
    }

    fn write(&mut self, line: &[u8]) -> std::io::Result<()> {
        // A line longer than the limit still goes in a file of its own.
        if self.size > 0 && self.size + line.len() as u64 > self.max_bytes {
            self.flush()?;
            self.rotate()?;
        }
        self.pending.extend_from_slice(line);
        self.size += line.len() as u64;
        Ok(())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        let result = self.file.write_all(&self.pending);
        self.pending.clear();
        result
    }

    fn rotate(&mut self) -> std::io::Result<()> {
        let numbered = |n: usize| {
            let mut p = self.path.clone().into_os_string();
            p.push(format!(".{n}"));
            PathBuf::from(p)
        };
        if self.keep == 0 {
            std::fs::remove_file(&self.path)?;
        } else {
            let _ = std::fs::remove_file(numbered(self.keep));
            for n in (1..self.keep).rev() {
                let _ = std::fs::rename(numbered(n), numbered(n + 1));
            }
            std::fs::rename(&self.path, numbered(1))?;
        }
        self.file = open_append(&self.path).map_err(std::io::Error::other)?;
        self.size = 0;
        Ok(())
    }
}

fn open_append(path: &Path) -> Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("cannot open {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sane_ids_are_kept_and_others_are_not() {
        for ok in [
            "abc",
            "0f8fad5b-d9cb-469f-a165-70867728950e",
            "YWJj/ZGVm+Zw==",
            "svc:123",
            &"a".repeat(128),
        ] {
            assert!(valid_request_id(ok.as_bytes()), "{ok}");
        }
        for bad in [
            "",
            &"a".repeat(129),
            "a b",
            "a\tb",
            "a\nb",
            "a\x7fb",
            "é",
            "a\"b",
            "a,b",
            "<script>",
        ] {
            assert!(!valid_request_id(bad.as_bytes()), "{bad:?}");
        }
    }

    #[test]
    fn a_bad_inbound_id_is_replaced_by_a_fresh_one() {
        let mut h = HeaderMap::new();
        h.insert(REQUEST_ID_HEADER, "a b".parse().unwrap());
        let id = request_id(&h, None);
        assert_eq!(id.len(), 32);
        assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(id, request_id(&h, None));
        assert_eq!(
            request_id(&h, Some("4bf92f3577b34da6a3ce929d0e0e4736")),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        h.insert(REQUEST_ID_HEADER, "mine-1".parse().unwrap());
        assert_eq!(
            request_id(&h, Some("4bf92f3577b34da6a3ce929d0e0e4736")),
            "mine-1"
        );
    }

    #[test]
    fn the_file_rotates_by_size_and_keeps_n() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("access.log");
        let mut f = RotatingFile::open(path.clone(), 10, 2).unwrap();
        for line in ["aaaaaa\n", "bbbbbb\n", "cccccc\n", "dddddd\n"] {
            f.write(line.as_bytes()).unwrap();
        }
        f.flush().unwrap();
        let read = |name: &str| std::fs::read_to_string(dir.path().join(name)).unwrap();
        assert_eq!(read("access.log"), "dddddd\n");
        assert_eq!(read("access.log.1"), "cccccc\n");
        assert_eq!(read("access.log.2"), "bbbbbb\n");
        assert!(!dir.path().join("access.log.3").exists());
    }
}
