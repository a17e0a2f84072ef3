//! MongoDB storage for the authentication service, through the official driver: a
//! [`MongoUserRepository`] for [`auth_domain::UserRepository`], a [`MongoSessionStore`] for
//! `tower_sessions::SessionStore`, and [`ensure_indexes`], the only place the collections'
//! indexes are declared (the app calls it at start-up, `cargo xtask install` calls it too).
//!
//! The database does the enforcing: unique indexes on `email` and `username` turn a
//! duplicate registration into an `E11000` error that becomes
//! [`auth_domain::InsertUserError::EmailTaken`] or `UsernameTaken`, and a TTL index on
//! `expires_at` lets MongoDB purge expired sessions itself.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use auth_store_mongo::{MongoConfig, MongoStores};
//!
//! let config = MongoConfig::new("mongodb://127.0.0.1:27017", "auth");
//! // Connects (failing within seconds when no server answers) and creates the indexes.
//! let MongoStores { users, sessions } = MongoStores::open(&config).await?;
//! # let _ = (users, sessions);
//! # Ok(()) }
//! ```
//!
//! # Documents
//!
//! - users: `{_id, email, username, password_hash, created_at_us}`;
//!   `_id` is the [`auth_domain::UserId`] in its canonical string form, the same form the
//!   sessions' `user_id` field holds, so that the two compare without conversion (and
//!   string order is creation order, as UUIDv7 is).
//! - sessions: `{_id, data, user_id, created_at, last_seen_at, expires_at,
//!   expires_at_us}`; `_id` is [`auth_domain::session::storage_key`] of the session
//!   id, never the id itself; `data` is the JSON text of the record's data.
//!
//! A BSON date holds milliseconds, the domain's instants microseconds
//! ([`auth_domain::timestamp`]): an instant read back is kept as an Int64 of microseconds
//! since the Unix epoch (`*_us`). The sessions' `expires_at` is a BSON date as well,
//! rounded down to the millisecond, for the TTL index; their `created_at` and
//! `last_seen_at` are dates for people and tools, never read back. Documents written by
//! earlier versions (a date plus `*_sub_ms_ns`) still read back exactly; a saved session
//! loses its `expires_at_sub_ms_ns`.

mod config;
mod error;
mod indexes;
mod sessions;
mod timestamp;
mod users;

pub use config::{
    connect, MongoConfig, MongoStores, OpenError, APP_NAME, DEFAULT_SESSIONS_COLLECTION,
    DEFAULT_USERS_COLLECTION, SERVER_SELECTION_TIMEOUT,
};
pub use indexes::{
    ensure_indexes, EnsureIndexesError, EMAIL_INDEX, SESSION_EXPIRY_INDEX, SESSION_USER_INDEX,
    USERNAME_INDEX,
};
pub use sessions::MongoSessionStore;
pub use users::MongoUserRepository;
