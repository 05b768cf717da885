//! Real servers for tests, each on its own free port, stopped by PID when dropped.
//! A missing binary is a test failure with the install command, never a silent skip.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context, Result};

use crate::{free_port, wait_until};

fn require(binary: &str, package: &str) -> Result<()> {
    let found = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|p| p.join(binary).is_file()))
        .unwrap_or(false)
        || PathBuf::from("/usr/sbin").join(binary).is_file();
    if !found {
        bail!(
            "`{binary}` is not installed: run `apt-get install -y {package}` (the CI script does)"
        );
    }
    Ok(())
}

fn stop(child: &mut Child) {
    // A child already reaped (killed, or stopped before) must not be signalled again: its PID
    // may belong to another process by now.
    if matches!(child.try_wait(), Ok(Some(_))) {
        return;
    }
    // SIGTERM first so servers shut down cleanly; then make sure.
    unsafe_kill(child.id());
    if !wait_until(Duration::from_secs(5), || {
        matches!(child.try_wait(), Ok(Some(_)))
    }) {
        let _ = child.kill();
    }
    let _ = child.wait();
}

fn unsafe_kill(pid: u32) {
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(pid.to_string())
        .status();
}

/// SIGKILL (by PID, as a crash or an OOM kill would) and reap, so the port is free for a restart.
fn hard_kill(child: &mut Child, port: u16) {
    if !matches!(child.try_wait(), Ok(Some(_))) {
        let _ = child.kill();
    }
    let _ = child.wait();
    wait_until(Duration::from_secs(10), || !port_open(port));
}

fn port_open(port: u16) -> bool {
    std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
}

pub struct RedisServer {
    pub port: u16,
    child: Child,
}

