//! MongoDB storage for the authentication service, through the official driver: a
//! [`MongoUserRepository`] for [`auth_domain::UserRepository`], a [`MongoSessionStore`] for
//! `tower_sessions::SessionStore`, a [`MongoFailureCounter`] for throttling
//! (`auth_domain::throttle::FailureCounter`), a [`MongoAuditLog`] for the audit trail
//! (`auth_domain::audit::AuditLog`), a [`MongoAdministration`] for the admin CLI
//! (`auth_domain::admin::Administration`), a [`MongoTokenStore`] for one-time tokens
//! (`auth_domain::tokens::TokenStore`), a [`MongoOutbox`] for mail waiting to be sent
//! (`auth_domain::mail::Outbox`), a [`MongoFactorStore`] for second factors
//! (`auth_domain::factors::FactorStore`), a [`MongoChallengeStore`] for WebAuthn
//! ceremonies (`auth_domain::factors::ChallengeStore`), and [`ensure_indexes`] with
//! [`ensure_throttle_and_audit_indexes`], [`ensure_mail_indexes`] and
//! [`ensure_factor_indexes`], the only place the collections' indexes are
//! declared (the app calls them at start-up through [`MongoStores::open`], and so does
//! `cargo xtask install`). With the cargo feature `bulk` (tests and benchmarks),
//! [`MongoSessionStore::create_many`] stores many sessions at once in the store's own
//! encoding.
//!
//! [`MongoStores`]' `commit` applies a unit of work (`auth_domain::work::Work`) in one
//! multi-document transaction where the deployment runs them (a replica set, a sharded
//! cluster, SecantusDB), retried whole after a write conflict; on a standalone server,
//! change by change up to the first refusal.
//!
//! The database does the enforcing: unique indexes on `email` and `username` turn a
//! duplicate registration into an `E11000` error that becomes
//! [`auth_domain::InsertUserError::EmailTaken`] or `UsernameTaken`, and a TTL index on
//! `expires_at` lets MongoDB purge expired sessions itself, and one on the failures' `at`
//! expires them after [`FAILURE_RETENTION`].
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use auth_store_mongo::{MongoConfig, MongoStores};
//!
//! let config = MongoConfig::new("mongodb://127.0.0.1:27017", "auth");
//! // Connects (failing within seconds when no server answers) and creates the indexes.
//! let MongoStores { users, sessions, .. } = MongoStores::open(&config).await?;
//! # let _ = (users, sessions);
//! # Ok(()) }
//! ```
//!
//! # Documents
//!
//! - users: `{_id, email, username, password_hash, credential, created_at_us,
//!   email_verified}`
//!   (`credential` is `auth_domain::session::Credential` of the hash, written with it);
//!   `_id` is the [`auth_domain::UserId`] in its canonical string form, the same form the
//!   sessions' `user_id` field holds, so that the two compare without conversion (and
//!   string order is creation order, as UUIDv7 is).
//! - sessions: `{_id, data, user_id, created_at, last_seen_at, expires_at,
//!   expires_at_us, owner}`; `_id` is [`auth_domain::session::storage_key`] of the session
//!   id, never the id itself; `data` is the JSON text of the record's data; `owner` is a
//!   snapshot of the logged-in user, which the user repository keeps
//!   current and deletes with the user.
//! - login failures: `{_id, key, at, at_us}`, one per failure and throttle key; `key` is
//!   a digest ([`auth_domain::throttle::ThrottleKey`]), never an address or an email.
//! - one-time tokens: `{_id, purpose, user_id, email, created_at_us, expires_at_us}`;
//!   `_id` is the token's keyed digest (`auth_domain::tokens::TokenDigest`), never the
//!   token.
//! - outbox: `{_id, kind, to, subject, body, status, attempts, next_attempt_at_us,
//!   lease_id, lease_until_us, last_error, created_at_us, sent_at_us}`; `body` is emptied
//!   once the mail is sent.
//! - audit events: `{_id, at, at_us, kind, user_id, ip, user_agent}`; `_id` and
//!   `user_id` are UUIDs in string form, like the users' `_id`; `at` is a date for the
//!   purge's index (and, for failures, the TTL).
//! - TOTP credentials: `{_id, enrolment_id, sealed_secret, confirmed, last_step,
//!   created_at_us}`; `_id` is the user's id (a user has at most one), `sealed_secret` the
//!   secret sealed, never the secret; `last_step` is null until a code is accepted.
//! - recovery codes: `{_id, user_id, digest, created_at_us}`, one per unspent code;
//!   `digest` is the code's keyed digest, never the code; `_id` is the server's.
//! - passkeys: `{_id, user_id, credential_id, name, key, created_at_us,
//!   last_used_at_us}`; `_id` is our UUID in string form, `credential_id` (unique) the
//!   authenticator's, `key` the WebAuthn library's JSON.
//! - WebAuthn challenges: `{_id, ceremony, user_id, state, expires_at, expires_at_us}`;
//!   `_id` is the challenge's digest; `expires_at` is a date for the TTL index, the take
//!   decides by `expires_at_us`.
//!
//! A BSON date holds milliseconds, the domain's instants microseconds
//! ([`auth_domain::timestamp`]): an instant that must read back exactly is kept as an
//! Int64 of microseconds since the Unix epoch (`*_us`). The sessions' `expires_at` is a
//! BSON date as well, rounded down to the millisecond, for the TTL index; their
//! `created_at` and `last_seen_at` are dates only, read back to the millisecond for the
//! user's list of sessions, which needs no more.

