//! A row of `login_failures`.

use sea_orm::entity::prelude::*;

/// One failed attempt, counted under its throttle key.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "login_failures")]
pub struct Model {
    /// The engine's own sequence.
    #[sea_orm(primary_key)]
    pub id: i64,
    /// The throttle key: 64 hexadecimal digits, never an address or an email in clear.
    pub key: String,
    /// When the attempt failed, UTC, microseconds.
    pub at: TimeDateTimeWithTimeZone,
    /// The random id of the attempt that recorded it, by which it is withdrawn; none on
    /// failures recorded before attempts were reserved.
    pub attempt: Option<i64>,
}

/// `login_failures` has no relations an adapter navigates.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
