//! A row of `recovery_codes`.

use sea_orm::entity::prelude::*;

/// One unspent recovery code of a user, as its keyed digest.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "recovery_codes")]
pub struct Model {
    /// Whose.
    #[sea_orm(primary_key, auto_increment = false)]
    pub user_id: Uuid,
    /// The keyed digest (`auth_domain::factors::CodeDigest`), 64 hex digits.
    #[sea_orm(primary_key, auto_increment = false)]
    pub digest: String,
    /// When the set was made, UTC, microseconds.
    pub created_at: TimeDateTimeWithTimeZone,
}

/// `recovery_codes` has no relations an adapter navigates.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
