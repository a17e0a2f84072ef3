//! A SecantusDB (a MongoDB wire-protocol server) of the test's own, killed and restarted
//! on the same port and storage.

use std::{
    net::TcpStream,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use crate::app::{self, report, App, Database, TempDir};

/// Set by `cargo xtask test`: the Rust SecantusDB it built.
const BINARY_ENV: &str = "SECANTUSD_RS_BIN";

/// A private server; killed when dropped, its storage removed.
pub(crate) struct PrivateMongo {
    child: Option<Child>,
    port: u16,
    dir: TempDir,
}

impl PrivateMongo {
    pub(crate) fn start() -> Self {
        let dir = TempDir::new("mongo");
        std::fs::write(dir.path().join("secantusd.toml"), "# built-in defaults\n")
            .expect("a config file");
        let mut server = Self {
            child: None,
            port: app::free_port(),
            dir,
        };
        server.start_server();
        server
    }

    /// The URL the service uses (a direct connection: the server advertises a one-node
    /// replica set).
    pub(crate) fn url(&self) -> String {
        format!("mongodb://127.0.0.1:{}/?directConnection=true", self.port)
    }

    /// Starts the server on the same port and storage, and waits until it accepts.
    pub(crate) fn start_server(&mut self) {
        let binary = std::env::var(BINARY_ENV).unwrap_or_else(|_| {
            panic!("{BINARY_ENV} is not set: run these tests with `cargo xtask test`")
        });
        let log = std::fs::File::create(self.dir.path().join("server.log")).expect("a log");
        let child = Command::new(binary)
            .arg("--config")
            .arg(self.dir.path().join("secantusd.toml"))
            .args(["--host", "127.0.0.1", "--port", &self.port.to_string()])
            .arg("--storage-path")
            .arg(self.dir.path().join("data"))
            // What mongod does for a `j: true` write, and SecantusDB only when asked: the
            // journal is flushed before the write is acknowledged. Without it, SecantusDB
            // acknowledges from its in-process log buffer and a kill loses the tail.
            .arg("--sync-on-commit")
            .current_dir(self.dir.path())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("SecantusDB starts");
        self.child = Some(child);
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "SecantusDB did not listen within 30 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `kill -9`.
    pub(crate) fn kill_server(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for PrivateMongo {
    fn drop(&mut self) {
        self.kill_server();
    }
}

pub(crate) async fn killed_then_restarted() {
    let mut mongo = PrivateMongo::start();
    let database = Database::Mongo {
        url: mongo.url(),
        db: "faults".to_owned(),
    };
    let app = App::start(&database).await;
    let cookie = app.user_with_session("ada@example.com").await;

    mongo.kill_server();
    app.assert_public_route_answers().await;
    let to_503 = app.assert_unavailable(&cookie, "ada@example.com").await;
    report("MongoDB killed, time to 503 (slowest request)", to_503);
    app.assert_public_route_answers().await;

    mongo.start_server();
    let recovered = app.wait_for_recovery(&cookie).await;
    report("MongoDB restarted, time to recover", recovered);
    let login = app.login("ada@example.com").await.expect("login answered");
    assert_eq!(login.status(), reqwest::StatusCode::OK);
}
