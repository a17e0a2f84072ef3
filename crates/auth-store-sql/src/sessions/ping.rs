//! The readiness of the SQL backend, asked through the sessions table.

use auth_domain::{readiness::Readiness, RepositoryError};
use sea_orm::{ConnectionTrait, Statement};

use super::SqlSessionStore;
use crate::error::StoreError;

impl Readiness for SqlSessionStore {
    /// `SELECT 1 FROM sessions LIMIT 1`: a bare `SELECT 1` would not prove that SQLite can
    /// still read its file (it answers from the connection), nor that the schema is there.
    async fn ping(&self) -> Result<(), RepositoryError> {
        let statement = Statement::from_string(
            self.db.get_database_backend(),
            "SELECT 1 FROM sessions LIMIT 1",
        );
        self.db
            .query_all(statement)
            .await
            .map(drop)
            .map_err(|err| RepositoryError::new(StoreError::new("ping", &err)))
    }
}
