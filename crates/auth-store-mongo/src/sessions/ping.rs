//! The readiness of the MongoDB backend: the server's own `ping` command.

use auth_domain::{readiness::Readiness, RepositoryError};
use bson::doc;

use super::MongoSessionStore;
use crate::error::DriverError;

impl Readiness for MongoSessionStore {
    /// `{ping: 1}` on the sessions' database: a round trip to the server (the driver
    /// selects one, so an unreachable server fails after its selection timeout).
    async fn ping(&self) -> Result<(), RepositoryError> {
        let namespace = self.sessions.namespace();
        self.sessions
            .client()
            .database(&namespace.db)
            .run_command(doc! {"ping": 1})
            .await
            .map(drop)
            .map_err(|err| RepositoryError::new(DriverError::new("ping", &err)))
    }
}
