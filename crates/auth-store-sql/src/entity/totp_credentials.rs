//! A row of `totp_credentials`.

use sea_orm::entity::prelude::*;

/// A user's TOTP credential: an enrolment in progress, or the confirmed one.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "totp_credentials")]
pub struct Model {
    /// Whose; one credential per user.
    #[sea_orm(primary_key, auto_increment = false)]
    pub user_id: Uuid,
    /// The enrolment, as a confirmation names it.
    pub id: Uuid,
    /// The secret, sealed (`auth_domain::seal`).
    pub sealed_secret: String,
    /// Whether a first code confirmed it.
    pub confirmed: bool,
    /// The last time step accepted, if any.
    pub last_step: Option<i64>,
    /// When the enrolment started, UTC, microseconds.
    pub created_at: TimeDateTimeWithTimeZone,
}

/// `totp_credentials` has no relations an adapter navigates.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
