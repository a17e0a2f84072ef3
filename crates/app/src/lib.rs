//! The composition root of the authentication service: it reads the [`Config`], builds
//! the password hasher and the [`AuthService`], opens the configured backend (creating the
//! schema or indexes it needs) and serves the `auth_http` router until told to stop.
//!
//! This crate and `xtask` are the only ones that name concrete stores; the backend is
//! chosen at run time by [`Config::storage`], and everything after that choice is one
//! generic code path.
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! let config = app::Config::load()?;
//! app::init_tracing(&config.log, config.log_format);
//! let listener = tokio::net::TcpListener::bind((config.host.as_str(), config.port)).await?;
//! app::run(config, listener, async {
//!     let _ = tokio::signal::ctrl_c().await;
//! })
//! .await?;
//! # Ok(()) }
//! ```

mod bounded;
pub mod cli;
pub mod config;
mod metrics_server;
mod purge;
mod report;
mod retry;
mod server;
mod telemetry;
mod transport;

use std::future::Future;

use anyhow::Context as _;
use auth_domain::{
    audit::AuditLog,
    readiness::Readiness,
    redact_url,
    throttle::{FailureCounter, REGISTRATION_WINDOW},
    AuthService, HashingConfig, OwnedSessions, PasswordHasher, UserRepository, UserSessions,
};
use auth_http::{Backend, HttpConfig};
use auth_store_mongo::MongoStores;
use auth_store_sql::{SqlAuditLog, SqlFailureCounter, SqlSessionStore, SqlUserRepository};
use tokio::{net::TcpListener, task::JoinHandle};
use tower_sessions::SessionStore;

use bounded::Bounded;
pub use config::{Config, ConfigError, Storage};
pub use report::one_line;
pub use server::serve_until_signalled;
pub use telemetry::{init_tracing, LogFormat};

/// Creates the schema (SQL) or the indexes (MongoDB) of the configured backend.
/// Idempotent: what exists is left as it is. `run` does the same at start-up; this is for
/// `cargo xtask install`, to prepare a database ahead of time.
pub async fn install(config: &Config) -> anyhow::Result<()> {
    match config.storage {
        Storage::Sql => {
            let db = open_sql(config).await?;
            db.close().await.context("closing the SQL connection")?;
        }
        Storage::Mongodb => {
            open_mongo(config).await?;
        }
    }
    Ok(())
}

/// Serves the API on `listener` until `shutdown` completes, then lets in-flight requests
/// finish. Connects the configured backend and creates its schema or indexes first, so a
/// fresh database needs no separate installation step; logs `listening on http://...`
/// once the backend is ready.
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    if config.secret_key_generated {
        tracing::warn!(
            "!!! SECRET_KEY IS NOT SET: signing session cookies with a random key made up for \
             this process. Every session dies when it stops. Set SECRET_KEY (at least 64 \
             bytes, e.g. `openssl rand -hex 64`) before serving real users. !!!"
        );
    }
    let http = config.http.clone();
    let hashing = config.hashing;
    let owasp = HashingConfig::default();
    if !config.debug
        && (hashing.memory_kib < owasp.memory_kib || hashing.iterations < owasp.iterations)
    {
        tracing::warn!(
            memory_kib = hashing.memory_kib,
            iterations = hashing.iterations,
            "password hashing is cheaper than OWASP's minimum ({} KiB, {} iterations)",
            owasp.memory_kib,
            owasp.iterations
        );
    }
    let hasher = password_hasher(hashing)
        .await?
        .with_queue_limit(config.hash_queue_limit);
    let policy = config.password_policy;
    // Served (and so stopped) as long as the API is.
    let _metrics = match config.metrics_addr {
        Some(addr) => Some(metrics_server::start(addr).await?),
        None => None,
    };

    match config.storage {
        Storage::Sql => {
            let db = open_sql(&config).await?;
            let sessions = SqlSessionStore::new(db.clone());
            // Dropped (and so stopped) when serving ends, however it ends.
            let _purge = AbortOnDrop(tokio::spawn(
                sessions
                    .clone()
                    .purge_expired_periodically(config.session_purge_interval),
            ));
            let timeout = config.database_timeout;
            let backend = Backend {
                service: AuthService::new(
                    Bounded::new(SqlUserRepository::new(db.clone()), timeout),
                    hasher,
                    policy,
                ),
                sessions: Bounded::new(sessions, timeout),
                failures: Bounded::new(SqlFailureCounter::new(db.clone()), timeout),
                audit: Bounded::new(SqlAuditLog::new(db.clone()), timeout),
            };
            let served = serve(backend, http, &config, listener, shutdown).await;
            close_sql(db, config.database_timeout).await;
            served
        }
        Storage::Mongodb => {
            // No session purge: the TTL index on `expires_at` has MongoDB delete expired
            // sessions.
            let MongoStores {
                client,
                users,
                sessions,
                failures,
                events,
            } = open_mongo(&config).await?;
            let timeout = config.database_timeout;
            let backend = Backend {
                service: AuthService::new(Bounded::new(users, timeout), hasher, policy),
                sessions: Bounded::new(sessions, timeout),
                failures: Bounded::new(failures, timeout),
                audit: Bounded::new(events, timeout),
            };
            let served = serve(backend, http, &config, listener, shutdown).await;
            shut_down_mongo(client, config.database_timeout).await;
            served
        }
    }
}

