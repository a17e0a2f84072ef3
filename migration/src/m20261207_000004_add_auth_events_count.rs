//! #19: how many attempts one audit event stands for. Repeated throttled logins of one
//! account from one client are recorded as one event per window with their count, so a
//! client replaying a refused request cannot grow the trail without limit. Events stored
//! before this stand for one.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[derive(DeriveIden)]
enum AuthEvents {
    Table,
    Count,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(AuthEvents::Table)
                    .add_column(
                        ColumnDef::new(AuthEvents::Count)
                            .integer()
                            .not_null()
                            .default(1),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(AuthEvents::Table)
                    .drop_column(AuthEvents::Count)
                    .to_owned(),
            )
            .await
    }
}
