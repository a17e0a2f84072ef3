//! Second factors as documents, behind the [`FactorStore`] port, and the writes of
//! [`crate::MongoStores`]' `commit` that confirm, remove and replace them.
//!
//! What must be decided across instances is one conditional write each: a TOTP step is
//! accepted by one `updateOne` whose filter says "this confirmed enrolment, last step
//! older" (two instances accepting one step match once), an enrolment is begun by one
//! upsert whose filter says "not confirmed", a recovery code is spent by one `deleteOne`,
//! and a credential id is kept unique by a unique index.

use std::fmt;

use auth_domain::{
    factors::{
        CodeDigest, CredentialId, FactorStore, FactorSummary, StoredPasskey, TotpCredential,
    },
    RepositoryError, UserId,
};
use bson::{doc, Document};
use mongodb::{options::ReplaceOptions, Collection, Database};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::{
    error::{duplicate_key_message, duplicated_field, repository_error, violated_index},
    timestamp,
    tx::{run, Failure, Tx},
    PASSKEY_CREDENTIAL_INDEX,
};

/// How many times [`FactorStore::begin_totp`] tries its upsert when a concurrent one
/// inserted the user's document first.
const BEGIN_ATTEMPTS: usize = 3;

/// Field names, shared with the index declarations.
pub(crate) mod fields {
    /// The TOTP credentials' fields: one document per user, whose `_id` is the user's.
    pub(crate) mod totp {
        /// The user's id: a user has at most one credential.
        pub(crate) const USER_ID: &str = "_id";
        /// The enrolment's own id, which a confirmation names.
        pub(crate) const ENROLMENT_ID: &str = "enrolment_id";
        pub(crate) const CONFIRMED: &str = "confirmed";
        pub(crate) const LAST_STEP: &str = "last_step";
    }

    /// The recovery codes' fields: one document per code.
    pub(crate) mod code {
        pub(crate) const USER_ID: &str = "user_id";
        pub(crate) const DIGEST: &str = "digest";
    }

    /// The passkeys' fields.
    pub(crate) mod passkey {
        /// Our id for it.
        pub(crate) const ID: &str = "_id";
        pub(crate) const USER_ID: &str = "user_id";
        pub(crate) const CREDENTIAL_ID: &str = "credential_id";
        pub(crate) const NAME: &str = "name";
        pub(crate) const KEY: &str = "key";
        pub(crate) const CREATED_AT_US: &str = "created_at_us";
        pub(crate) const LAST_USED_AT_US: &str = "last_used_at_us";
    }
}

/// A TOTP credential as stored: `_id` is the user's id in the string form of the users'
/// `_id`, `enrolment_id` the enrolment's UUID in string form.
#[derive(Serialize, Deserialize)]
pub(crate) struct TotpDocument {
    #[serde(rename = "_id")]
    user_id: String,
    enrolment_id: String,
    sealed_secret: String,
    confirmed: bool,
    /// Null until a code is accepted: `{last_step: null}` matches it.
    last_step: Option<i64>,
    created_at_us: i64,
}

impl TryFrom<&TotpCredential> for TotpDocument {
    type Error = RepositoryError;

    fn try_from(totp: &TotpCredential) -> Result<Self, Self::Error> {
        Ok(Self {
            user_id: totp.user_id.to_string(),
            enrolment_id: totp.id.to_string(),
            sealed_secret: totp.sealed_secret.clone(),
            confirmed: totp.confirmed,
            last_step: totp.last_step,
            created_at_us: timestamp::micros(totp.created_at)
                .ok_or_else(|| RepositoryError::new("begin totp: created_at is out of range"))?,
        })
    }
}

impl TryFrom<TotpDocument> for TotpCredential {
    type Error = RepositoryError;

