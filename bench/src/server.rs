//! The servers under test: the release app and the `baseline` server, found beside this
//! executable, each started on a free port with its output in a log file, directly or
//! under callgrind, and killed when stopped or dropped (or asked to exit, when callgrind
//! must write what it counted).

use std::{
    fmt::Write as _,
    fs::File,
    io::Read as _,
    net::{Ipv4Addr, SocketAddr},
    path::{Path, PathBuf},
    process::Stdio,
    time::Duration,
};

use anyhow::{bail, Context as _, Result};
use auth_testkit::db::{Backend, TestDatabase};
use hyper::Method;
use tokio::process::{Child, Command};

use crate::load::{send_once, Template};

/// How long a server may take to answer its first request (under callgrind, which runs
/// it some fifty times slower, the migrations included).
const START_TIMEOUT: Duration = Duration::from_secs(120);

/// How long a server asked to exit may take to do so (callgrind writes its counts then).
const EXIT_TIMEOUT: Duration = Duration::from_secs(60);

/// How a server is started.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Launch<'a> {
    /// As itself.
    Direct,
    /// Under `valgrind --tool=callgrind`, which writes the instructions it counted to this
    /// file when the server exits.
    Callgrind(&'a Path),
}

impl Launch<'_> {
    fn command(self, program: &Path) -> Command {
        match self {
            Self::Direct => Command::new(program),
            Self::Callgrind(out) => {
                let mut command = Command::new("valgrind");
                command
                    .arg("--tool=callgrind")
                    .arg(format!("--callgrind-out-file={}", out.display()))
                    .arg(program);
                command
            }
        }
    }
}

/// Where the bench finds what it runs and puts what it writes.
#[derive(Debug)]
pub(crate) struct Paths {
    /// The release app.
    pub(crate) app: PathBuf,
    /// The `baseline` server.
    pub(crate) baseline: PathBuf,
    /// `<target-dir>/bench/`: reports, server logs, the app's working directory.
    pub(crate) out: PathBuf,
}

impl Paths {
    /// The `app` and `baseline` binaries of the directory holding this executable
    /// (`<target-dir>/release/`), and `bench/` beside that directory.
    pub(crate) fn beside_this_executable() -> Result<Self> {
        let exe = std::env::current_exe().context("cannot locate this executable")?;
        let dir = exe
            .parent()
            .with_context(|| format!("{} has no parent directory", exe.display()))?;
        let paths = Self {
            app: dir.join("app"),
            baseline: dir.join("baseline"),
            out: dir.parent().unwrap_or(dir).join("bench"),
        };
        for binary in [&paths.app, &paths.baseline] {
            if !binary.is_file() {
                bail!(
                    "{} is missing: build it with `cargo build --release -p app` and \
                     `cargo build --release -p bench` (`cargo xtask bench` does)",
                    binary.display()
                );
            }
        }
        Ok(paths)
    }
}

/// A running server; killed when stopped or dropped.
#[derive(Debug)]
pub(crate) struct Server {
    name: &'static str,
    child: Child,
    pid: u32,
    log: PathBuf,
    /// Where it listens (on 127.0.0.1).
    pub(crate) addr: SocketAddr,
}

/// The app's `SECRET_KEY`, kept across restarts so that a session cookie stays valid.
pub(crate) struct SecretKey(String);

impl SecretKey {
    /// 64 random bytes from the kernel, as 128 hex digits.
    pub(crate) fn random() -> Result<Self> {
        let mut bytes = [0_u8; 64];
        File::open("/dev/urandom")
            .and_then(|mut urandom| urandom.read_exact(&mut bytes))
            .context("cannot read /dev/urandom for SECRET_KEY")?;
        Ok(Self(bytes.iter().fold(
            String::with_capacity(128),
            |mut hex, byte| {
                // Writing to a String cannot fail.
                let _ = write!(hex, "{byte:02x}");
                hex
            },
        )))
    }
}

impl Server {
    /// Starts the app on `database` and waits until `GET /` answers. With `purge_every`,
    /// the app purges expired sessions that often (its first purge starts with it);
    /// without, at its default interval.
    pub(crate) async fn app(
        paths: &Paths,
        database: &TestDatabase,
        secret: &SecretKey,
        purge_every: Option<Duration>,
        launch: Launch<'_>,
    ) -> Result<Self> {
        // An empty working directory: a developer's `.env` or `App.toml` must not change
        // what is measured (argon2 parameters, say).
        let workdir = paths.out.join("workdir");
        std::fs::create_dir_all(&workdir)
            .with_context(|| format!("cannot create {}", workdir.display()))?;
        let mut command = launch.command(&paths.app);
        // Likewise the app's settings in this shell: the bench sets the ones it needs and
        // leaves the rest at their defaults.
        for key in app::config::settings().map(|setting| setting.key) {
            command.env_remove(key);
        }
        command
            .current_dir(&workdir)
            .env("SECRET_KEY", &secret.0)
            .env("DEBUG", "false")
            .env("SESSION_COOKIE_SECURE", "false")
            .env("LOG", "warn")
            .env("HOST", "127.0.0.1");
        let backend = database.backend();
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
        let log = match purge_every {
            Some(every) => {
                command.env("SESSION_PURGE_INTERVAL", every.as_secs().max(1).to_string());
                paths.out.join(format!("{backend}-purge-server.log"))
            }
            None => paths.out.join(format!("{backend}-server.log")),
        };
        Self::start("the app", command, &log, "/").await
    }

