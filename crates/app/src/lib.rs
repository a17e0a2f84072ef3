//! The composition root of the authentication service: it reads the [`Config`], builds
//! the password hasher and the [`AuthService`], opens the configured backend (creating the
//! schema or indexes it needs) and serves the `auth_http` router until told to stop,
//! with the outbox's worker ([`mail`]) sending the mail the use cases queue.
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
pub mod mail;
mod metrics_server;
mod purge;
mod report;
mod retry;
mod server;
mod stores;
mod telemetry;
mod transport;

use std::future::Future;

use anyhow::Context as _;
use auth_domain::{
    account_mail::MailSettings, accounts::Accounts, breached::BreachedPasswords, clock::Clock,
    mail::Templates, HashingConfig, PasswordHasher, PasswordPolicy, Stores as _,
};
use auth_http::HttpConfig;
use tokio::{net::TcpListener, task::JoinHandle};

use bounded::BoundedStores;
pub use config::{Config, ConfigError, Storage};
pub use report::one_line;
pub use server::serve_until_signalled;
use stores::OnStores;
pub use telemetry::{init_tracing, LogFormat};

/// Creates the schema (SQL) or the indexes (MongoDB) of the configured backend.
/// Idempotent: what exists is left as it is. `run` does the same at start-up; this is
/// `app install`, to prepare a database ahead of time.
pub async fn install(config: &Config) -> anyhow::Result<()> {
    /// Opening is the whole work.
    struct Install;

    impl OnStores for Install {
        type Output = ();

        async fn run<B: auth_http::Stores>(self, _: BoundedStores<B>) -> anyhow::Result<()> {
            Ok(())
        }
    }

    stores::with_stores(config, &Clock::system(), Install).await
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
    run_with_clock(config, Clock::system(), listener, shutdown).await
}

/// [`run`], telling the time by `clock`: a test moves it forward instead of waiting for a
/// session or a throttle window to expire.
pub async fn run_with_clock(
    config: Config,
    clock: Clock,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    // First: a filter that cannot be loaded is the one line start-up ends with.
    let policy = password_policy(&config).await?;
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
    // Served (and so stopped) as long as the API is.
    let _metrics = match config.metrics_addr {
        Some(addr) => {
            let limits = transport::Limits {
                header_read_timeout: config.header_read_timeout,
                max_connections: config.max_connections,
                shutdown_timeout: config.shutdown_timeout,
                write_timeout: config.write_timeout,
            };
            Some(metrics_server::start(addr, limits).await?)
        }
        None => None,
    };

    let serve = Serve {
        hasher,
        policy,
        http,
        config: &config,
        clock: clock.clone(),
        listener,
        shutdown,
    };
    stores::with_stores(&config, &clock, serve).await
}

/// Serving the API: the one code path every backend shares once its stores are open.
struct Serve<'a, S> {
    hasher: PasswordHasher,
    policy: PasswordPolicy,
    http: HttpConfig,
    config: &'a Config,
    clock: Clock,
    listener: TcpListener,
    shutdown: S,
}

impl<S: Future<Output = ()> + Send + 'static> OnStores for Serve<'_, S> {
    type Output = ();

