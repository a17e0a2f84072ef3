//! #20: mail. Each user's `email_verified` (existing users are unverified: nobody followed
//! a link yet); the one-time tokens of password resets, verifications and email changes,
//! kept as keyed digests only; and the outbox of mail written with the action that causes
//! it and sent later by a worker that leases it.
//!
//! As in the earlier migrations, the column helpers are this migration's own: it is frozen
//! once released.

use sea_orm_migration::{prelude::*, sea_orm::DbBackend};

use crate::names::{
    ONE_TIME_TOKENS_EXPIRES_AT, ONE_TIME_TOKENS_USER_PURPOSE, OUTBOX_SENT_AT,
    OUTBOX_STATUS_CREATED_AT, OUTBOX_STATUS_NEXT_ATTEMPT_AT,
};

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[derive(DeriveIden)]
enum Users {
    Table,
    EmailVerified,
}

#[derive(DeriveIden)]
enum OneTimeTokens {
    Table,
    Digest,
    Purpose,
    UserId,
    Email,
    CreatedAt,
    ExpiresAt,
}

#[derive(DeriveIden)]
enum Outbox {
    Table,
    Id,
    Kind,
    Recipient,
    Subject,
    Body,
    Status,
    Attempts,
    NextAttemptAt,
    LeaseId,
    LeaseUntil,
    LastError,
    CreatedAt,
    SentAt,
}

/// A hex HMAC-SHA-256 (`auth_domain::tokens::TokenDigest`).
const DIGEST_CHARS: u32 = 64;

/// The longest purpose or mail kind is 19 characters (`email_change_notice`); room to
/// grow.
const NAME_CHARS: u32 = 32;

/// The longest mail status is 7 characters (`pending`).
const STATUS_CHARS: u32 = 16;

/// `users.email`: the longest address.
const EMAIL_CHARS: u32 = 254;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let backend = manager.get_database_backend();
        manager
            .alter_table(
                Table::alter()
                    .table(Users::Table)
                    .add_column(
                        ColumnDef::new(Users::EmailVerified)
                            .boolean()
                            .not_null()
                            .default(false),
                    )
                    .to_owned(),
            )
            .await?;

        // No foreign key to `users`, as for the sessions: deleting a user deletes their
        // tokens' use (a token of a user who is gone changes nothing), and the purge
        // deletes the rows.
        manager
            .create_table(
                table(backend, OneTimeTokens::Table)
                    .col(
                        ascii(backend, OneTimeTokens::Digest, DIGEST_CHARS)
                            .not_null()
                            .primary_key(),
                    )
                    .col(ascii(backend, OneTimeTokens::Purpose, NAME_CHARS).not_null())
                    .col(ColumnDef::new(OneTimeTokens::UserId).uuid().not_null())
                    .col(exact_text(backend, OneTimeTokens::Email, Some(EMAIL_CHARS)).not_null())
                    .col(timestamp(backend, OneTimeTokens::CreatedAt).not_null())
                    .col(timestamp(backend, OneTimeTokens::ExpiresAt).not_null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name(ONE_TIME_TOKENS_USER_PURPOSE)
                    .table(OneTimeTokens::Table)
                    .col(OneTimeTokens::UserId)
                    .col(OneTimeTokens::Purpose)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name(ONE_TIME_TOKENS_EXPIRES_AT)
                    .table(OneTimeTokens::Table)
                    .col(OneTimeTokens::ExpiresAt)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                table(backend, Outbox::Table)
                    .col(ColumnDef::new(Outbox::Id).uuid().not_null().primary_key())
                    .col(ascii(backend, Outbox::Kind, NAME_CHARS).not_null())
                    .col(exact_text(backend, Outbox::Recipient, Some(EMAIL_CHARS)).not_null())
                    .col(exact_text(backend, Outbox::Subject, None).not_null())
                    .col(large_text(backend, Outbox::Body).not_null())
                    .col(ascii(backend, Outbox::Status, STATUS_CHARS).not_null())
                    .col(
                        ColumnDef::new(Outbox::Attempts)
                            .integer()
                            .not_null()
                            .default(0),
                    )
                    .col(timestamp(backend, Outbox::NextAttemptAt).not_null())
                    .col(ColumnDef::new(Outbox::LeaseId).uuid().null())
                    .col(timestamp(backend, Outbox::LeaseUntil).null())
                    .col(exact_text(backend, Outbox::LastError, None).null())
                    .col(timestamp(backend, Outbox::CreatedAt).not_null())
                    .col(timestamp(backend, Outbox::SentAt).null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name(OUTBOX_STATUS_NEXT_ATTEMPT_AT)
                    .table(Outbox::Table)
                    .col(Outbox::Status)
                    .col(Outbox::NextAttemptAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name(OUTBOX_STATUS_CREATED_AT)
                    .table(Outbox::Table)
                    .col(Outbox::Status)
                    .col(Outbox::CreatedAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name(OUTBOX_SENT_AT)
                    .table(Outbox::Table)
                    .col(Outbox::SentAt)
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Outbox::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(OneTimeTokens::Table).to_owned())
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Users::Table)
                    .drop_column(Users::EmailVerified)
                    .to_owned(),
            )
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

/// Text compared byte for byte, of at most `max_chars` characters or of any length; the
/// collation goes into the type because MySQL only accepts `CHARACTER SET` right after it.
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

/// A short ASCII string (a hex digest, a name), compared byte for byte; ASCII keeps
/// MySQL's index entries at one byte per character.
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

/// A mail body: MySQL's `text` stops at 64 KiB.
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
