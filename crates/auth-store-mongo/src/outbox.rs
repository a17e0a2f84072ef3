//! The outbox as documents, behind the [`Outbox`] port.
//!
//! A lease is one `findOneAndUpdate` per mail, whose filter is "pending, due, no live
//! lease": the server applies it to one document atomically, so two workers on two
//! instances never both lease one mail.

use std::fmt;

use auth_domain::{
    mail::{Leased, Mail, MailKind, MailStatus, Outbox, OutboxEntry},
    Email, RepositoryError,
};
use bson::{doc, Bson, Document};
use mongodb::{
    options::{FindOneAndUpdateOptions, ReturnDocument},
    Collection, Database,
};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::{
    error::repository_error,
    purge, timestamp,
    tx::{run, Failure, Tx},
};

/// Field names, shared with the index declarations.
pub(crate) mod fields {
    pub(crate) const ID: &str = "_id";
    pub(crate) const BODY: &str = "body";
    pub(crate) const STATUS: &str = "status";
    pub(crate) const ATTEMPTS: &str = "attempts";
    pub(crate) const NEXT_ATTEMPT_AT_US: &str = "next_attempt_at_us";
    pub(crate) const LEASE_ID: &str = "lease_id";
    pub(crate) const LEASE_UNTIL_US: &str = "lease_until_us";
    pub(crate) const LAST_ERROR: &str = "last_error";
    pub(crate) const CREATED_AT_US: &str = "created_at_us";
    pub(crate) const SENT_AT_US: &str = "sent_at_us";
}

/// A mail as stored: `_id` is its UUID in string form, its instants microseconds.
#[derive(Serialize, Deserialize)]
pub(crate) struct MailDocument {
    #[serde(rename = "_id")]
    id: String,
    kind: String,
    to: String,
    subject: String,
    body: String,
    status: String,
    attempts: i64,
    next_attempt_at_us: i64,
    #[serde(default)]
    lease_id: Option<String>,
    #[serde(default)]
    lease_until_us: Option<i64>,
    #[serde(default)]
    last_error: Option<String>,
    created_at_us: i64,
    #[serde(default)]
    sent_at_us: Option<i64>,
}

impl TryFrom<&Mail> for MailDocument {
    type Error = RepositoryError;

    /// A new mail: pending, due when it was written.
    fn try_from(mail: &Mail) -> Result<Self, Self::Error> {
        let created_at_us = timestamp::micros(mail.created_at)
            .ok_or_else(|| RepositoryError::new("enqueue mail: the instant is out of range"))?;
        Ok(Self {
            id: mail.id.to_string(),
            kind: mail.kind.as_str().to_owned(),
            to: mail.to.as_str().to_owned(),
            subject: mail.subject.clone(),
            body: mail.body.clone(),
            status: MailStatus::Pending.as_str().to_owned(),
            attempts: 0,
            next_attempt_at_us: created_at_us,
            lease_id: None,
            lease_until_us: None,
            last_error: None,
            created_at_us,
            sent_at_us: None,
        })
    }
}

impl MailDocument {
    fn malformed(field: &str) -> RepositoryError {
        RepositoryError::new(format!("read mail: a stored mail has a malformed {field}"))
    }

    fn attempts(&self) -> Result<u32, RepositoryError> {
        u32::try_from(self.attempts).map_err(|_| Self::malformed("attempts"))
    }

    fn into_entry(self) -> Result<OutboxEntry, RepositoryError> {
        let status = MailStatus::parse(&self.status).ok_or_else(|| Self::malformed("status"))?;
        let attempts = self.attempts()?;
        let next_attempt_at = timestamp::read(self.next_attempt_at_us)
            .ok_or_else(|| Self::malformed("next_attempt_at"))?;
        let sent_at = self
            .sent_at_us
            .map(|us| timestamp::read(us).ok_or_else(|| Self::malformed("sent_at")))
            .transpose()?;
        Ok(OutboxEntry {
            last_error: self.last_error.clone(),
            mail: self.into_mail()?,
            status,
            attempts,
            next_attempt_at,
            sent_at,
        })
    }