    fn try_from(doc: TotpDocument) -> Result<Self, Self::Error> {
        let malformed = |field: &str| {
            RepositoryError::new(format!(
                "find totp: a stored credential has a malformed {field}"
            ))
        };
        Ok(Self {
            id: doc
                .enrolment_id
                .parse()
                .map_err(|_| malformed("enrolment_id"))?,
            user_id: doc.user_id.parse().map_err(|_| malformed("user_id"))?,
            sealed_secret: doc.sealed_secret,
            confirmed: doc.confirmed,
            last_step: doc.last_step,
            created_at: timestamp::read(doc.created_at_us)
                .ok_or_else(|| malformed("created_at"))?,
        })
    }
}

/// A recovery code as stored: its digest, never the code; `_id` is the server's.
#[derive(Serialize, Deserialize)]
pub(crate) struct CodeDocument {
    user_id: String,
    digest: String,
    created_at_us: i64,
}

/// A passkey as stored: `_id` is our UUID in string form, the key the library's JSON.
#[derive(Serialize, Deserialize)]
pub(crate) struct PasskeyDocument {
    #[serde(rename = "_id")]
    id: String,
    user_id: String,
    credential_id: String,
    name: String,
    key: String,
    created_at_us: i64,
    #[serde(default)]
    last_used_at_us: Option<i64>,
}

impl TryFrom<&StoredPasskey> for PasskeyDocument {
    type Error = RepositoryError;

    fn try_from(passkey: &StoredPasskey) -> Result<Self, Self::Error> {
        let out_of_range = || RepositoryError::new("insert passkey: an instant is out of range");
        Ok(Self {
            id: passkey.id.to_string(),
            user_id: passkey.user_id.to_string(),
            credential_id: passkey.credential_id.as_str().to_owned(),
            name: passkey.name.clone(),
            key: passkey.key.clone(),
            created_at_us: timestamp::micros(passkey.created_at).ok_or_else(out_of_range)?,
            last_used_at_us: passkey
                .last_used_at
                .map(|at| timestamp::micros(at).ok_or_else(out_of_range))
                .transpose()?,
        })
    }
}

impl TryFrom<PasskeyDocument> for StoredPasskey {
    type Error = RepositoryError;

    fn try_from(doc: PasskeyDocument) -> Result<Self, Self::Error> {
        let malformed = |field: &str| {
            RepositoryError::new(format!(
                "find passkey: a stored passkey has a malformed {field}"
            ))
        };
        Ok(Self {
            id: doc.id.parse().map_err(|_| malformed("_id"))?,
            user_id: doc.user_id.parse().map_err(|_| malformed("user_id"))?,
            credential_id: CredentialId::from_stored(doc.credential_id),
            name: doc.name,
            key: doc.key,
            created_at: timestamp::read(doc.created_at_us)
                .ok_or_else(|| malformed("created_at"))?,
            last_used_at: doc
                .last_used_at_us
                .map(|us| timestamp::read(us).ok_or_else(|| malformed("last_used_at")))
                .transpose()?,
        })
    }
}

/// Why a passkey was not inserted.
pub(crate) enum InsertPasskeyError {
    /// The unique index on the credential id refused it.
    CredentialTaken,
    /// Anything else.
    Failed(Failure),
}

/// The TOTP credentials, recovery codes and passkeys collections as a [`FactorStore`].
/// Cheap to clone: clones share one client.
#[derive(Clone)]
pub struct MongoFactorStore {
    totp: Collection<TotpDocument>,
    codes: Collection<CodeDocument>,
    passkeys: Collection<PasskeyDocument>,
}

impl MongoFactorStore {
    /// The store over the `totp`, `codes` and `passkeys` collections of `db`;
    /// [`crate::ensure_factor_indexes`] must have run: the unique index on the passkeys'
    /// credential id is what keeps it unique.
    pub fn new(db: &Database, totp: &str, codes: &str, passkeys: &str) -> Self {
        Self {
            totp: db.collection(totp),
            codes: db.collection(codes),
            passkeys: db.collection(passkeys),
        }
    }

