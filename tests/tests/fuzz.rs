//! Property-based fuzzing of the real app with Schemathesis (PyPI), driven by the OpenAPI
//! document the app serves at `/openapi.json` (`openapi.yaml`). For every operation it sends
//! the document's examples, boundary values and generated valid and invalid requests, plus
//! methods the path does not allow, and checks: no 5xx; every answer JSON as declared and
//! matching its response schema; wrong methods answered 405 with `Allow`. A finding fails this
//! test with Schemathesis' report (each failure with a `curl` line to reproduce it).
//!
//! Schemathesis is found in `TIKSPIN_SCHEMATHESIS`, else `.ci/venv/bin/schemathesis` (what
//! `.ci/run` installs), else on `PATH`; without it the test fails. The run is bounded:
//! `TIKSPIN_FUZZ_EXAMPLES` generated cases per operation (default 50) with a fixed seed
//! (`TIKSPIN_FUZZ_SEED`), so CI repeats the same cases.
//!
//! Requests carry a registered user's token as `Authorization: Bearer`, so the endpoints that
//! require one get past authentication; the `token` query parameter (a security scheme in the
//! document) is not generated, since a fuzzed one would win over the header.

use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use tikspin_e2e::api::register;
use tikspin_e2e::harness::TestHost;
use tikspin_e2e::workspace_root;

/// The pinned version `.ci/run` installs; a different one only gets a warning.
const PINNED: &str = "4.32.5";

fn schemathesis() -> PathBuf {
    if let Some(path) = std::env::var_os("TIKSPIN_SCHEMATHESIS") {
        return PathBuf::from(path);
    }
    let venv = workspace_root().join(".ci/venv/bin/schemathesis");
    if venv.exists() {
        return venv;
    }
    match Command::new("schemathesis").arg("--version").output() {
        Ok(out) if out.status.success() => PathBuf::from("schemathesis"),
        _ => panic!(
            "Schemathesis is not installed, and this test needs it. Install it as .ci/run does:\n  \
             python3 -m venv .ci/venv && .ci/venv/bin/pip install schemathesis=={PINNED}\n\
             or point TIKSPIN_SCHEMATHESIS at a schemathesis executable."
        ),
    }
}

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_string())
}

#[test]
fn schemathesis_finds_nothing() {
    let bin = schemathesis();
    let version = Command::new(&bin)
        .arg("--version")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", bin.display()));
    let version = String::from_utf8_lossy(&version.stdout).trim().to_string();
    if !version.ends_with(PINNED) {
        eprintln!("note: {version}, while .ci/run pins {PINNED}");
    }

    let host = TestHost::app();
    let user = register(&host.client, "fuzz");
    // The first feed seeds the welcome video, which the document's id examples (1) name.
    assert_eq!(host.client.get("/douyin/feed/").status, 200);
    let examples = env_or("TIKSPIN_FUZZ_EXAMPLES", "50");
    let seed = env_or("TIKSPIN_FUZZ_SEED", "20261207");
    // Schemathesis writes nothing into the repository: it runs in a scratch directory.
    let scratch = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let out = Command::new(&bin)
        .current_dir(scratch.path())
        .env("NO_COLOR", "1")
        .arg("run")
        .arg(format!("{}/openapi.json", host.client.base))
        .args([
            "--checks",
            "not_a_server_error,response_schema_conformance,content_type_conformance,\
             unsupported_method,allow_header_conformance",
            "--phases",
            "examples,coverage,fuzzing",
            "--max-examples",
            &examples,
            "--seed",
            &seed,
            "--workers",
            "2",
            "--request-timeout",
            "30",
            "--generation-database",
            "none",
            "--generation-with-security-parameters",
            "false",
            "--suppress-health-check",
            "too_slow,filter_too_much",
            "--no-color",
        ])
        .arg("--header")
        .arg(format!("Authorization: Bearer {}", user.token))
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", bin.display()));
    let took = started.elapsed();
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // The summary (cases run, time) is worth seeing in a passing run too (`--nocapture`).
    println!("{version}, {examples} examples per operation, seed {seed}, {took:.1?}:\n{report}");
    assert!(
        out.status.success(),
        "Schemathesis found failures ({version}, seed {seed}, {took:.1?}):\n{report}\n\
         host log:\n{}",
        host.log()
    );
}
