//! Liveness and readiness (#10): `/healthz` answers while the process runs, `/readyz`
//! while the database does, and neither touches a session. Readiness is taken away for
//! real, on the test's own database: PostgreSQL refuses its connections, MySQL holds a
//! table lock past the probe's second, SQLite's files are overwritten, and MongoDB (whose
//! server every test shares) is reached through a proxy of the test's own that is then
//! cut, as a server that stops would be.

use std::{net::SocketAddr, time::Duration};

use auth_testkit::Backend;
use reqwest::{Method, Response, StatusCode};
use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection};
use serde_json::json;
use tokio::{
    io::copy_bidirectional,
    net::{TcpListener, TcpStream},
    task::{JoinHandle, JoinSet},
};

use crate::helpers::{assert_error, header_text, json_body, Options, TestApp};

/// Asserts a probe's answer: `status`, `{"status": body}`, never cached, no cookie.
async fn assert_probe(response: Response, status: StatusCode, body: &str) {
    assert_eq!(response.status(), status);
    assert!(response.headers().get("set-cookie").is_none());
    assert_eq!(
        header_text(&response, "cache-control").as_deref(),
        Some("no-store")
    );
    assert_eq!(json_body(response).await, json!({ "status": body }));
}

pub(crate) async fn the_probes_answer_ok_without_touching_a_session(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let cookie = app.register_and_login("ada@example.com").await;
    let sessions = app.sessions().await.len();
    for path in ["/healthz", "/readyz"] {
        assert_probe(app.get(path).await, StatusCode::OK, "ok").await;
        // A logged-in browser's probe neither loads nor rolls its session.
        let response = app.get_with_cookie(path, &cookie).await;
        assert_probe(response, StatusCode::OK, "ok").await;
        for method in [Method::POST, Method::DELETE] {
            let response = app.send(method, path, None).await;
            assert_error(response, StatusCode::NOT_FOUND, Some("Not found")).await;
        }
    }
    assert_eq!(app.sessions().await.len(), sessions);
    app.stop().await;
}

