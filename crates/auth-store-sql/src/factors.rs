//! The [`FactorStore`] adapter: `totp_credentials`, `recovery_codes` and `passkeys`, and
//! the writes of [`crate::SqlStores::commit`] that confirm, spend, register and remove
//! them.
//!
//! What must be decided once across instances is one conditional statement, whose row
//! count is the answer: a TOTP step is accepted by an `UPDATE` that only matches a newer
//! step, a recovery code is spent by the `DELETE` that finds it, and a credential id is
//! kept unique by its index. Every factor row has a foreign key to its user with
//! `ON DELETE CASCADE`: deleting the user deletes them.

use auth_domain::{
    factors::{
        CodeDigest, CredentialId, FactorStore, FactorSummary, StoredPasskey, TotpCredential,
    },
    RepositoryError, UserId,
};
use migration::names::PASSKEYS_CREDENTIAL_ID_UNIQUE;
use sea_orm::{
    sea_query::{Expr, Query},
    ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect,
};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::{
    entity::{passkeys, recovery_codes, totp_credentials, users},
    error::{is_transaction_conflict, is_unique_violation, repository_error, violates},
    timestamp,
};

/// Second factors in their three tables.
#[derive(Debug, Clone)]
pub struct SqlFactorStore {
    db: DatabaseConnection,
}

impl SqlFactorStore {
    /// A store on an open pool (see [`crate::connect`]) of an installed schema.
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db }
    }
}

/// How many times an enrolment is tried when a concurrent one of the same user slips in
/// between its delete and its insert.
const BEGIN_ATTEMPTS: u32 = 4;

impl FactorStore for SqlFactorStore {
    /// Three counts on the tables' keys (the user comes first in each).
    async fn summary(&self, user: UserId) -> Result<FactorSummary, RepositoryError> {
        let failed = |err: DbErr| repository_error("factor summary", &err);
        let totp = totp_credentials::Entity::find()
            .filter(totp_credentials::Column::UserId.eq(user.as_uuid()))
            .filter(totp_credentials::Column::Confirmed.eq(true))
            .count(&self.db)
            .await
            .map_err(failed)?;
        let passkeys = passkeys::Entity::find()
            .filter(passkeys::Column::UserId.eq(user.as_uuid()))
            .count(&self.db)
            .await
            .map_err(failed)?;
        let recovery_codes = recovery_codes::Entity::find()
            .filter(recovery_codes::Column::UserId.eq(user.as_uuid()))
            .count(&self.db)
            .await
            .map_err(failed)?;
        Ok(FactorSummary {
            totp: totp > 0,
            passkeys,
            recovery_codes,
        })
    }

    async fn totp(&self, user: UserId) -> Result<Option<TotpCredential>, RepositoryError> {
        Ok(totp_credentials::Entity::find_by_id(user.as_uuid())
            .one(&self.db)
            .await
            .map_err(|err| repository_error("find totp", &err))?
            .map(into_totp))
    }

    /// Deletes the user's unconfirmed credential, then inserts: the primary key on the
    /// user refuses the insert when a credential is left, which is a confirmed one, or a
    /// concurrent enrolment's (then the next try replaces it: the last one wins).
    async fn begin_totp(&self, credential: TotpCredential) -> Result<bool, RepositoryError> {
        let failed = |err: DbErr| repository_error("begin totp", &err);
        let user = credential.user_id.as_uuid();
        for _ in 0..BEGIN_ATTEMPTS {
            totp_credentials::Entity::delete_many()
                .filter(totp_credentials::Column::UserId.eq(user))
                .filter(totp_credentials::Column::Confirmed.eq(false))
                .exec(&self.db)
                .await
                .map_err(failed)?;
            match insert_totp(&self.db, &credential).await {
                Ok(()) => return Ok(true),
                Err(err) if is_unique_violation(&err) || is_transaction_conflict(&err) => {}
                Err(err) => return Err(failed(err)),
            }
            let confirmed = totp_credentials::Entity::find()
                .filter(totp_credentials::Column::UserId.eq(user))
                .filter(totp_credentials::Column::Confirmed.eq(true))
                .count(&self.db)
                .await
                .map_err(failed)?;
            if confirmed > 0 {
                return Ok(false);
            }
        }
        Err(RepositoryError::new(
            "begin totp: concurrent enrolments kept replacing this one",
        ))
    }