    /// Confirms `user`'s enrolment `id` if it is still unconfirmed, recording `step`;
    /// whether it was.
    pub(crate) async fn confirm_totp_in(
        &self,
        tx: &mut Tx<'_>,
        user: UserId,
        id: Uuid,
        step: i64,
    ) -> Result<bool, mongodb::error::Error> {
        let filter = doc! {
            fields::totp::USER_ID: user.to_string(),
            fields::totp::ENROLMENT_ID: id.to_string(),
            fields::totp::CONFIRMED: false,
        };
        let update = doc! { "$set": {
            fields::totp::CONFIRMED: true,
            fields::totp::LAST_STEP: step,
        } };
        let result = run!(tx, self.totp.update_one(filter, update))?;
        Ok(result.matched_count == 1)
    }

    /// Deletes `user`'s TOTP credential if it is confirmed; whether it was. (An
    /// unconfirmed one is no factor: removing "the TOTP" of a user who has none is stale.)
    pub(crate) async fn remove_totp_in(
        &self,
        tx: &mut Tx<'_>,
        user: UserId,
    ) -> Result<bool, mongodb::error::Error> {
        let filter = doc! {
            fields::totp::USER_ID: user.to_string(),
            fields::totp::CONFIRMED: true,
        };
        let deleted = run!(tx, self.totp.delete_one(filter))?;
        Ok(deleted.deleted_count == 1)
    }

    /// Replaces every recovery code of `user` with `digests`, made `at`.
    pub(crate) async fn replace_codes_in(
        &self,
        tx: &mut Tx<'_>,
        user: UserId,
        digests: &[CodeDigest],
        at: OffsetDateTime,
    ) -> Result<(), Failure> {
        let created_at_us = timestamp::micros(at).ok_or_else(|| {
            RepositoryError::new("replace recovery codes: the instant is out of range")
        })?;
        let owner = user.to_string();
        run!(
            tx,
            self.codes
                .delete_many(doc! { fields::code::USER_ID: owner.as_str() })
        )?;
        if digests.is_empty() {
            return Ok(());
        }
        let documents = digests.iter().map(|digest| CodeDocument {
            user_id: owner.clone(),
            digest: digest.as_str().to_owned(),
            created_at_us,
        });
        run!(tx, self.codes.insert_many(documents))?;
        Ok(())
    }

    /// Deletes `user`'s recovery code `digest`; whether there was one. The delete is the
    /// check: of concurrent submissions of one code, one deletes it.
    pub(crate) async fn consume_code_in(
        &self,
        tx: &mut Tx<'_>,
        user: UserId,
        digest: &CodeDigest,
    ) -> Result<bool, mongodb::error::Error> {
        let filter = doc! {
            fields::code::USER_ID: user.to_string(),
            fields::code::DIGEST: digest.as_str(),
        };
        let deleted = run!(tx, self.codes.delete_one(filter))?;
        Ok(deleted.deleted_count == 1)
    }

    /// Stores `passkey`; a credential id registered already is refused by the unique index.
    pub(crate) async fn insert_passkey_in(
        &self,
        tx: &mut Tx<'_>,
        passkey: &StoredPasskey,
    ) -> Result<(), InsertPasskeyError> {
        let document = PasskeyDocument::try_from(passkey)
            .map_err(|e| InsertPasskeyError::Failed(Failure::Invalid(e)))?;
        match run!(tx, self.passkeys.insert_one(document)) {
            Ok(_) => Ok(()),
            Err(error) if is_credential_taken(&error) => Err(InsertPasskeyError::CredentialTaken),
            Err(error) => Err(InsertPasskeyError::Failed(Failure::Driver(error))),
        }
    }

    /// Deletes `user`'s passkey `id`; whether it was theirs and there.
    pub(crate) async fn delete_passkey_in(
        &self,
        tx: &mut Tx<'_>,
        user: UserId,
        id: Uuid,
    ) -> Result<bool, mongodb::error::Error> {
        let filter = doc! {
            fields::passkey::ID: id.to_string(),
            fields::passkey::USER_ID: user.to_string(),
        };
        let deleted = run!(tx, self.passkeys.delete_one(filter))?;
        Ok(deleted.deleted_count == 1)
    }

