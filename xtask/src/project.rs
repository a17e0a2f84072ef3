//! Where the workspace, its target directory and cargo are.

use std::{
    ffi::OsString,
    path::{Path, PathBuf},
    process::Command,
};

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

    /// A `cargo` command run from the workspace root, with the cargo that runs this xtask.
    pub(crate) fn cargo(&self) -> Command {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| OsString::from("cargo"));
        let mut command = Command::new(cargo);
        command.current_dir(&self.root);
        command
    }
}
