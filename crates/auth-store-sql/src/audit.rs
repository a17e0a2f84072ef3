//! The [`AuditLog`] adapter: one row of `auth_events` per event.

use auth_domain::{
    audit::{Actor, AuditLog, AuthEvent, EventKind, EventPage},
    session::MAX_USER_AGENT_CHARS,
    RepositoryError, UserId,
};
use sea_orm::{
    sea_query::{Condition, Query},
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::{entity::auth_events, error::repository_error, purge, timestamp};

/// The audit trail in the `auth_events` table.
#[derive(Debug, Clone)]
pub struct SqlAuditLog {
    db: DatabaseConnection,
}

impl SqlAuditLog {
    /// A log on an open pool (see [`crate::connect`]) of an installed schema.
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db }
    }
}

impl AuditLog for SqlAuditLog {
    async fn record(&self, event: &AuthEvent) -> Result<(), RepositoryError> {
        insert_event(&self.db, event)
            .await
            .map_err(|err| repository_error("record event", &err))
    }

    /// Newest first; the id (a UUIDv7) orders events of the same microsecond.
    /// One `SELECT` over the `(user_id, at)` index.
    async fn recent_for_user(
        &self,
        user: UserId,
        page: &EventPage,
    ) -> Result<Vec<AuthEvent>, RepositoryError> {
        let backend = self.db.get_database_backend();
        let mut filter = Condition::all().add(auth_events::Column::UserId.eq(user.as_uuid()));
        if !page.kinds.is_empty() {
            filter = filter
                .add(auth_events::Column::Kind.is_in(page.kinds.iter().map(|kind| kind.as_str())));
        }
        if let Some(cursor) = page.before {
            let at = timestamp::value(backend, cursor.at);
            filter = filter.add(
                Condition::any()
                    .add(auth_events::Column::At.lt(at.clone()))
                    .add(
                        Condition::all()
                            .add(auth_events::Column::At.eq(at))
                            .add(auth_events::Column::Id.lt(cursor.id)),
                    ),
            );
        }
        recent(&self.db, filter, page.limit).await
    }

    async fn purge_before(
        &self,
        before: OffsetDateTime,
        batch: u64,
    ) -> Result<u64, RepositoryError> {
        purge::purge_before::<auth_events::Entity, Uuid>(
            &self.db,
            auth_events::Column::Id,
            auth_events::Column::At,
            before,
            batch,
        )
        .await
        .map_err(|err| repository_error("purge events", &err))
    }
}

/// Inserts `event` as one row, on the pool or inside the transaction of the action it
/// records.
pub(crate) async fn insert_event(
    db: &impl ConnectionTrait,
    event: &AuthEvent,
) -> Result<(), DbErr> {
    let backend = db.get_database_backend();
    // The domain cuts a User-Agent to this length already; cutting again here keeps
    // an over-long one from failing the write on PostgreSQL and MySQL only (SQLite
    // would take it), since the trail must never fail a request.
    let user_agent: Option<String> = event
        .user_agent
        .as_deref()
        .map(|agent| agent.chars().take(MAX_USER_AGENT_CHARS).collect());
    let mut statement = Query::insert();
    statement
        .into_table(auth_events::Entity)
        .columns([
            auth_events::Column::Id,
            auth_events::Column::At,
            auth_events::Column::Kind,
            auth_events::Column::UserId,
            auth_events::Column::Actor,
            auth_events::Column::RequestId,
            auth_events::Column::Ip,
            auth_events::Column::UserAgent,
            auth_events::Column::Count,
        ])
        .values([
            event.id.into(),
            timestamp::value(backend, event.at).into(),
            event.kind.as_str().into(),
            event.user_id.map(|user| user.as_uuid()).into(),
            event.actor.as_str().into(),
            event.request_id.clone().into(),
            event.ip.map(|ip| ip.to_string()).into(),
            user_agent.into(),
            i32::try_from(event.count).unwrap_or(i32::MAX).into(),
        ])
        .map_err(|err| DbErr::Custom(format!("record event: {err}")))?;
    db.execute(backend.build(&statement)).await?;
    Ok(())
}

/// The `limit` most recent events that `filter` picks, newest first; the id (a UUIDv7)
/// orders events of the same microsecond.
pub(crate) async fn recent(
    db: &DatabaseConnection,
    filter: Condition,
    limit: u64,
) -> Result<Vec<AuthEvent>, RepositoryError> {
    if limit == 0 {
        return Ok(Vec::new());
    }
    auth_events::Entity::find()
        .filter(filter)
        .order_by_desc(auth_events::Column::At)
        .order_by_desc(auth_events::Column::Id)
        .limit(limit)
        .all(db)
        .await
        .map_err(|err| repository_error("list events", &err))?
        .into_iter()
        .map(into_event)
        .collect()
}

/// The event a row holds; a kind or address this version cannot read is a storage error
/// (naming neither value).
fn into_event(row: auth_events::Model) -> Result<AuthEvent, RepositoryError> {
    let kind = EventKind::parse(&row.kind)
        .ok_or_else(|| RepositoryError::new("list events: a stored event has an unknown kind"))?;
    let actor = Actor::parse(&row.actor)
        .ok_or_else(|| RepositoryError::new("list events: a stored event has an unknown actor"))?;
    let ip = row.ip.map(|ip| ip.parse()).transpose().map_err(|_| {
        RepositoryError::new("list events: a stored event has an unreadable address")
    })?;
    Ok(AuthEvent {
        id: row.id,
        at: row.at,
        kind,
        user_id: row.user_id.map(UserId::from_uuid),
        actor,
        request_id: row.request_id,
        ip,
        user_agent: row.user_agent,
        count: u32::try_from(row.count).unwrap_or(1).max(1),
    })
}
