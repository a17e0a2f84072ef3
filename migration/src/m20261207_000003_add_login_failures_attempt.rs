//! #19: each counted attempt carries the random id of the attempt that recorded it. An
//! attempt is now recorded before its password is checked (so that concurrent guesses
//! cannot all pass one count), and withdrawn by this id when it must not count: refused,
//! or succeeded. Failures recorded before this have none, and are never withdrawn.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[derive(DeriveIden)]
enum LoginFailures {
    Table,
    Attempt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(LoginFailures::Table)
                    .add_column(ColumnDef::new(LoginFailures::Attempt).big_integer().null())
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(LoginFailures::Table)
                    .drop_column(LoginFailures::Attempt)
                    .to_owned(),
            )
            .await
    }
}
