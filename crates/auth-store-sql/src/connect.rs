//! Opening the connection pool and building the schema.

use std::{num::NonZeroU32, str::FromStr, time::Duration};

use auth_domain::{
    settings::{DefaultValue, Setting},
    DEFAULT_STORAGE_TIMEOUT,
};
use migration::{Migrator, MigratorTrait};
use sea_orm::{
    sqlx::{
        self,
        mysql::{MySqlConnectOptions, MySqlPoolOptions},
        pool::PoolOptions,
        postgres::{PgConnectOptions, PgPoolOptions},
        sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous},
        ConnectOptions as _, Executor as _,
    },
    DatabaseConnection, DbErr, RuntimeErr, SqlxMySqlConnector, SqlxPostgresConnector,
    SqlxSqliteConnector,
};

use crate::sqlite_faults;

/// The database used unless configured otherwise: a SQLite file in the working directory,
/// created if missing, so that a bare `cargo run` needs no database server.
pub const DEFAULT_URL: &str = "sqlite://database.db?mode=rwc";

/// The settings of the SQL stores. The pool size and the timeout are shared with MongoDB's
/// and listed by the app, which picks the backend.
pub const SETTINGS: &[Setting] = &[Setting::new(
    "DATABASE_URL",
    DefaultValue::Text(DEFAULT_URL),
    "the SQL database: sqlite:, postgres:// (or postgresql://) or mysql://",
)];

/// The fewest connections a SQLite file gets, however few cores there are: the former fixed
/// size, under which a write (a login, a renewal) could still leave readers room.
const SQLITE_MIN_CONNECTIONS: NonZeroU32 = NonZeroU32::new(4).unwrap();

/// The fewest connections a PostgreSQL or MySQL pool gets, however few cores there are: the
/// former fixed size.
const SERVER_MIN_CONNECTIONS: NonZeroU32 = NonZeroU32::new(10).unwrap();

/// PostgreSQL or MySQL connections per core of ours (see `server_max_connections`).
const SERVER_CONNECTIONS_PER_CORE: NonZeroU32 = NonZeroU32::new(2).unwrap();

/// Opens a pool on `url` (`sqlite:`, `postgres:` or `mysql:`) of
/// [`default_max_connections`] connections and the default timeout
/// ([`auth_domain::DEFAULT_STORAGE_TIMEOUT`]); see [`connect_with`].
///
/// # Errors
///
/// The URL is malformed or the database cannot be reached.
pub async fn connect(url: &str) -> Result<DatabaseConnection, DbErr> {
    connect_with(url, default_max_connections(url), DEFAULT_STORAGE_TIMEOUT).await
}

/// Opens a pool of at most `max_connections` on `url` (`sqlite:`, `postgres:` or `mysql:`),
/// with statement logging off: statements would carry password hashes and session keys.
///
/// `timeout` bounds the waits the database side controls: for a pooled connection, for a
/// SQLite write lock (the busy timeout), and for a PostgreSQL or MySQL statement (the
/// server's `statement_timeout`, `max_statement_time` on MariaDB, `max_execution_time` on
/// MySQL, which bounds reads only). A server that stops answering altogether (frozen, or
/// cut off with the socket open) enforces nothing: callers bound each operation on their
/// side as well.
///
/// SQLite files are switched to WAL with `synchronous=NORMAL` and foreign keys on, so that
/// concurrent requests wait for the write lock instead of failing with "database is
/// locked". An in-memory SQLite database gets exactly one connection, whatever
/// `max_connections` says, that is never recycled, since the database vanishes with its
/// last connection.
///
/// # Errors
///
/// The URL is malformed or the database cannot be reached.
pub async fn connect_with(
    url: &str,
    max_connections: NonZeroU32,
    timeout: Duration,
) -> Result<DatabaseConnection, DbErr> {
    if url.starts_with("sqlite:") {
        connect_sqlite(url, max_connections, timeout).await
    } else if url.starts_with("mysql:") || url.starts_with("mariadb:") {
        connect_mysql(url, max_connections, timeout).await
    } else {
        connect_postgres(url, max_connections, timeout).await
    }
}

/// The pool settings PostgreSQL and MySQL share.
fn server_pool<DB: sqlx::Database>(
    max_connections: NonZeroU32,
    timeout: Duration,
) -> PoolOptions<DB> {
    PoolOptions::new()
        .max_connections(max_connections.get())
        .min_connections(1)
        // Fail fast rather than pile up requests behind a database that stopped answering.
        .acquire_timeout(timeout)
        .idle_timeout(Duration::from_secs(10 * 60))
        .max_lifetime(Duration::from_secs(30 * 60))
        // sqlx pings every connection it hands out by default: one more round trip per
        // query. A dead connection surfaces as a failed query instead, and the pool
        // replaces it.
        .test_before_acquire(false)
}

async fn connect_postgres(
    url: &str,
    max_connections: NonZeroU32,
    timeout: Duration,
) -> Result<DatabaseConnection, DbErr> {
    // A startup parameter: every connection has it from its first statement on.
    let options = PgConnectOptions::from_str(url)
        .map_err(connection_error)?
        .options([("statement_timeout", timeout.as_millis().to_string())])
        .disable_statement_logging();
    let pool: PgPoolOptions = server_pool(max_connections, timeout);
    let pool = pool.connect_with(options).await.map_err(connection_error)?;
    Ok(SqlxPostgresConnector::from_sqlx_postgres_pool(pool))
}

