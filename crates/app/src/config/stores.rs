//! The stores' sections: auth-store-sql's database, auth-store-mongo's [`MongoConfig`], and
//! the pool size and timeout they share.

use std::{fmt, num::NonZeroU32, ops::Deref, time::Duration};

use auth_domain::redact_url;
use auth_store_mongo::MongoConfig;

use super::{read::Settings, ConfigError, Storage};
use crate::stores::{Backend, OnBackend};

/// More connections than this from one process is a typo, not a plan: it is ten times the
/// default limit of a whole PostgreSQL server, and each SQLite connection is a thread.
const MAX_DATABASE_CONNECTIONS: u32 = 1000;

/// The longest `DATABASE_TIMEOUT` accepted: past a few minutes, clients and proxies have
/// long given up on the request.
const MAX_DATABASE_TIMEOUT_SECS: u64 = 300;

/// A connection URL that may hold a password: `Debug` shows it redacted.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl(String);

impl DatabaseUrl {
    /// The URL, password included: for the driver, never for a log.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Deref for DatabaseUrl {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&redact_url(&self.0), f)
    }
}

/// sea-orm panics on a URL it cannot parse: refuse it here, with the reason.
pub(super) fn database_url(s: &Settings<'_>) -> Result<DatabaseUrl, ConfigError> {
    let database_url = url(
        s,
        "DATABASE_URL",
        &["sqlite", "postgres", "postgresql", "mysql"],
    )?;
    url::Url::parse(&database_url)
        .map_err(|e| s.error("DATABASE_URL", format!("not a valid URL: {e}")))?;
    Ok(DatabaseUrl(database_url))
}

/// The pool size given, or the default its store crate picks for the configured engine,
/// which depends on `STORAGE`, `DATABASE_URL` and the machine, hence no built-in default.
pub(super) fn database_max_connections(
    s: &Settings<'_>,
    storage: Storage,
    database_url: &str,
) -> Result<NonZeroU32, ConfigError> {
    const KEY: &str = "DATABASE_MAX_CONNECTIONS";
    if !s.is_set(KEY) {
        /// The default pool size of the backend configured.
        struct DefaultPool<'a>(&'a str);

        impl OnBackend for DefaultPool<'_> {
            type Output = NonZeroU32;

            fn on<B: Backend>(self) -> NonZeroU32 {
                B::default_max_connections(self.0)
            }
        }

        return Ok(storage.with(DefaultPool(database_url)));
    }
    let max = s.number_in(KEY, 1..=MAX_DATABASE_CONNECTIONS)?;
    NonZeroU32::try_from(max).map_err(|e| s.error(KEY, e))
}

pub(super) fn database_timeout(s: &Settings<'_>) -> Result<Duration, ConfigError> {
    let secs = s.number_in("DATABASE_TIMEOUT", 1..=MAX_DATABASE_TIMEOUT_SECS)?;
    Ok(Duration::from_secs(secs))
}

/// The MongoDB section, with the pool size and timeout shared with the SQL stores.
pub(super) fn mongo_config(
    s: &Settings<'_>,
    max_pool_size: NonZeroU32,
    timeout: Duration,
) -> Result<MongoConfig, ConfigError> {
    let url = url(s, "MONGODB_URL", &["mongodb", "mongodb+srv"])?;
    let database = mongodb_db(s)?;
    let [users_collection, sessions_collection, failures_collection, events_collection] =
        collections(s)?;
    Ok(MongoConfig {
        url,
        database,
        users_collection,
        sessions_collection,
        failures_collection,
        events_collection,
        max_pool_size,
        timeout,
    })
}

/// A URL with one of `schemes`. The value is not echoed: it may hold a password.
fn url(s: &Settings<'_>, key: &str, schemes: &[&str]) -> Result<String, ConfigError> {
    let url = s.string(key)?;
    // Drivers match the scheme case-sensitively, so this does too.
    match url.split_once(':') {
        Some((scheme, _)) if schemes.contains(&scheme) => Ok(url),
        _ => Err(s.error(
            key,
            format!("expected a URL starting with {}:", schemes.join(":, ")),
        )),
    }
}

/// MongoDB's rules for database names, checked here so that a typo is a start-up error.
fn mongodb_db(s: &Settings<'_>) -> Result<String, ConfigError> {
    let name = s.string("MONGODB_DB")?;
    let forbidden = |c: char| "/\\. \"$*<>:|?\0".contains(c);
    if name.is_empty() || name.len() > 63 || name.contains(forbidden) {
        return Err(s.error(
            "MONGODB_DB",
            format!("`{name}` is not a MongoDB database name (1 to 63 bytes, none of / \\ . \" $ * < > : | ? or space)"),
        ));
    }
    Ok(name)
}

/// The four MongoDB collections (users, sessions, failures, events), checked to be distinct:
/// two stores sharing a collection would read each other's documents.
fn collections(s: &Settings<'_>) -> Result<[String; 4], ConfigError> {
    let keys = [
        "MONGODB_USERS_COLLECTION",
        "MONGODB_SESSIONS_COLLECTION",
        "MONGODB_FAILURES_COLLECTION",
        "MONGODB_EVENTS_COLLECTION",
    ];
    let mut names: [String; 4] = Default::default();
    for (index, key) in keys.into_iter().enumerate() {
        let name = collection(s, key)?;
        if let Some(earlier) = names[..index].iter().position(|earlier| *earlier == name) {
            return Err(s.error(key, format!("must differ from {}", keys[earlier])));
        }
        names[index] = name;
    }
    Ok(names)
}

fn collection(s: &Settings<'_>, key: &str) -> Result<String, ConfigError> {
    let name = s.string(key)?;
    if name.is_empty() || name.contains(['$', '\0']) || name.starts_with("system.") {
        return Err(s.error(
            key,
            format!("`{name}` is not a MongoDB collection name (not empty, no $, not system.*)"),
        ));
    }
    Ok(name)
}
