//! The service's settings, from built-in defaults < `App.toml` < `.env` < environment
//! variables, parsed once at start-up into typed values.
//!
//! Each part owns its settings: a library crate states its keys, their defaults and what
//! they are for beside the type they fill (`HttpConfig::SETTINGS`, `MongoConfig::SETTINGS`,
//! `HashingConfig::SETTINGS`, ...), and the app adds its own; [`settings`] is the one list.
//! Keys are upper-case and keep the Flask recipe's names; `.env.example` at the repository
//! root documents every one. A bad or missing setting is a [`ConfigError`] naming the key.

mod domain;
mod http;
mod keys;
mod mail;
mod read;
mod sources;
mod stores;

use std::{fmt, net::SocketAddr, num::NonZeroU32, path::Path, str::FromStr, time::Duration};

use auth_domain::{
    account_mail::EmailVerification, settings::DefaultValue, throttle::ThrottleLimits,
    HashingConfig, PasswordPolicy,
};
use auth_http::HttpConfig;
use auth_store_mongo::MongoConfig;
use figment::{
    value::{Dict, Map, Value},
    Figment, Metadata, Profile, Provider,
};
use tracing_subscriber::EnvFilter;

pub use keys::{is_key, settings};
use read::Settings;
pub use stores::DatabaseUrl;

use crate::{
    mail::MailConfig,
    stores::{Backend, OnBackend},
    telemetry::LogFormat,
};

/// Purging less often than weekly would only let dead sessions pile up.
const MAX_PURGE_INTERVAL_SECS: u64 = 7 * 24 * 60 * 60;

/// The longest `STARTUP_TIMEOUT` accepted: an hour.
const MAX_STARTUP_TIMEOUT_SECS: u64 = 60 * 60;

/// Keeping events longer than ten years is a typo, not a policy.
const MAX_AUDIT_RETENTION_DAYS: u64 = 3650;

const SECS_PER_DAY: u64 = 24 * 60 * 60;

/// The longest transport timeout accepted (`HEADER_READ_TIMEOUT`, `BODY_READ_TIMEOUT`,
/// `REQUEST_TIMEOUT`, `SHUTDOWN_TIMEOUT`): past ten minutes it is a typo.
const MAX_TRANSPORT_TIMEOUT_SECS: u64 = 600;

/// The largest `MAX_CONNECTIONS` accepted: Linux's usual hard descriptor limit.
const MAX_CONNECTIONS: usize = 1 << 20;

/// Where users and sessions are stored (`STORAGE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Storage {
    /// SQLite, PostgreSQL or MySQL/MariaDB at `DATABASE_URL`.
    Sql,
    /// MongoDB at `MONGODB_URL`.
    Mongodb,
}

impl Storage {
    /// Each storage with its name in configuration.
    const NAMES: [(Self, &'static str); 2] = [(Self::Sql, "sql"), (Self::Mongodb, "mongodb")];

    /// The name used in configuration.
    pub fn as_str(self) -> &'static str {
        Self::NAMES
            .iter()
            .find_map(|&(storage, name)| (storage == self).then_some(name))
            .unwrap_or_default()
    }
}

impl fmt::Display for Storage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Storage {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let name = s.to_ascii_lowercase();
        match Self::NAMES.iter().find(|(_, known)| *known == name) {
            Some(&(storage, _)) => Ok(storage),
            None => Err(format!("expected `sql` or `mongodb`, not `{s}`")),
        }
    }
}

/// A setting that is missing or invalid. Displays as one line, `KEY: what is wrong`,
/// and never contains the value of a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {message}")]
pub struct ConfigError {
    key: String,
    message: String,
}

impl ConfigError {
    fn new(key: &str, message: String) -> Self {
        Self {
            key: key.to_owned(),
            message,
        }
    }

    /// The key at fault (or the file, `App.toml` or `.env`, when it cannot be read).
    pub fn key(&self) -> &str {
        &self.key
    }
}

