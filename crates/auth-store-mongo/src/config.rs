use std::{fmt, num::NonZeroU32, time::Duration};

use auth_domain::{
    clock::Clock,
    redact_url,
    settings::{DefaultValue, Setting},
    work::{CommitError, Work},
    Stores, DEFAULT_STORAGE_TIMEOUT,
};
use bson::doc;
use mongodb::{
    options::{Acknowledgment, ClientOptions, WriteConcern},
    Client, Database,
};

use crate::{
    ensure_factor_indexes, ensure_indexes, ensure_mail_indexes, ensure_throttle_and_audit_indexes,
    EnsureIndexesError, MongoAdministration, MongoAuditLog, MongoChallengeStore, MongoFactorStore,
    MongoFailureCounter, MongoOutbox, MongoSessionStore, MongoTokenStore, MongoUserRepository,
};

/// The deployment used unless configured otherwise: a server on this machine.
pub const DEFAULT_URL: &str = "mongodb://127.0.0.1:27017";

/// The database used unless configured otherwise.
pub const DEFAULT_DATABASE: &str = "auth";

/// Collection of users unless configured otherwise.
pub const DEFAULT_USERS_COLLECTION: &str = "users";

/// Collection of sessions unless configured otherwise (`MONGODB_SESSIONS_COLLECTION`).
pub const DEFAULT_SESSIONS_COLLECTION: &str = "sessions";

/// Collection of failed login attempts unless configured otherwise.
pub const DEFAULT_FAILURES_COLLECTION: &str = "login_failures";

/// Collection of audit events unless configured otherwise.
pub const DEFAULT_EVENTS_COLLECTION: &str = "auth_events";

/// Collection of one-time tokens (not configurable: a fresh feature has no deployment
/// whose names it must fit).
pub const DEFAULT_TOKENS_COLLECTION: &str = "one_time_tokens";

/// Collection of mail waiting to be sent (not configurable either).
pub const DEFAULT_OUTBOX_COLLECTION: &str = "outbox";

/// Collection of TOTP credentials, one per user (not configurable either).
pub const DEFAULT_TOTP_COLLECTION: &str = "totp_credentials";

/// Collection of recovery code digests, one document per code (not configurable either).
pub const DEFAULT_RECOVERY_CODES_COLLECTION: &str = "recovery_codes";

/// Collection of passkeys (not configurable either).
pub const DEFAULT_PASSKEYS_COLLECTION: &str = "passkeys";

/// Collection of WebAuthn ceremonies waiting for their answer (not configurable either).
pub const DEFAULT_CHALLENGES_COLLECTION: &str = "webauthn_challenges";

/// The name the service gives itself in the server's logs and `currentOp`.
pub const APP_NAME: &str = "auth-service";

/// Where the MongoDB data lives.
#[derive(Clone, PartialEq, Eq)]
pub struct MongoConfig {
    /// A `mongodb://` or `mongodb+srv://` connection string; may hold credentials.
    pub url: String,
    /// Database holding every collection.
    pub database: String,
    /// Collection of users.
    pub users_collection: String,
    /// Collection of sessions.
    pub sessions_collection: String,
    /// Collection of failed attempts, counted for throttling.
    pub failures_collection: String,
    /// Collection of the audit trail's events.
    pub events_collection: String,
    /// Connections per server at most (the driver's `max_pool_size`), unless the URL sets
    /// `maxPoolSize`.
    pub max_pool_size: NonZeroU32,
    /// How long an operation waits for a reachable server, and a connection for its TCP
    /// handshake, unless the URL sets `serverSelectionTimeoutMS` or `connectTimeoutMS`.
    /// The driver has no socket timeout: callers bound each operation as well.
    pub timeout: Duration,
}

