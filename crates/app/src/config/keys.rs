//! The one list of settings the service reads: each library crate's table, kept beside the
//! type it fills, and the app's own. The built-in defaults, the keys the sources accept and
//! the checks on `.env.example` and the README all come from here.

use auth_domain::{
    account_mail::DEFAULT_RESET_LIFETIME,
    settings::{DefaultValue, Setting},
    throttle::ThrottleLimits,
    HashingConfig, PasswordPolicy, DEFAULT_STORAGE_TIMEOUT,
};
use auth_http::HttpConfig;
use auth_store_mongo::MongoConfig;

/// The default `STARTUP_TIMEOUT`, seconds.
const DEFAULT_STARTUP_TIMEOUT_SECS: u64 = 30;

/// The default `SESSION_PURGE_INTERVAL`: five minutes.
const DEFAULT_PURGE_INTERVAL_SECS: u64 = 300;

/// Audit events are kept 90 days by default: as long as the default
/// `SESSION_ABSOLUTE_LIFETIME`, so the login of every session still alive is in its
/// owner's trail, while a client address (personal data) is not kept for ever.
const DEFAULT_AUDIT_RETENTION_DAYS: u64 = 90;

/// The default `HEADER_READ_TIMEOUT`: 10 s, as the issue and common proxies choose (nginx's
/// `client_header_timeout` is 60 s; 10 s is ample for a client that means to talk).
const DEFAULT_HEADER_READ_TIMEOUT_SECS: u64 = 10;

/// The default `MAX_CONNECTIONS`: 10,000 connections, each a descriptor and some tens of
/// KiB, hold a few hundred MiB at worst; start-up lowers it further when the descriptor
/// limit is smaller (see `transport`).
const DEFAULT_MAX_CONNECTIONS: u64 = 10_000;

/// The default `SHUTDOWN_TIMEOUT`: 30 s, Kubernetes' default grace period.
const DEFAULT_SHUTDOWN_TIMEOUT_SECS: u64 = 30;

/// The default `MAX_CONNECTIONS_PER_ADDRESS`: a browser opens six connections to a host,
/// an office behind one NAT a few hundred; 256 leaves the other 9,744 of the default
/// `MAX_CONNECTIONS` to everyone else.
const DEFAULT_MAX_CONNECTIONS_PER_ADDRESS: u64 = 256;

/// The default `WRITE_TIMEOUT`: 30 s for the client to read some of its answer, as nginx's
/// `send_timeout` (60 s) halved: the largest answer (`/openapi.json`) is tens of KiB.
const DEFAULT_WRITE_TIMEOUT_SECS: u64 = 30;

/// The default `LISTEN_BACKLOG`: 1024 connections waiting to be accepted.
const DEFAULT_LISTEN_BACKLOG: u64 = 1024;

/// Which backend, and what its connections share whichever it is.
const STORAGE: &[Setting] = &[
    Setting::new(
        "STORAGE",
        DefaultValue::Text("sql"),
        "where users and sessions live: `sql` or `mongodb`",
    ),
    Setting::new(
        "DATABASE_MAX_CONNECTIONS",
        DefaultValue::Computed(
            "SQLite file: `max(4, CPUs)`; PostgreSQL, MySQL, MongoDB: `max(10, 2 × CPUs)`; in-memory SQLite: always 1",
        ),
        "connections open to the database at once, 1 to 1000",
    ),
    Setting::new(
        "DATABASE_TIMEOUT",
        DefaultValue::Number(DEFAULT_STORAGE_TIMEOUT.as_secs()),
        "seconds one database operation may take, 1 to 300; then 503",
    ),
    Setting::new(
        "STARTUP_TIMEOUT",
        DefaultValue::Number(DEFAULT_STARTUP_TIMEOUT_SECS),
        "seconds start-up keeps retrying an unreachable database (0: once)",
    ),
];

/// The process: where it listens, how it logs, where its metrics are.
const SERVER: &[Setting] = &[
    Setting::new(
        "HOST",
        DefaultValue::Text("127.0.0.1"),
        "the interface to listen on",
    ),
    Setting::new(
        "PORT",
        DefaultValue::Number(5000),
        "the TCP port to listen on; 0 picks a free one",
    ),
    Setting::new(
        "DEBUG",
        DefaultValue::Computed("`true` in debug builds, `false` in release"),
        "development mode: tolerates a missing SECRET_KEY, insecure cookies",
    ),
    Setting::new(
        "LOG",
        DefaultValue::Text("info"),
        "the tracing filter directive",
    ),
    Setting::new(
        "LOG_FORMAT",
        DefaultValue::Text("text"),
        "how log lines are written: `text` or `json`",
    ),
    Setting::new(
        "METRICS_ADDR",
        DefaultValue::Unset,
        "the IP address and port of the Prometheus listener; unset: no metrics",
    ),
];

/// What runs in the background to keep the stores small.
const PURGES: &[Setting] = &[
    Setting::new(
        "SESSION_PURGE_INTERVAL",
        DefaultValue::Number(DEFAULT_PURGE_INTERVAL_SECS),
        "seconds between two purges of expired sessions, old failures and events (every backend)",
    ),
    Setting::new(
        "AUDIT_RETENTION_DAYS",
        DefaultValue::Number(DEFAULT_AUDIT_RETENTION_DAYS),
        "days audit events are kept, 1 to 3650",
    ),
];

