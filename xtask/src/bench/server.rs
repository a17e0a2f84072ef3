//! The app under test: built in release, started on a free port against a fresh
//! database, stopped when dropped.

use std::{
    fmt::Write as _,
    io::Read as _,
    net::{Ipv4Addr, SocketAddr},
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, Instant},
};

use anyhow::{bail, Context as _, Result};
use auth_testkit::db::{Backend, TestDatabase};
use hyper::Method;

use super::load::{send_once, Template};
use crate::{
    process::{free_port, ChildGuard},
    project::Project,
};

/// How long the app may take to answer its first request.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// The release binaries the bench runs.
#[derive(Debug)]
pub struct Binaries {
    /// The app.
    pub app: PathBuf,
    /// The `two_reads` example: the baseline `GET /profile` is compared with.
    pub two_reads: PathBuf,
}

/// Builds the app and the `two_reads` baseline in release mode.
pub fn build_release(project: &Project) -> Result<Binaries> {
    // Two invocations, not one: an example pulls in the package's dev-dependencies, whose
    // features would then be unified into the app's dependencies and change the binary
    // under test. Built apart, the app is the one `cargo build --release` makes.
    for args in [
        ["build", "--release", "-p", "app", "--bin", "app"],
        ["build", "--release", "-p", "app", "--example", "two_reads"],
    ] {
        println!("xtask: cargo {}", args.join(" "));
        let status = project
            .cargo()
            .args(args)
            .status()
            .context("cannot run cargo build")?;
        if !status.success() {
            bail!("cargo {} failed ({status})", args.join(" "));
        }
    }
    let release = project.target_dir.join("release");
    let binaries = Binaries {
        app: release.join("app"),
        two_reads: release.join("examples").join("two_reads"),
    };
    for binary in [&binaries.app, &binaries.two_reads] {
        if !binary.is_file() {
            bail!("the build succeeded but {} is missing", binary.display());
        }
    }
    Ok(binaries)
}

/// A running release app.
#[derive(Debug)]
pub struct AppServer {
    guard: ChildGuard,
    /// Where it listens (on 127.0.0.1).
    pub addr: SocketAddr,
}

impl AppServer {
    /// Starts `binary` on `database` and waits until `GET /` answers 200.
    pub async fn start(binary: &Path, project: &Project, database: &TestDatabase) -> Result<Self> {
        let port = free_port()?;
        let backend = database.backend();
        let bench_dir = project.target_dir.join("bench");
        // An empty working directory: a developer's `.env` or `App.toml` must not change
        // what is measured (argon2 parameters, say).
        let workdir = bench_dir.join("workdir");
        std::fs::create_dir_all(&workdir)
            .with_context(|| format!("cannot create {}", workdir.display()))?;
        let mut command = Command::new(binary);
        // Likewise the app's settings in this shell: the bench sets the ones it needs and
        // leaves the rest at their defaults.
        for key in app::config::KEYS {
            command.env_remove(key);
        }
        command
            .current_dir(&workdir)
            .env("SECRET_KEY", random_secret()?)
            .env("DEBUG", "false")
            .env("SESSION_COOKIE_SECURE", "false")
            .env("LOG", "warn")
            .env("HOST", "127.0.0.1")
            .env("PORT", port.to_string());
        if backend == Backend::Mongodb {
            command
                .env("STORAGE", "mongodb")
                .env("MONGODB_URL", database.url())
                .env("MONGODB_DB", database.mongo_db_name());
        } else {
            command
                .env("STORAGE", "sql")
                .env("DATABASE_URL", database.url());
        }
        let log = bench_dir.join(format!("{backend}-server.log"));
        let guard = ChildGuard::spawn("the app", &mut command, &log)?;
        let mut server = Self {
            guard,
            addr: SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
        };
        wait_until_ready(&mut server.guard, server.addr, "the app", "/").await?;
        Ok(server)
    }

    /// The server's peak resident set size so far (`VmHWM`), in bytes.
    pub fn peak_rss_bytes(&mut self) -> Result<u64> {
        self.guard.ensure_running()?;
        let path = format!("/proc/{}/status", self.guard.pid());
        let status =
            std::fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
        let kib = status
            .lines()
            .find_map(|line| line.strip_prefix("VmHWM:"))
            .and_then(|rest| {
                rest.trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse::<u64>()
                    .ok()
            })
            .with_context(|| format!("no VmHWM line in {path}"))?;
        Ok(kib * 1024)
    }

    /// The operating system's id of the app.
    pub fn pid(&self) -> u32 {
        self.guard.pid()
    }

    /// Where the app's output went.
    pub fn log(&self) -> &Path {
        self.guard.log()
    }

    /// Stops the app (also done on drop).
    pub fn stop(&mut self) {
        self.guard.stop();
    }
}

/// The running `two_reads` baseline, stopped when dropped.
#[derive(Debug)]
pub struct BaselineServer {
    guard: ChildGuard,
    /// Where it listens (on 127.0.0.1).
    pub addr: SocketAddr,
}

impl BaselineServer {
    /// Starts `binary` on the SQL database at `database_url`, which must hold a user, and
    /// waits until `GET /two-reads` answers 200.
    pub async fn start(
        binary: &Path,
        project: &Project,
        backend: Backend,
        database_url: &str,
    ) -> Result<Self> {
        let port = free_port()?;
        let bench_dir = project.target_dir.join("bench");
        let mut command = Command::new(binary);
        command
            .current_dir(&bench_dir)
            .env("DATABASE_URL", database_url)
            .env("PORT", port.to_string());
        let log = bench_dir.join(format!("{backend}-two-reads.log"));
        let guard = ChildGuard::spawn("the two_reads baseline", &mut command, &log)?;
        let mut server = Self {
            guard,
            addr: SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
        };
        // `/two-reads` rather than `/`: it fails until the user is found, so a 200 means
        // the database is reachable too.
        wait_until_ready(&mut server.guard, server.addr, "the baseline", "/two-reads").await?;
        Ok(server)
    }

    /// The operating system's id of the baseline.
    pub fn pid(&self) -> u32 {
        self.guard.pid()
    }

    /// Stops the baseline (also done on drop).
    pub fn stop(&mut self) {
        self.guard.stop();
    }
}

/// Waits until `who`, the child behind `guard`, answers `GET path` with a success.
async fn wait_until_ready(
    guard: &mut ChildGuard,
    addr: SocketAddr,
    who: &str,
    path: &'static str,
) -> Result<()> {
    let request = Template::new(Method::GET, addr, path);
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        guard.ensure_running()?;
        let answer = send_once(addr, &request).await;
        if answer.is_ok_and(|response| response.status().is_success()) {
            return Ok(());
        }
        if Instant::now() >= deadline {
            bail!(
                "{who} did not answer GET {path} within {}s; see {}",
                START_TIMEOUT.as_secs(),
                guard.log().display()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// 64 random bytes from the kernel, as 128 hex digits.
fn random_secret() -> Result<String> {
    let mut bytes = [0_u8; 64];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut urandom| urandom.read_exact(&mut bytes))
        .context("cannot read /dev/urandom for SECRET_KEY")?;
    Ok(bytes
        .iter()
        .fold(String::with_capacity(128), |mut hex, byte| {
            // Writing to a String cannot fail.
            let _ = write!(hex, "{byte:02x}");
            hex
        }))
}
