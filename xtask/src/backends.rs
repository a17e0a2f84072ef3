//! The database servers the tests and the benchmark need: PostgreSQL and MariaDB are
//! expected to run already (they are checked), MongoDB comes from `MONGODB_URL` or is a
//! SecantusDB started here and stopped when [`Backends`] is dropped. SQLite and the
//! in-memory stores need no server and are always provided.
//!
//! SecantusDB is the Rust build (`secantus-mdb` on crates.io), built once into a cache
//! outside the checkout; when it cannot be built or started, the Python build (PyPI
//! `secantusdb`) is used instead, with a banner saying why. Both are GPL-2.0: they are
//! test tools run as separate processes, never linked into or shipped with this project.

use std::{
    ffi::OsString,
    fs::File,
    net::{SocketAddr, TcpStream},
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, Instant},
};

use anyhow::{bail, Context as _, Result};

use auth_domain::redact_url;
use auth_testkit::Backend;

use crate::{
    process::{free_port, log_tail, ChildGuard, TempDir},
    project::Project,
    venv::PinnedTool,
};

/// The crate of the Rust SecantusDB (a MongoDB wire-protocol server), built with
/// `cargo install`. GPL-2.0: only ever run as a separate process by this xtask.
const SECANTUS_RS_CRATE: &str = "secantus-mdb";
/// Its pinned release; each version is cached in a directory of its own.
const SECANTUS_RS_VERSION: &str = "0.5.3-beta.196";
/// The server binary that crate installs.
const SECANTUS_RS_BIN: &str = "secantusd-rs";
/// The pinned release of the Python SecantusDB on PyPI, the fallback.
const SECANTUS_PY_VERSION: &str = "0.7.0b3";
/// The Python SecantusDB, the fallback when the Rust one cannot be built.
const SECANTUS_PY: PinnedTool = PinnedTool {
    package: "secantusdb",
    version: SECANTUS_PY_VERSION,
    venv: "secantusdb-venv",
    program: "secantusd-py",
    label: "SecantusDB",
};
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
#[derive(Debug, Clone)]
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
    secantus: Option<Server>,
}

/// A database server started here: stopped, then its storage removed, on drop.
#[derive(Debug)]
struct Server {
    /// Declared before `storage`: fields drop in order, and the server must stop before
    /// its files are removed.
    guard: ChildGuard,
    /// The fresh directory it stores its data in, if it writes any.
    storage: Option<TempDir>,
    /// The Rust SecantusDB's binary, for tests that start (and kill) servers of their own.
    binary: Option<PathBuf>,
}

impl Server {
    fn stop(mut self) {
        self.guard.stop();
        drop(self.storage.take());
    }
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

