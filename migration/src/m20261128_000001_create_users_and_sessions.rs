//! The first schema: users with unique email and username, and server-side sessions.

use sea_orm_migration::{prelude::*, sea_orm::DbBackend};

use crate::names::{
    SESSIONS_EXPIRES_AT, SESSIONS_USER_ID, USERS_EMAIL_UNIQUE, USERS_USERNAME_UNIQUE,
};

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
    Email,
    Username,
    PasswordHash,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Sessions {
    Table,
    Id,
    UserId,
    Data,
    CreatedAt,
    LastSeenAt,
    ExpiresAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let backend = manager.get_database_backend();

        manager
            .create_table(
                table(backend, Users::Table)
                    .col(ColumnDef::new(Users::Id).uuid().not_null().primary_key())
                    .col(exact_text(backend, Users::Email, Some(254)).not_null())
                    .col(exact_text(backend, Users::Username, Some(254)).not_null())
                    .col(exact_text(backend, Users::PasswordHash, None).not_null())
                    .col(timestamp(backend, Users::CreatedAt).not_null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name(USERS_EMAIL_UNIQUE)
                    .table(Users::Table)
                    .col(Users::Email)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name(USERS_USERNAME_UNIQUE)
                    .table(Users::Table)
                    .col(Users::Username)
                    .unique()
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                table(backend, Sessions::Table)
                    .col(
                        ascii_key(backend, Sessions::Id, 64)
                            .not_null()
                            .primary_key(),
                    )
                    .col(ascii_key(backend, Sessions::UserId, 36).null())
                    .col(large_text(backend, Sessions::Data).not_null())
                    .col(timestamp(backend, Sessions::CreatedAt).not_null())
                    .col(timestamp(backend, Sessions::LastSeenAt).not_null())
                    .col(timestamp(backend, Sessions::ExpiresAt).not_null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name(SESSIONS_USER_ID)
                    .table(Sessions::Table)
                    .col(Sessions::UserId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name(SESSIONS_EXPIRES_AT)
                    .table(Sessions::Table)
                    .col(Sessions::ExpiresAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Sessions::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(Users::Table).to_owned())
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

/// A string compared byte for byte. MySQL's default collations ignore case and accents
/// (`a` = `á`, `ß` = `ss`), which would make the unique indexes refuse distinct values and
/// a compare-and-set match a different hash; the collation goes into the type because
/// MySQL only accepts `CHARACTER SET` right after it.
fn exact_text(backend: DbBackend, name: impl IntoIden, max_chars: Option<u32>) -> ColumnDef {
    let mut column = ColumnDef::new(name);
    match (backend, max_chars) {
        (DbBackend::MySql, Some(n)) => column.custom(Alias::new(format!(
            "varchar({n}) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"
        ))),
        (DbBackend::MySql, None) => {
            column.custom(Alias::new("text CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"))
        }
        (_, Some(n)) => column.string_len(n),
        (_, None) => column.text(),
    };
    column
}

/// A short ASCII key (a hex digest, a UUID string), compared byte for byte; ASCII keeps
/// MySQL's index entries at one byte per character.
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

/// Text of any reasonable size; MySQL's `text` stops at 64 KiB.
fn large_text(backend: DbBackend, name: impl IntoIden) -> ColumnDef {
    let mut column = ColumnDef::new(name);
    if backend == DbBackend::MySql {
        column.custom(Alias::new(
            "mediumtext CHARACTER SET utf8mb4 COLLATE utf8mb4_bin",
        ));
    } else {
        column.text();
    }
    column
}

/// A UTC instant with microseconds. sea-query maps `timestamp_with_time_zone` to MySQL's
/// `timestamp`, which keeps whole seconds only, ends in 2038 and may get an implicit
/// `ON UPDATE CURRENT_TIMESTAMP`; `datetime(6)` has none of these (the driver writes and
/// reads it as UTC).
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

    fn users_ddl(backend: DbBackend) -> String {
        let statement = table(backend, Users::Table)
            .col(exact_text(backend, Users::Email, Some(254)).not_null())
            .col(timestamp(backend, Users::CreatedAt).not_null())
            .to_owned();
        match backend {
            DbBackend::MySql => statement.to_string(MysqlQueryBuilder),
            DbBackend::Postgres => statement.to_string(PostgresQueryBuilder),
            DbBackend::Sqlite => statement.to_string(SqliteQueryBuilder),
        }
    }

    #[test]
    fn mysql_columns_compare_bytes_and_keep_microseconds() {
        let ddl = users_ddl(DbBackend::MySql);
        assert!(
            ddl.contains("`email` varchar(254) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL"),
            "{ddl}"
        );
        assert!(ddl.contains("`created_at` datetime(6) NOT NULL"), "{ddl}");
        assert!(ddl.contains("COLLATE=utf8mb4_bin"), "{ddl}");
    }

    #[test]
    fn other_backends_use_their_native_types() {
        let pg = users_ddl(DbBackend::Postgres);
        assert!(pg.contains("\"email\" varchar(254) NOT NULL"), "{pg}");
        assert!(
            pg.contains("\"created_at\" timestamp with time zone NOT NULL"),
            "{pg}"
        );
        assert!(!pg.contains("utf8mb4"), "{pg}");
        let sqlite = users_ddl(DbBackend::Sqlite);
        assert!(!sqlite.contains("utf8mb4"), "{sqlite}");
    }
}
