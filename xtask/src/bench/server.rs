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

/// Builds the app in release mode and returns its binary.
pub fn build_release(project: &Project) -> Result<PathBuf> {
    println!("xtask: cargo build --release -p app");
    let status = project
        .cargo()
        .args(["build", "--release", "-p", "app"])
        .status()
        .context("cannot run cargo build")?;
    if !status.success() {
        bail!("cargo build --release -p app failed ({status})");
    }
    let binary = project.target_dir.join("release").join("app");
    if !binary.is_file() {
        bail!("the build succeeded but {} is missing", binary.display());
    }
    Ok(binary)
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
        server.wait_until_ready().await?;
        Ok(server)
    }

    async fn wait_until_ready(&mut self) -> Result<()> {
        let root = Template::new(Method::GET, self.addr, "/");
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            self.guard.ensure_running()?;
            let answer = send_once(self.addr, &root).await;
            if answer.is_ok_and(|response| response.status().is_success()) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                bail!(
                    "the app did not answer GET / within {}s; see {}",
                    START_TIMEOUT.as_secs(),
                    self.guard.log().display()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
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
