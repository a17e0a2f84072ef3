//! Throwaway databases: one per test, on any backend, dropped when the test ends.
//!
//! Servers come from the environment (`cargo xtask test` sets it):
//! `DATABASE_URL_POSTGRES` (default `postgres://postgres@127.0.0.1:5432/test`),
//! `DATABASE_URL_MYSQL` (default `mysql://root@127.0.0.1:3306/test`) and `MONGODB_URL`
//! (no default). A server that cannot be reached fails the test when `CI=true`; elsewhere
//! the test is reported loudly as not run and returns early.

use std::{fmt, path::PathBuf};

use sea_orm::{ConnectionTrait, Database};
use url::Url;

const DEFAULT_POSTGRES: &str = "postgres://postgres@127.0.0.1:5432/test";
const DEFAULT_MYSQL: &str = "mysql://root@127.0.0.1:3306/test";

/// A storage engine the service can run on.
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
}

impl Backend {
    /// Every backend, in the order the suites run them.
    pub const ALL: [Backend; 4] = [
        Backend::Sqlite,
        Backend::Postgres,
        Backend::Mysql,
        Backend::Mongodb,
    ];

    /// Short lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
            Backend::Mysql => "mysql",
            Backend::Mongodb => "mongodb",
        }
    }

    /// True for the engines reached through sea-orm.
    pub fn is_sql(self) -> bool {
        self != Backend::Mongodb
    }

    /// The server to create test databases on, from the environment or the local default.
    fn server_url(self) -> Option<String> {
        let from_env = |key: &str| std::env::var(key).ok().filter(|v| !v.is_empty());
        match self {
            Backend::Sqlite => Some(String::new()),
            Backend::Postgres => {
                Some(from_env("DATABASE_URL_POSTGRES").unwrap_or_else(|| DEFAULT_POSTGRES.into()))
            }
            Backend::Mysql => {
                Some(from_env("DATABASE_URL_MYSQL").unwrap_or_else(|| DEFAULT_MYSQL.into()))
            }
            Backend::Mongodb => from_env("MONGODB_URL"),
        }
    }
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
    /// A fresh, empty database on `backend`, or `None` when that backend is not available
    /// outside CI (reported on stderr). In CI an unavailable backend panics.
    pub async fn create(backend: Backend) -> Option<Self> {
        let name = format!("auth_test_{}", uuid::Uuid::new_v4().simple());
        let Some(server) = backend.server_url() else {
            return not_run(
                backend,
                "MONGODB_URL is not set (run the tests with `cargo xtask test`)",
            );
        };
        let url = match backend {
            Backend::Sqlite => {
                let path = std::env::temp_dir().join(format!("{name}.db"));
                format!("sqlite://{}?mode=rwc", path.display())
            }
            Backend::Postgres | Backend::Mysql => {
                if let Err(error) = execute(&server, &format!("CREATE DATABASE {name}")).await {
                    return not_run(
                        backend,
                        &format!("cannot create a database on {}: {error}", redact(&server)),
                    );
                }
                let mut url = Url::parse(&server).expect("the server URL was just used to connect");
                url.set_path(&format!("/{name}"));
                url.to_string()
            }
            Backend::Mongodb => {
                if let Err(error) = mongo_ping(&server).await {
                    return not_run(
                        backend,
                        &format!("cannot reach {}: {error}", redact(&server)),
                    );
                }
                server.clone()
            }
        };
        let name = match backend {
            Backend::Sqlite => std::env::temp_dir()
                .join(format!("{name}.db"))
                .display()
                .to_string(),
            _ => name,
        };
        Some(Self {
            backend,
            url,
            name,
            server,
            dropped: false,
        })
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

fn not_run(backend: Backend, why: &str) -> Option<TestDatabase> {
    let in_ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
    assert!(
        !in_ci,
        "backend {backend} is required in CI but unavailable: {why}"
    );
    eprintln!("\n*** NOT RUN on {backend}: {why} ***\n");
    None
}

/// A URL with its password, if any, replaced, for messages.
pub fn redact(url: &str) -> String {
    match Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        _ => url.to_owned(),
    }
}