impl MongoConfig {
    /// The settings of the MongoDB stores. The pool size and the timeout are shared with
    /// the SQL stores and listed by the app, which picks the backend.
    pub const SETTINGS: &'static [Setting] = &[
        Setting::new(
            "MONGODB_URL",
            DefaultValue::Text(DEFAULT_URL),
            "the MongoDB deployment: mongodb:// or mongodb+srv://",
        ),
        Setting::new(
            "MONGODB_DB",
            DefaultValue::Text(DEFAULT_DATABASE),
            "the database holding every collection",
        ),
        Setting::new(
            "MONGODB_USERS_COLLECTION",
            DefaultValue::Text(DEFAULT_USERS_COLLECTION),
            "the collection of users",
        ),
        Setting::new(
            "MONGODB_SESSIONS_COLLECTION",
            DefaultValue::Text(DEFAULT_SESSIONS_COLLECTION),
            "the collection of sessions",
        ),
        Setting::new(
            "MONGODB_FAILURES_COLLECTION",
            DefaultValue::Text(DEFAULT_FAILURES_COLLECTION),
            "the collection of failed logins, counted for throttling",
        ),
        Setting::new(
            "MONGODB_EVENTS_COLLECTION",
            DefaultValue::Text(DEFAULT_EVENTS_COLLECTION),
            "the collection of audit events; the four collections must differ",
        ),
    ];

    /// A configuration with the default collection names.
    pub fn new(url: impl Into<String>, database: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            database: database.into(),
            users_collection: DEFAULT_USERS_COLLECTION.to_owned(),
            sessions_collection: DEFAULT_SESSIONS_COLLECTION.to_owned(),
            failures_collection: DEFAULT_FAILURES_COLLECTION.to_owned(),
            events_collection: DEFAULT_EVENTS_COLLECTION.to_owned(),
            max_pool_size: Self::default_max_pool_size(),
            timeout: DEFAULT_STORAGE_TIMEOUT,
        }
    }

    /// `max(10, 2 × cores)`, cores being [`std::thread::available_parallelism`] (1 when
    /// unknown). A connection runs one operation at a time and spends it waiting on the
    /// server, so twice our cores keep every worker thread busy where the driver's own
    /// default of 10 would queue requests on a large machine; every instance's pool counts
    /// against the server's connection limit and each connection costs it about 1 MiB.
    pub fn default_max_pool_size() -> NonZeroU32 {
        const MIN: NonZeroU32 = NonZeroU32::new(10).unwrap();
        const PER_CORE: NonZeroU32 = NonZeroU32::new(2).unwrap();
        let cores = std::thread::available_parallelism().map_or(NonZeroU32::MIN, |n| {
            NonZeroU32::try_from(n).unwrap_or(NonZeroU32::MAX)
        });
        cores.saturating_mul(PER_CORE).max(MIN)
    }
}

impl fmt::Debug for MongoConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MongoConfig")
            .field("url", &redact_url(&self.url))
            .field("database", &self.database)
            .field("users_collection", &self.users_collection)
            .field("sessions_collection", &self.sessions_collection)
            .field("failures_collection", &self.failures_collection)
            .field("events_collection", &self.events_collection)
            .field("max_pool_size", &self.max_pool_size)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// Opens a client on `url` and returns `database` once a server has answered a `ping`.
///
/// The application name, a server selection and connect timeout of
/// [`auth_domain::DEFAULT_STORAGE_TIMEOUT`] and a pool of
/// [`MongoConfig::default_max_pool_size`] connections per server are set unless the URL sets
/// them (`appName`, `serverSelectionTimeoutMS`, `connectTimeoutMS`, `maxPoolSize`), and
/// the write concern of [`durable_write_concern`] unless the URL sets `w` or `journal`.
///
/// # Errors
///
/// The URL is malformed, or no server answered in time.
pub async fn connect(url: &str, database: &str) -> Result<Database, mongodb::error::Error> {
    connect_with(
        url,
        database,
        MongoConfig::default_max_pool_size(),
        DEFAULT_STORAGE_TIMEOUT,
    )
    .await
}

/// The write concern of every write unless the URL sets one: acknowledged by the primary
/// once it is in the on-disk journal (`w: 1, j: true`), so that a write we answered for
/// survives the server's crash. `w: "majority"` would add the replicas' acknowledgement;
/// it implies the journal on a replica set whose `writeConcernMajorityJournalDefault` is
/// on (the default), and a URL can ask for it (`w=majority`).
pub fn durable_write_concern() -> WriteConcern {
    WriteConcern::builder()
        .w(Acknowledgment::Nodes(1))
        .journal(true)
        .build()
}