    fn into_mail(self) -> Result<Mail, RepositoryError> {
        Ok(Mail {
            id: self.id.parse().map_err(|_| Self::malformed("_id"))?,
            kind: MailKind::parse(&self.kind).ok_or_else(|| Self::malformed("kind"))?,
            to: Email::from_trusted(self.to),
            subject: self.subject,
            body: self.body,
            created_at: timestamp::read(self.created_at_us)
                .ok_or_else(|| Self::malformed("created_at"))?,
        })
    }
}

/// The outbox collection as an [`Outbox`]. Cheap to clone: clones share one client.
#[derive(Clone)]
pub struct MongoOutbox {
    pub(crate) outbox: Collection<MailDocument>,
}

impl MongoOutbox {
    /// The outbox over the `outbox` collection of `db`; [`crate::ensure_mail_indexes`]
    /// must have run for leasing, listing and the purge to use an index.
    pub fn new(db: &Database, outbox: &str) -> Self {
        Self {
            outbox: db.collection(outbox),
        }
    }

    /// Puts `mail` in, pending and due at once.
    pub(crate) async fn enqueue_in(&self, tx: &mut Tx<'_>, mail: &Mail) -> Result<(), Failure> {
        let document = MailDocument::try_from(mail)?;
        run!(tx, self.outbox.insert_one(document))?;
        Ok(())
    }

    /// Applies `set` (and `inc`) to the mail of `leased` if its lease is still the one
    /// held, and frees the lease; whether it was.
    async fn settle(
        &self,
        operation: &'static str,
        leased: &Leased,
        mut set: Document,
    ) -> Result<bool, RepositoryError> {
        set.insert(fields::LEASE_ID, Bson::Null);
        set.insert(fields::LEASE_UNTIL_US, Bson::Null);
        let settled = self
            .outbox
            .update_one(
                doc! {
                    fields::ID: leased.mail.id.to_string(),
                    fields::LEASE_ID: leased.lease.to_string(),
                    fields::STATUS: MailStatus::Pending.as_str(),
                },
                doc! { "$set": set, "$inc": { fields::ATTEMPTS: 1 } },
            )
            .await
            .map_err(|e| repository_error(operation, &e))?;
        Ok(settled.matched_count == 1)
    }
}

fn micros(operation: &str, at: OffsetDateTime) -> Result<i64, RepositoryError> {
    timestamp::micros(at)
        .ok_or_else(|| RepositoryError::new(format!("{operation}: the instant is out of range")))
}

impl fmt::Debug for MongoOutbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MongoOutbox")
            .field("collection", &self.outbox.namespace().to_string())
            .finish()
    }
}

impl Outbox for MongoOutbox {
    /// One `findOneAndUpdate` per mail, oldest due first (see the module docs).
    async fn lease_due(
        &self,
        now: OffsetDateTime,
        lease: time::Duration,
        limit: u32,
    ) -> Result<Vec<Leased>, RepositoryError> {
        let now_us = micros("lease mail", now)?;
        let until = auth_domain::timestamp::truncate_to_micros(now + lease);
        let until_us = micros("lease mail", until)?;
        let due = doc! {
            fields::STATUS: MailStatus::Pending.as_str(),
            fields::NEXT_ATTEMPT_AT_US: { "$lte": now_us },
            "$or": [
                { fields::LEASE_UNTIL_US: Bson::Null },
                { fields::LEASE_UNTIL_US: { "$lte": now_us } },
            ],
        };
        let options = FindOneAndUpdateOptions::builder()
            .sort(doc! { fields::NEXT_ATTEMPT_AT_US: 1, fields::ID: 1 })
            .return_document(ReturnDocument::After)
            .build();
        let mut leased = Vec::new();
        while leased.len() < limit as usize {
            // Random enough (74 bits) that no other worker holds the same.
            let lease = Uuid::now_v7();
            let taken = self
                .outbox
                .find_one_and_update(
                    due.clone(),
                    doc! { "$set": {
                        fields::LEASE_ID: lease.to_string(),
                        fields::LEASE_UNTIL_US: until_us,
                    } },
                )
                .with_options(options.clone())
                .await
                .map_err(|e| repository_error("lease mail", &e))?;
            let Some(document) = taken else {
                break;
            };
            let attempts = document.attempts()?;
            leased.push(Leased {
                mail: document.into_mail()?,
                attempts,
                lease,
                until,
            });
        }
        Ok(leased)
    }

