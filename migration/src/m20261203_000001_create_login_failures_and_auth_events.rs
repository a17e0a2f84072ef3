//! Abuse resistance and the audit trail (#9): failed attempts counted per throttle key,
//! and the events of every account.
//!
//! The column helpers below repeat those of the first migration on purpose: a migration
//! is frozen once released, so it owns the exact types it creates rather than sharing
//! helpers that a later migration might change.

use sea_orm_migration::{prelude::*, sea_orm::DbBackend};

use crate::names::{
    AUTH_EVENTS_AT, AUTH_EVENTS_USER_ID_AT, LOGIN_FAILURES_AT, LOGIN_FAILURES_KEY_AT,
};

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[derive(DeriveIden)]
enum LoginFailures {
    Table,
    Id,
    Key,
    At,
}

#[derive(DeriveIden)]
enum AuthEvents {
    Table,
    Id,
    At,
    Kind,
    UserId,
    Ip,
    UserAgent,
}

/// A throttle key: the hex SHA-256 of what it counts (`auth_domain::throttle::ThrottleKey`).
const KEY_CHARS: u32 = 64;

/// The longest event kind name is 22 characters (`other_sessions_revoked`); room to grow.
const KIND_CHARS: u32 = 32;

/// The longest textual IP address: an IPv6 address with an embedded IPv4 one.
const IP_CHARS: u32 = 45;

/// `auth_domain::session::MAX_USER_AGENT_CHARS`: the domain cuts every User-Agent to it.
const USER_AGENT_CHARS: u32 = 256;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let backend = manager.get_database_backend();

        // One row per failure, so that a window is a range over `at`; a surrogate key
        // because the same key fails more than once within a microsecond under load.
        manager
            .create_table(
                table(backend, LoginFailures::Table)
                    .col(
                        ColumnDef::new(LoginFailures::Id)
                            .big_integer()
                            .not_null()
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(ascii_key(backend, LoginFailures::Key, KEY_CHARS).not_null())
                    .col(timestamp(backend, LoginFailures::At).not_null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name(LOGIN_FAILURES_KEY_AT)
                    .table(LoginFailures::Table)
                    .col(LoginFailures::Key)
                    .col(LoginFailures::At)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name(LOGIN_FAILURES_AT)
                    .table(LoginFailures::Table)
                    .col(LoginFailures::At)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                table(backend, AuthEvents::Table)
                    .col(
                        ColumnDef::new(AuthEvents::Id)
                            .uuid()
                            .not_null()
                            .primary_key(),
                    )
                    .col(timestamp(backend, AuthEvents::At).not_null())
                    .col(ascii_key(backend, AuthEvents::Kind, KIND_CHARS).not_null())
                    // The type of `users.id`, without a foreign key: the trail outlives a
                    // deleted account (its `account_deleted` event above all).
                    .col(ColumnDef::new(AuthEvents::UserId).uuid().null())
                    .col(ascii_key(backend, AuthEvents::Ip, IP_CHARS).null())
                    .col(exact_text(backend, AuthEvents::UserAgent, USER_AGENT_CHARS).null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name(AUTH_EVENTS_USER_ID_AT)
                    .table(AuthEvents::Table)
                    .col(AuthEvents::UserId)
                    .col(AuthEvents::At)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name(AUTH_EVENTS_AT)
                    .table(AuthEvents::Table)
                    .col(AuthEvents::At)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(AuthEvents::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(LoginFailures::Table).to_owned())
            .await
    }
}

/// A table statement; on MySQL pinned to InnoDB and utf8mb4 with a binary collation, so
/// that no column silently falls back to a case- and accent-insensitive default.
fn table(backend: DbBackend, name: impl IntoIden + 'static) -> TableCreateStatement {
    let mut table = Table::create();
    table.table(name);
    if backend == DbBackend::MySql {
        table
            .engine("InnoDB")
            .character_set("utf8mb4")
            .collate("utf8mb4_bin");
    }
    table
}

/// Text of at most `max_chars` characters, compared byte for byte; the collation goes into
/// the type because MySQL only accepts `CHARACTER SET` right after it.
fn exact_text(backend: DbBackend, name: impl IntoIden, max_chars: u32) -> ColumnDef {
    let mut column = ColumnDef::new(name);
    if backend == DbBackend::MySql {
        column.custom(Alias::new(format!(
            "varchar({max_chars}) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"
        )));
    } else {
        column.string_len(max_chars);
    }
    column
}

/// A short ASCII string (a hex digest, a kind name, an address), compared byte for byte;
/// ASCII keeps MySQL's index entries at one byte per character.
fn ascii_key(backend: DbBackend, name: impl IntoIden, chars: u32) -> ColumnDef {
    let mut column = ColumnDef::new(name);
    if backend == DbBackend::MySql {
        column.custom(Alias::new(format!(
            "varchar({chars}) CHARACTER SET ascii COLLATE ascii_bin"
        )));
    } else {
        // varchar, not char: PostgreSQL only uses a bpchar index for bpchar parameters.
        column.string_len(chars);
    }
    column
}

/// A UTC instant with microseconds: `datetime(6)` on MySQL, whose `timestamp` keeps whole
/// seconds and ends in 2038.
fn timestamp(backend: DbBackend, name: impl IntoIden) -> ColumnDef {
    let mut column = ColumnDef::new(name);
    if backend == DbBackend::MySql {
        column.custom(Alias::new("datetime(6)"));
    } else {
        column.timestamp_with_time_zone();
    }
    column
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failures_ddl(backend: DbBackend) -> String {
        let statement = table(backend, LoginFailures::Table)
            .col(
                ColumnDef::new(LoginFailures::Id)
                    .big_integer()
                    .not_null()
                    .auto_increment()
                    .primary_key(),
            )
            .col(ascii_key(backend, LoginFailures::Key, KEY_CHARS).not_null())
            .col(timestamp(backend, LoginFailures::At).not_null())
            .to_owned();
        match backend {
            DbBackend::MySql => statement.to_string(MysqlQueryBuilder),
            DbBackend::Postgres => statement.to_string(PostgresQueryBuilder),
            DbBackend::Sqlite => statement.to_string(SqliteQueryBuilder),
        }
    }

    #[test]
    fn the_failure_id_is_each_engines_own_auto_increment() {
        let sqlite = failures_ddl(DbBackend::Sqlite);
        assert!(
            sqlite.contains("\"id\" integer NOT NULL PRIMARY KEY AUTOINCREMENT"),
            "{sqlite}"
        );
        let pg = failures_ddl(DbBackend::Postgres);
        assert!(pg.contains("\"id\" bigserial NOT NULL PRIMARY KEY"), "{pg}");
        let mysql = failures_ddl(DbBackend::MySql);
        assert!(
            mysql.contains("`id` bigint NOT NULL AUTO_INCREMENT PRIMARY KEY"),
            "{mysql}"
        );
    }

    #[test]
    fn mysql_keys_are_ascii_and_instants_keep_microseconds() {
        let mysql = failures_ddl(DbBackend::MySql);
        assert!(
            mysql.contains("`key` varchar(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL"),
            "{mysql}"
        );
        assert!(mysql.contains("`at` datetime(6) NOT NULL"), "{mysql}");
        let pg = failures_ddl(DbBackend::Postgres);
        assert!(
            pg.contains("\"at\" timestamp with time zone NOT NULL"),
            "{pg}"
        );
    }
}
