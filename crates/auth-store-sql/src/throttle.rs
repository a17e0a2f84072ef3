//! The [`FailureCounter`] adapter: one row of `login_failures` per attempt and key.

use std::collections::HashMap;

use auth_domain::{
    throttle::{AttemptId, FailureCount, FailureCounter, ThrottleKey},
    RepositoryError,
};
use sea_orm::{
    sea_query::{Expr, Query},
    ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter, QuerySelect,
};
use time::OffsetDateTime;

use crate::{entity::login_failures, error::repository_error, purge, timestamp};

/// Failed attempts in the `login_failures` table, shared by every instance on the database.
#[derive(Debug, Clone)]
pub struct SqlFailureCounter {
    db: DatabaseConnection,
}

impl SqlFailureCounter {
    /// A counter on an open pool (see [`crate::connect`]) of an installed schema.
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db }
    }
}

impl FailureCounter for SqlFailureCounter {
    /// One grouped `SELECT` over the `(key, at)` index, whatever the number of keys.
    async fn failures(
        &self,
        keys: &[ThrottleKey],
        since: OffsetDateTime,
    ) -> Result<Vec<FailureCount>, RepositoryError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let backend = self.db.get_database_backend();
        let rows: Vec<(String, i64, OffsetDateTime)> = login_failures::Entity::find()
            .select_only()
            .column(login_failures::Column::Key)
            .column_as(Expr::col(login_failures::Column::Id).count(), "failures")
            .column_as(Expr::col(login_failures::Column::At).min(), "oldest")
            .filter(login_failures::Column::Key.is_in(keys.iter().map(ThrottleKey::as_str)))
            .filter(login_failures::Column::At.gte(timestamp::value(backend, since)))
            .group_by(login_failures::Column::Key)
            .into_tuple()
            .all(&self.db)
            .await
            .map_err(|err| repository_error("count failures", &err))?;
        let counted: HashMap<String, FailureCount> = rows
            .into_iter()
            .map(|(key, count, oldest)| {
                let count = FailureCount {
                    count: u64::try_from(count).unwrap_or(0),
                    oldest: Some(oldest),
                };
                (key, count)
            })
            .collect();
        Ok(FailureCount::in_key_order(keys, &counted))
    }

    /// One multi-row `INSERT`.
    async fn record_failure(
        &self,
        keys: &[ThrottleKey],
        at: OffsetDateTime,
        attempt: AttemptId,
    ) -> Result<(), RepositoryError> {
        if keys.is_empty() {
            return Ok(());
        }
        let backend = self.db.get_database_backend();
        let at = timestamp::value(backend, at);
        let mut statement = Query::insert();
        statement.into_table(login_failures::Entity).columns([
            login_failures::Column::Key,
            login_failures::Column::At,
            login_failures::Column::Attempt,
        ]);
        for key in keys {
            statement
                .values([key.as_str().into(), at.clone().into(), attempt.get().into()])
                .map_err(|err| RepositoryError::new(format!("record failures: {err}")))?;
        }
        self.db
            .execute(backend.build(&statement))
            .await
            .map_err(|err| repository_error("record failures", &err))?;
        Ok(())
    }

    /// One `DELETE` over the `(key, at)` index.
    async fn withdraw(
        &self,
        keys: &[ThrottleKey],
        attempt: AttemptId,
    ) -> Result<(), RepositoryError> {
        if keys.is_empty() {
            return Ok(());
        }
        login_failures::Entity::delete_many()
            .filter(login_failures::Column::Key.is_in(keys.iter().map(ThrottleKey::as_str)))
            .filter(login_failures::Column::Attempt.eq(attempt.get()))
            .exec(&self.db)
            .await
            .map_err(|err| repository_error("withdraw an attempt", &err))?;
        Ok(())
    }

    async fn reset(&self, key: &ThrottleKey) -> Result<(), RepositoryError> {
        login_failures::Entity::delete_many()
            .filter(login_failures::Column::Key.eq(key.as_str()))
            .exec(&self.db)
            .await
            .map_err(|err| repository_error("reset failures", &err))?;
        Ok(())
    }

    async fn purge_before(
        &self,
        before: OffsetDateTime,
        batch: u64,
    ) -> Result<u64, RepositoryError> {
        purge::purge_before::<login_failures::Entity, i64>(
            &self.db,
            login_failures::Column::Id,
            login_failures::Column::At,
            before,
            batch,
        )
        .await
        .map_err(|err| repository_error("purge failures", &err))
    }
}
