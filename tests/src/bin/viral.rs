//! `bench/viral [--seconds N] [--connections N] [--backend sqlite|mariadb|both] [--fast]`
//! (defaults: 20 s, 64 connections, both): the viral video of `tikspin_e2e::viral`, its figures
//! printed; exits non-zero on an error or a drifted counter. The target, p99 ≤ 100 ms,
//! is printed as met or missed (a benchmark, so it does not fail the run).

use std::process::ExitCode;
use std::time::Duration;

use tikspin_e2e::viral::{run, Backend, ViralOptions};

fn main() -> ExitCode {
    let mut seconds = 20;
    let mut connections = 64;
    let mut backends = vec![Backend::Sqlite, Backend::MariaDb];
    let mut host_args = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().unwrap_or_else(|| usage(&format!("{flag} needs a value")));
        match flag.as_str() {
            "--seconds" => seconds = value().parse().unwrap_or_else(|_| usage("--seconds: a number")),
            "--connections" => {
                connections = value().parse().unwrap_or_else(|_| usage("--connections: a number"))
            }
            "--backend" => {
                backends = match value().as_str() {
                    "sqlite" => vec![Backend::Sqlite],
                    "mariadb" => vec![Backend::MariaDb],
                    "both" => vec![Backend::Sqlite, Backend::MariaDb],
                    other => usage(&format!("--backend {other:?}: sqlite, mariadb or both")),
                }
            }
            "--fast" => host_args.push("--fast".to_string()),
            other => usage(&format!("unknown argument {other:?}")),
        }
    }
    let mut ok = true;
    for backend in backends {
        let opts = ViralOptions {
            backend,
            connections,
            duration: Duration::from_secs(seconds),
            host_args: host_args.clone(),
        };
        let report = run(&opts);
        report.print(&opts);
        let p99 = report.percentile(0.99);
        println!(
            "  target p99 ≤ 100 ms: {}; counters exact: {}",
            if p99 <= Duration::from_millis(100) { "met" } else { "MISSED" },
            if report.errors.is_empty() && report.drift.is_empty() { "yes" } else { "NO" }
        );
        ok &= report.errors.is_empty() && report.drift.is_empty();
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn usage(problem: &str) -> ! {
    eprintln!("viral: {problem}\nusage: bench/viral [--seconds N] [--connections N] [--backend sqlite|mariadb|both] [--fast]");
    std::process::exit(2)
}
