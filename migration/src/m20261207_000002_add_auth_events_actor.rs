//! #18: who acted on each audit event (`user`, `admin` or `system`,
//! `auth_domain::audit::Actor`) and the id of the HTTP request that caused it. Events
//! recorded before this were all a user's own requests: they read as `user`, with no
//! request id.

use sea_orm_migration::{prelude::*, sea_orm::DbBackend};

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[derive(DeriveIden)]
enum AuthEvents {
    Table,
    Actor,
    RequestId,
}

/// The longest actor name.
const ACTOR_CHARS: u32 = 16;

/// `auth_domain::audit::MAX_REQUEST_ID_CHARS`.
const REQUEST_ID_CHARS: u32 = 64;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let backend = manager.get_database_backend();
        // One column per statement: SQLite alters one thing at a time.
        manager
            .alter_table(
                Table::alter()
                    .table(AuthEvents::Table)
                    .add_column(
                        ascii(backend, AuthEvents::Actor, ACTOR_CHARS)
                            .not_null()
                            .default("user"),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(AuthEvents::Table)
                    .add_column(ascii(backend, AuthEvents::RequestId, REQUEST_ID_CHARS).null())
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in [AuthEvents::RequestId, AuthEvents::Actor] {
            manager
                .alter_table(
                    Table::alter()
                        .table(AuthEvents::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}

/// Short ASCII text, as the other keys of `auth_events` are on MySQL (one byte per
/// character, compared byte for byte). Migrations are frozen once released, so each
/// states its column types itself rather than share a helper that could change under it.
fn ascii(backend: DbBackend, name: impl IntoIden, chars: u32) -> ColumnDef {
    let mut column = ColumnDef::new(name);
    if backend == DbBackend::MySql {
        column.custom(Alias::new(format!(
            "varchar({chars}) CHARACTER SET ascii COLLATE ascii_bin"
        )));
    } else {
        column.string_len(chars);
    }
    column
}