    /// Deletes every second factor of `user`: their TOTP credential (confirmed or not),
    /// recovery codes and passkeys.
    pub(crate) async fn remove_all_in(
        &self,
        tx: &mut Tx<'_>,
        user: UserId,
    ) -> Result<(), mongodb::error::Error> {
        let owner = user.to_string();
        run!(
            tx,
            self.totp
                .delete_one(doc! { fields::totp::USER_ID: owner.as_str() })
        )?;
        run!(
            tx,
            self.codes
                .delete_many(doc! { fields::code::USER_ID: owner.as_str() })
        )?;
        run!(
            tx,
            self.passkeys
                .delete_many(doc! { fields::passkey::USER_ID: owner.as_str() })
        )?;
        Ok(())
    }

    /// Updates `user`'s passkey `id` with `set`; whether it was theirs and there.
    async fn update_passkey(
        &self,
        operation: &'static str,
        user: UserId,
        id: Uuid,
        set: Document,
    ) -> Result<bool, RepositoryError> {
        let filter = doc! {
            fields::passkey::ID: id.to_string(),
            fields::passkey::USER_ID: user.to_string(),
        };
        let result = self
            .passkeys
            .update_one(filter, doc! { "$set": set })
            .await
            .map_err(|e| repository_error(operation, &e))?;
        Ok(result.matched_count == 1)
    }
}

/// Whether `error` is the unique index on the passkeys' credential id refusing a
/// duplicate (by the index's name, or by the field for an index made by hand).
fn is_credential_taken(error: &mongodb::error::Error) -> bool {
    duplicate_key_message(error).is_some_and(|message| {
        violated_index(message) == Some(PASSKEY_CREDENTIAL_INDEX)
            || duplicated_field(message) == Some(fields::passkey::CREDENTIAL_ID)
    })
}

impl fmt::Debug for MongoFactorStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MongoFactorStore")
            .field("totp", &self.totp.namespace().to_string())
            .field("codes", &self.codes.namespace().to_string())
            .field("passkeys", &self.passkeys.namespace().to_string())
            .finish()
    }
}

impl FactorStore for MongoFactorStore {
    /// Three counts, each on an index (`_id`, the codes' and the passkeys' `user_id`).
    async fn summary(&self, user: UserId) -> Result<FactorSummary, RepositoryError> {
        let owner = user.to_string();
        let driver = |error: mongodb::error::Error| repository_error("count factors", &error);
        let totp = self
            .totp
            .count_documents(doc! {
                fields::totp::USER_ID: owner.as_str(),
                fields::totp::CONFIRMED: true,
            })
            .await
            .map_err(driver)?;
        let passkeys = self
            .passkeys
            .count_documents(doc! { fields::passkey::USER_ID: owner.as_str() })
            .await
            .map_err(driver)?;
        let recovery_codes = self
            .codes
            .count_documents(doc! { fields::code::USER_ID: owner.as_str() })
            .await
            .map_err(driver)?;
        Ok(FactorSummary {
            totp: totp > 0,
            passkeys,
            recovery_codes,
        })
    }

    async fn totp(&self, user: UserId) -> Result<Option<TotpCredential>, RepositoryError> {
        self.totp
            .find_one(doc! { fields::totp::USER_ID: user.to_string() })
            .await
            .map_err(|e| repository_error("find totp", &e))?
            .map(TotpCredential::try_from)
            .transpose()
    }

