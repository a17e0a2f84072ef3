//! The [`TokenStore`] adapter: one row of `one_time_tokens` per token, and the writes of
//! [`crate::SqlStores::commit`] that spend, void and issue them.

use auth_domain::{
    tokens::{OneTimeToken, Purpose, TokenDigest, TokenStore},
    Email, RepositoryError, UserId,
};
use sea_orm::{
    sea_query::Query, ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait,
    QueryFilter, QueryOrder, QuerySelect,
};
use time::OffsetDateTime;

use crate::{entity::one_time_tokens, error::repository_error, timestamp};

/// One-time tokens in the `one_time_tokens` table, by digest.
#[derive(Debug, Clone)]
pub struct SqlTokenStore {
    db: DatabaseConnection,
}

impl SqlTokenStore {
    /// A store on an open pool (see [`crate::connect`]) of an installed schema.
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db }
    }
}

impl TokenStore for SqlTokenStore {
    async fn find(&self, digest: &TokenDigest) -> Result<Option<OneTimeToken>, RepositoryError> {
        one_time_tokens::Entity::find_by_id(digest.as_str())
            .one(&self.db)
            .await
            .map_err(|err| repository_error("find token", &err))?
            .map(into_token)
            .transpose()
    }

    /// One look-up over the `(user_id, purpose)` index.
    async fn latest_issued(
        &self,
        user: UserId,
        purpose: Purpose,
    ) -> Result<Option<OffsetDateTime>, RepositoryError> {
        one_time_tokens::Entity::find()
            .select_only()
            .column(one_time_tokens::Column::CreatedAt)
            .filter(one_time_tokens::Column::UserId.eq(user.as_uuid()))
            .filter(one_time_tokens::Column::Purpose.eq(purpose.as_str()))
            .order_by_desc(one_time_tokens::Column::CreatedAt)
            .limit(1)
            .into_tuple::<OffsetDateTime>()
            .one(&self.db)
            .await
            .map_err(|err| repository_error("find latest token", &err))
    }

    /// One batch, as `crate::purge::expired_batch` deletes it.
    async fn purge_expired(&self, now: OffsetDateTime, batch: u64) -> Result<u64, RepositoryError> {
        crate::purge::expired_batch::<one_time_tokens::Entity>(
            &self.db,
            one_time_tokens::Column::Digest,
            one_time_tokens::Column::ExpiresAt,
            now,
            batch,
        )
        .await
        .map_err(|err| repository_error("purge tokens", &err))
    }
}

/// Stores `token`; a digest already stored fails it (a unique violation).
pub(crate) async fn insert(db: &impl ConnectionTrait, token: &OneTimeToken) -> Result<(), DbErr> {
    let backend = db.get_database_backend();
    let mut statement = Query::insert();
    statement
        .into_table(one_time_tokens::Entity)
        .columns([
            one_time_tokens::Column::Digest,
            one_time_tokens::Column::Purpose,
            one_time_tokens::Column::UserId,
            one_time_tokens::Column::Email,
            one_time_tokens::Column::CreatedAt,
            one_time_tokens::Column::ExpiresAt,
        ])
        .values([
            token.digest.as_str().into(),
            token.purpose.as_str().into(),
            token.user_id.as_uuid().into(),
            token.email.as_str().into(),
            timestamp::value(backend, token.created_at).into(),
            timestamp::value(backend, token.expires_at).into(),
        ])
        .map_err(|err| DbErr::Custom(format!("insert token: {err}")))?;
    db.execute(backend.build(&statement)).await?;
    Ok(())
}

/// Deletes the token `digest` of `purpose` if it is live at `now`; returns how many rows
/// (0 or 1). The delete is the check: of concurrent submissions, one deletes the row.
pub(crate) async fn consume(
    db: &impl ConnectionTrait,
    digest: &TokenDigest,
    purpose: Purpose,
    now: OffsetDateTime,
) -> Result<u64, DbErr> {
    let now = timestamp::value(db.get_database_backend(), now);
    let deleted = one_time_tokens::Entity::delete_many()
        .filter(one_time_tokens::Column::Digest.eq(digest.as_str()))
        .filter(one_time_tokens::Column::Purpose.eq(purpose.as_str()))
        .filter(one_time_tokens::Column::ExpiresAt.gt(now))
        .exec(db)
        .await?;
    Ok(deleted.rows_affected)
}

/// Deletes every token of `user` for `purpose`, or of every purpose with `None`.
pub(crate) async fn void(
    db: &impl ConnectionTrait,
    user: UserId,
    purpose: Option<Purpose>,
) -> Result<u64, DbErr> {
    let mut delete = one_time_tokens::Entity::delete_many()
        .filter(one_time_tokens::Column::UserId.eq(user.as_uuid()));
    if let Some(purpose) = purpose {
        delete = delete.filter(one_time_tokens::Column::Purpose.eq(purpose.as_str()));
    }
    Ok(delete.exec(db).await?.rows_affected)
}

/// The token a row holds; a purpose this version cannot read is a storage error.
fn into_token(row: one_time_tokens::Model) -> Result<OneTimeToken, RepositoryError> {
    let purpose = Purpose::parse(&row.purpose)
        .ok_or_else(|| RepositoryError::new("find token: a stored token has an unknown purpose"))?;
    Ok(OneTimeToken {
        digest: TokenDigest::from_stored(row.digest),
        purpose,
        user_id: UserId::from_uuid(row.user_id),
        email: Email::from_trusted(row.email),
        created_at: row.created_at,
        expires_at: row.expires_at,
    })
}
