//! Server-side sessions as documents, behind tower-sessions' [`SessionStore`].

use std::fmt;

use async_trait::async_trait;
use auth_domain::{
    clock::Clock,
    session::{self, OwnedSession, Owner, SessionHandle, SessionInfo, StoredData},
    OwnedSessions, RepositoryError, UserId, UserSessions,
};
use bson::{doc, Bson, DateTime, Document};
use mongodb::{Collection, Database};
use serde::{Deserialize, Serialize};
use session::Login;
use time::OffsetDateTime;
use tower_sessions::{
    session::{Id, Record},
    session_store::{self, SessionStore},
};

use crate::{
    error::{duplicate_key_message, repository_error, session_error},
    timestamp,
    tx::{run, Tx},
};

/// Field names, shared with the index declarations.
pub(crate) mod fields {
    pub(crate) const KEY: &str = "_id";
    pub(crate) const CREATED_AT: &str = "created_at";
    pub(crate) const DATA: &str = "data";
    pub(crate) const USER_ID: &str = "user_id";
    pub(crate) const LAST_SEEN_AT: &str = "last_seen_at";
    pub(crate) const EXPIRES_AT: &str = "expires_at";
    pub(crate) const EXPIRES_AT_US: &str = "expires_at_us";
    /// The owner's credential, which the user repository keeps current.
    pub(crate) const OWNER_CREDENTIAL: &str = "owner.credential";
    /// The owner's address, username and whether the address is verified, which the user
    /// repository keeps current too.
    pub(crate) const OWNER_EMAIL: &str = "owner.email";
    pub(crate) const OWNER_USERNAME: &str = "owner.username";
    pub(crate) const OWNER_EMAIL_VERIFIED: &str = "owner.email_verified";
}

/// How many fresh ids `create` tries before giving up. A collision of random 128-bit ids
/// does not happen twice; a loop without end would only hide a broken server.
const CREATE_ATTEMPTS: usize = 8;

/// A session as stored.
#[derive(Serialize, Deserialize)]
pub(crate) struct SessionDocument {
    /// [`session::storage_key`] of the id: a stolen copy of the collection holds no
    /// cookie that could be replayed.
    #[serde(rename = "_id")]
    key: String,
    /// The JSON text of the record's data. Text rather than a BSON document, because a
    /// data key may start with `$` or hold a `.`, which BSON field names must not.
    data: String,
    /// Who is logged in on this session, as the UUID string form of the users' `_id`.
    pub(crate) user_id: Option<String>,
    created_at: DateTime,
    /// When the session was last saved.
    last_seen_at: DateTime,
    /// The record's expiry as a date, rounded down to the millisecond: what the TTL index
    /// purges by and what `load` filters on.
    expires_at: DateTime,
    /// The record's expiry exactly, in microseconds since the Unix epoch (see
    /// [`crate::timestamp`]).
    expires_at_us: i64,
    /// A snapshot of the logged-in user, written at login and kept current by the user
    /// repository when the password changes, so that `load` brings the user in the same
    /// round trip (see [`auth_domain::session`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    owner: Option<Owner>,
}

impl SessionDocument {
    /// The record's expiry.
    fn expiry_date(&self) -> Option<OffsetDateTime> {
        timestamp::read(self.expires_at_us)
    }

    /// The session as its user sees it listed. Its creation and last write are known to
    /// the millisecond only (BSON dates), which is finer than a listing needs.
    pub(crate) fn info(self) -> Result<SessionInfo, RepositoryError> {
        let unreadable = |what: &str| {
            RepositoryError::new(format!(
                "list user sessions failed: a stored session's {what} is unreadable"
            ))
        };
        let expires_at = self.expiry_date().ok_or_else(|| unreadable("expiry"))?;
        // serde's message could quote the data: it is left out.
        let data: session::Data =
            serde_json::from_str(&self.data).map_err(|_| unreadable("data"))?;
        Ok(SessionInfo::from_stored(
            SessionHandle::from_trusted(self.key),
            self.created_at.to_time_0_3(),
            self.last_seen_at.to_time_0_3(),
            expires_at,
            &data,
        ))
    }
}

