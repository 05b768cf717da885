//! `tikspin build`: runs each component's `[component.x.build]` command, as `spin build` does.

use std::path::Path;
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::manifest::LoadedManifest;

pub fn build_all(manifest_path: &Path) -> Result<()> {
    let loaded = LoadedManifest::load(manifest_path)?;
    let mut done: Vec<(crate::manifest::Commands, std::path::PathBuf)> = Vec::new();
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
