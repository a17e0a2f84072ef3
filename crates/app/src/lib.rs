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
//! app::init_tracing(&config.log);
//! let listener = tokio::net::TcpListener::bind((config.host.as_str(), config.port)).await?;
//! app::run(config, listener, async {
//!     let _ = tokio::signal::ctrl_c().await;
//! })
//! .await?;
//! # Ok(()) }
//! ```

pub mod config;
mod purge;
mod report;
mod telemetry;

use std::{future::Future, net::SocketAddr};

use anyhow::Context as _;
use auth_domain::{
    audit::AuditLog,
    redact_url,
    throttle::{FailureCounter, REGISTRATION_WINDOW},
    AuthService, HashingConfig, PasswordHasher, UserRepository, UserSessions,
};
use auth_http::{Backend, HttpConfig, SessionKey};
use auth_store_mongo::{MongoConfig, MongoStores};
use auth_store_sql::{SqlAuditLog, SqlFailureCounter, SqlSessionStore, SqlUserRepository};
use secrecy::ExposeSecret;
use tokio::{net::TcpListener, task::JoinHandle};
use tower_sessions::SessionStore;

pub use config::{Config, ConfigError, Storage};
pub use report::one_line;
pub use telemetry::init_tracing;

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
    let http = HttpConfig {
        session_key: SessionKey::from_bytes(config.secret_key.expose_secret().as_bytes())
            .context("SECRET_KEY")?,
        fallback_keys: config
            .secret_key_fallbacks
            .iter()
            .map(|key| SessionKey::from_bytes(key.expose_secret().as_bytes()))
            .collect::<Result<_, _>>()
            .context("SECRET_KEY_FALLBACKS")?,
        session_lifetime: time::Duration::try_from(config.session_lifetime)
            .context("PERMANENT_SESSION_LIFETIME")?,
        absolute_lifetime: time::Duration::try_from(config.session_absolute_lifetime)
            .context("SESSION_ABSOLUTE_LIFETIME")?,
        secure_cookie: config.session_cookie_secure,
        trusted_proxies: config.trusted_proxies.clone(),
        allowed_origins: config.allowed_origins.clone(),
        throttle: config.throttle,
    };
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
    // Building the hasher computes one hash (its dummy): keep it off the runtime's threads.
    let hasher = tokio::task::spawn_blocking(move || PasswordHasher::new(&hashing))
        .await
        .context("building the password hasher")?
        .context("ARGON2_MEMORY_KIB, ARGON2_ITERATIONS, ARGON2_PARALLELISM")?;
    let policy = config.password_policy;

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
            let backend = Backend {
                service: AuthService::new(SqlUserRepository::new(db.clone()), hasher, policy),
                sessions,
                failures: SqlFailureCounter::new(db.clone()),
                audit: SqlAuditLog::new(db.clone()),
            };
            let served = serve(backend, http, &config, listener, shutdown).await;
            if let Err(e) = db.close().await {
                tracing::warn!("closing the SQL connection: {e}");
            }
            served
        }
        Storage::Mongodb => {
            // No session purge: the TTL index on `expires_at` has MongoDB delete expired
            // sessions.
            let MongoStores {
                users,
                sessions,
                failures,
                events,
            } = open_mongo(&config).await?;
            let backend = Backend {
                service: AuthService::new(users, hasher, policy),
                sessions,
                failures,
                audit: events,
            };
            serve(backend, http, &config, listener, shutdown).await
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
    S: SessionStore + UserSessions,
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
    // Said only now that the backend is ready: requests that arrived earlier waited in
    // the listen queue.
    tracing::info!(
        storage = %config.storage,
        database = %config.redacted_storage_url(),
        debug = config.debug,
        "listening on http://{}",
        listener.local_addr().context("reading the listening address")?
    );
    // The peer address reaches the handlers: a login records it with the session.
    let app = router.into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
        .context("serving HTTP")?;
    tracing::info!("stopped");
    Ok(())
}

/// Connects to `DATABASE_URL` (a pool of `DATABASE_MAX_CONNECTIONS`) and brings the schema
/// up to date.
async fn open_sql(config: &Config) -> anyhow::Result<sea_orm::DatabaseConnection> {
    let url = redact_url(&config.database_url);
    let db = auth_store_sql::connect_with(&config.database_url, config.database_max_connections)
        .await
        .with_context(|| format!("cannot connect to the SQL database {url} (DATABASE_URL)"))?;
    auth_store_sql::install(&db)
        .await
        .with_context(|| format!("cannot create the schema in {url}"))?;
    Ok(db)
}

/// Connects to `MONGODB_URL` and creates the indexes.
async fn open_mongo(config: &Config) -> anyhow::Result<MongoStores> {
    let mongo = MongoConfig {
        url: config.mongodb_url.clone(),
        database: config.mongodb_db.clone(),
        users_collection: config.mongodb_users_collection.clone(),
        sessions_collection: config.mongodb_sessions_collection.clone(),
        failures_collection: config.mongodb_failures_collection.clone(),
        events_collection: config.mongodb_events_collection.clone(),
        max_pool_size: config.database_max_connections,
    };
    MongoStores::open(&mongo).await.with_context(|| {
        format!(
            "cannot open MongoDB at {} (MONGODB_URL, MONGODB_DB)",
            config.redacted_storage_url()
        )
    })
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