/// The sessions collection as a tower-sessions [`SessionStore`]. Cheap to clone: clones
/// share one client.
///
/// A session carries a snapshot of its user (see [`auth_domain::session`]), and MongoDB
/// offers no transaction across the two collections on a standalone server. So the
/// writes are ordered to fail safe, with the user repository's (see
/// `MongoUserRepository`): a login's session is created with the credential the login
/// verified, and the login manager reads the user again after the insert and deletes the
/// session unless that is still their credential; `save` never writes the snapshot, which
/// only the user repository keeps current.
#[derive(Clone)]
pub struct MongoSessionStore {
    pub(crate) sessions: Collection<SessionDocument>,
    /// What decides whether a session has expired.
    pub(crate) clock: Clock,
}

impl MongoSessionStore {
    /// The store over `collection` of `db`; [`crate::ensure_indexes`] must have run for
    /// expired sessions to be purged.
    pub fn new(db: &Database, collection: &str) -> Self {
        Self {
            sessions: db.collection(collection),
            clock: Clock::system(),
        }
    }

    /// The same store, telling expired sessions by `clock`.
    #[must_use]
    pub fn with_clock(self, clock: Clock) -> Self {
        Self { clock, ..self }
    }

    /// Deletes the sessions `filter` matches among `user`'s live ones: the TTL monitor
    /// runs about once a minute, so an expired document may still be there, and counting it
    /// would make the answer depend on when the monitor last ran.
    async fn delete_live(
        &self,
        operation: &'static str,
        user: UserId,
        mut filter: Document,
    ) -> Result<u64, RepositoryError> {
        filter.insert(fields::USER_ID, user.to_string());
        filter.insert(
            fields::EXPIRES_AT,
            doc! { "$gt": timestamp::now(&self.clock) },
        );
        self.sessions
            .delete_many(filter)
            .await
            .map(|deleted| deleted.deleted_count)
            .map_err(|e| repository_error(operation, &e))
    }
}

impl MongoSessionStore {
    /// Deletes the session `handle` if it is `user`'s and live; whether it did.
    pub(crate) async fn end_session_in(
        &self,
        tx: &mut Tx<'_>,
        user: UserId,
        handle: &SessionHandle,
    ) -> Result<bool, mongodb::error::Error> {
        let filter = doc! {
            fields::KEY: handle.as_str(),
            fields::USER_ID: user.to_string(),
            fields::EXPIRES_AT: { "$gt": timestamp::now(&self.clock) },
        };
        let deleted = run!(tx, self.sessions.delete_one(filter))?;
        Ok(deleted.deleted_count == 1)
    }
}

impl UserSessions for MongoSessionStore {
    /// One query on the indexed `user_id`; the expiry filter keeps out what the TTL
    /// monitor has not removed yet.
    async fn list_user_sessions(&self, user: UserId) -> Result<Vec<SessionInfo>, RepositoryError> {
        let failed = |e: &mongodb::error::Error| repository_error("list user sessions", e);
        let mut cursor = self
            .sessions
            .find(doc! {
                fields::USER_ID: user.to_string(),
                fields::EXPIRES_AT: { "$gt": timestamp::now(&self.clock) },
            })
            .await
            .map_err(|e| failed(&e))?;
        let mut listed = Vec::new();
        while cursor.advance().await.map_err(|e| failed(&e))? {
            let document = cursor.deserialize_current().map_err(|e| failed(&e))?;
            listed.push(document.info()?);
        }
        session::sort_for_listing(&mut listed);
        Ok(listed)
    }

    async fn delete_user_session(
        &self,
        user: UserId,
        handle: &SessionHandle,
    ) -> Result<bool, RepositoryError> {
        let filter = doc! { fields::KEY: handle.as_str() };
        let deleted = self
            .delete_live("delete user session", user, filter)
            .await?;
        Ok(deleted > 0)
    }

