use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use tikspin_host::app::{Limits, Options};
use tikspin_host::profile::{ProcessAllocator, Profile};
use tikspin_host::server::RunningServer;

// The system's malloc, as the `spin` binary has; `--fast` switches to mimalloc (every request
// allocates its store, tables and buffers, and glibc's malloc was a tenth of the host's time).
#[global_allocator]
static ALLOCATOR: ProcessAllocator = ProcessAllocator::new();

/// TikSpin's local Spin-compatible runtime. With no subcommand: build the components, then serve.
#[derive(Parser)]
#[command(name = "tikspin", version)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the app (like `spin up`).
    Up(UpArgs),
    /// Run every component's build command (like `spin build`).
    Build {
        /// The app manifest.
        #[arg(short = 'f', long = "from", default_value = "spin.toml")]
        manifest: PathBuf,
    },
}

#[derive(Args)]
struct UpArgs {
    /// The app manifest.
    #[arg(short = 'f', long = "from", default_value = "spin.toml")]
    manifest: PathBuf,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:3000")]
    listen: SocketAddr,
    /// Where databases, stores, logs and compiled components live.
    #[arg(long, default_value = ".spin")]
    state_dir: PathBuf,
    /// Runtime configuration (stores, databases, variable providers).
    #[arg(long)]
    runtime_config_file: Option<PathBuf>,
    /// Set an application variable (repeatable): `--variable name=value`.
    #[arg(long = "variable", value_parser = parse_variable)]
    variables: Vec<(String, String)>,
    /// Build the components first.
    #[arg(long)]
    build: bool,
    /// Do not echo component output on the console (it still goes to the state dir's logs/).
    #[arg(long)]
    quiet: bool,
    /// Wall-clock seconds one request may take.
    #[arg(long, default_value_t = 60)]
    request_timeout_secs: u64,
    /// Memory one instance may use, in MiB.
    #[arg(long, default_value_t = 256)]
    max_instance_memory_mib: usize,
    /// Largest request body accepted, in MiB (larger ones get 413). Default: no limit, as Spin.
    #[arg(long)]
    max_request_body_mib: Option<u64>,
    /// Largest request head (request line and headers) accepted, in KiB (larger ones get 431).
    /// Default: hyper's own bound (~400 KiB), as Spin.
    #[arg(long)]
    max_request_head_kib: Option<usize>,
    /// Instances alive at once; more requests wait.
    #[arg(long, default_value_t = 128)]
    max_instances: u32,
    /// Log each request's peak instance memory to the component's log (for measurements).
    #[arg(long)]
    report_instance_memory: bool,
    /// Where compiled components are cached (default: `<state-dir>/compiled`).
    #[arg(long)]
    compile_cache: Option<PathBuf>,
    /// What the host spends per request: `spin` pays what Spin 4 pays (a SQLite connection per
    /// open, blocking-pool hops, variables resolved per read, Spin's pooling settings, the
    /// system allocator), so measurements here predict `spin up`; `fast` is this host's own
    /// faster choices. Answers are the same either way.
    #[arg(long, default_value_t = Profile::Spin, value_parser = parse_profile)]
    profile: Profile,
    /// Give a required secret variable that has no value a random one, kept in
    /// `<state-dir>/generated-secrets.json` (a local convenience: Spin stops instead, and so
    /// does `tikspin up` without this flag).
    #[arg(long)]
    generate_missing_secrets: bool,
    /// Serve Prometheus metrics at `http://ADDR/metrics`, on a listener of their own (never the
    /// app's address). Off by default; docs/observability.md lists the metrics.
    #[arg(long, value_name = "ADDR")]
    metrics_listen: Option<SocketAddr>,
    /// The JSON access log, one line per request: `on` (console unless `--quiet`, and
    /// `<state-dir>/logs/access.log`) or `off`.
    #[arg(long, default_value = "on", value_parser = ["on", "off"])]
    access_log: String,
    /// Rotate `access.log` when it would pass this many KiB (default 64 MiB).
    #[arg(long, default_value_t = 64 * 1024, value_parser = clap::value_parser!(u64).range(1..))]
    access_log_max_kib: u64,
    /// Rotated access logs kept (`access.log.1` … `.N`).
    #[arg(long, default_value_t = 4)]
    access_log_keep: usize,
    /// Shorthand for `--profile fast`.
    #[arg(long, conflicts_with = "profile")]
    fast: bool,
}

