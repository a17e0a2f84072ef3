//! The audit trail as documents, behind the [`AuditLog`] port.

use std::fmt;

use auth_domain::{
    audit::{Actor, AuditLog, AuthEvent, EventKind, EventPage},
    RepositoryError, UserId,
};
use bson::{doc, DateTime, Document};
use mongodb::{Collection, Database};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::{
    error::repository_error,
    purge, timestamp,
    tx::{run, Failure, Tx},
};

/// Field names, shared with the index declarations.
pub(crate) mod fields {
    pub(crate) use crate::purge::fields::{AT, AT_US};
    pub(crate) const ID: &str = "_id";
    pub(crate) const USER_ID: &str = "user_id";
    pub(crate) const KIND: &str = "kind";
}

/// An event as stored. `_id` and `user_id` are UUIDs in their string form, like the
/// users' `_id`; `at` is the date for people, tools and the purge's index, `at_us` the
/// instant read back.
#[derive(Serialize, Deserialize)]
pub(crate) struct EventDocument {
    #[serde(rename = "_id")]
    id: String,
    pub(crate) at: DateTime,
    at_us: i64,
    kind: String,
    user_id: Option<String>,
    /// Absent on events stored before actors were recorded: those were all a user's.
    #[serde(default = "user_actor")]
    actor: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    request_id: Option<String>,
    ip: Option<String>,
    user_agent: Option<String>,
    /// Absent on events stored before counts were recorded: those stood for one.
    #[serde(default = "one")]
    count: i64,
}

fn user_actor() -> String {
    Actor::User.as_str().to_owned()
}

fn one() -> i64 {
    1
}

impl TryFrom<&AuthEvent> for EventDocument {
    type Error = RepositoryError;

    fn try_from(event: &AuthEvent) -> Result<Self, Self::Error> {
        let at_us = timestamp::micros(event.at)
            .ok_or_else(|| RepositoryError::new("record event: the instant is out of range"))?;
        Ok(Self {
            id: event.id.to_string(),
            at: timestamp::date(at_us),
            at_us,
            kind: event.kind.as_str().to_owned(),
            user_id: event.user_id.map(|user| user.to_string()),
            actor: event.actor.as_str().to_owned(),
            request_id: event.request_id.clone(),
            ip: event.ip.map(|ip| ip.to_string()),
            user_agent: event.user_agent.clone(),
            count: i64::from(event.count),
        })
    }
}

impl TryFrom<EventDocument> for AuthEvent {
    type Error = RepositoryError;

    /// A value this version cannot read is a storage error naming the field, never the
    /// value.
    fn try_from(doc: EventDocument) -> Result<Self, Self::Error> {
        let malformed = |field: &str| {
            RepositoryError::new(format!(
                "list events: a stored event has a malformed {field}"
            ))
        };
        Ok(AuthEvent {
            id: doc.id.parse().map_err(|_| malformed("_id"))?,
            at: timestamp::read(doc.at_us).ok_or_else(|| malformed("at_us"))?,
            kind: EventKind::parse(&doc.kind).ok_or_else(|| malformed("kind"))?,
            user_id: doc
                .user_id
                .map(|user| user.parse::<UserId>())
                .transpose()
                .map_err(|_| malformed("user_id"))?,
            actor: Actor::parse(&doc.actor).ok_or_else(|| malformed("actor"))?,
            request_id: doc.request_id,
            ip: doc
                .ip
                .map(|ip| ip.parse())
                .transpose()
                .map_err(|_| malformed("ip"))?,
            user_agent: doc.user_agent,
            count: u32::try_from(doc.count)
                .ok()
                .filter(|count| *count >= 1)
                .ok_or_else(|| malformed("count"))?,
        })
    }
}

/// The events collection as an [`AuditLog`]. Cheap to clone: clones share one client.
#[derive(Clone)]
pub struct MongoAuditLog {
    pub(crate) events: Collection<EventDocument>,
}

impl MongoAuditLog {
    /// The log over the `events` collection of `db`;
    /// [`crate::ensure_throttle_and_audit_indexes`] must have run for a user's events and
    /// the purge to use an index.
    pub fn new(db: &Database, events: &str) -> Self {
        Self {
            events: db.collection(events),
        }
    }
}

impl MongoAuditLog {
    /// Stores `event`, in the transaction of the action it records when there is one.
    pub(crate) async fn insert_in(
        &self,
        tx: &mut Tx<'_>,
        event: &AuthEvent,
    ) -> Result<(), Failure> {
        let document = EventDocument::try_from(event)?;
        run!(tx, self.events.insert_one(document))?;
        Ok(())
    }
}

impl fmt::Debug for MongoAuditLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MongoAuditLog")
            .field("collection", &self.events.namespace().to_string())
            .finish()
    }
}

impl AuditLog for MongoAuditLog {
    async fn record(&self, event: &AuthEvent) -> Result<(), RepositoryError> {
        self.insert_in(&mut None, event)
            .await
            .map_err(|failure| failure.into_repository_error("record event"))
    }

    /// Newest first; the id (a UUIDv7, whose string order is its time order) orders
    /// events of the same microsecond.
    /// One `find` over the `(user_id, at_us)` index. Ids are stored as hyphenated
    /// lowercase hexadecimal, which sorts as their bytes do.
    async fn recent_for_user(
        &self,
        user: UserId,
        page: &EventPage,
    ) -> Result<Vec<AuthEvent>, RepositoryError> {
        // A limit of zero means "no limit" to MongoDB.
        if page.limit == 0 {
            return Ok(Vec::new());
        }
        let mut filter = doc! { fields::USER_ID: user.to_string() };
        if !page.kinds.is_empty() {
            let kinds: Vec<&str> = page.kinds.iter().map(|kind| kind.as_str()).collect();
            filter.insert(fields::KIND, doc! { "$in": kinds });
        }
        if let Some(cursor) = page.before {
            let at_us = timestamp::micros(cursor.at)
                .ok_or_else(|| RepositoryError::new("list events: the cursor is out of range"))?;
            filter.insert(
                "$or",
                vec![
                    doc! { fields::AT_US: { "$lt": at_us } },
                    doc! { fields::AT_US: at_us, fields::ID: { "$lt": cursor.id.to_string() } },
                ],
            );
        }
        let driver = |error: mongodb::error::Error| repository_error("list events", &error);
        let mut cursor = self
            .events
            .find(filter)
            .sort(doc! { fields::AT_US: -1, fields::ID: -1 })
            .limit(i64::try_from(page.limit).unwrap_or(i64::MAX))
            .await
            .map_err(driver)?;
        let mut events = Vec::new();
        while cursor.advance().await.map_err(driver)? {
            events.push(AuthEvent::try_from(
                cursor.deserialize_current().map_err(driver)?,
            )?);
        }
        Ok(events)
    }

    async fn purge_before(
        &self,
        before: OffsetDateTime,
        batch: u64,
    ) -> Result<u64, RepositoryError> {
        purge::purge_before(
            &self.events.clone_with_type::<Document>(),
            "purge events",
            before,
            batch,
        )
        .await
    }
}
