//! Sessions written many at a time, for tests and benchmarks (cargo feature `bulk`): a
//! caller that needs a million stored sessions gets them in the store's own encoding (the
//! owner's snapshot, the dates and the exact expiry), without restating it and without a
//! million round trips through `create`.

use time::OffsetDateTime;
use tower_sessions::session::Record;
use tower_sessions::session_store;

use super::{backend, Fields, MongoSessionStore};
use crate::timestamp;

impl MongoSessionStore {
    /// Stores each record as [`create`](tower_sessions::SessionStore::create) would have
    /// stored it at the instant paired with it (created and last seen then), the owner a
    /// login put in its data included, with one `insert_many`.
    ///
    /// # Errors
    ///
    /// The server failed or an id is already in use (the documents before it may be
    /// stored), or a record cannot be encoded (then none is).
    pub async fn create_many(
        &self,
        sessions: &[(Record, OffsetDateTime)],
    ) -> session_store::Result<()> {
        let documents = sessions
            .iter()
            .map(|(record, seen_at)| {
                let seen_at = timestamp::micros(*seen_at).ok_or_else(|| {
                    session_store::Error::Encode("an instant is out of range".into())
                })?;
                let key = auth_domain::session::storage_key(&record.id.to_string());
                Ok(Fields::of(record)?.new_document(key, timestamp::date(seen_at)))
            })
            .collect::<session_store::Result<Vec<_>>>()?;
        if documents.is_empty() {
            return Ok(());
        }
        self.sessions
            .insert_many(documents)
            .await
            .map_err(|err| backend("create sessions", &err))?;
        Ok(())
    }
}