    /// One conditional `UPDATE`: of concurrent acceptances of one step, one matches the
    /// row; the others find its step no longer older.
    async fn accept_totp_step(
        &self,
        user: UserId,
        id: Uuid,
        step: i64,
    ) -> Result<bool, RepositoryError> {
        let updated = totp_credentials::Entity::update_many()
            .col_expr(totp_credentials::Column::LastStep, Expr::value(step))
            .filter(totp_credentials::Column::UserId.eq(user.as_uuid()))
            .filter(totp_credentials::Column::Id.eq(id))
            .filter(totp_credentials::Column::Confirmed.eq(true))
            .filter(
                Condition::any()
                    .add(totp_credentials::Column::LastStep.is_null())
                    .add(totp_credentials::Column::LastStep.lt(step)),
            )
            .exec(&self.db)
            .await
            .map_err(|err| repository_error("accept totp step", &err))?;
        Ok(updated.rows_affected > 0)
    }

    /// Over the `(user_id, created_at)` index; the id orders passkeys of one instant.
    async fn passkeys(&self, user: UserId) -> Result<Vec<StoredPasskey>, RepositoryError> {
        Ok(passkeys::Entity::find()
            .filter(passkeys::Column::UserId.eq(user.as_uuid()))
            .order_by_asc(passkeys::Column::CreatedAt)
            .order_by_asc(passkeys::Column::Id)
            .all(&self.db)
            .await
            .map_err(|err| repository_error("list passkeys", &err))?
            .into_iter()
            .map(into_passkey)
            .collect())
    }

    async fn passkey_by_credential(
        &self,
        credential_id: &CredentialId,
    ) -> Result<Option<StoredPasskey>, RepositoryError> {
        Ok(passkeys::Entity::find()
            .filter(passkeys::Column::CredentialId.eq(credential_id.as_str()))
            .one(&self.db)
            .await
            .map_err(|err| repository_error("find passkey", &err))?
            .map(into_passkey))
    }

    async fn passkey_used(
        &self,
        user: UserId,
        id: Uuid,
        key: String,
        at: OffsetDateTime,
    ) -> Result<bool, RepositoryError> {
        let at = timestamp::value(self.db.get_database_backend(), at);
        let updated = passkeys::Entity::update_many()
            .col_expr(passkeys::Column::Key, Expr::value(key))
            .col_expr(passkeys::Column::LastUsedAt, Expr::value(at))
            .filter(passkeys::Column::Id.eq(id))
            .filter(passkeys::Column::UserId.eq(user.as_uuid()))
            .exec(&self.db)
            .await
            .map_err(|err| repository_error("record passkey use", &err))?;
        // Rows matched, not changed, even on MySQL (sqlx connects with CLIENT_FOUND_ROWS).
        Ok(updated.rows_affected > 0)
    }

    async fn rename_passkey(
        &self,
        user: UserId,
        id: Uuid,
        name: String,
    ) -> Result<bool, RepositoryError> {
        let updated = passkeys::Entity::update_many()
            .col_expr(passkeys::Column::Name, Expr::value(name))
            .filter(passkeys::Column::Id.eq(id))
            .filter(passkeys::Column::UserId.eq(user.as_uuid()))
            .exec(&self.db)
            .await
            .map_err(|err| repository_error("rename passkey", &err))?;
        Ok(updated.rows_affected > 0)
    }
}

