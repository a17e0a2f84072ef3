//! #21: second factors. Each user's TOTP credential (its secret sealed), their recovery
//! codes (keyed digests only), their passkeys, and the WebAuthn ceremonies in flight.
//!
//! Unlike the tokens and the outbox, these rows belong to their user and are deleted with
//! them by a foreign key (`ON DELETE CASCADE`; SQLite enforces it because `connect` turns
//! its foreign keys on): a factor must never outlive its account, whoever deletes it.
//!
//! A credential id is base64url (ASCII) of at most 1023 bytes (WebAuthn Level 3,
//! §5.1.3's credential id limit), so at most 1364 characters. It is stored as is in an
//! ASCII column, compared byte for byte (base64url is case-sensitive), with a unique
//! index on it: on MySQL/MariaDB one byte per character makes the 1364-byte key fit
//! InnoDB's 3072-byte limit (DYNAMIC rows, the default), where utf8mb4 (4 bytes per
//! character) would not; PostgreSQL's B-tree takes up to about 2700 bytes.
//!
//! As in the earlier migrations, the column helpers are this migration's own: it is frozen
//! once released.

use sea_orm_migration::{prelude::*, sea_orm::DbBackend};

use crate::names::{
    PASSKEYS_CREDENTIAL_ID_UNIQUE, PASSKEYS_USER_ID_CREATED_AT, WEBAUTHN_CHALLENGES_EXPIRES_AT,
    WEBAUTHN_CHALLENGES_USER_ID,
};

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum TotpCredentials {
    Table,
    UserId,
    Id,
    SealedSecret,
    Confirmed,
    LastStep,
    CreatedAt,
}

#[derive(DeriveIden)]
enum RecoveryCodes {
    Table,
    UserId,
    Digest,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Passkeys {
    Table,
    Id,
    UserId,
    CredentialId,
    Name,
    Key,
    CreatedAt,
    LastUsedAt,
}

#[derive(DeriveIden)]
enum WebauthnChallenges {
    Table,
    Digest,
    Ceremony,
    UserId,
    State,
    ExpiresAt,
}

/// A hex keyed digest of a recovery code, or a hex SHA-256 of a challenge.
const DIGEST_CHARS: u32 = 64;

/// The longest credential id: 1023 bytes in base64url without padding.
const CREDENTIAL_ID_CHARS: u32 = 1364;

/// A passkey's name, in characters. A longer one fails the write: the use case that takes
/// a name from the user must cap it at this many characters first.
const PASSKEY_NAME_CHARS: u32 = 64;

/// The longest ceremony name is 13 characters (`second_factor`); room to grow.
const CEREMONY_CHARS: u32 = 32;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let backend = manager.get_database_backend();

        // One credential per user: an enrolment in progress, or the confirmed one.
        manager
            .create_table(
                table(backend, TotpCredentials::Table)
                    .col(
                        ColumnDef::new(TotpCredentials::UserId)
                            .uuid()
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(TotpCredentials::Id).uuid().not_null())
                    .col(exact_text(backend, TotpCredentials::SealedSecret).not_null())
                    .col(
                        ColumnDef::new(TotpCredentials::Confirmed)
                            .boolean()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(TotpCredentials::LastStep)
                            .big_integer()
                            .null(),
                    )
                    .col(timestamp(backend, TotpCredentials::CreatedAt).not_null())
                    .foreign_key(&mut owner(
                        "fk_totp_credentials_user_id",
                        TotpCredentials::Table,
                        TotpCredentials::UserId,
                    ))
                    .to_owned(),
            )
            .await?;

