//! The tower-sessions [`SessionStore`] adapter, and the purge of expired sessions.

use std::time::Duration;

use async_trait::async_trait;
use auth_domain::{
    clock::Clock,
    session::{self, Credential, OwnedSession, Owner, SessionHandle, SessionInfo, StoredData},
    OwnedSessions, RepositoryError, UserId, UserSessions,
};
use sea_orm::{
    sea_query::{Expr, Query, SimpleExpr},
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, DbErr, EntityTrait, QueryFilter,
    QueryResult, QuerySelect, Statement,
};
use time::OffsetDateTime;
use tower_sessions::{
    session::{Id, Record},
    session_store::{self, SessionStore},
};

use crate::{
    entity::sessions,
    error::{describe, is_unique_violation, repository_error, session_error},
    timestamp,
};

/// Rows deleted per statement by [`SqlSessionStore::purge_expired_periodically`]: small
/// enough that no purge holds locks for long, large enough to keep up with any load.
pub const PURGE_BATCH_SIZE: u64 = 1_000;

/// The largest batch [`SqlSessionStore::purge_expired`] deletes in one statement: each key
/// is a bound parameter, and SQLite allows 32 766 of them per statement.
pub const MAX_PURGE_BATCH_SIZE: u64 = 10_000;

/// The counter of sessions deleted by [`SqlSessionStore::purge_expired_periodically`],
/// through the `metrics` facade (read when the application installs a recorder).
pub const SESSIONS_PURGED_METRIC: &str = "sessions_purged_total";

/// How many fresh ids `create` tries after collisions before giving up. With 128 random
/// bits a second collision means the store is broken, not unlucky.
const CREATE_ATTEMPTS: usize = 8;

/// Sessions in the `sessions` table, keyed by the hash of their id.
#[derive(Debug, Clone)]
pub struct SqlSessionStore {
    db: DatabaseConnection,
    /// What decides whether a session has expired.
    clock: Clock,
}

impl SqlSessionStore {
    /// A store on an open pool (see [`crate::connect`]), on the system clock.
    pub fn new(db: DatabaseConnection) -> Self {
        Self {
            db,
            clock: Clock::system(),
        }
    }

    /// What tells expired sessions.
    pub(crate) fn clock(&self) -> &Clock {
        &self.clock
    }

    /// The same store, telling expired sessions by `clock`.
    #[must_use]
    pub fn with_clock(self, clock: Clock) -> Self {
        Self { clock, ..self }
    }

    /// Deletes sessions whose expiry has passed, `batch_size` rows at a time (at least 1,
    /// at most [`MAX_PURGE_BATCH_SIZE`]), until none is left; returns how many were
    /// deleted. Each batch selects the keys first and then deletes them, because MySQL
    /// cannot delete from a table through a `LIMIT`ed subquery on the same table.
    ///
    /// # Errors
    ///
    /// The database failed; batches already deleted stay deleted.
    pub async fn purge_expired(&self, batch_size: u64) -> Result<u64, DbErr> {
        let batch_size = batch_size.clamp(1, MAX_PURGE_BATCH_SIZE);
        let backend = self.db.get_database_backend();
        // One cut-off for the whole purge, so that it ends even while sessions keep
        // expiring.
        let cutoff = timestamp::value(backend, self.clock.now());
        let mut deleted = 0;
        loop {
            let keys: Vec<String> = sessions::Entity::find()
                .select_only()
                .column(sessions::Column::Id)
                .filter(sessions::Column::ExpiresAt.lte(cutoff.clone()))
                .limit(batch_size)
                .into_tuple()
                .all(&self.db)
                .await?;
            let selected = keys.len();
            if selected == 0 {
                break;
            }
            // The expiry is checked again: a session saved since the select lives on.
            deleted += sessions::Entity::delete_many()
                .filter(sessions::Column::Id.is_in(keys))
                .filter(sessions::Column::ExpiresAt.lte(cutoff.clone()))
                .exec(&self.db)
                .await?
                .rows_affected;
            if (selected as u64) < batch_size {
                break;
            }
        }
        Ok(deleted)
    }

