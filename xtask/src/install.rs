//! `cargo xtask install`: builds (or updates) the schema of the configured storage by
//! running the app's own `app install`, with the configuration it finds from where xtask
//! was run (`App.toml`, `.env`, environment): one definition of both, and xtask needs none
//! of the app's code.

use std::process::ExitCode;

use anyhow::{Context as _, Result};

use crate::project::Project;

/// Runs `app install` (built if needed) and answers with its exit code.
pub(crate) fn run() -> Result<ExitCode> {
    let project = Project::locate();
    let mut command = project.cargo();
    command
        .arg("run")
        .arg("--manifest-path")
        .arg(project.root.join("Cargo.toml"))
        .args([
            "--quiet",
            "--package",
            "app",
            "--bin",
            "app",
            "--",
            "install",
        ]);
    // The app reads App.toml and .env from its working directory: the caller's, as when
    // it is run by hand.
    if let Ok(here) = std::env::current_dir() {
        command.current_dir(here);
    }
    println!("xtask: running `app install`");
    let status = command
        .status()
        .context("cannot run `cargo run -p app -- install`")?;
    Ok(match status.code() {
        Some(0) => ExitCode::SUCCESS,
        Some(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        None => ExitCode::FAILURE,
    })
}
