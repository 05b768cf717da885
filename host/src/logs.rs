//! Component stdout/stderr: on the console prefixed with the component id, and in
//! `<state-dir>/logs/<component>_stdout.txt` / `_stderr.txt` as Spin names them.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};

pub struct LogSink {
    id: String,
    stdout_file: Mutex<Option<File>>,
    stderr_file: Mutex<Option<File>>,
    console: bool,
}

#[derive(Clone, Copy)]
enum Which {
    Out,
    Err,
}

impl LogSink {
    pub fn new(id: &str, log_dir: Option<&Path>, console: bool) -> anyhow::Result<Arc<Self>> {
        let open = |suffix: &str| -> anyhow::Result<Option<File>> {
            let Some(dir) = log_dir else { return Ok(None) };
            std::fs::create_dir_all(dir)?;
            Ok(Some(
                OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(dir.join(format!("{id}_{suffix}.txt")))?,
            ))
        };
        Ok(Arc::new(Self {
            id: id.to_string(),
            stdout_file: Mutex::new(open("stdout")?),
            stderr_file: Mutex::new(open("stderr")?),
            console,
        }))
    }

    pub fn stdout(self: &Arc<Self>) -> ComponentOutput {
        ComponentOutput {
            sink: self.clone(),
            which: Which::Out,
        }
    }

    pub fn stderr(self: &Arc<Self>) -> ComponentOutput {
        ComponentOutput {
            sink: self.clone(),
            which: Which::Err,
        }
    }

    fn write_line(&self, which: Which, line: &[u8]) {
        let file = match which {
            Which::Out => &self.stdout_file,
            Which::Err => &self.stderr_file,
        };
        if let Some(f) = file.lock().unwrap_or_else(|p| p.into_inner()).as_mut() {
            let _ = f.write_all(line).and_then(|_| f.write_all(b"\n"));
        }
        if self.console {
            let text = String::from_utf8_lossy(line);
            match which {
                Which::Out => println!("[{}] {text}", self.id),
                Which::Err => eprintln!("[{}] {text}", self.id),
            }
        }
    }
}

/// The stream handed to WASI for one instance's stdout or stderr.
pub struct ComponentOutput {
    sink: Arc<LogSink>,
    which: Which,
}

impl IsTerminal for ComponentOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for ComponentOutput {
    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(LineWriter {
            sink: self.sink.clone(),
            which: self.which,
            pending: Vec::new(),
        })
    }
}

/// Splits output into lines so concurrent instances' lines never interleave mid-line.
struct LineWriter {
    sink: Arc<LogSink>,
    which: Which,
    pending: Vec<u8>,
}

impl LineWriter {
    fn emit_complete_lines(&mut self) {
        while let Some(i) = self.pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.pending.drain(..=i).collect();
            self.sink.write_line(self.which, &line[..line.len() - 1]);
        }
    }
}

impl AsyncWrite for LineWriter {
    fn poll_write(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.pending.extend_from_slice(buf);
        self.emit_complete_lines();
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

impl Drop for LineWriter {
    fn drop(&mut self) {
        if !self.pending.is_empty() {
            let rest = std::mem::take(&mut self.pending);
            self.sink.write_line(self.which, &rest);
        }
    }
}

impl LogSink {
    /// A host-side measurement or notice about this component, kept with its stdout.
    pub fn host_note(&self, message: &str) {
        self.write_line(Which::Out, format!("host: {message}").as_bytes());
    }

    /// A host-side note about this component (a trap, a timeout), kept with its stderr.
    pub fn host_error(&self, message: &str) {
        self.write_line(Which::Err, format!("host: {message}").as_bytes());
    }
}
