//! Failed attempts as documents, behind the [`FailureCounter`] port.

use std::{collections::HashMap, fmt, time::Duration};

use auth_domain::{
    throttle::{AttemptId, FailureCount, FailureCounter, ThrottleKey},
    RepositoryError,
};
use bson::{doc, Document};
use mongodb::{Collection, Database};
use serde::Deserialize;
use time::OffsetDateTime;

use crate::{error::repository_error, purge, timestamp};

/// How long MongoDB keeps a failure before its TTL index deletes it: longer than any
/// throttling window (15 minutes and an hour by default), so that expiry never shortens
/// a window; a window configured longer than this counts only this much.
pub const FAILURE_RETENTION: Duration = Duration::from_secs(24 * 60 * 60);

/// Field names, shared with the index declarations.
pub(crate) mod fields {
    pub(crate) use crate::purge::fields::{AT, AT_US};
    pub(crate) const KEY: &str = "key";
    pub(crate) const ATTEMPT: &str = "attempt";
}

/// The counts of one key, as the aggregation groups them.
#[derive(Deserialize)]
struct Group {
    #[serde(rename = "_id")]
    key: String,
    count: i64,
    oldest_us: i64,
}

/// The failures collection as a [`FailureCounter`]: one document per failure and key,
/// `{_id, key, at, at_us, attempt}`. Cheap to clone: clones share one client.
#[derive(Clone)]
pub struct MongoFailureCounter {
    failures: Collection<Document>,
}

impl MongoFailureCounter {
    /// The counter over the `failures` collection of `db`;
    /// [`crate::ensure_throttle_and_audit_indexes`] must have run for counting to use an
    /// index and for old failures to expire.
    pub fn new(db: &Database, failures: &str) -> Self {
        Self {
            failures: db.collection(failures),
        }
    }
}

impl fmt::Debug for MongoFailureCounter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MongoFailureCounter")
            .field("collection", &self.failures.namespace().to_string())
            .finish()
    }
}

impl FailureCounter for MongoFailureCounter {
    /// One aggregation over the `(key, at_us)` index: its few groups come back in the
    /// first batch, so no `getMore` follows.
    async fn failures(
        &self,
        keys: &[ThrottleKey],
        since: OffsetDateTime,
    ) -> Result<Vec<FailureCount>, RepositoryError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let since_us = timestamp::micros(since).ok_or_else(|| {
            RepositoryError::new("count failures: the window start is out of range")
        })?;
        let asked: Vec<&str> = keys.iter().map(ThrottleKey::as_str).collect();
        let pipeline = [
            doc! { "$match": {
                fields::KEY: { "$in": asked },
                fields::AT_US: { "$gte": since_us },
            } },
            doc! { "$group": {
                "_id": format!("${}", fields::KEY),
                "count": { "$sum": 1 },
                "oldest_us": { "$min": format!("${}", fields::AT_US) },
            } },
        ];
        let driver = |error: mongodb::error::Error| repository_error("count failures", &error);
        let mut cursor = self
            .failures
            .aggregate(pipeline)
            .with_type::<Group>()
            .await
            .map_err(driver)?;
        let mut counted = HashMap::new();
        while cursor.advance().await.map_err(driver)? {
            let group = cursor.deserialize_current().map_err(driver)?;
            let oldest = timestamp::read(group.oldest_us).ok_or_else(|| {
                RepositoryError::new("count failures: a stored failure has a malformed at_us")
            })?;
            let count = FailureCount {
                count: u64::try_from(group.count).unwrap_or(0),
                oldest: Some(oldest),
            };
            counted.insert(group.key, count);
        }
        Ok(FailureCount::in_key_order(keys, &counted))
    }

    /// One `insert_many`.
    async fn record_failure(
        &self,
        keys: &[ThrottleKey],
        at: OffsetDateTime,
        attempt: AttemptId,
    ) -> Result<(), RepositoryError> {
        if keys.is_empty() {
            return Ok(());
        }
        let at_us = timestamp::micros(at)
            .ok_or_else(|| RepositoryError::new("record failures: the instant is out of range"))?;
        let documents = keys.iter().map(|key| {
            doc! {
                fields::KEY: key.as_str(),
                fields::AT: timestamp::date(at_us),
                fields::AT_US: at_us,
                fields::ATTEMPT: attempt.get(),
            }
        });
        self.failures
            .insert_many(documents)
            .await
            .map_err(|error| repository_error("record failures", &error))?;
        Ok(())
    }

    /// One `delete_many` over the `(key, at_us)` index.
    async fn withdraw(
        &self,
        keys: &[ThrottleKey],
        attempt: AttemptId,
    ) -> Result<(), RepositoryError> {
        if keys.is_empty() {
            return Ok(());
        }
        let asked: Vec<&str> = keys.iter().map(ThrottleKey::as_str).collect();
        self.failures
            .delete_many(doc! { fields::KEY: { "$in": asked }, fields::ATTEMPT: attempt.get() })
            .await
            .map_err(|error| repository_error("withdraw an attempt", &error))?;
        Ok(())
    }

    async fn reset(&self, key: &ThrottleKey) -> Result<(), RepositoryError> {
        self.failures
            .delete_many(doc! { fields::KEY: key.as_str() })
            .await
            .map_err(|error| repository_error("reset failures", &error))?;
        Ok(())
    }

    /// The TTL index deletes failures after [`FAILURE_RETENTION`] anyway; this deletes
    /// them sooner, for a caller that wants to.
    async fn purge_before(
        &self,
        before: OffsetDateTime,
        batch: u64,
    ) -> Result<u64, RepositoryError> {
        purge::purge_before(&self.failures, "purge failures", before, batch).await
    }
}
