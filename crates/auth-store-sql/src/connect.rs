//! Opening the connection pool and building the schema.

use std::{str::FromStr, time::Duration};

use migration::{Migrator, MigratorTrait};
use sea_orm::{
    sqlx::{
        self,
        sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous},
        ConnectOptions as _,
    },
    ConnectOptions, Database, DatabaseConnection, DbErr, RuntimeErr, SqlxSqliteConnector,
};

/// How long a SQLite statement waits for another connection's write lock before failing.
pub const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Connections to a SQLite file. WAL lets readers run beside the one writer SQLite allows,
/// so a few connections keep reads (every request loads its session) from queueing behind
/// a write; more would only add writers waiting on the same lock.
pub const SQLITE_MAX_CONNECTIONS: u32 = 4;

/// Connections to PostgreSQL or MySQL per process. Every statement here is one short
/// round trip and password hashing (the slow part of a login) holds no connection, so ten
/// serve a busy instance while leaving a default `max_connections` of 100 (PostgreSQL) or
/// 151 (MySQL) room for several instances, migrations and an operator's shell.
pub const SERVER_MAX_CONNECTIONS: u32 = 10;

/// How long a request waits for a free connection before it fails (fail fast rather than
/// pile up requests behind a database that stopped answering).
pub const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// Opens a pool on `url` (`sqlite:`, `postgres:` or `mysql:`), with statement logging off:
/// statements would carry password hashes and session keys.
///
/// SQLite files are switched to WAL with `synchronous=NORMAL`, a busy timeout of
/// [`SQLITE_BUSY_TIMEOUT`] and foreign keys on, so that concurrent requests wait for the
/// write lock instead of failing with "database is locked". An in-memory SQLite database
/// gets exactly one connection that is never recycled, since it vanishes with its last
/// connection.
///
/// # Errors
///
/// The URL is malformed or the database cannot be reached.
pub async fn connect(url: &str) -> Result<DatabaseConnection, DbErr> {
    if url.starts_with("sqlite:") {
        connect_sqlite(url).await
    } else {
        let mut options = ConnectOptions::new(url);
        options
            .max_connections(SERVER_MAX_CONNECTIONS)
            .min_connections(1)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .idle_timeout(Duration::from_secs(10 * 60))
            .max_lifetime(Duration::from_secs(30 * 60))
            // sqlx pings every connection it hands out by default: one more round trip per
            // query. A dead connection surfaces as a failed query instead, and the pool
            // replaces it.
            .test_before_acquire(false)
            .sqlx_logging(false);
        Database::connect(options).await
    }
}

/// Builds or upgrades the schema by running every pending migration; running it again
/// changes nothing. The app calls it at start-up and `cargo xtask install` calls it too.
///
/// # Errors
///
/// A migration failed; the database is left as the failing migration found it on engines
/// with transactional DDL (SQLite, PostgreSQL).
pub async fn install(db: &DatabaseConnection) -> Result<(), DbErr> {
    Migrator::up(db, None).await
}

async fn connect_sqlite(url: &str) -> Result<DatabaseConnection, DbErr> {
    let options = SqliteConnectOptions::from_str(url)
        .map_err(connection_error)?
        .busy_timeout(SQLITE_BUSY_TIMEOUT)
        .foreign_keys(true)
        .disable_statement_logging();
    // The pool is built here rather than through sea-orm's ConnectOptions, which cannot
    // turn off sqlx's idle and lifetime recycling that would silently drop an in-memory
    // database.
    let pool = if is_in_memory(url) {
        SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(options)
            .await
    } else {
        SqlitePoolOptions::new()
            .max_connections(SQLITE_MAX_CONNECTIONS)
            .min_connections(1)
            // A ping per acquire would cost a hop to the connection's worker thread and
            // back on every query; a file database does not drop connections.
            .test_before_acquire(false)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(
                options
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Normal),
            )
            .await
    }
    .map_err(connection_error)?;
    Ok(SqlxSqliteConnector::from_sqlx_sqlite_pool(pool))
}

fn connection_error(err: sqlx::Error) -> DbErr {
    DbErr::Conn(RuntimeErr::SqlxError(err))
}

/// Whether a `sqlite:` URL names a database that lives only as long as its connections:
/// `:memory:`, `mode=memory`, or no file name at all (a private temporary database).
fn is_in_memory(url: &str) -> bool {
    let rest = url.trim_start_matches("sqlite:");
    let rest = rest.strip_prefix("//").unwrap_or(rest);
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    path.is_empty()
        || path == ":memory:"
        || query
            .split('&')
            .any(|pair| pair.eq_ignore_ascii_case("mode=memory"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_memory_sqlite_urls_are_recognised() {
        for url in [
            "sqlite::memory:",
            "sqlite://:memory:",
            "sqlite://?mode=memory",
            "sqlite:shared?mode=memory&cache=shared",
            "sqlite://",
        ] {
            assert!(is_in_memory(url), "{url}");
        }
    }

    #[test]
    fn sqlite_files_are_not_in_memory() {
        for url in [
            "sqlite://database.db?mode=rwc",
            "sqlite:database.db",
            "sqlite:///tmp/auth.db?mode=rwc",
        ] {
            assert!(!is_in_memory(url), "{url}");
        }
    }
}
