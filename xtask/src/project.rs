//! Where the workspace, its target directory and cargo are.

use std::{
    ffi::OsString,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{bail, Context as _, Result};

/// The workspace this xtask belongs to.
#[derive(Debug, Clone)]
pub(crate) struct Project {
    /// The workspace root (the parent of `xtask/`).
    pub root: PathBuf,
    /// `CARGO_TARGET_DIR` when set, else `<root>/target`.
    pub target_dir: PathBuf,
}

impl Project {
    /// The workspace of this binary, and the target directory cargo builds into.
    pub(crate) fn locate() -> Self {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("xtask lives one level below the workspace root")
            .to_path_buf();
        let target_dir = match std::env::var_os("CARGO_TARGET_DIR").filter(|dir| !dir.is_empty()) {
            // Cargo reads a relative CARGO_TARGET_DIR from the current directory.
            Some(dir) => std::path::absolute(&dir).unwrap_or_else(|_| PathBuf::from(dir)),
            None => root.join("target"),
        };
        Self { root, target_dir }
    }

    /// A `cargo` command run from the workspace root, with the cargo that runs this xtask,
    /// without the variables `cargo run` set for this xtask (see [`is_set_by_cargo_run`]).
    pub(crate) fn cargo(&self) -> Command {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| OsString::from("cargo"));
        let mut command = Command::new(cargo);
        command.current_dir(&self.root);
        for (name, _) in std::env::vars_os() {
            if name.to_str().is_some_and(is_set_by_cargo_run) {
                command.env_remove(name);
            }
        }
        command
    }

    /// Runs `cargo build` with `args`, saying so first.
    pub(crate) fn build(&self, args: &[&str]) -> Result<()> {
        let line = format!("cargo build {}", args.join(" "));
        println!("xtask: {line}");
        let status = self
            .cargo()
            .arg("build")
            .args(args)
            .status()
            .context("cannot run cargo build")?;
        if !status.success() {
            bail!("{line} failed ({status})");
        }
        Ok(())
    }
}

/// Whether `name` is one of the variables `cargo run` gives the program it runs. Passed
/// on to a nested cargo they reach build scripts, and ring's tracks `CARGO_MANIFEST_DIR`:
/// a build from `cargo xtask` then looked changed to a plain `cargo build` and the other
/// way round, and each rebuilt ring and everything above it (rustls, sqlx, the app).
fn is_set_by_cargo_run(name: &str) -> bool {
    name.starts_with("CARGO_PKG_")
        || name.starts_with("CARGO_MANIFEST_")
        || matches!(
            name,
            "CARGO_CRATE_NAME" | "CARGO_BIN_NAME" | "CARGO_PRIMARY_PACKAGE"
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_variables_of_cargo_run_are_told_from_cargos_settings() {
        for name in [
            "CARGO_MANIFEST_DIR",
            "CARGO_MANIFEST_PATH",
            "CARGO_PKG_NAME",
            "CARGO_PKG_VERSION_MAJOR",
            "CARGO_CRATE_NAME",
            "CARGO_BIN_NAME",
            "CARGO_PRIMARY_PACKAGE",
        ] {
            assert!(is_set_by_cargo_run(name), "{name}");
        }
        for name in [
            "CARGO_TARGET_DIR",
            "CARGO_HOME",
            "CARGO_TERM_COLOR",
            "CARGO_BUILD_JOBS",
            "CARGO",
            "PATH",
        ] {
            assert!(!is_set_by_cargo_run(name), "{name}");
        }
    }
}
