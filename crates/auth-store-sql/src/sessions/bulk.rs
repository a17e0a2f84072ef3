//! Sessions written many at a time, for tests and benchmarks (cargo feature `bulk`): a
//! caller that needs a million stored sessions gets them in the store's own encoding,
//! without restating it and without a million round trips through `create`.

use sea_orm::{
    sea_query::{Expr, Query},
    ConnectionTrait as _, DbErr, TransactionTrait as _,
};
use time::OffsetDateTime;
use tower_sessions::{session::Record, session_store};

use super::{encode, new_row, SqlSessionStore, NEW_ROW};
use crate::{entity::sessions, error::session_error, timestamp};

/// Rows per `INSERT`: six parameters a row keeps a statement under SQLite's 32 766.
const ROWS_PER_STATEMENT: usize = 5_000;

impl SqlSessionStore {
    /// Stores each record as [`create`](tower_sessions::SessionStore::create) would have
    /// stored it at the instant paired with it (created and last seen then), in multi-row
    /// inserts inside one transaction.
    ///
    /// # Errors
    ///
    /// The database failed, an id is already in use, or a record's data cannot be
    /// encoded: then none of `sessions` is stored.
    pub async fn create_many(
        &self,
        sessions: &[(Record, OffsetDateTime)],
    ) -> session_store::Result<()> {
        self.insert_many(sessions)
            .await
            .map_err(|err| session_error("create sessions", &err))
    }

    async fn insert_many(&self, sessions: &[(Record, OffsetDateTime)]) -> Result<(), DbErr> {
        let backend = self.db.get_database_backend();
        let transaction = self.db.begin().await?;
        for chunk in sessions.chunks(ROWS_PER_STATEMENT) {
            let mut insert = Query::insert();
            insert.into_table(sessions::Entity).columns(NEW_ROW);
            for (record, seen_at) in chunk {
                let data = encode(&record.data).map_err(|err| DbErr::Custom(err.to_string()))?;
                insert
                    .values(new_row(backend, record, &data, *seen_at))
                    .map_err(|err| DbErr::Custom(err.to_string()))?;
            }
            transaction.execute(backend.build(&insert)).await?;
        }
        transaction.commit().await
    }

    /// Whether a session that expired at or before `up_to` is still stored, purged or
    /// not: a probe of the expiry index, cheap whatever the table holds (how far a purge
    /// has got).
    ///
    /// # Errors
    ///
    /// The database failed.
    pub async fn holds_expired_at(&self, up_to: OffsetDateTime) -> Result<bool, DbErr> {
        let backend = self.db.get_database_backend();
        let probe = Query::select()
            .expr(Expr::val(1))
            .from(sessions::Entity)
            .and_where(Expr::col(sessions::Column::ExpiresAt).lte(timestamp::value(backend, up_to)))
            .limit(1)
            .to_owned();
        Ok(self.db.query_one(backend.build(&probe)).await?.is_some())
    }
}
