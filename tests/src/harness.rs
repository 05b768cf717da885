//! Runs the app the way a user does: the real `tikspin` host binary serving the real `.wasm`
//! components from `spin.toml`, on a free port with a fresh state directory.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use crate::client::Client;
use crate::{free_port, wait_until, workspace_root};

/// Builds the host binary and every component of `manifest` once per test process.
pub fn build_once(manifest: &Path) {
    static BUILT: OnceLock<std::sync::Mutex<Vec<PathBuf>>> = OnceLock::new();
    let built = BUILT.get_or_init(Default::default);
    let mut built = built.lock().unwrap_or_else(|p| p.into_inner());
    if built.iter().any(|m| m == manifest) {
        return;
    }
    let root = workspace_root();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    // The default members, as `cargo test --release` and `cargo run --release` select them: with
    // `-p tikspin-host` alone, features unify differently and each run would rebuild the host.
    let status = Command::new(&cargo)
        .args(["build", "--release", "--bin", "tikspin"])
        .current_dir(&root)
        .status()
        .expect("cannot run cargo");
    assert!(status.success(), "building the host failed");
    let status = Command::new(host_binary())
        .arg("build")
        .arg("--from")
        .arg(manifest)
        .status()
        .expect("cannot run tikspin build");
    assert!(
        status.success(),
        "building the components of {} failed",
        manifest.display()
    );
    built.push(manifest.to_path_buf());
}

/// The production layout (`spin.production.toml`: the app plus the Redis-triggered worker),
/// which needs `redis_address`.
pub fn production_manifest() -> PathBuf {
    workspace_root().join("spin.production.toml")
}

/// The manifest a suite's variables call for: the production one when they set the job queue.
pub fn manifest_for(variables: &[(String, String)]) -> Option<PathBuf> {
    variables
        .iter()
        .any(|(k, _)| k == "redis_address")
        .then(production_manifest)
}

pub fn host_binary() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"));
    target.join("release").join("tikspin")
}

/// The `jwt_secret` of hosts whose suite did not set one.
pub const TEST_JWT_SECRET: &str = "tikspin-e2e-test-key-0123456789abcdef0123456789abcdef";

/// How to start the host.
#[derive(Default, Clone)]
pub struct HostConfig {
    pub manifest: Option<PathBuf>,
    pub runtime_config: Option<PathBuf>,
    pub variables: Vec<(String, String)>,
    pub extra_args: Vec<String>,
    pub env: Vec<(String, String)>,
    /// Listen on this port (default: a free one).
    pub port: Option<u16>,
    /// Keep state here (default: a fresh temporary directory).
    pub state_dir: Option<PathBuf>,
}

pub struct TestHost {
    pub client: Client,
    pub state_dir: Option<tempfile::TempDir>,
    child: Option<Child>,
}

impl TestHost {
    /// The app from the repository's `spin.toml`, or `TIKSPIN_BASE_URL` when set.
    pub fn app() -> Self {
        if let Ok(base) = std::env::var("TIKSPIN_BASE_URL") {
            return Self {
                client: Client::new(&base),
                state_dir: None,
                child: None,
            };
        }
        Self::start(HostConfig::default())
    }

    pub fn start(config: HostConfig) -> Self {
        let manifest = config
            .manifest
            .clone()
            .unwrap_or_else(|| workspace_root().join("spin.toml"));
        build_once(&manifest);
        let state = tempfile::tempdir().expect("temp dir");
        let port = config.port.unwrap_or_else(free_port);
        let mut cmd = Command::new(host_binary());
        cmd.arg("up")
            .arg("--from")
            .arg(&manifest)
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--state-dir")
            .arg(config.state_dir.as_deref().unwrap_or(state.path()))
            .arg("--quiet")
            .arg("--compile-cache")
            .arg(
                host_binary()
                    .parent()
                    .unwrap()
                    .join("tikspin-compile-cache"),
            );
        if let Some(rc) = &config.runtime_config {
            cmd.arg("--runtime-config-file").arg(rc);
        }
        for (k, v) in &config.variables {
            cmd.arg("--variable").arg(format!("{k}={v}"));
        }
        // The app requires `jwt_secret` (as Spin does, the host stops without it): a suite that
        // does not choose one gets a fixed test key.
        let app_manifest =
            [workspace_root().join("spin.toml"), production_manifest()].contains(&manifest);
        if app_manifest
            && !config.variables.iter().any(|(k, _)| k == "jwt_secret")
            && !config
                .env
                .iter()
                .any(|(k, _)| k == "SPIN_VARIABLE_JWT_SECRET")
        {
            cmd.arg("--variable")
                .arg(format!("jwt_secret={TEST_JWT_SECRET}"));
        }
        // The abuse limits are off unless a suite sets `limits_enabled`: the suites register
        // dozens of users a second from 127.0.0.1, exactly what the limits stop
        // (tests/tests/limits.rs tests them).
        if app_manifest
            && !config.variables.iter().any(|(k, _)| k == "limits_enabled")
            && !config.env.iter().any(|(k, _)| k == "SPIN_VARIABLE_LIMITS_ENABLED")
        {
            cmd.arg("--variable").arg("limits_enabled=false");
        }
        cmd.args(&config.extra_args);
        for (k, v) in &config.env {
            cmd.env(k, v);
        }
        let log = std::fs::File::create(state.path().join("host.log")).unwrap();
        let mut child = cmd
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("cannot start the host");
        let client = Client::new(&format!("http://127.0.0.1:{port}"));
        let healthy = wait_until(Duration::from_secs(120), || {
            if let Ok(Some(_)) = child.try_wait() {
                return true;
            }
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
                && client.get("/.well-known/spin/health").status == 200
        });
        if !healthy || matches!(child.try_wait(), Ok(Some(_))) {
            let log = std::fs::read_to_string(state.path().join("host.log")).unwrap_or_default();
            let _ = child.kill();
            panic!("the host did not become healthy:\n{log}");
        }
        Self {
            client,
            state_dir: Some(state),
            child: Some(child),
        }
    }

    /// The host's console output so far (for assertions on notices and errors).
    pub fn log(&self) -> String {
        self.state_dir
            .as_ref()
            .map(|d| std::fs::read_to_string(d.path().join("host.log")).unwrap_or_default())
            .unwrap_or_default()
    }

    /// Where this host keeps its console log (and, unless `HostConfig::state_dir` said
    /// otherwise, its state).
    pub fn state_path(&self) -> &Path {
        self.state_dir.as_ref().expect("a local host").path()
    }

    /// Kills the host with SIGKILL, as a crash or an OOM kill would, and waits until it is gone.
    /// Its state directory stays (for a next host started on it).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The host process's id (for reading its memory), if this harness started it.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }
}

impl Drop for TestHost {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(child.id().to_string())
                .status();
            if !wait_until(Duration::from_secs(5), || {
                matches!(child.try_wait(), Ok(Some(_)))
            }) {
                let _ = child.kill();
            }
            let _ = child.wait();
        }
    }
}
