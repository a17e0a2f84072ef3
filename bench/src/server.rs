//! The servers under test: the release app and the `baseline` server, found beside this
//! executable, each started by the test kit's [`AppCommand`] (a cleared environment plus
//! what the bench sets, a free port) with its output in a log file, directly or under
//! callgrind, and killed when stopped or dropped (or asked to exit, when callgrind must
//! write what it counted).

use std::{
    fmt::Write as _,
    fs::File,
    io::Read as _,
    net::SocketAddr,
    path::{Path, PathBuf},
    time::Duration,
};

use anyhow::{bail, Context as _, Result};
use auth_testkit::{db::TestDatabase, AppCommand, AppProcess};

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
    /// `command` as this launch runs it.
    fn wrap(self, command: AppCommand) -> AppCommand {
        match self {
            Self::Direct => command,
            Self::Callgrind(out) => command.wrapped_in(
                "valgrind",
                [
                    "--tool=callgrind".to_owned(),
                    format!("--callgrind-out-file={}", out.display()),
                ],
            ),
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
    process: AppProcess,
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

/// The app's `PUBLIC_URL`, the relying party of its passkeys: a host name, as WebAuthn
/// takes no IP address, so not the address the app listens on. The bench's authenticator
/// signs for this origin, whatever port the app is on.
pub(crate) const PUBLIC_URL: &str = "http://localhost:5000";

/// The per-client limit the bench's app runs with: above the logins it sends at once.
pub(crate) const LOGIN_FAILURES_PER_CLIENT: usize = 32;

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
        // An empty working directory and no settings of this shell's: a developer's
        // `.env`, `App.toml` or exported keys must not change what is measured (argon2
        // parameters, say). The bench sets the ones it needs and leaves the rest at their
        // defaults.
        let workdir = paths.out.join("workdir");
        std::fs::create_dir_all(&workdir)
            .with_context(|| format!("cannot create {}", workdir.display()))?;
        let mut command = AppCommand::new(&paths.app)
            .current_dir(&workdir)
            .env("SECRET_KEY", &secret.0)
            .env("DEBUG", "false")
            .env("SESSION_COOKIE_SECURE", "false")
            .env("LOG", "warn")
            .env("PUBLIC_URL", PUBLIC_URL)
            // Every bench client is one address logging in to one account, up to 16 at
            // once (the login storm): attempts in flight count against the per-client
            // limit (#19), so it is raised above that, and the throttled scenario fails
            // past it first.
            .env(
                "LOGIN_FAILURES_PER_CLIENT",
                LOGIN_FAILURES_PER_CLIENT.to_string(),
            )
            // The users of the second factor's scenarios (#21), hundreds, are registered from
            // this one address: the registrations' limit per address is off.
            .env("REGISTRATIONS_PER_ADDRESS", "0")
            .env("PASSKEY_SIGN_INS_PER_ADDRESS", "0")
            .database(database);
        let backend = database.backend();
        let log = match purge_every {
            Some(every) => {
                command = command.env("SESSION_PURGE_INTERVAL", every.as_secs().max(1).to_string());
                paths.out.join(format!("{backend}-purge-server.log"))
            }
            None => paths.out.join(format!("{backend}-server.log")),
        };
        Self::start("the app", launch.wrap(command), log, "/").await
    }

    /// Starts the `baseline` server on `database`, which must hold a user, and waits until
    /// `GET /one-read` answers: it fails until the user is found, so an answer means the
    /// database is reachable too.
    pub(crate) async fn baseline(
        paths: &Paths,
        database: &TestDatabase,
        launch: Launch<'_>,
    ) -> Result<Self> {
        let command = AppCommand::new(&paths.baseline)
            .current_dir(&paths.out)
            .database(database);
        let log = paths
            .out
            .join(format!("{}-baseline.log", database.backend()));
        Self::start(
            "the baseline server",
            launch.wrap(command),
            log,
            "/one-read",
        )
        .await
    }

    /// Starts `command` (on a free port, with a cleared environment and its output in
    /// `log`) and waits until it answers `GET ready_path` with a success, failing if it
    /// exits or [`START_TIMEOUT`] passes first.
    async fn start(
        name: &'static str,
        command: AppCommand,
        log: PathBuf,
        ready_path: &'static str,
    ) -> Result<Self> {
        let process = command
            .named(name)
            .log_to(&log)
            .ready_path(ready_path)
            .timeout(START_TIMEOUT)
            .spawn_ready()
            .await?;
        Ok(Self {
            name,
            addr: process.addr(),
            process,
            log,
        })
    }

    /// The server's peak resident set size so far (`VmHWM`), in bytes.
    pub(crate) fn peak_rss_bytes(&self) -> Result<u64> {
        let kib = self
            .process
            .status_kib("VmHWM")
            // An exited process that is not reaped yet has a status without memory lines.
            .with_context(|| {
                format!(
                    "no VmHWM line in /proc/{}/status: has {} exited?",
                    self.pid(),
                    self.name
                )
            })?;
        Ok(kib * 1024)
    }

    /// The operating system's id of the server.
    pub(crate) fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// Where the server's output goes.
    pub(crate) fn log(&self) -> &Path {
        &self.log
    }

    /// Asks the server to exit (SIGTERM, which both servers answer by finishing what is in
    /// flight) and waits until it has: callgrind writes its counts only then.
    pub(crate) async fn terminate(mut self) -> Result<()> {
        self.process
            .terminate()
            .with_context(|| format!("cannot stop {}", self.name))?;
        let exited = self
            .process
            .exited_within(EXIT_TIMEOUT)
            .await
            .with_context(|| {
                format!(
                    "{} did not exit within {}s of SIGTERM; see {}",
                    self.name,
                    EXIT_TIMEOUT.as_secs(),
                    self.log.display()
                )
            })?;
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
    pub(crate) fn stop(self) {
        self.process.kill();
    }
}
