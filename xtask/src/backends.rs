//! The database servers the tests and the benchmark need: PostgreSQL and MariaDB are
//! expected to run already (they are checked), MongoDB comes from `MONGODB_URL` or is a
//! SecantusDB started here and stopped when [`Backends`] is dropped. SQLite and the
//! in-memory stores need no server and are always provided.

use std::{
    net::{SocketAddr, TcpStream},
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

use anyhow::{bail, Context as _, Result};

use auth_domain::redact_url;
use auth_testkit::Backend;

use crate::{
    process::{free_port, ChildGuard},
    project::Project,
};

/// The pinned SecantusDB release (a MongoDB wire-protocol server on PyPI).
const SECANTUS_VERSION: &str = "0.7.0b3";
/// How long SecantusDB may take to accept connections.
const SECANTUS_START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a TCP connect to a database server may take before it counts as unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// The TCP port a server listens on when its URL names none.
fn default_port(backend: Backend) -> u16 {
    match backend {
        Backend::Postgres => 5432,
        Backend::Mysql => 3306,
        Backend::Mongodb => 27017,
        Backend::Sqlite | Backend::Memory => 0,
    }
}

/// Whether a server could be provided, and how.
#[derive(Debug)]
pub(crate) enum Status {
    /// Reachable at `url`; `how` says where the URL came from.
    Provided { url: String, how: String },
    /// Not available; `why` says what failed.
    NotRun { why: String },
}

/// The backends asked for, each provided or not; owns the SecantusDB it may have started.
#[derive(Debug)]
pub(crate) struct Backends {
    entries: Vec<(Backend, Status)>,
    /// Stopped when this is dropped, whatever happened to the run.
    secantus: Option<ChildGuard>,
}

impl Backends {
    /// Provides each of `backends`; one that cannot be provided is recorded, not fatal.
    pub(crate) fn provide(project: &Project, backends: &[Backend]) -> Self {
        let mut secantus = None;
        let entries = backends
            .iter()
            .map(|&backend| {
                let status = match backend {
                    Backend::Sqlite => Status::Provided {
                        url: String::new(),
                        how: "a temporary file per test".to_owned(),
                    },
                    Backend::Memory => Status::Provided {
                        url: String::new(),
                        how: "in the test process".to_owned(),
                    },
                    Backend::Postgres | Backend::Mysql => provide_running(backend),
                    Backend::Mongodb => {
                        let (status, guard) = provide_mongodb(project);
                        secantus = guard;
                        status
                    }
                };
                (backend, status)
            })
            .collect();
        Self { entries, secantus }
    }

    /// The environment (`DATABASE_URL_POSTGRES`, ...) that hands the provided servers to tests.
    pub(crate) fn env(&self) -> impl Iterator<Item = (&'static str, &str)> {
        self.entries
            .iter()
            .filter_map(|(backend, status)| match status {
                Status::Provided { url, .. } => Some((backend.env_key()?, url.as_str())),
                Status::NotRun { .. } => None,
            })
    }

    /// The backends that could not be provided, with the reason.
    pub(crate) fn not_run(&self) -> impl Iterator<Item = (Backend, &str)> {
        self.entries
            .iter()
            .filter_map(|(backend, status)| match status {
                Status::NotRun { why } => Some((*backend, why.as_str())),
                Status::Provided { .. } => None,
            })
    }

    /// One line per backend: provided where and how, or why not.
    pub(crate) fn describe(&self) -> String {
        self.entries
            .iter()
            .map(|(backend, status)| {
                let name = backend.name();
                match status {
                    Status::Provided { url, how } if url.is_empty() => {
                        format!("  {name:<9} provided  {how}\n")
                    }
                    Status::Provided { url, how } => {
                        format!("  {name:<9} provided  {} ({how})\n", redact_url(url))
                    }
                    Status::NotRun { why } => format!("  {name:<9} NOT RUN   {why}\n"),
                }
            })
            .collect()
    }

    /// Stops SecantusDB now, if this started one (dropping does the same).
    pub(crate) fn stop(&mut self) {
        if let Some(mut guard) = self.secantus.take() {
            println!("xtask: stopping SecantusDB");
            guard.stop();
        }
    }
}

impl Drop for Backends {
    fn drop(&mut self) {
        self.stop();
    }
}

/// PostgreSQL or MariaDB: the URL from the environment or the local default, if reachable.
fn provide_running(backend: Backend) -> Status {
    let key = backend.env_key().expect("a server backend has a key");
    let from_env = std::env::var(key).ok().filter(|url| !url.is_empty());
    let source = if from_env.is_some() {
        key.to_owned()
    } else {
        format!("default; set {key} to change it")
    };
    let url = backend
        .server_url()
        .expect("PostgreSQL and MySQL have a default server");
    check(backend, url, &source)
}

/// MongoDB: `MONGODB_URL` if set and reachable, else a SecantusDB started here.
fn provide_mongodb(project: &Project) -> (Status, Option<ChildGuard>) {
    let key = Backend::Mongodb.env_key().expect("MongoDB has a key");
    if let Some(url) = Backend::Mongodb.server_url() {
        return (check(Backend::Mongodb, url, key), None);
    }
    match start_secantus(&project.target_dir) {
        Ok((guard, url)) => {
            let how = format!(
                "SecantusDB {SECANTUS_VERSION} started by xtask, log {}",
                guard.log().display()
            );
            (Status::Provided { url, how }, Some(guard))
        }
        Err(error) => {
            let why = format!("{key} is not set and SecantusDB could not be started: {error:#}");
            (Status::NotRun { why }, None)
        }
    }
}

/// `Provided` when a TCP connection to the URL's host and port succeeds. URLs without a
/// TCP address (a Unix socket, several Mongo hosts, SRV records) are passed on unchecked.
fn check(backend: Backend, url: String, source: &str) -> Status {
    match tcp_addresses(backend, &url) {
        None => Status::Provided {
            url,
            how: format!("{source}; not checked: no single TCP host in the URL"),
        },
        Some(Err(error)) => Status::NotRun {
            why: format!("{} ({source}): {error:#}", redact_url(&url)),
        },
        Some(Ok(addresses)) => match connect_any(&addresses) {
            Ok(()) => Status::Provided {
                url,
                how: source.to_owned(),
            },
            Err(error) => Status::NotRun {
                why: format!(
                    "cannot connect to {} ({source}): {error:#}",
                    redact_url(&url)
                ),
            },
        },
    }
}

fn tcp_addresses(backend: Backend, url: &str) -> Option<Result<Vec<SocketAddr>>> {
    if url.starts_with("mongodb+srv:") {
        return None;
    }
    let parsed = match url::Url::parse(url) {
        Ok(parsed) => parsed,
        // A Mongo seed list (`host1,host2`) is no URL to this parser, but valid.
        Err(_) if backend == Backend::Mongodb => return None,
        Err(error) => return Some(Err(error).context("the URL does not parse")),
    };
    parsed.host_str().filter(|host| !host.is_empty())?;
    Some(
        parsed
            .socket_addrs(|| Some(default_port(backend)))
            .context("cannot resolve its host"),
    )
}

fn connect_any(addresses: &[SocketAddr]) -> Result<()> {
    let mut last = None;
    for address in addresses {
        match TcpStream::connect_timeout(address, CONNECT_TIMEOUT) {
            Ok(_) => return Ok(()),
            Err(error) => last = Some(anyhow::Error::new(error).context(format!("{address}"))),
        }
    }
    Err(last.unwrap_or_else(|| anyhow::anyhow!("the host resolves to no address")))
}

/// Installs SecantusDB if needed, starts it on a free loopback port and waits for it.
fn start_secantus(target_dir: &Path) -> Result<(ChildGuard, String)> {
    let daemon = install_secantus(target_dir)?;
    let dir = target_dir.join("secantusdb");
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    // An explicit, empty config: auto-discovery would pick up a developer's ~/.secantus one.
    let config = dir.join("secantusd.toml");
    std::fs::write(
        &config,
        "# Empty on purpose: written by `cargo xtask`, built-in defaults apply.\n",
    )
    .with_context(|| format!("cannot write {}", config.display()))?;
    let port = free_port()?;
    let mut command = Command::new(&daemon);
    command
        .arg("--config")
        .arg(&config)
        .args([
            "--host",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--storage-path",
            ":memory:",
        ])
        .current_dir(&dir);
    println!("xtask: starting SecantusDB {SECANTUS_VERSION} on 127.0.0.1:{port}");
    let mut guard = ChildGuard::spawn("SecantusDB", &mut command, &dir.join("secantusd.log"))?;
    guard.wait_for_port(
        SocketAddr::from(([127, 0, 0, 1], port)),
        SECANTUS_START_TIMEOUT,
    )?;
    Ok((guard, format!("mongodb://127.0.0.1:{port}")))
}

/// The `secantusd-py` of a venv under the target dir, made and filled on first use.
fn install_secantus(target_dir: &Path) -> Result<PathBuf> {
    let venv = target_dir.join("secantusdb-venv");
    let python = venv.join("bin").join("python");
    let daemon = venv.join("bin").join("secantusd-py");
    if installed_version(&python).as_deref() == Some(SECANTUS_VERSION) && daemon.exists() {
        return Ok(daemon);
    }
    println!(
        "xtask: installing SecantusDB {SECANTUS_VERSION} into {} (once)",
        venv.display()
    );
    let started = std::time::Instant::now();
    run_quietly(
        Command::new("python3").arg("-m").arg("venv").arg(&venv),
        "python3 -m venv",
    )
    .context("cannot create the SecantusDB venv (is python3 with its venv module installed?)")?;
    run_quietly(
        Command::new(&python)
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
            ])
            .arg(format!("secantusdb=={SECANTUS_VERSION}")),
        "pip install",
    )
    .context("cannot install SecantusDB from PyPI")?;
    match installed_version(&python) {
        Some(version) if version == SECANTUS_VERSION && daemon.exists() => {
            println!(
                "xtask: SecantusDB installed in {}s",
                started.elapsed().as_secs()
            );
            Ok(daemon)
        }
        other => bail!(
            "pip reported success, yet {} has secantusdb {other:?} and no {}",
            venv.display(),
            daemon.display()
        ),
    }
}

/// The secantusdb version installed for `python`, if any.
fn installed_version(python: &Path) -> Option<String> {
    let output = Command::new(python)
        .args([
            "-c",
            "import importlib.metadata as m; print(m.version('secantusdb'))",
        ])
        .output()
        .ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).trim().to_owned())
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
