//! Database errors, told apart and described without the values they may carry.
//!
//! Driver messages can quote row values (MySQL's "Duplicate entry '…'" and "Incorrect
//! string value: '…'"), which here would be emails, session keys or session data. What
//! leaves this crate names the operation, the error class and the engine's code only.

use auth_domain::RepositoryError;
use sea_orm::{sqlx, DbErr, RuntimeErr};
use tower_sessions::session_store;

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

/// The domain's error for `err`, raised while doing `operation`: "unavailable" when
/// [`is_unavailable`] says so, an opaque storage failure otherwise.
pub(crate) fn repository_error(operation: &'static str, err: &DbErr) -> RepositoryError {
    crate::sqlite_faults::record(err);
    let described = StoreError::new(operation, err);
    if is_unavailable(err) {
        RepositoryError::unavailable(described)
    } else {
        RepositoryError::new(described)
    }
}

/// tower-sessions' error for `err`, raised while doing `operation`. Its errors are text
/// only, so unavailability is marked in the text (see `auth_domain::unavailable_message`).
pub(crate) fn session_error(operation: &'static str, err: &DbErr) -> session_store::Error {
    crate::sqlite_faults::record(err);
    let described = StoreError::new(operation, err);
    session_store::Error::Backend(if is_unavailable(err) {
        auth_domain::unavailable_message(described)
    } else {
        described.to_string()
    })
}

/// Whether `err` says the database is out of reach rather than that the statement or the
/// data is wrong: no connection within the timeout, a connection lost, a statement that
/// ran past the statement timeout, a server shutting down, a disk that is full or
/// read-only, a SQLite file locked past the busy timeout. Retrying later may succeed.
pub fn is_unavailable(err: &DbErr) -> bool {
    match err {
        DbErr::ConnectionAcquire(_) => true,
        DbErr::Conn(RuntimeErr::SqlxError(err))
        | DbErr::Exec(RuntimeErr::SqlxError(err))
        | DbErr::Query(RuntimeErr::SqlxError(err)) => sqlx_unavailable(err),
        _ => false,
    }
}

fn sqlx_unavailable(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => engine_unavailable(db.as_ref()),
        _ => false,
    }
}

/// The engines' codes for "out of reach" (see [`is_unavailable`]).
fn engine_unavailable(db: &dyn sqlx::error::DatabaseError) -> bool {
    if let Some(mysql) = db.try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>() {
        // 1969: MariaDB's max_statement_time; 3024: MySQL's max_execution_time;
        // 1205: lock wait timeout; 1040: too many connections; 1053: shutting down;
        // 1021: disk full; 1290, 1836: read-only.
        return matches!(
            mysql.number(),
            1969 | 3024 | 1205 | 1040 | 1053 | 1021 | 1290 | 1836
        );
    }
    let Some(code) = db.code() else {
        return false;
    };
    if db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
        // The extended result code; its low byte is the primary code: BUSY 5, LOCKED 6,
        // NOMEM 7, READONLY 8, IOERR 10, FULL 13, CANTOPEN 14.
        return code
            .parse::<i32>()
            .is_ok_and(|code| matches!(code & 0xff, 5 | 6 | 7 | 8 | 10 | 13 | 14));
    }
    // PostgreSQL's SQLSTATE: class 08 connection exception, class 53 insufficient
    // resources (disk full, too many connections), 57014 statement timeout, 57P01-57P03
    // shutting down or starting up, 25006 read-only transaction (a standby).
    code.starts_with("08")
        || code.starts_with("53")
        || matches!(
            code.as_ref(),
            "57014" | "57P01" | "57P02" | "57P03" | "25006"
        )
}

/// The engine's own error behind `err`, if the engine refused the statement.
pub(crate) fn database_error(err: &DbErr) -> Option<&dyn sqlx::error::DatabaseError> {
    match err {
        DbErr::Exec(RuntimeErr::SqlxError(sqlx::Error::Database(db)))
        | DbErr::Query(RuntimeErr::SqlxError(sqlx::Error::Database(db))) => Some(db.as_ref()),
        _ => None,
    }
}