/// Stores `credential`; a credential of the user already stored fails it (a unique
/// violation).
async fn insert_totp(db: &impl ConnectionTrait, credential: &TotpCredential) -> Result<(), DbErr> {
    let backend = db.get_database_backend();
    let mut statement = Query::insert();
    statement
        .into_table(totp_credentials::Entity)
        .columns([
            totp_credentials::Column::UserId,
            totp_credentials::Column::Id,
            totp_credentials::Column::SealedSecret,
            totp_credentials::Column::Confirmed,
            totp_credentials::Column::LastStep,
            totp_credentials::Column::CreatedAt,
        ])
        .values([
            credential.user_id.as_uuid().into(),
            credential.id.into(),
            credential.sealed_secret.as_str().into(),
            credential.confirmed.into(),
            credential.last_step.into(),
            timestamp::value(backend, credential.created_at).into(),
        ])
        .map_err(|err| DbErr::Custom(format!("insert totp: {err}")))?;
    db.execute(backend.build(&statement)).await?;
    Ok(())
}

/// Confirms `user`'s enrolment `id` if it is still unconfirmed, with `step` as the last
/// accepted; returns the rows matched (0 or 1).
pub(crate) async fn confirm_totp(
    db: &impl ConnectionTrait,
    user: UserId,
    id: Uuid,
    step: i64,
) -> Result<u64, DbErr> {
    let updated = totp_credentials::Entity::update_many()
        .col_expr(totp_credentials::Column::Confirmed, Expr::value(true))
        .col_expr(totp_credentials::Column::LastStep, Expr::value(step))
        .filter(totp_credentials::Column::UserId.eq(user.as_uuid()))
        .filter(totp_credentials::Column::Id.eq(id))
        .filter(totp_credentials::Column::Confirmed.eq(false))
        .exec(db)
        .await?;
    Ok(updated.rows_affected)
}

/// Deletes `user`'s confirmed credential; returns how many rows (0 or 1).
pub(crate) async fn remove_totp(db: &impl ConnectionTrait, user: UserId) -> Result<u64, DbErr> {
    let deleted = totp_credentials::Entity::delete_many()
        .filter(totp_credentials::Column::UserId.eq(user.as_uuid()))
        .filter(totp_credentials::Column::Confirmed.eq(true))
        .exec(db)
        .await?;
    Ok(deleted.rows_affected)
}

/// Replaces every recovery code of `user` with `digests`, made `at`.
pub(crate) async fn replace_codes(
    db: &impl ConnectionTrait,
    user: UserId,
    digests: &[CodeDigest],
    at: OffsetDateTime,
) -> Result<(), DbErr> {
    // The user's row locked first: two replacements at once then run one after the
    // other, and the second deletes the first's codes. Without it, PostgreSQL's delete
    // does not see the rows the other transaction inserts, and both sets stay. SQLite has
    // one writer at a time already, and a read before the first write would only turn
    // its wait for the writer into a "database is locked".
    if db.get_database_backend() != sea_orm::DbBackend::Sqlite {
        users::Entity::find_by_id(user.as_uuid())
            .select_only()
            .column(users::Column::Id)
            .lock_exclusive()
            .into_tuple::<Uuid>()
            .one(db)
            .await?;
    }
    recovery_codes::Entity::delete_many()
        .filter(recovery_codes::Column::UserId.eq(user.as_uuid()))
        .exec(db)
        .await?;
    if digests.is_empty() {
        return Ok(());
    }
    let backend = db.get_database_backend();
    let at = timestamp::value(backend, at);
    let mut statement = Query::insert();
    statement.into_table(recovery_codes::Entity).columns([
        recovery_codes::Column::UserId,
        recovery_codes::Column::Digest,
        recovery_codes::Column::CreatedAt,
    ]);
    for digest in digests {
        statement
            .values([
                user.as_uuid().into(),
                digest.as_str().into(),
                at.clone().into(),
            ])
            .map_err(|err| DbErr::Custom(format!("insert recovery codes: {err}")))?;
    }
    db.execute(backend.build(&statement)).await?;
    Ok(())
}

/// Deletes `user`'s code `digest`; returns how many rows (0 or 1). The delete is the
/// check: of concurrent submissions, one deletes the row.
pub(crate) async fn consume_code(
    db: &impl ConnectionTrait,
    user: UserId,
    digest: &CodeDigest,
) -> Result<u64, DbErr> {
    let deleted = recovery_codes::Entity::delete_many()
        .filter(recovery_codes::Column::UserId.eq(user.as_uuid()))
        .filter(recovery_codes::Column::Digest.eq(digest.as_str()))
        .exec(db)
        .await?;
    Ok(deleted.rows_affected)
}

