//! Component stdout/stderr: on the console prefixed with the component id, and in
//! `<state-dir>/logs/<component>_stdout.txt` / `_stderr.txt` as Spin names them.
//!
//! The files are opened once at start and shared by every instance, except in the `spin`
//! [`Profile`](crate::profile::Profile): Spin opens both files for every instance it prepares
//! (crates/trigger/src/cli/stdio.rs, `StdioLoggingExecutorHooks::prepare_instance`:
//! `File::options().create(true).append(true).open`, then `try_clone` into a `tokio::fs::File`),
//! and so does the host then ([`LogSink::open_for_instance`]).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};

pub struct LogSink {
    id: String,
    /// The two file paths (none without a log directory).
    paths: Option<(PathBuf, PathBuf)>,
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
        let paths = match log_dir {
            Some(dir) => {
                std::fs::create_dir_all(dir)?;
                Some((
                    dir.join(format!("{id}_stdout.txt")),
                    dir.join(format!("{id}_stderr.txt")),
                ))
            }
            None => None,
        };
        let open = |path: Option<&PathBuf>| -> anyhow::Result<Option<File>> {
            Ok(match path {
                Some(p) => Some(open_log(p)?),
                None => None,
            })
        };
        Ok(Arc::new(Self {
            id: id.to_string(),
            stdout_file: Mutex::new(open(paths.as_ref().map(|p| &p.0))?),
            stderr_file: Mutex::new(open(paths.as_ref().map(|p| &p.1))?),
            paths,
            console,
        }))
    }

    pub fn stdout(self: &Arc<Self>) -> ComponentOutput {
        ComponentOutput {
            sink: self.clone(),
            which: Which::Out,
            own: None,
        }
    }

    pub fn stderr(self: &Arc<Self>) -> ComponentOutput {
        ComponentOutput {
            sink: self.clone(),
            which: Which::Err,
            own: None,
        }
    }

    /// Stdout and stderr for one instance on files opened for it alone, as Spin prepares every
    /// instance (see the module docs). If a file cannot be opened, the shared one is used.
    pub fn open_for_instance(self: &Arc<Self>) -> (ComponentOutput, ComponentOutput) {
        let own = |path: &Path| -> Option<Arc<InstanceFile>> {
            let sync_file = open_log(path).ok()?;
            let async_half = tokio::fs::File::from_std(sync_file.try_clone().ok()?);
            Some(Arc::new(InstanceFile {
                sync_file,
                _async_half: async_half,
            }))
        };
        let (out, err) = match &self.paths {
            Some((out, err)) => (own(out), own(err)),
            None => (None, None),
        };
        (
            ComponentOutput {
                sink: self.clone(),
                which: Which::Out,
                own: out,
            },
            ComponentOutput {
                sink: self.clone(),
                which: Which::Err,
                own: err,
            },
        )
    }

    fn write_line(&self, which: Which, line: &[u8]) {
        self.write_line_to(which, None, line)
    }

    fn write_line_to(&self, which: Which, own: Option<&InstanceFile>, line: &[u8]) {
        match own {
            // One write: appends from concurrent instances' own handles never interleave.
            Some(f) => {
                let mut with_newline = Vec::with_capacity(line.len() + 1);
                with_newline.extend_from_slice(line);
                with_newline.push(b'\n');
                let _ = (&f.sync_file).write_all(&with_newline);
            }
            None => {
                let file = match which {
                    Which::Out => &self.stdout_file,
                    Which::Err => &self.stderr_file,
                };
                if let Some(f) = file.lock().unwrap_or_else(|p| p.into_inner()).as_mut() {
                    let _ = f.write_all(line).and_then(|_| f.write_all(b"\n"));
                }
            }
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

fn open_log(path: &Path) -> std::io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

/// A log file opened for one instance: the handle it writes with, and the duplicate Spin makes
/// for its async writer (kept only so that it is made and closed as in Spin).
struct InstanceFile {
    sync_file: File,
    _async_half: tokio::fs::File,
}

/// The stream handed to WASI for one instance's stdout or stderr.
pub struct ComponentOutput {
    sink: Arc<LogSink>,
    which: Which,
    /// The instance's own file (`spin` profile), else the sink's shared one.
    own: Option<Arc<InstanceFile>>,
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
            own: self.own.clone(),
            pending: Vec::new(),
        })
    }
}

/// Splits output into lines so concurrent instances' lines never interleave mid-line.
struct LineWriter {
    sink: Arc<LogSink>,
    which: Which,
    own: Option<Arc<InstanceFile>>,
    pending: Vec<u8>,
}

impl LineWriter {
    fn emit_complete_lines(&mut self) {
        while let Some(i) = self.pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.pending.drain(..=i).collect();
            self.sink
                .write_line_to(self.which, self.own.as_deref(), &line[..line.len() - 1]);
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
            self.sink
                .write_line_to(self.which, self.own.as_deref(), &rest);
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
