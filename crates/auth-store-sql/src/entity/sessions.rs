//! A row of `sessions`.

use sea_orm::entity::prelude::*;

/// One server-side session, as stored.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "sessions")]
pub struct Model {
    /// Hex SHA-256 of the session id (`auth_domain::session::storage_key`), never the id.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    /// String form of the logged-in user's id, if any.
    pub user_id: Option<String>,
    /// JSON of the record's data.
    pub data: String,
    /// When the session was first stored.
    pub created_at: TimeDateTimeWithTimeZone,
    /// When the session was last saved.
    pub last_seen_at: TimeDateTimeWithTimeZone,
    /// After this instant the session is dead, purged or not.
    pub expires_at: TimeDateTimeWithTimeZone,
}

/// `sessions` has no relations an adapter navigates.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
