//! Opening the configured backend: the one place that matches on the storage choice.
//!
//! `serve`, `install` and every admin command say what they do with the stores as an
//! [`OnStores`]; [`with_stores`] opens the backend `STORAGE` names (creating its schema or
//! indexes), wraps every store in its `DATABASE_TIMEOUT` ([`BoundedStores`]), runs the
//! work, and closes the stores before returning, so that no driver task outlives the
//! runtime.

use std::{future::Future, time::Duration};

use anyhow::Context as _;
use auth_domain::{clock::Clock, redact_url, Stores};
use auth_store_mongo::MongoStores;
use auth_store_sql::SqlStores;

use crate::{bounded::BoundedStores, retry, Config, Storage};

/// What runs on the stores of the configured backend, whichever it is.
pub(crate) trait OnStores {
    /// What the work gives back.
    type Output;

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
    match config.storage {
        Storage::Sql => {
            let stores = SqlStores::new(open_sql(config).await?, clock.clone());
            run_and_close(stores, config.database_timeout, work).await
        }
        Storage::Mongodb => {
            let stores = open_mongo(config).await?.with_clock(clock.clone());
            run_and_close(stores, config.database_timeout, work).await
        }
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