    async fn delete_other_user_sessions(
        &self,
        user: UserId,
        keep: &SessionHandle,
    ) -> Result<u64, RepositoryError> {
        let filter = doc! { fields::KEY: { "$ne": keep.as_str() } };
        self.delete_live("delete other user sessions", user, filter)
            .await
    }

    async fn delete_user_sessions(&self, user: UserId) -> Result<u64, RepositoryError> {
        self.sessions
            .delete_many(doc! { fields::USER_ID: user.to_string() })
            .await
            .map(|deleted| deleted.deleted_count)
            .map_err(|e| repository_error("delete user sessions", &e))
    }
}

impl fmt::Debug for MongoSessionStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MongoSessionStore")
            .field("collection", &self.sessions.namespace().to_string())
            .finish()
    }
}

/// What a record contributes to its document, computed once for create and save.
struct Fields {
    data: String,
    owner: Option<Owner>,
    login: Option<Login>,
    expires_at: DateTime,
    expires_at_us: i64,
}

impl Fields {
    fn of(record: &Record) -> session_store::Result<Self> {
        let mut data = record.data.clone();
        let owner = session::take_owner(&mut data);
        let data = serde_json::to_string(&data)
            .map_err(|_| session_store::Error::Encode("session data is not serialisable".into()))?;
        let expires_at_us = timestamp::micros(record.expiry_date)
            .ok_or_else(|| session_store::Error::Encode("session expiry is out of range".into()))?;
        Ok(Self {
            data,
            owner,
            login: Login::read(&record.data),
            expires_at: timestamp::date(expires_at_us),
            expires_at_us,
        })
    }

    fn user_id(&self) -> Option<String> {
        self.login.as_ref().map(|login| login.user_id.to_string())
    }

    /// The document of a new session stored under `key`, created and last seen `now`.
    fn new_document(&self, key: String, now: DateTime) -> SessionDocument {
        SessionDocument {
            key,
            data: self.data.clone(),
            user_id: self.user_id(),
            created_at: now,
            last_seen_at: now,
            expires_at: self.expires_at,
            expires_at_us: self.expires_at_us,
            owner: self.owner.clone(),
        }
    }
}

fn backend(operation: &'static str, error: &mongodb::error::Error) -> session_store::Error {
    session_error(operation, error)
}

impl MongoSessionStore {
    /// The live document of session `session_id`. The TTL monitor runs about once a
    /// minute, so an expired document may still be there: the filter, not the purge,
    /// decides.
    async fn find_live(
        &self,
        session_id: &str,
    ) -> Result<Option<SessionDocument>, mongodb::error::Error> {
        self.sessions
            .find_one(doc! {
                fields::KEY: session::storage_key(session_id),
                fields::EXPIRES_AT: { "$gt": timestamp::now(&self.clock) },
            })
            .await
    }
}

impl OwnedSessions for MongoSessionStore {
    /// One read: the owner is the snapshot in the session document, which the user
    /// repository keeps current.
    async fn load_owned(&self, session_id: &str) -> Result<Option<OwnedSession>, RepositoryError> {
        let found = self
            .find_live(session_id)
            .await
            .map_err(|e| repository_error("load session", &e))?;
        found.map(owned).transpose()
    }
}

/// A stored session as loaded: its data (read no further: a request that only reads the
/// session needs its login alone), its expiry and its owner snapshot.
fn owned(document: SessionDocument) -> Result<OwnedSession, RepositoryError> {
    let expires_at = document.expiry_date().ok_or_else(|| {
        RepositoryError::new("load session failed: stored session expiry is out of range")
    })?;
    Ok(OwnedSession {
        data: StoredData::from_json(document.data),
        expires_at,
        owner: document.owner,
    })
}