        // The key starts with the user: it serves their codes' lookups and the cascade.
        manager
            .create_table(
                table(backend, RecoveryCodes::Table)
                    .col(ColumnDef::new(RecoveryCodes::UserId).uuid().not_null())
                    .col(ascii(backend, RecoveryCodes::Digest, DIGEST_CHARS).not_null())
                    .col(timestamp(backend, RecoveryCodes::CreatedAt).not_null())
                    .primary_key(
                        Index::create()
                            .col(RecoveryCodes::UserId)
                            .col(RecoveryCodes::Digest),
                    )
                    .foreign_key(&mut owner(
                        "fk_recovery_codes_user_id",
                        RecoveryCodes::Table,
                        RecoveryCodes::UserId,
                    ))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                table(backend, Passkeys::Table)
                    .col(ColumnDef::new(Passkeys::Id).uuid().not_null().primary_key())
                    .col(ColumnDef::new(Passkeys::UserId).uuid().not_null())
                    .col(ascii(backend, Passkeys::CredentialId, CREDENTIAL_ID_CHARS).not_null())
                    .col(exact_varchar(backend, Passkeys::Name, PASSKEY_NAME_CHARS).not_null())
                    .col(large_text(backend, Passkeys::Key).not_null())
                    .col(timestamp(backend, Passkeys::CreatedAt).not_null())
                    .col(timestamp(backend, Passkeys::LastUsedAt).null())
                    .foreign_key(&mut owner(
                        "fk_passkeys_user_id",
                        Passkeys::Table,
                        Passkeys::UserId,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name(PASSKEYS_CREDENTIAL_ID_UNIQUE)
                    .table(Passkeys::Table)
                    .col(Passkeys::CredentialId)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name(PASSKEYS_USER_ID_CREATED_AT)
                    .table(Passkeys::Table)
                    .col(Passkeys::UserId)
                    .col(Passkeys::CreatedAt)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                table(backend, WebauthnChallenges::Table)
                    .col(
                        ascii(backend, WebauthnChallenges::Digest, DIGEST_CHARS)
                            .not_null()
                            .primary_key(),
                    )
                    .col(ascii(backend, WebauthnChallenges::Ceremony, CEREMONY_CHARS).not_null())
                    .col(ColumnDef::new(WebauthnChallenges::UserId).uuid().null())
                    .col(large_text(backend, WebauthnChallenges::State).not_null())
                    .col(timestamp(backend, WebauthnChallenges::ExpiresAt).not_null())
                    .foreign_key(&mut owner(
                        "fk_webauthn_challenges_user_id",
                        WebauthnChallenges::Table,
                        WebauthnChallenges::UserId,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name(WEBAUTHN_CHALLENGES_EXPIRES_AT)
                    .table(WebauthnChallenges::Table)
                    .col(WebauthnChallenges::ExpiresAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name(WEBAUTHN_CHALLENGES_USER_ID)
                    .table(WebauthnChallenges::Table)
                    .col(WebauthnChallenges::UserId)
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(WebauthnChallenges::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(Passkeys::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(RecoveryCodes::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(TotpCredentials::Table).to_owned())
            .await
    }
}

/// The foreign key of `table.column` to its user, deleted with them.
fn owner(
    name: &str,
    table: impl IntoIden + 'static,
    column: impl IntoIden + 'static,
) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .name(name)
        .from(table, column)
        .to(Users::Table, Users::Id)
        .on_delete(ForeignKeyAction::Cascade)
        .to_owned()
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

/// Text of at most `max_chars` characters, compared byte for byte; the collation goes
/// into the type because MySQL only accepts `CHARACTER SET` right after it.
fn exact_varchar(backend: DbBackend, name: impl IntoIden, max_chars: u32) -> ColumnDef {
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

/// Text of any length up to MySQL's `text` (64 KiB), compared byte for byte.
fn exact_text(backend: DbBackend, name: impl IntoIden) -> ColumnDef {
    let mut column = ColumnDef::new(name);
    if backend == DbBackend::MySql {
        column.custom(Alias::new("text CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"));
    } else {
        column.text();
    }
    column
}

/// A short ASCII string (a hex digest, a name, a credential id), compared byte for byte;
/// ASCII keeps MySQL's index entries at one byte per character.
fn ascii(backend: DbBackend, name: impl IntoIden, chars: u32) -> ColumnDef {
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

/// JSON a library serialises (a passkey's key, a ceremony's state): its size is the
/// library's, so MySQL gets `mediumtext` rather than `text`, which stops at 64 KiB (a
/// registration's state lists the user's other credential ids).
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
