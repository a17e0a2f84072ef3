//! One-time tokens as documents, behind the [`TokenStore`] port, and the writes of
//! [`crate::MongoStores`]' `commit` that spend, void and issue them.

use std::fmt;

use auth_domain::{
    tokens::{OneTimeToken, Purpose, TokenDigest, TokenStore},
    Email, RepositoryError, UserId,
};
use bson::doc;
use mongodb::{options::FindOneOptions, Collection, Database};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::{
    error::repository_error,
    purge, timestamp,
    tx::{run, Failure, Tx},
};

/// Field names, shared with the index declarations.
pub(crate) mod fields {
    /// The digest: the `_id`, unique by nature.
    pub(crate) const DIGEST: &str = "_id";
    pub(crate) const PURPOSE: &str = "purpose";
    pub(crate) const USER_ID: &str = "user_id";
    pub(crate) const CREATED_AT_US: &str = "created_at_us";
    pub(crate) const EXPIRES_AT_US: &str = "expires_at_us";
}

/// A token as stored: its digest is its `_id`, the user's id in the string form of the
/// users' `_id`, its instants in microseconds (see [`crate::timestamp`]).
#[derive(Serialize, Deserialize)]
pub(crate) struct TokenDocument {
    #[serde(rename = "_id")]
    digest: String,
    purpose: String,
    user_id: String,
    email: String,
    created_at_us: i64,
    expires_at_us: i64,
}

impl TryFrom<&OneTimeToken> for TokenDocument {
    type Error = RepositoryError;

    fn try_from(token: &OneTimeToken) -> Result<Self, Self::Error> {
        let out_of_range = || RepositoryError::new("insert token: an instant is out of range");
        Ok(Self {
            digest: token.digest.as_str().to_owned(),
            purpose: token.purpose.as_str().to_owned(),
            user_id: token.user_id.to_string(),
            email: token.email.as_str().to_owned(),
            created_at_us: timestamp::micros(token.created_at).ok_or_else(out_of_range)?,
            expires_at_us: timestamp::micros(token.expires_at).ok_or_else(out_of_range)?,
        })
    }
}

impl TryFrom<TokenDocument> for OneTimeToken {
    type Error = RepositoryError;

    fn try_from(doc: TokenDocument) -> Result<Self, Self::Error> {
        let malformed = |field: &str| {
            RepositoryError::new(format!(
                "find token: a stored token has a malformed {field}"
            ))
        };
        Ok(OneTimeToken {
            purpose: Purpose::parse(&doc.purpose).ok_or_else(|| malformed("purpose"))?,
            user_id: doc.user_id.parse().map_err(|_| malformed("user_id"))?,
            email: Email::from_trusted(doc.email),
            created_at: timestamp::read(doc.created_at_us)
                .ok_or_else(|| malformed("created_at"))?,
            expires_at: timestamp::read(doc.expires_at_us)
                .ok_or_else(|| malformed("expires_at"))?,
            digest: TokenDigest::from_stored(doc.digest),
        })
    }
}

/// The tokens collection as a [`TokenStore`]. Cheap to clone: clones share one client.
#[derive(Clone)]
pub struct MongoTokenStore {
    pub(crate) tokens: Collection<TokenDocument>,
}

impl MongoTokenStore {
    /// The store over the `tokens` collection of `db`; [`crate::ensure_mail_indexes`] must
    /// have run for its look-ups and the purge to use an index.
    pub fn new(db: &Database, tokens: &str) -> Self {
        Self {
            tokens: db.collection(tokens),
        }
    }

    /// Stores `token`.
    pub(crate) async fn insert_in(
        &self,
        tx: &mut Tx<'_>,
        token: &OneTimeToken,
    ) -> Result<(), Failure> {
        let document = TokenDocument::try_from(token)?;
        run!(tx, self.tokens.insert_one(document))?;
        Ok(())
    }

    /// Deletes the token `digest` of `purpose` if it is live at `now`; whether it did. The
    /// delete is the check: of concurrent submissions, one deletes the document.
    pub(crate) async fn consume_in(
        &self,
        tx: &mut Tx<'_>,
        digest: &TokenDigest,
        purpose: Purpose,
        now: OffsetDateTime,
    ) -> Result<bool, Failure> {
        let now_us = timestamp::micros(now)
            .ok_or_else(|| RepositoryError::new("consume token: the instant is out of range"))?;
        let filter = doc! {
            fields::DIGEST: digest.as_str(),
            fields::PURPOSE: purpose.as_str(),
            fields::EXPIRES_AT_US: { "$gt": now_us },
        };
        let deleted = run!(tx, self.tokens.delete_one(filter))?;
        Ok(deleted.deleted_count == 1)
    }

    /// Deletes every token of `user` for `purpose`, or of every purpose with `None`.
    pub(crate) async fn void_in(
        &self,
        tx: &mut Tx<'_>,
        user: UserId,
        purpose: Option<Purpose>,
    ) -> Result<(), mongodb::error::Error> {
        let mut filter = doc! { fields::USER_ID: user.to_string() };
        if let Some(purpose) = purpose {
            filter.insert(fields::PURPOSE, purpose.as_str());
        }
        run!(tx, self.tokens.delete_many(filter))?;
        Ok(())
    }
}

impl fmt::Debug for MongoTokenStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MongoTokenStore")
            .field("collection", &self.tokens.namespace().to_string())
            .finish()
    }
}

impl TokenStore for MongoTokenStore {
    async fn find(&self, digest: &TokenDigest) -> Result<Option<OneTimeToken>, RepositoryError> {
        self.tokens
            .find_one(doc! { fields::DIGEST: digest.as_str() })
            .await
            .map_err(|e| repository_error("find token", &e))?
            .map(OneTimeToken::try_from)
            .transpose()
    }

    /// One look-up over the `(user_id, purpose, created_at_us)` index.
    async fn latest_issued(
        &self,
        user: UserId,
        purpose: Purpose,
    ) -> Result<Option<OffsetDateTime>, RepositoryError> {
        let found = self
            .tokens
            .find_one(doc! {
                fields::USER_ID: user.to_string(),
                fields::PURPOSE: purpose.as_str(),
            })
            .with_options(
                FindOneOptions::builder()
                    .sort(doc! { fields::CREATED_AT_US: -1 })
                    .build(),
            )
            .await
            .map_err(|e| repository_error("find latest token", &e))?;
        found
            .map(|token| {
                timestamp::read(token.created_at_us).ok_or_else(|| {
                    RepositoryError::new(
                        "find latest token: a stored token has a malformed created_at",
                    )
                })
            })
            .transpose()
    }

    /// One batch: the ids first, then the delete, which checks the expiry again.
    async fn purge_expired(&self, now: OffsetDateTime, batch: u64) -> Result<u64, RepositoryError> {
        let now_us = timestamp::micros(now)
            .ok_or_else(|| RepositoryError::new("purge tokens: the cut-off is out of range"))?;
        let expired = doc! { fields::EXPIRES_AT_US: { "$lte": now_us } };
        let documents = self.tokens.clone_with_type::<bson::Document>();
        let (_, deleted) = purge::delete_batch(&documents, "purge tokens", &expired, batch).await?;
        Ok(deleted)
    }
}
