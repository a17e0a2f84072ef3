//! The [`Outbox`] adapter: one row of `outbox` per mail, written by
//! [`crate::SqlStores::commit`], leased and settled by the worker.
//!
//! A lease is a compare-and-set per row: an `UPDATE` whose condition is the state the row
//! was read in (pending, due, its lease free or lapsed, its attempts), so that of two
//! workers on two instances that read the same row, exactly one updates it. Every engine
//! re-evaluates an `UPDATE`'s condition on the row as it is once the row is locked
//! (PostgreSQL under read committed, InnoDB's locking read, SQLite's single writer).

use auth_domain::{
    mail::{Leased, Mail, MailKind, MailStatus, Outbox, OutboxEntry},
    timestamp::truncate_to_micros,
    Email, RepositoryError,
};
use sea_orm::{
    sea_query::{Condition, Expr, Query},
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait, PaginatorTrait,
    QueryFilter, QueryOrder, QuerySelect, Value,
};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::{entity::outbox, error::repository_error, timestamp, MAX_PURGE_BATCH_SIZE};

/// The outbox in the `outbox` table.
#[derive(Debug, Clone)]
pub struct SqlOutbox {
    db: DatabaseConnection,
}

impl SqlOutbox {
    /// An outbox on an open pool (see [`crate::connect`]) of an installed schema.
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db }
    }

    fn at(&self, at: OffsetDateTime) -> Value {
        timestamp::value(self.db.get_database_backend(), at)
    }

    /// Takes the lease `lease` until `until` on `row`, if the row is still as it was read:
    /// pending, due at `now`, unleased or its lease lapsed, with the same attempts.
    async fn take(
        &self,
        row: &outbox::Model,
        now: &Value,
        lease: Uuid,
        until: OffsetDateTime,
    ) -> Result<bool, DbErr> {
        let taken = outbox::Entity::update_many()
            .col_expr(outbox::Column::LeaseId, Expr::value(lease))
            .col_expr(outbox::Column::LeaseUntil, Expr::value(self.at(until)))
            .filter(outbox::Column::Id.eq(row.id))
            .filter(outbox::Column::Attempts.eq(row.attempts))
            .filter(due(now))
            .exec(&self.db)
            .await?;
        Ok(taken.rows_affected == 1)
    }

    /// Applies `settle` to the mail of `leased` if its lease is still the one held, and
    /// frees the lease; returns whether it was.
    async fn settle(
        &self,
        operation: &'static str,
        leased: &Leased,
        settle: sea_orm::UpdateMany<outbox::Entity>,
    ) -> Result<bool, RepositoryError> {
        let settled = settle
            .col_expr(outbox::Column::LeaseId, Expr::value(Option::<Uuid>::None))
            .col_expr(
                outbox::Column::LeaseUntil,
                Expr::value(Value::from(Option::<OffsetDateTime>::None)),
            )
            .col_expr(
                outbox::Column::Attempts,
                Expr::col(outbox::Column::Attempts).add(1),
            )
            .filter(outbox::Column::Id.eq(leased.mail.id))
            .filter(outbox::Column::LeaseId.eq(leased.lease))
            .filter(outbox::Column::Status.eq(MailStatus::Pending.as_str()))
            .exec(&self.db)
            .await
            .map_err(|err| repository_error(operation, &err))?;
        Ok(settled.rows_affected == 1)
    }
}

/// Pending, due at `now`, and no live lease on it.
fn due(now: &Value) -> Condition {
    Condition::all()
        .add(outbox::Column::Status.eq(MailStatus::Pending.as_str()))
        .add(outbox::Column::NextAttemptAt.lte(now.clone()))
        .add(
            Condition::any()
                .add(outbox::Column::LeaseUntil.is_null())
                .add(outbox::Column::LeaseUntil.lte(now.clone())),
        )
}

