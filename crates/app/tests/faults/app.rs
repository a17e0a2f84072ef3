//! The service as a child process, and what the tests ask of it over HTTP.

use std::{
    net::TcpListener,
    os::unix::process::CommandExt as _,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use reqwest::{header, Client, StatusCode};
use serde_json::{json, Value};

use crate::{DATABASE_TIMEOUT_SECS, MARGIN_SECS};

const SECRET_KEY: &str = "faults-secret-key-faults-secret-key-faults-secret-key-faults-key!";

/// A password every test user shares: hashing is made cheap, the policy still applies.
pub(crate) const PASSWORD: &str = "correct horse battery staple";

/// Where the service finds its database.
#[derive(Debug, Clone)]
pub(crate) enum Database {
    /// `STORAGE=sql`, `DATABASE_URL`.
    Sql(String),
    /// `STORAGE=mongodb`, `MONGODB_URL`, `MONGODB_DB`.
    Mongo { url: String, db: String },
}

/// A free TCP port on the loopback interface (taken and released at once).
pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("a free port")
        .local_addr()
        .expect("bound")
        .port()
}

/// A fresh directory under the system's temporary directory, removed when dropped.
pub(crate) struct TempDir(PathBuf);

impl TempDir {
    pub(crate) fn new(name: &str) -> Self {
        use std::sync::atomic::{AtomicU32, Ordering};
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let path = std::env::temp_dir().join(format!(
            "auth-faults-{name}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("a temporary directory");
        Self(path)
    }

    pub(crate) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs `program` with `args`, panicking with its output when it fails.
pub(crate) fn run(program: &str, args: &[&str]) {
    let output = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    assert!(
        output.status.success(),
        "{program} {args:?} failed: {}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Sends `signal` (`STOP`, `CONT`, `KILL`) to `pid`.
pub(crate) fn signal(pid: u32, signal: &str) {
    run("kill", &[&format!("-{signal}"), &pid.to_string()]);
}

/// An `app` process, killed when dropped.
pub(crate) struct App {
    child: Child,
    base: String,
    client: Client,
}

impl App {
    /// Starts the service on `database` and waits until it serves.
    pub(crate) async fn start(database: &Database) -> Self {
        let port = free_port();
        Self::spawn(command(database, port), port).await
    }

    /// Starts the service on `database` as a user without privileges, whose file
    /// permissions apply (root's do not): `nobody`, running a copy of the binary put in
    /// `dir` (the build's own may sit where `nobody` cannot reach), when this runs as root;
    /// this process's user otherwise.
    pub(crate) async fn start_unprivileged(database: &Database, dir: &Path) -> Self {
        let port = free_port();
        if !is_root() {
            return Self::spawn(command(database, port), port).await;
        }
        let binary = dir.join("app");
        std::fs::copy(env!("CARGO_BIN_EXE_app"), &binary).expect("a copy of the app binary");
        let mut unprivileged = command_of(&binary, database, port);
        unprivileged.current_dir(dir).uid(NOBODY).gid(NOBODY);
        Self::spawn(unprivileged, port).await
    }

    async fn spawn(mut command: Command, port: u16) -> Self {
        let child = command
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the app binary starts");
        let app = Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
            client: Client::builder()
                .timeout(Duration::from_secs(60))
                .build()
                .expect("an HTTP client"),
        };
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(60) {
            if app.client.get(app.url("/")).send().await.is_ok() {
                return app;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the service at {} did not start", app.base);
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `kill -9`, and waits for the process to be gone.
    pub(crate) fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// `POST /v1/auth/register` of `email`.
    pub(crate) async fn register(&self, email: &str) -> reqwest::Result<reqwest::Response> {
        self.client
            .post(self.url("/v1/auth/register"))
            .json(&json!({"email": email, "password": PASSWORD}))
            .send()
            .await
    }

    /// `POST /v1/auth/login` of `email`.
    pub(crate) async fn login(&self, email: &str) -> reqwest::Result<reqwest::Response> {
        self.client
            .post(self.url("/v1/auth/login"))
            .json(&json!({"email_or_username": email, "password": PASSWORD}))
            .send()
            .await
    }

    /// `GET /profile` with the session cookie `cookie` (`session=...`).
    pub(crate) async fn profile(&self, cookie: &str) -> reqwest::Result<reqwest::Response> {
        self.client
            .get(self.url("/profile"))
            .header(header::COOKIE, cookie)
            .send()
            .await
    }

    /// Registers and logs in `email`; returns the session cookie.
    pub(crate) async fn user_with_session(&self, email: &str) -> String {
        let registered = self.register(email).await.expect("registration answered");
        assert_eq!(registered.status(), StatusCode::CREATED);
        let login = self.login(email).await.expect("login answered");
        assert_eq!(login.status(), StatusCode::OK);
        session_cookie(&login).expect("a session cookie")
    }

    /// The status of `GET /readyz`.
    pub(crate) async fn readiness(&self) -> StatusCode {
        self.client
            .get(self.url("/readyz"))
            .send()
            .await
            .expect("GET /readyz")
            .status()
    }

    /// Waits until `in_a_row` registrations, each followed by the new user's login, all
    /// succeed one after the other, and `/readyz` is 200; fails if that takes longer than
    /// `within`. Returns how long it took.
    pub(crate) async fn wait_for_writes(&self, in_a_row: usize, within: Duration) -> Duration {
        let started = Instant::now();
        let mut streak = 0;
        let mut attempt = 0;
        while streak < in_a_row {
            assert!(
                started.elapsed() < within,
                "{in_a_row} registrations and logins in a row did not succeed within {within:?} \
                 (the last streak was {streak})"
            );
            attempt += 1;
            let email = format!("writer{attempt}@example.com");
            let registered = self.register(&email).await.expect("answered").status();
            let logged_in = if registered == StatusCode::CREATED {
                self.login(&email).await.expect("answered").status()
            } else {
                registered
            };
            match (registered, logged_in) {
                (StatusCode::CREATED, StatusCode::OK) => streak += 1,
                (StatusCode::SERVICE_UNAVAILABLE, _) | (_, StatusCode::SERVICE_UNAVAILABLE) => {
                    streak = 0;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                other => panic!("while recovering: {other:?}"),
            }
        }
        while self.readiness().await != StatusCode::OK {
            assert!(
                started.elapsed() < within,
                "/readyz did not come back within {within:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        started.elapsed()
    }

    /// `GET /` answers 200: the public route does not need the database.
    pub(crate) async fn assert_public_route_answers(&self) {
        let index = self.client.get(self.url("/")).send().await.expect("GET /");
        assert_eq!(index.status(), StatusCode::OK, "GET / during the outage");
    }

    /// Asserts that `GET /profile` with `cookie`, a login and a registration each answer
    /// 503 `unavailable` with `Retry-After`, each within `DATABASE_TIMEOUT` plus a margin;
    /// returns the slowest of the three.
    pub(crate) async fn assert_unavailable(&self, cookie: &str, email: &str) -> Duration {
        let mut slowest = Duration::ZERO;
        for request in ["profile", "login", "register"] {
            let started = Instant::now();
            let response = match request {
                "profile" => self.profile(cookie).await,
                "login" => self.login(email).await,
                _ => self.register(&format!("new-{email}")).await,
            }
            .expect("the service answers");
            let took = started.elapsed();
            slowest = slowest.max(took);
            let status = response.status();
            let retry_after = response.headers().get(header::RETRY_AFTER).cloned();
            let body: Value = response.json().await.expect("a JSON body");
            assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{request}: {body}");
            assert_eq!(
                body,
                json!({"message": "Service unavailable", "code": "unavailable"}),
                "{request}"
            );
            assert!(retry_after.is_some(), "{request}: no Retry-After");
            assert!(
                took < Duration::from_secs(DATABASE_TIMEOUT_SECS + MARGIN_SECS),
                "{request} took {took:?}"
            );
        }
        slowest
    }

    /// Polls `GET /profile` with `cookie` until it answers 200; returns how long that took.
    /// Only 503 is acceptable meanwhile.
    pub(crate) async fn wait_for_recovery(&self, cookie: &str) -> Duration {
        let started = Instant::now();
        loop {
            let response = self.profile(cookie).await.expect("the service answers");
            match response.status() {
                StatusCode::OK => return started.elapsed(),
                StatusCode::SERVICE_UNAVAILABLE => {}
                other => panic!("while recovering: {other}: {:?}", response.text().await),
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "no recovery within a minute"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for App {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `app` binary configured for `database`, to listen on `port`.
pub(crate) fn command(database: &Database, port: u16) -> Command {
    command_of(Path::new(env!("CARGO_BIN_EXE_app")), database, port)
}

/// The app binary at `binary` configured as [`command`] does: with exactly these
/// settings, none of the caller's environment.
fn command_of(binary: &Path, database: &Database, port: u16) -> Command {
    let mut command = Command::new(binary);
    command
        .env_clear()
        .current_dir(std::env::temp_dir())
        .env("HOST", "127.0.0.1")
        .env("PORT", port.to_string())
        .env("SECRET_KEY", SECRET_KEY)
        .env("DEBUG", "false")
        .env("SESSION_COOKIE_SECURE", "false")
        .env("ARGON2_MEMORY_KIB", "1024")
        .env("ARGON2_ITERATIONS", "1")
        .env("DATABASE_TIMEOUT", DATABASE_TIMEOUT_SECS.to_string())
        .env("STARTUP_TIMEOUT", "30")
        // Many logins from one address: throttling is not what is tested here.
        .env("LOGIN_FAILURES_PER_ADDRESS", "0")
        .env("REGISTRATIONS_PER_ADDRESS", "0")
        .env("LOG", "warn")
        .stdout(Stdio::null());
    match database {
        Database::Sql(url) => {
            command.env("STORAGE", "sql").env("DATABASE_URL", url);
        }
        Database::Mongo { url, db } => {
            command
                .env("STORAGE", "mongodb")
                .env("MONGODB_URL", url)
                .env("MONGODB_DB", db);
        }
    }
    command
}

/// The `session=...` pair of a response's `Set-Cookie`, if it set a session cookie.
pub(crate) fn session_cookie(response: &reqwest::Response) -> Option<String> {
    response
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("session=") && !v.starts_with("session=;"))
        .and_then(|v| v.split(';').next())
        .map(str::to_owned)
}

/// Prints a measured time for the record (the issue asks for them).
pub(crate) fn report(what: &str, took: Duration) {
    eprintln!("fault timing: {what}: {:.2}s", took.as_secs_f64());
}

/// The uid and gid of `nobody` (and `nogroup`) on Debian.
pub(crate) const NOBODY: u32 = 65534;

/// Whether this process runs as root (then database servers run as another user).
pub(crate) fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
}