/// Whether `err` is the engine giving up a transaction so that a concurrent one can go on
/// (a deadlock, or a serialization failure): trying the whole transaction again is the
/// engine's own advice. SQLSTATE 40001 (MySQL and MariaDB report deadlocks so too) and
/// 40P01 (PostgreSQL's deadlock).
pub(crate) fn is_transaction_conflict(err: &DbErr) -> bool {
    database_error(err)
        .and_then(|db| db.code())
        .is_some_and(|code| code == "40001" || code == "40P01")
}

/// Whether `err` is a violated unique index or primary key.
pub(crate) fn is_unique_violation(err: &DbErr) -> bool {
    database_error(err).is_some_and(|db| db.is_unique_violation())
}

/// What a violated unique index is named by (see [`violated`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Violated<'a> {
    /// The index's name (PostgreSQL, MySQL/MariaDB).
    Index(&'a str),
    /// Its columns, as `table.column` joined by `", "` (SQLite).
    Columns(&'a str),
}

/// Reads the violated index from what each engine reports:
/// - PostgreSQL names the constraint (`constraint`, or the message as a fallback):
///   `duplicate key value violates unique constraint "idx_users_email_unique"`;
/// - SQLite names the columns: `UNIQUE constraint failed: users.email`;
/// - MySQL/MariaDB name the key last, after the offending value:
///   `Duplicate entry '…' for key 'idx_users_email_unique'` (MySQL 8 prefixes the table).
pub(crate) fn violated<'a>(constraint: Option<&'a str>, message: &'a str) -> Option<Violated<'a>> {
    if let Some(name) = constraint {
        return Some(Violated::Index(name));
    }
    if let Some(columns) = message.strip_prefix("UNIQUE constraint failed: ") {
        return Some(Violated::Columns(columns));
    }
    // The last occurrence: the value quoted before it is the user's input.
    if let Some((_, key)) = message.rsplit_once(" for key ") {
        let key = key.trim().trim_matches(|c| c == '\'' || c == '`');
        return Some(Violated::Index(key.rsplit('.').next().unwrap_or(key)));
    }
    if let Some((_, rest)) = message.rsplit_once("unique constraint \"") {
        return Some(Violated::Index(rest.split('"').next().unwrap_or(rest)));
    }
    None
}

/// Whether `err` is a violation of the unique index `index`, on the single column
/// `column` (`table.column`, by which SQLite names it).
pub(crate) fn violates(err: &DbErr, index: &str, column: &str) -> bool {
    database_error(err)
        .filter(|db| db.is_unique_violation())
        .and_then(|db| match violated(db.constraint(), db.message())? {
            Violated::Index(name) => Some(name == index),
            Violated::Columns(columns) => Some(columns.trim() == column),
        })
        .unwrap_or(false)
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
    fn an_unreachable_database_is_unavailable_and_a_bad_row_is_not() {
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        for err in [
            DbErr::Conn(RuntimeErr::SqlxError(sqlx::Error::PoolTimedOut)),
            DbErr::Query(RuntimeErr::SqlxError(sqlx::Error::Io(refused))),
            DbErr::ConnectionAcquire(sea_orm::error::ConnAcquireErr::Timeout),
        ] {
            assert!(is_unavailable(&err), "{err}");
            assert!(repository_error("load", &err).is_unavailable());
            let session = session_error("load", &err);
            assert!(auth_domain::is_unavailable(&session), "{session}");
        }
        let bad_row = DbErr::Type("a stored value".into());
        assert!(!is_unavailable(&bad_row));
        assert!(!repository_error("load", &bad_row).is_unavailable());
        assert!(!auth_domain::is_unavailable(&session_error(
            "load", &bad_row
        )));
    }

    #[test]
    fn connection_problems_are_described() {
        let err = DbErr::Conn(RuntimeErr::SqlxError(sqlx::Error::PoolTimedOut));
        assert_eq!(describe(&err), "timed out waiting for a pooled connection");
        assert!(!is_unique_violation(&err));
    }
}
