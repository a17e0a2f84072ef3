//! WebAuthn ceremonies as documents, behind the [`ChallengeStore`] port.
//!
//! A take is one `findOneAndDelete` whose filter is "this digest, this ceremony, still
//! live": the server deletes one document atomically, so of two instances taking one
//! challenge, one gets it. The TTL index on the date `expires_at` only tidies up, within a
//! minute or so: the take and the purge decide by the exact microseconds.

use std::fmt;

use auth_domain::{
    factors::{Ceremony, ChallengeStore, PendingChallenge},
    RepositoryError, UserId,
};
use bson::{doc, DateTime};
use mongodb::{Collection, Database};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::{
    error::repository_error,
    purge, timestamp,
    tx::{run, Tx},
};

/// Field names, shared with the index declarations.
pub(crate) mod fields {
    /// The challenge's digest: the `_id`, unique by nature.
    pub(crate) const DIGEST: &str = "_id";
    pub(crate) const CEREMONY: &str = "ceremony";
    pub(crate) const USER_ID: &str = "user_id";
    /// A BSON date, rounded down to the millisecond, for the TTL index.
    pub(crate) const EXPIRES_AT: &str = "expires_at";
    /// The exact instant, which decides.
    pub(crate) const EXPIRES_AT_US: &str = "expires_at_us";
}

/// A ceremony as stored: its digest is its `_id`, the user's id (if known) in the string
/// form of the users' `_id`.
#[derive(Serialize, Deserialize)]
pub(crate) struct ChallengeDocument {
    #[serde(rename = "_id")]
    digest: String,
    ceremony: String,
    #[serde(default)]
    user_id: Option<String>,
    state: String,
    expires_at: DateTime,
    expires_at_us: i64,
}

impl TryFrom<&PendingChallenge> for ChallengeDocument {
    type Error = RepositoryError;

    fn try_from(challenge: &PendingChallenge) -> Result<Self, Self::Error> {
        let expires_at_us = timestamp::micros(challenge.expires_at)
            .ok_or_else(|| RepositoryError::new("put challenge: expires_at is out of range"))?;
        Ok(Self {
            digest: challenge.digest.clone(),
            ceremony: challenge.ceremony.as_str().to_owned(),
            user_id: challenge.user_id.map(|user| user.to_string()),
            state: challenge.state.clone(),
            expires_at: timestamp::date(expires_at_us),
            expires_at_us,
        })
    }
}

impl TryFrom<ChallengeDocument> for PendingChallenge {
    type Error = RepositoryError;

    fn try_from(doc: ChallengeDocument) -> Result<Self, Self::Error> {
        let malformed = |field: &str| {
            RepositoryError::new(format!(
                "take challenge: a stored challenge has a malformed {field}"
            ))
        };
        Ok(Self {
            ceremony: Ceremony::parse(&doc.ceremony).ok_or_else(|| malformed("ceremony"))?,
            user_id: doc
                .user_id
                .map(|user| user.parse::<UserId>().map_err(|_| malformed("user_id")))
                .transpose()?,
            state: doc.state,
            expires_at: timestamp::read(doc.expires_at_us)
                .ok_or_else(|| malformed("expires_at"))?,
            digest: doc.digest,
        })
    }
}

/// The WebAuthn challenges collection as a [`ChallengeStore`]. Cheap to clone: clones
/// share one client.
#[derive(Clone)]
pub struct MongoChallengeStore {
    challenges: Collection<ChallengeDocument>,
}

impl MongoChallengeStore {
    /// The store over the `challenges` collection of `db`; [`crate::ensure_factor_indexes`]
    /// must have run for the purge to use an index and the TTL to tidy up.
    pub fn new(db: &Database, challenges: &str) -> Self {
        Self {
            challenges: db.collection(challenges),
        }
    }

    /// Deletes every ceremony of `user`: their account is gone.
    pub(crate) async fn delete_for_user_in(
        &self,
        tx: &mut Tx<'_>,
        user: UserId,
    ) -> Result<(), mongodb::error::Error> {
        run!(
            tx,
            self.challenges
                .delete_many(doc! { fields::USER_ID: user.to_string() })
        )?;
        Ok(())
    }
}

impl fmt::Debug for MongoChallengeStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MongoChallengeStore")
            .field("collection", &self.challenges.namespace().to_string())
            .finish()
    }
}

impl ChallengeStore for MongoChallengeStore {
    async fn put(&self, challenge: PendingChallenge) -> Result<(), RepositoryError> {
        let document = ChallengeDocument::try_from(&challenge)?;
        self.challenges
            .insert_one(document)
            .await
            .map_err(|e| repository_error("put challenge", &e))?;
        Ok(())
    }

    /// One `findOneAndDelete`: the filter is the check, so a challenge is taken once.
    async fn take(
        &self,
        digest: &str,
        ceremony: Ceremony,
        now: OffsetDateTime,
    ) -> Result<Option<PendingChallenge>, RepositoryError> {
        let now_us = timestamp::micros(now)
            .ok_or_else(|| RepositoryError::new("take challenge: the instant is out of range"))?;
        let filter = doc! {
            fields::DIGEST: digest,
            fields::CEREMONY: ceremony.as_str(),
            fields::EXPIRES_AT_US: { "$gt": now_us },
        };
        self.challenges
            .find_one_and_delete(filter)
            .await
            .map_err(|e| repository_error("take challenge", &e))?
            .map(PendingChallenge::try_from)
            .transpose()
    }

    /// One batch: the ids first, on the TTL index of the date (rounded down, so every
    /// expired challenge is among them), then the delete, which checks the exact instant.
    async fn purge_expired(&self, now: OffsetDateTime, batch: u64) -> Result<u64, RepositoryError> {
        let now_us = timestamp::micros(now)
            .ok_or_else(|| RepositoryError::new("purge challenges: the cut-off is out of range"))?;
        let expired = doc! {
            fields::EXPIRES_AT: { "$lte": timestamp::date(now_us) },
            fields::EXPIRES_AT_US: { "$lte": now_us },
        };
        let documents = self.challenges.clone_with_type::<bson::Document>();
        let (_, deleted) =
            purge::delete_batch(&documents, "purge challenges", &expired, batch).await?;
        Ok(deleted)
    }
}
