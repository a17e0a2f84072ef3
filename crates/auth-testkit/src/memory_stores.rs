//! The memory backend's [`Stores`]: the in-memory stores of [`crate::memory`],
//! [`crate::memory_audit`] and [`crate::memory_admin`], sharing one state and one clock,
//! for tests of the layers above the stores that need no database.

use std::time::Duration;

use auth_domain::{clock::Clock, Stores};

use crate::{
    memory::{MemorySessionStore, MemoryUserRepository},
    memory_admin::MemoryAdministration,
    memory_audit::{MemoryAuditLog, MemoryFailureCounter},
};

/// Every in-memory store, on one state: a session loads with its owner from these users,
/// and the operator's view shows all of them.
#[derive(Debug, Clone)]
pub struct MemoryStores {
    users: MemoryUserRepository,
    sessions: MemorySessionStore,
    failures: MemoryFailureCounter,
    audit: MemoryAuditLog,
    admin: MemoryAdministration,
}

impl MemoryStores {
    /// Empty stores, on `clock`.
    pub fn new(clock: Clock) -> Self {
        let users = MemoryUserRepository::new();
        let sessions = MemorySessionStore::with_users(users.clone()).with_clock(clock);
        let audit = MemoryAuditLog::new();
        Self {
            admin: MemoryAdministration::new(&users, &sessions, &audit),
            users,
            sessions,
            failures: MemoryFailureCounter::new(),
            audit,
        }
    }
}

impl Default for MemoryStores {
    fn default() -> Self {
        Self::new(Clock::system())
    }
}

impl Stores for MemoryStores {
    type Users = MemoryUserRepository;
    type Sessions = MemorySessionStore;
    type Failures = MemoryFailureCounter;
    type Audit = MemoryAuditLog;
    type Admin = MemoryAdministration;

    fn users(&self) -> &MemoryUserRepository {
        &self.users
    }

    fn sessions(&self) -> &MemorySessionStore {
        &self.sessions
    }

    fn failures(&self) -> &MemoryFailureCounter {
        &self.failures
    }

    fn audit(&self) -> &MemoryAuditLog {
        &self.audit
    }

    fn admin(&self) -> &MemoryAdministration {
        &self.admin
    }

    /// Nothing to close: the state goes with the last clone.
    async fn close(self, _timeout: Duration) {}
}