mod admin;
mod audit;
mod challenges;
mod commit;
mod config;
mod error;
mod factors;
mod indexes;
mod outbox;
mod purge;
mod sessions;
mod throttle;
mod timestamp;
mod tokens;
mod tx;
mod users;

pub use admin::MongoAdministration;
pub use audit::MongoAuditLog;
pub use challenges::MongoChallengeStore;
pub use factors::MongoFactorStore;

pub use config::{
    connect, durable_write_concern, MongoConfig, MongoStores, OpenError, APP_NAME,
    DEFAULT_CHALLENGES_COLLECTION, DEFAULT_DATABASE, DEFAULT_EVENTS_COLLECTION,
    DEFAULT_FAILURES_COLLECTION, DEFAULT_OUTBOX_COLLECTION, DEFAULT_PASSKEYS_COLLECTION,
    DEFAULT_RECOVERY_CODES_COLLECTION, DEFAULT_SESSIONS_COLLECTION, DEFAULT_TOKENS_COLLECTION,
    DEFAULT_TOTP_COLLECTION, DEFAULT_URL, DEFAULT_USERS_COLLECTION,
};
pub use indexes::{
    ensure_factor_indexes, ensure_indexes, ensure_mail_indexes, ensure_throttle_and_audit_indexes,
    EnsureIndexesError, CHALLENGE_EXPIRY_INDEX, CHALLENGE_USER_INDEX, EMAIL_INDEX,
    EVENT_TIME_INDEX, EVENT_USER_INDEX, FAILURE_EXPIRY_INDEX, FAILURE_KEY_INDEX, MAIL_DUE_INDEX,
    MAIL_LIST_INDEX, MAIL_SENT_INDEX, PASSKEY_CREDENTIAL_INDEX, PASSKEY_USER_INDEX,
    RECOVERY_CODE_INDEX, SESSION_EXPIRY_INDEX, SESSION_USER_INDEX, TOKEN_EXPIRY_INDEX,
    TOKEN_USER_INDEX, USERNAME_INDEX,
};
pub use outbox::MongoOutbox;
pub use sessions::MongoSessionStore;
pub use throttle::{MongoFailureCounter, FAILURE_RETENTION};
pub use tokens::MongoTokenStore;
pub use users::MongoUserRepository;
