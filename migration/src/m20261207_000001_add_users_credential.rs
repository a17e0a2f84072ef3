//! #17: each user's credential beside their password hash: the hex SHA-256 of the hash
//! (`auth_domain::session::Credential`), which every session load compares with the one its
//! login was made with. Stored, it is computed once per password change instead of once
//! per request. Existing users get theirs computed here.

use sea_orm_migration::{
    prelude::*,
    sea_orm::{DbBackend, Statement},
};
use sha2::{Digest as _, Sha256};

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[derive(DeriveIden)]
enum Users {
    Table,
    Credential,
}

/// A hex SHA-256 digest.
const CREDENTIAL_CHARS: u32 = 64;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let backend = manager.get_database_backend();
        // The empty default only lets the column be added to existing rows, which are
        // filled in below; the user repository writes a credential with every hash. A row
        // left empty matches no session's credential: its sessions end, none is accepted.
        manager
            .alter_table(
                Table::alter()
                    .table(Users::Table)
                    .add_column(
                        ascii_key(backend, Users::Credential, CREDENTIAL_CHARS)
                            .not_null()
                            .default(""),
                    )
                    .to_owned(),
            )
            .await?;
        backfill(manager).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Users::Table)
                    .drop_column(Users::Credential)
                    .to_owned(),
            )
            .await
    }
}

/// Computes the credential of every user who has none yet, one row at a time: it runs
/// once, on tables of the size a deployment that predates the column can have.
async fn backfill(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    let db = manager.get_connection();
    let backend = manager.get_database_backend();
    let placeholders = match backend {
        DbBackend::Postgres => ("$1", "$2"),
        DbBackend::MySql | DbBackend::Sqlite => ("?", "?"),
    };
    let rows = db
        .query_all(Statement::from_string(
            backend,
            "SELECT id, password_hash FROM users WHERE credential = ''",
        ))
        .await?;
    for row in rows {
        let id: sea_orm_migration::sea_orm::prelude::Uuid = row.try_get_by_index(0)?;
        let hash: String = row.try_get_by_index(1)?;
        db.execute(Statement::from_sql_and_values(
            backend,
            format!(
                "UPDATE users SET credential = {} WHERE id = {}",
                placeholders.0, placeholders.1
            ),
            [credential(&hash).into(), id.into()],
        ))
        .await?;
    }
    Ok(())
}

/// `auth_domain::session::Credential::of`, repeated: a migration owns what it writes.
fn credential(password_hash: &str) -> String {
    Sha256::digest(password_hash.as_bytes())
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// ASCII text compared byte for byte (as `login_failures.key`).
fn ascii_key(backend: DbBackend, name: impl IntoIden, chars: u32) -> ColumnDef {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_credential_is_the_hex_sha256_of_the_hash() {
        // printf %s '$argon2id$x' | sha256sum
        assert_eq!(
            credential("$argon2id$x"),
            "35af7f470575d37ce15251a62436add2e5c905d5c617fa904aad82ef55d9c8c1"
        );
    }
}