    /// One upsert whose filter matches only an unconfirmed credential: it replaces that
    /// one or, where the user has none, inserts; where the user has a confirmed one, the
    /// insert collides with its `_id` (the user's id) and nothing is written. A collision
    /// with a concurrent enrolment's insert is tried again, and then replaces it.
    async fn begin_totp(&self, credential: TotpCredential) -> Result<bool, RepositoryError> {
        let document = TotpDocument::try_from(&credential)?;
        let filter = doc! {
            fields::totp::USER_ID: credential.user_id.to_string(),
            fields::totp::CONFIRMED: false,
        };
        let upsert = ReplaceOptions::builder().upsert(true).build();
        for _ in 0..BEGIN_ATTEMPTS {
            match self
                .totp
                .replace_one(filter.clone(), &document)
                .with_options(upsert.clone())
                .await
            {
                Ok(_) => return Ok(true),
                Err(error) if duplicate_key_message(&error).is_some() => {
                    let confirmed = self
                        .totp
                        .count_documents(doc! {
                            fields::totp::USER_ID: credential.user_id.to_string(),
                            fields::totp::CONFIRMED: true,
                        })
                        .await
                        .map_err(|e| repository_error("begin totp", &e))?;
                    if confirmed > 0 {
                        return Ok(false);
                    }
                }
                Err(error) => return Err(repository_error("begin totp", &error)),
            }
        }
        Err(RepositoryError::new(
            "begin totp: concurrent enrolments kept colliding",
        ))
    }

    /// One conditional `updateOne`: of two instances accepting one step, one matches.
    async fn accept_totp_step(
        &self,
        user: UserId,
        id: Uuid,
        step: i64,
    ) -> Result<bool, RepositoryError> {
        let filter = doc! {
            fields::totp::USER_ID: user.to_string(),
            fields::totp::ENROLMENT_ID: id.to_string(),
            fields::totp::CONFIRMED: true,
            "$or": [
                { fields::totp::LAST_STEP: null },
                { fields::totp::LAST_STEP: { "$lt": step } },
            ],
        };
        let update = doc! { "$set": { fields::totp::LAST_STEP: step } };
        let result = self
            .totp
            .update_one(filter, update)
            .await
            .map_err(|e| repository_error("accept totp step", &e))?;
        Ok(result.matched_count == 1)
    }

    /// Oldest first, then by id, on the `(user_id, created_at_us)` index.
    async fn passkeys(&self, user: UserId) -> Result<Vec<StoredPasskey>, RepositoryError> {
        let driver = |error: mongodb::error::Error| repository_error("list passkeys", &error);
        let mut cursor = self
            .passkeys
            .find(doc! { fields::passkey::USER_ID: user.to_string() })
            .sort(doc! { fields::passkey::CREATED_AT_US: 1, fields::passkey::ID: 1 })
            .await
            .map_err(driver)?;
        let mut listed = Vec::new();
        while cursor.advance().await.map_err(driver)? {
            listed.push(StoredPasskey::try_from(
                cursor.deserialize_current().map_err(driver)?,
            )?);
        }
        Ok(listed)
    }

    async fn passkey_by_credential(
        &self,
        credential_id: &CredentialId,
    ) -> Result<Option<StoredPasskey>, RepositoryError> {
        self.passkeys
            .find_one(doc! { fields::passkey::CREDENTIAL_ID: credential_id.as_str() })
            .await
            .map_err(|e| repository_error("find passkey", &e))?
            .map(StoredPasskey::try_from)
            .transpose()
    }

    async fn passkey_used(
        &self,
        user: UserId,
        id: Uuid,
        key: String,
        at: OffsetDateTime,
    ) -> Result<bool, RepositoryError> {
        let at_us = timestamp::micros(at)
            .ok_or_else(|| RepositoryError::new("passkey used: the instant is out of range"))?;
        let set = doc! {
            fields::passkey::KEY: key,
            fields::passkey::LAST_USED_AT_US: at_us,
        };
        self.update_passkey("passkey used", user, id, set).await
    }

    async fn rename_passkey(
        &self,
        user: UserId,
        id: Uuid,
        name: String,
    ) -> Result<bool, RepositoryError> {
        let set = doc! { fields::passkey::NAME: name };
        self.update_passkey("rename passkey", user, id, set).await
    }
}