    async fn mark_sent(
        &self,
        leased: &Leased,
        at: OffsetDateTime,
    ) -> Result<bool, RepositoryError> {
        let set = doc! {
            fields::STATUS: MailStatus::Sent.as_str(),
            fields::SENT_AT_US: micros("mark mail sent", at)?,
            // The body may hold a live token: it goes once it has been handed over.
            fields::BODY: "",
        };
        self.settle("mark mail sent", leased, set).await
    }

    async fn mark_attempt_failed(
        &self,
        leased: &Leased,
        error: &str,
        next_attempt_at: Option<OffsetDateTime>,
    ) -> Result<bool, RepositoryError> {
        let mut set = doc! { fields::LAST_ERROR: error };
        match next_attempt_at {
            Some(at) => {
                set.insert(fields::NEXT_ATTEMPT_AT_US, micros("mark mail failed", at)?);
            }
            None => {
                set.insert(fields::STATUS, MailStatus::Failed.as_str());
            }
        }
        self.settle("mark mail failed", leased, set).await
    }

    /// Newest first; the id (a UUIDv7, whose string order is its time order) orders mail
    /// of the same microsecond.
    async fn list(
        &self,
        status: Option<MailStatus>,
        limit: u64,
    ) -> Result<Vec<OutboxEntry>, RepositoryError> {
        // A limit of zero means "no limit" to MongoDB.
        if limit == 0 {
            return Ok(Vec::new());
        }
        let filter = match status {
            Some(status) => doc! { fields::STATUS: status.as_str() },
            None => doc! {},
        };
        let driver = |e: mongodb::error::Error| repository_error("list mail", &e);
        let mut cursor = self
            .outbox
            .find(filter)
            .sort(doc! { fields::CREATED_AT_US: -1, fields::ID: -1 })
            .limit(i64::try_from(limit).unwrap_or(i64::MAX))
            .await
            .map_err(driver)?;
        let mut listed = Vec::new();
        while cursor.advance().await.map_err(driver)? {
            listed.push(cursor.deserialize_current().map_err(driver)?.into_entry()?);
        }
        Ok(listed)
    }

    async fn retry_failed(
        &self,
        id: Option<Uuid>,
        now: OffsetDateTime,
    ) -> Result<u64, RepositoryError> {
        let mut filter = doc! { fields::STATUS: MailStatus::Failed.as_str() };
        if let Some(id) = id {
            filter.insert(fields::ID, id.to_string());
        }
        let retried = self
            .outbox
            .update_many(
                filter,
                doc! { "$set": {
                    fields::STATUS: MailStatus::Pending.as_str(),
                    fields::ATTEMPTS: 0_i64,
                    fields::NEXT_ATTEMPT_AT_US: micros("retry mail", now)?,
                    fields::LEASE_ID: Bson::Null,
                    fields::LEASE_UNTIL_US: Bson::Null,
                } },
            )
            .await
            .map_err(|e| repository_error("retry mail", &e))?;
        Ok(retried.matched_count)
    }

    async fn pending(&self) -> Result<u64, RepositoryError> {
        self.outbox
            .count_documents(doc! { fields::STATUS: MailStatus::Pending.as_str() })
            .await
            .map_err(|e| repository_error("count pending mail", &e))
    }

    /// One batch, ids first. Sent mail is settled when it was sent; failed mail when its
    /// last attempt was due.
    async fn purge_settled_before(
        &self,
        before: OffsetDateTime,
        batch: u64,
    ) -> Result<u64, RepositoryError> {
        let before_us = micros("purge mail", before)?;
        let settled = doc! { "$or": [
            { fields::STATUS: MailStatus::Sent.as_str(), fields::SENT_AT_US: { "$lt": before_us } },
            { fields::STATUS: MailStatus::Failed.as_str(), fields::NEXT_ATTEMPT_AT_US: { "$lt": before_us } },
        ] };
        // The condition is checked again as the batch is deleted: a failed mail retried
        // meanwhile is pending, and stays.
        let documents = self.outbox.clone_with_type::<Document>();
        let (_, deleted) = purge::delete_batch(&documents, "purge mail", &settled, batch).await?;
        Ok(deleted)
    }
}
