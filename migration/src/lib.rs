//! The SQL schema of the authentication service, as sea-orm migrations: the `users` and
//! `sessions` tables, then `login_failures` and `auth_events`, and their indexes, then the
//! users' `credential`, the audit events' actor and count, the counted attempts' ids, and
//! (for mail) the users' `email_verified`, `one_time_tokens` and `outbox`, then (for
//! second factors) `totp_credentials`, `recovery_codes`, `passkeys` and
//! `webauthn_challenges`, for SQLite, PostgreSQL and MySQL/MariaDB.
//!
//! The app and `cargo xtask install` both run [`Migrator`] (through
//! `auth_store_sql::install`), so there is one definition of the schema. Migrations
//! describe tables with their own identifiers and never import the live entities: a
//! migration must keep building the same schema after the entities move on.
//!
//! ```no_run
//! use migration::{Migrator, MigratorTrait};
//!
//! # async fn demo(db: &sea_orm_migration::sea_orm::DatabaseConnection) -> Result<(), sea_orm_migration::sea_orm::DbErr> {
//! Migrator::up(db, None).await?;
//! # Ok(()) }
//! ```

pub use sea_orm_migration::prelude::*;

mod m20261128_000001_create_users_and_sessions;
mod m20261203_000001_create_login_failures_and_auth_events;
mod m20261207_000001_add_users_credential;
mod m20261207_000002_add_auth_events_actor;
mod m20261207_000003_add_login_failures_attempt;
mod m20261207_000004_add_auth_events_count;
mod m20261207_000005_add_tokens_outbox_and_email_verified;
mod m20261207_000006_add_second_factors;

pub mod names;

/// Every migration of the schema, oldest first.
#[derive(Debug)]
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261128_000001_create_users_and_sessions::Migration),
            Box::new(m20261203_000001_create_login_failures_and_auth_events::Migration),
            Box::new(m20261207_000001_add_users_credential::Migration),
            Box::new(m20261207_000002_add_auth_events_actor::Migration),
            Box::new(m20261207_000003_add_login_failures_attempt::Migration),
            Box::new(m20261207_000004_add_auth_events_count::Migration),
            Box::new(m20261207_000005_add_tokens_outbox_and_email_verified::Migration),
            Box::new(m20261207_000006_add_second_factors::Migration),
        ]
    }
}
