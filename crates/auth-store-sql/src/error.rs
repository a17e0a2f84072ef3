//! Database errors, told apart and described without the values they may carry.
//!
//! Driver messages can quote row values (MySQL's "Duplicate entry '…'" and "Incorrect
//! string value: '…'"), which here would be emails, session keys or session data. What
//! leaves this crate names the operation, the error class and the engine's code only.

use sea_orm::{sqlx, DbErr, RuntimeErr};

/// A failed store operation, described safely (see the module docs).
#[derive(Debug, thiserror::Error)]
#[error("{operation} failed: {description}")]
pub(crate) struct StoreError {
    operation: &'static str,
    description: String,
}

impl StoreError {
    /// Describes `err`, raised while doing `operation`.
    pub(crate) fn new(operation: &'static str, err: &DbErr) -> Self {
        Self {
            operation,
            description: describe(err),
        }
    }
}

/// The engine's own error behind `err`, if the engine refused the statement.
pub(crate) fn database_error(err: &DbErr) -> Option<&dyn sqlx::error::DatabaseError> {
    match err {
        DbErr::Exec(RuntimeErr::SqlxError(sqlx::Error::Database(db)))
        | DbErr::Query(RuntimeErr::SqlxError(sqlx::Error::Database(db))) => Some(db.as_ref()),
        _ => None,
    }
}

/// Whether `err` is a violated unique index or primary key.
pub(crate) fn is_unique_violation(err: &DbErr) -> bool {
    database_error(err).is_some_and(|db| db.is_unique_violation())
}

/// A description of `err` that quotes no value.
pub(crate) fn describe(err: &DbErr) -> String {
    match err {
        DbErr::Conn(runtime) | DbErr::Exec(runtime) | DbErr::Query(runtime) => match runtime {
            RuntimeErr::SqlxError(sqlx) => describe_sqlx(sqlx),
            RuntimeErr::Internal(_) => "internal sea-orm error".to_owned(),
        },
        DbErr::ConnectionAcquire(acquire) => acquire.to_string(),
        DbErr::Type(_) | DbErr::Json(_) | DbErr::TryIntoErr { .. } => {
            "a stored value could not be decoded".to_owned()
        }
        _ => "unexpected database error".to_owned(),
    }
}

fn describe_sqlx(err: &sqlx::Error) -> String {
    match err {
        sqlx::Error::Database(db) => format!(
            "database error, {:?}, code {}",
            db.kind(),
            db.code().as_deref().unwrap_or("unknown")
        ),
        sqlx::Error::Io(io) => format!("i/o error: {}", io.kind()),
        sqlx::Error::PoolTimedOut => "timed out waiting for a pooled connection".to_owned(),
        sqlx::Error::PoolClosed => "the connection pool is closed".to_owned(),
        sqlx::Error::Tls(_) => "TLS error".to_owned(),
        sqlx::Error::Protocol(_) => "protocol error".to_owned(),
        sqlx::Error::WorkerCrashed => "the SQLite worker crashed".to_owned(),
        sqlx::Error::Configuration(_) => "invalid connection settings".to_owned(),
        sqlx::Error::ColumnDecode { .. } | sqlx::Error::Decode(_) => {
            "a stored value could not be decoded".to_owned()
        }
        sqlx::Error::RowNotFound => "no row found".to_owned(),
        _ => "driver error".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_description_never_quotes_what_the_driver_said() {
        let err = DbErr::Exec(RuntimeErr::Internal(
            "Duplicate entry 'ada@example.com' for key 'x'".into(),
        ));
        assert_eq!(describe(&err), "internal sea-orm error");
        let err = DbErr::Json("invalid type: string \"secret\"".into());
        assert!(!describe(&err).contains("secret"));
        let err = StoreError::new("load", &DbErr::Custom("the-session-data".into()));
        assert_eq!(err.to_string(), "load failed: unexpected database error");
    }

    #[test]
    fn connection_problems_are_described() {
        let err = DbErr::Conn(RuntimeErr::SqlxError(sqlx::Error::PoolTimedOut));
        assert_eq!(describe(&err), "timed out waiting for a pooled connection");
        assert!(!is_unique_violation(&err));
    }
}
