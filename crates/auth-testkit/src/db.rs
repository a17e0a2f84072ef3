//! Throwaway databases: one per test, on any backend, dropped when the test ends.
//!
//! Servers come from the environment (`cargo xtask test` sets it):
//! `DATABASE_URL_POSTGRES` (default `postgres://postgres@127.0.0.1:5432/test`),
//! `DATABASE_URL_MYSQL` (default `mysql://root@127.0.0.1:3306/test`) and `MONGODB_URL`
//! (no default). A server that cannot be reached fails the test: a test that did not run
//! must never count as passed. Skipping a backend that is not there is the runner's
//! decision, by the test's path (see [`crate::backend_tests!`]), as `cargo xtask test` does.

use std::{fmt, future::Future, path::PathBuf};

use sea_orm::{ConnectionTrait, Database};
use url::Url;

/// A storage engine the tests run on: the service's four, and this kit's in-memory stores.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// SQLite, in a temporary file.
    Sqlite,
    /// PostgreSQL.
    Postgres,
    /// MySQL or MariaDB.
    Mysql,
    /// MongoDB (or a wire-compatible server such as SecantusDB).
    Mongodb,
    /// The in-memory stores of [`crate::memory`]: no server, no database.
    Memory,
}

impl Backend {
    /// Every backend, in the order the suites run them and reports list them.
    pub const ALL: [Backend; 5] = [
        Backend::Sqlite,
        Backend::Postgres,
        Backend::Mysql,
        Backend::Mongodb,
        Backend::Memory,
    ];

    /// Short lower-case name: the module its tests live in, and the `--backend` value.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
            Backend::Mysql => "mysql",
            Backend::Mongodb => "mongodb",
            Backend::Memory => "memory",
        }
    }

    /// The backend of this [`name`](Self::name).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|backend| backend.name() == name)
    }

    /// True for the engines reached through sea-orm.
    pub fn is_sql(self) -> bool {
        matches!(self, Backend::Sqlite | Backend::Postgres | Backend::Mysql)
    }

    /// The environment variable that names the server of this backend, if it needs one.
    pub fn env_key(self) -> Option<&'static str> {
        match self {
            Backend::Postgres => Some("DATABASE_URL_POSTGRES"),
            Backend::Mysql => Some("DATABASE_URL_MYSQL"),
            Backend::Mongodb => Some("MONGODB_URL"),
            Backend::Sqlite | Backend::Memory => None,
        }
    }

    /// The server used when [`env_key`](Self::env_key) is unset: the local services of a
    /// development machine. MongoDB has none (no server ships with Debian; `cargo xtask
    /// test` starts one and sets `MONGODB_URL`).
    pub fn default_server_url(self) -> Option<&'static str> {
        match self {
            Backend::Postgres => Some("postgres://postgres@127.0.0.1:5432/test"),
            Backend::Mysql => Some("mysql://root@127.0.0.1:3306/test"),
            Backend::Sqlite | Backend::Mongodb | Backend::Memory => None,
        }
    }

    /// The server to create test databases on: from the environment, else the default.
    pub fn server_url(self) -> Option<String> {
        self.env_key()
            .and_then(|key| std::env::var(key).ok())
            .filter(|url| !url.is_empty())
            .or_else(|| self.default_server_url().map(str::to_owned))
    }
}

/// The backends by the names [`crate::backend_tests!`] takes, so that a misspelt backend
/// is a compile error.
#[allow(non_upper_case_globals)]
#[doc(hidden)]
pub mod by_name {
    use super::Backend;

    pub const sqlite: Backend = Backend::Sqlite;
    pub const postgres: Backend = Backend::Postgres;
    pub const mysql: Backend = Backend::Mysql;
    pub const mongodb: Backend = Backend::Mongodb;
    pub const memory: Backend = Backend::Memory;
}

/// True when running in CI (`CI=true` or `CI=1`), where no backend may be left out.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|value| value == "true" || value == "1")
}

/// What a test's setup hands back beside its subject, to be cleaned up after the test.
pub trait Teardown {
    /// Removes what the setup made.
    fn teardown(self) -> impl Future<Output = ()> + Send;
}

impl Teardown for TestDatabase {
    async fn teardown(self) {
        self.drop_now().await;
    }
}

