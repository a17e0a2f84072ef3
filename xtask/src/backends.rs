//! The database servers the tests and the benchmark need: PostgreSQL and MariaDB are
//! expected to run already (they are checked), MongoDB comes from `MONGODB_URL` or is a
//! SecantusDB started here and stopped when [`Backends`] is dropped.

use std::{
    fmt,
    net::{SocketAddr, TcpStream},
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

use anyhow::{bail, Context as _, Result};

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

/// A database server that some tests need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Server {
    /// PostgreSQL.
    Postgres,
    /// MySQL or MariaDB.
    Mysql,
    /// MongoDB, or SecantusDB in its place.
    Mongodb,
}

impl Server {
    /// Every server, in the order reports list them.
    pub const ALL: [Server; 3] = [Server::Postgres, Server::Mysql, Server::Mongodb];

    /// The environment variable that carries the server's URL to the tests.
    pub fn env_key(self) -> &'static str {
        match self {
            Server::Postgres => "DATABASE_URL_POSTGRES",
            Server::Mysql => "DATABASE_URL_MYSQL",
            Server::Mongodb => "MONGODB_URL",
        }
    }

    fn default_url(self) -> Option<&'static str> {
        match self {
            Server::Postgres => Some("postgres://postgres@127.0.0.1:5432/test"),
            Server::Mysql => Some("mysql://root@127.0.0.1:3306/test"),
            Server::Mongodb => None,
        }
    }

    fn default_port(self) -> u16 {
        match self {
            Server::Postgres => 5432,
            Server::Mysql => 3306,
            Server::Mongodb => 27017,
        }
    }
}

impl fmt::Display for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `pad`, not `write_str`: reports align these names with `{:<9}`.
        f.pad(match self {
            Server::Postgres => "postgres",
            Server::Mysql => "mysql",
            Server::Mongodb => "mongodb",
        })
    }
}

/// Whether a server could be provided, and how.
#[derive(Debug)]
pub enum Status {
    /// Reachable at `url`; `how` says where the URL came from.
    Provided { url: String, how: String },
    /// Not available; `why` says what failed.
    NotRun { why: String },
}

/// The servers asked for, each provided or not; owns the SecantusDB it may have started.
#[derive(Debug)]
pub struct Backends {
    entries: Vec<(Server, Status)>,
    /// Stopped when this is dropped, whatever happened to the run.
    secantus: Option<ChildGuard>,
}

impl Backends {
    /// Provides each of `servers`; a server that cannot be provided is recorded, not fatal.
    pub fn provide(project: &Project, servers: &[Server]) -> Self {
        let mut secantus = None;
        let entries = servers
            .iter()
            .map(|&server| {
                let status = match server {
                    Server::Postgres | Server::Mysql => provide_running(server),
                    Server::Mongodb => {
                        let (status, guard) = provide_mongodb(project);
                        secantus = guard;
                        status
                    }
                };
                (server, status)
            })
            .collect();
        Self { entries, secantus }
    }

    /// The environment (`DATABASE_URL_POSTGRES`, ...) that hands the provided servers to tests.
    pub fn env(&self) -> impl Iterator<Item = (&'static str, &str)> {
        self.entries
            .iter()
            .filter_map(|(server, status)| match status {
                Status::Provided { url, .. } => Some((server.env_key(), url.as_str())),
                Status::NotRun { .. } => None,
            })
    }

    /// The servers that could not be provided, with the reason.
    pub fn not_run(&self) -> impl Iterator<Item = (Server, &str)> {
        self.entries
            .iter()
            .filter_map(|(server, status)| match status {
                Status::NotRun { why } => Some((*server, why.as_str())),
                Status::Provided { .. } => None,
            })
    }

    /// One line per server: provided where and how, or why not.
    pub fn describe(&self) -> String {
        self.entries
            .iter()
            .map(|(server, status)| match status {
                Status::Provided { url, how } => {
                    format!("  {server:<9} provided  {} ({how})\n", redact(url))
                }
                Status::NotRun { why } => format!("  {server:<9} NOT RUN   {why}\n"),
            })
            .collect()
    }

    /// Stops SecantusDB now, if this started one (dropping does the same).
    pub fn stop(&mut self) {
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
fn provide_running(server: Server) -> Status {
    let key = server.env_key();
    match std::env::var(key).ok().filter(|url| !url.is_empty()) {
        Some(url) => check(server, url, key),
        None => {
            let url = server
                .default_url()
                .expect("SQL servers have a default URL")
                .to_owned();
            check(server, url, &format!("default; set {key} to change it"))
        }
    }
}

/// MongoDB: `MONGODB_URL` if set and reachable, else a SecantusDB started here.
fn provide_mongodb(project: &Project) -> (Status, Option<ChildGuard>) {
    let key = Server::Mongodb.env_key();
    if let Some(url) = std::env::var(key).ok().filter(|url| !url.is_empty()) {
        return (check(Server::Mongodb, url, key), None);
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
fn check(server: Server, url: String, source: &str) -> Status {
    match tcp_addresses(server, &url) {
        None => Status::Provided {
            url,
            how: format!("{source}; not checked: no single TCP host in the URL"),
        },
        Some(Err(error)) => Status::NotRun {
            why: format!("{} ({source}): {error:#}", redact(&url)),
        },
        Some(Ok(addresses)) => match connect_any(&addresses) {
            Ok(()) => Status::Provided {
                url,
                how: source.to_owned(),
            },
            Err(error) => Status::NotRun {
                why: format!("cannot connect to {} ({source}): {error:#}", redact(&url)),
            },
        },
    }
}

fn tcp_addresses(server: Server, url: &str) -> Option<Result<Vec<SocketAddr>>> {
    if url.starts_with("mongodb+srv:") {
        return None;
    }
    let parsed = match url::Url::parse(url) {
        Ok(parsed) => parsed,
        // A Mongo seed list (`host1,host2`) is no URL to this parser, but valid.
        Err(_) if server == Server::Mongodb => return None,
        Err(error) => return Some(Err(error).context("the URL does not parse")),
    };
    parsed.host_str().filter(|host| !host.is_empty())?;
    Some(
        parsed
            .socket_addrs(|| Some(server.default_port()))
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

/// A URL with its password replaced, for messages.
pub fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            // Fails only for URLs that cannot have a password, which this one has.
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        _ => url.to_owned(),
    }
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
