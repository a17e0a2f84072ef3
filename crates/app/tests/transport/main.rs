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

mod overload;
mod shutdown;
mod slowloris;

use std::{
    fs::File,
    net::TcpListener,
    path::PathBuf,
    process::{Child, Command, ExitStatus, Stdio},
    time::{Duration, Instant},
};

use reqwest::{Client, StatusCode};
use serde_json::json;

const SECRET_KEY: &str = "transport-secret-key-transport-secret-key-transport-secret-key-ok!";

/// The password of every test user.
const PASSWORD: &str = "correct horse battery staple";

/// An `app` process on a fresh SQLite database, killed when dropped.
struct App {
    child: Child,
    port: u16,
    dir: PathBuf,
    client: Client,
}

impl App {
    /// Starts the service with cheap hashing, no throttling of one address, and `env` on
    /// top; waits until it answers `GET /`.
    async fn start(name: &str, env: &[(&str, &str)]) -> Self {
        let dir =
            std::env::temp_dir().join(format!("auth-transport-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("a work directory");
        let port = TcpListener::bind("127.0.0.1:0")
            .expect("a free port")
            .local_addr()
            .expect("bound")
            .port();
        let log = File::create(dir.join("app.log")).expect("a log file");
        let mut command = Command::new(env!("CARGO_BIN_EXE_app"));
        command
            .current_dir(&dir)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOST", "127.0.0.1")
            .env("PORT", port.to_string())
            .env("SECRET_KEY", SECRET_KEY)
            .env("DEBUG", "false")
            .env("SESSION_COOKIE_SECURE", "false")
            .env(
                "DATABASE_URL",
                format!("sqlite://{}/auth.db?mode=rwc", dir.display()),
            )
            .env("ARGON2_MEMORY_KIB", "1024")
            .env("ARGON2_ITERATIONS", "1")
            // One address makes every request here: its throttle is not what is tested.
            .env("LOGIN_FAILURES_PER_ADDRESS", "0")
            .env("REGISTRATIONS_PER_ADDRESS", "0")
            .env("LOG", "info")
            .stdout(Stdio::null())
            .stderr(log);
        for (key, value) in env {
            command.env(key, value);
        }
        let child = command.spawn().expect("the app binary starts");
        let app = Self {
            child,
            port,
            dir,
            client: Client::builder()
                .timeout(Duration::from_secs(120))
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
        panic!("the service did not start:\n{}", app.log());
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// What the service logged so far.
    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("app.log")).unwrap_or_default()
    }

    /// The resident memory of the service process (`VmRSS`), KiB.
    fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("the process status");
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("a VmRSS line")
    }

    /// Sends SIGTERM.
    fn terminate(&self) {
        let sent = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(sent.success(), "SIGTERM was not delivered");
    }

    /// Waits for the process to exit, at most `limit`.
    async fn exited_within(&mut self, limit: Duration) -> Option<ExitStatus> {
        let started = Instant::now();
        while started.elapsed() < limit {
            if let Some(status) = self.child.try_wait().expect("the child's status") {
                return Some(status);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        None
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

impl Drop for App {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
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