/// Nothing to clean up: an in-memory store goes with its last clone.
impl Teardown for () {
    async fn teardown(self) {}
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A database made for one test. Dropped by [`TestDatabase::drop_now`], or failing that
/// (a panicking test) when the value is dropped.
#[derive(Debug)]
pub struct TestDatabase {
    backend: Backend,
    /// Where the service should connect: a sea-orm URL, or the MongoDB server URL.
    url: String,
    /// The database name (the file path for SQLite).
    name: String,
    /// The server URL used to create and drop the database.
    server: String,
    dropped: bool,
}

impl TestDatabase {
    /// A fresh, empty database on `backend`.
    ///
    /// # Panics
    ///
    /// When the backend's server cannot be reached: the test fails, saying why. Run the
    /// tests with `cargo xtask test`, which provides the servers it can and reports the
    /// tests of the others as skipped.
    pub async fn create(backend: Backend) -> Self {
        let name = format!("auth_test_{}", uuid::Uuid::new_v4().simple());
        let server = match backend {
            Backend::Sqlite => String::new(),
            Backend::Memory => unavailable(backend, "the in-memory stores need no database"),
            _ => backend.server_url().unwrap_or_else(|| {
                unavailable(
                    backend,
                    &format!(
                        "{} is not set",
                        backend
                            .env_key()
                            .expect("a backend with a server has a key")
                    ),
                )
            }),
        };
        let url = match backend {
            Backend::Sqlite => {
                let path = std::env::temp_dir().join(format!("{name}.db"));
                format!("sqlite://{}?mode=rwc", path.display())
            }
            Backend::Postgres | Backend::Mysql => {
                if let Err(error) = execute(&server, &format!("CREATE DATABASE {name}")).await {
                    unavailable(
                        backend,
                        &format!(
                            "cannot create a database on {}: {error}",
                            auth_domain::redact_url(&server)
                        ),
                    );
                }
                let mut url = Url::parse(&server).expect("the server URL was just used to connect");
                url.set_path(&format!("/{name}"));
                url.to_string()
            }
            Backend::Mongodb => {
                if let Err(error) = mongo_ping(&server).await {
                    unavailable(
                        backend,
                        &format!("cannot reach {}: {error}", auth_domain::redact_url(&server)),
                    );
                }
                server.clone()
            }
            Backend::Memory => unreachable!("refused above"),
        };
        let name = match backend {
            Backend::Sqlite => std::env::temp_dir()
                .join(format!("{name}.db"))
                .display()
                .to_string(),
            _ => name,
        };
        Self {
            backend,
            url,
            name,
            server,
            dropped: false,
        }
    }

    /// The backend this database lives on.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The URL the service connects to (`DATABASE_URL`, or `MONGODB_URL` for MongoDB).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The database name to use on the MongoDB server (`MONGODB_DB`).
    pub fn mongo_db_name(&self) -> &str {
        &self.name
    }

    /// Drops the database now. Call it at the end of a test; `Drop` is the fallback.
    pub async fn drop_now(mut self) {
        self.dropped = true;
        if let Err(error) = drop_database(self.backend, &self.server, &self.name).await {
            eprintln!(
                "warning: could not drop test database {} on {}: {error}",
                self.name, self.backend
            );
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if self.dropped {
            return;
        }
        // Drop cannot await; a panicking async test still gets its database removed by a
        // short-lived runtime on a thread of its own.
        let (backend, server, name) = (self.backend, self.server.clone(), self.name.clone());
        let cleanup = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(drop_database(backend, &server, &name))
        });
        if let Ok(Err(error)) = cleanup.join() {
            eprintln!(
                "warning: could not drop test database {} on {}: {error}",
                self.name, self.backend
            );
        }
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

async fn drop_database(backend: Backend, server: &str, name: &str) -> Result<(), BoxError> {
    match backend {
        Backend::Sqlite => {
            for suffix in ["", "-wal", "-shm"] {
                let path = PathBuf::from(format!("{name}{suffix}"));
                if path.exists() {
                    std::fs::remove_file(path)?;
                }
            }
            Ok(())
        }
        // FORCE: the app under test may still hold pooled connections.
        Backend::Postgres => {
            execute(
                server,
                &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
            )
            .await
        }
        Backend::Mysql => execute(server, &format!("DROP DATABASE IF EXISTS {name}")).await,
        Backend::Mongodb => {
            let client = mongodb::Client::with_uri_str(server).await?;
            client.database(name).drop().await?;
            Ok(())
        }
        Backend::Memory => Ok(()),
    }
}

async fn execute(server: &str, statement: &str) -> Result<(), BoxError> {
    let mut options = sea_orm::ConnectOptions::new(server.to_owned());
    options.max_connections(1).sqlx_logging(false);
    let connection = Database::connect(options).await?;
    connection.execute_unprepared(statement).await?;
    connection.close().await?;
    Ok(())
}

async fn mongo_ping(server: &str) -> Result<(), BoxError> {
    let mut options = mongodb::options::ClientOptions::parse(server).await?;
    options.server_selection_timeout = Some(std::time::Duration::from_secs(5));
    let client = mongodb::Client::with_options(options)?;
    client
        .database("admin")
        .run_command(mongodb::bson::doc! {"ping": 1})
        .await?;
    Ok(())
}

fn unavailable(backend: Backend, why: &str) -> ! {
    panic!(
        "backend {backend} is not available: {why}. `cargo xtask test` provides it, or \
         reports its tests as skipped when it cannot (`--backend` picks the backends to run)"
    )
}
