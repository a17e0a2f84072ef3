//! Python tools the tests run (schemathesis, the Python SecantusDB), each pinned to one
//! PyPI version in a venv of its own under the target directory, made on first use.

use std::{
    path::{Path, PathBuf},
    process::Command,
    time::Instant,
};

use anyhow::{bail, Context as _, Result};

/// A PyPI package pinned to one version, and the program of it that is run.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PinnedTool {
    /// The PyPI distribution, e.g. `schemathesis`.
    pub package: &'static str,
    pub version: &'static str,
    /// The venv's folder name under the target directory.
    pub venv: &'static str,
    /// The program in the venv's `bin/`.
    pub program: &'static str,
    /// How the tool is called in messages.
    pub label: &'static str,
}

impl PinnedTool {
    /// The tool's program, installed first when the venv is missing or holds another
    /// version.
    pub(crate) fn install(&self, target_dir: &Path) -> Result<PathBuf> {
        let venv = target_dir.join(self.venv);
        let python = venv.join("bin").join("python");
        let program = venv.join("bin").join(self.program);
        let installed = |python: &Path| self.installed_version(python);
        if installed(&python).as_deref() == Some(self.version) && program.exists() {
            return Ok(program);
        }
        println!(
            "xtask: installing {} {} into {} (once)",
            self.label,
            self.version,
            venv.display()
        );
        let started = Instant::now();
        run_quietly(
            Command::new("python3").arg("-m").arg("venv").arg(&venv),
            "python3 -m venv",
        )
        .with_context(|| {
            format!(
                "cannot create the {} venv (is python3 with its venv module installed?)",
                self.label
            )
        })?;
        run_quietly(
            Command::new(&python)
                .args([
                    "-m",
                    "pip",
                    "install",
                    "--quiet",
                    "--disable-pip-version-check",
                ])
                .arg(format!("{}=={}", self.package, self.version)),
            "pip install",
        )
        .with_context(|| format!("cannot install {} from PyPI", self.label))?;
        match installed(&python) {
            Some(version) if version == self.version && program.exists() => {
                println!(
                    "xtask: {} installed in {}s",
                    self.label,
                    started.elapsed().as_secs()
                );
                Ok(program)
            }
            other => bail!(
                "pip reported success, yet {} has {} {other:?} and {} {}",
                venv.display(),
                self.package,
                if program.exists() { "has" } else { "no" },
                program.display()
            ),
        }
    }

    /// The version of the package installed for `python`, if any.
    fn installed_version(&self, python: &Path) -> Option<String> {
        let output = Command::new(python)
            .arg("-c")
            .arg(format!(
                "import importlib.metadata as m; print(m.version('{}'))",
                self.package
            ))
            .output()
            .ok()?;
        output
            .status
            .success()
            .then(|| String::from_utf8_lossy(&output.stdout).trim().to_owned())
    }
}

/// Runs a command with its output captured, which is shown only when it fails.
fn run_quietly(command: &mut Command, what: &str) -> Result<()> {
    let output = command.output().with_context(|| {
        format!(
            "cannot run {what} ({})",
            command.get_program().to_string_lossy()
        )
    })?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let tail: Vec<&str> = stderr.lines().rev().take(15).collect();
        bail!(
            "{what} failed ({}):\n{}",
            output.status,
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        );
    }
    Ok(())
}
