//! A row of `one_time_tokens`.

use sea_orm::entity::prelude::*;

/// One token, without its secret.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "one_time_tokens")]
pub struct Model {
    /// The keyed digest of the secret (`auth_domain::tokens::TokenDigest`), 64 hex digits.
    #[sea_orm(primary_key, auto_increment = false)]
    pub digest: String,
    /// `auth_domain::tokens::Purpose::as_str`.
    pub purpose: String,
    /// Whose account.
    pub user_id: Uuid,
    /// The address it was sent to.
    pub email: String,
    /// When it was issued, UTC, microseconds.
    pub created_at: TimeDateTimeWithTimeZone,
    /// When it stops working, UTC, microseconds.
    pub expires_at: TimeDateTimeWithTimeZone,
}

/// `one_time_tokens` has no relations an adapter navigates.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