    async fn run<B: auth_http::Stores>(self, stores: BoundedStores<B>) -> anyhow::Result<()> {
        let Self {
            hasher,
            policy,
            http,
            config,
            clock,
            listener,
            shutdown,
        } = self;
        // Dropped (and so stopped) when serving ends, however it ends. Unbounded: a purge
        // runs as many batches as it takes.
        let _purge = AbortOnDrop(tokio::spawn(purge::old_entries_periodically(
            stores.inner().clone(),
            clock.clone(),
            purge::Retention {
                failures: config.throttle.longest_window(),
                events: config.audit_retention,
            },
            config.session_purge_interval,
        )));
        let keys = auth_http::digest_keys(&http);
        // Every client behind a trusted proxy shares its address: the proxy is exempt.
        let per_address = transport::PerAddress::new(
            config.max_connections_per_address,
            config.throttle.ipv6_prefix,
            http.trusted_proxies.clone(),
        );
        let mail = mail_settings(config);
        // Stopped below once serving ends; aborted if serving fails first.
        let worker = mail_worker(config, &stores, &clock, &mail)?;
        warn_without_passkeys(config);
        let accounts = Accounts::new(stores, hasher, policy, config.throttle, keys, clock, mail)
            .with_mfa(mfa_settings(config));
        let router = auth_http::router(accounts, http);
        let limits = transport::Limits {
            header_read_timeout: config.header_read_timeout,
            max_connections: transport::connection_cap(
                config.max_connections,
                transport::raise_descriptor_limit(),
                config.database_max_connections.get(),
            ),
            shutdown_timeout: config.shutdown_timeout,
            write_timeout: config.write_timeout,
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
        transport::serve(listener, router, limits, per_address, shutdown).await;
        worker.stop(MAIL_WORKER_GRACE).await;
        tracing::info!("stopped");
        Ok(())
    }
}

/// How long a stopping server lets the mail worker finish the send in flight; a mail cut
/// short stays leased and is sent again when its lease ends.
const MAIL_WORKER_GRACE: std::time::Duration = std::time::Duration::from_secs(2);

/// What the mail use cases are configured with, and the handle that wakes the worker.
pub(crate) fn mail_settings(config: &Config) -> MailSettings {
    MailSettings {
        templates: Templates::new(&config.public_url),
        token_key: auth_http::token_key(&config.http),
        reset_lifetime: config.password_reset_lifetime,
        verification: config.email_verification,
        enqueued: std::sync::Arc::default(),
        seal: auth_http::mail_seal(&config.http),
    }
}

/// What the second factor's use cases are configured with: TOTP secrets sealed under a key
/// derived from `SECRET_KEY`, `TOTP_SKEW`, and `PUBLIC_URL`'s host as the issuer an
/// authenticator app shows.
pub(crate) fn mfa_settings(config: &Config) -> auth_domain::mfa::MfaSettings {
    let url = url::Url::parse(&config.public_url).ok();
    let issuer = url
        .as_ref()
        .and_then(|url| url.host_str().map(str::to_owned))
        .unwrap_or_else(|| "auth-service".to_owned());
    let relying_party = url
        .as_ref()
        .map(auth_domain::passkeys::RelyingParty::from_public_url);
    auth_domain::mfa::MfaSettings {
        seal: auth_http::totp_seal(&config.http),
        skew: config.totp_skew,
        relying_party: relying_party.and_then(Result::ok),
        ..auth_domain::mfa::MfaSettings::new(&issuer)
    }
}

/// Says once, at start-up, that passkeys are off and why (`PUBLIC_URL` on an IP address):
/// everything else works, and the passkey routes answer 503 `passkeys_unavailable`.
fn warn_without_passkeys(config: &Config) {
    let Ok(url) = url::Url::parse(&config.public_url) else {
        return;
    };
    if let Err(unavailable) = auth_domain::passkeys::RelyingParty::from_public_url(&url) {
        tracing::warn!(
            public_url = %config.public_url,
            "passkeys are off: {}",
            unavailable.reason()
        );
    }
}

/// Starts the outbox's worker on `stores`, woken by `mail`'s `enqueued` after every commit
/// that wrote a mail, and says where mail goes.
fn mail_worker<B: auth_http::Stores>(
    config: &Config,
    stores: &BoundedStores<B>,
    clock: &Clock,
    mail: &MailSettings,
) -> anyhow::Result<mail::RunningWorker> {
    let transport = mail::Transport::from_config(&config.mail)?;
    if transport.is_files() {
        tracing::warn!(
            "SMTP_URL is not set: mail is not sent but written as .eml files to {}",
            config.mail.dir.display()
        );
    } else {
        tracing::info!(from = %config.mail.from, "mail goes through {transport}");
    }
    Ok(mail::OutboxWorker::new(
        stores.outbox().clone(),
        transport,
        config.mail.from.clone(),
        clock.clone(),
        mail.enqueued.clone(),
    )
    .with_seal(mail.seal.clone())
    .spawn())
}

/// The password policy configured, with the breached-password filter of
/// `BREACHED_PASSWORDS` loaded when the key is set: a filter that cannot be loaded stops
/// start-up, rather than letting every breached password through.
pub(crate) async fn password_policy(config: &Config) -> anyhow::Result<PasswordPolicy> {
    let policy = config.password_policy.clone();
    let Some(path) = config.breached_passwords.clone() else {
        return Ok(policy);
    };
    let what = format!(
        "cannot load the breached-password filter {} (BREACHED_PASSWORDS)",
        path.display()
    );
    // Gigabytes for the whole corpus: read off the runtime's threads.
    let filter = tokio::task::spawn_blocking(move || BreachedPasswords::open(&path))
        .await
        .context(what.clone())?
        .context(what)?;
    tracing::info!(
        count = filter.count(),
        source = filter.source(),
        bytes = filter.size_bytes(),
        "breached-password filter loaded"
    );
    Ok(policy.with_breached(filter))
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