async fn connect_mysql(
    url: &str,
    max_connections: NonZeroU32,
    timeout: Duration,
) -> Result<DatabaseConnection, DbErr> {
    let options = MySqlConnectOptions::from_str(url)
        .map_err(connection_error)?
        .disable_statement_logging();
    let pool: MySqlPoolOptions = server_pool(max_connections, timeout);
    let pool = pool
        .after_connect(move |connection, _| {
            Box::pin(async move {
                // MariaDB (what we run on) bounds every statement, in seconds; MySQL
                // knows only its own variable, in milliseconds, for reads.
                let mariadb = format!("SET SESSION max_statement_time = {}", timeout.as_secs_f64());
                if connection.execute(mariadb.as_str()).await.is_err() {
                    let mysql = format!("SET SESSION max_execution_time = {}", timeout.as_millis());
                    connection.execute(mysql.as_str()).await?;
                }
                Ok(())
            })
        })
        .connect_with(options)
        .await
        .map_err(connection_error)?;
    Ok(SqlxMySqlConnector::from_sqlx_mysql_pool(pool))
}

/// The pool size [`connect`] gives `url` on this machine: one connection for an in-memory
/// SQLite database, `max(4, cores)` for a SQLite file, `max(10, 2 × cores)` for PostgreSQL
/// or MySQL, where cores is [`std::thread::available_parallelism`] (1 when unknown).
pub fn default_max_connections(url: &str) -> NonZeroU32 {
    let cores = std::thread::available_parallelism().map_or(NonZeroU32::MIN, |n| {
        NonZeroU32::try_from(n).unwrap_or(NonZeroU32::MAX)
    });
    if !url.starts_with("sqlite:") {
        server_max_connections(cores)
    } else if is_in_memory(url) {
        NonZeroU32::MIN
    } else {
        sqlite_max_connections(cores)
    }
}

/// A SQLite file: under WAL readers run in parallel, each on its own connection (and sqlx
/// thread), so reads (every request loads its session) scale with one connection per core;
/// writes take turns on one lock whatever the size, waiting at most the busy timeout.
fn sqlite_max_connections(cores: NonZeroU32) -> NonZeroU32 {
    cores.max(SQLITE_MIN_CONNECTIONS)
}

/// PostgreSQL or MySQL: a statement here is one short round trip, so a connection spends
/// most of its time waiting on the network and the server, and twice our cores keep every
/// worker thread busy. The server's own cores are the real limit, and every instance's pool
/// counts against its `max_connections` (100 on PostgreSQL, 151 on MySQL by default):
/// instances × this size must stay below it, with room for migrations and an operator.
fn server_max_connections(cores: NonZeroU32) -> NonZeroU32 {
    cores
        .saturating_mul(SERVER_CONNECTIONS_PER_CORE)
        .max(SERVER_MIN_CONNECTIONS)
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

async fn connect_sqlite(
    url: &str,
    max_connections: NonZeroU32,
    timeout: Duration,
) -> Result<DatabaseConnection, DbErr> {
    let options = SqliteConnectOptions::from_str(url)
        .map_err(connection_error)?
        .busy_timeout(timeout)
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
            .max_connections(max_connections.get())
            .min_connections(1)
            // A ping per acquire would cost a hop to the connection's worker thread and
            // back on every query; a file database does not drop connections.
            .test_before_acquire(false)
            // A connection opened while the file cannot be written is read-only for life,
            // and one that also opened the WAL index read-only makes every connection of
            // this process that shares it read-only as long as any of them lives: it must
            // take the write lock once or is refused (closed, and the index with it). One
            // that only writes the file read-only is told by a write that writes nothing
            // (before the first migration, the missing table fails it too, harmlessly):
            // it serves the request it was opened for, and is then closed instead of
            // reused, as is every connection opened before the last read-only or I/O
            // error (see `sqlite_faults`).
            .after_connect(|connection, _| {
                Box::pin(async move {
                    connection.execute("BEGIN IMMEDIATE").await?;
                    connection.execute("ROLLBACK").await?;
                    if let Err(error) = connection.execute("DELETE FROM sessions WHERE 1 = 0").await
                    {
                        sqlite_faults::record_sqlx(&error);
                    }
                    Ok(())
                })
            })
            .before_acquire(|_, meta| {
                Box::pin(async move { Ok(sqlite_faults::opened_since_the_last_fault(meta.age)) })
            })
            .acquire_timeout(timeout)
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

    fn n(n: u32) -> NonZeroU32 {
        NonZeroU32::new(n).expect("not zero")
    }

    #[test]
    fn a_sqlite_file_gets_a_connection_per_core_and_at_least_four() {
        assert_eq!(sqlite_max_connections(n(1)), n(4));
        assert_eq!(sqlite_max_connections(n(4)), n(4));
        assert_eq!(sqlite_max_connections(n(16)), n(16));
    }

    #[test]
    fn a_database_server_gets_two_connections_per_core_and_at_least_ten() {
        assert_eq!(server_max_connections(n(1)), n(10));
        assert_eq!(server_max_connections(n(5)), n(10));
        assert_eq!(server_max_connections(n(16)), n(32));
        assert_eq!(server_max_connections(NonZeroU32::MAX), NonZeroU32::MAX);
    }

    #[test]
    fn the_default_follows_the_engine_and_this_machines_cores() {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let cores = u32::try_from(cores).expect("fewer than 4 billion cores");
        let file = default_max_connections("sqlite://database.db?mode=rwc").get();
        assert_eq!(file, cores.max(4));
        let server = default_max_connections("postgres://app@db/auth").get();
        assert_eq!(server, (2 * cores).max(10));
        assert_eq!(default_max_connections("mysql://app@db/auth").get(), server);
        assert_eq!(default_max_connections("sqlite::memory:").get(), 1);
    }
}
