//! A row of `auth_events`.

use sea_orm::entity::prelude::*;

/// One entry of the audit trail.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "auth_events")]
pub struct Model {
    /// The application-made UUIDv7.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// When it happened, UTC, microseconds.
    pub at: TimeDateTimeWithTimeZone,
    /// `auth_domain::audit::EventKind::as_str`.
    pub kind: String,
    /// Whose account, when known.
    pub user_id: Option<Uuid>,
    /// `auth_domain::audit::Actor::as_str`.
    pub actor: String,
    /// The HTTP request's id, when one caused it.
    pub request_id: Option<String>,
    /// The client's address, as text.
    pub ip: Option<String>,
    /// The client's User-Agent.
    pub user_agent: Option<String>,
    /// How many attempts it stands for (repeated throttled logins), at least 1.
    pub count: i32,
}

/// `auth_events` has no relations an adapter navigates.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
