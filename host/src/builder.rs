//! `tikspin build`: runs each component's `[component.x.build]` command, as `spin build` does.
//!
//! One thing `spin build` does not do: before a command that compiles Rust for a target
//! (`cargo build --target wasm32-wasip2`), the toolchain that command will use — the one rustup
//! picks in the component's workdir, from `rust-toolchain.toml` — is checked for that target's
//! standard library, and rustup is asked to add it when it is missing. rustup installs a
//! toolchain file's `targets` only when it installs the toolchain itself, so a machine that
//! already had the pinned toolchain lacks them, and rustc then stops with a bare
//! "can't find crate for `core`". The decision ([`plan`]) is apart from the probing
//! ([`Toolchain`]), so it is tested without touching the machine's toolchains.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};

use crate::manifest::LoadedManifest;

pub fn build_all(manifest_path: &Path) -> Result<()> {
    let loaded = LoadedManifest::load(manifest_path)?;
    let mut done: Vec<(crate::manifest::Commands, std::path::PathBuf)> = Vec::new();
    let mut targets_checked: Vec<(PathBuf, String)> = Vec::new();
    for (id, c) in &loaded.manifest.component {
        let Some(build) = &c.build else { continue };
        let workdir = loaded.dir.join(build.workdir.as_deref().unwrap_or("."));
        // Components that share a command and directory are built once.
        if done
            .iter()
            .any(|(cmd, dir)| *cmd == build.command && *dir == workdir)
        {
            continue;
        }
        // Several commands run in order, as `spin build` runs them.
        for command in build.command.iter() {
            for target in rust_targets(command) {
                let key = (workdir.clone(), target);
                if !targets_checked.contains(&key) {
                    ensure_rust_target(&SystemToolchain, &key.0, &key.1)
                        .with_context(|| format!("component.{id}.build"))?;
                    targets_checked.push(key);
                }
            }
            eprintln!("Building component {id} with `{command}`");
            let status = Command::new("sh")
                .arg("-c")
                .arg(command)
                .current_dir(&workdir)
                .status()
                .with_context(|| {
                    format!(
                        "component.{id}.build: cannot run {command:?} in {}",
                        workdir.display()
                    )
                })?;
            if !status.success() {
                bail!("component.{id}.build: `{command}` failed ({status})");
            }
        }
        done.push((build.command.clone(), workdir));
    }
    Ok(())
}

/// The Rust targets a build command compiles for: the values of `--target` in a `cargo` or
/// `rustc` command (custom `.json` targets are left to the command).
pub fn rust_targets(command: &str) -> Vec<String> {
    let words: Vec<&str> = command.split_whitespace().collect();
    let is_rust = words.iter().any(|w| {
        let name = w.rsplit('/').next().unwrap_or(w);
        name == "cargo" || name == "rustc"
    });
    if !is_rust {
        return Vec::new();
    }
    let mut targets = Vec::new();
    let mut words = words.into_iter();
    while let Some(w) = words.next() {
        let value = if w == "--target" {
            words.next()
        } else {
            w.strip_prefix("--target=")
        };
        if let Some(t) = value.map(|t| t.trim_matches(|c| c == '"' || c == '\'')) {
            if !t.is_empty() && !t.ends_with(".json") && !targets.iter().any(|x| x == t) {
                targets.push(t.to_string());
            }
        }
    }
    targets
}

/// What the machine says about one target, probed in a component's workdir.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetProbe {
    /// `rustc --print sysroot` of the toolchain selected there; `None` when rustc does not run
    /// (the build command then reports that itself).
    pub sysroot: Option<PathBuf>,
    /// `<sysroot>/lib/rustlib/<target>/lib` exists: the target's standard library is installed.
    pub installed: bool,
    /// `rustup` runs.
    pub rustup: bool,
}

/// What to do before building for a target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetPlan {
    /// Build.
    Ready,
    /// Run `rustup target add <target>`, then build.
    Install,
    /// Stop with this line.
    Stop(String),
}

pub fn plan(target: &str, probe: &TargetProbe) -> TargetPlan {
    match probe {
        TargetProbe { sysroot: None, .. }
        | TargetProbe {
            installed: true, ..
        } => TargetPlan::Ready,
        TargetProbe { rustup: true, .. } => TargetPlan::Install,
        TargetProbe {
            sysroot: Some(sysroot),
            ..
        } => TargetPlan::Stop(missing(
            target,
            sysroot,
            "rustup is not on PATH; install it from https://rustup.rs",
        )),
    }
}

