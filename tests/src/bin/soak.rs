//! `bench/soak [--seconds N] [--clients N] [--warmup S] [--windows N]` (defaults: 600 s after 180 s): the soak of
//! `tikspin_e2e::soak` against a fresh host, its report printed; exits non-zero on an error, a
//! drifted counter, or resident memory that grew more than 10% after the warm-up.

use std::time::Duration;

use tikspin_e2e::soak::{run, SoakOptions};

fn main() {
    let mut opts = SoakOptions::default();
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || -> u64 {
            args.next()
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| usage(&format!("{flag} needs a number")))
        };
        match flag.as_str() {
            "--seconds" => opts.duration = Duration::from_secs(value()),
            "--warmup" => opts.warmup = Duration::from_secs(value()),
            "--clients" => opts.clients = value() as usize,
            "--windows" => opts.windows = value() as usize,
            "--upload-every" => opts.upload_every = Duration::from_secs(value()),
            other => usage(&format!("unknown argument {other:?}")),
        }
    }
    println!(
        "soak: {} s after {} s of warm-up, {} clients, {} windows",
        opts.duration.as_secs(),
        opts.warmup.as_secs(),
        opts.clients,
        opts.windows
    );
    let report = run(&opts);
    report.print();
    let flat = report.rss_growth() <= 0.10;
    println!(
        "targets: memory flat (end within 10% of warm) {}, no error {}, no drift {}",
        yes(flat),
        yes(report.errors.is_empty()),
        yes(report.drift.is_empty())
    );
    if !(flat && report.errors.is_empty() && report.drift.is_empty()) {
        std::process::exit(1);
    }
}

fn yes(b: bool) -> &'static str {
    if b {
        "met"
    } else {
        "MISSED"
    }
}

fn usage(problem: &str) -> ! {
    eprintln!("soak: {problem}\nusage: bench/soak [--seconds N] [--warmup S] [--clients N] [--windows N] [--upload-every S]");
    std::process::exit(2)
}
