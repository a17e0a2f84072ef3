//! The app binary as a child process, the one way tests and the benchmark start it.
//!
//! [`AppCommand`] starts the binary whose path the caller gives (a test in `crates/app`
//! passes `env!("CARGO_BIN_EXE_app")`, the bench its release build) with a **cleared
//! environment** plus exactly the settings the caller sets, in an empty working directory
//! (no developer's `.env` or `App.toml` leaks in), and then either:
//!
//! - [`AppCommand::spawn_ready`]: serves on a free loopback port (`HOST`, `PORT`), is
//!   waited for until `GET /` (or [`AppCommand::ready_path`]) answers with a success, and
//!   is killed when the [`AppProcess`] is dropped;
//! - [`AppCommand::run_to_exit`]: runs to completion (an admin command), stdin given,
//!   stdout and stderr captured;
//! - [`AppCommand::expect_start_failure`]: as `run_to_exit`, and must fail;
//! - [`AppCommand::spawn_piped`]: runs with piped stdio, for a test that talks to it while
//!   it runs ([`AppRun`], killed when dropped).
//!
//! [`SetSessionCookie`] is the one reader of the session cookie a response sets.
//!
//! ```no_run
//! # async fn demo(database: &auth_testkit::TestDatabase) {
//! use auth_testkit::process::AppCommand;
//!
//! let app = AppCommand::new("target/debug/app")
//!     .env("SECRET_KEY", "a-secret-key-of-at-least-sixty-four-characters-for-the-tests-ok!!")
//!     .database(database)
//!     .spawn_ready()
//!     .await
//!     .expect("the app starts");
//! let _profile = app.url("/profile");
//! # }
//! ```

use std::{
    ffi::{OsStr, OsString},
    fmt,
    fs::File,
    io::Write as _,
    net::{SocketAddr, TcpListener},
    os::unix::process::CommandExt as _,
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Output, Stdio},
    sync::atomic::{AtomicU32, Ordering},
    thread::JoinHandle,
    time::{Duration, Instant},
};

use http::{header::SET_COOKIE, HeaderMap};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::TestDatabase;

/// How long start-up, or a run to exit, may take unless [`AppCommand::timeout`] says.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// How often readiness is polled while the process starts.
const POLL_EVERY: Duration = Duration::from_millis(25);

/// How long one readiness probe may wait for an answer.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// The name of the session cookie the app sets.
pub const SESSION_COOKIE: &str = "session";

/// A free TCP port on the loopback interface, taken and released at once (port 0 cannot
/// be handed to a child process).
///
/// # Panics
///
/// When no port can be bound.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port on 127.0.0.1")
        .port()
}

/// A fresh directory under the system's temporary directory, removed when dropped.
#[derive(Debug)]
pub struct TempDir(PathBuf);

