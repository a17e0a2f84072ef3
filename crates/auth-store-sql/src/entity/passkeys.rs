//! A row of `passkeys`.

use sea_orm::entity::prelude::*;

/// A registered passkey.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "passkeys")]
pub struct Model {
    /// Our id for it.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// Whose.
    pub user_id: Uuid,
    /// The authenticator's id for it, base64url; unique.
    pub credential_id: String,
    /// What the user calls it.
    pub name: String,
    /// The public key and counters, as the WebAuthn library serialises them (JSON).
    pub key: String,
    /// When it was registered, UTC, microseconds.
    pub created_at: TimeDateTimeWithTimeZone,
    /// When it last signed someone in.
    pub last_used_at: Option<TimeDateTimeWithTimeZone>,
}

/// `passkeys` has no relations an adapter navigates.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