pub(crate) async fn readiness_is_503_while_the_database_is_down(backend: Backend) {
    let (app, proxy) = if backend == Backend::Mongodb {
        let server = backend.server_url().expect("MONGODB_URL");
        let proxy = Proxy::start(&server).await;
        let options = Options::with(&[("MONGODB_URL", &proxy.url())]);
        (TestApp::spawn_with(backend, options).await, Some(proxy))
    } else {
        (TestApp::spawn(backend).await, None)
    };
    assert_probe(app.get("/readyz").await, StatusCode::OK, "ok").await;
    let outage = match proxy {
        Some(mut proxy) => {
            proxy.cut();
            Outage::Cut(proxy)
        }
        None => Outage::start(backend, app.database_url()).await,
    };
    let response = app.get("/readyz").await;
    let retry_after = header_text(&response, "retry-after");
    assert_probe(response, StatusCode::SERVICE_UNAVAILABLE, "unavailable").await;
    assert!(
        retry_after.is_some_and(|seconds| seconds.parse::<u64>().is_ok_and(|s| s > 0)),
        "Retry-After in seconds"
    );
    // Liveness is not readiness: the process still runs.
    assert_probe(app.get("/healthz").await, StatusCode::OK, "ok").await;
    if outage.end().await {
        // Connections the outage broke are replaced as the pool meets them; MongoDB's
        // driver first has to find its server again.
        let mut ready = false;
        for _ in 0..150 {
            if app.get("/readyz").await.status() == StatusCode::OK {
                ready = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(ready, "ready again once the database is back");
    }
    app.stop().await;
}

/// A database made unreachable on purpose, as far as the service can tell.
enum Outage {
    /// PostgreSQL refuses new connections to the database and has ended the open ones.
    Postgres {
        admin: DatabaseConnection,
        name: String,
    },
    /// A MySQL connection of ours holds a write lock on the sessions table.
    Mysql { locker: DatabaseConnection },
    /// SQLite's files were overwritten: there is nothing to come back to.
    Sqlite,
    /// The proxy to the server is gone, with every connection through it, until it is
    /// restored on the same port.
    Cut(Proxy),
}

impl Outage {
    async fn start(backend: Backend, url: &str) -> Self {
        match backend {
            Backend::Postgres => {
                let name = url.rsplit('/').next().expect("a database name").to_owned();
                let server = backend.server_url().expect("a PostgreSQL server");
                let admin = Database::connect(server).await.expect("the server");
                admin
                    .execute_unprepared(&format!(
                        "ALTER DATABASE {name} WITH ALLOW_CONNECTIONS false"
                    ))
                    .await
                    .expect("refuse connections");
                admin
                    .execute_unprepared(&format!(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                         WHERE datname = '{name}' AND pid <> pg_backend_pid()"
                    ))
                    .await
                    .expect("end the open connections");
                Self::Postgres { admin, name }
            }
            Backend::Mysql => {
                // One connection: a table lock belongs to the connection that took it.
                let mut options = ConnectOptions::new(url);
                options.max_connections(1).min_connections(1);
                let locker = Database::connect(options).await.expect("the database");
                locker
                    .execute_unprepared("LOCK TABLES sessions WRITE")
                    .await
                    .expect("lock the sessions");
                Self::Mysql { locker }
            }
            Backend::Sqlite => {
                let path = url
                    .strip_prefix("sqlite://")
                    .and_then(|rest| rest.split('?').next())
                    .expect("a SQLite file URL");
                // The database, its write-ahead log and its shared index: with any one
                // left intact, a connection could still answer from it.
                for suffix in ["", "-wal", "-shm"] {
                    overwrite_start(&format!("{path}{suffix}"));
                }
                Self::Sqlite
            }
            Backend::Mongodb | Backend::Memory => {
                unimplemented!("no outage of {backend} is staged here")
            }
        }
    }

    /// Ends the outage; returns whether the database is back.
    async fn end(self) -> bool {
        match self {
            Self::Postgres { admin, name } => {
                admin
                    .execute_unprepared(&format!(
                        "ALTER DATABASE {name} WITH ALLOW_CONNECTIONS true"
                    ))
                    .await
                    .expect("allow connections again");
                let _ = admin.close().await;
                true
            }
            Self::Mysql { locker } => {
                locker
                    .execute_unprepared("UNLOCK TABLES")
                    .await
                    .expect("unlock");
                let _ = locker.close().await;
                true
            }
            Self::Cut(mut proxy) => {
                proxy.restore().await;
                true
            }
            Self::Sqlite => false,
        }
    }
}

/// A TCP proxy to a server: the service's only way there, until cut.
struct Proxy {
    address: SocketAddr,
    upstream: String,
    task: Option<JoinHandle<()>>,
}

impl Proxy {
    /// Listens on a free loopback port and forwards every connection to the host and
    /// port of `server_url` (`mongodb://host:port/...`).
    async fn start(server_url: &str) -> Self {
        let upstream = server_url
            .split_once("://")
            .map_or(server_url, |(_, rest)| rest)
            .split(['/', '?'])
            .next()
            .expect("a host and port")
            .to_owned();
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a free port");
        let address = listener.local_addr().expect("bound");
        let mut proxy = Self {
            address,
            upstream,
            task: None,
        };
        proxy.forward(listener);
        proxy
    }

    fn forward(&mut self, listener: TcpListener) {
        let upstream = self.upstream.clone();
        self.task = Some(tokio::spawn(async move {
            // Dropped with the task: every connection ends with it.
            let mut connections = JoinSet::new();
            while let Ok((mut inbound, _)) = listener.accept().await {
                let upstream = upstream.clone();
                connections.spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(&upstream).await {
                        let _ = copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
        }));
    }

    /// `MONGODB_URL` through the proxy.
    fn url(&self) -> String {
        format!("mongodb://{}/?directConnection=true", self.address)
    }

    /// Stops listening and drops every connection.
    fn cut(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }

    /// Listens again on the same port, as a server back from an outage would.
    async fn restore(&mut self) {
        let mut listener = None;
        // The aborted task lets go of its socket at its next poll.
        for _ in 0..50 {
            match TcpListener::bind(self.address).await {
                Ok(bound) => {
                    listener = Some(bound);
                    break;
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
        self.forward(listener.expect("the proxy's port is free again"));
    }
}

/// Writes 4 KiB of 0xFF over the start of `path`, if it exists.
fn overwrite_start(path: &str) {
    use std::io::Write as _;
    if let Ok(mut file) = std::fs::OpenOptions::new().write(true).open(path) {
        file.write_all(&[0xFF; 4096]).expect("overwrite");
        file.sync_all().expect("sync");
    }
}
