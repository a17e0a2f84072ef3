//! `cargo xtask install`: builds (or updates) the schema of the configured storage with the
//! app's own configuration and install code, so there is exactly one definition of it.

use std::{process::ExitCode, time::Instant};

use anyhow::{Context as _, Result};

/// Loads the app's configuration and runs `app::install` on it. Running it twice is fine.
pub(crate) fn run() -> Result<ExitCode> {
    let config = app::Config::load()
        .context("cannot load the configuration (App.toml, .env, environment)")?;
    let target = config.redacted_storage_url();
    let what = match config.storage {
        app::Storage::Sql => "SQL schema",
        app::Storage::Mongodb => "MongoDB indexes",
    };
    println!("xtask: installing the {what} on {target}");
    let started = Instant::now();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the tokio runtime")?;
    runtime
        .block_on(app::install(&config))
        .with_context(|| format!("install on {target} failed"))?;
    println!(
        "xtask: {what} ready on {target} ({} ms)",
        started.elapsed().as_millis()
    );
    Ok(ExitCode::SUCCESS)
}