impl TempDir {
    /// A new empty directory whose name starts with `auth-<name>-`.
    ///
    /// # Panics
    ///
    /// When the directory cannot be created.
    pub fn new(name: &str) -> Self {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let path = std::env::temp_dir().join(format!(
            "auth-{name}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("a temporary directory");
        Self(path)
    }

    /// Where it is.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Where the process's working directory comes from.
#[derive(Debug)]
enum WorkDir {
    /// A fresh empty one, removed with the process.
    Fresh,
    /// The caller's.
    Given(PathBuf),
}

/// Where the process's output goes.
#[derive(Debug, Clone)]
enum Log {
    /// stdout to nowhere, stderr to the caller's stderr (the test runner shows it with a
    /// failure).
    Inherit,
    /// stdout and stderr both into this file.
    File(PathBuf),
}

/// The app binary to start, with what a test or the bench sets; see the module's docs.
#[derive(Debug)]
pub struct AppCommand {
    program: PathBuf,
    wrapper: Option<(OsString, Vec<OsString>)>,
    args: Vec<OsString>,
    envs: Vec<(OsString, OsString)>,
    workdir: WorkDir,
    log: Log,
    user: Option<u32>,
    ready_path: String,
    timeout: Duration,
    name: String,
}

impl AppCommand {
    /// The binary at `program`, with nothing set yet.
    pub fn new(program: impl Into<PathBuf>) -> Self {
        Self {
            program: program.into(),
            wrapper: None,
            args: Vec::new(),
            envs: Vec::new(),
            workdir: WorkDir::Fresh,
            log: Log::Inherit,
            user: None,
            ready_path: "/".to_owned(),
            timeout: DEFAULT_TIMEOUT,
            name: "the app".to_owned(),
        }
    }

    /// Sets the environment variable `key` (the environment starts empty).
    #[must_use]
    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Self {
        self.envs
            .push((key.as_ref().to_owned(), value.as_ref().to_owned()));
        self
    }

    /// Sets each of `vars`, as [`Self::env`] does.
    #[must_use]
    pub fn envs<K: AsRef<OsStr>, V: AsRef<OsStr>>(
        self,
        vars: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        vars.into_iter()
            .fold(self, |command, (key, value)| command.env(key, value))
    }

    /// Appends a command-line argument.
    #[must_use]
    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Self {
        self.args.push(arg.as_ref().to_owned());
        self
    }

    /// Appends command-line arguments.
    #[must_use]
    pub fn args<A: AsRef<OsStr>>(self, args: impl IntoIterator<Item = A>) -> Self {
        args.into_iter().fold(self, Self::arg)
    }

    /// The SQL database at `url` (`STORAGE=sql`, `DATABASE_URL`).
    #[must_use]
    pub fn sql(self, url: impl AsRef<OsStr>) -> Self {
        self.env("STORAGE", "sql").env("DATABASE_URL", url)
    }

    /// The MongoDB database `db` at `url` (`STORAGE=mongodb`, `MONGODB_URL`, `MONGODB_DB`).
    #[must_use]
    pub fn mongodb(self, url: impl AsRef<OsStr>, db: impl AsRef<OsStr>) -> Self {
        self.env("STORAGE", "mongodb")
            .env("MONGODB_URL", url)
            .env("MONGODB_DB", db)
    }

    /// The throwaway `database`, whatever its backend.
    #[must_use]
    pub fn database(self, database: &TestDatabase) -> Self {
        if database.backend().is_sql() {
            self.sql(database.url())
        } else {
            self.mongodb(database.url(), database.mongo_db_name())
        }
    }

    /// Runs in `dir` instead of a fresh empty directory.
    #[must_use]
    pub fn current_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.workdir = WorkDir::Given(dir.into());
        self
    }

    /// Writes stdout and stderr into the file `path` (created anew) instead of dropping
    /// stdout and passing stderr on; see [`AppProcess::log`]. Ignored by the runs that
    /// capture their output.
    #[must_use]
    pub fn log_to(mut self, path: impl Into<PathBuf>) -> Self {
        self.log = Log::File(path.into());
        self
    }

    /// Runs as the user and group `id` (a user whose file permissions apply, when the
    /// caller is root).
    #[must_use]
    pub fn as_user(mut self, id: u32) -> Self {
        self.user = Some(id);
        self
    }

    /// Runs the binary under `program` with `args` before it (`valgrind --tool=...`).
    #[must_use]
    pub fn wrapped_in<A: AsRef<OsStr>>(
        mut self,
        program: impl AsRef<OsStr>,
        args: impl IntoIterator<Item = A>,
    ) -> Self {
        self.wrapper = Some((
            program.as_ref().to_owned(),
            args.into_iter()
                .map(|arg| arg.as_ref().to_owned())
                .collect(),
        ));
        self
    }

    /// The path whose successful `GET` means the process is ready (`/` unless set).
    #[must_use]
    pub fn ready_path(mut self, path: &str) -> Self {
        path.clone_into(&mut self.ready_path);
        self
    }

    /// How long start-up, or a run to exit, may take ([`DEFAULT_TIMEOUT`] unless set).
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// What messages call the process (`the app` unless set).
    #[must_use]
    pub fn named(mut self, name: &str) -> Self {
        name.clone_into(&mut self.name);
        self
    }

    /// The command, in `dir`: the environment cleared, then what was set.
    fn command(&self, dir: &Path) -> Command {
        let mut command = match &self.wrapper {
            Some((wrapper, args)) => {
                let mut command = Command::new(wrapper);
                command.args(args).arg(&self.program);
                command
            }
            None => Command::new(&self.program),
        };
        command
            .args(&self.args)
            .env_clear()
            .envs(self.envs.iter().map(|(key, value)| (key, value)))
            .current_dir(dir)
            .stdin(Stdio::null());
        if let Some(id) = self.user {
            command.uid(id).gid(id);
        }
        command
    }

    /// The working directory: the given one, or a fresh one kept for as long as the
    /// process lives.
    fn workdir(&self) -> (PathBuf, Option<TempDir>) {
        match &self.workdir {
            WorkDir::Given(dir) => (dir.clone(), None),
            WorkDir::Fresh => {
                let fresh = TempDir::new("app");
                (fresh.path().to_owned(), Some(fresh))
            }
        }
    }

    /// Starts the process on a free port (`HOST=127.0.0.1`, `PORT`) and waits until it
    /// answers `GET` of the ready path with a success.
    ///
    /// # Errors
    ///
    /// It cannot be spawned, exits before it is ready, or is not ready within the timeout
    /// (it is killed then).
    pub async fn spawn_ready(self) -> Result<AppProcess, StartError> {
        let (dir, fresh) = self.workdir();
        let port = free_port();
        let mut command = self.command(&dir);
        command
            .env("HOST", "127.0.0.1")
            .env("PORT", port.to_string());
        let log = match &self.log {
            Log::Inherit => {
                command.stdout(Stdio::null()).stderr(Stdio::inherit());
                None
            }
            Log::File(path) => {
                let file = File::create(path).map_err(|error| StartError::Spawn {
                    name: self.name.clone(),
                    error: format!("cannot create the log file {}: {error}", path.display()),
                })?;
                let copy = file.try_clone().map_err(|error| StartError::Spawn {
                    name: self.name.clone(),
                    error: format!("cannot reopen the log file {}: {error}", path.display()),
                })?;
                command.stdout(file).stderr(copy);
                Some(path.clone())
            }
        };
        let child = command.spawn().map_err(|error| StartError::Spawn {
            name: self.name.clone(),
            // The program only: the command's Debug would show SECRET_KEY.
            error: format!("{}: {error}", self.program.display()),
        })?;
        let mut process = AppProcess {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            log,
            name: self.name,
            _workdir: fresh,
        };
        process
            .wait_until_ready(&self.ready_path, self.timeout)
            .await?;
        Ok(process)
    }

    /// Runs the process to its end with `stdin` piped in (a script, not a terminal), and
    /// returns its status and what it wrote.
    ///
    /// # Panics
    ///
    /// When it cannot be spawned, or runs longer than the timeout (it is killed then).
    pub fn run_to_exit(self, stdin: &str) -> Output {
        let mut run = self.spawn_piped();
        run.write_stdin(stdin.as_bytes());
        let limit = run.timeout;
        run.wait_with_output_within(limit)
            .unwrap_or_else(|| panic!("it still runs after {limit:?}"))
    }

    /// Runs the process to its end, expecting it to refuse to start: it must exit (within
    /// the timeout) and not with success. Returns its output.
    ///
    /// # Panics
    ///
    /// When it runs on past the timeout or exits with success.
    pub fn expect_start_failure(self) -> Output {
        let name = self.name.clone();
        let output = self.run_to_exit("");
        assert!(
            !output.status.success(),
            "{name} was expected to refuse to start: {output:?}"
        );
        output
    }

    /// Starts the process with stdin, stdout and stderr piped, for a test that talks to it
    /// while it runs.
    ///
    /// # Panics
    ///
    /// When it cannot be spawned.
    pub fn spawn_piped(self) -> AppRun {
        let (dir, fresh) = self.workdir();
        let child = self
            .command(&dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|error| panic!("cannot run {}: {error}", self.program.display()));
        AppRun::new(child, self.timeout, fresh)
    }
}

/// Why a process did not get ready.
#[derive(Debug)]
pub enum StartError {
    /// It could not be spawned.
    Spawn {
        /// What it is called.
        name: String,
        /// What failed.
        error: String,
    },
    /// It exited before it was ready.
    Exited {
        /// What it is called.
        name: String,
        /// How it ended.
        status: ExitStatus,
        /// Its log, if it wrote one, or where it is.
        log: String,
    },
    /// It was not ready in time, and was killed.
    NotReady {
        /// What it is called.
        name: String,
        /// Where it was asked.
        url: String,
        /// How long it was given.
        waited: Duration,
        /// Its log, if it wrote one.
        log: String,
    },
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Spawn { name, error } => write!(f, "cannot start {name}: {error}"),
            Self::Exited { name, status, log } => {
                write!(f, "{name} exited before it was ready ({status}){log}")
            }
            Self::NotReady {
                name,
                url,
                waited,
                log,
            } => write!(
                f,
                "{name} did not answer GET {url} within {}s{log}",
                waited.as_secs()
            ),
        }
    }
}

