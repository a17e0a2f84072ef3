//! A row of `outbox`.

use sea_orm::entity::prelude::*;

/// One mail and its delivery state.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "outbox")]
pub struct Model {
    /// The mail's UUIDv7.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// `auth_domain::mail::MailKind::as_str`.
    pub kind: String,
    /// The address it goes to.
    pub recipient: String,
    /// The subject line.
    pub subject: String,
    /// The plain-text body; emptied once sent (it may hold a live token).
    pub body: String,
    /// `auth_domain::mail::MailStatus::as_str`.
    pub status: String,
    /// Attempts made so far.
    pub attempts: i32,
    /// When it may be tried (again).
    pub next_attempt_at: TimeDateTimeWithTimeZone,
    /// The lease a worker holds on it, if any.
    pub lease_id: Option<Uuid>,
    /// When that lease ends.
    pub lease_until: Option<TimeDateTimeWithTimeZone>,
    /// The last failure's message.
    pub last_error: Option<String>,
    /// When it was written.
    pub created_at: TimeDateTimeWithTimeZone,
    /// When it was sent.
    pub sent_at: Option<TimeDateTimeWithTimeZone>,
}

/// `outbox` has no relations an adapter navigates.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
