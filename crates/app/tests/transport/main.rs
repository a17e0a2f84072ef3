//! The service against slow and hostile clients, overload and shutdown, as an operator
//! meets them: a real `app` process (on SQLite: none of this depends on the backend),
//! driven over raw TCP where a well-behaved HTTP client would not misbehave enough.
//!
//! - `slowloris`: thousands of connections that stall mid-headers, bodies that stall or
//!   drip, too many headers, the connection cap.
//! - `overload`: a burst of logins beyond `HASH_QUEUE_LIMIT`.
//! - `shutdown`: SIGTERM with logins in flight, and a shutdown bounded by
//!   `SHUTDOWN_TIMEOUT`.
//!
//! Measured figures (memory under stalled connections, shutdown duration) are printed on
//! `transport figure:` lines; what is asserted are generous bounds.

mod fairness;
mod overload;
mod shutdown;
mod slowloris;

use std::{process::ExitStatus, time::Duration};

use auth_testkit::{AppCommand, AppProcess, TempDir};
use reqwest::{Client, StatusCode};
use serde_json::json;

const SECRET_KEY: &str = "transport-secret-key-transport-secret-key-transport-secret-key-ok!";

/// The password of every test user.
const PASSWORD: &str = "correct horse battery staple";

/// An `app` process on a fresh SQLite database, killed when dropped.
struct App {
    process: AppProcess,
    client: Client,
    /// Its database and log; removed after the process is gone (fields drop in order).
    _dir: TempDir,
}

impl App {
    /// Starts the service with cheap hashing, no throttling of one address, and `env` on
    /// top; waits until it answers `GET /`.
    async fn start(name: &str, env: &[(&str, &str)]) -> Self {
        let dir = TempDir::new(&format!("transport-{name}"));
        let process = AppCommand::new(env!("CARGO_BIN_EXE_app"))
            .current_dir(dir.path())
            .env("SECRET_KEY", SECRET_KEY)
            .env("DEBUG", "false")
            .env("SESSION_COOKIE_SECURE", "false")
            .sql(format!(
                "sqlite://{}/auth.db?mode=rwc",
                dir.path().display()
            ))
            .env("ARGON2_MEMORY_KIB", "1024")
            .env("ARGON2_ITERATIONS", "1")
            // One address makes every request here: its throttle and its share of the
            // connections are not what is tested (attempts in flight count against the
            // per-client limit, so a burst of right passwords would be throttled too).
            .env("LOGIN_FAILURES_PER_CLIENT", "0")
            .env("LOGIN_FAILURES_PER_ADDRESS", "0")
            .env("REGISTRATIONS_PER_ADDRESS", "0")
            .env("MAX_CONNECTIONS_PER_ADDRESS", "0")
            .env("LOG", "info")
            .envs(env.iter().copied())
            .log_to(dir.path().join("app.log"))
            .spawn_ready()
            .await
            .unwrap_or_else(|error| panic!("the service did not start: {error}"));
        Self {
            process,
            client: Client::builder()
                .timeout(Duration::from_secs(120))
                .build()
                .expect("an HTTP client"),
            _dir: dir,
        }
    }

    fn url(&self, path: &str) -> String {
        self.process.url(path)
    }

    fn addr(&self) -> String {
        self.process.addr().to_string()
    }

    /// What the service logged so far.
    fn log(&self) -> String {
        self.process.log()
    }

    /// The resident memory of the service process (`VmRSS`), KiB.
    fn rss_kib(&self) -> u64 {
        self.process.status_kib("VmRSS").expect("a VmRSS line")
    }

    /// Sends SIGTERM.
    fn terminate(&self) {
        self.process.terminate().expect("SIGTERM is delivered");
    }

    /// Waits for the process to exit, at most `limit`.
    async fn exited_within(&mut self, limit: Duration) -> Option<ExitStatus> {
        self.process.exited_within(limit).await
    }

    /// Registers `email` and checks the answer.
    async fn register(&self, email: &str) {
        let registered = self
            .client
            .post(self.url("/v1/auth/register"))
            .json(&json!({"email": email, "password": PASSWORD}))
            .send()
            .await
            .expect("registration answered");
        assert_eq!(registered.status(), StatusCode::CREATED);
    }

    /// `POST /v1/auth/login` of `email` on a connection of its own.
    async fn login(&self, email: &str) -> reqwest::Result<reqwest::Response> {
        Client::builder()
            .timeout(Duration::from_secs(120))
            .build()
            .expect("an HTTP client")
            .post(self.url("/v1/auth/login"))
            .json(&json!({"email_or_username": email, "password": PASSWORD}))
            .send()
            .await
    }
}

/// Lets this test process open thousands of sockets.
fn raise_own_descriptor_limit(needed: u64) {
    let limit = rlimit::increase_nofile_limit(needed).expect("the open-file limit");
    assert!(
        limit >= needed,
        "this test needs {needed} open files; the hard limit is {limit}"
    );
}