/// The one line that says what is missing and what to run.
fn missing(target: &str, sysroot: &Path, why: &str) -> String {
    format!(
        "the Rust toolchain {} has no standard library for {target} ({why}): \
         run `rustup target add {target}` and build again",
        toolchain_name(sysroot)
    )
}

/// `1.95.0-x86_64-unknown-linux-gnu` out of rustup's sysroot path; the path otherwise.
fn toolchain_name(sysroot: &Path) -> String {
    match sysroot.parent().and_then(|p| p.file_name()) {
        Some(dir) if dir == "toolchains" => sysroot.file_name().unwrap().to_string_lossy().into(),
        _ => sysroot.display().to_string(),
    }
}

/// Probing and changing the toolchain a directory selects.
pub trait Toolchain {
    fn probe(&self, workdir: &Path, target: &str) -> TargetProbe;
    /// `rustup target add <target>` in `workdir`; `Err` says how it failed.
    fn add_target(&self, workdir: &Path, target: &str) -> Result<(), String>;
}

/// Checks `target` in `workdir` and installs it when it is missing and rustup can.
pub fn ensure_rust_target(toolchain: &dyn Toolchain, workdir: &Path, target: &str) -> Result<()> {
    let probe = toolchain.probe(workdir, target);
    match plan(target, &probe) {
        TargetPlan::Ready => Ok(()),
        TargetPlan::Stop(line) => bail!("{line}"),
        TargetPlan::Install => {
            let sysroot = probe.sysroot.as_deref().expect("Install implies a sysroot");
            eprintln!(
                "The Rust toolchain {} has no standard library for {target}: \
                 running `rustup target add {target}`",
                toolchain_name(sysroot)
            );
            if let Err(why) = toolchain.add_target(workdir, target) {
                bail!("{}", missing(target, sysroot, &why));
            }
            if !toolchain.probe(workdir, target).installed {
                bail!(
                    "{}",
                    missing(
                        target,
                        sysroot,
                        "`rustup target add` succeeded but the library is still missing"
                    )
                );
            }
            Ok(())
        }
    }
}

/// The machine's toolchains: `$RUSTC` (as cargo runs it) or `rustc`, and `rustup`, each run in
/// the workdir with this process's environment, as the build command will be.
pub struct SystemToolchain;