    /// The environment (`DATABASE_URL_POSTGRES`, ...) that hands the provided servers to
    /// tests, and `SECANTUSD_RS_BIN`, the Rust SecantusDB, when one was started.
    pub(crate) fn env(&self) -> impl Iterator<Item = (&'static str, &str)> {
        let binary = self
            .secantus
            .as_ref()
            .and_then(|server| server.binary.as_deref()?.to_str())
            .map(|path| ("SECANTUSD_RS_BIN", path));
        self.entries
            .iter()
            .filter_map(|(backend, status)| match status {
                Status::Provided { url, .. } => Some((backend.env_key()?, url.as_str())),
                Status::NotRun { .. } => None,
            })
            .chain(binary)
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
        if let Some(server) = self.secantus.take() {
            println!("xtask: stopping SecantusDB");
            server.stop();
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

/// MongoDB: `MONGODB_URL` if set and reachable, else a SecantusDB started here: the Rust
/// one, or the Python one (with a banner saying why) when that cannot be had.
fn provide_mongodb(project: &Project) -> (Status, Option<Server>) {
    let key = Backend::Mongodb.env_key().expect("MongoDB has a key");
    if let Some(url) = Backend::Mongodb.server_url() {
        return (check(Backend::Mongodb, url, key), None);
    }
    let rust_error = match start_secantus_rs(project) {
        Ok((server, version, url)) => {
            let how = format!(
                "SecantusDB {version} (Rust, {SECANTUS_RS_BIN}) started by xtask, log {}",
                server.guard.log().display()
            );
            return (Status::Provided { url, how }, Some(server));
        }
        Err(error) => error,
    };
    println!("{}", fallback_banner(&rust_error));
    // The first line only: the rest is a log tail, shown in the banner.
    let rust_why = format!("{rust_error:#}");
    let rust_why = rust_why.lines().next().unwrap_or_default();
    match start_secantus_py(&project.target_dir) {
        Ok((guard, url)) => {
            let how = format!(
                "SecantusDB {SECANTUS_PY_VERSION} (Python, a FALLBACK: the Rust one failed: \
                 {rust_why}) started by xtask, log {}",
                guard.log().display()
            );
            let server = Server {
                guard,
                storage: None,
                binary: None,
            };
            (Status::Provided { url, how }, Some(server))
        }
        Err(error) => {
            let why = format!(
                "{key} is not set and SecantusDB could not be started: the Rust one: \
                 {rust_error:#}; the Python one: {error:#}"
            );
            (Status::NotRun { why }, None)
        }
    }
}

/// Says, so that no one misses it, that the tests talk to the slow Python server, and why.
fn fallback_banner(rust_error: &anyhow::Error) -> String {
    let rule = "!".repeat(78);
    let why: String = format!("{rust_error:#}")
        .lines()
        .map(|line| format!("!!   {line}\n"))
        .collect();
    format!(
        "\n{rule}\n!! FALLBACK: the Rust SecantusDB ({SECANTUS_RS_CRATE} {SECANTUS_RS_VERSION}) \
         is not in use:\n{why}!! MongoDB is the Python SecantusDB {SECANTUS_PY_VERSION} instead, \
         which is slower\n{rule}"
    )
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

pub(crate) fn connect_any(addresses: &[SocketAddr]) -> Result<()> {
    let mut last = None;
    for address in addresses {
        match TcpStream::connect_timeout(address, CONNECT_TIMEOUT) {
            Ok(_) => return Ok(()),
            Err(error) => last = Some(anyhow::Error::new(error).context(format!("{address}"))),
        }
    }
    Err(last.unwrap_or_else(|| anyhow::anyhow!("the host resolves to no address")))
}

/// Starts the Rust SecantusDB (built first if its pinned version is not cached) on a free
/// loopback port with fresh storage, and waits for it. Returns it, its version and its URL.
fn start_secantus_rs(project: &Project) -> Result<(Server, String, String)> {
    let binary = secantus_rs_binary(project)?;
    let version = binary_version(&binary)?;
    let storage = TempDir::new("auth-service-secantus")?;
    // An explicit, empty config: auto-discovery would pick up a developer's ~/.secantus one.
    let config = storage.path().join("secantusd.toml");
    std::fs::write(
        &config,
        "# Empty on purpose: written by `cargo xtask`, built-in defaults apply.\n",
    )
    .with_context(|| format!("cannot write {}", config.display()))?;
    let port = free_port()?;
    let mut command = Command::new(&binary);
    command
        .arg("--config")
        .arg(&config)
        .args(["--host", "127.0.0.1", "--port", &port.to_string()])
        .arg("--storage-path")
        .arg(storage.path().join("data"))
        .current_dir(storage.path());
    println!("xtask: starting SecantusDB {version} (Rust) on 127.0.0.1:{port}");
    // The log outlives the storage, for a look after a failed run.
    let log = project
        .target_dir
        .join("secantusdb")
        .join("secantusd-rs.log");
    let mut guard = ChildGuard::spawn("SecantusDB (Rust)", &mut command, &log)?;
    guard.wait_for_port(
        SocketAddr::from(([127, 0, 0, 1], port)),
        SECANTUS_START_TIMEOUT,
    )?;
    let server = Server {
        guard,
        storage: Some(storage),
        binary: Some(binary),
    };
    // The server advertises a single-node replica set; a direct connection keeps the driver
    // from looking for other members under the name it advertises.
    let url = format!("mongodb://127.0.0.1:{port}/?directConnection=true");
    Ok((server, version, url))
}

/// The cached binary of the pinned Rust SecantusDB, built with `cargo install` when missing.
fn secantus_rs_binary(project: &Project) -> Result<PathBuf> {
    let cache_home = cache_home(std::env::var_os("XDG_CACHE_HOME"), std::env::var_os("HOME"))
        .context("neither XDG_CACHE_HOME nor HOME is set: no cache for the Rust SecantusDB")?;
    let cache = cache_home.join("auth-service").join(SECANTUS_RS_CRATE);
    let root = cache.join(SECANTUS_RS_VERSION);
    let binary = root.join("bin").join(SECANTUS_RS_BIN);
    if binary.is_file() {
        return Ok(binary);
    }
    build_secantus_rs(project, &cache, &root)
        .with_context(|| format!("cannot build {SECANTUS_RS_CRATE} {SECANTUS_RS_VERSION}"))?;
    if !binary.is_file() {
        bail!(
            "cargo install succeeded, yet there is no {}",
            binary.display()
        );
    }
    Ok(binary)
}

/// `cargo install`s the pinned crate into `root`, building in a target dir of `cache` so
/// that the workspace's own build is left alone.
fn build_secantus_rs(project: &Project, cache: &Path, root: &Path) -> Result<()> {
    // The server links WiredTiger, whose build needs cmake: say so now, not in minutes.
    let has_cmake = Command::new("cmake")
        .arg("--version")
        .output()
        .is_ok_and(|output| output.status.success());
    if !has_cmake {
        bail!("cmake is not installed (on Debian or Ubuntu: `apt-get install cmake`)");
    }
    std::fs::create_dir_all(cache).with_context(|| format!("cannot create {}", cache.display()))?;
    let log = cache.join(format!("build-{SECANTUS_RS_VERSION}.log"));
    let output = File::create(&log)
        .with_context(|| format!("cannot create the build log {}", log.display()))?;
    let errors = output
        .try_clone()
        .context("cannot share the build log between stdout and stderr")?;
    println!(
        "xtask: building {SECANTUS_RS_CRATE} {SECANTUS_RS_VERSION} (the Rust SecantusDB) into {}: \
         once per version, about 10 minutes; output in {}",
        root.display(),
        log.display()
    );
    let started = Instant::now();
    let status = project
        .cargo()
        .args([
            "install",
            SECANTUS_RS_CRATE,
            "--version",
            SECANTUS_RS_VERSION,
        ])
        .args(["--locked", "--ignore-rust-version", "--root"])
        .arg(root)
        .env("CARGO_TARGET_DIR", cache.join("build"))
        // Outside the workspace: its `.cargo/config.toml` is not for this build.
        .current_dir(cache)
        .stdin(std::process::Stdio::null())
        .stdout(output)
        .stderr(errors)
        .status()
        .context("cannot run cargo install")?;
    if !status.success() {
        bail!(
            "cargo install failed ({status}); the end of its log {}:\n{}",
            log.display(),
            log_tail(&log)
        );
    }
    println!(
        "xtask: {SECANTUS_RS_CRATE} {SECANTUS_RS_VERSION} built in {}s",
        started.elapsed().as_secs()
    );
    Ok(())
}

/// The cache directory of the XDG base directory spec: `$XDG_CACHE_HOME` when it is an
/// absolute path (the spec says to ignore a relative one), else `$HOME/.cache`.
fn cache_home(xdg_cache_home: Option<OsString>, home: Option<OsString>) -> Option<PathBuf> {
    xdg_cache_home
        .map(PathBuf::from)
        .filter(|dir| dir.is_absolute())
        .or_else(|| {
            home.filter(|home| !home.is_empty())
                .map(|home| PathBuf::from(home).join(".cache"))
        })
}

/// The version a `secantusd-rs --version` reports, which must be the pinned one.
fn binary_version(binary: &Path) -> Result<String> {
    let output = Command::new(binary)
        .arg("--version")
        .output()
        .with_context(|| format!("cannot run {} --version", binary.display()))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    match reported_version(&stdout) {
        Some(version) if output.status.success() && version == SECANTUS_RS_VERSION => {
            Ok(version.to_owned())
        }
        _ => bail!(
            "{} --version answered {:?} ({}), not {SECANTUS_RS_BIN} {SECANTUS_RS_VERSION}; \
             remove it to have it built again",
            binary.display(),
            stdout.trim(),
            output.status
        ),
    }
}

/// The version in a `secantusd-rs --version` line (`secantusd-rs 0.5.3-beta.196`).
fn reported_version(stdout: &str) -> Option<&str> {
    let mut words = stdout.split_whitespace();
    (words.next()? == SECANTUS_RS_BIN)
        .then(|| words.next())
        .flatten()
}

/// Installs the Python SecantusDB if needed, starts it on a free loopback port and waits
/// for it.
fn start_secantus_py(target_dir: &Path) -> Result<(ChildGuard, String)> {
    let daemon = SECANTUS_PY.install(target_dir)?;
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
    println!("xtask: starting SecantusDB {SECANTUS_PY_VERSION} (Python) on 127.0.0.1:{port}");
    let mut guard = ChildGuard::spawn(
        "SecantusDB (Python)",
        &mut command,
        &dir.join("secantusd.log"),
    )?;
    guard.wait_for_port(
        SocketAddr::from(([127, 0, 0, 1], port)),
        SECANTUS_START_TIMEOUT,
    )?;
    Ok((guard, format!("mongodb://127.0.0.1:{port}")))
}

#[cfg(test)]
mod tests {
    use std::{ffi::OsString, path::PathBuf};

    use super::{cache_home, reported_version};

    #[test]
    fn the_cache_is_xdg_cache_home_when_it_is_set_to_an_absolute_path() {
        let cache = cache_home(
            Some(OsString::from("/var/cache/me")),
            Some(OsString::from("/home/me")),
        );
        assert_eq!(cache, Some(PathBuf::from("/var/cache/me")));
    }

    #[test]
    fn the_cache_is_under_home_when_xdg_cache_home_is_unset_empty_or_relative() {
        let home = Some(OsString::from("/home/me"));
        let expected = Some(PathBuf::from("/home/me/.cache"));
        assert_eq!(cache_home(None, home.clone()), expected);
        assert_eq!(cache_home(Some(OsString::new()), home.clone()), expected);
        assert_eq!(cache_home(Some(OsString::from("cache")), home), expected);
    }

    #[test]
    fn without_xdg_cache_home_or_home_there_is_no_cache() {
        assert_eq!(cache_home(None, None), None);
        assert_eq!(cache_home(None, Some(OsString::new())), None);
    }

    #[test]
    fn the_version_is_read_from_the_servers_version_line() {
        assert_eq!(
            reported_version("secantusd-rs 0.5.3-beta.196\n"),
            Some("0.5.3-beta.196")
        );
        assert_eq!(reported_version("secantusd-py 0.7.0b3\n"), None);
        assert_eq!(reported_version("secantusd-rs\n"), None);
        assert_eq!(reported_version(""), None);
    }
}
