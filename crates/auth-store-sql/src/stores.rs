//! The SQL backend's [`Stores`]: every store on one pool.

use std::time::Duration;

use auth_domain::{
    clock::Clock,
    work::{CommitError, Work},
    Stores,
};
use sea_orm::DatabaseConnection;

use crate::{
    SqlAdministration, SqlAuditLog, SqlChallengeStore, SqlFactorStore, SqlFailureCounter,
    SqlOutbox, SqlSessionStore, SqlTokenStore, SqlUserRepository,
};

/// Every store of the SQL backend, on one pool (see [`crate::connect`]), telling expired
/// sessions by one clock.
#[derive(Debug, Clone)]
pub struct SqlStores {
    db: DatabaseConnection,
    users: SqlUserRepository,
    sessions: SqlSessionStore,
    failures: SqlFailureCounter,
    audit: SqlAuditLog,
    admin: SqlAdministration,
    tokens: SqlTokenStore,
    outbox: SqlOutbox,
    factors: SqlFactorStore,
    challenges: SqlChallengeStore,
}

impl SqlStores {
    /// The stores on `db`, on `clock`.
    pub fn new(db: DatabaseConnection, clock: Clock) -> Self {
        Self {
            users: SqlUserRepository::new(db.clone()),
            sessions: SqlSessionStore::new(db.clone()).with_clock(clock.clone()),
            failures: SqlFailureCounter::new(db.clone()),
            audit: SqlAuditLog::new(db.clone()),
            admin: SqlAdministration::new(db.clone()).with_clock(clock),
            tokens: SqlTokenStore::new(db.clone()),
            outbox: SqlOutbox::new(db.clone()),
            factors: SqlFactorStore::new(db.clone()),
            challenges: SqlChallengeStore::new(db.clone()),
            db,
        }
    }

    /// The pool.
    pub fn db(&self) -> &DatabaseConnection {
        &self.db
    }
}

impl Stores for SqlStores {
    type Users = SqlUserRepository;
    type Sessions = SqlSessionStore;
    type Failures = SqlFailureCounter;
    type Audit = SqlAuditLog;
    type Admin = SqlAdministration;
    type Tokens = SqlTokenStore;
    type Outbox = SqlOutbox;
    type Factors = SqlFactorStore;
    type Challenges = SqlChallengeStore;

    fn users(&self) -> &SqlUserRepository {
        &self.users
    }

    fn sessions(&self) -> &SqlSessionStore {
        &self.sessions
    }

    fn failures(&self) -> &SqlFailureCounter {
        &self.failures
    }

    fn audit(&self) -> &SqlAuditLog {
        &self.audit
    }

    fn admin(&self) -> &SqlAdministration {
        &self.admin
    }

    fn tokens(&self) -> &SqlTokenStore {
        &self.tokens
    }

    fn outbox(&self) -> &SqlOutbox {
        &self.outbox
    }

    fn factors(&self) -> &SqlFactorStore {
        &self.factors
    }

    fn challenges(&self) -> &SqlChallengeStore {
        &self.challenges
    }

    /// One transaction: every change or none (see `commit`'s module).
    async fn commit(&self, work: Work) -> Result<(), CommitError> {
        crate::commit::commit(&self.users, self.sessions.clock(), work).await
    }

    /// A pool that does not close within `timeout` is dropped instead: its server stopped
    /// answering, and the process has answered already.
    async fn close(self, timeout: Duration) {
        match tokio::time::timeout(timeout, self.db.close()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!("closing the SQL connection: {e}"),
            Err(_) => tracing::debug!("the SQL connections did not close within the timeout"),
        }
    }
}
