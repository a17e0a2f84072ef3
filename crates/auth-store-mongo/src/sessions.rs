//! Server-side sessions as documents, behind tower-sessions' [`SessionStore`].

use std::fmt;

use async_trait::async_trait;
use auth_domain::{session, UserId};
use bson::{doc, Bson, DateTime};
use mongodb::{Collection, Database};
use serde::{Deserialize, Serialize};
use tower_sessions::{
    session::{Id, Record},
    session_store::{self, SessionStore},
};

use crate::{
    error::{duplicate_key_message, DriverError},
    timestamp,
};

/// Field names, shared with the index declarations.
pub(crate) mod fields {
    pub(crate) const KEY: &str = "_id";
    pub(crate) const DATA: &str = "data";
    pub(crate) const USER_ID: &str = "user_id";
    pub(crate) const LAST_SEEN_AT: &str = "last_seen_at";
    pub(crate) const EXPIRES_AT: &str = "expires_at";
    pub(crate) const EXPIRES_AT_SUB_MS_NS: &str = "expires_at_sub_ms_ns";
}

/// How many fresh ids `create` tries before giving up. A collision of random 128-bit ids
/// does not happen twice; a loop without end would only hide a broken server.
const CREATE_ATTEMPTS: usize = 8;

/// A session as stored.
#[derive(Serialize, Deserialize)]
struct SessionDocument {
    /// [`session::storage_key`] of the id: a stolen copy of the collection holds no
    /// cookie that could be replayed.
    #[serde(rename = "_id")]
    key: String,
    /// The JSON text of the record's data. Text rather than a BSON document, because a
    /// data key may start with `$` or hold a `.`, which BSON field names must not.
    data: String,
    /// Who is logged in on this session, as the UUID string form of the users' `_id`.
    user_id: Option<String>,
    created_at: DateTime,
    /// When the session was last saved.
    last_seen_at: DateTime,
    /// The record's expiry, a date so that the TTL index can purge it.
    expires_at: DateTime,
    /// What `expires_at` lost below the millisecond; absent means none.
    #[serde(default)]
    expires_at_sub_ms_ns: i64,
}

/// The sessions collection as a tower-sessions [`SessionStore`]. Cheap to clone: clones
/// share one client.
#[derive(Clone)]
pub struct MongoSessionStore {
    sessions: Collection<SessionDocument>,
}

impl MongoSessionStore {
    /// The store over `collection` of `db`; [`crate::ensure_indexes`] must have run for
    /// expired sessions to be purged.
    pub fn new(db: &Database, collection: &str) -> Self {
        Self {
            sessions: db.collection(collection),
        }
    }

    /// Deletes every session of `user` (logging them out everywhere); returns how many.
    ///
    /// # Errors
    ///
    /// The server failed or could not be reached.
    pub async fn delete_user_sessions(&self, user: UserId) -> Result<u64, mongodb::error::Error> {
        let result = self
            .sessions
            .delete_many(doc! { fields::USER_ID: user.to_string() })
            .await?;
        Ok(result.deleted_count)
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
    user_id: Option<String>,
    expires_at: DateTime,
    expires_at_sub_ms_ns: i64,
}

impl Fields {
    fn of(record: &Record) -> session_store::Result<Self> {
        let data = serde_json::to_string(&record.data)
            .map_err(|_| session_store::Error::Encode("session data is not serialisable".into()))?;
        let (expires_at, expires_at_sub_ms_ns) = timestamp::split(record.expiry_date);
        Ok(Self {
            data,
            user_id: session::user_id(&record.data).map(|id| id.to_string()),
            expires_at,
            expires_at_sub_ms_ns,
        })
    }
}

fn backend(operation: &'static str, error: &mongodb::error::Error) -> session_store::Error {
    session_store::Error::Backend(DriverError::new(operation, error).to_string())
}

#[async_trait]
impl SessionStore for MongoSessionStore {
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        let fields = Fields::of(record)?;
        for _ in 0..CREATE_ATTEMPTS {
            let now = DateTime::now();
            let document = SessionDocument {
                key: session::storage_key(&record.id.to_string()),
                data: fields.data.clone(),
                user_id: fields.user_id.clone(),
                created_at: now,
                last_seen_at: now,
                expires_at: fields.expires_at,
                expires_at_sub_ms_ns: fields.expires_at_sub_ms_ns,
            };
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

    async fn save(&self, record: &Record) -> session_store::Result<()> {
        let fields = Fields::of(record)?;
        let user_id = fields.user_id.map_or(Bson::Null, Bson::String);
        // No upsert: a session deleted meanwhile (logout elsewhere, revocation, expiry)
        // must stay deleted, so a save that matches nothing is not an error either.
        self.sessions
            .update_one(
                doc! { fields::KEY: session::storage_key(&record.id.to_string()) },
                doc! { "$set": {
                    fields::DATA: fields.data,
                    fields::USER_ID: user_id,
                    fields::LAST_SEEN_AT: DateTime::now(),
                    fields::EXPIRES_AT: fields.expires_at,
                    fields::EXPIRES_AT_SUB_MS_NS: fields.expires_at_sub_ms_ns,
                } },
            )
            .await
            .map_err(|e| backend("save session", &e))?;
        Ok(())
    }

    async fn load(&self, session_id: &Id) -> session_store::Result<Option<Record>> {
        // The TTL monitor runs about once a minute, so an expired document may still be
        // there: the filter, not the purge, decides.
        let found = self
            .sessions
            .find_one(doc! {
                fields::KEY: session::storage_key(&session_id.to_string()),
                fields::EXPIRES_AT: { "$gt": DateTime::now() },
            })
            .await
            .map_err(|e| backend("load session", &e))?;
        let Some(document) = found else {
            return Ok(None);
        };
        let data = serde_json::from_str(&document.data).map_err(|e| {
            // Position only: serde's message can quote the data.
            session_store::Error::Decode(format!(
                "stored session data is not a JSON object (line {}, column {})",
                e.line(),
                e.column()
            ))
        })?;
        let expiry_date = timestamp::join(document.expires_at, document.expires_at_sub_ms_ns)
            .ok_or_else(|| {
                session_store::Error::Decode("stored session expiry is out of range".into())
            })?;
        Ok(Some(Record {
            id: *session_id,
            data,
            expiry_date,
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