    /// Purges expired sessions now and then every `every` (at least a millisecond),
    /// forever: meant for `tokio::spawn`. A failed purge is logged and retried at the next
    /// tick.
    pub async fn purge_expired_periodically(self, every: Duration) {
        // A zero period would make `interval` panic inside the spawned task.
        let mut ticks = tokio::time::interval(every.max(Duration::from_millis(1)));
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            match self.purge_expired(PURGE_BATCH_SIZE).await {
                Ok(0) => {}
                Ok(deleted) => {
                    metrics::counter!(SESSIONS_PURGED_METRIC).increment(deleted);
                    tracing::debug!(deleted, "purged expired sessions");
                }
                Err(err) => tracing::error!(
                    error = %describe(&err),
                    "purging expired sessions failed; retrying at the next tick"
                ),
            }
        }
    }

    /// The row of the live session `session_id` joined with its user's, if any.
    async fn load_row(&self, session_id: &str) -> Result<Option<QueryResult>, DbErr> {
        let backend = self.db.get_database_backend();
        let now = timestamp::value(backend, self.clock.now());
        let statement = Statement::from_sql_and_values(
            backend,
            load_statement(backend),
            [session::storage_key(session_id).into(), now],
        );
        self.db.query_one(statement).await
    }

    async fn insert(&self, record: &Record, data: &str) -> Result<(), DbErr> {
        let backend = self.db.get_database_backend();
        let mut statement = Query::insert();
        statement
            .into_table(sessions::Entity)
            .columns(NEW_ROW)
            .values(new_row(backend, record, data, self.clock.now()))
            .map_err(|err| DbErr::Custom(err.to_string()))?;
        self.db.execute(backend.build(&statement)).await?;
        Ok(())
    }
}

/// The columns of a new session's row, in the order [`new_row`] gives their values.
const NEW_ROW: [sessions::Column; 6] = [
    sessions::Column::Id,
    sessions::Column::UserId,
    sessions::Column::Data,
    sessions::Column::CreatedAt,
    sessions::Column::LastSeenAt,
    sessions::Column::ExpiresAt,
];

/// The row of a new session: `record`, its data as [`encode`] wrote it, created and last
/// seen at `now`.
fn new_row(
    backend: DbBackend,
    record: &Record,
    data: &str,
    now: OffsetDateTime,
) -> [SimpleExpr; 6] {
    let now = timestamp::value(backend, now);
    [
        key(&record.id).into(),
        user_id(&record.data).into(),
        data.into(),
        now.clone().into(),
        now.into(),
        timestamp::value(backend, record.expiry_date).into(),
    ]
}

impl OwnedSessions for SqlSessionStore {
    /// One statement: the session row joined with its user's, the owner's credential read
    /// as the user repository stored it.
    async fn load_owned(&self, session_id: &str) -> Result<Option<OwnedSession>, RepositoryError> {
        let row = self
            .load_row(session_id)
            .await
            .map_err(|err| repository_error("load session", &err))?;
        row.map(|row| owned(&row)).transpose()
    }
}

impl UserSessions for SqlSessionStore {
    /// One indexed query on `user_id`; the expiry filter keeps out what the purge has not
    /// reached yet.
    async fn list_user_sessions(&self, user: UserId) -> Result<Vec<SessionInfo>, RepositoryError> {
        let now = timestamp::value(self.db.get_database_backend(), self.clock.now());
        let rows = sessions::Entity::find()
            .filter(sessions::Column::UserId.eq(user.to_string()))
            .filter(sessions::Column::ExpiresAt.gt(now))
            .all(&self.db)
            .await
            .map_err(|err| repository_error("list user sessions", &err))?;
        let mut listed = rows
            .into_iter()
            .map(session_info)
            .collect::<Result<Vec<_>, RepositoryError>>()?;
        session::sort_for_listing(&mut listed);
        Ok(listed)
    }

    /// Only a live session counts: an expired one is gone as far as anyone can tell, purged
    /// or not, so the answer does not depend on when the purge last ran.
    async fn delete_user_session(
        &self,
        user: UserId,
        handle: &SessionHandle,
    ) -> Result<bool, RepositoryError> {
        let deleted = delete_live_of_user(&self.db, user, handle, self.clock.now())
            .await
            .map_err(|err| repository_error("delete user session", &err))?;
        Ok(deleted > 0)
    }

