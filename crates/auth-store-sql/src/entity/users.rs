//! A row of `users`.

use sea_orm::entity::prelude::*;

/// One registered user, as stored.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "users")]
pub struct Model {
    /// The application-made UUIDv7.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// Normalised address, unique.
    pub email: String,
    /// Normalised handle, unique.
    pub username: String,
    /// The argon2id PHC string.
    pub password_hash: String,
    /// The hex SHA-256 of `password_hash` (`auth_domain::session::Credential`), written
    /// with it, so that loading a session computes no digest.
    pub credential: String,
    /// Registration time, UTC, microseconds.
    pub created_at: TimeDateTimeWithTimeZone,
    /// Whether the user followed a link mailed to `email`.
    pub email_verified: bool,
}

/// `users` has no relations an adapter navigates.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