/// [`connect`] with `max_pool_size` connections per server and `timeout` for server
/// selection and TCP connects, unless the URL says otherwise.
async fn connect_with(
    url: &str,
    database: &str,
    max_pool_size: NonZeroU32,
    timeout: Duration,
) -> Result<Database, mongodb::error::Error> {
    let mut options = ClientOptions::parse(url).await?;
    options.app_name.get_or_insert_with(|| APP_NAME.to_owned());
    // Short, so that a missing server fails an operation (or start-up) within seconds
    // instead of the driver's 30.
    options.server_selection_timeout.get_or_insert(timeout);
    options.connect_timeout.get_or_insert(timeout);
    options.max_pool_size.get_or_insert(max_pool_size.get());
    options
        .write_concern
        .get_or_insert_with(durable_write_concern);
    let client = Client::with_options(options)?;
    let database = client.database(database);
    // The driver connects lazily; pinging now turns "no server" into a start-up failure
    // rather than an error on the first request.
    database.run_command(doc! { "ping": 1 }).await?;
    Ok(database)
}

/// Every adapter, on one connected database with its indexes in place.
#[derive(Debug, Clone)]
pub struct MongoStores {
    /// The driver's client: shut it down ([`mongodb::Client::shutdown`]) once done with
    /// the stores, so that none of its background tasks outlives the runtime.
    pub client: mongodb::Client,
    /// The users collection.
    pub users: MongoUserRepository,
    /// The sessions collection.
    pub sessions: MongoSessionStore,
    /// The failed attempts collection.
    pub failures: MongoFailureCounter,
    /// The audit events collection.
    pub events: MongoAuditLog,
    /// The operator's view of all of them.
    pub admin: MongoAdministration,
    /// The one-time tokens collection ([`DEFAULT_TOKENS_COLLECTION`]).
    pub tokens: MongoTokenStore,
    /// The outbox collection ([`DEFAULT_OUTBOX_COLLECTION`]).
    pub outbox: MongoOutbox,
    /// The second factors: the [`DEFAULT_TOTP_COLLECTION`],
    /// [`DEFAULT_RECOVERY_CODES_COLLECTION`] and [`DEFAULT_PASSKEYS_COLLECTION`].
    pub factors: MongoFactorStore,
    /// The WebAuthn ceremonies collection ([`DEFAULT_CHALLENGES_COLLECTION`]).
    pub challenges: MongoChallengeStore,
    /// Whether `commit` applies a unit of work in a transaction (see
    /// [`MongoStores::uses_transactions`]).
    transactions: bool,
}

impl MongoStores {
    /// Connects, ensures the indexes and builds every adapter: all the app needs at start-up.
    ///
    /// # Errors
    ///
    /// See [`connect`], [`ensure_indexes`], [`ensure_throttle_and_audit_indexes`],
    /// [`ensure_mail_indexes`] and [`ensure_factor_indexes`].
    pub async fn open(config: &MongoConfig) -> Result<Self, OpenError> {
        let database = connect_with(
            &config.url,
            &config.database,
            config.max_pool_size,
            config.timeout,
        )
        .await
        .map_err(OpenError::Connect)?;
        ensure_indexes(
            &database,
            &config.users_collection,
            &config.sessions_collection,
        )
        .await?;
        ensure_throttle_and_audit_indexes(
            &database,
            &config.failures_collection,
            &config.events_collection,
        )
        .await?;
        ensure_mail_indexes(
            &database,
            DEFAULT_TOKENS_COLLECTION,
            DEFAULT_OUTBOX_COLLECTION,
        )
        .await?;
        ensure_factor_indexes(
            &database,
            DEFAULT_RECOVERY_CODES_COLLECTION,
            DEFAULT_PASSKEYS_COLLECTION,
            DEFAULT_CHALLENGES_COLLECTION,
        )
        .await?;
        let sessions = MongoSessionStore::new(&database, &config.sessions_collection);
        let transactions = runs_transactions(&database)
            .await
            .map_err(OpenError::Connect)?;
        Ok(Self {
            transactions,
            admin: MongoAdministration::new(
                &database,
                &config.users_collection,
                &config.sessions_collection,
                &config.events_collection,
            ),
            client: database.client().clone(),
            users: MongoUserRepository::new(
                &database,
                &config.users_collection,
                &config.sessions_collection,
            ),
            sessions,
            failures: MongoFailureCounter::new(&database, &config.failures_collection),
            events: MongoAuditLog::new(&database, &config.events_collection),
            tokens: MongoTokenStore::new(&database, DEFAULT_TOKENS_COLLECTION),
            outbox: MongoOutbox::new(&database, DEFAULT_OUTBOX_COLLECTION),
            factors: MongoFactorStore::new(
                &database,
                DEFAULT_TOTP_COLLECTION,
                DEFAULT_RECOVERY_CODES_COLLECTION,
                DEFAULT_PASSKEYS_COLLECTION,
            ),
            challenges: MongoChallengeStore::new(&database, DEFAULT_CHALLENGES_COLLECTION),
        })
    }
}