impl UpArgs {
    fn profile(&self) -> Profile {
        if self.fast {
            Profile::Fast
        } else {
            self.profile
        }
    }
}

fn parse_profile(s: &str) -> Result<Profile, String> {
    s.parse()
}

fn parse_variable(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| format!("expected name=value, got {s:?}"))
}

fn main() -> ExitCode {
    // Routine guest errors (a dropped store, a trapped request) must not each pay for a
    // captured backtrace; panics keep theirs (RUST_BACKTRACE). Set before any thread starts.
    if std::env::var_os("RUST_LIB_BACKTRACE").is_none() {
        std::env::set_var("RUST_LIB_BACKTRACE", "0");
    }
    // Bare `tikspin` (what `cargo run` runs) means `tikspin up --build --generate-missing-secrets`.
    let command = match Cli::parse().command {
        Some(c) => c,
        None => Cli::parse_from(["tikspin", "up", "--build", "--generate-missing-secrets"])
            .command
            .expect("up parses"),
    };
    let result = match command {
        Command::Build { manifest } => tikspin_host::builder::build_all(&manifest),
        Command::Up(args) => up(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn up(args: UpArgs) -> anyhow::Result<()> {
    let profile = args.profile();
    if profile == Profile::Fast {
        // Before the runtime's threads exist; blocks allocated so far stay the system's.
        ALLOCATOR.use_mimalloc();
    }
    if args.build {
        tikspin_host::builder::build_all(&args.manifest)?;
    }
    let opts = Options {
        manifest: args.manifest,
        runtime_config: args.runtime_config_file,
        state_dir: args.state_dir,
        variables: args.variables,
        limits: Limits {
            max_instance_memory: args.max_instance_memory_mib << 20,
            request_timeout: Duration::from_secs(args.request_timeout_secs),
            max_concurrent_instances: args.max_instances,
            max_request_body: args.max_request_body_mib.map(|m| m << 20),
            max_request_head: args.max_request_head_kib.map(|k| k << 10),
            report_instance_memory: args.report_instance_memory,
            ..Limits::default()
        },
        console_logs: !args.quiet,
        compile_cache: args.compile_cache,
        generate_missing_secrets: args.generate_missing_secrets,
        profile,
        metrics_listen: args.metrics_listen,
        metrics_otlp: tikspin_host::metrics::otlp::Config::from_env(|k| std::env::var(k).ok())?,
        access_log: tikspin_host::access_log::Config {
            enabled: args.access_log == "on",
            console: !args.quiet,
            max_bytes: args.access_log_max_kib << 10,
            keep: args.access_log_keep,
        },
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        // Before the app starts, so its first request is traced (Spin: `spin_telemetry::init`).
        let telemetry = tikspin_host::telemetry::init(env!("CARGO_PKG_VERSION"))?;
        let server = RunningServer::start(&opts, args.listen).await?;
        println!("Serving http://{} (profile: {profile})", server.addr);
        if let Some(m) = server.metrics_addr {
            println!("Metrics: http://{m}/metrics");
        }
        println!("Available Routes:");
        for (route, component) in server.app.router.describe() {
            println!("  {component}: http://{}{route}", server.addr);
        }
        shutdown_signal().await;
        println!("Shutting down");
        let stopped = server.stop().await;
        if let Some(telemetry) = telemetry {
            // Flushing waits on the exporter (bounded by its timeout): off the runtime's workers.
            let _ = tokio::task::spawn_blocking(move || telemetry.shutdown()).await;
        }
        stopped
    })
}

async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn up_args(args: &[&str]) -> Result<UpArgs, clap::Error> {
        let cli = Cli::try_parse_from(["tikspin", "up"].iter().chain(args))?;
        match cli.command {
            Some(Command::Up(up)) => Ok(up),
            _ => unreachable!(),
        }
    }

    #[test]
    fn the_profile_flag_parses() {
        assert_eq!(up_args(&[]).unwrap().profile(), Profile::Spin);
        assert_eq!(up_args(&["--fast"]).unwrap().profile(), Profile::Fast);
        assert_eq!(
            up_args(&["--profile", "fast"]).unwrap().profile(),
            Profile::Fast
        );
        assert_eq!(
            up_args(&["--profile=spin"]).unwrap().profile(),
            Profile::Spin
        );
        let err = up_args(&["--profile", "turbo"]).err().unwrap().to_string();
        assert!(err.contains("spin, fast"), "{err}");
        assert!(up_args(&["--fast", "--profile", "spin"]).is_err());
    }
}
