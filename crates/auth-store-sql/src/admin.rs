//! The [`Administration`] adapter: the operator's queries across all users.

use auth_domain::{
    admin::{Administration, UserSession},
    audit::AuthEvent,
    clock::Clock,
    session::SessionHandle,
    RepositoryError, User, UserId,
};
use sea_orm::{
    sea_query::Condition, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait,
    QueryFilter, QueryOrder, QuerySelect,
};

use crate::{
    audit,
    entity::{sessions, users},
    error::repository_error,
    sessions::session_info,
    timestamp,
    users::into_user,
    SqlSessionStore, PURGE_BATCH_SIZE,
};

/// Every user, session and event of a SQL database built by the `migration` crate.
#[derive(Debug, Clone)]
pub struct SqlAdministration {
    db: DatabaseConnection,
    /// What decides whether a session has expired.
    clock: Clock,
}

impl SqlAdministration {
    /// The operator's view of an open pool (see [`crate::connect`]), on the system clock.
    pub fn new(db: DatabaseConnection) -> Self {
        Self {
            db,
            clock: Clock::system(),
        }
    }

    /// The same view, telling expired sessions by `clock`.
    #[must_use]
    pub fn with_clock(self, clock: Clock) -> Self {
        Self { clock, ..self }
    }
}

impl Administration for SqlAdministration {
    /// By primary key, descending: UUIDv7s order by creation on every engine (bytes on
    /// PostgreSQL, MySQL and SQLite alike).
    async fn list_users(&self, limit: u64) -> Result<Vec<User>, RepositoryError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let rows = users::Entity::find()
            .order_by_desc(users::Column::Id)
            .limit(limit)
            .all(&self.db)
            .await
            .map_err(|err| repository_error("list users", &err))?;
        Ok(rows.into_iter().map(into_user).collect())
    }

    /// In the order of [`auth_domain::session::sort_for_listing`] (keys are lowercase hex,
    /// which every engine orders as bytes). No index serves this order: a scan of the live
    /// sessions, fine for an operator's occasional look, never on a request's path.
    async fn list_sessions(&self, limit: u64) -> Result<Vec<UserSession>, RepositoryError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let now = timestamp::value(self.db.get_database_backend(), self.clock.now());
        let rows = sessions::Entity::find()
            .filter(sessions::Column::UserId.is_not_null())
            .filter(sessions::Column::ExpiresAt.gt(now))
            .order_by_desc(sessions::Column::LastSeenAt)
            .order_by_desc(sessions::Column::CreatedAt)
            .order_by_asc(sessions::Column::Id)
            .limit(limit)
            .all(&self.db)
            .await
            .map_err(|err| repository_error("list sessions", &err))?;
        let mut listed = Vec::with_capacity(rows.len());
        for row in rows {
            let user_id = row
                .user_id
                .as_deref()
                .and_then(|id| id.parse::<UserId>().ok())
                .ok_or_else(|| {
                    RepositoryError::new("list sessions failed: a stored user id is malformed")
                })?;
            listed.push(UserSession {
                user_id,
                session: session_info(row)?,
            });
        }
        Ok(listed)
    }

    /// Reads whose the session is, then deletes it if it is still theirs and live: a
    /// session that changed hands or expired in between is left alone.
    async fn revoke_session(
        &self,
        handle: &SessionHandle,
    ) -> Result<Option<UserId>, RepositoryError> {
        let now = timestamp::value(self.db.get_database_backend(), self.clock.now());
        let owner: Option<Option<String>> = sessions::Entity::find()
            .select_only()
            .column(sessions::Column::UserId)
            .filter(sessions::Column::Id.eq(handle.as_str()))
            .filter(sessions::Column::ExpiresAt.gt(now.clone()))
            .into_tuple()
            .one(&self.db)
            .await
            .map_err(|err| repository_error("revoke session", &err))?;
        let Some(Some(owner)) = owner else {
            return Ok(None);
        };
        let user: UserId = owner
            .parse()
            .map_err(|_| RepositoryError::new("a stored session names a malformed user id"))?;
        let deleted = sessions::Entity::delete_many()
            .filter(sessions::Column::Id.eq(handle.as_str()))
            .filter(sessions::Column::UserId.eq(owner))
            .filter(sessions::Column::ExpiresAt.gt(now))
            .exec(&self.db)
            .await
            .map_err(|err| repository_error("revoke session", &err))?;
        Ok((deleted.rows_affected > 0).then_some(user))
    }

    /// The periodic purge's own code, run once now.
    async fn purge_expired_sessions(&self) -> Result<u64, RepositoryError> {
        SqlSessionStore::new(self.db.clone())
            .with_clock(self.clock.clone())
            .purge_expired(PURGE_BATCH_SIZE)
            .await
            .map_err(|err| repository_error("purge sessions", &err))
    }

    /// Newest first on the index of `at`; the id (a UUIDv7) orders events of the same
    /// microsecond.
    async fn recent_events(&self, limit: u64) -> Result<Vec<AuthEvent>, RepositoryError> {
        audit::recent(&self.db, Condition::all(), limit).await
    }
}