    /// Counts live sessions only, as [`Self::delete_user_session`] does; expired ones are
    /// left to the purge.
    async fn delete_other_user_sessions(
        &self,
        user: UserId,
        keep: &SessionHandle,
    ) -> Result<u64, RepositoryError> {
        let now = timestamp::value(self.db.get_database_backend(), self.clock.now());
        sessions::Entity::delete_many()
            .filter(sessions::Column::UserId.eq(user.to_string()))
            .filter(sessions::Column::Id.ne(keep.as_str()))
            .filter(sessions::Column::ExpiresAt.gt(now))
            .exec(&self.db)
            .await
            .map(|deleted| deleted.rows_affected)
            .map_err(|err| repository_error("delete other user sessions", &err))
    }

    async fn delete_user_sessions(&self, user: UserId) -> Result<u64, RepositoryError> {
        delete_of_user(&self.db, user)
            .await
            .map_err(|err| repository_error("delete user sessions", &err))
    }
}

#[async_trait]
impl SessionStore for SqlSessionStore {
    /// Stores a new session; on an id collision, moves the record to a fresh id rather than
    /// overwrite anyone's session.
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        let data = encode(&record.data)?;
        for _ in 0..CREATE_ATTEMPTS {
            match self.insert(record, &data).await {
                Ok(()) => return Ok(()),
                Err(err) if is_unique_violation(&err) => record.id = Id::default(),
                Err(err) => return Err(session_error("create session", &err)),
            }
        }
        Err(session_store::Error::Backend(format!(
            "create session failed: no free id after {CREATE_ATTEMPTS} attempts"
        )))
    }

    /// Updates a stored session; a session that is gone (logged out, purged) stays gone.
    async fn save(&self, record: &Record) -> session_store::Result<()> {
        let backend_kind = self.db.get_database_backend();
        sessions::Entity::update_many()
            .col_expr(sessions::Column::Data, Expr::value(encode(&record.data)?))
            .col_expr(sessions::Column::UserId, Expr::value(user_id(&record.data)))
            .col_expr(
                sessions::Column::LastSeenAt,
                Expr::value(timestamp::value(backend_kind, self.clock.now())),
            )
            .col_expr(
                sessions::Column::ExpiresAt,
                Expr::value(timestamp::value(backend_kind, record.expiry_date)),
            )
            .filter(sessions::Column::Id.eq(key(&record.id)))
            .exec(&self.db)
            .await
            .map_err(|err| session_error("save session", &err))?;
        Ok(())
    }

    /// The session, unless it is unknown or expired (purged yet or not); its owner comes
    /// with [`OwnedSessions::load_owned`], which the session layer uses.
    async fn load(&self, session_id: &Id) -> session_store::Result<Option<Record>> {
        let row = self
            .load_row(&session_id.to_string())
            .await
            .map_err(|err| session_error("load session", &err))?;
        let Some(row) = row else {
            return Ok(None);
        };
        let owned = owned(&row)
            .map_err(|_| session_store::Error::Decode("a stored session is unreadable".into()))?;
        let data = owned
            .data
            .parse()
            .map_err(|e| session_store::Error::Decode(e.to_string()))?;
        Ok(Some(Record {
            id: *session_id,
            data,
            expiry_date: owned.expires_at,
        }))
    }

    /// Removes the session; removing one that is gone is not an error.
    async fn delete(&self, session_id: &Id) -> session_store::Result<()> {
        sessions::Entity::delete_by_id(key(session_id))
            .exec(&self.db)
            .await
            .map_err(|err| session_error("delete session", &err))?;
        Ok(())
    }
}

/// Deletes every session of `user`, live or expired, on the pool or inside a transaction;
/// returns how many.
pub(crate) async fn delete_of_user(db: &impl ConnectionTrait, user: UserId) -> Result<u64, DbErr> {
    let deleted = sessions::Entity::delete_many()
        .filter(sessions::Column::UserId.eq(user.to_string()))
        .exec(db)
        .await?;
    Ok(deleted.rows_affected)
}

/// Deletes the session `handle` if it is `user`'s and live at `now`; returns how many
/// (0 or 1).
pub(crate) async fn delete_live_of_user(
    db: &impl ConnectionTrait,
    user: UserId,
    handle: &SessionHandle,
    now: OffsetDateTime,
) -> Result<u64, DbErr> {
    let now = timestamp::value(db.get_database_backend(), now);
    let deleted = sessions::Entity::delete_many()
        .filter(sessions::Column::Id.eq(handle.as_str()))
        .filter(sessions::Column::UserId.eq(user.to_string()))
        .filter(sessions::Column::ExpiresAt.gt(now))
        .exec(db)
        .await?;
    Ok(deleted.rows_affected)
}

