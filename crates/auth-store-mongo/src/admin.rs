//! The [`Administration`] adapter: the operator's queries across all users.

use std::{cmp::Reverse, fmt};

use auth_domain::{
    admin::{Administration, UserSession},
    audit::AuthEvent,
    clock::Clock,
    session::SessionHandle,
    RepositoryError, User, UserId,
};
use bson::{doc, Bson};
use mongodb::{Collection, Database};

use crate::{
    audit::{fields as event_fields, EventDocument},
    error::DriverError,
    sessions::{fields as session_fields, SessionDocument},
    timestamp,
    users::{fields as user_fields, UserDocument},
    MongoStores,
};

/// Every user, session and event of one database.
#[derive(Clone)]
pub struct MongoAdministration {
    users: Collection<UserDocument>,
    sessions: Collection<SessionDocument>,
    events: Collection<EventDocument>,
    /// What decides whether a session has expired.
    clock: Clock,
}

impl MongoAdministration {
    /// The operator's view of the `users`, `sessions` and `events` collections of `db`.
    pub fn new(db: &Database, users: &str, sessions: &str, events: &str) -> Self {
        Self {
            users: db.collection(users),
            sessions: db.collection(sessions),
            events: db.collection(events),
            clock: Clock::system(),
        }
    }

    /// The operator's view of the collections `stores` work on, sharing their client
    /// and the sessions' clock.
    pub fn of(stores: &MongoStores) -> Self {
        Self {
            users: stores.users.users.clone(),
            sessions: stores.sessions.sessions.clone(),
            events: stores.events.events.clone(),
            clock: stores.sessions.clock.clone(),
        }
    }

    /// The same view, telling expired sessions by `clock`.
    #[must_use]
    pub fn with_clock(self, clock: Clock) -> Self {
        Self { clock, ..self }
    }
}

impl fmt::Debug for MongoAdministration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MongoAdministration")
            .field("users", &self.users.namespace().to_string())
            .field("sessions", &self.sessions.namespace().to_string())
            .field("events", &self.events.namespace().to_string())
            .finish()
    }
}

/// A limit as the driver takes it. Zero means "no limit" to MongoDB, so callers answer it
/// themselves first.
fn driver_limit(limit: u64) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

impl Administration for MongoAdministration {
    /// By `_id`, descending: the UUIDv7's string form orders by creation.
    async fn list_users(&self, limit: u64) -> Result<Vec<User>, RepositoryError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let failed =
            |e: mongodb::error::Error| RepositoryError::new(DriverError::new("list users", &e));
        let mut cursor = self
            .users
            .find(doc! {})
            .sort(doc! { user_fields::ID: -1 })
            .limit(driver_limit(limit))
            .await
            .map_err(failed)?;
        let mut users = Vec::new();
        while cursor.advance().await.map_err(failed)? {
            users.push(User::try_from(
                cursor.deserialize_current().map_err(failed)?,
            )?);
        }
        Ok(users)
    }

    /// In the order of [`auth_domain::session::sort_for_listing`]; the expiry filter keeps
    /// out what the TTL monitor has not removed yet. No index serves this order: a scan of
    /// the live sessions, fine for an operator's occasional look.
    async fn list_sessions(&self, limit: u64) -> Result<Vec<UserSession>, RepositoryError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let failed =
            |e: mongodb::error::Error| RepositoryError::new(DriverError::new("list sessions", &e));
        let mut cursor = self
            .sessions
            .find(doc! {
                session_fields::USER_ID: { "$ne": Bson::Null },
                session_fields::EXPIRES_AT: { "$gt": timestamp::now(&self.clock) },
            })
            .sort(doc! {
                session_fields::LAST_SEEN_AT: -1,
                session_fields::CREATED_AT: -1,
                session_fields::KEY: 1,
            })
            .limit(driver_limit(limit))
            .await
            .map_err(failed)?;
        let mut listed = Vec::new();
        while cursor.advance().await.map_err(failed)? {
            let document: SessionDocument = cursor.deserialize_current().map_err(failed)?;
            let user_id = document
                .user_id
                .as_deref()
                .and_then(|id| id.parse::<UserId>().ok())
                .ok_or_else(|| {
                    RepositoryError::new("list sessions failed: a stored user_id is malformed")
                })?;
            listed.push(UserSession {
                user_id,
                session: document.info()?,
            });
        }
        Ok(listed)
    }

    /// One `findOneAndDelete` of a live, logged-in session: whose it was comes back with
    /// the deletion.
    async fn revoke_session(
        &self,
        handle: &SessionHandle,
    ) -> Result<Option<UserId>, RepositoryError> {
        let deleted = self
            .sessions
            .find_one_and_delete(doc! {
                session_fields::KEY: handle.as_str(),
                session_fields::USER_ID: { "$type": "string" },
                session_fields::EXPIRES_AT: { "$gt": timestamp::now(&self.clock) },
            })
            .await
            .map_err(|e| RepositoryError::new(DriverError::new("revoke session", &e)))?;
        deleted
            .and_then(|document| document.user_id)
            .map(|user| {
                user.parse().map_err(|_| {
                    RepositoryError::new(
                        "revoke session: a stored session names a malformed user id",
                    )
                })
            })
            .transpose()
    }

    /// What the TTL monitor would do within a minute or so, done now, on the TTL index.
    async fn purge_expired_sessions(&self) -> Result<u64, RepositoryError> {
        self.sessions
            .delete_many(
                doc! { session_fields::EXPIRES_AT: { "$lte": timestamp::now(&self.clock) } },
            )
            .await
            .map(|deleted| deleted.deleted_count)
            .map_err(|e| RepositoryError::new(DriverError::new("purge sessions", &e)))
    }

    /// Newest first by the exact instant, then the id. The index on the date `at` (to the
    /// millisecond) gives the candidates in order: reading stops after `limit` events and
    /// whatever shares the last one's millisecond, which are then ordered exactly.
    async fn recent_events(&self, limit: u64) -> Result<Vec<AuthEvent>, RepositoryError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let failed =
            |e: mongodb::error::Error| RepositoryError::new(DriverError::new("list events", &e));
        let mut cursor = self
            .events
            .find(doc! {})
            .sort(doc! { event_fields::AT: -1 })
            .await
            .map_err(failed)?;
        let wanted = usize::try_from(limit).unwrap_or(usize::MAX);
        let mut documents: Vec<EventDocument> = Vec::new();
        let mut last_millisecond = None;
        while cursor.advance().await.map_err(failed)? {
            let document: EventDocument = cursor.deserialize_current().map_err(failed)?;
            if last_millisecond.is_some_and(|last| document.at < last) {
                break;
            }
            if documents.len() + 1 == wanted {
                last_millisecond = Some(document.at);
            }
            documents.push(document);
        }
        let mut events = documents
            .into_iter()
            .map(AuthEvent::try_from)
            .collect::<Result<Vec<_>, _>>()?;
        events.sort_by_key(|event| Reverse((event.at, event.id)));
        events.truncate(wanted);
        Ok(events)
    }
}