/// Why a passkey was not stored.
pub(crate) enum InsertPasskeyError {
    /// Its credential id is registered already.
    CredentialTaken,
    /// The database failed (a colliding id of ours included: that is no user's doing).
    Failed(DbErr),
}

/// Stores `passkey`; its credential id's unique index decides whether it is taken.
pub(crate) async fn insert_passkey(
    db: &impl ConnectionTrait,
    passkey: &StoredPasskey,
) -> Result<(), InsertPasskeyError> {
    let backend = db.get_database_backend();
    let mut columns = vec![
        passkeys::Column::Id,
        passkeys::Column::UserId,
        passkeys::Column::CredentialId,
        passkeys::Column::Name,
        passkeys::Column::Key,
        passkeys::Column::CreatedAt,
    ];
    let mut values: Vec<sea_orm::sea_query::SimpleExpr> = vec![
        passkey.id.into(),
        passkey.user_id.as_uuid().into(),
        passkey.credential_id.as_str().into(),
        passkey.name.as_str().into(),
        passkey.key.as_str().into(),
        timestamp::value(backend, passkey.created_at).into(),
    ];
    // Left out when `None`: the column's default is NULL, of whatever type it has.
    if let Some(at) = passkey.last_used_at {
        columns.push(passkeys::Column::LastUsedAt);
        values.push(timestamp::value(backend, at).into());
    }
    let mut statement = Query::insert();
    statement
        .into_table(passkeys::Entity)
        .columns(columns)
        .values(values)
        .map_err(|err| {
            InsertPasskeyError::Failed(DbErr::Custom(format!("insert passkey: {err}")))
        })?;
    match db.execute(backend.build(&statement)).await {
        Ok(_) => Ok(()),
        Err(err)
            if violates(
                &err,
                PASSKEYS_CREDENTIAL_ID_UNIQUE,
                "passkeys.credential_id",
            ) =>
        {
            Err(InsertPasskeyError::CredentialTaken)
        }
        Err(err) => Err(InsertPasskeyError::Failed(err)),
    }
}

/// Deletes `user`'s passkey `id`; returns how many rows (0 or 1).
pub(crate) async fn delete_passkey(
    db: &impl ConnectionTrait,
    user: UserId,
    id: Uuid,
) -> Result<u64, DbErr> {
    let deleted = passkeys::Entity::delete_many()
        .filter(passkeys::Column::Id.eq(id))
        .filter(passkeys::Column::UserId.eq(user.as_uuid()))
        .exec(db)
        .await?;
    Ok(deleted.rows_affected)
}

/// Deletes every factor of `user`: TOTP, recovery codes, passkeys.
pub(crate) async fn remove_all(db: &impl ConnectionTrait, user: UserId) -> Result<(), DbErr> {
    totp_credentials::Entity::delete_many()
        .filter(totp_credentials::Column::UserId.eq(user.as_uuid()))
        .exec(db)
        .await?;
    recovery_codes::Entity::delete_many()
        .filter(recovery_codes::Column::UserId.eq(user.as_uuid()))
        .exec(db)
        .await?;
    passkeys::Entity::delete_many()
        .filter(passkeys::Column::UserId.eq(user.as_uuid()))
        .exec(db)
        .await?;
    Ok(())
}

fn into_totp(row: totp_credentials::Model) -> TotpCredential {
    TotpCredential {
        id: row.id,
        user_id: UserId::from_uuid(row.user_id),
        sealed_secret: row.sealed_secret,
        confirmed: row.confirmed,
        last_step: row.last_step,
        created_at: row.created_at,
    }
}

fn into_passkey(row: passkeys::Model) -> StoredPasskey {
    StoredPasskey {
        id: row.id,
        user_id: UserId::from_uuid(row.user_id),
        credential_id: CredentialId::from_stored(row.credential_id),
        name: row.name,
        key: row.key,
        created_at: row.created_at,
        last_used_at: row.last_used_at,
    }
}
