//! Users and sessions in SQL — SQLite, PostgreSQL or MySQL/MariaDB — through sea-orm.
//!
//! - [`connect`] opens a pool tuned for the engine (WAL and a busy timeout on SQLite) and
//!   [`install`] builds the schema by running the `migration` crate.
//! - [`SqlUserRepository`] is the [`auth_domain::UserRepository`] adapter: the unique
//!   indexes decide whether an email or username is taken; each user's `credential` (the
//!   digest of their hash) is written with the hash.
//! - [`SqlSessionStore`] is the `tower_sessions::SessionStore` and
//!   [`auth_domain::OwnedSessions`] adapter: sessions are keyed by the SHA-256 of their id,
//!   `create` never overwrites, `save` never resurrects, a load ignores expired rows and
//!   joins the session's user (its credential as stored) in the same statement, and
//!   [`SqlSessionStore::purge_expired_periodically`] removes expired rows.
//! - [`SqlFailureCounter`] (`auth_domain::throttle::FailureCounter`) counts failed attempts
//!   in `login_failures`, one grouped query per check; [`SqlAuditLog`]
//!   (`auth_domain::audit::AuditLog`) keeps the audit trail in `auth_events`. Both purge
//!   old rows in batches.
//! - With the cargo feature `bulk` (tests and benchmarks), [`SqlSessionStore::create_many`]
//!   stores many sessions at once in the store's own encoding.
//! - [`SqlAdministration`] (`auth_domain::admin::Administration`) is the operator's view
//!   across all users, for the admin CLI.
//! - [`SqlTokenStore`] (`auth_domain::tokens::TokenStore`) keeps one-time tokens as keyed
//!   digests in `one_time_tokens`; [`SqlOutbox`] (`auth_domain::mail::Outbox`) keeps the
//!   mail to send in `outbox`, leased to one worker at a time by compare-and-set.
//! - [`SqlFactorStore`] (`auth_domain::factors::FactorStore`) keeps second factors in
//!   `totp_credentials`, `recovery_codes` and `passkeys`, deleted with their user by a
//!   foreign key; a TOTP step is accepted by one conditional `UPDATE`, so at most once
//!   across instances. [`SqlChallengeStore`] (`auth_domain::factors::ChallengeStore`)
//!   keeps WebAuthn ceremonies in `webauthn_challenges`, each taken by the one `DELETE`
//!   that removes it.
//! - [`SqlStores`] bundles them on one pool; its `commit` applies a unit of work
//!   (`auth_domain::work::Work`) in one transaction: all of it or none.
//!
//! ```no_run
//! use auth_store_sql::{connect, install, SqlSessionStore, SqlUserRepository};
//!
//! # async fn demo() -> Result<(), sea_orm::DbErr> {
//! let db = connect("sqlite://database.db?mode=rwc").await?;
//! install(&db).await?;
//! let users = SqlUserRepository::new(db.clone());
//! let sessions = SqlSessionStore::new(db);
//! tokio::spawn(
//!     sessions
//!         .clone()
//!         .purge_expired_periodically(std::time::Duration::from_secs(60)),
//! );
//! # let _ = users;
//! # Ok(()) }
//! ```

mod admin;
mod audit;
mod challenges;
mod commit;
mod connect;
// sea-orm's derives make public items that must stay `pub` (E0446 otherwise); the module
// itself is private, so none of them leaves the crate.
#[allow(unreachable_pub)]
mod entity;
mod error;
mod factors;
mod outbox;
mod purge;
mod sessions;
mod sqlite_faults;
mod stores;
mod throttle;
mod timestamp;
mod tokens;
mod users;

pub use admin::SqlAdministration;
pub use audit::SqlAuditLog;
pub use challenges::SqlChallengeStore;
pub use connect::{connect, connect_with, default_max_connections, install, DEFAULT_URL, SETTINGS};
pub use error::is_unavailable;
pub use factors::SqlFactorStore;
pub use outbox::SqlOutbox;
pub use sessions::{
    SqlSessionStore, MAX_PURGE_BATCH_SIZE, PURGE_BATCH_SIZE, SESSIONS_PURGED_METRIC,
};
pub use stores::SqlStores;
pub use throttle::SqlFailureCounter;
pub use tokens::SqlTokenStore;
pub use users::SqlUserRepository;
