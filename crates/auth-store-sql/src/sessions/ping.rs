//! The readiness of the SQL backend, asked through the sessions table.

use auth_domain::{readiness::Readiness, RepositoryError};
use sea_orm::{ConnectionTrait, DbBackend, DbErr, Statement};

use super::SqlSessionStore;
use crate::{error::StoreError, sqlite_faults};

impl Readiness for SqlSessionStore {
    /// Ready when the sessions table can be read and written:
    /// - `SELECT 1 FROM sessions LIMIT 1`: a bare `SELECT 1` would not prove that SQLite
    ///   can still read its file (it answers from the connection), nor that the schema is
    ///   there;
    /// - `DELETE FROM sessions WHERE 1 = 0`: takes the write lock and writes nothing, so it
    ///   fails on a connection or a server that can only read (a read-only SQLite file, a
    ///   PostgreSQL standby, a MySQL `read_only` server) without a byte of user data
    ///   written per probe;
    /// - on SQLite, no write refused for want of a writable file (read-only, I/O error, full
    ///   disk) within [`sqlite_faults::READINESS_WINDOW`]: a full disk still takes the lock.
    async fn ping(&self) -> Result<(), RepositoryError> {
        let backend = self.db.get_database_backend();
        let failed = |err: DbErr| {
            sqlite_faults::record(&err);
            RepositoryError::new(StoreError::new("ping", &err))
        };
        self.db
            .query_all(Statement::from_string(
                backend,
                "SELECT 1 FROM sessions LIMIT 1",
            ))
            .await
            .map_err(failed)?;
        self.db
            .execute(Statement::from_string(
                backend,
                "DELETE FROM sessions WHERE 1 = 0",
            ))
            .await
            .map_err(failed)?;
        if backend == DbBackend::Sqlite && sqlite_faults::writes_failed_lately() {
            return Err(RepositoryError::new(format!(
                "ping: SQLite refused a write for want of a writable file within the last {}s",
                sqlite_faults::READINESS_WINDOW.as_secs()
            )));
        }
        Ok(())
    }
}
