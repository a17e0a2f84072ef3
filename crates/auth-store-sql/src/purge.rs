//! Deleting old rows in batches, for the tables that keep one row per instant.

use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, QuerySelect,
    TryGetableMany, Value,
};
use time::OffsetDateTime;

use crate::{timestamp, MAX_PURGE_BATCH_SIZE};

/// Deletes the rows of `E` whose `at` is before `before`, `batch` at a time (at least 1, at
/// most [`MAX_PURGE_BATCH_SIZE`]), until none is left; returns how many. Each batch selects
/// the primary keys first and then deletes them, as
/// [`crate::SqlSessionStore::purge_expired`] does: MySQL cannot delete from a table through
/// a `LIMIT`ed subquery on the same table. The rows never change once written, so the
/// delete needs no second look at `at`.
pub(crate) async fn purge_before<E, K>(
    db: &DatabaseConnection,
    id: E::Column,
    at: E::Column,
    before: OffsetDateTime,
    batch: u64,
) -> Result<u64, DbErr>
where
    E: EntityTrait,
    K: TryGetableMany + Into<Value>,
{
    let batch = batch.clamp(1, MAX_PURGE_BATCH_SIZE);
    let cutoff = timestamp::value(db.get_database_backend(), before);
    let mut deleted = 0;
    loop {
        let keys: Vec<K> = E::find()
            .select_only()
            .column(id)
            .filter(at.lt(cutoff.clone()))
            .limit(batch)
            .into_tuple()
            .all(db)
            .await?;
        let selected = keys.len() as u64;
        if selected == 0 {
            break;
        }
        deleted += E::delete_many()
            .filter(id.is_in(keys))
            .exec(db)
            .await?
            .rows_affected;
        if selected < batch {
            break;
        }
    }
    Ok(deleted)
}

/// Deletes one batch (at least 1, at most [`MAX_PURGE_BATCH_SIZE`]) of the rows of `E`
/// that expired by `now` (`expires_at <= now`), keyed by the text column `id`; returns how
/// many. The keys first, then the delete, as [`purge_before`]; the delete looks at
/// `expires_at` again, since such a row may be replaced meanwhile.
pub(crate) async fn expired_batch<E: EntityTrait>(
    db: &DatabaseConnection,
    id: E::Column,
    expires_at: E::Column,
    now: OffsetDateTime,
    batch: u64,
) -> Result<u64, DbErr> {
    let cutoff = timestamp::value(db.get_database_backend(), now);
    let keys: Vec<String> = E::find()
        .select_only()
        .column(id)
        .filter(expires_at.lte(cutoff.clone()))
        .limit(batch.clamp(1, MAX_PURGE_BATCH_SIZE))
        .into_tuple()
        .all(db)
        .await?;
    if keys.is_empty() {
        return Ok(0);
    }
    Ok(E::delete_many()
        .filter(id.is_in(keys))
        .filter(expires_at.lte(cutoff))
        .exec(db)
        .await?
        .rows_affected)
}
