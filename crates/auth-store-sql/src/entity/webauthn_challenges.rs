//! A row of `webauthn_challenges`.

use sea_orm::entity::prelude::*;

/// A WebAuthn ceremony waiting for its answer.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "webauthn_challenges")]
pub struct Model {
    /// The hex SHA-256 of the challenge.
    #[sea_orm(primary_key, auto_increment = false)]
    pub digest: String,
    /// `auth_domain::factors::Ceremony::as_str`.
    pub ceremony: String,
    /// Whose, when the user is known.
    pub user_id: Option<Uuid>,
    /// The library's state of the ceremony (JSON).
    pub state: String,
    /// When it stops being answerable, UTC, microseconds.
    pub expires_at: TimeDateTimeWithTimeZone,
}

/// `webauthn_challenges` has no relations an adapter navigates.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