impl Outbox for SqlOutbox {
    /// Reads the due rows, oldest due first, then leases each by compare-and-set (see the
    /// module docs): a row another worker took in between is skipped.
    async fn lease_due(
        &self,
        now: OffsetDateTime,
        lease: time::Duration,
        limit: u32,
    ) -> Result<Vec<Leased>, RepositoryError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let failed = |err: DbErr| repository_error("lease mail", &err);
        let until = truncate_to_micros(now + lease);
        let now = self.at(now);
        let rows = outbox::Entity::find()
            .filter(due(&now))
            .order_by_asc(outbox::Column::NextAttemptAt)
            .order_by_asc(outbox::Column::Id)
            .limit(u64::from(limit))
            .all(&self.db)
            .await
            .map_err(failed)?;
        let mut leased = Vec::with_capacity(rows.len());
        for row in rows {
            // Random enough that no other worker holds the same (74 random bits).
            let id = Uuid::now_v7();
            if self.take(&row, &now, id, until).await.map_err(failed)? {
                let attempts = u32::try_from(row.attempts).unwrap_or(0);
                leased.push(Leased {
                    mail: into_mail(row)?,
                    attempts,
                    lease: id,
                    until,
                });
            }
        }
        Ok(leased)
    }

    async fn mark_sent(
        &self,
        leased: &Leased,
        at: OffsetDateTime,
    ) -> Result<bool, RepositoryError> {
        let sent = outbox::Entity::update_many()
            .col_expr(
                outbox::Column::Status,
                Expr::value(MailStatus::Sent.as_str()),
            )
            .col_expr(outbox::Column::SentAt, Expr::value(self.at(at)))
            // The body may hold a live token: it goes once it has been handed over.
            .col_expr(outbox::Column::Body, Expr::value(""));
        self.settle("mark mail sent", leased, sent).await
    }

    async fn mark_attempt_failed(
        &self,
        leased: &Leased,
        error: &str,
        next_attempt_at: Option<OffsetDateTime>,
    ) -> Result<bool, RepositoryError> {
        let failed =
            outbox::Entity::update_many().col_expr(outbox::Column::LastError, Expr::value(error));
        let failed = match next_attempt_at {
            Some(at) => failed.col_expr(outbox::Column::NextAttemptAt, Expr::value(self.at(at))),
            None => failed.col_expr(
                outbox::Column::Status,
                Expr::value(MailStatus::Failed.as_str()),
            ),
        };
        self.settle("mark mail failed", leased, failed).await
    }

    /// Newest first; the id (a UUIDv7) orders mail of the same microsecond.
    async fn list(
        &self,
        status: Option<MailStatus>,
        limit: u64,
    ) -> Result<Vec<OutboxEntry>, RepositoryError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let mut query = outbox::Entity::find();
        if let Some(status) = status {
            query = query.filter(outbox::Column::Status.eq(status.as_str()));
        }
        query
            .order_by_desc(outbox::Column::CreatedAt)
            .order_by_desc(outbox::Column::Id)
            .limit(limit)
            .all(&self.db)
            .await
            .map_err(|err| repository_error("list mail", &err))?
            .into_iter()
            .map(into_entry)
            .collect()
    }

    async fn retry_failed(
        &self,
        id: Option<Uuid>,
        now: OffsetDateTime,
    ) -> Result<u64, RepositoryError> {
        let mut retry = outbox::Entity::update_many()
            .col_expr(
                outbox::Column::Status,
                Expr::value(MailStatus::Pending.as_str()),
            )
            .col_expr(outbox::Column::Attempts, Expr::value(0))
            .col_expr(outbox::Column::NextAttemptAt, Expr::value(self.at(now)))
            .col_expr(outbox::Column::LeaseId, Expr::value(Option::<Uuid>::None))
            .col_expr(
                outbox::Column::LeaseUntil,
                Expr::value(Value::from(Option::<OffsetDateTime>::None)),
            )
            .filter(outbox::Column::Status.eq(MailStatus::Failed.as_str()));
        if let Some(id) = id {
            retry = retry.filter(outbox::Column::Id.eq(id));
        }
        retry
            .exec(&self.db)
            .await
            .map(|retried| retried.rows_affected)
            .map_err(|err| repository_error("retry mail", &err))
    }

    async fn pending(&self) -> Result<u64, RepositoryError> {
        outbox::Entity::find()
            .filter(outbox::Column::Status.eq(MailStatus::Pending.as_str()))
            .count(&self.db)
            .await
            .map_err(|err| repository_error("count pending mail", &err))
    }

    /// One batch, ids first, as `crate::purge` does. Sent mail is settled when it was
    /// sent; failed mail when its last attempt was due.
    async fn purge_settled_before(
        &self,
        before: OffsetDateTime,
        batch: u64,
    ) -> Result<u64, RepositoryError> {
        let before = self.at(before);
        let settled = Condition::any()
            .add(
                Condition::all()
                    .add(outbox::Column::Status.eq(MailStatus::Sent.as_str()))
                    .add(outbox::Column::SentAt.lt(before.clone())),
            )
            .add(
                Condition::all()
                    .add(outbox::Column::Status.eq(MailStatus::Failed.as_str()))
                    .add(outbox::Column::NextAttemptAt.lt(before)),
            );
        let purge = async {
            let ids: Vec<Uuid> = outbox::Entity::find()
                .select_only()
                .column(outbox::Column::Id)
                .filter(settled.clone())
                .limit(batch.clamp(1, MAX_PURGE_BATCH_SIZE))
                .into_tuple()
                .all(&self.db)
                .await?;
            if ids.is_empty() {
                return Ok(0);
            }
            // The condition again: a failed mail retried meanwhile is pending, and stays.
            let deleted = outbox::Entity::delete_many()
                .filter(outbox::Column::Id.is_in(ids))
                .filter(settled)
                .exec(&self.db)
                .await?;
            Ok::<_, DbErr>(deleted.rows_affected)
        };
        purge
            .await
            .map_err(|err| repository_error("purge mail", &err))
    }
}

