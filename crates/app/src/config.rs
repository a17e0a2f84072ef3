//! The service's settings, from built-in defaults < `App.toml` < `.env` < environment
//! variables, parsed once at start-up into typed values.
//!
//! Keys are upper-case and keep the Flask recipe's names; `.env.example` at the repository
//! root documents every one. A bad or missing setting is a [`ConfigError`] naming the key.

mod read;
mod sources;

use std::{
    fmt,
    net::{IpAddr, SocketAddr},
    num::NonZeroU32,
    path::Path,
    str::FromStr,
    time::Duration,
};

use auth_domain::{
    redact_url, throttle::ThrottleLimits, HashingConfig, PasswordPolicy, MAX_PASSWORD_CHARS,
    MIN_PASSWORD_CHARS,
};
use auth_store_mongo::{
    MongoConfig, DEFAULT_EVENTS_COLLECTION, DEFAULT_FAILURES_COLLECTION,
    DEFAULT_SESSIONS_COLLECTION, DEFAULT_USERS_COLLECTION, FAILURE_RETENTION,
};
use figment::{
    value::{Dict, Map, Value},
    Figment, Metadata, Profile, Provider,
};
use ipnet::IpNet;
use rand::distr::{Alphanumeric, SampleString};
use secrecy::{ExposeSecret, SecretString};
use tracing_subscriber::EnvFilter;

use read::Settings;

use crate::telemetry::LogFormat;

/// Every key the service reads, in the order of `.env.example`.
pub const KEYS: &[&str] = &[
    "SECRET_KEY",
    "SECRET_KEY_FALLBACKS",
    "PERMANENT_SESSION_LIFETIME",
    "SESSION_ABSOLUTE_LIFETIME",
    "STORAGE",
    "DATABASE_URL",
    "MONGODB_URL",
    "MONGODB_DB",
    "MONGODB_USERS_COLLECTION",
    "MONGODB_SESSIONS_COLLECTION",
    "MONGODB_FAILURES_COLLECTION",
    "MONGODB_EVENTS_COLLECTION",
    "DATABASE_MAX_CONNECTIONS",
    "DATABASE_TIMEOUT",
    "STARTUP_TIMEOUT",
    "HOST",
    "PORT",
    "TRUSTED_PROXIES",
    "ALLOWED_ORIGINS",
    "DEBUG",
    "SESSION_COOKIE_SECURE",
    "PASSWORD_MIN_LENGTH",
    "ARGON2_MEMORY_KIB",
    "ARGON2_ITERATIONS",
    "ARGON2_PARALLELISM",
    "MAX_CONCURRENT_HASHES",
    "SESSION_PURGE_INTERVAL",
    "LOG",
    "LOG_FORMAT",
    "METRICS_ADDR",
    "LOGIN_FAILURES_PER_CLIENT",
    "LOGIN_FAILURES_PER_ACCOUNT",
    "LOGIN_FAILURES_PER_ADDRESS",
    "LOGIN_FAILURE_WINDOW",
    "REGISTRATIONS_PER_ADDRESS",
    "AUDIT_RETENTION_DAYS",
    "HEADER_READ_TIMEOUT",
    "BODY_READ_TIMEOUT",
    "REQUEST_TIMEOUT",
    "MAX_CONNECTIONS",
    "HASH_QUEUE_LIMIT",
    "SHUTDOWN_TIMEOUT",
];

/// The shortest `SECRET_KEY` accepted, in bytes: the cookie signing key is 512 bits.
pub const MIN_SECRET_KEY_BYTES: usize = 64;

/// The longest session lifetime accepted: browsers keep a cookie at most 400 days.
const MAX_SESSION_LIFETIME_SECS: u64 = 400 * 24 * 60 * 60;

/// The default cap on a session's whole life, unless `PERMANENT_SESSION_LIFETIME` is longer:
/// 90 days. Without a cap, a session that is used at least once per idle lifetime (31 days
/// by default) never ends, so a stolen cookie kept warm by its thief, or a device left
/// logged in, stays valid for ever. Three idle lifetimes still let a rolling session earn
/// its keep (a user who comes back monthly logs in again about once a quarter), while
/// bounding any one cookie to a quarter of a year.
const DEFAULT_SESSION_ABSOLUTE_LIFETIME_SECS: u64 = 90 * 24 * 60 * 60;