impl Toolchain for SystemToolchain {
    fn probe(&self, workdir: &Path, target: &str) -> TargetProbe {
        let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
        let sysroot = Command::new(rustc)
            .args(["--print", "sysroot"])
            .current_dir(workdir)
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()))
            .filter(|p| !p.as_os_str().is_empty());
        let installed = sysroot.as_ref().is_some_and(|s| {
            s.join("lib")
                .join("rustlib")
                .join(target)
                .join("lib")
                .is_dir()
        });
        let rustup = !installed
            && Command::new("rustup")
                .arg("--version")
                .current_dir(workdir)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
        TargetProbe {
            sysroot,
            installed,
            rustup,
        }
    }

    fn add_target(&self, workdir: &Path, target: &str) -> Result<(), String> {
        match Command::new("rustup")
            .args(["target", "add", target])
            .current_dir(workdir)
            .stdin(Stdio::null())
            .status()
        {
            Ok(s) if s.success() => Ok(()),
            Ok(s) => Err(format!("`rustup target add {target}` failed ({s})")),
            Err(e) => Err(format!("`rustup target add {target}` did not run ({e})")),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;

    use super::*;

    const SYSROOT: &str = "/home/u/.rustup/toolchains/1.95.0-x86_64-unknown-linux-gnu";

    fn probe(installed: bool, rustup: bool) -> TargetProbe {
        TargetProbe {
            sysroot: Some(PathBuf::from(SYSROOT)),
            installed,
            rustup,
        }
    }

    #[test]
    fn finds_the_targets_of_rust_commands_only() {
        let t = |c: &str| rust_targets(c);
        assert_eq!(
            t("cargo build --target wasm32-wasip2 --release"),
            ["wasm32-wasip2"]
        );
        assert_eq!(
            t("cargo build --release --target=wasm32-wasip2"),
            ["wasm32-wasip2"]
        );
        assert_eq!(
            t("/opt/bin/cargo build --target wasm32-wasip2 --target wasm32-wasip1 --target wasm32-wasip2"),
            ["wasm32-wasip2", "wasm32-wasip1"]
        );
        assert_eq!(t("cargo build --release"), Vec::<String>::new());
        assert_eq!(
            t("cargo build --target my-target.json"),
            Vec::<String>::new()
        );
        assert_eq!(
            t("tinygo build --target wasm32-wasip2"),
            Vec::<String>::new()
        );
        assert_eq!(t("npm run build"), Vec::<String>::new());
    }

    #[test]
    fn plans_from_what_was_probed() {
        let target = "wasm32-wasip2";
        assert_eq!(plan(target, &probe(true, true)), TargetPlan::Ready);
        assert_eq!(plan(target, &probe(true, false)), TargetPlan::Ready);
        assert_eq!(plan(target, &probe(false, true)), TargetPlan::Install);
        let TargetPlan::Stop(line) = plan(target, &probe(false, false)) else {
            panic!("no rustup: stop")
        };
        assert_eq!(
            line,
            "the Rust toolchain 1.95.0-x86_64-unknown-linux-gnu has no standard library for \
             wasm32-wasip2 (rustup is not on PATH; install it from https://rustup.rs): \
             run `rustup target add wasm32-wasip2` and build again"
        );
        assert!(!line.contains('\n'));
        // No rustc at all: the build command says so better than a guess here.
        let none = TargetProbe {
            sysroot: None,
            installed: false,
            rustup: true,
        };
        assert_eq!(plan(target, &none), TargetPlan::Ready);
    }

    #[test]
    fn names_a_toolchain_outside_rustup_by_its_path() {
        assert_eq!(
            toolchain_name(Path::new("/usr/lib/rust-1.95")),
            "/usr/lib/rust-1.95"
        );
    }

    /// A toolchain whose target appears when `add_target` succeeds (or not, if `sticks` is off).
    struct Fake {
        installed: RefCell<bool>,
        rustup: bool,
        add: Result<(), String>,
        sticks: bool,
        calls: RefCell<Vec<String>>,
    }

    impl Fake {
        fn new(installed: bool, rustup: bool, add: Result<(), String>) -> Self {
            Fake {
                installed: RefCell::new(installed),
                rustup,
                add,
                sticks: true,
                calls: RefCell::default(),
            }
        }
    }

    impl Toolchain for Fake {
        fn probe(&self, workdir: &Path, target: &str) -> TargetProbe {
            self.calls
                .borrow_mut()
                .push(format!("probe {target} in {}", workdir.display()));
            probe(*self.installed.borrow(), self.rustup)
        }
        fn add_target(&self, workdir: &Path, target: &str) -> Result<(), String> {
            self.calls
                .borrow_mut()
                .push(format!("add {target} in {}", workdir.display()));
            if self.add.is_ok() && self.sticks {
                *self.installed.borrow_mut() = true;
            }
            self.add.clone()
        }
    }

    #[test]
    fn installs_a_missing_target_in_the_workdir_and_goes_on() {
        let dir = Path::new("/app/components/user");
        let fake = Fake::new(false, true, Ok(()));
        ensure_rust_target(&fake, dir, "wasm32-wasip2").unwrap();
        assert_eq!(
            *fake.calls.borrow(),
            [
                "probe wasm32-wasip2 in /app/components/user",
                "add wasm32-wasip2 in /app/components/user",
                "probe wasm32-wasip2 in /app/components/user",
            ]
        );

        let ready = Fake::new(true, true, Ok(()));
        ensure_rust_target(&ready, dir, "wasm32-wasip2").unwrap();
        assert_eq!(ready.calls.borrow().len(), 1, "nothing to add");
    }

    #[test]
    fn stops_with_the_command_to_run_when_rustup_fails_or_is_absent() {
        let dir = Path::new("/app/components/user");
        let failing = Fake::new(
            false,
            true,
            Err("`rustup target add wasm32-wasip2` failed (exit status: 1)".into()),
        );
        let e = ensure_rust_target(&failing, dir, "wasm32-wasip2").unwrap_err();
        assert_eq!(
            format!("{e:#}"),
            "the Rust toolchain 1.95.0-x86_64-unknown-linux-gnu has no standard library for \
             wasm32-wasip2 (`rustup target add wasm32-wasip2` failed (exit status: 1)): \
             run `rustup target add wasm32-wasip2` and build again"
        );

        let mut useless = Fake::new(false, true, Ok(()));
        useless.sticks = false;
        let e = ensure_rust_target(&useless, dir, "wasm32-wasip2").unwrap_err();
        assert!(format!("{e:#}").contains("still missing"), "{e:#}");

        let absent = Fake::new(false, false, Ok(()));
        let e = ensure_rust_target(&absent, dir, "wasm32-wasip2").unwrap_err();
        assert!(format!("{e:#}").contains("run `rustup target add wasm32-wasip2`"));
        assert_eq!(absent.calls.borrow().len(), 1, "no rustup: nothing run");
    }
}