/// Puts `mail` in the outbox, pending, due when it was written.
pub(crate) async fn enqueue(db: &impl ConnectionTrait, mail: &Mail) -> Result<(), DbErr> {
    let backend = db.get_database_backend();
    let created_at = timestamp::value(backend, mail.created_at);
    let mut statement = Query::insert();
    statement
        .into_table(outbox::Entity)
        .columns([
            outbox::Column::Id,
            outbox::Column::Kind,
            outbox::Column::Recipient,
            outbox::Column::Subject,
            outbox::Column::Body,
            outbox::Column::Status,
            outbox::Column::Attempts,
            outbox::Column::NextAttemptAt,
            outbox::Column::CreatedAt,
        ])
        .values([
            mail.id.into(),
            mail.kind.as_str().into(),
            mail.to.as_str().into(),
            mail.subject.as_str().into(),
            mail.body.as_str().into(),
            MailStatus::Pending.as_str().into(),
            0.into(),
            created_at.clone().into(),
            created_at.into(),
        ])
        .map_err(|err| DbErr::Custom(format!("enqueue mail: {err}")))?;
    db.execute(backend.build(&statement)).await?;
    Ok(())
}

/// The mail a row holds; a kind this version cannot read is a storage error.
fn into_mail(row: outbox::Model) -> Result<Mail, RepositoryError> {
    let kind = MailKind::parse(&row.kind)
        .ok_or_else(|| RepositoryError::new("read mail: a stored mail has an unknown kind"))?;
    Ok(Mail {
        id: row.id,
        kind,
        to: Email::from_trusted(row.recipient),
        subject: row.subject,
        body: row.body,
        created_at: row.created_at,
    })
}

/// The entry a row holds.
fn into_entry(row: outbox::Model) -> Result<OutboxEntry, RepositoryError> {
    let status = MailStatus::parse(&row.status)
        .ok_or_else(|| RepositoryError::new("read mail: a stored mail has an unknown status"))?;
    Ok(OutboxEntry {
        status,
        attempts: u32::try_from(row.attempts).unwrap_or(0),
        next_attempt_at: row.next_attempt_at,
        last_error: row.last_error.clone(),
        sent_at: row.sent_at,
        mail: into_mail(row)?,
    })
}