/// Outbound mail, and the links in it.
const MAIL: &[Setting] = &[
    Setting::new(
        "SMTP_URL",
        DefaultValue::Unset,
        "the SMTP server mail is sent through: `smtp://host[:port]` (plain), `smtp://[user:password@]host[:port]?tls=required` (STARTTLS) or `smtps://[user:password@]host[:port]` (TLS); unset: mail is written to MAIL_DIR",
    ),
    Setting::new(
        "MAIL_FROM",
        DefaultValue::Text("no-reply@localhost"),
        "the sender of every mail: an address, or `Name <address>`",
    ),
    Setting::new(
        "MAIL_DIR",
        DefaultValue::Text("mail/"),
        "where each mail is written as an `.eml` file when SMTP_URL is unset (created if missing)",
    ),
    Setting::new(
        "PUBLIC_URL",
        DefaultValue::Text("http://localhost:5000"),
        "the service's public base URL, absolute http(s): every mailed link starts with it, never with a request's Host; its host is the passkeys' relying party (an IP address turns passkeys off)",
    ),
    Setting::new(
        "PASSWORD_RESET_LIFETIME",
        DefaultValue::Number(DEFAULT_RESET_LIFETIME.whole_seconds().unsigned_abs()),
        "seconds a password-reset link lives, 60 to 86400",
    ),
    Setting::new(
        "EMAIL_VERIFICATION",
        DefaultValue::Text("optional"),
        "`off` (no link at registration), `optional` (a link; unverified accounts work) or `required` (an unverified account can only verify, resend or log out)",
    ),
];

/// The second factor.
const SECOND_FACTOR: &[Setting] = &[Setting::new(
    "TOTP_SKEW",
    DefaultValue::Number(auth_domain::mfa::totp::DEFAULT_SKEW as u64),
    "30-second steps a TOTP code may be off either side of the server's clock, 0 to 2",
)];

/// The connections of clients: slow ones, too many, and shutting down.
const TRANSPORT: &[Setting] = &[
    Setting::new(
        "HEADER_READ_TIMEOUT",
        DefaultValue::Number(DEFAULT_HEADER_READ_TIMEOUT_SECS),
        "seconds a client has to send a request's headers; also the keep-alive timeout",
    ),
    Setting::new(
        "MAX_CONNECTIONS",
        DefaultValue::Number(DEFAULT_MAX_CONNECTIONS),
        "client connections open at once",
    ),
    Setting::new(
        "MAX_CONNECTIONS_PER_ADDRESS",
        DefaultValue::Number(DEFAULT_MAX_CONNECTIONS_PER_ADDRESS),
        "client connections open at once from one address (an IPv6 client by its IPV6_THROTTLE_PREFIX network; TRUSTED_PROXIES exempt); more are closed at once; 0 disables",
    ),
    Setting::new(
        "WRITE_TIMEOUT",
        DefaultValue::Number(DEFAULT_WRITE_TIMEOUT_SECS),
        "seconds a write of an answer may wait for the client to read before the connection is closed",
    ),
    Setting::new(
        "LISTEN_BACKLOG",
        DefaultValue::Number(DEFAULT_LISTEN_BACKLOG),
        "connections the kernel queues before they are accepted (capped by net.core.somaxconn)",
    ),
    Setting::new(
        "SHUTDOWN_TIMEOUT",
        DefaultValue::Number(DEFAULT_SHUTDOWN_TIMEOUT_SECS),
        "seconds requests in flight may take after SIGTERM or SIGINT",
    ),
];

/// Every section, roughly in the order of `.env.example`.
const SECTIONS: &[&[Setting]] = &[
    HttpConfig::SETTINGS,
    PURGES,
    STORAGE,
    auth_store_sql::SETTINGS,
    MongoConfig::SETTINGS,
    SERVER,
    MAIL,
    SECOND_FACTOR,
    PasswordPolicy::SETTINGS,
    HashingConfig::SETTINGS,
    ThrottleLimits::SETTINGS,
    TRANSPORT,
];

/// Every setting the service reads, each once.
pub fn settings() -> impl Iterator<Item = &'static Setting> + Clone {
    SECTIONS.iter().flat_map(|section| section.iter())
}

/// Whether `key` is one of the service's settings.
pub fn is_key(key: &str) -> bool {
    settings().any(|setting| setting.key == key)
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn every_key_is_listed_once() {
        let mut seen = HashSet::new();
        for setting in settings() {
            assert!(seen.insert(setting.key), "{} twice", setting.key);
        }
    }

    #[test]
    fn keys_are_upper_case_and_each_has_a_doc_line() {
        for Setting { key, doc, .. } in settings() {
            assert!(
                key.chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'),
                "{key}"
            );
            assert!(!doc.is_empty() && !doc.contains('\n'), "{key}: {doc:?}");
        }
    }

    #[test]
    fn the_log_format_default_is_the_log_formats_own() {
        let format = settings().find(|s| s.key == "LOG_FORMAT").expect("listed");
        assert_eq!(
            format.default.literal(),
            Some(crate::LogFormat::default().to_string())
        );
    }
}
