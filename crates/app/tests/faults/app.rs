//! The service as a child process, and what the tests ask of it over HTTP.

use std::{
    path::Path,
    process::Command,
    time::{Duration, Instant},
};

pub(crate) use auth_testkit::{process::free_port, TempDir};
use auth_testkit::{AppCommand, AppProcess, SetSessionCookie};
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
    process: AppProcess,
    client: Client,
}

impl App {
    /// Starts the service on `database` and waits until it serves.
    pub(crate) async fn start(database: &Database) -> Self {
        Self::serve(command(database)).await
    }

    /// Starts the service on `database` as a user without privileges, whose file
    /// permissions apply (root's do not): `nobody`, running a copy of the binary put in
    /// `dir` (the build's own may sit where `nobody` cannot reach), when this runs as root;
    /// this process's user otherwise.
    pub(crate) async fn start_unprivileged(database: &Database, dir: &Path) -> Self {
        if !is_root() {
            return Self::start(database).await;
        }
        let binary = dir.join("app");
        std::fs::copy(env!("CARGO_BIN_EXE_app"), &binary).expect("a copy of the app binary");
        Self::serve(
            command_of(&binary, database)
                .current_dir(dir)
                .as_user(NOBODY),
        )
        .await
    }

    async fn serve(command: AppCommand) -> Self {
        Self {
            process: command
                .spawn_ready()
                .await
                .unwrap_or_else(|error| panic!("{error}")),
            client: Client::builder()
                .timeout(Duration::from_secs(60))
                .build()
                .expect("an HTTP client"),
        }
    }

    pub(crate) fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// `kill -9`, and waits for the process to be gone.
    pub(crate) fn kill(self) {
        self.process.kill();
    }

    pub(crate) fn url(&self, path: &str) -> String {
        self.process.url(path)
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

/// The `app` binary configured for `database`.
pub(crate) fn command(database: &Database) -> AppCommand {
    command_of(Path::new(env!("CARGO_BIN_EXE_app")), database)
}

/// The app binary at `binary` configured as [`command`] does: with exactly these
/// settings, none of the caller's environment.
fn command_of(binary: &Path, database: &Database) -> AppCommand {
    let command = AppCommand::new(binary)
        .env("SECRET_KEY", SECRET_KEY)
        .env("DEBUG", "false")
        .env("SESSION_COOKIE_SECURE", "false")
        .env("ARGON2_MEMORY_KIB", "1024")
        .env("ARGON2_ITERATIONS", "1")
        .env("DATABASE_TIMEOUT", DATABASE_TIMEOUT_SECS.to_string())
        .env("STARTUP_TIMEOUT", "30")
        // Many logins from one address, some at once (attempts in flight count against
        // the per-client limit): throttling is not what is tested here.
        .env("LOGIN_FAILURES_PER_CLIENT", "0")
        .env("LOGIN_FAILURES_PER_ADDRESS", "0")
        .env("REGISTRATIONS_PER_ADDRESS", "0")
        .env("LOG", "warn");
    match database {
        Database::Sql(url) => command.sql(url),
        Database::Mongo { url, db } => command.mongodb(url, db),
    }
}

/// The `session=...` pair of a response's `Set-Cookie`, if it set a session cookie.
pub(crate) fn session_cookie(response: &reqwest::Response) -> Option<String> {
    SetSessionCookie::of(response.headers())
        .filter(|cookie| !cookie.removes())
        .map(|cookie| cookie.pair().to_owned())
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
