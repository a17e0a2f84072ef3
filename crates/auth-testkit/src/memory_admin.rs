//! An in-memory [`Administration`] over the stores of [`crate::memory`] and
//! [`crate::memory_audit`], with the contract of the real ones (the [`crate::admin`]
//! suite), for tests of the admin commands that need no database.

use std::{cmp::Reverse, collections::HashMap, fmt};

use auth_domain::{
    admin::{Administration, UserSession},
    audit::AuthEvent,
    session::{self, SessionHandle, SessionInfo},
    RepositoryError, User, UserId,
};

use crate::{
    memory::{lock, MemorySessionStore, MemoryUserRepository},
    memory_audit::MemoryAuditLog,
};

/// The operator's view of in-memory stores: it shares their state.
#[derive(Clone)]
pub struct MemoryAdministration {
    users: MemoryUserRepository,
    sessions: MemorySessionStore,
    events: MemoryAuditLog,
}

impl MemoryAdministration {
    /// The view of `users`, `sessions` and `events` (clones share their state).
    pub fn new(
        users: &MemoryUserRepository,
        sessions: &MemorySessionStore,
        events: &MemoryAuditLog,
    ) -> Self {
        Self {
            users: users.clone(),
            sessions: sessions.clone(),
            events: events.clone(),
        }
    }
}

impl fmt::Debug for MemoryAdministration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryAdministration")
            .field("users", &self.users)
            .field("sessions", &self.sessions)
            .field("events", &self.events)
            .finish()
    }
}

/// `limit` as a length.
fn length(limit: u64) -> usize {
    usize::try_from(limit).unwrap_or(usize::MAX)
}

impl Administration for MemoryAdministration {
    async fn list_users(&self, limit: u64) -> Result<Vec<User>, RepositoryError> {
        let mut users: Vec<User> = lock(&self.users.users).by_id.values().cloned().collect();
        users.sort_by_key(|user| Reverse(user.id));
        users.truncate(length(limit));
        Ok(users)
    }

    async fn list_sessions(&self, limit: u64) -> Result<Vec<UserSession>, RepositoryError> {
        let now = self.sessions.clock.now();
        let sessions = lock(&self.sessions.sessions);
        let mut owners = HashMap::new();
        let mut infos: Vec<SessionInfo> = Vec::new();
        for (key, stored) in &sessions.by_key {
            let Some(user) = stored.user.filter(|_| stored.is_live(now)) else {
                continue;
            };
            owners.insert(key.clone(), user);
            infos.push(SessionInfo::from_stored(
                SessionHandle::from_trusted(key.clone()),
                stored.created_at,
                stored.last_seen_at,
                stored.expiry_date,
                &stored.data,
            ));
        }
        session::sort_for_listing(&mut infos);
        infos.truncate(length(limit));
        Ok(infos
            .into_iter()
            .map(|info| UserSession {
                user_id: owners[info.handle.as_str()],
                session: info,
            })
            .collect())
    }

    async fn revoke_session(
        &self,
        handle: &SessionHandle,
    ) -> Result<Option<UserId>, RepositoryError> {
        let now = self.sessions.clock.now();
        let mut sessions = lock(&self.sessions.sessions);
        let owner = sessions
            .by_key
            .get(handle.as_str())
            .filter(|stored| stored.is_live(now))
            .and_then(|stored| stored.user);
        if owner.is_some() {
            sessions.remove(handle.as_str());
        }
        Ok(owner)
    }

    async fn purge_expired_sessions(&self) -> Result<u64, RepositoryError> {
        let now = self.sessions.clock.now();
        let mut sessions = lock(&self.sessions.sessions);
        let expired: Vec<String> = sessions
            .by_key
            .iter()
            .filter(|(_, stored)| !stored.is_live(now))
            .map(|(key, _)| key.clone())
            .collect();
        for key in &expired {
            sessions.remove(key);
        }
        Ok(expired.len() as u64)
    }

    async fn recent_events(&self, limit: u64) -> Result<Vec<AuthEvent>, RepositoryError> {
        let mut events = self.events.events();
        // Newest first; the id (a UUIDv7) orders events of the same microsecond.
        events.sort_by_key(|event| Reverse((event.at, event.id)));
        events.truncate(length(limit));
        Ok(events)
    }
}