impl RedisServer {
    pub fn start() -> Result<Self> {
        require("redis-server", "redis-server")?;
        let port = free_port();
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("cannot start redis-server")?;
        let mut s = Self { port, child };
        if !wait_until(Duration::from_secs(10), || port_open(port)) {
            stop(&mut s.child);
            bail!("redis-server did not start on port {port}");
        }
        Ok(s)
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Writes `dir/runtime-config.toml` putting the `default` key-value store on this server
    /// (the production store layout, `deploy/runtime-config.toml`) and returns its path.
    pub fn kv_runtime_config(&self, dir: &std::path::Path) -> PathBuf {
        let path = dir.join("runtime-config.toml");
        std::fs::write(
            &path,
            format!(
                "[key_value_store.default]\ntype = \"redis\"\nurl = \"{}\"\n",
                self.url()
            ),
        )
        .unwrap();
        path
    }

    /// Stops the server (to test reconnection); `restart` brings it back on the same port.
    pub fn stop(&mut self) {
        stop(&mut self.child);
    }

    /// SIGKILL, as a crash would (no data is kept: the server runs without persistence).
    pub fn kill(&mut self) {
        hard_kill(&mut self.child, self.port);
    }

    pub fn restart(&mut self) -> Result<()> {
        let child = Command::new("redis-server")
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        self.child = child;
        let port = self.port;
        if !wait_until(Duration::from_secs(10), || port_open(port)) {
            bail!("redis-server did not restart");
        }
        Ok(())
    }

    /// Runs a command with `redis-cli` against this server.
    pub fn cli(&self, args: &[&str]) -> Result<String> {
        require("redis-cli", "redis-tools")?;
        let out = Command::new("redis-cli")
            .arg("-p")
            .arg(self.port.to_string())
            .args(args)
            .output()?;
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        stop(&mut self.child);
    }
}

/// A throwaway MariaDB with database `tikspin` and user `tikspin`/`tikspin-test-pw`.
pub struct MariaDb {
    pub port: u16,
    child: Child,
    _dir: tempfile::TempDir,
    data: PathBuf,
    socket: PathBuf,
}

impl MariaDb {
    pub fn start() -> Result<Self> {
        require("mariadbd", "mariadb-server")?;
        // Two bootstraps at once (tests run in parallel threads) can fail under load; starting
        // one server at a time costs a few seconds and nothing else.
        static STARTING: std::sync::Mutex<()> = std::sync::Mutex::new(());
        let _one_at_a_time = STARTING.lock().unwrap_or_else(|p| p.into_inner());
        let dir = tempfile::tempdir()?;
        let data = dir.path().join("data");
        let socket = dir.path().join("s.sock");
        let out = Command::new("mariadb-install-db")
            .args([
                "--no-defaults",
                "--user=root",
                "--skip-test-db",
                "--auth-root-authentication-method=normal",
            ])
            .arg(format!("--datadir={}", data.display()))
            .output()
            .context("cannot run mariadb-install-db")?;
        if !out.status.success() {
            bail!(
                "mariadb-install-db failed: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let port = free_port();
        let child = Self::spawn(&data, &socket, port)?;
        let mut db = Self {
            port,
            child,
            _dir: dir,
            data,
            socket: socket.clone(),
        };
        if !wait_until(Duration::from_secs(30), || {
            port_open(port) && socket.exists()
        }) {
            stop(&mut db.child);
            bail!("mariadbd did not start");
        }
        let setup = "CREATE DATABASE tikspin CHARACTER SET utf8mb4; \
                     CREATE USER 'tikspin'@'127.0.0.1' IDENTIFIED BY 'tikspin-test-pw'; \
                     GRANT ALL ON tikspin.* TO 'tikspin'@'127.0.0.1'; FLUSH PRIVILEGES;";
        let out = Command::new("mariadb")
            .args(["--no-defaults", "-uroot"])
            .arg(format!("--socket={}", socket.display()))
            .args(["-e", setup])
            .output()
            .context("cannot run the mariadb client")?;
        if !out.status.success() {
            bail!(
                "MariaDB setup failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(db)
    }

    fn spawn(data: &std::path::Path, socket: &std::path::Path, port: u16) -> Result<Child> {
        Command::new("mariadbd")
            .args([
                "--no-defaults",
                "--user=root",
                "--skip-log-bin",
                "--bind-address=127.0.0.1",
                "--skip-name-resolve",
            ])
            .arg(format!("--datadir={}", data.display()))
            .arg(format!("--socket={}", socket.display()))
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("cannot start mariadbd")
    }

    /// SIGKILL, as a crash would; `restart` brings the server back on the same data and port
    /// (InnoDB recovers what was committed).
    pub fn kill(&mut self) {
        hard_kill(&mut self.child, self.port);
    }

    pub fn restart(&mut self) -> Result<()> {
        self.child = Self::spawn(&self.data, &self.socket, self.port)?;
        let port = self.port;
        if !wait_until(Duration::from_secs(60), || port_open(port)) {
            bail!("mariadbd did not restart on port {port}");
        }
        Ok(())
    }

    pub fn url(&self) -> String {
        format!(
            "mysql://tikspin:tikspin-test-pw@127.0.0.1:{}/tikspin",
            self.port
        )
    }

    /// Runs `statements` (`;`-separated) as the app's user with the `mariadb` client; returns
    /// what it prints (tab-separated rows, no column names).
    pub fn sql(&self, statements: &str) -> Result<String> {
        let out = Command::new("mariadb")
            .args([
                "--no-defaults",
                "--batch",
                "--skip-column-names",
                "-h127.0.0.1",
                "-utikspin",
                "-ptikspin-test-pw",
            ])
            .arg(format!("-P{}", self.port))
            .args(["tikspin", "-e", statements])
            .output()
            .context("cannot run the mariadb client")?;
        if !out.status.success() {
            bail!("mariadb: {}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

impl Drop for MariaDb {
    fn drop(&mut self) {
        stop(&mut self.child);
    }
}

/// A throwaway S3 server: `s3s-fs`, which verifies SigV4 (header-signed and presigned requests),
/// serving a fresh directory with one empty bucket. Objects are files under [`Self::bucket_dir`];
/// multipart state (`.upload-<id>.json`, `.upload_id-<id>.part-<n>`, `.tmp.*`) lives directly in
/// [`Self::root`].
pub struct S3sFs {
    pub port: u16,
    pub access_key: String,
    pub secret_key: String,
    pub bucket: String,
    child: Child,
    dir: tempfile::TempDir,
}

impl S3sFs {
    pub const INSTALL: &'static str = "cargo install s3s-fs@0.14.1 --features binary --locked";

    /// `TIKSPIN_S3S_FS`, else `s3s-fs` on `PATH`, else `~/.cargo/bin/s3s-fs`.
    fn binary() -> Result<PathBuf> {
        if let Some(p) = std::env::var_os("TIKSPIN_S3S_FS") {
            let p = PathBuf::from(p);
            if !p.is_file() {
                bail!("TIKSPIN_S3S_FS={} is not a file", p.display());
            }
            return Ok(p);
        }
        let on_path = std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|d| d.join("s3s-fs"))
                .find(|p| p.is_file())
        });
        let in_cargo_home = std::env::var_os("HOME")
            .map(|h| PathBuf::from(h).join(".cargo/bin/s3s-fs"))
            .filter(|p| p.is_file());
        on_path.or(in_cargo_home).with_context(|| {
            format!(
                "`s3s-fs` is not installed: run `{}` (the CI script does)",
                Self::INSTALL
            )
        })
    }

    pub fn start() -> Result<Self> {
        let bin = Self::binary()?;
        let dir = tempfile::tempdir()?;
        let bucket = "tikspin-e2e".to_string();
        std::fs::create_dir_all(dir.path().join("data").join(&bucket))?;
        let log = std::fs::File::create(dir.path().join("s3s-fs.log"))?;
        let port = free_port();
        let (access_key, secret_key) = (
            "TIKSPINE2EACCESSKEY1".to_string(),
            "e2e/S3+Secret0123456789abcdefGHIJKLMNOP".to_string(),
        );
        let child = Self::spawn(&bin, port, &access_key, &secret_key, dir.path(), log)?;
        let mut s = Self {
            port,
            access_key,
            secret_key,
            bucket,
            child,
            dir,
        };
        if !wait_until(Duration::from_secs(15), || port_open(port)) {
            stop(&mut s.child);
            bail!(
                "s3s-fs did not start on port {port}: {}",
                std::fs::read_to_string(s.dir.path().join("s3s-fs.log")).unwrap_or_default()
            );
        }
        Ok(s)
    }

    fn spawn(
        bin: &std::path::Path,
        port: u16,
        access_key: &str,
        secret_key: &str,
        dir: &std::path::Path,
        log: std::fs::File,
    ) -> Result<Child> {
        Command::new(bin)
            .args([
                "--host",
                "127.0.0.1",
                "--port",
                &port.to_string(),
                "--access-key",
                access_key,
                "--secret-key",
                secret_key,
            ])
            .arg(dir.join("data"))
            .stdout(Stdio::from(log.try_clone()?))
            .stderr(Stdio::from(log))
            .spawn()
            .with_context(|| format!("cannot start {}", bin.display()))
    }

    /// SIGKILL, as a crash would; `restart` serves the same directory on the same port again.
    pub fn kill(&mut self) {
        hard_kill(&mut self.child, self.port);
    }

    pub fn restart(&mut self) -> Result<()> {
        let log = std::fs::OpenOptions::new()
            .append(true)
            .open(self.dir.path().join("s3s-fs.log"))?;
        self.child = Self::spawn(
            &Self::binary()?,
            self.port,
            &self.access_key,
            &self.secret_key,
            self.dir.path(),
            log,
        )?;
        let port = self.port;
        if !wait_until(Duration::from_secs(15), || port_open(port)) {
            bail!("s3s-fs did not restart on port {port}");
        }
        Ok(())
    }

    /// The endpoint, `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The server's data directory (buckets are its subdirectories).
    pub fn root(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn bucket_dir(&self) -> PathBuf {
        self.root().join(&self.bucket)
    }
}

impl Drop for S3sFs {
    fn drop(&mut self) {
        stop(&mut self.child);
    }
}