/// Purging less often than weekly would only let dead sessions pile up.
const MAX_PURGE_INTERVAL_SECS: u64 = 7 * 24 * 60 * 60;

/// The longest `DATABASE_TIMEOUT` accepted: past a few minutes, clients and proxies have
/// long given up on the request.
const MAX_DATABASE_TIMEOUT_SECS: u64 = 300;

/// The longest `STARTUP_TIMEOUT` accepted: an hour.
const MAX_STARTUP_TIMEOUT_SECS: u64 = 60 * 60;

/// The longest `LOGIN_FAILURE_WINDOW`: MongoDB's TTL index deletes a failed login this
/// long after it happened, so a longer window would silently count fewer failures there
/// than on SQL.
const MAX_FAILURE_WINDOW_SECS: u64 = FAILURE_RETENTION.as_secs();

/// Audit events are kept 90 days by default: as long as the default
/// `SESSION_ABSOLUTE_LIFETIME`, so the login of every session still alive is in its
/// owner's trail, while a client address (personal data) is not kept for ever.
const DEFAULT_AUDIT_RETENTION_DAYS: u64 = 90;

/// Keeping events longer than ten years is a typo, not a policy.
const MAX_AUDIT_RETENTION_DAYS: u64 = 3650;

const SECS_PER_DAY: u64 = 24 * 60 * 60;

/// More connections than this from one process is a typo, not a plan: it is ten times the
/// default limit of a whole PostgreSQL server, and each SQLite connection is a thread.
const MAX_DATABASE_CONNECTIONS: u32 = 1000;

/// The default `HEADER_READ_TIMEOUT`: 10 s, as the issue and common proxies choose (nginx's
/// `client_header_timeout` is 60 s; 10 s is ample for a client that means to talk).
const DEFAULT_HEADER_READ_TIMEOUT_SECS: u64 = 10;

/// The default `SHUTDOWN_TIMEOUT`: 30 s, Kubernetes' default grace period.
const DEFAULT_SHUTDOWN_TIMEOUT_SECS: u64 = 30;

/// The longest transport timeout accepted (`HEADER_READ_TIMEOUT`, `BODY_READ_TIMEOUT`,
/// `REQUEST_TIMEOUT`, `SHUTDOWN_TIMEOUT`): past ten minutes it is a typo.
const MAX_TRANSPORT_TIMEOUT_SECS: u64 = 600;

/// The default `MAX_CONNECTIONS`: 10,000 connections, each a descriptor and some tens of
/// KiB, hold a few hundred MiB at worst; start-up lowers it further when the descriptor
/// limit is smaller (see `transport`).
const DEFAULT_MAX_CONNECTIONS: u64 = 10_000;

/// The largest `MAX_CONNECTIONS` accepted: Linux's usual hard descriptor limit.
const MAX_CONNECTIONS: usize = 1 << 20;

/// The largest `HASH_QUEUE_LIMIT` accepted.
const MAX_HASH_QUEUE_LIMIT: usize = 1_000_000;

/// Where users and sessions are stored (`STORAGE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Storage {
    /// SQLite, PostgreSQL or MySQL/MariaDB at `DATABASE_URL`.
    Sql,
    /// MongoDB at `MONGODB_URL`.
    Mongodb,
}

