//! The in-memory session store is always ready: there is no database to lose.

use auth_domain::{readiness::Readiness, RepositoryError};

use crate::memory::MemorySessionStore;

impl Readiness for MemorySessionStore {
    async fn ping(&self) -> Result<(), RepositoryError> {
        Ok(())
    }
}
