//! `cargo run --release -p tikspin-manifests [--check]`: rewrites every derived manifest from its
//! base and overlay (see the library), or with `--check` only says which ones drifted.

use std::path::Path;
use std::process::ExitCode;

fn main() -> ExitCode {
    let check = std::env::args().any(|a| a == "--check");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut failed = false;
    for d in tikspin_manifests::DERIVED {
        let read = |p: &str| std::fs::read_to_string(root.join(p));
        let result = (|| -> anyhow::Result<bool> {
            let text = d.render(&read(d.base)?, &read(d.overlay)?)?;
            let current = read(d.output).unwrap_or_default();
            if current == text {
                return Ok(true);
            }
            if !check {
                std::fs::write(root.join(d.output), text)?;
            }
            Ok(false)
        })();
        match result {
            Ok(true) => println!("{}: up to date", d.output),
            Ok(false) if check => {
                eprintln!("{}: differs from {} + {}", d.output, d.base, d.overlay);
                failed = true;
            }
            Ok(false) => println!("{}: rewritten from {} + {}", d.output, d.base, d.overlay),
            Err(e) => {
                eprintln!("{}: {e:#}", d.output);
                failed = true;
            }
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