impl Storage {
    /// The name used in configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sql => "sql",
            Self::Mongodb => "mongodb",
        }
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
        match s.to_ascii_lowercase().as_str() {
            "sql" => Ok(Self::Sql),
            "mongodb" => Ok(Self::Mongodb),
            _ => Err(format!("expected `sql` or `mongodb`, not `{s}`")),
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

/// The service's settings, validated. `Debug` hides the secret key and the passwords in
/// database URLs.
#[derive(Clone)]
pub struct Config {
    /// Signs the session cookie (`SECRET_KEY`, at least [`MIN_SECRET_KEY_BYTES`] bytes).
    pub secret_key: SecretString,
    /// True when `SECRET_KEY` was missing in debug and a random key was made up for this
    /// process: sessions will not survive a restart.
    pub secret_key_generated: bool,
    /// Older signing keys (`SECRET_KEY_FALLBACKS`), each at least [`MIN_SECRET_KEY_BYTES`]
    /// bytes: they verify cookies but never sign one, so that `SECRET_KEY` can be rotated
    /// without logging everyone out.
    pub secret_key_fallbacks: Vec<SecretString>,
    /// How long a session lives without use (`PERMANENT_SESSION_LIFETIME`, seconds).
    pub session_lifetime: Duration,
    /// How long a session lives from its login, however often it is used
    /// (`SESSION_ABSOLUTE_LIFETIME`, seconds); never shorter than `session_lifetime`.
    pub session_absolute_lifetime: Duration,
    /// The backend (`STORAGE`).
    pub storage: Storage,
    /// The SQL database (`DATABASE_URL`); may hold a password.
    pub database_url: String,
    /// The MongoDB deployment (`MONGODB_URL`); may hold a password.
    pub mongodb_url: String,
    /// The MongoDB database (`MONGODB_DB`).
    pub mongodb_db: String,
    /// The MongoDB collection of users (`MONGODB_USERS_COLLECTION`).
    pub mongodb_users_collection: String,
    /// The MongoDB collection of sessions (`MONGODB_SESSIONS_COLLECTION`).
    pub mongodb_sessions_collection: String,
    /// The most connections open to the database at once (`DATABASE_MAX_CONNECTIONS`): the
    /// SQL pool, or MongoDB's pool per server. By default the store crate's choice for the
    /// engine and this machine's cores.
    pub database_max_connections: NonZeroU32,
    /// How long one database operation may take (`DATABASE_TIMEOUT`, seconds): the wait for
    /// a connection, a statement, a SQLite lock, a MongoDB server. Past it, the request is
    /// answered 503.
    pub database_timeout: Duration,
    /// How long start-up keeps retrying a database it cannot reach (`STARTUP_TIMEOUT`,
    /// seconds; 0 tries once) before giving up.
    pub startup_timeout: Duration,
    /// The interface to listen on (`HOST`): an IP address or a host name.
    pub host: String,
    /// The TCP port to listen on (`PORT`); 0 picks a free one.
    pub port: u16,
    /// Development mode (`DEBUG`): tolerates a missing secret key, insecure cookies.
    pub debug: bool,
    /// Whether the session cookie is marked `Secure` (`SESSION_COOKIE_SECURE`).
    pub session_cookie_secure: bool,
    /// What a new password must satisfy (`PASSWORD_MIN_LENGTH`).
    pub password_policy: PasswordPolicy,
    /// Argon2id cost and concurrency (`ARGON2_*`, `MAX_CONCURRENT_HASHES`).
    pub hashing: HashingConfig,
    /// How often the purges run (`SESSION_PURGE_INTERVAL`, seconds): expired SQL sessions,
    /// and on every backend old failed logins and audit events.
    pub session_purge_interval: Duration,
    /// The tracing filter directive (`LOG`), e.g. `info` or `info,auth_http=debug`.
    pub log: String,
    /// How log lines are written (`LOG_FORMAT`: `text` or `json`).
    pub log_format: LogFormat,
    /// Where `GET /metrics` is served (`METRICS_ADDR`, an IP address and port), apart
    /// from the API; `None` (unset or empty, the default) serves no metrics.
    pub metrics_addr: Option<SocketAddr>,
    /// Proxies whose `X-Forwarded-For` names the client (`TRUSTED_PROXIES`).
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Origins allowed to call the API from a browser (`ALLOWED_ORIGINS`).
    pub allowed_origins: Vec<String>,
    /// Login and registration throttling (`LOGIN_FAILURES_PER_CLIENT`,
    /// `LOGIN_FAILURES_PER_ACCOUNT`, `LOGIN_FAILURES_PER_ADDRESS`, `LOGIN_FAILURE_WINDOW`,
    /// `REGISTRATIONS_PER_ADDRESS`).
    pub throttle: ThrottleLimits,
    /// How long audit events are kept (`AUDIT_RETENTION_DAYS`).
    pub audit_retention: Duration,
    /// MongoDB collection of failed logins (`MONGODB_FAILURES_COLLECTION`).
    pub mongodb_failures_collection: String,
    /// MongoDB collection of audit events (`MONGODB_EVENTS_COLLECTION`).
    pub mongodb_events_collection: String,
    /// How long a client may take to send a request's headers, and how long a kept-alive
    /// connection may sit idle before its next request (`HEADER_READ_TIMEOUT`, seconds).
    pub header_read_timeout: Duration,
    /// How long a request's body may take to arrive (`BODY_READ_TIMEOUT`, seconds).
    pub body_read_timeout: Duration,
    /// How long a request may take to be answered (`REQUEST_TIMEOUT`, seconds).
    pub request_timeout: Duration,
    /// The most client connections open at once (`MAX_CONNECTIONS`); capped at start-up
    /// below the descriptor limit.
    pub max_connections: usize,
    /// The most logins (and other password checks) waiting for the hasher; more are
    /// refused 503 (`HASH_QUEUE_LIMIT`). By default 32 per hashing slot.
    pub hash_queue_limit: usize,
    /// How long in-flight requests may take to finish once a shutdown is requested
    /// (`SHUTDOWN_TIMEOUT`, seconds).
    pub shutdown_timeout: Duration,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("secret_key", &"[redacted]")
            .field("secret_key_generated", &self.secret_key_generated)
            .field(
                "secret_key_fallbacks",
                &vec!["[redacted]"; self.secret_key_fallbacks.len()],
            )
            .field("session_lifetime", &self.session_lifetime)
            .field("session_absolute_lifetime", &self.session_absolute_lifetime)
            .field("storage", &self.storage)
            .field("database_url", &redact_url(&self.database_url))
            .field("mongodb_url", &redact_url(&self.mongodb_url))
            .field("mongodb_db", &self.mongodb_db)
            .field("mongodb_users_collection", &self.mongodb_users_collection)
            .field(
                "mongodb_sessions_collection",
                &self.mongodb_sessions_collection,
            )
            .field("database_max_connections", &self.database_max_connections)
            .field("database_timeout", &self.database_timeout)
            .field("startup_timeout", &self.startup_timeout)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("debug", &self.debug)
            .field("session_cookie_secure", &self.session_cookie_secure)
            .field("password_policy", &self.password_policy)
            .field("hashing", &self.hashing)
            .field("session_purge_interval", &self.session_purge_interval)
            .field("log", &self.log)
            .field("log_format", &self.log_format)
            .field("metrics_addr", &self.metrics_addr)
            .field("trusted_proxies", &self.trusted_proxies)
            .field("allowed_origins", &self.allowed_origins)
            .field("throttle", &self.throttle)
            .field("audit_retention", &self.audit_retention)
            .field(
                "mongodb_failures_collection",
                &self.mongodb_failures_collection,
            )
            .field("mongodb_events_collection", &self.mongodb_events_collection)
            .field("header_read_timeout", &self.header_read_timeout)
            .field("body_read_timeout", &self.body_read_timeout)
            .field("request_timeout", &self.request_timeout)
            .field("max_connections", &self.max_connections)
            .field("hash_queue_limit", &self.hash_queue_limit)
            .field("shutdown_timeout", &self.shutdown_timeout)
            .finish()
    }
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
    /// of [`KEYS`]; values may be typed or text (`("PORT", 0)` and `("PORT", "0")` alike).
    pub fn from_figment(figment: Figment) -> Result<Self, ConfigError> {
        let figment = Figment::from(Defaults).merge(figment);
        let s = Settings::new(&figment)?;

        let debug = s.bool("DEBUG")?;
        let (secret_key, secret_key_generated) = secret_key(&s, debug)?;
        let secret_key_fallbacks = secret_key_fallbacks(&s)?;
        let session_lifetime =
            s.number_in("PERMANENT_SESSION_LIFETIME", 1..=MAX_SESSION_LIFETIME_SECS)?;
        let session_absolute_lifetime = session_absolute_lifetime(&s, session_lifetime)?;
        let storage = s
            .string("STORAGE")?
            .parse()
            .map_err(|e| s.error("STORAGE", e))?;
        let database_url = database_url(&s)?;
        let mongodb_url = url(&s, "MONGODB_URL", &["mongodb", "mongodb+srv"])?;
        let mongodb_db = mongodb_db(&s)?;
        let [mongodb_users_collection, mongodb_sessions_collection, mongodb_failures_collection, mongodb_events_collection] =
            collections(&s)?;
        let database_max_connections = database_max_connections(&s, storage, &database_url)?;
        let host = s.string("HOST")?;
        if host.is_empty() || host.contains(char::is_whitespace) {
            return Err(s.error("HOST", format!("`{host}` is not a host name or IP address")));
        }
        let port = s.number("PORT")?;
        let session_cookie_secure = s.optional_bool("SESSION_COOKIE_SECURE")?.unwrap_or(!debug);

        Ok(Self {
            secret_key,
            secret_key_generated,
            secret_key_fallbacks,
            session_lifetime: Duration::from_secs(session_lifetime),
            session_absolute_lifetime: Duration::from_secs(session_absolute_lifetime),
            storage,
            database_url,
            mongodb_url,
            mongodb_db,
            mongodb_users_collection,
            mongodb_sessions_collection,
            database_max_connections,
            database_timeout: Duration::from_secs(
                s.number_in("DATABASE_TIMEOUT", 1..=MAX_DATABASE_TIMEOUT_SECS)?,
            ),
            startup_timeout: Duration::from_secs(
                s.number_in("STARTUP_TIMEOUT", 0..=MAX_STARTUP_TIMEOUT_SECS)?,
            ),
            host,
            port,
            debug,
            session_cookie_secure,
            password_policy: PasswordPolicy::with_min_chars(s.number_in(
                "PASSWORD_MIN_LENGTH",
                MIN_PASSWORD_CHARS..=MAX_PASSWORD_CHARS,
            )?)
            .map_err(|e| s.error("PASSWORD_MIN_LENGTH", e))?,
            hashing: hashing(&s)?,
            session_purge_interval: Duration::from_secs(
                s.number_in("SESSION_PURGE_INTERVAL", 1..=MAX_PURGE_INTERVAL_SECS)?,
            ),
            log: log_filter(&s)?,
            log_format: s
                .string("LOG_FORMAT")?
                .parse()
                .map_err(|e| s.error("LOG_FORMAT", e))?,
            metrics_addr: metrics_addr(&s)?,
            trusted_proxies: trusted_proxies(&s)?,
            allowed_origins: allowed_origins(&s)?,
            throttle: throttle(&s)?,
            audit_retention: Duration::from_secs(
                s.number_in("AUDIT_RETENTION_DAYS", 1..=MAX_AUDIT_RETENTION_DAYS)? * SECS_PER_DAY,
            ),
            mongodb_failures_collection,
            mongodb_events_collection,
            header_read_timeout: Duration::from_secs(
                s.number_in("HEADER_READ_TIMEOUT", 1..=MAX_TRANSPORT_TIMEOUT_SECS)?,
            ),
            body_read_timeout: Duration::from_secs(
                s.number_in("BODY_READ_TIMEOUT", 1..=MAX_TRANSPORT_TIMEOUT_SECS)?,
            ),
            request_timeout: Duration::from_secs(
                s.number_in("REQUEST_TIMEOUT", 1..=MAX_TRANSPORT_TIMEOUT_SECS)?,
            ),
            max_connections: s.number_in("MAX_CONNECTIONS", 1..=MAX_CONNECTIONS)?,
            hash_queue_limit: hash_queue_limit(&s)?,
            shutdown_timeout: Duration::from_secs(
                s.number_in("SHUTDOWN_TIMEOUT", 0..=MAX_TRANSPORT_TIMEOUT_SECS)?,
            ),
        })
    }

    /// Where the configured backend lives, with any password redacted: fit for logs.
    pub fn redacted_storage_url(&self) -> String {
        match self.storage {
            Storage::Sql => redact_url(&self.database_url),
            Storage::Mongodb => format!(
                "{} (database {})",
                redact_url(&self.mongodb_url),
                self.mongodb_db
            ),
        }
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

/// The bottom layer: every default that does not depend on another setting. Defaults that
/// belong to another crate (hashing cost, collection names) are taken from it, not restated.
struct Defaults;

impl Provider for Defaults {
    fn metadata(&self) -> Metadata {
        Metadata::named("built-in defaults")
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        let hashing = HashingConfig::default();
        let throttle = ThrottleLimits::default();
        let defaults: [(&str, Value); 28] = [
            ("PERMANENT_SESSION_LIFETIME", 2_678_400u64.into()),
            ("STORAGE", "sql".into()),
            ("DATABASE_URL", "sqlite://database.db?mode=rwc".into()),
            ("MONGODB_URL", "mongodb://127.0.0.1:27017".into()),
            ("MONGODB_DB", "auth".into()),
            ("MONGODB_USERS_COLLECTION", DEFAULT_USERS_COLLECTION.into()),
            (
                "MONGODB_SESSIONS_COLLECTION",
                DEFAULT_SESSIONS_COLLECTION.into(),
            ),
            (
                "MONGODB_FAILURES_COLLECTION",
                DEFAULT_FAILURES_COLLECTION.into(),
            ),
            (
                "MONGODB_EVENTS_COLLECTION",
                DEFAULT_EVENTS_COLLECTION.into(),
            ),
            ("HOST", "127.0.0.1".into()),
            ("PORT", 5000u16.into()),
            // Nobody's X-Forwarded-For is believed until a proxy is named: the service may
            // well be reached directly, and then the header is whatever the client wrote.
            ("TRUSTED_PROXIES", Vec::<String>::new().into()),
            // Same-origin only: a cross-origin caller with cookies is an explicit choice.
            ("ALLOWED_ORIGINS", Vec::<String>::new().into()),
            // A bare `cargo run` is development; a release build must opt in.
            ("DEBUG", cfg!(debug_assertions).into()),
            ("PASSWORD_MIN_LENGTH", MIN_PASSWORD_CHARS.into()),
            ("ARGON2_MEMORY_KIB", hashing.memory_kib.into()),
            ("ARGON2_ITERATIONS", hashing.iterations.into()),
            ("ARGON2_PARALLELISM", hashing.parallelism.into()),
            ("MAX_CONCURRENT_HASHES", hashing.max_concurrent.into()),
            ("SESSION_PURGE_INTERVAL", 300u64.into()),
            (
                "DATABASE_TIMEOUT",
                auth_domain::DEFAULT_STORAGE_TIMEOUT.as_secs().into(),
            ),
            ("STARTUP_TIMEOUT", 30u64.into()),
            (
                "LOGIN_FAILURES_PER_CLIENT",
                throttle.failures_per_client.into(),
            ),
            (
                "LOGIN_FAILURES_PER_ACCOUNT",
                throttle.failures_per_account.into(),
            ),
            (
                "LOGIN_FAILURES_PER_ADDRESS",
                throttle.failures_per_address.into(),
            ),
            (
                "LOGIN_FAILURE_WINDOW",
                throttle.failure_window.whole_seconds().into(),
            ),
            (
                "REGISTRATIONS_PER_ADDRESS",
                throttle.registrations_per_address.into(),
            ),
            ("AUDIT_RETENTION_DAYS", DEFAULT_AUDIT_RETENTION_DAYS.into()),
        ];
        let mut dict: Dict = defaults
            .into_iter()
            .map(|(key, value)| (key.to_owned(), value))
            .collect();
        dict.insert("LOG".to_owned(), "info".into());
        dict.insert(
            "LOG_FORMAT".to_owned(),
            LogFormat::default().to_string().into(),
        );
        // Slow clients and shutdown (HASH_QUEUE_LIMIT follows MAX_CONCURRENT_HASHES: see
        // `hash_queue_limit`).
        let timeouts = auth_http::RequestTimeouts::default();
        for (key, value) in [
            ("HEADER_READ_TIMEOUT", DEFAULT_HEADER_READ_TIMEOUT_SECS),
            ("BODY_READ_TIMEOUT", timeouts.body.as_secs()),
            ("REQUEST_TIMEOUT", timeouts.request.as_secs()),
            ("MAX_CONNECTIONS", DEFAULT_MAX_CONNECTIONS),
            ("SHUTDOWN_TIMEOUT", DEFAULT_SHUTDOWN_TIMEOUT_SECS),
        ] {
            dict.insert(key.to_owned(), value.into());
        }
        Ok(Profile::Default.collect(dict))
    }
}

fn secret_key(s: &Settings<'_>, debug: bool) -> Result<(SecretString, bool), ConfigError> {
    match s.secret("SECRET_KEY")? {
        Some(key) if key.expose_secret().len() >= MIN_SECRET_KEY_BYTES => Ok((key, false)),
        Some(key) => Err(s.error(
            "SECRET_KEY",
            format!(
                "too short ({} bytes): at least {MIN_SECRET_KEY_BYTES} are needed, e.g. `openssl rand -hex 64`",
                key.expose_secret().len()
            ),
        )),
        None if debug => {
            let key = Alphanumeric.sample_string(&mut rand::rng(), 96);
            Ok((SecretString::from(key), true))
        }
        None => Err(s.error(
            "SECRET_KEY",
            format!(
                "missing: set it to at least {MIN_SECRET_KEY_BYTES} random bytes, e.g. `openssl rand -hex 64` (only DEBUG may go without)"
            ),
        )),
    }
}

/// Each fallback must be as strong as `SECRET_KEY`: a weak one would let anyone who guessed
/// it forge cookies just the same. Entries are named by position, never shown.
fn secret_key_fallbacks(s: &Settings<'_>) -> Result<Vec<SecretString>, ConfigError> {
    const KEY: &str = "SECRET_KEY_FALLBACKS";
    let keys = s.secret_list(KEY)?;
    if let Some((index, key)) = keys
        .iter()
        .enumerate()
        .find(|(_, key)| key.expose_secret().len() < MIN_SECRET_KEY_BYTES)
    {
        return Err(s.error(
            KEY,
            format!(
                "key {} of {} is too short ({} bytes): each needs at least {MIN_SECRET_KEY_BYTES}",
                index + 1,
                keys.len(),
                key.expose_secret().len()
            ),
        ));
    }
    Ok(keys)
}

/// The cap on a session's whole life. Its default depends on the idle lifetime (it is never
/// below it), hence computed here rather than in [`Defaults`]: a deployment that already
/// raised `PERMANENT_SESSION_LIFETIME` past 90 days keeps starting.
fn session_absolute_lifetime(s: &Settings<'_>, idle_secs: u64) -> Result<u64, ConfigError> {
    const KEY: &str = "SESSION_ABSOLUTE_LIFETIME";
    if !s.is_set(KEY) {
        return Ok(DEFAULT_SESSION_ABSOLUTE_LIFETIME_SECS.max(idle_secs));
    }
    let secs: u64 = s.number(KEY)?;
    if (idle_secs..=MAX_SESSION_LIFETIME_SECS).contains(&secs) {
        Ok(secs)
    } else {
        Err(s.error(
            KEY,
            format!(
                "must be between PERMANENT_SESSION_LIFETIME ({idle_secs}) and {MAX_SESSION_LIFETIME_SECS}, not {secs}"
            ),
        ))
    }
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

/// sea-orm panics on a URL it cannot parse: refuse it here, with the reason.
fn database_url(s: &Settings<'_>) -> Result<String, ConfigError> {
    let database_url = url(
        s,
        "DATABASE_URL",
        &["sqlite", "postgres", "postgresql", "mysql"],
    )?;
    url::Url::parse(&database_url)
        .map_err(|e| s.error("DATABASE_URL", format!("not a valid URL: {e}")))?;
    Ok(database_url)
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

/// The pool size given, or the default its store crate picks for the configured engine,
/// which depends on `STORAGE`, `DATABASE_URL` and the machine, hence not in [`Defaults`].
fn database_max_connections(
    s: &Settings<'_>,
    storage: Storage,
    database_url: &str,
) -> Result<NonZeroU32, ConfigError> {
    const KEY: &str = "DATABASE_MAX_CONNECTIONS";
    if !s.is_set(KEY) {
        return Ok(match storage {
            Storage::Sql => auth_store_sql::default_max_connections(database_url),
            Storage::Mongodb => MongoConfig::default_max_pool_size(),
        });
    }
    let max = s.number_in(KEY, 1..=MAX_DATABASE_CONNECTIONS)?;
    NonZeroU32::try_from(max).map_err(|e| s.error(KEY, e))
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

/// Each entry an address (that one host) or a network in CIDR notation. A network written
/// with host bits set (`10.1.2.3/8`) means its whole network, as `ip route` reads it.
fn trusted_proxies(s: &Settings<'_>) -> Result<Vec<IpNet>, ConfigError> {
    const KEY: &str = "TRUSTED_PROXIES";
    s.list(KEY)?
        .iter()
        .map(|entry| {
            entry
                .parse::<IpNet>()
                .map(|net| net.trunc())
                // The client address is compared in canonical form (an IPv4-mapped IPv6
                // peer is its IPv4 address), so a host is stored that way too.
                .or_else(|_| {
                    entry
                        .parse::<IpAddr>()
                        .map(|ip| IpNet::from(ip.to_canonical()))
                })
                .map_err(|_| {
                    let example = "e.g. 10.0.0.1, 10.0.0.0/8, fd00::/8";
                    s.error(
                        KEY,
                        format!("`{entry}` is not an IP address or a CIDR network ({example})"),
                    )
                })
        })
        .collect()
}

fn allowed_origins(s: &Settings<'_>) -> Result<Vec<String>, ConfigError> {
    const KEY: &str = "ALLOWED_ORIGINS";
    s.list(KEY)?
        .iter()
        .map(|entry| origin(entry).map_err(|why| s.error(KEY, format!("`{entry}` {why}"))))
        .collect()
}

/// The origin `entry` names, serialised as a browser sends it in `Origin` (lower-case
/// scheme and host, punycode, no default port, no trailing slash): the router compares that
/// header byte for byte, so any other spelling would never match.
fn origin(entry: &str) -> Result<String, &'static str> {
    const SHAPE: &str = "is not an origin: expected scheme://host[:port] with http or https";
    if entry.contains('*') {
        return Err("is refused: CORS with credentials cannot use a wildcard; list each origin");
    }
    // `url` would also read `https:host` or `https:/host` as `https://host/`.
    if !entry.contains("://") {
        return Err(SHAPE);
    }
    let url = url::Url::parse(entry).map_err(|_| SHAPE)?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(SHAPE);
    }
    if url.path() != "/"
        || url.query().is_some()
        || url.fragment().is_some()
        || !url.username().is_empty()
        || url.password().is_some()
    {
        return Err(
            "is not an origin: expected scheme://host[:port] alone, without a path, query or user",
        );
    }
    Ok(url.origin().ascii_serialization())
}

/// `LOGIN_*` and `REGISTRATIONS_PER_ADDRESS`; a limit of 0 disables it, so no upper bound.
fn throttle(s: &Settings<'_>) -> Result<ThrottleLimits, ConfigError> {
    const WINDOW: &str = "LOGIN_FAILURE_WINDOW";
    let window: u64 = s.number(WINDOW)?;
    if !(1..=MAX_FAILURE_WINDOW_SECS).contains(&window) {
        return Err(s.error(
            WINDOW,
            format!(
                "must be between 1 and {MAX_FAILURE_WINDOW_SECS} seconds, not {window}: MongoDB deletes a failed login {MAX_FAILURE_WINDOW_SECS} seconds after it happened (a TTL index)"
            ),
        ));
    }
    Ok(ThrottleLimits {
        failures_per_client: s.number("LOGIN_FAILURES_PER_CLIENT")?,
        failures_per_account: s.number("LOGIN_FAILURES_PER_ACCOUNT")?,
        failures_per_address: s.number("LOGIN_FAILURES_PER_ADDRESS")?,
        failure_window: time::Duration::try_from(Duration::from_secs(window))
            .map_err(|e| s.error(WINDOW, e))?,
        registrations_per_address: s.number("REGISTRATIONS_PER_ADDRESS")?,
    })
}

/// The limits argon2 itself enforces, checked here to name the key at fault.
fn hashing(s: &Settings<'_>) -> Result<HashingConfig, ConfigError> {
    let parallelism = s.number_in("ARGON2_PARALLELISM", 1..=0x00FF_FFFF)?;
    let iterations = s.number_in("ARGON2_ITERATIONS", 1..=u32::MAX)?;
    let memory_kib = s.number_in("ARGON2_MEMORY_KIB", 8 * parallelism..=u32::MAX)?;
    let max_concurrent = s.number_in("MAX_CONCURRENT_HASHES", 1..=usize::MAX)?;
    Ok(HashingConfig {
        memory_kib,
        iterations,
        parallelism,
        max_concurrent,
    })
}

/// `HASH_QUEUE_LIMIT`: as set, else [`auth_domain::DEFAULT_QUEUE_PER_SLOT`] per hashing
/// slot (`MAX_CONCURRENT_HASHES`, itself the number of CPUs by default).
fn hash_queue_limit(s: &Settings<'_>) -> Result<usize, ConfigError> {
    if s.is_set("HASH_QUEUE_LIMIT") {
        return s.number_in("HASH_QUEUE_LIMIT", 0..=MAX_HASH_QUEUE_LIMIT);
    }
    let slots: usize = s.number_in("MAX_CONCURRENT_HASHES", 1..=usize::MAX)?;
    Ok(slots.saturating_mul(auth_domain::DEFAULT_QUEUE_PER_SLOT))
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