/// The one code path every backend shares once the stores exist.
async fn serve<R, S, F, A>(
    backend: Backend<R, S, F, A>,
    http: HttpConfig,
    config: &Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()>
where
    R: UserRepository,
    S: SessionStore + OwnedSessions + UserSessions + Readiness,
    F: FailureCounter,
    A: AuditLog,
{
    // Dropped (and so stopped) when serving ends, however it ends.
    let _purge = AbortOnDrop(tokio::spawn(purge::old_entries_periodically(
        backend.failures.clone(),
        backend.audit.clone(),
        purge::Retention {
            failures: http.throttle.failure_window.max(REGISTRATION_WINDOW),
            events: config.audit_retention,
        },
        config.session_purge_interval,
    )));
    let router = auth_http::router(backend, http);
    let limits = transport::Limits {
        header_read_timeout: config.header_read_timeout,
        max_connections: transport::connection_cap(
            config.max_connections,
            transport::raise_descriptor_limit(),
            config.database_max_connections.get(),
        ),
        shutdown_timeout: config.shutdown_timeout,
    };
    // Said only now that the backend is ready: requests that arrived earlier waited in
    // the listen queue.
    tracing::info!(
        storage = %config.storage,
        database = %config.redacted_storage_url(),
        debug = config.debug,
        max_connections = limits.max_connections,
        "listening on http://{}",
        listener.local_addr().context("reading the listening address")?
    );
    transport::serve(listener, router, limits, shutdown).await;
    tracing::info!("stopped");
    Ok(())
}

/// Closes the SQL pool, waiting at most `timeout`: a server that stopped answering would
/// keep a graceful close waiting for ever, and the process has answered already.
pub(crate) async fn close_sql(db: sea_orm::DatabaseConnection, timeout: std::time::Duration) {
    match tokio::time::timeout(timeout, db.close()).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::warn!("closing the SQL connection: {e}"),
        Err(_) => tracing::debug!("the SQL connections did not close within DATABASE_TIMEOUT"),
    }
}

/// Shuts the MongoDB driver down, waiting at most `timeout`: its background tasks end
/// here rather than when the runtime is dropped under them (a worker could then panic
/// after the answer was given; see `MongoStores::client`).
pub(crate) async fn shut_down_mongo(client: mongodb::Client, timeout: std::time::Duration) {
    if tokio::time::timeout(timeout, client.shutdown())
        .await
        .is_err()
    {
        tracing::debug!("the MongoDB driver did not shut down within DATABASE_TIMEOUT");
    }
}

/// Connects to `DATABASE_URL` (a pool of `DATABASE_MAX_CONNECTIONS`, bounded by
/// `DATABASE_TIMEOUT`) and brings the schema up to date; a database that cannot be reached
/// is retried for up to `STARTUP_TIMEOUT` (see [`retry`]).
pub(crate) async fn open_sql(config: &Config) -> anyhow::Result<sea_orm::DatabaseConnection> {
    let url = redact_url(&config.database_url);
    retry::until_reachable(
        &format!("the SQL database {url}"),
        config.startup_timeout,
        || async {
            let db = auth_store_sql::connect_with(
                &config.database_url,
                config.database_max_connections,
                config.database_timeout,
            )
            .await
            .map_err(|e| OpenSqlError::Connect(url.clone(), e))?;
            match auth_store_sql::install(&db).await {
                Ok(()) => Ok(db),
                Err(e) => {
                    db.close().await.ok();
                    Err(OpenSqlError::Install(url.clone(), e))
                }
            }
        },
        |error| auth_store_sql::is_unavailable(error.db_err()),
    )
    .await
}

/// Why [`open_sql`] failed once.
#[derive(Debug, thiserror::Error)]
enum OpenSqlError {
    #[error("cannot connect to the SQL database {0} (DATABASE_URL)")]
    Connect(String, #[source] sea_orm::DbErr),
    #[error("cannot create the schema in {0}")]
    Install(String, #[source] sea_orm::DbErr),
}

impl OpenSqlError {
    fn db_err(&self) -> &sea_orm::DbErr {
        match self {
            Self::Connect(_, e) | Self::Install(_, e) => e,
        }
    }
}

/// Connects to `MONGODB_URL` and creates the indexes; a server that cannot be reached is
/// retried for up to `STARTUP_TIMEOUT` (see [`retry`]).
pub(crate) async fn open_mongo(config: &Config) -> anyhow::Result<MongoStores> {
    let what = format!(
        "MongoDB at {} (MONGODB_URL, MONGODB_DB)",
        config.redacted_storage_url()
    );
    retry::until_reachable(
        &what,
        config.startup_timeout,
        || MongoStores::open(&config.mongo),
        auth_store_mongo::OpenError::is_unavailable,
    )
    .await
    .with_context(|| format!("cannot open {what}"))
}

/// The password hasher of `hashing`. Building it computes one hash (its dummy): kept off
/// the runtime's threads.
pub(crate) async fn password_hasher(hashing: HashingConfig) -> anyhow::Result<PasswordHasher> {
    tokio::task::spawn_blocking(move || PasswordHasher::new(&hashing))
        .await
        .context("building the password hasher")?
        .context("ARGON2_MEMORY_KIB, ARGON2_ITERATIONS, ARGON2_PARALLELISM")
}

/// A background task that ends with its owner.
struct AbortOnDrop<T>(JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests;
