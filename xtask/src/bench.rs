//! `cargo xtask bench`: provides the database server the chosen backend needs, builds the
//! app and the `bench` crate in release, and runs the `bench` binary with the server's URL
//! in its environment. The benchmark itself (scenarios, load, report) is the `bench` crate.

use std::process::{Command, ExitCode};

use anyhow::{bail, Context as _, Result};
use auth_testkit::db::Backend;

use crate::{backends::Backends, project::Project};

/// Builds, provides the server, and runs `bench` with `args`; its exit code is returned.
pub(crate) fn run(args: &[String]) -> Result<ExitCode> {
    let project = Project::locate();
    // Two builds, not one: built together, the bench's dependencies would unify their
    // features into the app's (hyper's client, say) and change the binary under test.
    // Built apart, the app is the one `cargo build --release -p app` makes.
    for package in ["app", "bench"] {
        project.build(&["--release", "--package", package])?;
    }
    // Kept until the bench ends: it may own the SecantusDB the app talks to.
    let mut backends = Backends::provide(&project, &backends(args));
    if let Some((backend, why)) = backends.not_run().next() {
        bail!("the {} backend cannot be provided: {why}", backend.name());
    }
    let bench = project.target_dir.join("release").join("bench");
    let mut command = Command::new(&bench);
    command.args(args).envs(backends.env());
    let status = command
        .status()
        .with_context(|| format!("cannot run {}", bench.display()))?;
    backends.stop();
    Ok(match status.code() {
        Some(0) => ExitCode::SUCCESS,
        Some(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        None => ExitCode::FAILURE,
    })
}

/// The backends whose servers the bench needs: the one `--backend` names, else SQLite (the
/// bench's default), and PostgreSQL too for `--instructions`, which counts on both.
fn backends(args: &[String]) -> Vec<Backend> {
    match backend(args) {
        Some(backend) => vec![backend],
        None if args.iter().any(|arg| arg == "--instructions") => {
            vec![Backend::Sqlite, Backend::Postgres]
        }
        None => vec![Backend::Sqlite],
    }
}

/// The backend that `--backend` (or `--backend=`) asks for, if any. The flags are the
/// bench's to check: an unknown backend needs no server here and is refused there.
fn backend(args: &[String]) -> Option<Backend> {
    let name =
        args.iter()
            .enumerate()
            .find_map(|(at, arg)| match arg.strip_prefix("--backend")? {
                "" => args.get(at + 1).map(String::as_str),
                rest => rest.strip_prefix('='),
            })?;
    Backend::from_name(name)
}