/// The service's settings, validated: each library's section in that library's own type,
/// handed to it as it is, and the app's own settings. `Debug` hides the signing keys and
/// the passwords in database URLs.
#[derive(Debug, Clone)]
pub struct Config {
    /// The router's section (auth-http): cookie keys, session lifetimes, proxies, origins,
    /// request deadlines.
    pub http: HttpConfig,
    /// Login and registration throttling (auth-domain's account use cases).
    pub throttle: ThrottleLimits,
    /// True when `SECRET_KEY` was missing in debug and a random key was made up for this
    /// process: sessions will not survive a restart.
    pub secret_key_generated: bool,
    /// What a new password must satisfy (auth-domain), but the breached passwords.
    pub password_policy: PasswordPolicy,
    /// The breached-password filter's file (`BREACHED_PASSWORDS`), loaded at start-up.
    pub breached_passwords: Option<std::path::PathBuf>,
    /// Argon2id cost and concurrency (auth-domain).
    pub hashing: HashingConfig,
    /// The most password checks waiting for the hasher (auth-domain's `HASH_QUEUE_LIMIT`).
    pub hash_queue_limit: usize,
    /// The backend (`STORAGE`).
    pub storage: Storage,
    /// The SQL database (auth-store-sql's `DATABASE_URL`).
    pub database_url: DatabaseUrl,
    /// The MongoDB section (auth-store-mongo), with the pool size and timeout below.
    pub mongo: MongoConfig,
    /// The most connections open to the database at once (`DATABASE_MAX_CONNECTIONS`).
    pub database_max_connections: NonZeroU32,
    /// How long one database operation may take (`DATABASE_TIMEOUT`).
    pub database_timeout: Duration,
    /// How long start-up keeps retrying a database it cannot reach (`STARTUP_TIMEOUT`).
    pub startup_timeout: Duration,
    /// The interface to listen on (`HOST`).
    pub host: String,
    /// The TCP port to listen on (`PORT`).
    pub port: u16,
    /// Development mode (`DEBUG`).
    pub debug: bool,
    /// How often the purges run (`SESSION_PURGE_INTERVAL`).
    pub session_purge_interval: Duration,
    /// How long audit events are kept (`AUDIT_RETENTION_DAYS`).
    pub audit_retention: Duration,
    /// The tracing filter directive (`LOG`).
    pub log: String,
    /// How log lines are written (`LOG_FORMAT`).
    pub log_format: LogFormat,
    /// Where `GET /metrics` is served (`METRICS_ADDR`); `None` serves no metrics.
    pub metrics_addr: Option<SocketAddr>,
    /// How long a client may take to send a request's headers (`HEADER_READ_TIMEOUT`).
    pub header_read_timeout: Duration,
    /// The most client connections open at once (`MAX_CONNECTIONS`); capped at start-up
    /// below the descriptor limit.
    pub max_connections: usize,
    /// How long in-flight requests may take once a shutdown is requested
    /// (`SHUTDOWN_TIMEOUT`).
    pub shutdown_timeout: Duration,
    /// The most client connections open at once from one address
    /// (`MAX_CONNECTIONS_PER_ADDRESS`); 0 for no such cap.
    pub max_connections_per_address: usize,
    /// How long a write of an answer may wait for the client to read (`WRITE_TIMEOUT`).
    pub write_timeout: Duration,
    /// The listen queue's length (`LISTEN_BACKLOG`).
    pub listen_backlog: u32,
    /// Where mail goes and whom it is from (`SMTP_URL`, `MAIL_FROM`, `MAIL_DIR`).
    pub mail: MailConfig,
    /// The base of every mailed link (`PUBLIC_URL`), without a trailing slash.
    pub public_url: String,
    /// How long a password-reset link lives (`PASSWORD_RESET_LIFETIME`).
    pub password_reset_lifetime: time::Duration,
    /// Whether addresses are verified (`EMAIL_VERIFICATION`).
    pub email_verification: EmailVerification,
    /// Steps a TOTP code may be off (`TOTP_SKEW`).
    pub totp_skew: u8,
}

impl Config {
    /// Loads the settings from `App.toml`, `.env` (both in the working directory,
    /// both optional) and the environment, over the built-in defaults.
    pub fn load() -> Result<Self, ConfigError> {
        Self::from_figment(Self::sources(Path::new(".")))
    }

    /// `App.toml` < `.env` < environment variables, with the files looked up in `dir`.
    /// Values are kept as written; [`Config::from_figment`] parses them.
    pub fn sources(dir: &Path) -> Figment {
        files(dir).merge(sources::Environment::process())
    }