    /// Starts the `baseline` server on `database`, which must hold a user, and waits until
    /// `GET /one-read` answers: it fails until the user is found, so an answer means the
    /// database is reachable too.
    pub(crate) async fn baseline(
        paths: &Paths,
        database: &TestDatabase,
        launch: Launch<'_>,
    ) -> Result<Self> {
        let mut command = launch.command(&paths.baseline);
        command
            .current_dir(&paths.out)
            .env_remove("DATABASE_URL")
            .env_remove("MONGODB_URL")
            .env_remove("MONGODB_DB");
        let backend = database.backend();
        if backend == Backend::Mongodb {
            command
                .env("MONGODB_URL", database.url())
                .env("MONGODB_DB", database.mongo_db_name());
        } else {
            command.env("DATABASE_URL", database.url());
        }
        let log = paths.out.join(format!("{backend}-baseline.log"));
        Self::start("the baseline server", command, &log, "/one-read").await
    }

    /// Spawns `command` on a free port, its output in `log`, and waits until it answers
    /// `GET ready_path` with a success.
    async fn start(
        name: &'static str,
        mut command: Command,
        log: &Path,
        ready_path: &'static str,
    ) -> Result<Self> {
        // Port 0 gets a free port from the kernel, released here for the server to bind.
        let port = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .and_then(|listener| listener.local_addr())
            .context("cannot find a free port on 127.0.0.1")?
            .port();
        let output = File::create(log)
            .with_context(|| format!("cannot create the log file {}", log.display()))?;
        let program = command
            .as_std()
            .get_args()
            .last()
            .unwrap_or_else(|| command.as_std().get_program())
            .to_string_lossy()
            .into_owned();
        let child = command
            .env("PORT", port.to_string())
            .stdin(Stdio::null())
            .stderr(output.try_clone().context("cannot reopen the log file")?)
            .stdout(output)
            // The bench may fail, or be interrupted, between start and stop.
            .kill_on_drop(true)
            .spawn()
            // Names the program only: the command's Debug would show SECRET_KEY.
            .with_context(|| format!("cannot start {name} ({program})"))?;
        let pid = child
            .id()
            .with_context(|| format!("{name} exited at once"))?;
        let mut server = Self {
            name,
            child,
            pid,
            log: log.to_owned(),
            addr: SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
        };
        server.wait_until_ready(ready_path).await?;
        Ok(server)
    }

    /// Waits until the server answers `GET path` with a success, failing if it exits or
    /// [`START_TIMEOUT`] passes first.
    async fn wait_until_ready(&mut self, path: &'static str) -> Result<()> {
        let addr = self.addr;
        let request = Template::new(Method::GET, addr, path);
        let answered = async {
            while !send_once(addr, &request)
                .await
                .is_ok_and(|response| response.status().is_success())
            {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        };
        tokio::select! {
            () = answered => Ok(()),
            exited = self.child.wait() => bail!(
                "{} exited early ({}); see {}",
                self.name,
                exited.map_or_else(|error| error.to_string(), |status| status.to_string()),
                self.log.display()
            ),
            () = tokio::time::sleep(START_TIMEOUT) => bail!(
                "{} did not answer GET {path} within {}s; see {}",
                self.name,
                START_TIMEOUT.as_secs(),
                self.log.display()
            ),
        }
    }

    /// The server's peak resident set size so far (`VmHWM`), in bytes.
    pub(crate) fn peak_rss_bytes(&self) -> Result<u64> {
        let path = format!("/proc/{}/status", self.pid);
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
            // An exited process that is not reaped yet has a status without memory lines.
            .with_context(|| format!("no VmHWM line in {path}: has {} exited?", self.name))?;
        Ok(kib * 1024)
    }

    /// The operating system's id of the server.
    pub(crate) fn pid(&self) -> u32 {
        self.pid
    }

    /// Where the server's output goes.
    pub(crate) fn log(&self) -> &Path {
        &self.log
    }

    /// Asks the server to exit (SIGTERM, which both servers answer by finishing what is in
    /// flight) and waits until it has: callgrind writes its counts only then.
    pub(crate) async fn terminate(mut self) -> Result<()> {
        // `kill(1)` rather than `libc::kill`: this workspace forbids `unsafe`.
        let signalled = std::process::Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status()
            .with_context(|| format!("cannot run kill(1) to stop {}", self.name))?;
        if !signalled.success() {
            bail!("kill -TERM {} failed: has {} exited?", self.pid, self.name);
        }
        let exited = tokio::time::timeout(EXIT_TIMEOUT, self.child.wait())
            .await
            .with_context(|| {
                format!(
                    "{} did not exit within {}s of SIGTERM; see {}",
                    self.name,
                    EXIT_TIMEOUT.as_secs(),
                    self.log.display()
                )
            })?
            .with_context(|| format!("cannot wait for {}", self.name))?;
        if !exited.success() {
            bail!(
                "{} exited with {exited} after SIGTERM; see {}",
                self.name,
                self.log.display()
            );
        }
        Ok(())
    }

    /// Kills the server and waits for it to exit: the measurement is over and the
    /// database is thrown away, so there is nothing for a graceful shutdown to save.
    pub(crate) async fn stop(mut self) -> Result<()> {
        self.child
            .kill()
            .await
            .with_context(|| format!("cannot stop {}", self.name))
    }
}
