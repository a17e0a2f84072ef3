//! Deleting old documents in batches, for the collections that keep one document per
//! instant.

use auth_domain::RepositoryError;
use bson::{doc, Bson, Document};
use mongodb::Collection;
use time::OffsetDateTime;

use crate::{error::repository_error, timestamp};

/// The largest batch one purge statement deletes: the ids go into one `$in` of one
/// command, which must stay far below the server's 16 MiB.
const MAX_PURGE_BATCH_SIZE: u64 = 10_000;

/// Field names every purged collection shares, with its index declarations.
pub(crate) mod fields {
    /// The instant as a BSON date, rounded down to the millisecond: what indexes (and a
    /// TTL) work on.
    pub(crate) const AT: &str = "at";
    /// The instant in microseconds since the Unix epoch: what reads back exactly.
    pub(crate) const AT_US: &str = "at_us";
}

/// Deletes the documents of `collection` whose instant is before `before`, `batch` at a
/// time (at least 1), until none is left; returns how many. The filter on the date lets
/// the index on `at` find the candidates and the one on the microseconds decides, since
/// the date is rounded down to the millisecond. Documents never change once written, so
/// the delete needs no second look at the instant.
pub(crate) async fn purge_before(
    collection: &Collection<Document>,
    operation: &'static str,
    before: OffsetDateTime,
    batch: u64,
) -> Result<u64, RepositoryError> {
    let before_us = timestamp::micros(before)
        .ok_or_else(|| RepositoryError::new(format!("{operation}: the cut-off is out of range")))?;
    let filter = doc! {
        fields::AT: { "$lte": timestamp::date(before_us) },
        fields::AT_US: { "$lt": before_us },
    };
    let batch = batch.clamp(1, MAX_PURGE_BATCH_SIZE);
    let mut deleted = 0;
    loop {
        let (selected, gone) = delete_batch(collection, operation, &filter, batch).await?;
        deleted += gone;
        if selected < batch {
            break;
        }
    }
    Ok(deleted)
}

/// Deletes at most `batch` (1 to [`MAX_PURGE_BATCH_SIZE`]) documents of `collection` that
/// `filter` picks: their ids first, then one delete of those ids that checks `filter`
/// again (so a document changed in between, a failed mail retried, stays). Returns how
/// many were selected and how many deleted.
pub(crate) async fn delete_batch(
    collection: &Collection<Document>,
    operation: &'static str,
    filter: &Document,
    batch: u64,
) -> Result<(u64, u64), RepositoryError> {
    let driver = |error: mongodb::error::Error| repository_error(operation, &error);
    let mut cursor = collection
        .find(filter.clone())
        .projection(doc! { "_id": 1 })
        .limit(i64::try_from(batch.clamp(1, MAX_PURGE_BATCH_SIZE)).unwrap_or(i64::MAX))
        .await
        .map_err(driver)?;
    let mut ids: Vec<Bson> = Vec::new();
    while cursor.advance().await.map_err(driver)? {
        if let Some(id) = cursor.deserialize_current().map_err(driver)?.get("_id") {
            ids.push(id.clone());
        }
    }
    let selected = ids.len() as u64;
    if selected == 0 {
        return Ok((0, 0));
    }
    let mut picked = filter.clone();
    picked.insert("_id", doc! { "$in": ids });
    let deleted = collection
        .delete_many(picked)
        .await
        .map_err(driver)?
        .deleted_count;
    Ok((selected, deleted))
}