/// A stored session as listed: its key is its handle, its device is read from its data.
pub(crate) fn session_info(row: sessions::Model) -> Result<SessionInfo, RepositoryError> {
    // serde's message could quote the data: it is left out.
    let data: session::Data = serde_json::from_str(&row.data).map_err(|_| {
        RepositoryError::new("list sessions failed: stored session data is not a JSON object")
    })?;
    Ok(SessionInfo::from_stored(
        SessionHandle::from_trusted(row.id),
        row.created_at,
        row.last_seen_at,
        row.expires_at,
        &data,
    ))
}

/// The primary key of a session: a hash, so the table holds no usable cookie.
fn key(id: &Id) -> String {
    session::storage_key(&id.to_string())
}

/// The logged-in user, kept beside the data so that a user's sessions can be found.
fn user_id(data: &session::Data) -> Option<String> {
    session::user_id(data).map(|user| user.to_string())
}

/// The data as stored: without the owner a login attached, which is the user's row, read
/// afresh at every load.
fn encode(data: &session::Data) -> session_store::Result<String> {
    let mut data = data.clone();
    session::take_owner(&mut data);
    serde_json::to_string(&data)
        .map_err(|_| session_store::Error::Encode("session data is not serializable".to_owned()))
}

/// The statement of `load`: the live session by key, and its user if any. The user id is
/// kept as text beside the session, so the join converts it to the type of `users.id`.
/// [`owned`] reads the columns in this order.
fn load_statement(backend: DbBackend) -> &'static str {
    match backend {
        DbBackend::Postgres => {
            "SELECT s.data, s.expires_at, u.id AS owner_id, u.email, u.username, \
             u.credential, u.created_at, u.email_verified \
             FROM sessions s LEFT JOIN users u ON u.id = CAST(s.user_id AS uuid) \
             WHERE s.id = $1 AND s.expires_at > $2"
        }
        DbBackend::MySql => {
            "SELECT s.data, s.expires_at, u.id AS owner_id, u.email, u.username, \
             u.credential, u.created_at, u.email_verified \
             FROM sessions s LEFT JOIN users u ON u.id = UNHEX(REPLACE(s.user_id, '-', '')) \
             WHERE s.id = ? AND s.expires_at > ?"
        }
        DbBackend::Sqlite => {
            "SELECT s.data, s.expires_at, u.id AS owner_id, u.email, u.username, \
             u.credential, u.created_at, u.email_verified \
             FROM sessions s LEFT JOIN users u ON u.id = unhex(replace(s.user_id, '-', '')) \
             WHERE s.id = ? AND s.expires_at > ?"
        }
    }
}

/// A row of [`load_statement`] as the session and its owner. Columns are read by position,
/// in the statement's order.
fn owned(row: &QueryResult) -> Result<OwnedSession, RepositoryError> {
    let undecodable =
        |_| RepositoryError::new("load session failed: a stored session is unreadable");
    // Read no further here: a request that only reads the session needs its login alone.
    let data = StoredData::from_json(row.try_get_by_index(0).map_err(undecodable)?);
    let expires_at: OffsetDateTime = row.try_get_by_index(1).map_err(undecodable)?;
    let owner_id: Option<uuid::Uuid> = row.try_get_by_index(2).map_err(undecodable)?;
    let owner = match owner_id {
        Some(owner_id) => Some(Owner::from_stored(
            UserId::from_uuid(owner_id),
            row.try_get_by_index(3).map_err(undecodable)?,
            row.try_get_by_index(4).map_err(undecodable)?,
            row.try_get_by_index(6).map_err(undecodable)?,
            Credential::from_trusted(row.try_get_by_index(5).map_err(undecodable)?),
            row.try_get_by_index(7).map_err(undecodable)?,
        )),
        None => None,
    };
    Ok(OwnedSession {
        data,
        expires_at,
        owner,
    })
}

#[cfg(any(test, feature = "bulk"))]
mod bulk;
mod ping;

#[cfg(test)]
mod tests;
