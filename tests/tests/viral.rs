//! The viral video, briefly (the figures come from `bench/viral`): 16 connections liking and
//! unliking one video for a few seconds on SQLite and on MariaDB; no request may fail and every
//! counter must equal its rows afterwards.

use std::time::Duration;

use tikspin_e2e::viral::{run, Backend, ViralOptions};

fn check(backend: Backend) {
    let opts = ViralOptions {
        backend,
        connections: 16,
        duration: Duration::from_secs(4),
        host_args: Vec::new(),
    };
    let report = run(&opts);
    report.print(&opts);
    assert!(report.requests >= 16, "too few requests to mean anything: {}", report.requests);
    assert!(report.errors.is_empty(), "{:#?}", report.errors);
    assert!(report.drift.is_empty(), "{:#?}", report.drift);
}

#[test]
fn one_hot_video_keeps_exact_counters_on_sqlite() {
    check(Backend::Sqlite);
}

#[test]
fn one_hot_video_keeps_exact_counters_on_mariadb() {
    check(Backend::MariaDb);
}
