//! The backends, and opening the configured one: [`Storage::with`] is the one place that
//! matches on the storage choice; everything that differs between backends is a
//! [`Backend`].
//!
//! `serve`, `install` and every admin command say what they do with the stores as an
//! [`OnStores`]; [`with_stores`] opens the backend `STORAGE` names (creating its schema or
//! indexes), wraps every store in its `DATABASE_TIMEOUT` ([`BoundedStores`]), runs the
//! work, and closes the stores before returning, so that no driver task outlives the
//! runtime.

use std::{future::Future, num::NonZeroU32, pin::Pin, time::Duration};

use anyhow::Context as _;
use auth_domain::{clock::Clock, redact_url, Stores};
use auth_store_mongo::{MongoConfig, MongoStores};
use auth_store_sql::SqlStores;

use crate::{bounded::BoundedStores, retry, Config, Storage};

/// One backend: how its stores open, and what else differs between backends.
pub(crate) trait Backend {
    /// Its stores.
    type Stores: auth_http::Stores;

    /// What `app install` makes on it.
    const INSTALLS: &'static str;

    /// The pool size when `DATABASE_MAX_CONNECTIONS` is not set.
    fn default_max_connections(database_url: &str) -> NonZeroU32;

    /// Where it lives, with any password redacted: fit for logs.
    fn redacted_url(config: &Config) -> String;

    /// Connects and creates the schema or indexes, retrying an unreachable database for
    /// up to `STARTUP_TIMEOUT`.
    fn open(
        config: &Config,
        clock: &Clock,
    ) -> impl Future<Output = anyhow::Result<Self::Stores>> + Send;
}

/// What is done with the backend `STORAGE` names, whichever it is.
pub(crate) trait OnBackend {
    /// What it gives back.
    type Output;

    /// Does it with `B`.
    fn on<B: Backend>(self) -> Self::Output;
}

impl Storage {
    /// Does `work` with the backend this names: the one place the choice is made.
    pub(crate) fn with<W: OnBackend>(self, work: W) -> W::Output {
        match self {
            Self::Sql => work.on::<SqlBackend>(),
            Self::Mongodb => work.on::<MongoBackend>(),
        }
    }
}

/// SQLite, PostgreSQL or MySQL/MariaDB at `DATABASE_URL`.
struct SqlBackend;

impl Backend for SqlBackend {
    type Stores = SqlStores;

    const INSTALLS: &'static str = "SQL schema";

    fn default_max_connections(database_url: &str) -> NonZeroU32 {
        auth_store_sql::default_max_connections(database_url)
    }

    fn redacted_url(config: &Config) -> String {
        redact_url(&config.database_url)
    }

    async fn open(config: &Config, clock: &Clock) -> anyhow::Result<SqlStores> {
        Ok(SqlStores::new(open_sql(config).await?, clock.clone()))
    }
}

/// MongoDB at `MONGODB_URL`.
struct MongoBackend;

impl Backend for MongoBackend {
    type Stores = MongoStores;

    const INSTALLS: &'static str = "MongoDB indexes";

    fn default_max_connections(_: &str) -> NonZeroU32 {
        MongoConfig::default_max_pool_size()
    }

    fn redacted_url(config: &Config) -> String {
        format!(
            "{} (database {})",
            redact_url(&config.mongo.url),
            config.mongo.database
        )
    }

    async fn open(config: &Config, clock: &Clock) -> anyhow::Result<MongoStores> {
        Ok(open_mongo(config).await?.with_clock(clock.clone()))
    }
}

/// What runs on the stores of the configured backend, whichever it is.
pub(crate) trait OnStores: Send {
    /// What the work gives back.
    type Output: Send;

    /// Does the work on `stores`.
    fn run<B: auth_http::Stores>(
        self,
        stores: BoundedStores<B>,
    ) -> impl Future<Output = anyhow::Result<Self::Output>> + Send;
}

/// Opens the configured backend on `clock`, runs `work` on its bounded stores, and closes
/// them.
pub(crate) async fn with_stores<W: OnStores>(
    config: &Config,
    clock: &Clock,
    work: W,
) -> anyhow::Result<W::Output> {
    config
        .storage
        .with(OpenAndRun {
            config,
            clock,
            work,
        })
        .await
}

/// [`with_stores`] once the backend is known.
struct OpenAndRun<'a, W> {
    config: &'a Config,
    clock: &'a Clock,
    work: W,
}

impl<'a, W: OnStores + 'a> OnBackend for OpenAndRun<'a, W> {
    // Boxed: each backend's future is a type of its own, and the answer must be one type.
    type Output = Pin<Box<dyn Future<Output = anyhow::Result<W::Output>> + Send + 'a>>;

    fn on<B: Backend>(self) -> Self::Output {
        Box::pin(async move {
            let stores = B::open(self.config, self.clock).await?;
            run_and_close(stores, self.config.database_timeout, self.work).await
        })
    }
}

/// After a failure (perhaps of a database that stopped answering), the close waits this
/// long at most: the answer is due, and dropping the connections is enough.
const CLOSE_AFTER_FAILURE: Duration = Duration::from_millis(200);

async fn run_and_close<B: auth_http::Stores, W: OnStores>(
    stores: B,
    timeout: Duration,
    work: W,
) -> anyhow::Result<W::Output> {
    let bounded = BoundedStores::new(stores, timeout);
    let output = work.run(bounded.clone()).await;
    let wait = if output.is_ok() {
        timeout
    } else {
        CLOSE_AFTER_FAILURE
    };
    bounded.close(wait).await;
    output
}

/// Connects to `DATABASE_URL` (a pool of `DATABASE_MAX_CONNECTIONS`, bounded by
/// `DATABASE_TIMEOUT`) and brings the schema up to date; a database that cannot be reached
/// is retried for up to `STARTUP_TIMEOUT` (see [`retry`]).
async fn open_sql(config: &Config) -> anyhow::Result<sea_orm::DatabaseConnection> {
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
async fn open_mongo(config: &Config) -> anyhow::Result<MongoStores> {
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