impl std::error::Error for StartError {}

/// A started app (or other server) process; killed when dropped.
#[derive(Debug)]
pub struct AppProcess {
    child: Child,
    addr: SocketAddr,
    log: Option<PathBuf>,
    name: String,
    _workdir: Option<TempDir>,
}

impl AppProcess {
    /// Polls `GET path` until a success, an exit, or `timeout`.
    async fn wait_until_ready(&mut self, path: &str, timeout: Duration) -> Result<(), StartError> {
        let started = Instant::now();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(StartError::Exited {
                    name: self.name.clone(),
                    status,
                    log: self.log_for_message(),
                });
            }
            if answers_with_success(self.addr, path).await {
                return Ok(());
            }
            if started.elapsed() > timeout {
                self.stop();
                return Err(StartError::NotReady {
                    name: self.name.clone(),
                    url: self.url(path),
                    waited: timeout,
                    log: self.log_for_message(),
                });
            }
            tokio::time::sleep(POLL_EVERY).await;
        }
    }

    /// The log, or where it is, to end an error message with.
    fn log_for_message(&self) -> String {
        match &self.log {
            Some(path) => format!("; its log ({}):\n{}", path.display(), self.log()),
            None => String::new(),
        }
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:<port><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What it wrote to the file of [`AppCommand::log_to`] so far (empty without one).
    pub fn log(&self) -> String {
        self.log
            .as_ref()
            .and_then(|path| std::fs::read(path).ok())
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
            .unwrap_or_default()
    }

    /// A field of `/proc/<pid>/status` that counts kB (`VmRSS`, `VmHWM`), in KiB; `None`
    /// when the process has no such line (it has exited).
    pub fn status_kib(&self, field: &str) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).ok()?;
        status.lines().find_map(|line| {
            line.strip_prefix(field)?
                .strip_prefix(':')?
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse()
                .ok()
        })
    }

    /// Sends SIGTERM (the graceful shutdown).
    ///
    /// # Errors
    ///
    /// `kill(1)` could not be run or did not deliver the signal (has it exited?).
    pub fn terminate(&self) -> std::io::Result<()> {
        // `kill(1)` rather than `libc::kill`: this workspace forbids `unsafe`.
        let sent = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()?;
        if sent.success() {
            Ok(())
        } else {
            Err(std::io::Error::other(format!(
                "kill -TERM {} failed: has {} exited?",
                self.pid(),
                self.name
            )))
        }
    }

    /// Waits for it to exit, at most `limit`; its status, or `None` if it still runs.
    pub async fn exited_within(&mut self, limit: Duration) -> Option<ExitStatus> {
        let started = Instant::now();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            if started.elapsed() >= limit {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Kills it (SIGKILL) and waits until it is gone; its log stays readable.
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Kills it (SIGKILL) and waits until it is gone.
    pub fn kill(mut self) {
        self.stop();
    }
}

impl Drop for AppProcess {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Whether `GET path` on `addr` answers with a 2xx status, within [`PROBE_TIMEOUT`]: a
/// bare HTTP/1.1 exchange, so that the kit needs no HTTP client.
async fn answers_with_success(addr: SocketAddr, path: &str) -> bool {
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(addr).await.ok()?;
        let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.ok()?;
        let mut head = Vec::with_capacity(64);
        let mut buffer = [0_u8; 64];
        while !head.contains(&b'\n') && head.len() < 1024 {
            let read = stream.read(&mut buffer).await.ok()?;
            if read == 0 {
                break;
            }
            head.extend_from_slice(&buffer[..read]);
        }
        // `HTTP/1.1 200 OK`: the status is the second word.
        let line = String::from_utf8_lossy(&head);
        let status = line.split_whitespace().nth(1)?.parse::<u16>().ok()?;
        Some((200..300).contains(&status))
    };
    tokio::time::timeout(PROBE_TIMEOUT, exchange)
        .await
        .ok()
        .flatten()
        .unwrap_or(false)
}

/// A process run with piped stdio ([`AppCommand::spawn_piped`]); killed when dropped.
#[derive(Debug)]
pub struct AppRun {
    child: Child,
    stdout: Option<JoinHandle<Vec<u8>>>,
    stderr: Option<JoinHandle<Vec<u8>>>,
    timeout: Duration,
    _workdir: Option<TempDir>,
}

impl AppRun {
    fn new(mut child: Child, timeout: Duration, workdir: Option<TempDir>) -> Self {
        Self {
            stdout: child.stdout.take().map(drain),
            stderr: child.stderr.take().map(drain),
            child,
            timeout,
            _workdir: workdir,
        }
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Writes `bytes` to its stdin and closes it (at the second call, writes nothing).
    pub fn write_stdin(&mut self, bytes: &[u8]) {
        if let Some(mut stdin) = self.child.stdin.take() {
            // A process that exits without reading closes the pipe: that is its answer.
            let _ = stdin.write_all(bytes);
        }
    }

    /// Its exit status if it has exited.
    ///
    /// # Panics
    ///
    /// When the process cannot be waited for.
    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        self.child
            .try_wait()
            .expect("the process can be waited for")
    }

    /// Waits for it to exit, at most `limit`, and returns its status and output; `None`
    /// (and the process killed) if it ran longer.
    pub fn wait_with_output_within(mut self, limit: Duration) -> Option<Output> {
        drop(self.child.stdin.take());
        let started = Instant::now();
        let status = loop {
            if let Some(status) = self.try_wait() {
                break status;
            }
            if started.elapsed() > limit {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        let join = |reader: Option<JoinHandle<Vec<u8>>>| {
            reader
                .and_then(|reader| reader.join().ok())
                .unwrap_or_default()
        };
        Some(Output {
            status,
            stdout: join(self.stdout.take()),
            stderr: join(self.stderr.take()),
        })
    }

    /// Waits for it to exit (at most the command's timeout) and returns its output.
    ///
    /// # Panics
    ///
    /// When it runs longer than the timeout (it is killed then).
    pub fn wait_with_output(self) -> Output {
        let limit = self.timeout;
        self.wait_with_output_within(limit)
            .unwrap_or_else(|| panic!("it still runs after {limit:?}"))
    }
}

/// Reads `pipe` to its end on a thread of its own, so that a full pipe never blocks the
/// process writing to it.
fn drain(mut pipe: impl std::io::Read + Send + 'static) -> JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        bytes
    })
}

impl Drop for AppRun {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The session cookie a response sets: its `Set-Cookie` header named
/// [`SESSION_COOKIE`], the one reader of it for every test and the bench.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SetSessionCookie<'a>(&'a str);

impl<'a> SetSessionCookie<'a> {
    /// The session `Set-Cookie` among `headers`, if any (one that removes the cookie
    /// included: see [`Self::removes`]).
    pub fn of(headers: &'a HeaderMap) -> Option<Self> {
        headers
            .get_all(SET_COOKIE)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .find(|value| {
                value
                    .split_once('=')
                    .is_some_and(|(name, _)| name.trim() == SESSION_COOKIE)
            })
            .map(Self)
    }

    /// The whole header value, attributes included.
    pub fn header(self) -> &'a str {
        self.0
    }

    /// `session=<value>`: what a `Cookie` header sends back.
    pub fn pair(self) -> &'a str {
        self.0.split(';').next().unwrap_or_default().trim()
    }

    /// The cookie's value (the signed session id).
    pub fn value(self) -> &'a str {
        self.pair()
            .split_once('=')
            .map_or("", |(_, value)| value.trim())
    }

    /// Whether it removes the cookie (an empty value) rather than set a session.
    pub fn removes(self) -> bool {
        self.value().is_empty()
    }
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    fn headers(values: &[&'static str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(SET_COOKIE, HeaderValue::from_static(value));
        }
        headers
    }

    #[test]
    fn the_session_cookie_is_found_among_others_and_read_in_parts() {
        let headers = headers(&[
            "device=abc; Path=/; HttpOnly",
            "session=sig.id; Path=/; HttpOnly; SameSite=Lax",
        ]);
        let cookie = SetSessionCookie::of(&headers).expect("a session cookie");
        assert_eq!(cookie.pair(), "session=sig.id");
        assert_eq!(cookie.value(), "sig.id");
        assert!(cookie.header().ends_with("SameSite=Lax"));
        assert!(!cookie.removes());
    }

    #[test]
    fn a_removal_is_told_apart_and_a_lookalike_name_is_not_the_session() {
        let removal = headers(&["session=; Max-Age=0; Path=/"]);
        assert!(SetSessionCookie::of(&removal).expect("a cookie").removes());
        assert_eq!(SetSessionCookie::of(&headers(&["sessions=x"])), None);
        assert_eq!(SetSessionCookie::of(&HeaderMap::new()), None);
    }

    #[test]
    fn a_run_to_exit_gets_only_what_was_set() {
        let output = AppCommand::new("/usr/bin/env")
            .env("ONLY", "this")
            .run_to_exit("");
        assert!(output.status.success(), "{output:?}");
        assert_eq!(String::from_utf8_lossy(&output.stdout), "ONLY=this\n");
    }

    #[test]
    fn a_start_failure_is_expected_and_its_output_kept() {
        let output = AppCommand::new("/bin/sh")
            .args(["-c", "echo refused >&2; exit 2"])
            .expect_start_failure();
        assert_eq!(output.status.code(), Some(2));
        assert_eq!(String::from_utf8_lossy(&output.stderr), "refused\n");
    }

    #[tokio::test]
    async fn a_process_that_exits_before_it_is_ready_is_reported() {
        let error = AppCommand::new("/bin/sh")
            .args(["-c", "exit 3"])
            .spawn_ready()
            .await
            .expect_err("it cannot get ready");
        assert!(matches!(error, StartError::Exited { .. }), "{error}");
    }
}