/// Whether the deployment runs multi-document transactions: the members of a replica set
/// and a sharded cluster's routers do, a standalone server does not.
async fn runs_transactions(db: &Database) -> Result<bool, mongodb::error::Error> {
    let hello = db.run_command(doc! { "hello": 1 }).await?;
    Ok(hello.contains_key("setName") || hello.get_str("msg") == Ok("isdbgrid"))
}

impl MongoStores {
    /// Whether `commit` applies a unit of work in one transaction, all or nothing (on a
    /// replica set or a sharded cluster), rather than change by change up to the first
    /// refusal (on a standalone server): see `auth_domain::work`.
    pub fn uses_transactions(&self) -> bool {
        self.transactions
    }

    /// The same stores, applying units of work change by change as on a standalone server,
    /// whatever the deployment: for the tests of that way.
    #[must_use]
    pub fn without_transactions(self) -> Self {
        Self {
            transactions: false,
            ..self
        }
    }

    /// The same stores, telling expired sessions by `clock`.
    #[must_use]
    pub fn with_clock(self, clock: Clock) -> Self {
        Self {
            sessions: self.sessions.with_clock(clock.clone()),
            admin: self.admin.with_clock(clock),
            ..self
        }
    }
}

impl Stores for MongoStores {
    type Users = MongoUserRepository;
    type Sessions = MongoSessionStore;
    type Failures = MongoFailureCounter;
    type Audit = MongoAuditLog;
    type Admin = MongoAdministration;
    type Tokens = MongoTokenStore;
    type Outbox = MongoOutbox;
    type Factors = MongoFactorStore;
    type Challenges = MongoChallengeStore;

    fn users(&self) -> &MongoUserRepository {
        &self.users
    }

    fn sessions(&self) -> &MongoSessionStore {
        &self.sessions
    }

    fn failures(&self) -> &MongoFailureCounter {
        &self.failures
    }

    fn audit(&self) -> &MongoAuditLog {
        &self.events
    }

    fn admin(&self) -> &MongoAdministration {
        &self.admin
    }

    fn tokens(&self) -> &MongoTokenStore {
        &self.tokens
    }

    fn outbox(&self) -> &MongoOutbox {
        &self.outbox
    }

    fn factors(&self) -> &MongoFactorStore {
        &self.factors
    }

    fn challenges(&self) -> &MongoChallengeStore {
        &self.challenges
    }

    /// In one transaction where the deployment runs them, else in order up to the first
    /// refusal (see `commit`'s module).
    async fn commit(&self, work: Work) -> Result<(), CommitError> {
        crate::commit::commit(self, self.transactions, work).await
    }

    /// Shuts the driver down: its background tasks end here rather than when the runtime
    /// is dropped under them, where a worker could panic after the answer was given. A
    /// server that stopped answering is given up on after `timeout`.
    async fn close(self, timeout: std::time::Duration) {
        let client = self.client.clone();
        drop(self);
        if tokio::time::timeout(timeout, client.shutdown())
            .await
            .is_err()
        {
            tracing::debug!("the MongoDB driver did not shut down within the timeout");
        }
    }
}

/// Why [`MongoStores::open`] failed.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The URL is malformed or no server answered.
    #[error("could not connect to MongoDB")]
    Connect(#[source] mongodb::error::Error),
    /// The server answered but refused an index.
    #[error(transparent)]
    Indexes(#[from] EnsureIndexesError),
}

impl OpenError {
    /// Whether the server was out of reach (none answered in time, a connection was lost)
    /// rather than the URL or the server's answer being wrong: trying again later may work.
    pub fn is_unavailable(&self) -> bool {
        match self {
            Self::Connect(error) => crate::error::is_unavailable(error),
            Self::Indexes(error) => error.is_unavailable(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_in_the_url_are_redacted_from_debug_output() {
        let config = MongoConfig::new(
            "mongodb://ada:s3cr%40t@db1:27017,db2/?tls=true&authMechanismProperties=AWS_SESSION_TOKEN:t0k3n",
            "auth",
        );
        let shown = format!("{config:?}");
        assert!(!shown.contains("s3cr"), "{shown}");
        assert!(!shown.contains("t0k3n"), "{shown}");
        assert!(
            shown.contains("mongodb://ada:[redacted]@db1:27017,db2/?tls=true"),
            "{shown}"
        );
    }
}