#[async_trait]
impl SessionStore for MongoSessionStore {
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        let fields = Fields::of(record)?;
        for _ in 0..CREATE_ATTEMPTS {
            let key = session::storage_key(&record.id.to_string());
            let document = fields.new_document(key, timestamp::now(&self.clock));
            // An insert, never an upsert: an id already in use is someone else's session.
            match self.sessions.insert_one(document).await {
                Ok(_) => return Ok(()),
                Err(error) if duplicate_key_message(&error).is_some() => {
                    // Worth a look: random 128-bit ids should never meet.
                    tracing::warn!("session id collision on create; retrying with a fresh id");
                    record.id = Id::default();
                }
                Err(error) => return Err(backend("create session", &error)),
            }
        }
        Err(session_store::Error::Backend(format!(
            "MongoDB create session failed: {CREATE_ATTEMPTS} fresh ids all collided"
        )))
    }

    /// Never writes the owner snapshot: what this session loaded may be older than what
    /// the user repository wrote since (a password change racing a renewal), and writing
    /// it back would bring an ended session back to life. The user id follows the data (a
    /// session whose login was cleared belongs to nobody); a new login is a new session,
    /// created with its own snapshot.
    async fn save(&self, record: &Record) -> session_store::Result<()> {
        let fields = Fields::of(record)?;
        let user_id = fields.user_id().map_or(Bson::Null, Bson::String);
        // No upsert: a session deleted meanwhile (logout elsewhere, revocation, expiry)
        // must stay deleted, so a save that matches nothing is not an error either.
        self.sessions
            .update_one(
                doc! { fields::KEY: session::storage_key(&record.id.to_string()) },
                doc! {
                    "$set": {
                        fields::DATA: fields.data,
                        fields::USER_ID: user_id,
                        fields::LAST_SEEN_AT: timestamp::now(&self.clock),
                        fields::EXPIRES_AT: fields.expires_at,
                        fields::EXPIRES_AT_US: fields.expires_at_us,
                    },
                },
            )
            .await
            .map_err(|e| backend("save session", &e))?;
        Ok(())
    }

    /// The session, unless it is unknown or expired; its owner comes with
    /// [`OwnedSessions::load_owned`], which the session layer uses.
    async fn load(&self, session_id: &Id) -> session_store::Result<Option<Record>> {
        let found = self
            .find_live(&session_id.to_string())
            .await
            .map_err(|e| backend("load session", &e))?;
        let Some(document) = found else {
            return Ok(None);
        };
        let owned = owned(document).map_err(|e| session_store::Error::Decode(e.to_string()))?;
        let data = owned
            .data
            .parse()
            .map_err(|e| session_store::Error::Decode(e.to_string()))?;
        Ok(Some(Record {
            id: *session_id,
            data,
            expiry_date: owned.expires_at,
        }))
    }

    async fn delete(&self, session_id: &Id) -> session_store::Result<()> {
        self.sessions
            .delete_one(doc! { fields::KEY: session::storage_key(&session_id.to_string()) })
            .await
            .map_err(|e| backend("delete session", &e))?;
        Ok(())
    }
}

#[cfg(feature = "bulk")]
mod bulk;
mod ping;

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    /// As the driver reads a document: from its bytes.
    fn decode(document: &bson::Document) -> SessionDocument {
        let bytes = bson::to_vec(document).expect("encodes");
        bson::from_slice(&bytes).expect("a session document")
    }

    #[test]
    fn a_session_document_holds_its_expiry_in_microseconds_and_as_a_date() {
        let record = Record {
            id: Id::default(),
            data: Default::default(),
            expiry_date: datetime!(2026-11-28 11:46:53.123_456_789 UTC),
        };
        let fields = Fields::of(&record).expect("encodable");
        let document = bson::to_document(
            &fields.new_document("key".into(), DateTime::from_time_0_3(Clock::system().now())),
        )
        .expect("encodes");
        assert_eq!(
            document.get_datetime(fields::EXPIRES_AT),
            Ok(&DateTime::from_time_0_3(
                datetime!(2026-11-28 11:46:53.123 UTC)
            ))
        );
        assert_eq!(
            decode(&document).expiry_date(),
            Some(datetime!(2026-11-28 11:46:53.123_456 UTC))
        );
    }
}
