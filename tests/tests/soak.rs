//! The CI variant of the soak (`bench/soak` runs the long one): a short mixed load, then no
//! error, no counter drifting from its rows, and memory that stops growing once warm. The
//! figures are printed for the issue notes.

use std::time::Duration;

use tikspin_e2e::soak::{run, SoakOptions};

#[test]
fn a_short_soak_has_no_error_no_drift_and_flat_memory() {
    let report = run(&SoakOptions {
        duration: Duration::from_secs(40),
        warmup: Duration::from_secs(15),
        clients: 6,
        windows: 4,
        upload_every: Duration::from_secs(5),
    });
    report.print();
    assert!(report.requests > 0, "no load ran");
    assert!(report.errors.is_empty(), "errors: {:#?}", report.errors);
    assert!(
        report.drift.is_empty(),
        "counter drift: {:#?}",
        report.drift
    );
    // The long soak's target is 10%; a short run on a shared CI machine gets some slack.
    assert!(
        report.rss_growth() <= 0.20,
        "resident memory grew {:.1}% after the warm-up: {:?}",
        100.0 * report.rss_growth(),
        report.rss_kib
    );
}