    /// Parses `figment` merged over the built-in defaults. Keys are the upper-case names
    /// of [`settings`]; values may be typed or text (`("PORT", 0)` and `("PORT", "0")`
    /// alike).
    pub fn from_figment(figment: Figment) -> Result<Self, ConfigError> {
        let figment = Figment::from(Defaults).merge(figment);
        let s = Settings::new(&figment)?;

        let debug = s
            .optional_bool("DEBUG")?
            // A bare `cargo run` is development; a release build must opt in.
            .unwrap_or(cfg!(debug_assertions));
        let (http, secret_key_generated) = http::http_config(&s, debug)?;
        let storage = s
            .string("STORAGE")?
            .parse()
            .map_err(|e| s.error("STORAGE", e))?;
        let database_url = stores::database_url(&s)?;
        let database_max_connections =
            stores::database_max_connections(&s, storage, &database_url)?;
        let database_timeout = stores::database_timeout(&s)?;
        let mongo = stores::mongo_config(&s, database_max_connections, database_timeout)?;
        let host = s.string("HOST")?;
        if host.is_empty() || host.contains(char::is_whitespace) {
            return Err(s.error("HOST", format!("`{host}` is not a host name or IP address")));
        }
        let hashing = domain::hashing(&s)?;

        Ok(Self {
            http,
            throttle: domain::throttle(&s)?,
            secret_key_generated,
            password_policy: domain::password_policy(&s)?,
            breached_passwords: domain::breached_passwords(&s)?,
            hash_queue_limit: domain::hash_queue_limit(&s, &hashing)?,
            hashing,
            storage,
            database_url,
            mongo,
            database_max_connections,
            database_timeout,
            startup_timeout: Duration::from_secs(
                s.number_in("STARTUP_TIMEOUT", 0..=MAX_STARTUP_TIMEOUT_SECS)?,
            ),
            host,
            port: s.number("PORT")?,
            debug,
            session_purge_interval: Duration::from_secs(
                s.number_in("SESSION_PURGE_INTERVAL", 1..=MAX_PURGE_INTERVAL_SECS)?,
            ),
            audit_retention: Duration::from_secs(
                s.number_in("AUDIT_RETENTION_DAYS", 1..=MAX_AUDIT_RETENTION_DAYS)? * SECS_PER_DAY,
            ),
            log: log_filter(&s)?,
            log_format: s
                .string("LOG_FORMAT")?
                .parse()
                .map_err(|e| s.error("LOG_FORMAT", e))?,
            metrics_addr: metrics_addr(&s)?,
            header_read_timeout: Duration::from_secs(
                s.number_in("HEADER_READ_TIMEOUT", 1..=MAX_TRANSPORT_TIMEOUT_SECS)?,
            ),
            max_connections: s.number_in("MAX_CONNECTIONS", 1..=MAX_CONNECTIONS)?,
            shutdown_timeout: Duration::from_secs(
                s.number_in("SHUTDOWN_TIMEOUT", 0..=MAX_TRANSPORT_TIMEOUT_SECS)?,
            ),
            max_connections_per_address: s
                .number_in("MAX_CONNECTIONS_PER_ADDRESS", 0..=MAX_CONNECTIONS)?,
            write_timeout: Duration::from_secs(
                s.number_in("WRITE_TIMEOUT", 1..=MAX_TRANSPORT_TIMEOUT_SECS)?,
            ),
            listen_backlog: s.number_in("LISTEN_BACKLOG", 1..=65_535)?,
            mail: mail::mail_config(&s)?,
            public_url: mail::public_url(&s)?,
            password_reset_lifetime: mail::password_reset_lifetime(&s)?,
            email_verification: mail::email_verification(&s)?,
            totp_skew: s.number_in("TOTP_SKEW", 0..=2)?,
        })
    }

    /// Where the configured backend lives, with any password redacted: fit for logs.
    pub fn redacted_storage_url(&self) -> String {
        /// The URL of the backend configured.
        struct RedactedUrl<'a>(&'a Config);

        impl OnBackend for RedactedUrl<'_> {
            type Output = String;

            fn on<B: Backend>(self) -> String {
                B::redacted_url(self.0)
            }
        }

        self.storage.with(RedactedUrl(self))
    }
}

/// `App.toml` < `.env`, looked up in `dir`.
fn files(dir: &Path) -> Figment {
    Figment::new()
        .merge(sources::AppToml {
            path: dir.join("App.toml"),
        })
        .merge(sources::DotenvFile {
            path: dir.join(".env"),
        })
}

/// The bottom layer: every default that is one fixed value, as [`settings`] states it.
/// Those that depend on the build, the machine or another setting are worked out where
/// the setting is read.
struct Defaults;

impl Provider for Defaults {
    fn metadata(&self) -> Metadata {
        Metadata::named("built-in defaults")
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        let dict = settings()
            .filter_map(|setting| {
                let value = match setting.default {
                    DefaultValue::Number(n) => Value::from(n),
                    DefaultValue::Text(text) => Value::from(text),
                    DefaultValue::Unset | DefaultValue::Computed(_) => return None,
                };
                Some((setting.key.to_owned(), value))
            })
            .collect();
        Ok(Profile::Default.collect(dict))
    }
}

/// `METRICS_ADDR`: unset or empty for none, else an IP address and a port.
fn metrics_addr(s: &Settings<'_>) -> Result<Option<SocketAddr>, ConfigError> {
    if !s.is_set("METRICS_ADDR") {
        return Ok(None);
    }
    let addr = s.string("METRICS_ADDR")?;
    if addr.is_empty() {
        return Ok(None);
    }
    addr.parse().map(Some).map_err(|_| {
        s.error(
            "METRICS_ADDR",
            format!("`{addr}` is not an IP address and port, such as 127.0.0.1:9100"),
        )
    })
}

fn log_filter(s: &Settings<'_>) -> Result<String, ConfigError> {
    let directive = s.string("LOG")?;
    EnvFilter::try_new(&directive).map_err(|e| s.error("LOG", e))?;
    Ok(directive)
}

#[cfg(test)]
mod tests;
